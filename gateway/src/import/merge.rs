//! Merging: a stored record with only the fields an item gave changed
//! (`mode=merge` of the batches, `PATCH` of one record).
//!
//! A field given replaces the stored one; `name: null` resets the name to
//! the id, `avatar_url: null` / `owner: null` remove them, `roles: null`
//! empties the roles. `metadata` is merged as RFC 7386 says: key by key
//! (nested objects too), a key given `null` removed, `metadata: null`
//! clearing it all. The merged metadata must still fit its limit. The
//! creation time of the stored record stays.

use serde_json::Value;
use tokenim_protocol::ErrorCode;

use super::fields::check_metadata;
use super::item::{Given, RecordInput, from_json};
use super::{ItemError, RecordLimits};
use crate::store::{Group, Metadata, User};

/// A merge patch of record `id` (the body of a `PATCH`: one JSON object
/// whose `id`, when given, is `id`), read as an item of `mode=merge`: the
/// record it describes, checked as a created one is, and the fields it
/// gives. A body that is not a JSON object is [`ErrorCode::InvalidBody`].
pub fn read_patch<I: RecordInput>(
    id: &str,
    body: &[u8],
    limits: &RecordLimits,
    now_ms: u64,
) -> Result<(I::Record, Given), ItemError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ItemError::new(ErrorCode::InvalidBody, format!("not JSON: {e}")))?;
    let Value::Object(mut map) = value else {
        return Err(ItemError::new(
            ErrorCode::InvalidBody,
            "a merge patch is a JSON object",
        ));
    };
    match map.get("id") {
        None => {
            map.insert("id".into(), id.into());
        }
        Some(given) if given.as_str() == Some(id) => {}
        Some(_) => return Err(ItemError::field("id", "an id cannot be changed")),
    }
    let (_, given, input) = from_json::<I>(Value::Object(map));
    let record = input?.into_record(now_ms, limits)?;
    Ok((record, given))
}

/// Where each field is in `UserInput::COLUMNS` and `GroupInput::COLUMNS`.
const NAME: usize = 1;
const AVATAR_URL: usize = 2;
const OWNER: usize = 2;
const ROLES: usize = 3;
const METADATA: usize = 4;

/// `old` with the fields of `new` that `given` names.
pub fn merge_user(
    old: &User,
    new: &User,
    given: Given,
    limits: &RecordLimits,
) -> Result<User, ItemError> {
    let mut user = old.clone();
    if given.has(NAME) {
        user.name.clone_from(&new.name);
    }
    if given.has(AVATAR_URL) {
        user.avatar_url.clone_from(&new.avatar_url);
    }
    if given.has(ROLES) {
        user.roles.clone_from(&new.roles);
    }
    user.metadata = merged_metadata(&old.metadata, &new.metadata, given, limits)?;
    user.updated_at = new.updated_at.max(old.updated_at);
    Ok(user)
}

/// `old` with the fields of `new` that `given` names (members are not
/// part of the record: the caller adds the ones given).
pub fn merge_group(
    old: &Group,
    new: &Group,
    given: Given,
    limits: &RecordLimits,
) -> Result<Group, ItemError> {
    let mut group = old.clone();
    if given.has(NAME) {
        group.name.clone_from(&new.name);
    }
    if given.has(OWNER) {
        group.owner.clone_from(&new.owner);
    }
    group.metadata = merged_metadata(&old.metadata, &new.metadata, given, limits)?;
    group.updated_at = new.updated_at.max(old.updated_at);
    Ok(group)
}

fn merged_metadata(
    old: &Metadata,
    new: &Metadata,
    given: Given,
    limits: &RecordLimits,
) -> Result<Metadata, ItemError> {
    if !given.has(METADATA) {
        return Ok(old.clone());
    }
    if given.is_null(METADATA) {
        return Ok(Metadata::new());
    }
    let mut target = Value::Object(old.clone());
    merge_patch(&mut target, &Value::Object(new.clone()));
    let Value::Object(merged) = target else {
        unreachable!("an object merged into an object stays one")
    };
    check_metadata(&merged, limits.max_metadata_bytes)?;
    Ok(merged)
}

/// RFC 7386: `patch` merged into `target` (objects key by key, `null`
/// removing a key, anything else replacing).
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Some(fields) = patch.as_object() else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let map = target.as_object_mut().expect("made an object");
    for (key, value) in fields {
        if value.is_null() {
            map.remove(key);
        } else {
            merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::import::item::from_json;
    use crate::import::{GroupInput, RecordInput, UserInput};

    fn read<I: RecordInput>(value: Value) -> (I::Record, Given) {
        let (_, given, input) = from_json::<I>(value);
        let record = input
            .and_then(|i| i.into_record(9, &RecordLimits::default()))
            .unwrap();
        (record, given)
    }

    fn stored() -> User {
        read::<UserInput>(json!({
            "id": "amy", "name": "Amy", "avatar_url": "https://x.io/a.png",
            "roles": ["student"], "metadata": {"class": "7b", "tags": {"a": 1, "b": 2}},
        }))
        .0
    }

    #[test]
    fn the_columns_are_where_the_merge_looks() {
        assert_eq!(UserInput::COLUMNS[NAME], "name");
        assert_eq!(UserInput::COLUMNS[AVATAR_URL], "avatar_url");
        assert_eq!(UserInput::COLUMNS[ROLES], "roles");
        assert_eq!(UserInput::COLUMNS[METADATA], "metadata");
        assert_eq!(GroupInput::COLUMNS[NAME], "name");
        assert_eq!(GroupInput::COLUMNS[OWNER], "owner");
        assert_eq!(GroupInput::COLUMNS[METADATA], "metadata");
    }

    #[test]
    fn only_the_fields_given_change() {
        let old = stored();
        let (new, given) = read::<UserInput>(json!({"id": "amy", "roles": ["teacher"]}));
        let user = merge_user(&old, &new, given, &RecordLimits::default()).unwrap();
        assert_eq!(user.roles[0].as_str(), "teacher");
        assert_eq!((user.name.as_str(), user.metadata.len()), ("Amy", 2));
        assert_eq!(user.avatar_url, old.avatar_url);
        assert_eq!(user.created_at, old.created_at);
    }

    #[test]
    fn nulls_reset_and_metadata_merges_key_by_key() {
        let old = stored();
        let (new, given) = read::<UserInput>(json!({
            "id": "amy", "name": null, "avatar_url": null,
            "metadata": {"class": null, "tags": {"b": 3}, "new": true},
        }));
        let user = merge_user(&old, &new, given, &RecordLimits::default()).unwrap();
        assert_eq!(user.name, "amy");
        assert_eq!(user.avatar_url, None);
        assert_eq!(
            Value::Object(user.metadata),
            json!({"tags": {"a": 1, "b": 3}, "new": true})
        );
        let (new, given) = read::<UserInput>(json!({"id": "amy", "metadata": null}));
        let user = merge_user(&old, &new, given, &RecordLimits::default()).unwrap();
        assert!(user.metadata.is_empty());
    }

    #[test]
    fn merged_metadata_must_still_fit() {
        let limits = RecordLimits {
            max_metadata_bytes: 60,
            ..RecordLimits::default()
        };
        let old = stored();
        let (new, given) =
            read::<UserInput>(json!({"id": "amy", "metadata": {"x": "y".repeat(30)}}));
        let e = merge_user(&old, &new, given, &limits).unwrap_err();
        assert!(e.message.contains("field `metadata`"), "{}", e.message);
    }

    #[test]
    fn a_group_keeps_what_is_not_given() {
        let (old, _) = read::<GroupInput>(
            json!({"id": "g", "name": "G", "owner": "amy", "metadata": {"k": 1}}),
        );
        let (new, given) = read::<GroupInput>(json!({"id": "g", "owner": null}));
        let group = merge_group(&old.group, &new.group, given, &RecordLimits::default()).unwrap();
        assert_eq!(group.owner, None);
        assert_eq!((group.name.as_str(), group.metadata.len()), ("G", 1));
    }
}
