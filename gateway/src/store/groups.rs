//! Groups and their members. A membership is kept twice, `group/user` and
//! `user/group`, written together, so both "members of a group" and
//! "groups of a user" are one prefix scan.

use tokenim_protocol::{ErrorCode, UserId};

use super::kv::{NewItem, Op, SEP, Table};
use super::merge::{OnExisting, Outcome};
use super::records::{Group, GroupId, ItemStatus, NewGroup};
use super::users::MAX_PAGE;
use super::{Store, StoreError, decode, encode};

/// A membership as stored (its value; the key says who and where).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Membership {
    /// When it was added (ms).
    since: u64,
}

fn membership_ops(group: &GroupId, user: &UserId, since: u64) -> [Op; 2] {
    let value = encode(&Membership { since });
    [
        Op::Put(Table::Members, format!("{group}{SEP}{user}"), value.clone()),
        Op::Put(Table::UserGroups, format!("{user}{SEP}{group}"), value),
    ]
}

impl Store {
    /// Which of `users` are not known users.
    pub async fn unknown_users(&self, users: &[UserId]) -> Result<Vec<UserId>, StoreError> {
        let keys = users
            .iter()
            .map(|u| (Table::Users, u.as_str().to_owned()))
            .collect();
        let found = self.kv.get_multi(keys).await?;
        Ok(users
            .iter()
            .zip(found)
            .filter(|(_, v)| v.is_none())
            .map(|(u, _)| u.clone())
            .collect())
    }

    /// Stores valid, distinct groups with their members. A group whose
    /// owner or a member is not a known user is refused
    /// (`unknown_member`). An existing group is left as it is
    /// ([`OnExisting::Keep`]), has its name, owner and metadata replaced
    /// (`Replace`) or merged (`Merge`); in both its listed members are
    /// added (none removed).
    pub async fn create_groups(
        &self,
        groups: Vec<NewGroup>,
        existing: OnExisting<'_, Group>,
        now: u64,
    ) -> Result<Vec<Outcome>, StoreError> {
        let mut everyone: Vec<UserId> = groups.iter().flat_map(|g| g.members.clone()).collect();
        everyone.sort();
        everyone.dedup();
        let unknown = self.unknown_users(&everyone).await?;
        let mut outcomes: Vec<Option<Outcome>> = vec![None; groups.len()];
        let mut items = Vec::new();
        let mut candidates = Vec::new();
        for (i, g) in groups.iter().enumerate() {
            if let Some(u) = g.members.iter().find(|m| unknown.contains(m)) {
                outcomes[i] = Some(Err((
                    ErrorCode::UnknownMember,
                    format!("{u} is not a known user; create the user first"),
                )));
                continue;
            }
            let also = g
                .members
                .iter()
                .flat_map(|m| membership_ops(&g.group.id, m, now))
                .collect();
            items.push(NewItem {
                key: g.group.id.as_str().to_owned(),
                value: encode(&g.group),
                also,
            });
            candidates.push(i);
        }
        let inserted = self.kv.insert_new(Table::Groups, items).await?;
        for (&i, new) in candidates.iter().zip(inserted) {
            outcomes[i] = Some(Ok(if new {
                ItemStatus::Created
            } else {
                ItemStatus::Exists
            }));
        }
        let stored: Vec<usize> = candidates
            .into_iter()
            .filter(|&i| outcomes[i] == Some(Ok(ItemStatus::Exists)))
            .collect();
        match &existing {
            OnExisting::Keep => {}
            OnExisting::Replace => {
                for &i in &stored {
                    if self.update_group(&groups[i], now).await? {
                        outcomes[i] = Some(Ok(ItemStatus::Updated));
                    }
                }
            }
            OnExisting::Merge(merge) => {
                let mut added = Vec::with_capacity(stored.len());
                for &i in &stored {
                    let g = &groups[i];
                    added.push(self.add_members(&g.group.id, &g.members, now).await?);
                }
                let ids: Vec<GroupId> =
                    stored.iter().map(|&i| groups[i].group.id.clone()).collect();
                let merged = self
                    .merge_groups(&ids, |k, old| merge(stored[k], old))
                    .await?;
                for ((&i, merged), added) in stored.iter().zip(merged).zip(added) {
                    outcomes[i] = Some(match merged.outcome() {
                        Ok(ItemStatus::Exists) if added > 0 => Ok(ItemStatus::Updated),
                        outcome => outcome,
                    });
                }
            }
        }
        let outcomes: Vec<Outcome> = outcomes
            .into_iter()
            .map(|o| o.expect("every group has an outcome"))
            .collect();
        if outcomes
            .iter()
            .any(|o| matches!(o, Ok(ItemStatus::Created | ItemStatus::Updated)))
        {
            self.bump_access().await?;
        }
        Ok(outcomes)
    }

    /// Upsert of one existing group; whether anything changed.
    async fn update_group(&self, new: &NewGroup, now: u64) -> Result<bool, StoreError> {
        let Some(old) = self.group(&new.group.id).await? else {
            return Ok(false);
        };
        let added = self.add_members(&new.group.id, &new.members, now).await?;
        if old.same_content(&new.group) {
            return Ok(added > 0);
        }
        let group = Group {
            created_at: old.created_at,
            ..new.group.clone()
        };
        self.kv
            .write(vec![Op::Put(
                Table::Groups,
                group.id.as_str().to_owned(),
                encode(&group),
            )])
            .await?;
        Ok(true)
    }

    /// One group.
    pub async fn group(&self, id: &GroupId) -> Result<Option<Group>, StoreError> {
        self.kv
            .get(Table::Groups, id.as_str())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// A page of groups by id.
    pub async fn list_groups(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Group>, StoreError> {
        self.kv
            .scan(Table::Groups, "", after, limit.min(MAX_PAGE))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Adds known users to an existing group; returns how many were not
    /// members before. (Callers check the users exist.) Moves the access
    /// version when it added any.
    pub async fn add_members(
        &self,
        group: &GroupId,
        users: &[UserId],
        now: u64,
    ) -> Result<usize, StoreError> {
        let items = users
            .iter()
            .map(|u| {
                let [member, reverse] = membership_ops(group, u, now);
                let Op::Put(_, key, value) = member else {
                    unreachable!("membership_ops puts")
                };
                NewItem {
                    key,
                    value,
                    also: vec![reverse],
                }
            })
            .collect();
        let added = self.kv.insert_new(Table::Members, items).await?;
        let added = added.into_iter().filter(|&a| a).count();
        if added > 0 {
            self.bump_access().await?;
        }
        Ok(added)
    }

    /// Removes users from a group; returns how many were members.
    pub async fn remove_members(
        &self,
        group: &GroupId,
        users: &[UserId],
    ) -> Result<usize, StoreError> {
        let keys = users
            .iter()
            .map(|u| (Table::Members, format!("{group}{SEP}{u}")))
            .collect();
        let present = self.kv.get_multi(keys).await?;
        let mut ops = Vec::new();
        for (u, p) in users.iter().zip(&present) {
            if p.is_some() {
                ops.push(Op::Delete(Table::Members, format!("{group}{SEP}{u}")));
                ops.push(Op::Delete(Table::UserGroups, format!("{u}{SEP}{group}")));
            }
        }
        let removed = ops.len() / 2;
        if !ops.is_empty() {
            self.kv.write(ops).await?;
            // The owner is always a member: one who leaves owns no more.
            let gone: Vec<&UserId> = users
                .iter()
                .zip(&present)
                .filter(|(_, p)| p.is_some())
                .map(|(u, _)| u)
                .collect();
            if let Some(g) = self.group(group).await?
                && g.owner.as_ref().is_some_and(|o| gone.contains(&o))
            {
                self.clear_owner(g).await?;
            }
            self.bump_access().await?;
        }
        Ok(removed)
    }

    /// Stores `group` without an owner.
    pub(super) async fn clear_owner(&self, group: Group) -> Result<(), StoreError> {
        let group = Group {
            owner: None,
            updated_at: crate::clock::unix_millis().max(group.updated_at),
            ..group
        };
        self.kv
            .write(vec![Op::Put(
                Table::Groups,
                group.id.as_str().to_owned(),
                encode(&group),
            )])
            .await
    }

    /// How many groups there are.
    pub async fn count_groups(&self) -> Result<u64, StoreError> {
        self.kv.count(Table::Groups, "").await
    }

    /// How many members `group` has.
    pub async fn count_members(&self, group: &GroupId) -> Result<u64, StoreError> {
        self.kv
            .count(Table::Members, &format!("{group}{SEP}"))
            .await
    }

    /// How many groups `user` belongs to.
    pub async fn count_groups_of(&self, user: &UserId) -> Result<u64, StoreError> {
        self.kv
            .count(Table::UserGroups, &format!("{user}{SEP}"))
            .await
    }

    /// Whether `user` is a member of `group`.
    pub async fn is_member(&self, group: &GroupId, user: &UserId) -> Result<bool, StoreError> {
        Ok(self
            .kv
            .get(Table::Members, &format!("{group}{SEP}{user}"))
            .await?
            .is_some())
    }

    /// A page of a group's members, by user id.
    pub async fn members(
        &self,
        group: &GroupId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        self.second_parts(Table::Members, group, after, limit).await
    }

    /// A page of the groups `user` belongs to, by group id.
    pub async fn groups_of(
        &self,
        user: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<GroupId>, StoreError> {
        self.second_parts(Table::UserGroups, user, after, limit)
            .await
    }

    /// The ids after `first/` in a membership table.
    async fn second_parts(
        &self,
        table: Table,
        first: &UserId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<UserId>, StoreError> {
        let prefix = format!("{first}{SEP}");
        let after = after.map(|a| format!("{prefix}{a}"));
        let page = self
            .kv
            .scan(table, &prefix, after.as_deref(), limit.min(MAX_PAGE))
            .await?;
        Ok(page
            .iter()
            .filter_map(|(k, _)| UserId::new(&k[prefix.len()..]).ok())
            .collect())
    }

    /// Deletes a group and its memberships; returns whether it existed.
    pub async fn delete_group(&self, id: &GroupId) -> Result<bool, StoreError> {
        if self.group(id).await?.is_none() {
            return Ok(false);
        }
        loop {
            let members = self.members(id, None, MAX_PAGE).await?;
            if members.is_empty() {
                break;
            }
            self.remove_members(id, &members).await?;
        }
        self.kv
            .write(vec![Op::Delete(Table::Groups, id.as_str().to_owned())])
            .await?;
        Ok(true)
    }
}
