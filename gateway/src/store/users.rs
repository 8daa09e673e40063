//! Users: batch creation (create-only or upsert), lookups, pages, deletion.

use tokenim_protocol::UserId;

use super::kv::{NewItem, Op, SEP, Table};
use super::records::{GroupId, ItemStatus, User};
use super::{Store, StoreError, decode, encode};

/// Longest page of a listing.
pub const MAX_PAGE: usize = 1_000;

impl Store {
    /// Stores valid, distinct users. Create-only: a user that exists is
    /// left as it is (`exists`). Upsert: it is replaced (`updated`), or
    /// left (`exists`) when nothing differs. Returns a status per user, in
    /// order; `created_at` of an updated user is kept.
    pub async fn create_users(
        &self,
        users: Vec<User>,
        upsert: bool,
    ) -> Result<Vec<ItemStatus>, StoreError> {
        let items = users
            .iter()
            .map(|u| NewItem {
                key: u.id.as_str().to_owned(),
                value: encode(u),
                also: Vec::new(),
            })
            .collect();
        let inserted = self.kv.insert_new(Table::Users, items).await?;
        let mut statuses: Vec<ItemStatus> = inserted
            .iter()
            .map(|&new| {
                if new {
                    ItemStatus::Created
                } else {
                    ItemStatus::Exists
                }
            })
            .collect();
        if !upsert {
            self.bump_if_roles(&users, &statuses).await?;
            return Ok(statuses);
        }
        let existing: Vec<usize> = (0..users.len()).filter(|&i| !inserted[i]).collect();
        let keys = existing
            .iter()
            .map(|&i| (Table::Users, users[i].id.as_str().to_owned()))
            .collect();
        let stored = self.kv.get_multi(keys).await?;
        let mut ops = Vec::new();
        for (&i, old) in existing.iter().zip(stored) {
            let mut user = users[i].clone();
            if let Some(old) = old.map(|b| decode::<User>(&b)).transpose()? {
                if old.same_content(&user) {
                    continue;
                }
                user.created_at = old.created_at;
            }
            ops.push(Op::Put(
                Table::Users,
                user.id.as_str().to_owned(),
                encode(&user),
            ));
            statuses[i] = ItemStatus::Updated;
        }
        if !ops.is_empty() {
            self.kv.write(ops).await?;
        }
        self.bump_if_roles(&users, &statuses).await?;
        Ok(statuses)
    }

    /// Moves the access version when a created or updated user holds
    /// roles (what sessions know of their users changed).
    async fn bump_if_roles(
        &self,
        users: &[User],
        statuses: &[ItemStatus],
    ) -> Result<(), StoreError> {
        let changed = users.iter().zip(statuses).any(|(u, s)| {
            !u.roles.is_empty() && matches!(s, ItemStatus::Created | ItemStatus::Updated)
        });
        if changed {
            self.bump_access().await?;
        }
        Ok(())
    }

    /// One user.
    pub async fn user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        self.kv
            .get(Table::Users, id.as_str())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Several users, in the order asked (`None` for an unknown id).
    pub async fn users(&self, ids: &[UserId]) -> Result<Vec<Option<User>>, StoreError> {
        let keys = ids
            .iter()
            .map(|id| (Table::Users, id.as_str().to_owned()))
            .collect();
        self.kv
            .get_multi(keys)
            .await?
            .into_iter()
            .map(|v| v.map(|b| decode(&b)).transpose())
            .collect()
    }

    /// A page of users by id, after the cursor `after`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        self.kv
            .scan(Table::Users, "", after, limit.min(MAX_PAGE))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// A user's record and the bytes it is stored as (for
    /// [`Store::replace_user`]).
    pub async fn user_record(&self, id: &UserId) -> Result<Option<(Vec<u8>, User)>, StoreError> {
        match self.kv.get(Table::Users, id.as_str()).await? {
            Some(raw) => {
                let user = decode(&raw)?;
                Ok(Some((raw, user)))
            }
            None => Ok(None),
        }
    }

    /// Stores `user` in place of the record read as `old` (bytes from
    /// [`Store::user_record`]); `false` when it changed meanwhile (read
    /// again and retry). Moves the access version when the roles changed.
    pub async fn replace_user(
        &self,
        old: Vec<u8>,
        before: &User,
        user: &User,
    ) -> Result<bool, StoreError> {
        let swapped = self
            .kv
            .compare_and_swap(
                Table::Users,
                user.id.as_str(),
                Some(old),
                Some(encode(user)),
            )
            .await?;
        if swapped && before.roles != user.roles {
            self.bump_access().await?;
        }
        Ok(swapped)
    }

    /// Deletes a user and every membership it has. Returns whether it
    /// existed. (Revoking its tokens and closing its connections is the
    /// caller's part.)
    pub async fn delete_user(&self, id: &UserId) -> Result<bool, StoreError> {
        let Some(_) = self.user(id).await? else {
            return Ok(false);
        };
        loop {
            let page = self
                .kv
                .scan(Table::UserGroups, &format!("{id}{SEP}"), None, MAX_PAGE)
                .await?;
            if page.is_empty() {
                break;
            }
            let mut ops = Vec::with_capacity(page.len() * 2);
            for (key, _) in page {
                let group = key.rsplit(SEP).next().unwrap_or_default().to_owned();
                // The owner is always a member: its groups are here.
                if let Ok(gid) = GroupId::new(&group)
                    && let Some(g) = self.group(&gid).await?
                    && g.owner.as_ref() == Some(id)
                {
                    self.clear_owner(g).await?;
                }
                ops.push(Op::Delete(Table::Members, format!("{group}{SEP}{id}")));
                ops.push(Op::Delete(Table::UserGroups, key));
            }
            self.kv.write(ops).await?;
        }
        self.kv
            .write(vec![Op::Delete(Table::Users, id.as_str().to_owned())])
            .await?;
        Ok(true)
    }
}
