//! [`Store`]: everything a node keeps besides channel history: users,
//! groups and memberships, API keys, roles and grants, bans and token
//! revocations, the audit log, idempotent responses and import jobs.
//!
//! The domain logic is written once here, over the small [`Kv`] contract;
//! the backend is embedded (redb, the default: one node, durable on local
//! disk), PostgreSQL (the system of record of a cluster) or Redis (every
//! node of a cluster sees the same state; only on a Redis that persists).
//!
//! # Layout
//!
//! * [`kv`]: [`Kv`], the backends and their contract.
//! * [`records`]: [`User`], [`Group`], per-item batch results.
//! * [`users`], [`groups`]: batch creation, lookups, pages, memberships.
//! * [`merge`]: what a batch does with records that exist, and
//!   read-merge-write of records (a whole batch at once).
//! * [`keys`]: API keys.
//! * [`policy`]: the policy document, bans, token revocations, the
//!   access version nodes poll.
//! * [`audit`]: the audit log and its queries.
//! * [`idempotency`]: responses kept for retried requests.
//! * [`jobs`]: import jobs' progress and failures.
//! * [`transfer`]: a whole store exported and imported as JSON lines.

pub mod audit;
pub mod groups;
pub mod idempotency;
pub mod jobs;
pub mod keys;
pub mod kv;
pub mod merge;
pub mod policy;
pub mod records;
pub mod transfer;
pub mod users;

pub use self::kv::{Kv, StoreError};
pub use self::merge::{Merged, OnExisting, Outcome};
pub use self::records::{Group, GroupId, ItemResult, ItemStatus, Metadata, NewGroup, User};

/// A stored value (JSON: readable with `redis-cli`, and tolerant of
/// fields added later).
pub(crate) fn encode<T: serde::Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialize")
}

/// A value read back.
pub(crate) fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Failed(format!("corrupt record: {e}")))
}

/// The node's store.
#[derive(Debug, Clone)]
pub struct Store {
    kv: Kv,
    /// The configured definition of the built-in role `user` (not stored).
    user_role: std::sync::Arc<std::collections::BTreeSet<tokenim_auth::Permission>>,
}

impl Store {
    /// A store over a backend; the built-in role `user` allows nothing
    /// until [`Store::with_user_role`] defines it.
    pub fn new(kv: Kv) -> Self {
        Self {
            kv,
            user_role: std::sync::Arc::default(),
        }
    }

    /// This store with the built-in role `user` defined as `permissions`
    /// wherever no stored definition replaces it.
    pub fn with_user_role(
        self,
        permissions: std::collections::BTreeSet<tokenim_auth::Permission>,
    ) -> Self {
        Self {
            user_role: std::sync::Arc::new(permissions),
            ..self
        }
    }

    /// The backend.
    pub fn kv(&self) -> &Kv {
        &self.kv
    }
}
