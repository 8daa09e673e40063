//! The claims of a user token: what the verifier reads from a JWT payload
//! (`RawClaims`, private to the crate) and what it hands to the gateway
//! ([`UserClaims`]).
//!
//! Registered claims: `sub` (required, a valid [`UserId`]), `exp`, `nbf`,
//! `iat` (NumericDate: seconds since the Unix epoch; fractions are
//! truncated), `aud` (a string or an array of strings), `iss`, `jti`.
//! tokenim claims: `channels` (patterns the token may subscribe to) and
//! `publish` (patterns it may publish to), each an array of
//! [`crate::ChannelPattern`] strings. Unknown claims are ignored.

use serde::{Deserialize, Deserializer};
use tokenim_protocol::{ChannelName, UserId};

use crate::error::{TokenError, echo};
use crate::scope::ChannelScope;

/// Who a verified token speaks for and what it allows.
///
/// The gateway keeps this for the life of the session: it checks
/// [`UserClaims::can_subscribe`] / [`UserClaims::can_publish`] before its
/// own permission checks, can end the session at `expires_at`, and can match
/// `token_id` / `issued_at` against revocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserClaims {
    /// The user (`sub`).
    pub user: UserId,
    /// When the token expires (`exp`), in seconds since the Unix epoch;
    /// `None` if the token has no `exp` (only when `require_exp` is off).
    pub expires_at: Option<u64>,
    /// When the token was issued (`iat`), in seconds since the Unix epoch,
    /// if the token says.
    pub issued_at: Option<u64>,
    /// The token's id (`jti`), for revocation of a single token.
    pub token_id: Option<String>,
    /// Channels the token may subscribe to (`channels`).
    pub subscribe: ChannelScope,
    /// Channels the token may publish to (`publish`).
    pub publish: ChannelScope,
}

impl UserClaims {
    /// Whether the token allows subscribing to `channel`.
    pub fn can_subscribe(&self, channel: &ChannelName) -> bool {
        self.subscribe.allows(channel)
    }

    /// Whether the token allows publishing to `channel`.
    pub fn can_publish(&self, channel: &ChannelName) -> bool {
        self.publish.allows(channel)
    }
}

/// The `aud` claim: one audience or several.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(crate) enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    /// Whether `want` is (one of) the audience(s).
    pub(crate) fn contains(&self, want: &str) -> bool {
        match self {
            Self::One(aud) => aud == want,
            Self::Many(auds) => auds.iter().any(|a| a == want),
        }
    }
}

/// The payload as signed. Every claim is optional here; the verifier
/// decides which are required. A claim of the wrong type fails the whole
/// payload (`TokenError::Malformed`).
#[derive(Debug, Deserialize)]
pub(crate) struct RawClaims {
    #[serde(default)]
    pub(crate) sub: Option<String>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) exp: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) nbf: Option<u64>,
    #[serde(default, deserialize_with = "numeric_date")]
    pub(crate) iat: Option<u64>,
    #[serde(default)]
    pub(crate) aud: Option<Audience>,
    #[serde(default)]
    pub(crate) iss: Option<String>,
    #[serde(default)]
    pub(crate) jti: Option<String>,
    #[serde(default)]
    pub(crate) channels: Option<Vec<String>>,
    #[serde(default)]
    pub(crate) publish: Option<Vec<String>>,
}

impl RawClaims {
    /// Reads the claims from the payload's JSON object. Only an object is
    /// accepted (serde would otherwise also read a struct from an array).
    pub(crate) fn from_object(
        payload: serde_json::Map<String, serde_json::Value>,
    ) -> Result<Self, TokenError> {
        serde_json::from_value(serde_json::Value::Object(payload)).map_err(|_| {
            TokenError::Malformed {
                detail: "a claim has the wrong type",
            }
        })
    }

    /// Reads the subject and scopes. Time, audience and issuer must already
    /// have been checked by the caller.
    pub(crate) fn into_user_claims(self) -> Result<UserClaims, TokenError> {
        let user = self
            .sub
            .as_deref()
            .and_then(|s| UserId::new(s).ok())
            .ok_or(TokenError::InvalidSubject)?;
        Ok(UserClaims {
            user,
            expires_at: self.exp,
            issued_at: self.iat,
            token_id: self.jti,
            subscribe: scope("channels", self.channels.as_deref())?,
            publish: scope("publish", self.publish.as_deref())?,
        })
    }
}

fn scope(claim: &'static str, list: Option<&[String]>) -> Result<ChannelScope, TokenError> {
    ChannelScope::from_claim(list).map_err(|bad| TokenError::InvalidScope {
        claim,
        pattern: echo(&bad.0),
    })
}

/// A NumericDate: a non-negative JSON number of seconds; a fraction is
/// truncated to whole seconds.
fn numeric_date<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let Some(n) = Option::<serde_json::Number>::deserialize(d)? else {
        return Ok(None);
    };
    if let Some(secs) = n.as_u64() {
        return Ok(Some(secs));
    }
    match n.as_f64() {
        // Saturates for values past u64::MAX, which is the intent.
        Some(f) if f.is_finite() && f >= 0.0 => Ok(Some(f as u64)),
        _ => Err(serde::de::Error::custom(
            "a NumericDate must be a non-negative number",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(json: &str) -> Result<RawClaims, TokenError> {
        match serde_json::from_str(json) {
            Ok(serde_json::Value::Object(map)) => RawClaims::from_object(map),
            _ => Err(TokenError::Malformed {
                detail: "not an object",
            }),
        }
    }

    #[test]
    fn reads_every_claim() {
        let r = raw(
            r#"{"sub":"alice","exp":20,"nbf":5,"iat":4.9,"aud":["a","b"],"iss":"me",
            "jti":"t1","channels":["rooms.*"],"publish":[],"extra":{"x":1}}"#,
        )
        .unwrap();
        assert_eq!((r.exp, r.nbf, r.iat), (Some(20), Some(5), Some(4)));
        assert!(r.aud.as_ref().unwrap().contains("b"));
        assert!(!r.aud.as_ref().unwrap().contains("c"));
        let c = r.into_user_claims().unwrap();
        assert_eq!(c.user.as_str(), "alice");
        assert_eq!(c.token_id.as_deref(), Some("t1"));
        assert!(c.can_subscribe(&ChannelName::new("rooms.x").unwrap()));
        assert!(!c.can_subscribe(&ChannelName::new("news").unwrap()));
        assert!(!c.can_publish(&ChannelName::new("rooms.x").unwrap()));
    }

    #[test]
    fn absent_scopes_allow_any() {
        let c = raw(r#"{"sub":"bob","aud":"x"}"#)
            .unwrap()
            .into_user_claims()
            .unwrap();
        assert_eq!(c.subscribe, ChannelScope::Any);
        assert_eq!(c.publish, ChannelScope::Any);
        assert_eq!(c.expires_at, None);
    }

    #[test]
    fn wrong_types_are_errors() {
        for bad in [
            r#"{"sub":"a","exp":-1}"#,
            r#"{"sub":"a","exp":"10"}"#,
            r#"{"sub":"a","aud":5}"#,
            r#"{"sub":"a","channels":"rooms.*"}"#,
            r#"{"sub":1}"#,
            r#"[]"#,
        ] {
            assert!(raw(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_subject_and_scope() {
        let e = raw(r#"{"sub":"a b"}"#)
            .unwrap()
            .into_user_claims()
            .unwrap_err();
        assert_eq!(e, TokenError::InvalidSubject);
        let e = raw(r#"{}"#).unwrap().into_user_claims().unwrap_err();
        assert_eq!(e, TokenError::InvalidSubject);
        let e = raw(r#"{"sub":"a","publish":["ok","x*y"]}"#)
            .unwrap()
            .into_user_claims();
        assert_eq!(
            e.unwrap_err(),
            TokenError::InvalidScope {
                claim: "publish",
                pattern: "x*y".into()
            }
        );
    }
}
