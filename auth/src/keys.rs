//! Token keys: how each key is configured ([`KeyConfig`], [`Alg`]) and the
//! set of verifying keys a verifier selects from by `kid` ([`KeySet`]).
//!
//! Every key is checked when it is loaded, so a bad key stops the gateway at
//! start-up instead of failing every token later: HMAC secrets must be at
//! least [`MIN_HMAC_SECRET_LEN`] bytes, RSA keys at least [`MIN_RSA_BITS`]
//! bits, EC keys on P-256, and a PEM must hold a key of the configured
//! algorithm's type. A key accepts tokens signed with its configured
//! algorithm and no other, which rules out algorithm confusion (an RSA
//! public key used as an HMAC secret, `alg: none`). The checks themselves
//! live in the private `material` module, shared with the signer.

use std::fmt;

use jsonwebtoken::Algorithm;
use serde::{Deserialize, Serialize};

use crate::error::{KeyError, TokenError, echo};
use crate::material::{VerifyingKey, label};

/// Shortest accepted HS256 secret, in bytes (the HMAC-SHA256 output size).
pub const MIN_HMAC_SECRET_LEN: usize = 32;
/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;

/// A signing algorithm accepted for user tokens. Its serde and `Display`
/// names are the JWT `alg` names.
///
/// ```
/// use tokenim_auth::Alg;
/// assert_eq!(Alg::from_name("EdDSA"), Some(Alg::EdDSA));
/// assert_eq!(Alg::from_name("none"), None);
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Alg {
    /// HMAC with SHA-256, a shared secret (`secret`).
    HS256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, an RSA key pair of 2048 bits or more.
    RS256,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl Alg {
    /// Every supported algorithm.
    pub const ALL: [Alg; 4] = [Alg::HS256, Alg::RS256, Alg::ES256, Alg::EdDSA];

    /// The JWT `alg` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm with this exact JWT `alg` name, if it is supported.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) fn jwt(self) -> Algorithm {
        match self {
            Self::HS256 => Algorithm::HS256,
            Self::RS256 => Algorithm::RS256,
            Self::ES256 => Algorithm::ES256,
            Self::EdDSA => Algorithm::EdDSA,
        }
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One token key, as written in the config file.
///
/// * `HS256` needs `secret` (at least 32 bytes, used as raw UTF-8 bytes).
/// * `RS256`, `ES256`, `EdDSA` need `public_key_pem` (SPKI `PUBLIC KEY`, or
///   PKCS#1 `RSA PUBLIC KEY`) to verify. `private_key_pem` (PKCS#8
///   `PRIVATE KEY`, as `openssl genpkey` writes it; RSA may also be PKCS#1
///   `RSA PRIVATE KEY`; convert a SEC1 `EC PRIVATE KEY` with
///   `openssl pkcs8 -topk8 -nocrypt`) is only needed to mint tokens. When it
///   is the only one set, the verifying key is derived from it; when both
///   are set they must be one pair.
///
/// `Debug` never prints `secret` or `private_key_pem`. `Serialize` does
/// write them (it exists to round-trip config files): never log the
/// serialized form.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// Key id, matched against the token header's `kid`. Optional when this
    /// is the only key; required (and distinct) when several are configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kid: Option<String>,
    /// The one algorithm this key accepts.
    pub alg: Alg,
    /// HS256 shared secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// RS256 / ES256 / EdDSA verifying key, PEM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub public_key_pem: Option<String>,
    /// RS256 / ES256 / EdDSA signing key, PEM; only to mint tokens (dev and
    /// tests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_pem: Option<String>,
}

impl KeyConfig {
    /// An HS256 key with this secret and no `kid`.
    pub fn hs256(secret: impl Into<String>) -> Self {
        Self {
            secret: Some(secret.into()),
            ..Self::empty(Alg::HS256)
        }
    }

    /// A verify-only key of `alg` with this public key PEM and no `kid`.
    pub fn public_pem(alg: Alg, pem: impl Into<String>) -> Self {
        Self {
            public_key_pem: Some(pem.into()),
            ..Self::empty(alg)
        }
    }

    /// A key of `alg` with this private key PEM and no `kid`; it can both
    /// mint and (through the derived public key) verify.
    pub fn private_pem(alg: Alg, pem: impl Into<String>) -> Self {
        Self {
            private_key_pem: Some(pem.into()),
            ..Self::empty(alg)
        }
    }

    /// The same key with `kid` set.
    pub fn with_kid(self, kid: impl Into<String>) -> Self {
        Self {
            kid: Some(kid.into()),
            ..self
        }
    }

    fn empty(alg: Alg) -> Self {
        Self {
            kid: None,
            alg,
            secret: None,
            public_key_pem: None,
            private_key_pem: None,
        }
    }
}

impl fmt::Debug for KeyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hide = |v: &Option<String>| v.as_ref().map(|_| "[redacted]");
        f.debug_struct("KeyConfig")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("secret", &hide(&self.secret))
            .field(
                "public_key_pem",
                &self.public_key_pem.as_ref().map(|_| "[pem]"),
            )
            .field("private_key_pem", &hide(&self.private_key_pem))
            .finish()
    }
}

/// The verifying keys of a verifier, selected by the token header's `kid`.
///
/// Keys rotate without downtime: add the new key with a new `kid`, switch
/// the issuer to it, and remove the old key once its last token has
/// expired. A token without `kid` is accepted only while exactly one key is
/// configured.
#[derive(Debug, Clone)]
pub struct KeySet {
    keys: Vec<VerifyingKey>,
}

impl KeySet {
    /// Loads and checks every key. Fails on the first bad key, naming it.
    pub fn new(configs: &[KeyConfig]) -> Result<Self, KeyError> {
        if configs.is_empty() {
            return Err(KeyError::NoKeys);
        }
        let mut keys: Vec<VerifyingKey> = Vec::with_capacity(configs.len());
        for (i, cfg) in configs.iter().enumerate() {
            let key = label(Some(i), cfg.kid.as_deref());
            match cfg.kid.as_deref() {
                Some("") => return Err(KeyError::MissingKid { key }),
                None if configs.len() > 1 => return Err(KeyError::MissingKid { key }),
                Some(kid) if keys.iter().any(|k| k.kid.as_deref() == Some(kid)) => {
                    return Err(KeyError::DuplicateKid {
                        key,
                        kid: kid.to_owned(),
                    });
                }
                _ => {}
            }
            keys.push(VerifyingKey::new(cfg, &key)?);
        }
        Ok(Self { keys })
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are no keys (never true for a set built by
    /// [`KeySet::new`]).
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The configured `kid`s, in config order (for start-up logs).
    pub fn kids(&self) -> impl Iterator<Item = &str> + '_ {
        self.keys.iter().filter_map(|k| k.kid.as_deref())
    }

    /// The key a token with this header `kid` must verify against.
    pub(crate) fn select(&self, kid: Option<&str>) -> Result<&VerifyingKey, TokenError> {
        match (kid, self.keys.as_slice()) {
            (Some(kid), keys) => keys
                .iter()
                .find(|k| k.kid.as_deref() == Some(kid))
                .ok_or_else(|| TokenError::UnknownKid { kid: echo(kid) }),
            (None, [only]) => Ok(only),
            (None, _) => Err(TokenError::MissingKid),
        }
    }
}
