//! What a batch does with an item whose id exists ([`OnExisting`]), and
//! read-merge-write of records with compare-and-swap
//! ([`Store::merge_users`], [`Store::merge_groups`], a whole batch in one
//! read and one write): a merge never loses a change another writer made
//! meanwhile.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokenim_protocol::{ErrorCode, UserId};

use super::kv::{Swap, Table};
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
        let mut merged = self
            .merge_users(std::slice::from_ref(id), |_, old| merge(old))
            .await?;
        Ok(merged.pop().expect("one outcome per user"))
    }

    /// Merges into each user of `ids` what `merge(i, old)` makes of it (one
    /// read and one write for all, then again for those another writer
    /// changed meanwhile); moves the access version when roles change.
    pub async fn merge_users(
        &self,
        ids: &[UserId],
        merge: impl Fn(usize, &User) -> Result<User, Refusal>,
    ) -> Result<Vec<Merged<User>>, StoreError> {
        let keys: Vec<&str> = ids.iter().map(UserId::as_str).collect();
        let merged = self
            .merge_records(Table::Users, &keys, merge, User::same_content)
            .await?;
        if merged
            .iter()
            .any(|m| matches!(m, Merged::Changed { before, after } if before.roles != after.roles))
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
        let mut merged = self
            .merge_groups(std::slice::from_ref(id), |_, old| merge(old))
            .await?;
        Ok(merged.pop().expect("one outcome per group"))
    }

    /// [`Store::merge_group`] of each of `ids`, as [`Store::merge_users`].
    pub async fn merge_groups(
        &self,
        ids: &[GroupId],
        merge: impl Fn(usize, &Group) -> Result<Group, Refusal>,
    ) -> Result<Vec<Merged<Group>>, StoreError> {
        let keys: Vec<&str> = ids.iter().map(GroupId::as_str).collect();
        self.merge_records(Table::Groups, &keys, merge, Group::same_content)
            .await
    }

    /// Read, merge, compare-and-swap of every record at `keys`: a round
    /// reads those still to do at once and swaps the changed ones in one
    /// atomic step; a record another writer changed meanwhile is merged
    /// again in the next round, at most [`MERGE_ATTEMPTS`] rounds.
    async fn merge_records<T: Serialize + DeserializeOwned>(
        &self,
        table: Table,
        keys: &[&str],
        merge: impl Fn(usize, &T) -> Result<T, Refusal>,
        same: fn(&T, &T) -> bool,
    ) -> Result<Vec<Merged<T>>, StoreError> {
        let mut out: Vec<Option<Merged<T>>> = keys.iter().map(|_| None).collect();
        let mut pending: Vec<usize> = (0..keys.len()).collect();
        for _ in 0..MERGE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let reads = pending
                .iter()
                .map(|&i| (table, keys[i].to_owned()))
                .collect();
            let found = self.kv.get_multi(reads).await?;
            let (mut swaps, mut swapping) = (Vec::new(), Vec::new());
            for (&i, raw) in pending.iter().zip(found) {
                let Some(raw) = raw else {
                    out[i] = Some(Merged::Missing);
                    continue;
                };
                let old: T = decode(&raw)?;
                match merge(i, &old) {
                    Err(refusal) => out[i] = Some(Merged::Refused(refusal)),
                    Ok(new) if same(&old, &new) => out[i] = Some(Merged::Unchanged(old)),
                    Ok(new) => {
                        swaps.push(Swap {
                            key: keys[i].to_owned(),
                            expected: Some(raw),
                            new: Some(encode(&new)),
                        });
                        swapping.push((i, old, new));
                    }
                }
            }
            let done = self.kv.compare_and_swap_many(table, swaps).await?;
            pending.clear();
            for ((i, before, after), done) in swapping.into_iter().zip(done) {
                if done {
                    out[i] = Some(Merged::Changed { before, after });
                } else {
                    pending.push(i);
                }
            }
        }
        for i in pending {
            out[i] = Some(Merged::Refused((
                ErrorCode::Conflict,
                format!(
                    "{} changed {MERGE_ATTEMPTS} times while being merged; retry",
                    keys[i]
                ),
            )));
        }
        Ok(out
            .into_iter()
            .map(|m| m.expect("every record has an outcome"))
            .collect())
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
