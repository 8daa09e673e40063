//! What decides access besides the token: the [`Policy`] (roles and
//! grants, one document), bans and token revocations per user, and the
//! access version every node polls to learn that any of it changed.

use serde::{Deserialize, Serialize};
use tokenim_auth::Policy;
use tokenim_protocol::UserId;

use super::kv::{Op, Table};
use super::records::User;
use super::{Store, StoreError, decode, encode};

/// Where the policy document lives in the meta table.
const POLICY_KEY: &str = "policy";
/// The counter bumped by every change to access.
const ACCESS_COUNTER: &str = "access";

/// A ban on a user. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Ban {
    /// When it was imposed.
    pub since: u64,
    /// When it ends (`None`: until lifted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub until: Option<u64>,
    /// Why (shown to nobody but the API).
    #[serde(default)]
    pub reason: String,
}

impl Ban {
    /// Whether the ban holds at `now`.
    pub fn active(&self, now: u64) -> bool {
        self.until.is_none_or(|until| now < until)
    }
}

/// Tokens of a user issued (`iat`) before `before` (seconds since the
/// Unix epoch) are revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    /// The first `iat` still accepted.
    pub before: u64,
}

impl Revocation {
    /// Whether a token issued at `issued_at` (seconds; `None` when the
    /// token does not say) is revoked.
    pub fn revokes(&self, issued_at: Option<u64>) -> bool {
        issued_at.is_none_or(|iat| iat < self.before)
    }
}

/// What a session needs to know about its user, read in one round trip.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UserAccess {
    /// The user's record, if the API created one.
    pub user: Option<User>,
    /// A ban, if one was ever imposed (check [`Ban::active`]).
    pub ban: Option<Ban>,
    /// A revocation of its tokens, if any.
    pub revocation: Option<Revocation>,
}

impl Store {
    /// The current policy (the built-in roles when none was stored).
    pub async fn policy(&self) -> Result<Policy, StoreError> {
        let raw = self.kv.get(Table::Meta, POLICY_KEY).await?;
        self.decode_policy(raw.as_deref())
    }

    /// The policy before anything was stored: the built-in roles, `user`
    /// as configured.
    pub fn builtin_policy(&self) -> Policy {
        Policy::default().with_user_role((*self.user_role).clone())
    }

    /// A stored policy document (or none) with the configured built-in
    /// roles.
    fn decode_policy(&self, raw: Option<&[u8]>) -> Result<Policy, StoreError> {
        let policy = match raw {
            Some(raw) => decode::<Policy>(raw)?,
            None => Policy::default(),
        };
        Ok(policy.with_user_role((*self.user_role).clone()))
    }

    /// Changes the policy with `change` (read, change, compare-and-swap,
    /// retried on a concurrent change) and bumps the access version.
    /// Returns what `change` returned.
    pub async fn update_policy<T>(
        &self,
        mut change: impl FnMut(&mut Policy) -> T,
    ) -> Result<T, StoreError> {
        loop {
            let raw = self.kv.get(Table::Meta, POLICY_KEY).await?;
            let mut policy = self.decode_policy(raw.as_deref())?;
            let out = change(&mut policy);
            if self
                .kv
                .compare_and_swap(Table::Meta, POLICY_KEY, raw, Some(encode(&policy)))
                .await?
            {
                self.bump_access().await?;
                return Ok(out);
            }
        }
    }

    /// The access version: it changes whenever roles, grants, user roles,
    /// memberships, bans or revocations change.
    pub async fn access_version(&self) -> Result<u64, StoreError> {
        self.kv.counter(ACCESS_COUNTER).await
    }

    /// Marks that access changed; returns the new version.
    pub async fn bump_access(&self) -> Result<u64, StoreError> {
        self.kv.incr(ACCESS_COUNTER, 1).await
    }

    /// A user's record, ban and revocation, in one round trip.
    pub async fn user_access(&self, user: &UserId) -> Result<UserAccess, StoreError> {
        let id = user.as_str().to_owned();
        let mut found = self
            .kv
            .get_multi(vec![
                (Table::Users, id.clone()),
                (Table::Bans, id.clone()),
                (Table::Revocations, id),
            ])
            .await?
            .into_iter();
        let mut next = || found.next().flatten();
        let (user, ban, revocation) = (next(), next(), next());
        Ok(UserAccess {
            user: user.map(|b| decode(&b)).transpose()?,
            ban: ban.map(|b| decode(&b)).transpose()?,
            revocation: revocation.map(|b| decode(&b)).transpose()?,
        })
    }

    /// Bans a user (replacing an earlier ban).
    pub async fn ban(&self, user: &UserId, ban: &Ban) -> Result<(), StoreError> {
        self.kv
            .write(vec![Op::Put(
                Table::Bans,
                user.as_str().to_owned(),
                encode(ban),
            )])
            .await?;
        self.bump_access().await.map(drop)
    }

    /// Lifts a user's ban; returns whether there was one.
    pub async fn unban(&self, user: &UserId) -> Result<bool, StoreError> {
        let had = self.kv.get(Table::Bans, user.as_str()).await?.is_some();
        if had {
            self.kv
                .write(vec![Op::Delete(Table::Bans, user.as_str().to_owned())])
                .await?;
            self.bump_access().await?;
        }
        Ok(had)
    }

    /// Revokes every token of `user` issued before `before` (seconds).
    pub async fn revoke_tokens(&self, user: &UserId, before: u64) -> Result<(), StoreError> {
        let value = encode(&Revocation { before });
        self.kv
            .write(vec![Op::Put(
                Table::Revocations,
                user.as_str().to_owned(),
                value,
            )])
            .await?;
        self.bump_access().await.map(drop)
    }
}
