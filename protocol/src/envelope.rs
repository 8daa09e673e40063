//! [`Envelope`]: what one gateway node sends the others through Redis.
//!
//! Clients never see it. It carries everything a receiving node needs to
//! deliver without a lookup: the channel, the sender, the data, the time,
//! the node it came from, and (for messages) the channel sequence number.
//!
//! On the wire an envelope is MessagePack values back to back: the
//! sequence number (an unsigned integer, or nil for ephemeral events such
//! as join/leave), then, on a message as it goes out live through pub/sub,
//! the channel's epoch (a string; the copy kept in the history has none),
//! and then the envelope map. The sequence and epoch come first and
//! separately because they are assigned inside Redis, by the script that
//! publishes, after the node has encoded the rest; the epoch lets a
//! receiving node tell a channel that started over from a repeat.
//!
//! ```
//! use tokenim_protocol::{ChannelName, Data, Envelope, EnvelopeBody};
//! let envelope = Envelope {
//!     origin: "node-a".into(),
//!     body: EnvelopeBody::Message {
//!         channel: ChannelName::new("rooms.lobby").unwrap(),
//!         from: None,
//!         data: Data::from_json("{\"text\":\"hi\"}").unwrap(),
//!         time: 1_700_000_000_000,
//!     },
//! };
//! let mut wire = tokenim_protocol::envelope::encode_seq(Some(42));
//! wire.extend(envelope.encode().unwrap());
//! let (seq, back) = Envelope::decode(&wire).unwrap();
//! assert_eq!((seq, back), (Some(42), envelope));
//! ```

use serde::{Deserialize, Serialize};

use crate::{ChannelName, Data, DecodeError, EncodeError, Millis, Push, Seq, SessionId, UserId};

/// What Redis put in front of an envelope: the channel's sequence number
/// and, on a live message, its epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    /// The message's `seq` (`None` for events).
    pub seq: Option<Seq>,
    /// The channel's epoch, when Redis sent it along.
    pub epoch: Option<String>,
}

/// A message or event crossing between nodes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// The id of the node that published it.
    pub origin: String,
    /// What it carries.
    pub body: EnvelopeBody,
}

/// The payload of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EnvelopeBody {
    /// A published message; its sequence number travels in front.
    Message {
        /// The channel.
        channel: ChannelName,
        /// The sender, if a user.
        from: Option<UserId>,
        /// The payload.
        data: Data,
        /// When the origin node accepted it (ms since epoch).
        time: Millis,
    },
    /// An ephemeral push (join, leave) for a channel's subscribers.
    Event {
        /// The channel.
        channel: ChannelName,
        /// The push.
        push: Push,
        /// A session on the origin node that must not receive it.
        except: Option<SessionId>,
    },
    /// Close every connection of a user on every node.
    DisconnectUser {
        /// The user.
        user: UserId,
        /// The close code to use.
        code: u16,
    },
}

/// The sequence prefix: a MessagePack unsigned integer, or nil.
pub fn encode_seq(seq: Option<Seq>) -> Vec<u8> {
    rmp_serde::to_vec(&seq).expect("an integer or nil always encodes")
}

impl Envelope {
    /// The envelope map (without the sequence prefix).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        rmp_serde::to_vec_named(self).map_err(|e| EncodeError(e.to_string()))
    }

    /// Reads the sequence prefix and the envelope (skipping an epoch).
    pub fn decode(bytes: &[u8]) -> Result<(Option<Seq>, Envelope), DecodeError> {
        Self::decode_stamped(bytes).map(|(stamp, envelope)| (stamp.seq, envelope))
    }

    /// Reads the sequence prefix, the epoch if there is one, and the
    /// envelope.
    pub fn decode_stamped(bytes: &[u8]) -> Result<(Stamp, Envelope), DecodeError> {
        let mut cursor = std::io::Cursor::new(bytes);
        let seq: Option<Seq> = rmp_serde::from_read(&mut cursor)
            .map_err(|e| DecodeError::Malformed(format!("envelope sequence: {e}")))?;
        let next = bytes.get(cursor.position() as usize).copied();
        // A string (fixstr, str8/16/32) before the map is the epoch.
        let epoch = match next {
            Some(0xa0..=0xbf | 0xd9..=0xdb) => Some(
                rmp_serde::from_read::<_, String>(&mut cursor)
                    .map_err(|e| DecodeError::Malformed(format!("envelope epoch: {e}")))?,
            ),
            _ => None,
        };
        let rest = &bytes[cursor.position() as usize..];
        let envelope = crate::Codec::MsgPack.decode(rest, usize::MAX)?;
        Ok((Stamp { seq, epoch }, envelope))
    }

    /// The channel this envelope is for, if it is for one.
    pub fn channel(&self) -> Option<&ChannelName> {
        match &self.body {
            EnvelopeBody::Message { channel, .. } | EnvelopeBody::Event { channel, .. } => {
                Some(channel)
            }
            EnvelopeBody::DisconnectUser { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Presence, Push};

    #[test]
    fn event_round_trips_with_nil_sequence() {
        let channel = ChannelName::new("a").unwrap();
        let envelope = Envelope {
            origin: "n1".into(),
            body: EnvelopeBody::Event {
                channel: channel.clone(),
                push: Push::Join(Presence {
                    channel,
                    user: UserId::new("bob").unwrap(),
                    session: SessionId(3),
                }),
                except: Some(SessionId(3)),
            },
        };
        let mut wire = encode_seq(None);
        wire.extend(envelope.encode().unwrap());
        assert_eq!(Envelope::decode(&wire).unwrap(), (None, envelope));
    }

    #[test]
    fn a_sequence_appended_by_lua_cmsgpack_decodes() {
        // Redis's cmsgpack packs 7 as a positive fixint and 300 as uint16.
        for (prefix, seq) in [(vec![0x07], 7), (vec![0xcd, 0x01, 0x2c], 300)] {
            let envelope = Envelope {
                origin: "n".into(),
                body: EnvelopeBody::DisconnectUser {
                    user: UserId::new("u").unwrap(),
                    code: 4000,
                },
            };
            let mut wire = prefix;
            wire.extend(envelope.encode().unwrap());
            assert_eq!(Envelope::decode(&wire).unwrap().0, Some(seq));
        }
        assert!(Envelope::decode(b"\xc1").is_err());
    }

    #[test]
    fn an_epoch_between_sequence_and_map_is_read_and_may_be_absent() {
        let envelope = Envelope {
            origin: "n".into(),
            body: EnvelopeBody::DisconnectUser {
                user: UserId::new("u").unwrap(),
                code: 4000,
            },
        };
        // What the publish script sends live: cmsgpack.pack(seq, epoch).
        let mut wire = vec![0x07, 0xa4];
        wire.extend(b"ep-1");
        wire.extend(envelope.encode().unwrap());
        let (stamp, back) = Envelope::decode_stamped(&wire).unwrap();
        assert_eq!(stamp.seq, Some(7));
        assert_eq!(stamp.epoch.as_deref(), Some("ep-1"));
        assert_eq!(back, envelope);
        assert_eq!(
            Envelope::decode(&wire).unwrap(),
            (Some(7), envelope.clone())
        );
        let mut kept = vec![0x07];
        kept.extend(envelope.encode().unwrap());
        assert_eq!(Envelope::decode_stamped(&kept).unwrap().0.epoch, None);
        // A truncated epoch is an error, not a guess.
        assert!(Envelope::decode_stamped(&[0x07, 0xa4, b'e']).is_err());
    }
}
