//! The MessagePack codec: structs as maps with string keys (the same field
//! names as JSON), one frame per WebSocket binary frame.

use bytes::Bytes;
use rmp_serde::decode::Error as RmpError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::MAX_DEPTH;
use crate::{DecodeError, EncodeError};

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Bytes, EncodeError> {
    rmp_serde::to_vec_named(value)
        .map(Bytes::from)
        .map_err(|e| EncodeError(e.to_string()))
}

pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut cursor = std::io::Cursor::new(bytes);
    let mut de = rmp_serde::Deserializer::new(&mut cursor);
    de.set_max_depth(MAX_DEPTH);
    let value = T::deserialize(&mut de).map_err(|e| match e {
        RmpError::InvalidMarkerRead(_)
        | RmpError::InvalidDataRead(_)
        | RmpError::LengthMismatch(_)
        | RmpError::DepthLimitExceeded
        | RmpError::Utf8Error(_) => DecodeError::Malformed(e.to_string()),
        other => DecodeError::from_data_message(other.to_string()),
    })?;
    drop(de);
    // Like JSON, a frame is exactly one value: bytes after it are an error.
    if cursor.position() < bytes.len() as u64 {
        return Err(DecodeError::Malformed(format!(
            "{} bytes after the end of the frame",
            bytes.len() as u64 - cursor.position()
        )));
    }
    Ok(value)
}
