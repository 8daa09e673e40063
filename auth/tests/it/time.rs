//! `exp` and `nbf` against the caller's clock, at the edges of the leeway.

use serde_json::json;
use tokenim_auth::{KeyConfig, TokenError};
use tokenim_protocol::ErrorCode;

use crate::support::*;

fn token(claims: &serde_json::Value) -> String {
    sign_hs(None, SECRET, claims)
}

#[test]
fn expired_with_default_leeway_of_five_seconds() {
    let v = verifier(vec![KeyConfig::hs256(SECRET)]);
    let t = token(&json!({ "sub": "alice", "exp": NOW }));
    assert!(v.verify(&t, NOW - 1).is_ok());
    assert!(v.verify(&t, NOW).is_ok(), "inside the leeway");
    assert!(v.verify(&t, NOW + 4).is_ok(), "last second of the leeway");
    let e = v.verify(&t, NOW + 5).unwrap_err();
    assert_eq!(e, TokenError::Expired { expired_at: NOW });
    assert_eq!(e.code(), ErrorCode::TokenExpired);
    assert_eq!(e.reason(), "expired");
    assert!(v.verify(&t, NOW + 100_000).is_err());
}

#[test]
fn expired_without_leeway() {
    let v = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| c.leeway_secs = 0);
    let t = token(&json!({ "sub": "alice", "exp": NOW }));
    assert!(v.verify(&t, NOW - 1).is_ok());
    assert_eq!(
        v.verify(&t, NOW),
        Err(TokenError::Expired { expired_at: NOW })
    );
}

#[test]
fn not_yet_valid_with_leeway() {
    let v = verifier(vec![KeyConfig::hs256(SECRET)]);
    let t = token(&json!({ "sub": "alice", "nbf": NOW + 100, "exp": NOW + 1000 }));
    assert!(v.verify(&t, NOW + 100).is_ok());
    assert!(v.verify(&t, NOW + 95).is_ok(), "first second of the leeway");
    let e = v.verify(&t, NOW + 94).unwrap_err();
    assert_eq!(
        e,
        TokenError::NotYetValid {
            not_before: NOW + 100
        }
    );
    assert_eq!(e.code(), ErrorCode::InvalidToken);
    assert_eq!(e.reason(), "not_yet_valid");
}

#[test]
fn not_yet_valid_without_leeway() {
    let v = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| c.leeway_secs = 0);
    let t = token(&json!({ "sub": "alice", "nbf": NOW, "exp": NOW + 1000 }));
    assert!(v.verify(&t, NOW).is_ok());
    assert_eq!(
        v.verify(&t, NOW - 1),
        Err(TokenError::NotYetValid { not_before: NOW })
    );
}

#[test]
fn extreme_times_do_not_overflow() {
    let v = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| c.leeway_secs = u64::MAX);
    let t = token(&json!({ "sub": "alice", "nbf": u64::MAX, "exp": u64::MAX }));
    assert!(v.verify(&t, u64::MAX - 1).is_ok());
    assert!(v.verify(&t, 0).is_ok());
    let v = verifier(vec![KeyConfig::hs256(SECRET)]);
    let t = token(&json!({ "sub": "alice", "exp": 0 }));
    assert!(v.verify(&t, 4).is_ok());
    assert_eq!(v.verify(&t, 5), Err(TokenError::Expired { expired_at: 0 }));
}

#[test]
fn iat_in_the_future_is_only_reported() {
    // `iat` is informational (RFC 7519); it is returned, not enforced.
    let v = verifier(vec![KeyConfig::hs256(SECRET)]);
    let t = token(&json!({ "sub": "alice", "iat": NOW + 3600, "exp": NOW + 7200 }));
    assert_eq!(v.verify(&t, NOW).unwrap().issued_at, Some(NOW + 3600));
}
