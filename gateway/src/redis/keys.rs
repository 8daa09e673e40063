//! Names of everything tokenim keeps in Redis, the broker's and the
//! store's. Every name of one channel carries the channel in a
//! `{hash tag}`, so on a Redis Cluster the sequence counter, the presence
//! set and the shard channel of a channel live in the same slot (and the
//! publish script may touch them together). Every key of the store carries
//! `{<prefix>:store}`, so the whole store lives in one slot.

use tokenim_protocol::ChannelName;

/// Builds names under one prefix.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// The pub/sub channel (shard channel on a cluster) of a channel.
    pub(crate) fn channel(&self, channel: &ChannelName) -> String {
        format!("{}:ch:{{{channel}}}", self.prefix)
    }

    /// The tokenim channel behind a pub/sub channel name, if it is one of
    /// ours.
    pub(crate) fn parse_channel(&self, name: &[u8]) -> Option<ChannelName> {
        let name = std::str::from_utf8(name).ok()?;
        let inner = name
            .strip_prefix(&self.prefix)?
            .strip_prefix(":ch:{")?
            .strip_suffix('}')?;
        ChannelName::new(inner).ok()
    }

    /// The sequence counter of a channel.
    pub(crate) fn seq(&self, channel: &ChannelName) -> String {
        format!("{}:seq:{{{channel}}}", self.prefix)
    }

    /// The epoch of a channel's history.
    pub(crate) fn epoch(&self, channel: &ChannelName) -> String {
        format!("{}:epoch:{{{channel}}}", self.prefix)
    }

    /// The history stream of a channel (entry ids `<seq>-1`).
    pub(crate) fn history(&self, channel: &ChannelName) -> String {
        format!("{}:hist:{{{channel}}}", self.prefix)
    }

    /// A remembered `msg_id` of a channel.
    pub(crate) fn msg_id(&self, channel: &ChannelName, id: &str) -> String {
        format!("{}:msgid:{{{channel}}}:{id}", self.prefix)
    }

    /// The position a user acknowledged in their personal channel.
    pub(crate) fn ack(&self, channel: &ChannelName) -> String {
        format!("{}:ack:{{{channel}}}", self.prefix)
    }

    /// The presence set of a channel: members `node|session|user`, scored
    /// by expiry time in milliseconds.
    pub(crate) fn presence(&self, channel: &ChannelName) -> String {
        format!("{}:presence:{{{channel}}}", self.prefix)
    }

    /// `{<prefix>:store}`: the hash tag, and start, of every store key.
    pub(crate) fn store_base(&self) -> String {
        format!("{{{}:store}}", self.prefix)
    }

    /// The hash holding a store table: key → value (binary-safe).
    pub(crate) fn store_table(base: &str, table: &str) -> String {
        format!("{base}:{table}")
    }

    /// The sorted set indexing a store table's keys (all scored 0, for
    /// ordered prefix scans with `ZRANGEBYLEX`).
    pub(crate) fn store_index(base: &str, table: &str) -> String {
        format!("{base}:{table}:idx")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_one_channel_share_a_hash_tag() {
        let keys = Keys::new("tk");
        let ch = ChannelName::new("rooms.lobby").unwrap();
        assert_eq!(keys.channel(&ch), "tk:ch:{rooms.lobby}");
        assert_eq!(keys.seq(&ch), "tk:seq:{rooms.lobby}");
        assert_eq!(keys.presence(&ch), "tk:presence:{rooms.lobby}");
        assert_eq!(keys.parse_channel(keys.channel(&ch).as_bytes()), Some(ch));
        assert_eq!(keys.parse_channel(b"other:ch:{x}"), None);
    }

    #[test]
    fn store_keys_share_one_hash_tag() {
        let base = Keys::new("tk").store_base();
        assert_eq!(Keys::store_table(&base, "users"), "{tk:store}:users");
        assert_eq!(Keys::store_index(&base, "users"), "{tk:store}:users:idx");
    }
}
