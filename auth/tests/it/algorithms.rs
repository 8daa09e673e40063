//! Tokens of each supported algorithm verify, minted by `TokenSigner` or by
//! jsonwebtoken directly, and the claims come through intact.

use serde_json::json;
use tokenim_auth::{Alg, ChannelScope, KeyConfig, MintRequest, TokenError, TokenSigner};
use tokenim_protocol::{ChannelName, UserId};

use crate::support::*;

fn private(alg: Alg) -> KeyConfig {
    match alg {
        Alg::HS256 => KeyConfig::hs256(SECRET),
        Alg::RS256 => KeyConfig::private_pem(alg, RSA_PRIVATE),
        Alg::ES256 => KeyConfig::private_pem(alg, EC_PRIVATE),
        Alg::EdDSA => KeyConfig::private_pem(alg, ED_PRIVATE),
    }
}

fn public(alg: Alg) -> KeyConfig {
    match alg {
        Alg::HS256 => KeyConfig::hs256(SECRET),
        Alg::RS256 => KeyConfig::public_pem(alg, RSA_PUBLIC),
        Alg::ES256 => KeyConfig::public_pem(alg, EC_PUBLIC),
        Alg::EdDSA => KeyConfig::public_pem(alg, ED_PUBLIC),
    }
}

fn request() -> MintRequest {
    MintRequest {
        audience: Some("tokenim".into()),
        issuer: Some("https://app.example".into()),
        subscribe: Some(vec!["rooms.*".into(), "news".into()]),
        publish: Some(vec!["rooms.lobby".into()]),
        token_id: Some("tok-1".into()),
        ..MintRequest::new(UserId::new("alice").unwrap(), NOW, 600)
    }
}

fn sign_then_verify(alg: Alg) {
    let signer = TokenSigner::new(&private(alg).with_kid("k")).unwrap();
    assert_eq!((signer.alg(), signer.kid()), (alg, Some("k")));
    let token = signer.sign(&request()).unwrap();
    let header = jsonwebtoken::decode_header(&token).unwrap();
    assert_eq!(header.kid.as_deref(), Some("k"));
    assert_eq!(header.alg, alg_of(alg));

    let v = verifier_with(vec![public(alg).with_kid("k")], |c| {
        c.audience = Some("tokenim".into());
        c.issuer = Some("https://app.example".into());
    });
    let claims = v.verify(&token, NOW + 1).unwrap();
    assert_eq!(claims.user.as_str(), "alice");
    assert_eq!(claims.expires_at, Some(NOW + 600));
    assert_eq!(claims.issued_at, Some(NOW));
    assert_eq!(claims.token_id.as_deref(), Some("tok-1"));
    let ch = |s| ChannelName::new(s).unwrap();
    assert!(claims.can_subscribe(&ch("rooms.lobby")));
    assert!(claims.can_subscribe(&ch("news")));
    assert!(!claims.can_subscribe(&ch("newsroom")));
    assert!(claims.can_publish(&ch("rooms.lobby")));
    assert!(!claims.can_publish(&ch("rooms.other")));
}

fn alg_of(alg: Alg) -> jsonwebtoken::Algorithm {
    alg.as_str().parse().unwrap()
}

#[test]
fn hs256_round_trip() {
    sign_then_verify(Alg::HS256);
}

#[test]
fn rs256_round_trip() {
    sign_then_verify(Alg::RS256);
}

#[test]
fn es256_round_trip() {
    sign_then_verify(Alg::ES256);
}

#[test]
fn eddsa_round_trip() {
    sign_then_verify(Alg::EdDSA);
}

#[test]
fn tokens_from_other_issuers_verify() {
    // Minted by jsonwebtoken itself, as an application backend would.
    for alg in Alg::ALL {
        let token = sign_pem(alg, None, &good_claims());
        let claims = verifier(vec![public(alg)]).verify(&token, NOW).unwrap();
        assert_eq!(claims.user.as_str(), "alice", "{alg}");
        assert_eq!(claims.subscribe, ChannelScope::Any, "{alg}");
        assert_eq!(claims.publish, ChannelScope::Any, "{alg}");
    }
}

#[test]
fn private_key_alone_also_verifies() {
    for alg in [Alg::RS256, Alg::ES256, Alg::EdDSA] {
        let key = private(alg);
        let token = TokenSigner::new(&key).unwrap().sign(&request()).unwrap();
        assert!(verifier(vec![key]).verify(&token, NOW).is_ok(), "{alg}");
    }
}

#[test]
fn public_and_private_halves_of_one_pair_are_accepted() {
    let key = KeyConfig {
        private_key_pem: Some(ED_PRIVATE.into()),
        ..public(Alg::EdDSA)
    };
    let token = TokenSigner::new(&key).unwrap().sign(&request()).unwrap();
    assert!(verifier(vec![key]).verify(&token, NOW).is_ok());
}

#[test]
fn float_dates_are_accepted() {
    let claims = json!({ "sub": "alice", "iat": NOW as f64 + 0.5, "exp": NOW as f64 + 10.75 });
    let c = verifier(vec![KeyConfig::hs256(SECRET)]).verify(&sign_hs(None, SECRET, &claims), NOW);
    let c = c.unwrap();
    assert_eq!((c.issued_at, c.expires_at), (Some(NOW), Some(NOW + 10)));
}

#[test]
fn signer_refuses_what_the_verifier_would_refuse() {
    let signer = TokenSigner::new(&KeyConfig::hs256(SECRET)).unwrap();
    let bad = MintRequest {
        publish: Some(vec!["a*b".into()]),
        ..request()
    };
    assert!(matches!(
        signer.sign(&bad),
        Err(tokenim_auth::KeyError::InvalidMint { .. })
    ));
    let overflow = MintRequest {
        issued_at: u64::MAX,
        ..request()
    };
    assert!(matches!(
        signer.sign(&overflow),
        Err(tokenim_auth::KeyError::InvalidMint { .. })
    ));
    // A verify-only key cannot sign.
    let e = TokenSigner::new(&public(Alg::RS256)).unwrap_err();
    assert!(e.to_string().contains("private_key_pem"), "{e}");
    // And the expiry it writes is enforced.
    let token = signer.sign(&request()).unwrap();
    let v = verifier(vec![KeyConfig::hs256(SECRET)]);
    assert_eq!(
        v.verify(&token, NOW + 605),
        Err(TokenError::Expired {
            expired_at: NOW + 600
        })
    );
}
