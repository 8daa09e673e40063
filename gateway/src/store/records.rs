//! The records the store keeps for users and groups, and what a batch
//! reports for each item. Validation of what callers send lives in
//! [`crate::import`]; everything here is already valid.

use serde::{Deserialize, Serialize};
use tokenim_auth::RoleName;
use tokenim_protocol::{ErrorBody, UserId};

/// Free-form metadata of a user or group (a JSON object).
pub type Metadata = serde_json::Map<String, serde_json::Value>;

/// A group's id: the grammar of a user id (1 to 64 bytes of
/// `A-Z a-z 0-9 _ - . @`). Its channel is `groups.<id>`.
pub type GroupId = UserId;

/// Prefix of a group's channel: only members (and holders of
/// `manage_group`) may subscribe or publish there.
pub const GROUP_CHANNEL_PREFIX: &str = "groups.";

/// A user as stored. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    /// The id (the `sub` of the user's tokens).
    #[schema(value_type = crate::schema::UserId)]
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Picture URL (http or https).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub avatar_url: Option<String>,
    /// Roles held; none means the default role `user`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<crate::schema::RoleName>)]
    pub roles: Vec<RoleName>,
    /// Anything the application wants to keep with the user.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// When it was created.
    #[serde(default)]
    pub created_at: u64,
    /// When it last changed.
    #[serde(default)]
    pub updated_at: u64,
}

impl User {
    /// Whether `other` says the same (ignoring times).
    pub fn same_content(&self, other: &User) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.avatar_url == other.avatar_url
            && self.roles == other.roles
            && self.metadata == other.metadata
    }
}

/// A group as stored (its members are kept apart, one entry each).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Group {
    /// The id.
    #[schema(value_type = crate::schema::UserId)]
    pub id: GroupId,
    /// Display name.
    pub name: String,
    /// The user who owns it, if any (also a member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schema::UserId>, nullable = false)]
    pub owner: Option<UserId>,
    /// Anything the application wants to keep with the group.
    #[serde(default, skip_serializing_if = "Metadata::is_empty")]
    #[schema(value_type = Object)]
    pub metadata: Metadata,
    /// When it was created.
    #[serde(default)]
    pub created_at: u64,
    /// When it last changed.
    #[serde(default)]
    pub updated_at: u64,
}

impl Group {
    /// Whether `other` says the same (ignoring times).
    pub fn same_content(&self, other: &Group) -> bool {
        self.id == other.id
            && self.name == other.name
            && self.owner == other.owner
            && self.metadata == other.metadata
    }
}

/// A group to create, with its first members.
#[derive(Debug, Clone, PartialEq)]
pub struct NewGroup {
    /// The group.
    pub group: Group,
    /// Its members (the owner is added if absent), without duplicates.
    pub members: Vec<UserId>,
}

/// What happened to one item of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    /// It was created.
    Created,
    /// It already existed and was left unchanged.
    Exists,
    /// It existed and was updated (upsert mode).
    Updated,
    /// It was refused; `error` says why. Nothing of it was stored.
    Error,
}

/// The result of one item of a batch, in input order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ItemResult {
    /// Position in the input (0-based; for CSV, the data row).
    pub index: usize,
    /// The item's id, when it had a readable one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id: Option<String>,
    /// What happened.
    pub status: ItemStatus,
    /// Why it was refused (`status` = `error`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schema::ErrorBody>, nullable = false)]
    pub error: Option<ErrorBody>,
}
