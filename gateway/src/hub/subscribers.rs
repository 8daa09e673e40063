//! [`Subscribers`]: the local sessions of one channel.
//!
//! Most channels on a node have one local subscriber: every user's personal
//! channel, and small rooms. Holding a lone session inline (no map, no
//! allocation) keeps an idle connection's cost down; a channel switches to
//! an index map (fast iteration, O(1) removal) from its second subscriber.

use std::sync::Arc;

use indexmap::IndexMap;
use tokenim_protocol::SessionId;

use crate::hub::SessionHandle;

/// The local subscribers of a channel.
#[derive(Debug, Default)]
pub(super) enum Subscribers {
    /// Nobody (only transiently: empty channels are removed).
    #[default]
    Empty,
    /// One session, inline.
    One(Arc<SessionHandle>),
    /// Several sessions (boxed, so the common cases stay small inline).
    Many(Box<IndexMap<SessionId, Arc<SessionHandle>>>),
}

impl Subscribers {
    pub(super) fn len(&self) -> usize {
        match self {
            Subscribers::Empty => 0,
            Subscribers::One(_) => 1,
            Subscribers::Many(map) => map.len(),
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a session; `false` if it was there already.
    pub(super) fn insert(&mut self, session: &Arc<SessionHandle>) -> bool {
        match self {
            Subscribers::Empty => {
                *self = Subscribers::One(Arc::clone(session));
                true
            }
            Subscribers::One(one) if one.id == session.id => false,
            Subscribers::One(one) => {
                let mut map = IndexMap::with_capacity(2);
                map.insert(one.id, Arc::clone(one));
                map.insert(session.id, Arc::clone(session));
                *self = Subscribers::Many(Box::new(map));
                true
            }
            Subscribers::Many(map) => map.insert(session.id, Arc::clone(session)).is_none(),
        }
    }

    /// Removes a session; `false` if it was not there.
    pub(super) fn remove(&mut self, id: SessionId) -> bool {
        match self {
            Subscribers::One(one) if one.id == id => {
                *self = Subscribers::Empty;
                true
            }
            Subscribers::Many(map) => map.swap_remove(&id).is_some(),
            _ => false,
        }
    }

    /// Every session.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Arc<SessionHandle>> {
        let (one, many) = match self {
            Subscribers::Empty => (None, None),
            Subscribers::One(one) => (Some(one), None),
            Subscribers::Many(map) => (None, Some(map.values())),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Outbound;
    use tokenim_protocol::{Codec, UserId};

    fn session(id: u64) -> Arc<SessionHandle> {
        Arc::new(SessionHandle {
            id: SessionId(id),
            user: UserId::new("u").unwrap(),
            codec: Codec::Json,
            outbound: Outbound::new(1, 1),
        })
    }

    #[test]
    fn grows_from_one_to_many_and_back_to_empty() {
        let mut subs = Subscribers::default();
        assert!(subs.insert(&session(1)));
        assert!(!subs.insert(&session(1)));
        assert!(matches!(subs, Subscribers::One(_)));
        assert!(subs.insert(&session(2)));
        assert_eq!(subs.iter().map(|s| s.id.0).collect::<Vec<_>>(), [1, 2]);
        assert!(subs.remove(SessionId(1)));
        assert!(!subs.remove(SessionId(1)));
        assert!(subs.remove(SessionId(2)));
        assert!(subs.is_empty());
        assert!(subs.insert(&session(3)));
        assert!(subs.remove(SessionId(3)));
        assert!(subs.is_empty());
    }
}
