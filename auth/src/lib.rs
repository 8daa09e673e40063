//! tokenim authentication and policy: verifying the user tokens (JWT) that
//! clients present when they connect and the channel scopes those tokens
//! carry; the server API keys applications authenticate with; roles,
//! permissions and grants; and the audit record of who changed what.
//!
//! The crate does no I/O and never reads the clock: the caller passes the
//! current time to [`TokenVerifier::verify`], so every expiry edge case is a
//! plain unit test.
//!
//! # Layout
//!
//! * [`keys`]: [`Alg`], [`KeyConfig`] (one key as configured) and
//!   [`KeySet`] (verifying keys selected by `kid`, for rotation).
//! * `material` (private): loads key material from a [`KeyConfig`] with
//!   every load-time check, for both the verifier and the signer.
//! * [`token`]: [`VerifierConfig`] and [`TokenVerifier`], which turns a
//!   token into [`UserClaims`] or a [`TokenError`].
//! * [`claims`]: [`UserClaims`], what a verified token says.
//! * [`scope`]: [`ChannelScope`] and [`ChannelPattern`], the channels a
//!   token may subscribe or publish to.
//! * [`signer`]: [`TokenSigner`] and [`MintRequest`], to mint tokens in dev
//!   mode and tests.
//! * [`api_key`]: [`ApiKey`], [`ApiKeyId`], [`ApiSecret`] (shown once),
//!   [`SecretHash`] (stored), [`Scope`] and [`ApiKeyError`].
//! * [`permission`]: [`Permission`], [`Role`], [`Grant`], [`Subject`],
//!   [`Principal`] and the [`Policy`] that decides.
//! * [`audit`]: [`AuditRecord`] and [`AuditAction`].
//! * [`error`]: [`TokenError`] (a refused token, with its reply code and
//!   metric label) and [`KeyError`] (bad key configuration).
//!
//! # Example
//!
//! ```
//! use tokenim_auth::{KeyConfig, MintRequest, TokenSigner, TokenVerifier, VerifierConfig};
//! use tokenim_protocol::{ChannelName, UserId};
//!
//! let key = KeyConfig::hs256("an HS256 secret of at least 32 bytes").with_kid("2024-06");
//! let verifier = TokenVerifier::new(&VerifierConfig::with_keys(vec![key.clone()])).unwrap();
//! let signer = TokenSigner::new(&key).unwrap();
//!
//! let mut req = MintRequest::new(UserId::new("alice").unwrap(), 1_700_000_000, 3600);
//! req.subscribe = Some(vec!["rooms.*".into()]);
//! let token = signer.sign(&req).unwrap();
//!
//! let claims = verifier.verify(&token, 1_700_000_100).unwrap();
//! assert_eq!(claims.user.as_str(), "alice");
//! assert!(claims.can_subscribe(&ChannelName::new("rooms.lobby").unwrap()));
//! assert!(!claims.can_subscribe(&ChannelName::new("admin").unwrap()));
//!
//! let late = verifier.verify(&token, 1_700_003_600 + 5).unwrap_err();
//! assert_eq!(late.reason(), "expired");
//! ```

pub mod api_key;
pub mod audit;
pub mod claims;
pub mod error;
pub mod keys;
mod material;
pub mod permission;
pub mod scope;
pub mod signer;
pub mod token;

pub use api_key::{ApiKey, ApiKeyError, ApiKeyId, ApiSecret, Scope, SecretHash};
pub use audit::{AuditAction, AuditRecord};
pub use claims::UserClaims;
pub use error::{KeyError, TokenError};
pub use keys::{Alg, KeyConfig, KeySet};
pub use permission::{
    DEFAULT_APP_ROLE, DEFAULT_USER_ROLE, Grant, InvalidRole, Permission, Policy, Principal, Role,
    RoleName, Subject,
};
pub use scope::{ChannelPattern, ChannelScope, InvalidPattern};
pub use signer::{MintRequest, TokenSigner};
pub use token::{TokenVerifier, VerifierConfig};
