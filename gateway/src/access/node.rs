//! [`Access`]: the node's copy of the policy (roles and grants) and of the
//! access version, which every change to roles, grants, user roles,
//! memberships, bans or revocations bumps in the store.
//!
//! Sessions compare the version they last saw with [`Access::version`]
//! (one atomic load per command) and reload what they know about their
//! user only when it moved, so a change applies to live connections
//! without a reconnect and without a store round trip per command. A
//! change made through this node applies at once ([`Access::refresh`]);
//! one made through another node within `api.access_refresh`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokenim_auth::Policy;
use tokio_util::sync::CancellationToken;

use crate::store::{Store, StoreError};

/// The node's view of access rules.
#[derive(Debug)]
pub struct Access {
    store: Store,
    policy: RwLock<Arc<Policy>>,
    version: AtomicU64,
}

impl Access {
    /// Reads the policy and version; if the store is unreachable (Redis
    /// down at start), starts from the built-in roles and version 0 and
    /// catches up on the next refresh.
    pub async fn load(store: Store) -> Self {
        let access = Self {
            policy: RwLock::new(Arc::new(store.builtin_policy())),
            store,
            version: AtomicU64::new(0),
        };
        if let Err(e) = access.refresh().await {
            tracing::warn!(error = %e, "access rules not loaded yet; retrying in the background");
        }
        access
    }

    /// The policy as last read.
    pub fn policy(&self) -> Arc<Policy> {
        Arc::clone(&self.policy.read().unwrap_or_else(|e| e.into_inner()))
    }

    /// The access version as last read.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Reads the version and, when it moved, the policy.
    pub async fn refresh(&self) -> Result<(), StoreError> {
        let version = self.store.access_version().await?;
        if version != self.version() {
            let policy = self.store.policy().await?;
            *self.policy.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(policy);
            self.version.store(version, Ordering::Release);
        }
        Ok(())
    }

    /// Refreshes every `every` until `shutdown`.
    pub async fn poll(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
        crate::clock::every(every, &shutdown, || async {
            if let Err(e) = self.refresh().await {
                tracing::debug!(error = %e, "access rules not refreshed");
            }
        })
        .await;
    }
}
