//! A session's view of its user beyond the token: its roles (from which
//! the [`tokenim_auth::Principal`] of each check is made), the revocation of its tokens,
//! and the group memberships it has checked, all as of one access version.
//!
//! * [`admit`] reads the user's access (one store round trip) when a token
//!   is accepted, at the upgrade or on `connect`: an active ban or a
//!   revocation that covers the token refuses it with a [`Refusal`].
//! * Before each command, and at each ping so an idle connection learns
//!   too, the session calls [`UserView::sync`], which compares the version
//!   it loaded at with [`Access::version`]. Only when that moved does it
//!   read the user again: a ban closes the session with 4504, a revocation
//!   covering its token with 4503; otherwise it takes the new roles and
//!   forgets the memberships it had checked.
//! * The permission checks ([`super::checks`]) ask the view for the roles
//!   and the memberships it remembers.
//!
//! # When the store is unreachable
//!
//! If the user cannot be read (Redis down), a verified token is let in
//! with the default role and a warning is logged: availability during a
//! Redis outage wins over bans, revocations and extra roles that cannot be
//! read at that moment. The token is still verified (signature, expiry,
//! claims). The session reads again at each ping (`limits.ping_interval`)
//! and when the access version moves, and applies what it finds once a
//! read succeeds, so a ban imposed meanwhile still closes it. A live
//! session whose reload fails keeps what it knew and retries the same way
//! (not at every command, which would make each one wait for the store's
//! timeout). A group membership that cannot be checked is answered `1901
//! unavailable` and not cached.
//!
//! # Memory
//!
//! Every open connection holds a [`UserView`], so it is three words
//! without a heap block for the common user: no roles beyond the default, no
//! revocation, no group channel used. Roles, revocation and checked groups
//! live in one block allocated only when one of them exists.

use std::fmt;

use tokenim_auth::{RoleName, UserClaims};
use tokenim_protocol::{DisconnectCode, ErrorCode};

use super::Access;
use crate::metrics::Metrics;
use crate::store::policy::{Revocation, UserAccess};
use crate::store::{GroupId, Store};

/// At most this many group memberships are remembered per session (a
/// linear list); it is emptied when full, as a session rarely uses more.
const MAX_CACHED_GROUPS: usize = 16;

/// Why a verified token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user is banned: do not retry until the ban ends.
    Banned,
    /// The user's tokens issued before some time were revoked, this one
    /// among them: get a new token.
    Revoked,
}

impl Refusal {
    /// The error code of the refusal (1111 or 1112).
    pub fn code(self) -> ErrorCode {
        match self {
            Refusal::Banned => ErrorCode::UserBanned,
            Refusal::Revoked => ErrorCode::TokenRevoked,
        }
    }

    /// The close code ending a connection refused or closed for it.
    pub fn close_code(self) -> DisconnectCode {
        match self {
            Refusal::Banned => DisconnectCode::Banned,
            Refusal::Revoked => DisconnectCode::TokenRevoked,
        }
    }

    /// The `reason` label of the auth failure metric.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Banned => "banned",
            Refusal::Revoked => "revoked",
        }
    }

    /// Whether `access` refuses a token with `claims`, and why.
    fn of(access: &UserAccess, claims: &UserClaims) -> Option<Self> {
        if access
            .ban
            .as_ref()
            .is_some_and(|b| b.active(crate::clock::unix_millis()))
        {
            Some(Refusal::Banned)
        } else if access
            .revocation
            .is_some_and(|r| r.revokes(claims.issued_at))
        {
            Some(Refusal::Revoked)
        } else {
            None
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Refusal::Banned => "the user is banned",
            Refusal::Revoked => "the token was revoked; get a new one",
        })
    }
}

/// A verified token whose user may connect, and what is known about it.
#[derive(Debug)]
pub struct Admitted {
    /// The token's claims.
    pub claims: UserClaims,
    /// The user's roles and revocation, as of an access version.
    pub view: UserView,
}

/// What a session knows about its user's access.
#[derive(Debug)]
pub struct UserView {
    /// The access version this was read at.
    version: u64,
    /// Whether the last read failed (read again at the next ping).
    stale: bool,
    /// Roles, revocation, checked groups: `None` while all are empty.
    extra: Option<Box<Extra>>,
}

/// The parts of a [`UserView`] most users lack.
#[derive(Debug, Default)]
struct Extra {
    roles: Vec<RoleName>,
    revocation: Option<Revocation>,
    /// Group → whether the user is a member, as checked since `version`.
    groups: Vec<(GroupId, bool)>,
}

impl UserView {
    fn read(access: UserAccess, version: u64) -> Self {
        let roles = access.user.map(|u| u.roles).unwrap_or_default();
        let extra = (!roles.is_empty() || access.revocation.is_some()).then(|| {
            Box::new(Extra {
                roles,
                revocation: access.revocation,
                groups: Vec::new(),
            })
        });
        Self {
            version,
            stale: false,
            extra,
        }
    }

    /// Nothing could be read: the default role, to be read again.
    fn unread(version: u64) -> Self {
        Self {
            version,
            stale: true,
            extra: None,
        }
    }

    pub(super) fn roles(&self) -> Vec<RoleName> {
        self.extra
            .as_ref()
            .map_or_else(Vec::new, |e| e.roles.clone())
    }

    pub(super) fn membership(&self, group: &GroupId) -> Option<bool> {
        let groups = &self.extra.as_ref()?.groups;
        groups.iter().find(|(g, _)| g == group).map(|&(_, m)| m)
    }

    pub(super) fn remember(&mut self, group: GroupId, member: bool) {
        let groups = &mut self.extra.get_or_insert_with(Box::default).groups;
        if groups.len() >= MAX_CACHED_GROUPS {
            groups.clear();
        }
        groups.push((group, member));
    }

    /// Reloads the user's access if the access version moved, or, when
    /// `retry` (at a ping), if the last read failed. `Err` holds why the
    /// session must close; a failed read keeps what was known (see the
    /// module doc).
    pub async fn sync(
        &mut self,
        node: &Access,
        store: &Store,
        claims: &UserClaims,
        retry: bool,
    ) -> Result<(), Refusal> {
        let version = node.version();
        if version == self.version && !(retry && self.stale) {
            return Ok(());
        }
        match store.user_access(&claims.user).await {
            Ok(access) => {
                if let Some(refusal) = Refusal::of(&access, claims) {
                    return Err(refusal);
                }
                *self = UserView::read(access, version);
            }
            Err(e) => {
                tracing::warn!(user = %claims.user, error = %e, "user access not reloaded; keeping the previous roles until the next ping");
                self.version = version;
                self.stale = true;
            }
        }
        Ok(())
    }

    /// Whether the revocation known here covers a token issued at
    /// `issued_at` (seconds).
    pub fn is_revoked(&self, issued_at: Option<u64>) -> bool {
        let revocation = self.extra.as_ref().and_then(|e| e.revocation);
        revocation.is_some_and(|r| r.revokes(issued_at))
    }
}

/// Reads the access of a verified token's user (one store round trip):
/// refuses a banned user or a revoked token; admits with the default role
/// when the store cannot be read (see the module doc).
pub async fn admit(
    node: &Access,
    store: &Store,
    metrics: &Metrics,
    claims: UserClaims,
) -> Result<Admitted, Refusal> {
    let version = node.version();
    let user = claims.user.clone();
    let view = match store.user_access(&user).await {
        Ok(access) => {
            if let Some(refusal) = Refusal::of(&access, &claims) {
                metrics.auth_failure(refusal.reason());
                return Err(refusal);
            }
            UserView::read(access, version)
        }
        Err(e) => {
            tracing::warn!(user = %user, error = %e, "user access not read; admitting the verified token with the default role");
            UserView::unread(version)
        }
    };
    Ok(Admitted { claims, view })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_view_of_a_plain_user_is_three_words_without_a_heap_block() {
        assert!(std::mem::size_of::<UserView>() <= 3 * std::mem::size_of::<usize>());
        let view = UserView::read(UserAccess::default(), 7);
        assert!(view.extra.is_none() && !view.stale);
    }
}
