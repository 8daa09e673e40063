//! Server API keys: how an application's backend authenticates to the
//! gateway's HTTP API.
//!
//! A key is an id ([`ApiKeyId`], `ak_` + 16 hex digits, not secret) and a
//! secret ([`ApiSecret`], `sk_` + 43 URL-safe base64 characters: 256 random
//! bits). The secret is shown once, when the key is created or rotated;
//! only its SHA-256 ([`SecretHash`]) is stored. A fast hash is right here:
//! the secret is random and long, so there is nothing to brute-force that
//! a slow password hash would protect.
//!
//! An [`ApiKey`] carries its [`Scope`]s (least privilege), an optional
//! expiry, the previous secret while a rotation's overlap window lasts, and
//! its revocation time. [`ApiKey::authenticate`] tells every failure apart
//! ([`ApiKeyError`]), each with its own stable [`ErrorCode`].
//!
//! ```
//! use tokenim_auth::{ApiKey, ApiKeyError, Scope};
//!
//! let now = 1_700_000_000_000;
//! let (mut key, secret) = ApiKey::create("backend", [Scope::UsersWrite].into(), None, now);
//! assert!(key.authenticate(secret.expose(), now).is_ok());
//! assert!(matches!(key.authenticate("sk_wrong", now), Err(ApiKeyError::WrongSecret)));
//! assert!(key.require(Scope::UsersWrite).is_ok());
//! assert!(matches!(key.require(Scope::KeysAdmin), Err(ApiKeyError::MissingScope(_))));
//!
//! // Rotation: the old secret keeps working for the overlap window.
//! let new = key.rotate(60_000, now);
//! assert!(key.authenticate(secret.expose(), now + 59_999).is_ok());
//! assert!(key.authenticate(secret.expose(), now + 60_000).is_err());
//! assert!(key.authenticate(new.expose(), now + 60_000).is_ok());
//! ```

use std::collections::BTreeSet;
use std::fmt;

use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokenim_protocol::ErrorCode;

/// Prefix of every key id.
pub const KEY_ID_PREFIX: &str = "ak_";
/// Prefix of every secret.
pub const SECRET_PREFIX: &str = "sk_";

/// What an API key may do. Each HTTP endpoint needs one scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Scope {
    /// Read users, their groups.
    #[serde(rename = "users:read")]
    UsersRead,
    /// Create and update users (roles aside); run user import jobs.
    #[serde(rename = "users:write")]
    UsersWrite,
    /// Delete users.
    #[serde(rename = "users:delete")]
    UsersDelete,
    /// Give and take users' roles (in a batch, a patch or
    /// `/v1/roles/{name}/members`).
    #[serde(rename = "users:roles")]
    UsersRoles,
    /// Read groups and members.
    #[serde(rename = "groups:read")]
    GroupsRead,
    /// Create, update, delete groups; add and remove members.
    #[serde(rename = "groups:write")]
    GroupsWrite,
    /// Publish to channels and users from the server.
    #[serde(rename = "messages:publish")]
    MessagesPublish,
    /// Mint user tokens.
    #[serde(rename = "tokens:mint")]
    TokensMint,
    /// Revoke a user's tokens, disconnect, ban and unban users.
    #[serde(rename = "users:moderate")]
    UsersModerate,
    /// Create, rotate, revoke and list API keys.
    #[serde(rename = "keys:admin")]
    KeysAdmin,
    /// Define roles; grant and revoke permissions.
    #[serde(rename = "roles:admin")]
    RolesAdmin,
    /// Read the audit log.
    #[serde(rename = "audit:read")]
    AuditRead,
    /// Read import jobs of every kind and their failures.
    #[serde(rename = "jobs:read")]
    JobsRead,
}

impl Scope {
    /// Every scope (what the bootstrap admin key holds).
    pub const ALL: [Scope; 13] = [
        Scope::UsersRead,
        Scope::UsersWrite,
        Scope::UsersDelete,
        Scope::UsersRoles,
        Scope::GroupsRead,
        Scope::GroupsWrite,
        Scope::MessagesPublish,
        Scope::TokensMint,
        Scope::UsersModerate,
        Scope::KeysAdmin,
        Scope::RolesAdmin,
        Scope::AuditRead,
        Scope::JobsRead,
    ];

    /// The scope's name, e.g. `users:write`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::UsersRead => "users:read",
            Scope::UsersWrite => "users:write",
            Scope::UsersDelete => "users:delete",
            Scope::UsersRoles => "users:roles",
            Scope::GroupsRead => "groups:read",
            Scope::GroupsWrite => "groups:write",
            Scope::MessagesPublish => "messages:publish",
            Scope::TokensMint => "tokens:mint",
            Scope::UsersModerate => "users:moderate",
            Scope::KeysAdmin => "keys:admin",
            Scope::RolesAdmin => "roles:admin",
            Scope::AuditRead => "audit:read",
            Scope::JobsRead => "jobs:read",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an API request was not authenticated or not allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiKeyError {
    /// No credentials in the request: send the key id and secret.
    #[error(
        "no API key: send Authorization: Basic <key id>:<secret> (base64) or Bearer <key id>:<secret>"
    )]
    Missing,
    /// The credentials are not `<key id>:<secret>`, or no key has this id.
    #[error("unknown API key {0:?}")]
    Unknown(String),
    /// The secret does not match the key's (or its rotation window ended).
    #[error("wrong secret for this API key")]
    WrongSecret,
    /// The key's expiry has passed.
    #[error("the API key expired")]
    Expired,
    /// The key was revoked.
    #[error("the API key was revoked")]
    Revoked,
    /// The key does not hold the scope the endpoint needs.
    #[error("the API key lacks the scope {0}")]
    MissingScope(Scope),
}

impl ApiKeyError {
    /// The stable error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            ApiKeyError::Missing => ErrorCode::MissingCredentials,
            ApiKeyError::Unknown(_) => ErrorCode::UnknownApiKey,
            ApiKeyError::WrongSecret => ErrorCode::WrongSecret,
            ApiKeyError::Expired => ErrorCode::ApiKeyExpired,
            ApiKeyError::Revoked => ErrorCode::ApiKeyRevoked,
            ApiKeyError::MissingScope(_) => ErrorCode::MissingScope,
        }
    }

    /// A short label for metrics and the audit log.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiKeyError::Missing => "missing",
            ApiKeyError::Unknown(_) => "unknown_key",
            ApiKeyError::WrongSecret => "wrong_secret",
            ApiKeyError::Expired => "expired",
            ApiKeyError::Revoked => "revoked",
            ApiKeyError::MissingScope(_) => "missing_scope",
        }
    }
}

/// An API key's public id: `ak_` and 16 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ApiKeyId(String);

impl ApiKeyId {
    /// A new random id.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 8];
        fill_random(&mut bytes);
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("{KEY_ID_PREFIX}{hex}"))
    }

    /// Parses an id, checking its shape.
    pub fn parse(s: &str) -> Result<Self, ApiKeyError> {
        let ok = s.strip_prefix(KEY_ID_PREFIX).is_some_and(|hex| {
            hex.len() == 16 && hex.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ApiKeyError::Unknown(crate::error::echo(s)))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ApiKeyId {
    type Error = ApiKeyError;
    fn try_from(s: String) -> Result<Self, ApiKeyError> {
        Self::parse(&s)
    }
}

impl From<ApiKeyId> for String {
    fn from(id: ApiKeyId) -> String {
        id.0
    }
}

impl fmt::Display for ApiKeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret as shown to its owner once. Its `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiSecret(String);

impl ApiSecret {
    /// A new random secret (256 bits).
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        fill_random(&mut bytes);
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        Self(format!("{SECRET_PREFIX}{text}"))
    }

    /// A secret given by configuration (the bootstrap key).
    pub fn from_config(secret: &str) -> Self {
        Self(secret.to_owned())
    }

    /// The secret's text, to show once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored.
    pub fn hash(&self) -> SecretHash {
        SecretHash::of(&self.0)
    }
}

impl fmt::Debug for ApiSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiSecret(..)")
    }
}

/// SHA-256 of a secret, stored as 64 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct SecretHash([u8; 32]);

impl SecretHash {
    /// The hash of `secret`.
    pub fn of(secret: &str) -> Self {
        Self(Sha256::digest(secret.as_bytes()).into())
    }

    /// Whether `secret` hashes to this, compared in constant time.
    pub fn matches(&self, secret: &str) -> bool {
        Self::of(secret).0.ct_eq(&self.0).into()
    }
}

impl TryFrom<String> for SecretHash {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err("a secret hash is 64 hex digits".into());
        }
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&s[2 * i..2 * i + 2], 16)
                .map_err(|_| "a secret hash is 64 hex digits".to_owned())?;
        }
        Ok(Self(out))
    }
}

impl From<SecretHash> for String {
    fn from(h: SecretHash) -> String {
        h.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// The secret a rotation replaced, valid until `valid_until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousSecret {
    /// Its hash.
    pub hash: SecretHash,
    /// Milliseconds since the Unix epoch after which it is refused.
    pub valid_until: u64,
}

/// An API key as stored. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public id.
    pub id: ApiKeyId,
    /// A label for people ("billing backend").
    pub name: String,
    /// What the key may do.
    pub scopes: BTreeSet<Scope>,
    /// When it was created.
    pub created_at: u64,
    /// When it stops working, if ever.
    pub expires_at: Option<u64>,
    /// The current secret's hash.
    pub secret: SecretHash,
    /// The secret before the last rotation, during its overlap window.
    pub previous: Option<PreviousSecret>,
    /// When the secret was last rotated.
    pub rotated_at: Option<u64>,
    /// When it was revoked; a revoked key never works again.
    pub revoked_at: Option<u64>,
}

impl ApiKey {
    /// A new key with a fresh id and secret. The secret is returned to be
    /// shown once; the key keeps only its hash.
    pub fn create(
        name: &str,
        scopes: BTreeSet<Scope>,
        expires_at: Option<u64>,
        now: u64,
    ) -> (Self, ApiSecret) {
        let secret = ApiSecret::generate();
        let key = Self::with_secret(ApiKeyId::generate(), name, scopes, &secret, now);
        (Self { expires_at, ..key }, secret)
    }

    /// A key with a given id and secret (the configured bootstrap key).
    pub fn with_secret(
        id: ApiKeyId,
        name: &str,
        scopes: BTreeSet<Scope>,
        secret: &ApiSecret,
        now: u64,
    ) -> Self {
        Self {
            id,
            name: name.to_owned(),
            scopes,
            created_at: now,
            expires_at: None,
            secret: secret.hash(),
            previous: None,
            rotated_at: None,
            revoked_at: None,
        }
    }

    /// Checks a presented secret at time `now`. The secret is checked
    /// first, so a caller without it learns nothing about the key's state.
    pub fn authenticate(&self, secret: &str, now: u64) -> Result<(), ApiKeyError> {
        let current = self.secret.matches(secret);
        let previous = self
            .previous
            .as_ref()
            .is_some_and(|p| now < p.valid_until && p.hash.matches(secret));
        if !(current || previous) {
            return Err(ApiKeyError::WrongSecret);
        }
        if self.revoked_at.is_some() {
            return Err(ApiKeyError::Revoked);
        }
        if self.expires_at.is_some_and(|at| now >= at) {
            return Err(ApiKeyError::Expired);
        }
        Ok(())
    }

    /// Checks that the key holds `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiKeyError> {
        if self.scopes.contains(&scope) {
            Ok(())
        } else {
            Err(ApiKeyError::MissingScope(scope))
        }
    }

    /// Gives the key a new secret; the current one stays valid for
    /// `overlap_ms` (0: not at all). Returns the new secret, to show once.
    pub fn rotate(&mut self, overlap_ms: u64, now: u64) -> ApiSecret {
        let secret = ApiSecret::generate();
        let old = std::mem::replace(&mut self.secret, secret.hash());
        self.previous = (overlap_ms > 0).then(|| PreviousSecret {
            hash: old,
            valid_until: now.saturating_add(overlap_ms),
        });
        self.rotated_at = Some(now);
        secret
    }

    /// Whether the key works at `now`: neither revoked nor expired.
    pub fn is_live(&self, now: u64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// Revokes the key (no effect if it already is).
    pub fn revoke(&mut self, now: u64) {
        self.revoked_at.get_or_insert(now);
    }
}

/// Fills `buf` from the operating system's random source.
pub(crate) fn fill_random(buf: &mut [u8]) {
    getrandom::fill(buf).expect("the operating system's random source is available");
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000_000;

    fn key(expires_at: Option<u64>) -> (ApiKey, ApiSecret) {
        ApiKey::create("t", [Scope::UsersRead].into(), expires_at, NOW)
    }

    #[test]
    fn every_failure_is_told_apart() {
        let (mut k, s) = key(Some(NOW + 10));
        assert_eq!(k.authenticate(s.expose(), NOW), Ok(()));
        assert_eq!(
            k.authenticate("sk_nope", NOW),
            Err(ApiKeyError::WrongSecret)
        );
        assert_eq!(
            k.authenticate(s.expose(), NOW + 10),
            Err(ApiKeyError::Expired)
        );
        k.revoke(NOW + 1);
        assert_eq!(k.authenticate(s.expose(), NOW), Err(ApiKeyError::Revoked));
        // A wrong secret says nothing about revocation.
        assert_eq!(
            k.authenticate("sk_nope", NOW),
            Err(ApiKeyError::WrongSecret)
        );
    }

    #[test]
    fn ids_and_secrets_are_random_and_well_formed() {
        let (a, sa) = key(None);
        let (b, sb) = key(None);
        assert_ne!(a.id, b.id);
        assert_ne!(sa, sb);
        assert!(ApiKeyId::parse(a.id.as_str()).is_ok());
        assert!(ApiKeyId::parse("ak_XYZ").is_err());
        assert_eq!(sa.expose().len(), SECRET_PREFIX.len() + 43);
        assert_eq!(format!("{sa:?}"), "ApiSecret(..)");
    }

    #[test]
    fn stored_form_round_trips_without_the_secret() {
        let (k, s) = key(None);
        let json = serde_json::to_string(&k).unwrap();
        assert!(!json.contains(s.expose()));
        let back: ApiKey = serde_json::from_str(&json).unwrap();
        assert_eq!(back, k);
        assert!(back.authenticate(s.expose(), NOW).is_ok());
    }

    #[test]
    fn rotation_without_overlap_drops_the_old_secret_at_once() {
        let (mut k, old) = key(None);
        let new = k.rotate(0, NOW);
        assert_eq!(
            k.authenticate(old.expose(), NOW),
            Err(ApiKeyError::WrongSecret)
        );
        assert_eq!(k.authenticate(new.expose(), NOW), Ok(()));
    }
}
