//! [`CommandError`]: a command that failed, as its error reply will say.
//! Every failure a rule, the store or the broker reports converts into it.

use tokenim_protocol::{ErrorBody, ErrorCode};

/// A command that failed, with the code and message of its error reply.
#[derive(Debug)]
pub(super) struct CommandError {
    pub(super) code: ErrorCode,
    pub(super) message: String,
}

/// `Err` with `code` and `message`: the shorthand every check uses.
pub(super) fn fail<T>(code: ErrorCode, message: impl Into<String>) -> Result<T, CommandError> {
    Err(CommandError {
        code,
        message: message.into(),
    })
}

impl From<ErrorBody> for CommandError {
    fn from(e: ErrorBody) -> Self {
        CommandError {
            code: e.code,
            message: e.message,
        }
    }
}

impl From<crate::broker::BrokerError> for CommandError {
    fn from(e: crate::broker::BrokerError) -> Self {
        CommandError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}
