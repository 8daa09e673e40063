//! Shared fixtures: the test keys, a fixed clock, and helpers that mint
//! tokens with arbitrary headers and claims.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokenim_auth::{Alg, KeyConfig, TokenVerifier, VerifierConfig};

pub(crate) const RSA_PRIVATE: &str = include_str!("../keys/rsa_private.pem");
pub(crate) const RSA_PUBLIC: &str = include_str!("../keys/rsa_public.pem");
pub(crate) const RSA1024_PUBLIC: &str = include_str!("../keys/rsa1024_public.pem");
pub(crate) const EC_PRIVATE: &str = include_str!("../keys/ec_private.pem");
pub(crate) const EC_PUBLIC: &str = include_str!("../keys/ec_public.pem");
pub(crate) const P384_PUBLIC: &str = include_str!("../keys/p384_public.pem");
pub(crate) const ED_PRIVATE: &str = include_str!("../keys/ed_private.pem");
pub(crate) const ED_PUBLIC: &str = include_str!("../keys/ed_public.pem");
pub(crate) const ED2_PRIVATE: &str = include_str!("../keys/ed2_private.pem");
pub(crate) const ED2_PUBLIC: &str = include_str!("../keys/ed2_public.pem");

/// A 40-byte HS256 secret.
pub(crate) const SECRET: &str = "tokenim-test-secret-0123456789abcdefghij";
/// Another one, for rotation and bad-signature tests.
pub(crate) const SECRET2: &str = "tokenim-other-secret-9876543210zyxwvutsr";

/// The fixed "now" of every test, in seconds since the Unix epoch.
pub(crate) const NOW: u64 = 1_700_000_000;

pub(crate) fn hs(kid: &str, secret: &str) -> KeyConfig {
    KeyConfig::hs256(secret).with_kid(kid)
}

pub(crate) fn verifier(keys: Vec<KeyConfig>) -> TokenVerifier {
    TokenVerifier::new(&VerifierConfig::with_keys(keys)).expect("valid test keys")
}

pub(crate) fn verifier_with(
    keys: Vec<KeyConfig>,
    tweak: impl FnOnce(&mut VerifierConfig),
) -> TokenVerifier {
    let mut config = VerifierConfig::with_keys(keys);
    tweak(&mut config);
    TokenVerifier::new(&config).expect("valid test config")
}

/// Claims that pass every check at [`NOW`].
pub(crate) fn good_claims() -> Value {
    json!({ "sub": "alice", "iat": NOW, "exp": NOW + 600 })
}

/// Signs `claims` with jsonwebtoken directly, so tests can write any claim.
pub(crate) fn sign_raw(
    alg: Algorithm,
    kid: Option<&str>,
    key: &EncodingKey,
    claims: &Value,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, key).expect("test token signs")
}

/// Signs `claims` with an HS256 secret, under `kid`.
pub(crate) fn sign_hs(kid: Option<&str>, secret: &str, claims: &Value) -> String {
    sign_raw(
        Algorithm::HS256,
        kid,
        &EncodingKey::from_secret(secret.as_bytes()),
        claims,
    )
}

/// Signs `claims` with the private key of `alg` from the test keys.
pub(crate) fn sign_pem(alg: Alg, kid: Option<&str>, claims: &Value) -> String {
    let key = match alg {
        Alg::HS256 => EncodingKey::from_secret(SECRET.as_bytes()),
        Alg::RS256 => EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap(),
        Alg::ES256 => EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap(),
        Alg::EdDSA => EncodingKey::from_ed_pem(ED_PRIVATE.as_bytes()).unwrap(),
    };
    let alg = match alg {
        Alg::HS256 => Algorithm::HS256,
        Alg::RS256 => Algorithm::RS256,
        Alg::ES256 => Algorithm::ES256,
        Alg::EdDSA => Algorithm::EdDSA,
    };
    sign_raw(alg, kid, &key, claims)
}

pub(crate) fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A hand-made compact token: base64url(header).base64url(claims).signature.
pub(crate) fn craft(header: &Value, claims: &Value, signature: &str) -> String {
    format!(
        "{}.{}.{signature}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes())
    )
}
