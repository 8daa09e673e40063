//! Idempotent requests: the first request with an `Idempotency-Key`
//! claims it; its response is stored, and a retry with the same key and
//! the same request gets the same response without doing anything again.

use serde::{Deserialize, Serialize};

use super::kv::Table;
use super::{Store, StoreError, decode, encode};

/// A stored claim on an idempotency key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Hash of the request (method, path, query, body).
    pub fingerprint: String,
    /// When the claim may be forgotten (ms).
    pub expires_at: u64,
    /// The response, once the first request finished.
    pub response: Option<SavedResponse>,
}

/// A response to replay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedResponse {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// What claiming a key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key is ours now: do the work, then [`Store::finish_idempotent`].
    Fresh,
    /// The same request finished before: replay this.
    Replay(SavedResponse),
    /// The same request is still running (on this node or another).
    InProgress,
    /// The key was used with a different request.
    Conflict,
}

impl Store {
    /// Claims `key` (already scoped to the caller) for a request with
    /// `fingerprint`, for `ttl_ms`.
    pub async fn claim_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        now: u64,
        ttl_ms: u64,
    ) -> Result<Claim, StoreError> {
        let fresh = Saved {
            fingerprint: fingerprint.to_owned(),
            expires_at: now + ttl_ms,
            response: None,
        };
        loop {
            let raw = self.kv.get(Table::Idempotency, key).await?;
            if let Some(raw) = &raw {
                let saved: Saved = decode(raw)?;
                if saved.expires_at > now {
                    return Ok(if saved.fingerprint != fingerprint {
                        Claim::Conflict
                    } else {
                        saved.response.map_or(Claim::InProgress, Claim::Replay)
                    });
                }
            }
            if self
                .kv
                .compare_and_swap(Table::Idempotency, key, raw, Some(encode(&fresh)))
                .await?
            {
                return Ok(Claim::Fresh);
            }
        }
    }

    /// Stores the response of a claimed request.
    pub async fn finish_idempotent(
        &self,
        key: &str,
        response: SavedResponse,
    ) -> Result<(), StoreError> {
        let Some(raw) = self.kv.get(Table::Idempotency, key).await? else {
            return Ok(());
        };
        let mut saved: Saved = decode(&raw)?;
        saved.response = Some(response);
        self.kv
            .compare_and_swap(Table::Idempotency, key, Some(raw), Some(encode(&saved)))
            .await
            .map(drop)
    }

    /// Gives up a claim (the request failed as a whole: a retry may run).
    pub async fn release_idempotent(&self, key: &str) -> Result<(), StoreError> {
        self.kv
            .write(vec![super::kv::Op::Delete(
                Table::Idempotency,
                key.to_owned(),
            )])
            .await
    }
}
