//! What a caller sends for one user or group ([`UserInput`],
//! [`GroupInput`]), and the rules that turn it into a stored record.
//!
//! Every field's failure names the field. Codes: a bad user id is
//! [`ErrorCode::InvalidUser`], a bad group id [`ErrorCode::InvalidGroup`],
//! anything else (including a missing or non-string `id`, an unknown
//! field, a bad member or owner id) [`ErrorCode::InvalidField`]. The rules
//! for each field are in [`super::fields`].

use serde::Deserialize;
use serde::de::{self, Deserializer};
use tokenim_auth::RoleName;
use tokenim_protocol::{ErrorCode, UserId};

use super::fields::{check_avatar_url, check_metadata, check_name, dedupe};
use super::{ItemError, echo_id};
use crate::store::{Group, GroupId, Metadata, NewGroup, User};

/// Bounds on one record. Both come from the configured limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest `metadata` object, serialized as compact JSON, in bytes.
    /// Default 4096.
    pub max_metadata_bytes: usize,
    /// Most members of a group, counted after duplicates are removed and
    /// the owner is added. Default 1000.
    pub max_members: usize,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            max_metadata_bytes: 4096,
            max_members: 1000,
        }
    }
}

/// A user as a caller sends it. Unknown fields are refused; `null` is the
/// same as absent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserInput {
    /// The user id (checked by [`UserInput::validate`]).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Display name; absent means the id.
    #[serde(default, deserialize_with = "de_name")]
    pub name: Option<String>,
    /// Picture URL (http or https).
    #[serde(default, deserialize_with = "de_avatar_url")]
    pub avatar_url: Option<String>,
    /// Roles held.
    #[serde(default, deserialize_with = "de_roles")]
    pub roles: Vec<RoleName>,
    /// A JSON object kept with the user.
    #[serde(default, deserialize_with = "de_metadata")]
    pub metadata: Metadata,
}

/// A group as a caller sends it. Unknown fields are refused; `null` is the
/// same as absent.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupInput {
    /// The group id (checked by [`GroupInput::validate`]).
    #[serde(deserialize_with = "de_id")]
    pub id: String,
    /// Display name; absent means the id.
    #[serde(default, deserialize_with = "de_name")]
    pub name: Option<String>,
    /// The owning user, also made a member.
    #[serde(default, deserialize_with = "de_owner")]
    pub owner: Option<UserId>,
    /// The first members, in order; repeats are dropped.
    #[serde(default, deserialize_with = "de_members")]
    pub members: Vec<UserId>,
    /// A JSON object kept with the group.
    #[serde(default, deserialize_with = "de_metadata")]
    pub metadata: Metadata,
}

impl UserInput {
    /// Checks every field and builds the record, created and updated at
    /// `now_ms`. Repeated roles are dropped.
    pub fn validate(self, now_ms: u64, limits: &RecordLimits) -> Result<User, ItemError> {
        let id = UserId::new(&self.id)
            .map_err(|e| ItemError::new(ErrorCode::InvalidUser, e.to_string()))?;
        let name = check_name(self.name, &id)?;
        if let Some(url) = &self.avatar_url {
            check_avatar_url(url)?;
        }
        check_metadata(&self.metadata, limits.max_metadata_bytes)?;
        Ok(User {
            id,
            name,
            avatar_url: self.avatar_url,
            roles: dedupe(self.roles),
            metadata: self.metadata,
            created_at: now_ms,
            updated_at: now_ms,
        })
    }
}

impl GroupInput {
    /// Checks every field and builds the group, created and updated at
    /// `now_ms`. Members keep their order without repeats; the owner is
    /// appended when not among them.
    pub fn validate(self, now_ms: u64, limits: &RecordLimits) -> Result<NewGroup, ItemError> {
        let id = GroupId::new(&self.id).map_err(|_| {
            ItemError::new(
                ErrorCode::InvalidGroup,
                format!(
                    "invalid group id {:?}: 1 to 64 bytes of A-Z a-z 0-9 _ - . @",
                    echo_id(&self.id)
                ),
            )
        })?;
        let name = check_name(self.name, &id)?;
        check_metadata(&self.metadata, limits.max_metadata_bytes)?;
        let mut members = self.members;
        members.extend(self.owner.clone());
        let members = dedupe(members);
        if members.len() > limits.max_members {
            return Err(ItemError::field(
                "members",
                format_args!(
                    "{} members (owner included), at most {} allowed",
                    members.len(),
                    limits.max_members
                ),
            ));
        }
        let group = Group {
            id,
            name,
            owner: self.owner,
            metadata: self.metadata,
            created_at: now_ms,
            updated_at: now_ms,
        };
        Ok(NewGroup { group, members })
    }
}

/// Deserializes `T`, naming `field` in the error.
fn named<'de, D: Deserializer<'de>, T: Deserialize<'de>>(field: &str, d: D) -> Result<T, D::Error> {
    T::deserialize(d).map_err(|e| de::Error::custom(format_args!("field `{field}`: {e}")))
}

fn de_id<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    named("id", d)
}

fn de_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    named("name", d)
}

fn de_avatar_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    named("avatar_url", d)
}

fn de_owner<'de, D: Deserializer<'de>>(d: D) -> Result<Option<UserId>, D::Error> {
    named("owner", d)
}

fn de_roles<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RoleName>, D::Error> {
    named::<_, Option<_>>("roles", d).map(Option::unwrap_or_default)
}

fn de_members<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<UserId>, D::Error> {
    named::<_, Option<_>>("members", d).map(Option::unwrap_or_default)
}

fn de_metadata<'de, D: Deserializer<'de>>(d: D) -> Result<Metadata, D::Error> {
    named::<_, Option<_>>("metadata", d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::import::item::from_json;

    fn user(value: Value) -> Result<User, ItemError> {
        from_json::<UserInput>(value)
            .2
            .and_then(|i| i.validate(7, &RecordLimits::default()))
    }

    fn group(value: Value, limits: &RecordLimits) -> Result<NewGroup, ItemError> {
        from_json::<GroupInput>(value)
            .2
            .and_then(|i| i.validate(7, limits))
    }

    fn assert_err(result: Result<impl std::fmt::Debug, ItemError>, code: ErrorCode, text: &str) {
        let e = result.unwrap_err();
        assert_eq!(e.code, code, "{}", e.message);
        assert!(e.message.contains(text), "want {text:?} in {:?}", e.message);
    }

    #[test]
    fn a_minimal_user_gets_defaults_and_times() {
        let u = user(json!({"id": "alice", "name": null, "roles": null})).unwrap();
        assert_eq!(u.id.as_str(), "alice");
        assert_eq!(u.name, "alice");
        assert!(u.avatar_url.is_none() && u.roles.is_empty() && u.metadata.is_empty());
        assert_eq!((u.created_at, u.updated_at), (7, 7));
    }

    #[test]
    fn a_full_user_keeps_every_field() {
        let u = user(json!({
            "id": "bob", "name": "Bob B.", "avatar_url": "https://x.io/b.png",
            "roles": ["admin", "mod", "admin"], "metadata": {"team": "red"},
        }))
        .unwrap();
        assert_eq!(u.name, "Bob B.");
        assert_eq!(u.avatar_url.as_deref(), Some("https://x.io/b.png"));
        assert_eq!(
            u.roles,
            [
                RoleName::new("admin").unwrap(),
                RoleName::new("mod").unwrap()
            ]
        );
        assert_eq!(u.metadata["team"], "red");
    }

    #[test]
    fn every_user_item_error_kind() {
        let f = ErrorCode::InvalidField;
        assert_err(
            user(json!({"id": "no spaces"})),
            ErrorCode::InvalidUser,
            "invalid user id",
        );
        assert_err(
            user(json!({"id": ""})),
            ErrorCode::InvalidUser,
            "invalid user id",
        );
        assert_err(user(json!({})), f, "missing field `id`");
        assert_err(user(json!({"id": 5})), f, "field `id`: invalid type");
        assert_err(
            user(json!({"id": "a", "name": 5})),
            f,
            "field `name`: invalid type",
        );
        assert_err(
            user(json!({"id": "a", "name": "a\u{7}"})),
            f,
            "field `name`",
        );
        assert_err(
            user(json!({"id": "a", "avatar_url": "ftp://x"})),
            f,
            "field `avatar_url`",
        );
        assert_err(
            user(json!({"id": "a", "roles": "admin"})),
            f,
            "field `roles`: invalid type",
        );
        assert_err(
            user(json!({"id": "a", "roles": ["Admin"]})),
            f,
            "field `roles`: invalid role name",
        );
        assert_err(
            user(json!({"id": "a", "metadata": [1]})),
            f,
            "field `metadata`: invalid type",
        );
        let big = json!({"id": "a", "metadata": {"k": "v".repeat(5000)}});
        assert_err(user(big), f, "field `metadata`: larger than 4096 bytes");
        assert_err(
            user(json!({"id": "a", "email": "x"})),
            f,
            "unknown field `email`",
        );
        assert_err(
            user(json!(["a"])),
            f,
            "item is an array, expected a JSON object",
        );
    }

    #[test]
    fn group_members_are_deduped_and_include_the_owner() {
        let g = group(
            json!({"id": "team", "owner": "bob", "members": ["amy", "cat", "amy"], "metadata": {"a": 1}}),
            &RecordLimits::default(),
        )
        .unwrap();
        let members: Vec<_> = g.members.iter().map(UserId::as_str).collect();
        assert_eq!(members, ["amy", "cat", "bob"]);
        assert_eq!(g.group.name, "team");
        assert_eq!(g.group.owner.as_ref().map(UserId::as_str), Some("bob"));
        assert_eq!(g.group.created_at, 7);
        let g = group(
            json!({"id": "t", "owner": "bob", "members": ["bob", "amy"]}),
            &RecordLimits::default(),
        )
        .unwrap();
        let members: Vec<_> = g.members.iter().map(UserId::as_str).collect();
        assert_eq!(members, ["bob", "amy"]);
    }

    #[test]
    fn every_group_item_error_kind() {
        let f = ErrorCode::InvalidField;
        let limits = RecordLimits {
            max_members: 2,
            ..RecordLimits::default()
        };
        assert_err(
            group(json!({"id": "a b"}), &limits),
            ErrorCode::InvalidGroup,
            "invalid group id \"a b\"",
        );
        assert_err(
            group(json!({"id": "g", "owner": "a b"}), &limits),
            f,
            "field `owner`: invalid user id",
        );
        assert_err(
            group(json!({"id": "g", "members": ["ok", "a/b"]}), &limits),
            f,
            "field `members`",
        );
        assert_err(
            group(json!({"id": "g", "members": "amy"}), &limits),
            f,
            "field `members`: invalid type",
        );
        let three = json!({"id": "g", "owner": "c", "members": ["a", "b"]});
        assert_err(
            group(three, &limits),
            f,
            "3 members (owner included), at most 2",
        );
        let repeats = json!({"id": "g", "members": ["a", "b", "a", "b"]});
        assert_eq!(group(repeats, &limits).unwrap().members.len(), 2);
        assert_err(
            group(json!({"id": "g", "owner": "a", "extra": 1}), &limits),
            f,
            "unknown field `extra`",
        );
        assert_err(
            group(json!({"id": "g", "name": "x".repeat(300)}), &limits),
            f,
            "field `name`",
        );
    }
}
