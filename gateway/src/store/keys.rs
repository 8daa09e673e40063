//! API keys: stored by id, only the hash of their secret.

use tokenim_auth::{ApiKey, ApiKeyId, Scope};

use super::kv::{NewItem, Table};
use super::users::MAX_PAGE;
use super::{Store, StoreError, decode, encode};

impl Store {
    /// Stores a new key; `false` if its id is taken.
    pub async fn insert_key(&self, key: &ApiKey) -> Result<bool, StoreError> {
        let item = NewItem {
            key: key.id.as_str().to_owned(),
            value: encode(key),
            also: Vec::new(),
        };
        Ok(self.kv.insert_new(Table::Keys, vec![item]).await?[0])
    }

    /// One key.
    pub async fn key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        self.kv
            .get(Table::Keys, id.as_str())
            .await?
            .map(|b| decode(&b))
            .transpose()
    }

    /// Changes a key with `change` (read, change, compare-and-swap, retried
    /// when another node changed it meanwhile). `None` if there is no such
    /// key; otherwise the key as stored and what `change` returned.
    pub async fn update_key<T>(
        &self,
        id: &ApiKeyId,
        mut change: impl FnMut(&mut ApiKey) -> T,
    ) -> Result<Option<(ApiKey, T)>, StoreError> {
        loop {
            let Some(raw) = self.kv.get(Table::Keys, id.as_str()).await? else {
                return Ok(None);
            };
            let mut key: ApiKey = decode(&raw)?;
            let out = change(&mut key);
            let swapped = self
                .kv
                .compare_and_swap(Table::Keys, id.as_str(), Some(raw), Some(encode(&key)))
                .await?;
            if swapped {
                return Ok(Some((key, out)));
            }
        }
    }

    /// Deletes a key; `None` if there was no such key, otherwise the key
    /// as it was.
    pub async fn delete_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        loop {
            let Some(raw) = self.kv.get(Table::Keys, id.as_str()).await? else {
                return Ok(None);
            };
            let key: ApiKey = decode(&raw)?;
            if self
                .kv
                .compare_and_swap(Table::Keys, id.as_str(), Some(raw), None)
                .await?
            {
                return Ok(Some(key));
            }
        }
    }

    /// Whether a key other than `except` works at `now` and holds
    /// `keys:admin` (read page by page).
    pub async fn another_admin_key(&self, except: &ApiKeyId, now: u64) -> Result<bool, StoreError> {
        let mut after: Option<String> = None;
        loop {
            let page = self.list_keys(after.as_deref(), MAX_PAGE).await?;
            if page
                .iter()
                .any(|k| &k.id != except && k.is_live(now) && k.scopes.contains(&Scope::KeysAdmin))
            {
                return Ok(true);
            }
            match page.last() {
                Some(last) if page.len() == MAX_PAGE => after = Some(last.id.as_str().to_owned()),
                _ => return Ok(false),
            }
        }
    }

    /// How many keys there are (revoked ones included).
    pub async fn count_keys(&self) -> Result<u64, StoreError> {
        self.kv.count(Table::Keys, "").await
    }

    /// A page of keys by id.
    pub async fn list_keys(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<ApiKey>, StoreError> {
        self.kv
            .scan(Table::Keys, "", after, limit.min(MAX_PAGE))
            .await?
            .iter()
            .map(|(_, v)| decode(v))
            .collect()
    }
}
