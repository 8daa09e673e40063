//! The two failure domains of this crate.
//!
//! * [`TokenError`]: a presented token was refused. It maps onto a stable
//!   reply code with [`TokenError::code`] and onto a bounded metric label with
//!   [`TokenError::reason`]. Its `Display` text is safe to send back to the
//!   client: it never holds key material and echoes at most a short, truncated
//!   piece of what the client sent.
//! * [`KeyError`]: the key or verifier configuration is wrong, or a token
//!   could not be minted. It is raised at start-up (or by the dev-only signer)
//!   and names the key by its position in `keys` and its `kid`.

use tokenim_protocol::ErrorCode;

use crate::keys::Alg;

/// Longest piece of client input (a `kid`, an `alg`, a pattern) copied into
/// an error, in characters, so that an error never grows with the token.
pub(crate) const ECHO_MAX: usize = 64;

/// Copies at most [`ECHO_MAX`] characters of client input into an error.
pub(crate) fn echo(s: &str) -> String {
    s.chars().take(ECHO_MAX).collect()
}

/// Why a user token was refused.
///
/// Every variant but [`TokenError::Expired`] maps to
/// [`ErrorCode::InvalidToken`]: the client must get a new token from its
/// application backend, and retrying with the same token cannot succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The token is longer than `max_token_len`; it was refused before any
    /// decoding. The client sent something that is not one of our tokens, or
    /// the issuer packs too many claims: shorten the scope lists.
    #[error("token is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// Length of the presented token, in bytes.
        len: usize,
        /// The configured `max_token_len`.
        max: usize,
    },
    /// The token is not a JWT in compact form (three base64url parts with a
    /// JSON header and claims), or a claim has the wrong type. Fix the
    /// issuer; the same token will always fail.
    #[error("malformed token: {detail}")]
    Malformed {
        /// Which part could not be read.
        detail: &'static str,
    },
    /// The header names an algorithm that is not accepted: `none`, an
    /// algorithm this crate does not support, or one that differs from the
    /// algorithm configured for the key the token selects (algorithm
    /// confusion). Issue the token with the key's configured algorithm.
    #[error("algorithm {alg:?} is not accepted for this key")]
    DisallowedAlg {
        /// The `alg` from the header (truncated).
        alg: String,
    },
    /// The header's `kid` names no configured key: the key was removed or
    /// not yet deployed. Issue tokens with a current key, or add the key to
    /// the gateway's `keys` before the issuer starts using it.
    #[error("no key with kid {kid:?}")]
    UnknownKid {
        /// The `kid` from the header (truncated).
        kid: String,
    },
    /// The header has no `kid` but several keys are configured, so the key
    /// cannot be chosen. Put the key's `kid` in the token header.
    #[error("token has no kid and several keys are configured")]
    MissingKid,
    /// The signature does not match the selected key: the token was forged,
    /// altered, or signed with another key.
    #[error("bad signature")]
    BadSignature,
    /// The token's `exp` (plus the leeway) has passed. Get a new token and
    /// reconnect; this is the one refusal a client should expect routinely.
    #[error("token expired at {expired_at}")]
    Expired {
        /// The token's `exp`, in seconds since the Unix epoch.
        expired_at: u64,
    },
    /// The token's `nbf` is still in the future (beyond the leeway). Check
    /// the issuer's clock, or wait.
    #[error("token not valid before {not_before}")]
    NotYetValid {
        /// The token's `nbf`, in seconds since the Unix epoch.
        not_before: u64,
    },
    /// The token has no `exp` and the verifier requires one. Issue tokens
    /// with an expiry.
    #[error("token has no exp")]
    MissingExp,
    /// An audience is configured and the token's `aud` is missing or does
    /// not contain it. The token was issued for another service.
    #[error("token audience is missing or wrong")]
    WrongAudience,
    /// An issuer is configured and the token's `iss` is missing or differs.
    #[error("token issuer is missing or wrong")]
    WrongIssuer,
    /// The `sub` claim is missing or is not a valid user id
    /// (1 to 64 bytes of `A-Z a-z 0-9 _ - . @`).
    #[error("token sub is missing or not a valid user id")]
    InvalidSubject,
    /// A `channels` or `publish` entry is not a valid channel pattern (an
    /// exact channel name, or a prefix followed by a single trailing `*`).
    #[error("invalid channel pattern {pattern:?} in claim {claim}")]
    InvalidScope {
        /// The claim holding the pattern: `channels` or `publish`.
        claim: &'static str,
        /// The offending pattern (truncated).
        pattern: String,
    },
}

impl TokenError {
    /// Every value [`TokenError::reason`] can return, so that a metric can
    /// register each label up front.
    pub const REASONS: &'static [&'static str] = &[
        "too_large",
        "malformed",
        "disallowed_alg",
        "unknown_kid",
        "missing_kid",
        "bad_signature",
        "expired",
        "not_yet_valid",
        "missing_exp",
        "wrong_audience",
        "wrong_issuer",
        "invalid_subject",
        "invalid_scope",
    ];

    /// A short snake_case label for this refusal, from a fixed set
    /// ([`TokenError::REASONS`]), fit for a Prometheus label.
    ///
    /// ```
    /// use tokenim_auth::TokenError;
    /// assert_eq!(TokenError::BadSignature.reason(), "bad_signature");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge { .. } => "too_large",
            Self::Malformed { .. } => "malformed",
            Self::DisallowedAlg { .. } => "disallowed_alg",
            Self::UnknownKid { .. } => "unknown_kid",
            Self::MissingKid => "missing_kid",
            Self::BadSignature => "bad_signature",
            Self::Expired { .. } => "expired",
            Self::NotYetValid { .. } => "not_yet_valid",
            Self::MissingExp => "missing_exp",
            Self::WrongAudience => "wrong_audience",
            Self::WrongIssuer => "wrong_issuer",
            Self::InvalidSubject => "invalid_subject",
            Self::InvalidScope { .. } => "invalid_scope",
        }
    }

    /// The reply code: [`ErrorCode::TokenExpired`] for an expired token,
    /// [`ErrorCode::InvalidToken`] for everything else.
    ///
    /// ```
    /// use tokenim_auth::TokenError;
    /// use tokenim_protocol::ErrorCode;
    /// assert_eq!(TokenError::Expired { expired_at: 1 }.code(), ErrorCode::TokenExpired);
    /// assert_eq!(TokenError::MissingKid.code(), ErrorCode::InvalidToken);
    /// ```
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Expired { .. } => ErrorCode::TokenExpired,
            _ => ErrorCode::InvalidToken,
        }
    }
}

/// A key or verifier configuration problem, or a token that could not be
/// minted. `key` names the key as `keys[<index>]` plus its `kid` when it has
/// one, so the operator can find it in the config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// `keys` is empty, so every token would be refused. Configure at least
    /// one key.
    #[error("no token keys configured: add at least one entry to `keys`")]
    NoKeys,
    /// An HS256 secret is shorter than 32 bytes and could be brute-forced.
    /// Generate a longer random secret (e.g. `openssl rand -base64 48`).
    #[error("{key}: HS256 `secret` is {len} bytes, at least 32 are required")]
    SecretTooShort {
        /// Which key.
        key: String,
        /// Length of the configured secret, in bytes.
        len: usize,
    },
    /// A field the key's algorithm needs is not set.
    #[error("{key}: {alg} needs `{field}`")]
    MissingField {
        /// Which key.
        key: String,
        /// The key's configured algorithm.
        alg: Alg,
        /// The missing field.
        field: &'static str,
    },
    /// A field that does not belong to the key's algorithm is set (for
    /// example a `secret` on an RS256 key). Refused rather than ignored, so
    /// that a key is never used with an algorithm it was not meant for.
    #[error("{key}: `{field}` does not apply to {alg}; remove it")]
    UnexpectedField {
        /// Which key.
        key: String,
        /// The key's configured algorithm.
        alg: Alg,
        /// The field to remove.
        field: &'static str,
    },
    /// A PEM field does not hold a key usable with the configured
    /// algorithm (wrong type, wrong curve, or not PEM at all).
    #[error("{key}: `{field}` is not a valid {alg} key: {reason}")]
    InvalidPem {
        /// Which key.
        key: String,
        /// The key's configured algorithm.
        alg: Alg,
        /// The PEM field at fault.
        field: &'static str,
        /// What the parser said.
        reason: String,
    },
    /// An RS256 key is shorter than 2048 bits. Use a 2048-bit or longer key.
    #[error("{key}: RSA key is {bits} bits, at least 2048 are required")]
    RsaTooShort {
        /// Which key.
        key: String,
        /// Size of the modulus, in bits.
        bits: usize,
    },
    /// `public_key_pem` and `private_key_pem` are both set but are not the
    /// two halves of one key pair: tokens minted with it would not verify.
    #[error("{key}: `public_key_pem` and `private_key_pem` are not one key pair")]
    KeyPairMismatch {
        /// Which key.
        key: String,
    },
    /// Several keys are configured and this one has no `kid` (or an empty
    /// one), so no token could ever select it. Give every key a distinct
    /// `kid`.
    #[error("{key}: several keys are configured, so each needs a non-empty `kid`")]
    MissingKid {
        /// Which key.
        key: String,
    },
    /// Two keys share a `kid`. Give every key a distinct `kid`.
    #[error("{key}: kid {kid:?} is already used by another key")]
    DuplicateKid {
        /// The second key with this kid.
        key: String,
        /// The shared kid.
        kid: String,
    },
    /// The mint request itself is wrong (an invalid channel pattern, an
    /// expiry past the end of time). Fix the request.
    #[error("cannot mint token: {reason}")]
    InvalidMint {
        /// What is wrong with the request.
        reason: String,
    },
    /// The signing primitive failed. Not expected with a key that passed
    /// construction; report it.
    #[error("{key}: signing failed: {reason}")]
    Signing {
        /// Which key.
        key: String,
        /// What the crypto library said.
        reason: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_listed_and_distinct() {
        let all = [
            TokenError::TooLarge { len: 2, max: 1 },
            TokenError::Malformed { detail: "x" },
            TokenError::DisallowedAlg { alg: "none".into() },
            TokenError::UnknownKid { kid: "k".into() },
            TokenError::MissingKid,
            TokenError::BadSignature,
            TokenError::Expired { expired_at: 1 },
            TokenError::NotYetValid { not_before: 1 },
            TokenError::MissingExp,
            TokenError::WrongAudience,
            TokenError::WrongIssuer,
            TokenError::InvalidSubject,
            TokenError::InvalidScope {
                claim: "channels",
                pattern: "*x".into(),
            },
        ];
        let reasons: Vec<_> = all.iter().map(TokenError::reason).collect();
        assert_eq!(reasons, TokenError::REASONS);
        for e in &all {
            let want = if matches!(e, TokenError::Expired { .. }) {
                ErrorCode::TokenExpired
            } else {
                ErrorCode::InvalidToken
            };
            assert_eq!(e.code(), want, "{e}");
        }
    }

    #[test]
    fn echo_is_bounded() {
        assert_eq!(echo(&"k".repeat(1000)).len(), ECHO_MAX);
        assert_eq!(echo("short"), "short");
    }
}
