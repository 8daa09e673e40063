//! What a batch does with an item whose id exists ([`OnExisting`]), and
//! read-merge-write of one record with compare-and-swap
//! ([`Store::merge_user`], [`Store::merge_group`]): a merge never loses a
//! change another writer made meanwhile.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokenim_protocol::{ErrorCode, UserId};

use super::kv::Table;
use super::records::{Group, GroupId, ItemStatus, User};
use super::{Store, StoreError, decode, encode};

/// Why one item was refused: its code and message.
pub type Refusal = (ErrorCode, String);

/// What happened to one item of a batch, or why it was refused.
pub type Outcome = Result<ItemStatus, Refusal>;

/// Makes the record to store of item `index` from the stored one.
pub type MergeFn<'a, T> = dyn Fn(usize, &T) -> Result<T, Refusal> + Send + Sync + 'a;

/// `?mode=create` (the default: existing items are left alone),
/// `?mode=upsert` (existing items are replaced whole) or `?mode=merge`
/// (only the fields an item gives are changed).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Create only.
    #[default]
    Create,
    /// Create, or replace the whole record.
    Upsert,
    /// Create, or change only the fields given.
    Merge,
}

impl Mode {
    /// What the store does with an item that exists, `merge` making the
    /// merged record.
    pub fn existing<'a, T>(self, merge: &'a MergeFn<'a, T>) -> OnExisting<'a, T> {
        match self {
            Mode::Create => OnExisting::Keep,
            Mode::Upsert => OnExisting::Replace,
            Mode::Merge => OnExisting::Merge(merge),
        }
    }
}

/// What a batch does with an item whose id exists.
pub enum OnExisting<'a, T> {
    /// Leave it as it is (`exists`): `mode=create`.
    Keep,
    /// Replace it (`updated`, or `exists` when nothing differs):
    /// `mode=upsert`.
    Replace,
    /// Store what the function makes of it (`updated`, `exists` when
    /// nothing differs, or the function's refusal): `mode=merge`.
    Merge(&'a MergeFn<'a, T>),
}

impl<T> std::fmt::Debug for OnExisting<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            OnExisting::Keep => "Keep",
            OnExisting::Replace => "Replace",
            OnExisting::Merge(_) => "Merge",
        })
    }
}

/// What [`Store::merge_user`] / [`Store::merge_group`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum Merged<T> {
    /// No such record.
    Missing,
    /// The merge refused it, or it kept changing under the merge
    /// ([`ErrorCode::Conflict`]); nothing was stored.
    Refused(Refusal),
    /// The merge changed nothing.
    Unchanged(T),
    /// Stored.
    Changed {
        /// The record before.
        before: T,
        /// The record stored.
        after: T,
    },
}

/// How often a merge is tried again when the record changed meanwhile.
const MERGE_ATTEMPTS: usize = 8;

impl Store {
    /// Merges into user `id` what `merge` makes of it; moves the access
    /// version when its roles change.
    pub async fn merge_user(
        &self,
        id: &UserId,
        merge: impl Fn(&User) -> Result<User, Refusal>,
    ) -> Result<Merged<User>, StoreError> {
        let merged = self
            .merge_record(Table::Users, id.as_str(), merge, User::same_content)
            .await?;
        if let Merged::Changed { before, after } = &merged
            && before.roles != after.roles
        {
            self.bump_access().await?;
        }
        Ok(merged)
    }

    /// Merges into group `id` what `merge` makes of it (its record only:
    /// members are added apart).
    pub async fn merge_group(
        &self,
        id: &GroupId,
        merge: impl Fn(&Group) -> Result<Group, Refusal>,
    ) -> Result<Merged<Group>, StoreError> {
        self.merge_record(Table::Groups, id.as_str(), merge, Group::same_content)
            .await
    }

    async fn merge_record<T: Serialize + DeserializeOwned>(
        &self,
        table: Table,
        key: &str,
        merge: impl Fn(&T) -> Result<T, Refusal>,
        same: fn(&T, &T) -> bool,
    ) -> Result<Merged<T>, StoreError> {
        for _ in 0..MERGE_ATTEMPTS {
            let Some(raw) = self.kv.get(table, key).await? else {
                return Ok(Merged::Missing);
            };
            let old: T = decode(&raw)?;
            let new = match merge(&old) {
                Ok(new) => new,
                Err(refusal) => return Ok(Merged::Refused(refusal)),
            };
            if same(&old, &new) {
                return Ok(Merged::Unchanged(old));
            }
            let swapped = self
                .kv
                .compare_and_swap(table, key, Some(raw), Some(encode(&new)))
                .await?;
            if swapped {
                return Ok(Merged::Changed {
                    before: old,
                    after: new,
                });
            }
        }
        Ok(Merged::Refused((
            ErrorCode::Conflict,
            format!("{key} changed {MERGE_ATTEMPTS} times while being merged; retry"),
        )))
    }
}

impl<T> Merged<T> {
    /// The item's outcome in a batch.
    pub fn outcome(self) -> Outcome {
        match self {
            Merged::Missing => Err((
                ErrorCode::Conflict,
                "deleted while being merged; retry".into(),
            )),
            Merged::Refused(refusal) => Err(refusal),
            Merged::Unchanged(_) => Ok(ItemStatus::Exists),
            Merged::Changed { .. } => Ok(ItemStatus::Updated),
        }
    }
}
