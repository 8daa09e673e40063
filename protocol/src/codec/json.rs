//! The JSON codec: compact JSON, one frame per WebSocket text frame.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::{DecodeError, EncodeError};

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Bytes, EncodeError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| EncodeError(e.to_string()))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // serde_json refuses nesting deeper than 128 (`MAX_DEPTH`) on its own.
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        Category::Syntax | Category::Eof | Category::Io => DecodeError::Malformed(e.to_string()),
        Category::Data => DecodeError::from_data_message(e.to_string()),
    })
}
