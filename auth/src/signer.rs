//! Minting user tokens ([`TokenSigner`], [`MintRequest`]).
//!
//! In production the application's own backend mints tokens; the gateway
//! uses this only for its dev-mode `token` subcommand and dev-only token
//! endpoint, and the tests use it. A minted token always passes a
//! [`crate::TokenVerifier`] configured with the same key, audience and
//! issuer: the signer applies the same key checks and refuses scope
//! patterns the verifier would refuse.

use jsonwebtoken::{EncodingKey, Header};
use serde::Serialize;
use tokenim_protocol::UserId;

use crate::error::KeyError;
use crate::keys::{Alg, KeyConfig};
use crate::material::{label, signing_key};
use crate::scope::ChannelScope;

/// What to put in a minted token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    /// The user (`sub`).
    pub user: UserId,
    /// Issue time (`iat`), in seconds since the Unix epoch.
    pub issued_at: u64,
    /// Lifetime: `exp` is `issued_at + ttl_secs`.
    pub ttl_secs: u64,
    /// `aud`, if any.
    pub audience: Option<String>,
    /// `iss`, if any.
    pub issuer: Option<String>,
    /// `channels`: patterns the token may subscribe to; `None` for any.
    pub subscribe: Option<Vec<String>>,
    /// `publish`: patterns the token may publish to; `None` for any.
    pub publish: Option<Vec<String>>,
    /// `jti`, if any.
    pub token_id: Option<String>,
}

impl MintRequest {
    /// A request for `user`, issued at `issued_at`, living `ttl_secs`, with
    /// no other claims.
    pub fn new(user: UserId, issued_at: u64, ttl_secs: u64) -> Self {
        Self {
            user,
            issued_at,
            ttl_secs,
            audience: None,
            issuer: None,
            subscribe: None,
            publish: None,
            token_id: None,
        }
    }
}

/// The payload as written.
#[derive(Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channels: Option<&'a [String]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish: Option<&'a [String]>,
}

/// Signs user tokens with one key. HS256 keys sign with `secret`; RS256,
/// ES256 and EdDSA keys need `private_key_pem`. The header carries the
/// key's `kid` when it has one.
///
/// ```
/// use tokenim_auth::{KeyConfig, MintRequest, TokenSigner};
/// use tokenim_protocol::UserId;
///
/// let signer = TokenSigner::new(&KeyConfig::hs256("s".repeat(32)).with_kid("k1")).unwrap();
/// let token = signer.sign(&MintRequest::new(UserId::new("ann").unwrap(), 0, 60)).unwrap();
/// assert_eq!(token.split('.').count(), 3);
/// ```
#[derive(Debug, Clone)]
pub struct TokenSigner {
    alg: Alg,
    kid: Option<String>,
    key: EncodingKey,
    label: String,
}

impl TokenSigner {
    /// Loads the signing half of `key`.
    pub fn new(key: &KeyConfig) -> Result<Self, KeyError> {
        let name = label(None, key.kid.as_deref());
        Ok(Self {
            alg: key.alg,
            kid: key.kid.clone(),
            key: signing_key(key, &name)?,
            label: name,
        })
    }

    /// The algorithm tokens are signed with.
    pub fn alg(&self) -> Alg {
        self.alg
    }

    /// The `kid` put in token headers, if any.
    pub fn kid(&self) -> Option<&str> {
        self.kid.as_deref()
    }

    /// Mints a token for `req`.
    pub fn sign(&self, req: &MintRequest) -> Result<String, KeyError> {
        let invalid = |reason: String| KeyError::InvalidMint { reason };
        let exp = req
            .issued_at
            .checked_add(req.ttl_secs)
            .ok_or_else(|| invalid("issued_at + ttl_secs overflows".into()))?;
        for list in [&req.subscribe, &req.publish] {
            ChannelScope::from_claim(list.as_deref()).map_err(|e| invalid(e.to_string()))?;
        }
        let claims = MintClaims {
            sub: req.user.as_str(),
            iat: req.issued_at,
            exp,
            aud: req.audience.as_deref(),
            iss: req.issuer.as_deref(),
            jti: req.token_id.as_deref(),
            channels: req.subscribe.as_deref(),
            publish: req.publish.as_deref(),
        };
        let mut header = Header::new(self.alg.jwt());
        header.kid.clone_from(&self.kid);
        jsonwebtoken::encode(&header, &claims, &self.key).map_err(|e| KeyError::Signing {
            key: self.label.clone(),
            reason: e.to_string(),
        })
    }
}
