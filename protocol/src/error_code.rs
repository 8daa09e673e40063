//! [`ErrorCode`]: the stable numeric codes carried by error replies.
//!
//! This is the only place reply error codes are defined; every other crate
//! maps its own errors onto one of these. Codes never change meaning once
//! released. Ranges:
//!
//! | range | meaning |
//! |---|---|
//! | 1000–1099 | the request itself is wrong: fix the client |
//! | 1100–1199 | authentication and permission |
//! | 1200–1299 | state and limits: retry later or change what is asked |
//! | 1300–1399 | history and recovery: some messages cannot be recovered |
//! | 1900–1999 | the server failed: retry with backoff |

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $name:literal; )*) => {
        /// A stable error code with a stable snake_case name.
        ///
        /// ```
        /// use tokenim_protocol::ErrorCode;
        /// assert_eq!(ErrorCode::PermissionDenied.code(), 1104);
        /// assert_eq!(ErrorCode::PermissionDenied.name(), "permission_denied");
        /// assert_eq!(ErrorCode::from_code(1104), Some(ErrorCode::PermissionDenied));
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u16)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant = $code, )*
        }

        impl ErrorCode {
            /// Every code, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The numeric code.
            pub fn code(self) -> u16 {
                self as u16
            }

            /// The stable snake_case name.
            pub fn name(self) -> &'static str {
                match self { $(ErrorCode::$variant => $name,)* }
            }

            /// The code with this number, if there is one.
            pub fn from_code(code: u16) -> Option<Self> {
                match code { $($code => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    /// The frame could not be decoded, or a field has the wrong type or is
    /// missing. The message says which.
    BadRequest = 1000, "bad_request";
    /// The `type` of the command is not one this server knows.
    UnknownCommand = 1001, "unknown_command";
    /// A channel name breaks the grammar in the protocol document.
    InvalidChannel = 1002, "invalid_channel";
    /// A user id breaks the grammar in the protocol document.
    InvalidUser = 1003, "invalid_user";
    /// The message or its data is larger than the server allows.
    MessageTooLarge = 1004, "message_too_large";
    /// A batch holds more items than the server accepts in one request
    /// (the message says the limit): split it, or import it as a job.
    TooManyItems = 1005, "too_many_items";
    /// The request body could not be parsed (JSON, CSV, JSON lines); the
    /// message says where. Nothing was stored.
    InvalidBody = 1006, "invalid_body";
    /// A field of an item is missing or invalid (too long, wrong type, not
    /// a URL); the message names the field.
    InvalidField = 1007, "invalid_field";
    /// The same id appears twice in one batch; only its first occurrence
    /// was processed.
    DuplicateItem = 1008, "duplicate_item";
    /// The user, group, key, role or job named in the request does not
    /// exist.
    NotFound = 1009, "not_found";
    /// A group member (or owner) is not a known user: create the user
    /// first.
    UnknownMember = 1010, "unknown_member";
    /// The `Idempotency-Key` was used before with a different request:
    /// use a new key for a new request.
    IdempotencyConflict = 1011, "idempotency_conflict";
    /// A group id breaks the grammar (the same as a user id's).
    InvalidGroup = 1012, "invalid_group";
    /// A command other than `connect` was sent before authenticating.
    NotConnected = 1100, "not_connected";
    /// `connect` was sent on a connection that is already authenticated.
    AlreadyConnected = 1101, "already_connected";
    /// The token is missing, malformed, badly signed, or for another
    /// audience or issuer. The message says which.
    InvalidToken = 1102, "invalid_token";
    /// The token's `exp` has passed: get a new token.
    TokenExpired = 1103, "token_expired";
    /// The token or the user's permissions do not allow this channel or
    /// action.
    PermissionDenied = 1104, "permission_denied";
    /// The HTTP request carries no API key (`Authorization: Basic` with
    /// the key id and secret, or `Bearer <id>:<secret>`).
    MissingCredentials = 1105, "missing_credentials";
    /// No API key has this id.
    UnknownApiKey = 1106, "unknown_api_key";
    /// The API key exists but the secret is wrong (or was rotated out).
    WrongSecret = 1107, "wrong_secret";
    /// The API key's expiry has passed: create or rotate a key.
    ApiKeyExpired = 1108, "api_key_expired";
    /// The API key was revoked.
    ApiKeyRevoked = 1109, "api_key_revoked";
    /// The API key lacks the scope this endpoint needs (the message names
    /// it).
    MissingScope = 1110, "missing_scope";
    /// The user is banned: no connection or token until the ban ends.
    UserBanned = 1111, "user_banned";
    /// The token was issued before the user's tokens were revoked: get a
    /// new token.
    TokenRevoked = 1112, "token_revoked";
    /// (HTTP API) The key is the last working one that holds `keys:admin`:
    /// revoking it would lock every operator out.
    LastAdminKey = 1113, "last_admin_key";
    /// (HTTP API) The key was rotated and its previous secret still
    /// works: rotating again now would end that secret at once.
    RotationInProgress = 1114, "rotation_in_progress";
    /// The connection is already subscribed to this channel.
    AlreadySubscribed = 1200, "already_subscribed";
    /// The connection is not subscribed to this channel.
    NotSubscribed = 1201, "not_subscribed";
    /// The connection holds as many subscriptions as the server allows.
    TooManySubscriptions = 1202, "too_many_subscriptions";
    /// Too many publishes in a short time: slow down and retry.
    RateLimited = 1203, "rate_limited";
    /// The node runs as many import jobs as it allows; retry when one
    /// finishes.
    TooManyJobs = 1204, "too_many_jobs";
    /// The request body is larger than the server accepts.
    BodyTooLarge = 1205, "body_too_large";
    /// The record kept changing while the request was applied to it
    /// (other writers at the same moment); nothing of this item was
    /// stored. Retry it.
    Conflict = 1206, "conflict";
    /// Messages after the requested position are no longer in the
    /// channel's history (too old, or too many since). Fetch what remains
    /// with `history`; some messages are lost to this client.
    HistoryGap = 1300, "history_gap";
    /// The channel's history was lost (its epoch changed): positions from
    /// the old epoch mean nothing now. Start over from `history`.
    EpochChanged = 1301, "epoch_changed";
    /// The server failed to handle the command; retry with backoff.
    Internal = 1900, "internal";
    /// The node cannot reach the service that carries messages between
    /// nodes (Redis); nothing was published. Retry with backoff, or
    /// reconnect to another node.
    Unavailable = 1901, "unavailable";
    /// The publish reached Redis but its answer did not come in time: it
    /// may or may not have been published. Retry with the same `msg_id`
    /// (a retry of a published message answers `duplicate: true` with its
    /// sequence); without a `msg_id` a retry may publish it twice.
    OutcomeUnknown = 1902, "outcome_unknown";
}

impl Serialize for ErrorCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(self.code())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let code = u16::deserialize(d)?;
        Self::from_code(code)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown error code {code}")))
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for &c in ErrorCode::ALL {
            assert!(seen.insert(c.code()));
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
        }
        let names: std::collections::HashSet<_> = ErrorCode::ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), ErrorCode::ALL.len());
    }
}
