//! [`TokenSource`]: where each simulated user's JWT comes from.
//!
//! Either minted here from a key given on the command line (HS256 secret
//! and `kid`; by default the gateway's development key, so a gateway in
//! development mode accepts them as is), or read from a file with one token
//! per line, handed out round robin. Minted tokens name users
//! `<prefix>-<index>`; each connection gets its own user unless the file
//! says otherwise.

use std::path::Path;
use std::sync::Arc;

use tokenim_auth::{Alg, KeyConfig, MintRequest, TokenSigner};
use tokenim_protocol::UserId;

/// The gateway's built-in development secret (`dev_mode`, kid `dev`).
/// Public by design: never configure it on a gateway that matters.
pub const DEV_SECRET: &str = "tokenim-development-secret-do-not-use-in-production";
/// The `kid` of the development key.
pub const DEV_KID: &str = "dev";

/// Why no token could be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The key could not sign (e.g. an HS256 secret shorter than the
    /// verifier accepts).
    #[error("signing key: {0}")]
    Key(String),
    /// The token file could not be read or holds no token.
    #[error("token file {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The user id built from the prefix is not a valid user id.
    #[error("user id {0:?} is invalid: use letters, digits, _ - . @ (at most 64 bytes)")]
    User(String),
}

/// Hands out a token per connection index. Cheap to clone.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// Mints a token per user with this signer.
    Mint {
        /// The signer.
        signer: Arc<TokenSigner>,
        /// User ids are `<prefix>-<index>`.
        prefix: String,
        /// Token lifetime in seconds; keep it longer than the run.
        ttl_secs: u64,
        /// Channel patterns put in the `channels` and `publish` claims
        /// (`None`: no claims, the gateway's roles decide).
        claims: Option<Vec<String>>,
    },
    /// Tokens from a file, used round robin.
    File(Arc<[String]>),
}

impl TokenSource {
    /// A source that mints HS256 tokens with `secret` and `kid`.
    pub fn hs256(
        secret: &str,
        kid: Option<&str>,
        prefix: &str,
        ttl_secs: u64,
    ) -> Result<Self, TokenError> {
        let key = KeyConfig {
            kid: kid.map(str::to_owned),
            alg: Alg::HS256,
            secret: Some(secret.to_owned()),
            public_key_pem: None,
            private_key_pem: None,
        };
        let signer = TokenSigner::new(&key).map_err(|e| TokenError::Key(e.to_string()))?;
        let source = TokenSource::Mint {
            signer: Arc::new(signer),
            prefix: prefix.to_owned(),
            ttl_secs,
            claims: None,
        };
        source.token(0)?;
        Ok(source)
    }

    /// This source with `patterns` in every minted token's `channels` and
    /// `publish` claims: what a gateway in production lets a user without
    /// roles do. No effect on tokens from a file.
    pub fn with_claims(self, patterns: Vec<String>) -> Self {
        match self {
            TokenSource::Mint {
                signer,
                prefix,
                ttl_secs,
                ..
            } => TokenSource::Mint {
                signer,
                prefix,
                ttl_secs,
                claims: Some(patterns),
            },
            file => file,
        }
    }

    /// The development key of a gateway in `dev_mode`.
    pub fn dev(prefix: &str, ttl_secs: u64) -> Result<Self, TokenError> {
        Self::hs256(DEV_SECRET, Some(DEV_KID), prefix, ttl_secs)
    }

    /// Tokens read from `path`, one per line (blank lines and lines
    /// starting with `#` skipped).
    pub fn file(path: &Path) -> Result<Self, TokenError> {
        let err = |reason: String| TokenError::File {
            path: path.display().to_string(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let tokens: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        if tokens.is_empty() {
            return Err(err("no tokens in file".into()));
        }
        Ok(TokenSource::File(tokens.into()))
    }

    /// The token for connection `index`.
    pub fn token(&self, index: usize) -> Result<String, TokenError> {
        match self {
            TokenSource::Mint {
                signer,
                prefix,
                ttl_secs,
                claims,
            } => {
                let name = format!("{prefix}-{index}");
                let user = UserId::new(&name).map_err(|_| TokenError::User(name))?;
                let request = MintRequest {
                    subscribe: claims.clone(),
                    publish: claims.clone(),
                    ..MintRequest::new(user, unix_secs(), *ttl_secs)
                };
                signer
                    .sign(&request)
                    .map_err(|e| TokenError::Key(e.to_string()))
            }
            TokenSource::File(tokens) => Ok(tokens[index % tokens.len()].clone()),
        }
    }

    /// The user id of connection `index`, when the generator chose it
    /// (minted tokens); `None` for tokens from a file.
    pub fn user(&self, index: usize) -> Option<String> {
        match self {
            TokenSource::Mint { prefix, .. } => Some(format!("{prefix}-{index}")),
            TokenSource::File(_) => None,
        }
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_tokens_name_one_user_per_index() {
        let source = TokenSource::dev("lt", 60).unwrap();
        let a = source.token(0).unwrap();
        let b = source.token(1).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.split('.').count(), 3);
        assert!(matches!(
            TokenSource::dev("no spaces", 60),
            Err(TokenError::User(_))
        ));
    }

    #[test]
    fn file_tokens_go_round_robin() {
        let path = std::env::temp_dir().join(format!("lt-tokens-{}", std::process::id()));
        std::fs::write(&path, "# tokens\na.b.c\n\nd.e.f\n").unwrap();
        let source = TokenSource::file(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(source.token(0).unwrap(), "a.b.c");
        assert_eq!(source.token(1).unwrap(), "d.e.f");
        assert_eq!(source.token(2).unwrap(), "a.b.c");
    }
}
