//! Verifying user tokens: the verifier's config ([`VerifierConfig`]) and the
//! verifier itself ([`TokenVerifier`]), which the gateway calls once per
//! connection attempt.
//!
//! A token goes through these steps, and the first failure is returned:
//!
//! 1. length, before anything is decoded ([`TokenError::TooLarge`]);
//! 2. compact form and header: three base64url parts, a JSON header with an
//!    `alg` string, an optional `kid` string and no `crit`
//!    ([`TokenError::Malformed`]);
//! 3. `alg` must be one of [`Alg`] ([`TokenError::DisallowedAlg`]);
//! 4. key selection by `kid` ([`TokenError::UnknownKid`],
//!    [`TokenError::MissingKid`]), then `alg` must equal the key's configured
//!    algorithm ([`TokenError::DisallowedAlg`]);
//! 5. signature, checked by `jsonwebtoken` with the algorithm pinned to the
//!    key's ([`TokenError::BadSignature`]); nothing in the payload is trusted
//!    before this;
//! 6. `exp`, `nbf` against the caller's `now` with the leeway, then `aud`
//!    and `iss`, then `sub` and the scope claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::claims::{RawClaims, UserClaims};
use crate::error::{KeyError, TokenError, echo};
use crate::keys::{Alg, KeyConfig, KeySet};

/// How tokens are verified. Every field has a default, so `{ keys = [...] }`
/// is a complete config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifierConfig {
    /// The keys tokens may be signed with. At least one is required; with
    /// several, each needs a distinct `kid`. Default: none.
    pub keys: Vec<KeyConfig>,
    /// When set, a token's `aud` is required and must be (or contain) this
    /// value. Set it whenever the issuer also signs tokens for other
    /// services with the same key. Default: not checked.
    pub audience: Option<String>,
    /// When set, a token's `iss` is required and must equal this value.
    /// Default: not checked.
    pub issuer: Option<String>,
    /// Clock skew allowed between the issuer and the gateway, in seconds,
    /// applied to `exp` and `nbf`. Default: 5. Raise it only if the
    /// issuer's clock is known to drift.
    pub leeway_secs: u64,
    /// Longest token accepted, in bytes, checked before any decoding.
    /// Default: 8192. Long scope lists need a larger value.
    pub max_token_len: usize,
    /// Whether a token must have `exp`. Default: true. Turning it off lets a
    /// token live until its key is removed.
    pub require_exp: bool,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            audience: None,
            issuer: None,
            leeway_secs: 5,
            max_token_len: 8192,
            require_exp: true,
        }
    }
}

impl VerifierConfig {
    /// The default config with these keys.
    pub fn with_keys(keys: Vec<KeyConfig>) -> Self {
        Self {
            keys,
            ..Self::default()
        }
    }
}

/// The part of the header read before the key is chosen.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 says a token naming critical extensions the recipient does
    /// not understand must be refused; we understand none.
    #[serde(default)]
    crit: Option<serde::de::IgnoredAny>,
}

/// Verifies user tokens against a [`KeySet`] and the checks of a
/// [`VerifierConfig`]. Cheap to share: wrap it in an `Arc`.
///
/// ```
/// use tokenim_auth::{KeyConfig, TokenError, TokenVerifier, VerifierConfig};
///
/// let config = VerifierConfig::with_keys(vec![KeyConfig::hs256("x".repeat(32))]);
/// let verifier = TokenVerifier::new(&config).unwrap();
/// assert!(matches!(verifier.verify("not.a.jwt", 0), Err(TokenError::Malformed { .. })));
/// ```
#[derive(Debug, Clone)]
pub struct TokenVerifier {
    keys: KeySet,
    audience: Option<String>,
    issuer: Option<String>,
    leeway_secs: u64,
    max_token_len: usize,
    require_exp: bool,
}

impl TokenVerifier {
    /// Loads and checks the keys of `config`.
    pub fn new(config: &VerifierConfig) -> Result<Self, KeyError> {
        Ok(Self {
            keys: KeySet::new(&config.keys)?,
            audience: config.audience.clone(),
            issuer: config.issuer.clone(),
            leeway_secs: config.leeway_secs,
            max_token_len: config.max_token_len,
            require_exp: config.require_exp,
        })
    }

    /// The loaded keys.
    pub fn keys(&self) -> &KeySet {
        &self.keys
    }

    /// Verifies `token` (the bare compact JWT, without a `Bearer ` prefix) at
    /// time `now_secs` (seconds since the Unix epoch) and returns its claims.
    pub fn verify(&self, token: &str, now_secs: u64) -> Result<UserClaims, TokenError> {
        if token.len() > self.max_token_len {
            return Err(TokenError::TooLarge {
                len: token.len(),
                max: self.max_token_len,
            });
        }
        let header = read_header(token)?;
        let alg = Alg::from_name(&header.alg).ok_or_else(|| TokenError::DisallowedAlg {
            alg: echo(&header.alg),
        })?;
        let key = self.keys.select(header.kid.as_deref())?;
        if key.alg != alg {
            return Err(TokenError::DisallowedAlg {
                alg: echo(&header.alg),
            });
        }
        let payload = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation)
            .map_err(|e| decode_error(e.kind()))?
            .claims;
        self.check(RawClaims::from_object(payload)?, now_secs)
    }

    /// The claim checks made after the signature is known to be good.
    fn check(&self, raw: RawClaims, now: u64) -> Result<UserClaims, TokenError> {
        match raw.exp {
            None if self.require_exp => return Err(TokenError::MissingExp),
            // RFC 7519: the token is valid only *before* `exp`.
            Some(exp) if now >= exp.saturating_add(self.leeway_secs) => {
                return Err(TokenError::Expired { expired_at: exp });
            }
            _ => {}
        }
        if let Some(nbf) = raw.nbf {
            if now.saturating_add(self.leeway_secs) < nbf {
                return Err(TokenError::NotYetValid { not_before: nbf });
            }
        }
        if let Some(want) = &self.audience {
            if !raw.aud.as_ref().is_some_and(|aud| aud.contains(want)) {
                return Err(TokenError::WrongAudience);
            }
        }
        if let Some(want) = &self.issuer {
            if raw.iss.as_deref() != Some(want.as_str()) {
                return Err(TokenError::WrongIssuer);
            }
        }
        raw.into_user_claims()
    }
}

/// Splits the compact form and reads the header, without trusting it.
fn read_header(token: &str) -> Result<RawHeader, TokenError> {
    let malformed = |detail| TokenError::Malformed { detail };
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(malformed("not three dot-separated parts"));
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| malformed("header is not base64url"))?;
    let header: RawHeader = serde_json::from_slice(&json)
        .map_err(|_| malformed("header is not a JSON object with an alg string"))?;
    if header.crit.is_some() {
        return Err(malformed("header has crit extensions"));
    }
    Ok(header)
}

/// Maps a `jsonwebtoken` failure after the key and algorithm were chosen.
fn decode_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            TokenError::DisallowedAlg { alg: "?".into() }
        }
        // The key was checked at load time; a signature the key cannot even
        // parse is a bad signature.
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::Signing(_) => TokenError::BadSignature,
        ErrorKind::Base64(_) => TokenError::Malformed {
            detail: "a part is not base64url",
        },
        _ => TokenError::Malformed {
            detail: "claims are not a JSON object of the expected types",
        },
    }
}
