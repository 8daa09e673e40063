//! Users: batch creation (create, upsert or merge), lookups, pages,
//! deletion.

use tokenim_protocol::UserId;

use super::kv::{NewItem, Op, SEP, Table};
use super::merge::{OnExisting, Outcome};
use super::records::{GroupId, ItemStatus, User};
use super::{Store, StoreError, decode, encode};

/// Longest page of a listing.
pub const MAX_PAGE: usize = 1_000;

impl Store {
    /// Stores valid, distinct users; what happens to a user that exists
    /// is `existing`'s choice ([`OnExisting`]). Returns an outcome per
    /// user, in order; `created_at` of an updated user is kept.
    pub async fn create_users(
        &self,
        users: Vec<User>,
        existing: OnExisting<'_, User>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let items = users
            .iter()
            .map(|u| NewItem {
                key: u.id.as_str().to_owned(),
                value: encode(u),
                also: Vec::new(),
            })
            .collect();
        let inserted = self.kv.insert_new(Table::Users, items).await?;
        let mut outcomes: Vec<Outcome> = inserted
            .iter()
            .map(|&new| {
                Ok(if new {
                    ItemStatus::Created
                } else {
                    ItemStatus::Exists
                })
            })
            .collect();
        let mut roles_moved = users
            .iter()
            .zip(&inserted)
            .any(|(u, &new)| new && !u.roles.is_empty());
        let stored: Vec<usize> = (0..users.len()).filter(|&i| !inserted[i]).collect();
        match existing {
            OnExisting::Keep => {}
            OnExisting::Replace => {
                roles_moved |= self.replace_users(&users, &stored, &mut outcomes).await?;
            }
            OnExisting::Merge(merge) => {
                let ids: Vec<UserId> = stored.iter().map(|&i| users[i].id.clone()).collect();
                let merged = self
                    .merge_users(&ids, |k, old| merge(stored[k], old))
                    .await?;
                for (&i, merged) in stored.iter().zip(merged) {
                    outcomes[i] = merged.outcome();
                }
            }
        }
        if roles_moved {
            self.bump_access().await?;
        }
        Ok(outcomes)
    }

    /// Upsert of the users at `stored` (which exist); whether one that
    /// holds roles changed.
    async fn replace_users(
        &self,
        users: &[User],
        stored: &[usize],
        outcomes: &mut [Outcome],
    ) -> Result<bool, StoreError> {
        let keys = stored
            .iter()
            .map(|&i| (Table::Users, users[i].id.as_str().to_owned()))
            .collect();
        let found = self.kv.get_multi(keys).await?;
        let mut ops = Vec::new();
        let mut roles_moved = false;
        for (&i, old) in stored.iter().zip(found) {
            let mut user = users[i].clone();
            let old = old.map(|b| decode::<User>(&b)).transpose()?;
            if let Some(old) = &old {
                if old.same_content(&user) {
                    continue;
                }
                user.created_at = old.created_at;
            }
            roles_moved |= old.map_or(!user.roles.is_empty(), |old| old.roles != user.roles);
            ops.push(Op::Put(
                Table::Users,
                user.id.as_str().to_owned(),
                encode(&user),
            ));
            outcomes[i] = Ok(ItemStatus::Updated);
        }
        if !ops.is_empty() {
            self.kv.write(ops).await?;
        }
        Ok(roles_moved)
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

    /// A page of users by id whose ids start with `prefix`, after the
    /// cursor `after`.
    pub async fn list_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<User>, StoreError> {
        self.kv
            .scan(Table::Users, prefix, after, limit.min(MAX_PAGE))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }

    /// Up to `limit` users whose ids start with `prefix`, after `after`,
    /// that `keep` accepts, reading at most about `max_scanned` users;
    /// and where to go on from (`None` when every user was read). A
    /// filter that matches little may give a short page and a cursor.
    pub async fn find_users(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
        max_scanned: usize,
        keep: impl Fn(&User) -> bool,
    ) -> Result<(Vec<User>, Option<String>), StoreError> {
        let limit = limit.min(MAX_PAGE);
        let (mut found, mut scanned) = (Vec::new(), 0);
        let mut cursor = after.map(str::to_owned);
        loop {
            let page = self
                .kv
                .scan(Table::Users, prefix, cursor.as_deref(), MAX_PAGE)
                .await?;
            let full = page.len() == MAX_PAGE;
            let Some(last) = page.last().map(|(k, _)| k.clone()) else {
                return Ok((found, None));
            };
            for (key, value) in page {
                scanned += 1;
                let user: User = decode(&value)?;
                if keep(&user) {
                    found.push(user);
                    if found.len() == limit {
                        return Ok((found, Some(key)));
                    }
                }
            }
            if !full {
                return Ok((found, None));
            }
            if scanned >= max_scanned {
                return Ok((found, Some(last)));
            }
            cursor = Some(last);
        }
    }

    /// How many users there are whose ids start with `prefix` (`""`: all,
    /// without reading them).
    pub async fn count_users(&self, prefix: &str) -> Result<u64, StoreError> {
        self.kv.count(Table::Users, prefix).await
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
