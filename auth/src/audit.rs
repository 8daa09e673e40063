//! The audit trail: [`AuditRecord`] is what is written for every change to
//! who may do what, and for every failed attempt to authenticate to the
//! HTTP API. Storing and querying records is the gateway store's job.
//!
//! ```
//! use tokenim_auth::{AuditAction, AuditRecord};
//!
//! let r = AuditRecord::new(1_700_000_000_000, "ak_0123456789abcdef", AuditAction::KeyCreated, "ak_fedcba9876543210");
//! assert_eq!(serde_json::to_value(&r).unwrap()["action"], "key.created");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AuditAction {
    /// An API key was created (the bootstrap key included).
    #[serde(rename = "key.created")]
    KeyCreated,
    /// An API key's secret was rotated.
    #[serde(rename = "key.rotated")]
    KeyRotated,
    /// An API key was revoked.
    #[serde(rename = "key.revoked")]
    KeyRevoked,
    /// The configured bootstrap key (`api.admin_key`) was found revoked,
    /// expired or changed at start and made valid again.
    #[serde(rename = "key.restored")]
    KeyRestored,
    /// A permission was granted.
    #[serde(rename = "grant.added")]
    GrantAdded,
    /// A grant was revoked.
    #[serde(rename = "grant.revoked")]
    GrantRevoked,
    /// A role was defined or redefined.
    #[serde(rename = "role.set")]
    RoleSet,
    /// A role was deleted.
    #[serde(rename = "role.deleted")]
    RoleDeleted,
    /// A user's roles changed (an upsert, or a user created with roles).
    #[serde(rename = "user.roles_changed")]
    UserRolesChanged,
    /// Some fields of a user were changed (`PATCH /v1/users/{id}`); the
    /// detail names them and gives the roles before and after.
    #[serde(rename = "user.updated")]
    UserUpdated,
    /// Every token of a user issued so far was revoked.
    #[serde(rename = "user.tokens_revoked")]
    TokensRevoked,
    /// A user was banned.
    #[serde(rename = "user.banned")]
    UserBanned,
    /// A user's ban was lifted.
    #[serde(rename = "user.unbanned")]
    UserUnbanned,
    /// A user's connections were closed.
    #[serde(rename = "user.disconnected")]
    UserDisconnected,
    /// A user was deleted.
    #[serde(rename = "user.deleted")]
    UserDeleted,
    /// A group was deleted.
    #[serde(rename = "group.deleted")]
    GroupDeleted,
    /// Some fields of a group were changed (`PATCH /v1/groups/{id}`); the
    /// detail names them and gives the owner before and after.
    #[serde(rename = "group.updated")]
    GroupUpdated,
    /// An API key's name, scopes or expiry were changed; the detail gives
    /// them before and after.
    #[serde(rename = "key.updated")]
    KeyUpdated,
    /// An API key was deleted: it no longer exists (`DELETE /v1/keys/{id}`).
    #[serde(rename = "key.deleted")]
    KeyDeleted,
    /// A request to the HTTP API failed authentication (the detail says
    /// why).
    #[serde(rename = "auth.failed")]
    AuthFailed,
    /// A batch of users was stored (`POST /v1/users`): mode, counts and the ids changed (at most 100).
    #[serde(rename = "users.batch")]
    UsersBatch,
    /// A batch of groups was stored (`POST /v1/groups`): mode, counts and the ids changed (at most 100).
    #[serde(rename = "groups.batch")]
    GroupsBatch,
    /// Users were added to a group's members.
    #[serde(rename = "group.members_added")]
    MembersAdded,
    /// Users were removed from a group's members.
    #[serde(rename = "group.members_removed")]
    MembersRemoved,
    /// An import job was accepted (its kind, mode and size).
    #[serde(rename = "job.started")]
    JobStarted,
    /// An import job ended (its state and counts).
    #[serde(rename = "job.finished")]
    JobFinished,
    /// A user token was minted through the API (for whom, its lifetime and claims).
    #[serde(rename = "token.minted")]
    TokenMinted,
    /// The server API published (`POST /v1/publish`): its targets and results.
    #[serde(rename = "message.published")]
    MessagePublished,
}

impl AuditAction {
    /// Every action.
    pub const ALL: [AuditAction; 28] = [
        AuditAction::KeyCreated,
        AuditAction::KeyRotated,
        AuditAction::KeyRevoked,
        AuditAction::KeyRestored,
        AuditAction::GrantAdded,
        AuditAction::GrantRevoked,
        AuditAction::RoleSet,
        AuditAction::RoleDeleted,
        AuditAction::UserRolesChanged,
        AuditAction::UserUpdated,
        AuditAction::TokensRevoked,
        AuditAction::UserBanned,
        AuditAction::UserUnbanned,
        AuditAction::UserDisconnected,
        AuditAction::UserDeleted,
        AuditAction::GroupDeleted,
        AuditAction::GroupUpdated,
        AuditAction::KeyUpdated,
        AuditAction::KeyDeleted,
        AuditAction::AuthFailed,
        AuditAction::UsersBatch,
        AuditAction::GroupsBatch,
        AuditAction::MembersAdded,
        AuditAction::MembersRemoved,
        AuditAction::JobStarted,
        AuditAction::JobFinished,
        AuditAction::TokenMinted,
        AuditAction::MessagePublished,
    ];

    /// The action's name, e.g. `key.created`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::KeyCreated => "key.created",
            AuditAction::KeyRotated => "key.rotated",
            AuditAction::KeyRevoked => "key.revoked",
            AuditAction::KeyRestored => "key.restored",
            AuditAction::GrantAdded => "grant.added",
            AuditAction::GrantRevoked => "grant.revoked",
            AuditAction::RoleSet => "role.set",
            AuditAction::RoleDeleted => "role.deleted",
            AuditAction::UserRolesChanged => "user.roles_changed",
            AuditAction::UserUpdated => "user.updated",
            AuditAction::TokensRevoked => "user.tokens_revoked",
            AuditAction::UserBanned => "user.banned",
            AuditAction::UserUnbanned => "user.unbanned",
            AuditAction::UserDisconnected => "user.disconnected",
            AuditAction::UserDeleted => "user.deleted",
            AuditAction::GroupDeleted => "group.deleted",
            AuditAction::GroupUpdated => "group.updated",
            AuditAction::KeyUpdated => "key.updated",
            AuditAction::KeyDeleted => "key.deleted",
            AuditAction::AuthFailed => "auth.failed",
            AuditAction::UsersBatch => "users.batch",
            AuditAction::GroupsBatch => "groups.batch",
            AuditAction::MembersAdded => "group.members_added",
            AuditAction::MembersRemoved => "group.members_removed",
            AuditAction::JobStarted => "job.started",
            AuditAction::JobFinished => "job.finished",
            AuditAction::TokenMinted => "token.minted",
            AuditAction::MessagePublished => "message.published",
        }
    }

    /// The action named `s`.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Position in the log (assigned when stored; 0 before).
    #[serde(default)]
    pub id: u64,
    /// When, in milliseconds since the Unix epoch.
    pub time: u64,
    /// Who: an API key id, `config` (start-up), or `anonymous`.
    pub actor: String,
    /// What.
    pub action: AuditAction,
    /// On what: a key id, a user id, a role, a grant's subject.
    pub target: String,
    /// The client address the request came from, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Anything else worth keeping (the grant, the scopes, the reason).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub detail: serde_json::Value,
}

impl AuditRecord {
    /// A record without source or detail.
    pub fn new(time: u64, actor: &str, action: AuditAction, target: &str) -> Self {
        Self {
            id: 0,
            time,
            actor: actor.to_owned(),
            action,
            target: target.to_owned(),
            source: None,
            detail: serde_json::Value::Null,
        }
    }
}
