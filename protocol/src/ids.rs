//! Names and ids that appear in frames.
//!
//! [`ChannelName`] and [`UserId`] are validated when they are built or
//! decoded, so the rest of the system never sees a malformed one. Both are
//! `Arc<str>` inside: cloning one into every subscriber list is a reference
//! count, not an allocation.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// The id a client puts on each command; the reply carries the same id.
/// Ids are chosen by the client (any number from 1 to 2^53, so that
/// JavaScript clients can hold them exactly); `0` is reserved for replies to
/// frames that could not be decoded far enough to read their id.
pub type CommandId = u64;

/// Position of a message in its channel: 1 for the first message, then
/// consecutive. Every subscriber of a channel sees the same sequence.
pub type Seq = u64;

/// Longest accepted user id, in bytes.
pub const USER_ID_MAX_LEN: usize = 64;
/// Longest accepted channel name, in bytes (personal channels included).
pub const CHANNEL_MAX_LEN: usize = 128;
/// First character of a personal channel: `#alice` is where direct messages
/// to user `alice` are delivered.
pub const PERSONAL_PREFIX: char = '#';

/// Why a name was refused. The `Display` text starts with a stable prefix
/// ([`IdError::CHANNEL`] or [`IdError::USER`]) that the codec uses to map a
/// decode failure to [`crate::ErrorCode::InvalidChannel`] or
/// [`crate::ErrorCode::InvalidUser`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The channel name is empty, too long or holds a character outside
    /// `A-Z a-z 0-9 _ - . : @ = /` (after an optional leading `#`).
    #[error(
        "invalid channel name {0:?}: 1 to 128 bytes of A-Z a-z 0-9 _ - . : @ = /, or # and a user id"
    )]
    Channel(String),
    /// The user id is empty, too long or holds a character outside
    /// `A-Z a-z 0-9 _ - . @`.
    #[error("invalid user id {0:?}: 1 to 64 bytes of A-Z a-z 0-9 _ - . @")]
    User(String),
}

impl IdError {
    /// Prefix of every channel-name error message.
    pub const CHANNEL: &'static str = "invalid channel name";
    /// Prefix of every user-id error message.
    pub const USER: &'static str = "invalid user id";
}

fn is_user_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@')
}

fn is_channel_char(b: u8) -> bool {
    is_user_char(b) || matches!(b, b':' | b'=' | b'/')
}

fn valid_user(s: &str) -> bool {
    !s.is_empty() && s.len() <= USER_ID_MAX_LEN && s.bytes().all(is_user_char)
}

/// A user id: 1 to 64 bytes of `A-Z a-z 0-9 _ - . @`.
///
/// ```
/// use tokenim_protocol::UserId;
/// assert!(UserId::new("alice@example.com").is_ok());
/// assert!(UserId::new("no spaces").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(Arc<str>);

impl UserId {
    /// Validates and wraps a user id.
    pub fn new(s: &str) -> Result<Self, IdError> {
        if valid_user(s) {
            Ok(Self(s.into()))
        } else {
            Err(IdError::User(truncate(s)))
        }
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The personal channel (`#` + id) where this user's direct messages
    /// are delivered.
    pub fn personal_channel(&self) -> ChannelName {
        ChannelName(format!("{PERSONAL_PREFIX}{}", self.0).into())
    }
}

/// A channel name: 1 to 128 bytes of `A-Z a-z 0-9 _ - . : @ = /`, or a
/// personal channel `#` + user id.
///
/// ```
/// use tokenim_protocol::ChannelName;
/// let room = ChannelName::new("rooms.lobby").unwrap();
/// assert!(!room.is_personal());
/// assert!(ChannelName::new("#alice").unwrap().is_personal());
/// assert!(ChannelName::new("").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelName(Arc<str>);

impl ChannelName {
    /// Validates and wraps a channel name.
    pub fn new(s: &str) -> Result<Self, IdError> {
        let ok = match s.strip_prefix(PERSONAL_PREFIX) {
            Some(user) => valid_user(user),
            None => !s.is_empty() && s.len() <= CHANNEL_MAX_LEN && s.bytes().all(is_channel_char),
        };
        if ok {
            Ok(Self(s.into()))
        } else {
            Err(IdError::Channel(truncate(s)))
        }
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is a user's personal channel (`#user`), which only that
    /// user receives and which clients reach with the `send` command.
    pub fn is_personal(&self) -> bool {
        self.0.starts_with(PERSONAL_PREFIX)
    }
}

/// Keeps error messages bounded when a client sends a huge bogus name.
fn truncate(s: &str) -> String {
    s.chars().take(CHANNEL_MAX_LEN + 1).collect()
}

macro_rules! string_id {
    ($ty:ident) => {
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(&*self.0, f)
            }
        }

        impl std::str::FromStr for $ty {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl de::Visitor<'_> for V {
                    type Value = $ty;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(concat!("a ", stringify!($ty), " string"))
                    }
                    fn visit_str<E: de::Error>(self, v: &str) -> Result<$ty, E> {
                        $ty::new(v).map_err(E::custom)
                    }
                }
                d.deserialize_str(V)
            }
        }
    };
}

string_id!(UserId);
string_id!(ChannelName);

/// A connection's id, unique within one gateway process, given in the
/// `connect` reply and in join/leave pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_grammar() {
        for ok in ["a", "rooms.lobby", "team:42/general", "x=y@z", "#alice"] {
            assert!(ChannelName::new(ok).is_ok(), "{ok}");
        }
        let long = "a".repeat(CHANNEL_MAX_LEN + 1);
        for bad in ["", "has space", "#", "##a", "é", "#bad:user", long.as_str()] {
            assert!(ChannelName::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_grammar_and_personal_channel() {
        let u = UserId::new("bob-1").unwrap();
        assert_eq!(u.personal_channel().as_str(), "#bob-1");
        assert!(u.personal_channel().is_personal());
        assert!(UserId::new(&"u".repeat(USER_ID_MAX_LEN + 1)).is_err());
        assert!(UserId::new("a/b").is_err());
    }

    #[test]
    fn error_messages_carry_stable_prefix() {
        let e = ChannelName::new("bad name").unwrap_err().to_string();
        assert!(e.starts_with(IdError::CHANNEL), "{e}");
        let e = UserId::new("").unwrap_err().to_string();
        assert!(e.starts_with(IdError::USER), "{e}");
    }
}
