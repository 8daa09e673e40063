//! Turning a [`KeyConfig`] into key material, with every load-time check:
//! fields that fit the algorithm, secret length, PEM type, RSA size, EC
//! curve, and that a public and a private PEM are one pair. Used by
//! [`crate::KeySet`] (verifying keys) and [`crate::TokenSigner`] (signing
//! keys), so both refuse the same keys.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{DecodingKey, EncodingKey, Validation};

use crate::error::KeyError;
use crate::keys::{Alg, KeyConfig, MIN_HMAC_SECRET_LEN, MIN_RSA_BITS};

/// How errors name a key: `keys[1] (kid "2024-06")`, or `signing key ...`
/// outside a list.
pub(crate) fn label(index: Option<usize>, kid: Option<&str>) -> String {
    let place = index.map_or_else(|| "signing key".to_owned(), |i| format!("keys[{i}]"));
    match kid {
        Some(kid) => format!("{place} (kid {kid:?})"),
        None => place,
    }
}

/// Refuses fields that do not belong to `cfg`'s algorithm.
fn check_fields(cfg: &KeyConfig, key: &str) -> Result<(), KeyError> {
    let forbid = |set: bool, field: &'static str| match set {
        true => Err(KeyError::UnexpectedField {
            key: key.to_owned(),
            alg: cfg.alg,
            field,
        }),
        false => Ok(()),
    };
    if cfg.alg == Alg::HS256 {
        forbid(cfg.public_key_pem.is_some(), "public_key_pem")?;
        forbid(cfg.private_key_pem.is_some(), "private_key_pem")
    } else {
        forbid(cfg.secret.is_some(), "secret")
    }
}

/// The HS256 secret of `cfg`, checked for length.
fn hmac_secret<'a>(cfg: &'a KeyConfig, key: &str) -> Result<&'a [u8], KeyError> {
    let secret = cfg
        .secret
        .as_deref()
        .ok_or_else(|| KeyError::MissingField {
            key: key.to_owned(),
            alg: cfg.alg,
            field: "secret",
        })?;
    if secret.len() < MIN_HMAC_SECRET_LEN {
        return Err(KeyError::SecretTooShort {
            key: key.to_owned(),
            len: secret.len(),
        });
    }
    Ok(secret.as_bytes())
}

/// Checks that a key's public half (as a JWK) fits `alg`: RSA size, EC
/// curve, Ed25519 curve.
fn check_public(alg: Alg, jwk: &Jwk, key: &str, field: &'static str) -> Result<(), KeyError> {
    let invalid = |reason: &str| KeyError::InvalidPem {
        key: key.to_owned(),
        alg,
        field,
        reason: reason.to_owned(),
    };
    match (alg, &jwk.algorithm) {
        (Alg::RS256, AlgorithmParameters::RSA(rsa)) => {
            let n = URL_SAFE_NO_PAD
                .decode(&rsa.n)
                .map_err(|_| invalid("bad RSA modulus"))?;
            let bits = n
                .first()
                .map_or(0, |b| (n.len() * 8) - b.leading_zeros() as usize);
            match bits >= MIN_RSA_BITS {
                true => Ok(()),
                false => Err(KeyError::RsaTooShort {
                    key: key.to_owned(),
                    bits,
                }),
            }
        }
        (Alg::ES256, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
            Ok(())
        }
        (Alg::ES256, AlgorithmParameters::EllipticCurve(_)) => Err(invalid("curve is not P-256")),
        (Alg::EdDSA, AlgorithmParameters::OctetKeyPair(ok))
            if ok.curve == EllipticCurve::Ed25519 =>
        {
            Ok(())
        }
        _ => Err(invalid("key type does not match the algorithm")),
    }
}

/// Builds and checks the signing key of an RS256 / ES256 / EdDSA key from
/// its `private_key_pem`, returning it with its public half as a JWK.
fn private_key(cfg: &KeyConfig, key: &str) -> Result<(EncodingKey, Jwk), KeyError> {
    let field = "private_key_pem";
    let pem = cfg
        .private_key_pem
        .as_deref()
        .ok_or_else(|| KeyError::MissingField {
            key: key.to_owned(),
            alg: cfg.alg,
            field,
        })?;
    let invalid = |e: jsonwebtoken::errors::Error| KeyError::InvalidPem {
        key: key.to_owned(),
        alg: cfg.alg,
        field,
        reason: e.to_string(),
    };
    let enc = match cfg.alg {
        Alg::RS256 => EncodingKey::from_rsa_pem(pem.as_bytes()),
        Alg::ES256 => EncodingKey::from_ec_pem(pem.as_bytes()),
        Alg::EdDSA => EncodingKey::from_ed_pem(pem.as_bytes()),
        Alg::HS256 => Err(ErrorKind::InvalidKeyFormat.into()),
    }
    .map_err(invalid)?;
    let jwk = Jwk::from_encoding_key(&enc, cfg.alg.jwt()).map_err(invalid)?;
    check_public(cfg.alg, &jwk, key, field)?;
    Ok((enc, jwk))
}

/// Builds the key a [`crate::TokenSigner`] signs with, after the same checks
/// a [`KeySet`] applies.
pub(crate) fn signing_key(cfg: &KeyConfig, key: &str) -> Result<EncodingKey, KeyError> {
    check_fields(cfg, key)?;
    match cfg.alg {
        Alg::HS256 => Ok(EncodingKey::from_secret(hmac_secret(cfg, key)?)),
        _ => private_key(cfg, key).map(|(enc, _)| enc),
    }
}

/// One loaded verifying key.
#[derive(Debug, Clone)]
pub(crate) struct VerifyingKey {
    pub(crate) kid: Option<String>,
    pub(crate) alg: Alg,
    pub(crate) key: DecodingKey,
    /// Signature-only validation pinned to `alg`: the claim checks are done
    /// by the verifier against the `now` it is given.
    pub(crate) validation: Validation,
}

impl VerifyingKey {
    /// Loads the verifying half of `cfg`; `key` names it in errors.
    pub(crate) fn new(cfg: &KeyConfig, key: &str) -> Result<Self, KeyError> {
        check_fields(cfg, key)?;
        let field = "public_key_pem";
        let decoding = match (cfg.alg, &cfg.public_key_pem) {
            (Alg::HS256, _) => DecodingKey::from_secret(hmac_secret(cfg, key)?),
            (alg, Some(pem)) => {
                let invalid = |e: jsonwebtoken::errors::Error| KeyError::InvalidPem {
                    key: key.to_owned(),
                    alg,
                    field,
                    reason: e.to_string(),
                };
                let dec = match alg {
                    Alg::RS256 => DecodingKey::from_rsa_pem(pem.as_bytes()),
                    Alg::ES256 => DecodingKey::from_ec_pem(pem.as_bytes()),
                    Alg::EdDSA => DecodingKey::from_ed_pem(pem.as_bytes()),
                    Alg::HS256 => Err(ErrorKind::InvalidKeyFormat.into()),
                }
                .map_err(invalid)?;
                let jwk = Jwk::from_decoding_key(&dec, Some(alg.jwt())).map_err(invalid)?;
                check_public(alg, &jwk, key, field)?;
                // Build the verifier once now, so a key it refuses (an
                // invalid curve point) fails here and not on every token.
                jsonwebtoken::crypto::verify("AA", b"probe", &dec, alg.jwt()).map_err(invalid)?;
                if cfg.private_key_pem.is_some()
                    && private_key(cfg, key)?.1.algorithm != jwk.algorithm
                {
                    return Err(KeyError::KeyPairMismatch {
                        key: key.to_owned(),
                    });
                }
                dec
            }
            (alg, None) if cfg.private_key_pem.is_none() => {
                return Err(KeyError::MissingField {
                    key: key.to_owned(),
                    alg,
                    field,
                });
            }
            (alg, None) => {
                let (_, jwk) = private_key(cfg, key)?;
                DecodingKey::from_jwk(&jwk).map_err(|e| KeyError::InvalidPem {
                    key: key.to_owned(),
                    alg,
                    field: "private_key_pem",
                    reason: e.to_string(),
                })?
            }
        };
        let mut validation = Validation::new(cfg.alg.jwt());
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.leeway = 0;
        Ok(Self {
            kid: cfg.kid.clone(),
            alg: cfg.alg,
            key: decoding,
            validation,
        })
    }
}
