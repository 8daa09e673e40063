//! Errors from the codecs.

use crate::ErrorCode;
use crate::ids::IdError;

/// A frame could not be decoded. Never a panic: garbage, wrong types,
/// unknown commands and oversized frames all land here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes are not JSON / MessagePack at all, or end early. The
    /// sender is broken; reply `bad_request`.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// The frame is well-formed but its `type` is not a known command.
    #[error("unknown command: {0}")]
    UnknownCommand(String),
    /// A channel name breaks the grammar.
    #[error("{0}")]
    InvalidChannel(String),
    /// A user id breaks the grammar.
    #[error("{0}")]
    InvalidUser(String),
    /// A field is missing or has the wrong type.
    #[error("invalid frame: {0}")]
    InvalidField(String),
    /// The frame is larger than the limit it was decoded with.
    #[error("frame of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Size of the frame.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// A JSON frame arrived on a MessagePack connection or the reverse.
    #[error("{0} frame on a connection that speaks the other codec")]
    WrongFrameType(&'static str),
}

impl DecodeError {
    /// The reply error code for this failure.
    pub fn code(&self) -> ErrorCode {
        match self {
            DecodeError::UnknownCommand(_) => ErrorCode::UnknownCommand,
            DecodeError::InvalidChannel(_) => ErrorCode::InvalidChannel,
            DecodeError::InvalidUser(_) => ErrorCode::InvalidUser,
            DecodeError::TooLarge { .. } => ErrorCode::MessageTooLarge,
            DecodeError::Malformed(_)
            | DecodeError::InvalidField(_)
            | DecodeError::WrongFrameType(_) => ErrorCode::BadRequest,
        }
    }

    /// Sorts a serde error message from a well-formed frame into a variant.
    pub(crate) fn from_data_message(msg: String) -> Self {
        if msg.contains(IdError::CHANNEL) {
            DecodeError::InvalidChannel(msg)
        } else if msg.contains(IdError::USER) {
            DecodeError::InvalidUser(msg)
        } else if msg.contains("unknown variant") {
            DecodeError::UnknownCommand(msg)
        } else {
            DecodeError::InvalidField(msg)
        }
    }
}

/// A value could not be encoded. With the frame types of this crate this
/// only happens for data that has no representation in the target codec.
#[derive(Debug, thiserror::Error)]
#[error("encode failed: {0}")]
pub struct EncodeError(pub String);
