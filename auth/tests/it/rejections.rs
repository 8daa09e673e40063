//! Every way a token is refused, one test each, with the exact error.

use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::json;
use tokenim_auth::{Alg, KeyConfig, MintRequest, TokenError, TokenSigner};
use tokenim_protocol::{ErrorCode, UserId};

use crate::support::*;

fn hs_verifier() -> tokenim_auth::TokenVerifier {
    verifier(vec![KeyConfig::hs256(SECRET)])
}

#[test]
fn over_the_size_cap_before_decoding() {
    let v = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| c.max_token_len = 100);
    let token = sign_hs(None, SECRET, &good_claims());
    assert!(token.len() > 100);
    assert_eq!(
        v.verify(&token, NOW),
        Err(TokenError::TooLarge {
            len: token.len(),
            max: 100
        })
    );
    // Garbage is refused for its size, not its shape: nothing was decoded.
    let junk = "x".repeat(101);
    assert_eq!(
        v.verify(&junk, NOW),
        Err(TokenError::TooLarge { len: 101, max: 100 })
    );
    // The default cap is 8 KiB.
    let junk = "x".repeat(8193);
    assert!(matches!(
        hs_verifier().verify(&junk, NOW),
        Err(TokenError::TooLarge { max: 8192, .. })
    ));
    let e = hs_verifier().verify(&"x".repeat(8192), NOW).unwrap_err();
    assert!(matches!(e, TokenError::Malformed { .. }), "{e:?}");
}

#[test]
fn garbage_is_malformed() {
    let good = sign_hs(None, SECRET, &good_claims());
    let parts: Vec<&str> = good.split('.').collect();
    let cases = [
        String::new(),
        "garbage".into(),
        "a.b".into(),
        format!("{good}.extra"),
        format!("{}.{}", parts[0], parts[1]),
        format!("!!!.{}.{}", parts[1], parts[2]),
        format!("{}.{}.{}", b64(b"not json"), parts[1], parts[2]),
        format!("{}.{}.{}", b64(br#"{"kid":"x"}"#), parts[1], parts[2]),
        format!("{}.{}.{}", b64(br#"{"alg":7}"#), parts[1], parts[2]),
        format!(" {good}"),
    ];
    for token in cases {
        let e = hs_verifier().verify(&token, NOW).unwrap_err();
        assert!(
            matches!(e, TokenError::Malformed { .. }),
            "{token:?}: {e:?}"
        );
        assert_eq!(e.reason(), "malformed");
        assert_eq!(e.code(), ErrorCode::InvalidToken);
    }
}

#[test]
fn signed_payload_that_is_not_claims_is_malformed() {
    let token = sign_hs(None, SECRET, &json!(["not", "an", "object"]));
    assert!(matches!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::Malformed { .. })
    ));
    let token = sign_hs(None, SECRET, &json!({ "sub": "alice", "exp": "tomorrow" }));
    assert!(matches!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::Malformed { .. })
    ));
}

#[test]
fn alg_none_is_refused() {
    let v = verifier(vec![hs("k1", SECRET)]);
    for alg in ["none", "None", "NONE", ""] {
        for header in [
            json!({ "alg": alg, "typ": "JWT" }),
            json!({ "alg": alg, "kid": "k1" }),
        ] {
            let token = craft(&header, &good_claims(), "");
            assert_eq!(
                v.verify(&token, NOW),
                Err(TokenError::DisallowedAlg { alg: alg.into() })
            );
        }
    }
}

#[test]
fn unsupported_algs_are_refused() {
    let hs512 = sign_raw(
        Algorithm::HS512,
        None,
        &EncodingKey::from_secret(SECRET.as_bytes()),
        &good_claims(),
    );
    let e = hs_verifier().verify(&hs512, NOW).unwrap_err();
    assert_eq!(
        e,
        TokenError::DisallowedAlg {
            alg: "HS512".into()
        }
    );
    assert_eq!(e.reason(), "disallowed_alg");
}

#[test]
fn algorithm_confusion_is_refused() {
    // The classic attack: HMAC-sign with the RSA *public* key as the secret,
    // naming the RSA key's kid, hoping the verifier feeds the PEM to HMAC.
    let rsa = KeyConfig::public_pem(Alg::RS256, RSA_PUBLIC).with_kid("rsa");
    let forged = sign_raw(
        Algorithm::HS256,
        Some("rsa"),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
        &good_claims(),
    );
    let want = Err(TokenError::DisallowedAlg {
        alg: "HS256".into(),
    });
    assert_eq!(verifier(vec![rsa.clone()]).verify(&forged, NOW), want);
    // Also when an HS256 key sits next to it.
    assert_eq!(
        verifier(vec![rsa.clone(), hs("hs", SECRET)]).verify(&forged, NOW),
        want
    );
    // And an ES256 token presented for the RS256 key.
    let es = sign_pem(Alg::ES256, Some("rsa"), &good_claims());
    let want = Err(TokenError::DisallowedAlg {
        alg: "ES256".into(),
    });
    assert_eq!(verifier(vec![rsa]).verify(&es, NOW), want);
}

#[test]
fn unknown_kid_is_refused() {
    let v = verifier(vec![hs("k1", SECRET)]);
    let token = sign_hs(Some("k9"), SECRET, &good_claims());
    assert_eq!(
        v.verify(&token, NOW),
        Err(TokenError::UnknownKid { kid: "k9".into() })
    );
    // A kid is never matched against a key that has none.
    let v = verifier(vec![KeyConfig::hs256(SECRET)]);
    assert_eq!(
        v.verify(&token, NOW),
        Err(TokenError::UnknownKid { kid: "k9".into() })
    );
    // A huge kid is truncated in the error.
    let token = sign_hs(Some(&"k".repeat(500)), SECRET, &good_claims());
    let Err(TokenError::UnknownKid { kid }) = v.verify(&token, NOW) else {
        panic!()
    };
    assert_eq!(kid.len(), 64);
}

#[test]
fn missing_kid_with_two_keys_is_refused() {
    let v = verifier(vec![hs("k1", SECRET), hs("k2", SECRET2)]);
    let token = sign_hs(None, SECRET, &good_claims());
    assert_eq!(v.verify(&token, NOW), Err(TokenError::MissingKid));
}

#[test]
fn bad_signature_is_refused() {
    // Signed with another secret.
    let token = sign_hs(None, SECRET2, &good_claims());
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::BadSignature)
    );

    // A valid token whose payload is swapped for another user's.
    for alg in Alg::ALL {
        let v = verifier(vec![match alg {
            Alg::HS256 => KeyConfig::hs256(SECRET),
            Alg::RS256 => KeyConfig::public_pem(alg, RSA_PUBLIC),
            Alg::ES256 => KeyConfig::public_pem(alg, EC_PUBLIC),
            Alg::EdDSA => KeyConfig::public_pem(alg, ED_PUBLIC),
        }]);
        let good = sign_pem(alg, None, &good_claims());
        assert!(v.verify(&good, NOW).is_ok(), "{alg}");
        let parts: Vec<&str> = good.split('.').collect();
        let evil = json!({ "sub": "mallory", "exp": NOW + 600 });
        let swapped = format!(
            "{}.{}.{}",
            parts[0],
            b64(evil.to_string().as_bytes()),
            parts[2]
        );
        assert_eq!(
            v.verify(&swapped, NOW),
            Err(TokenError::BadSignature),
            "{alg}"
        );
        // An empty or truncated signature.
        let stripped = format!("{}.{}.", parts[0], parts[1]);
        assert_eq!(
            v.verify(&stripped, NOW),
            Err(TokenError::BadSignature),
            "{alg}"
        );
    }

    // Signed by another Ed25519 key.
    let other = TokenSigner::new(&KeyConfig::private_pem(Alg::EdDSA, ED2_PRIVATE)).unwrap();
    let token = other
        .sign(&MintRequest::new(UserId::new("a").unwrap(), NOW, 60))
        .unwrap();
    let v = verifier(vec![KeyConfig::public_pem(Alg::EdDSA, ED_PUBLIC)]);
    assert_eq!(v.verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn crit_header_is_refused() {
    let header = json!({ "alg": "HS256", "crit": ["exp"] });
    let token = craft(&header, &good_claims(), "AAAA");
    assert!(matches!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::Malformed { .. })
    ));
}

#[test]
fn missing_exp_when_required() {
    let token = sign_hs(None, SECRET, &json!({ "sub": "alice" }));
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::MissingExp)
    );
    let lax = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| c.require_exp = false);
    assert_eq!(lax.verify(&token, NOW).unwrap().expires_at, None);
}

#[test]
fn audience_is_enforced_when_configured() {
    let v = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| {
        c.audience = Some("tokenim".into())
    });
    let with = |aud: serde_json::Value| {
        let mut claims = good_claims();
        claims["aud"] = aud;
        sign_hs(None, SECRET, &claims)
    };
    assert!(v.verify(&with(json!("tokenim")), NOW).is_ok());
    assert!(v.verify(&with(json!(["billing", "tokenim"])), NOW).is_ok());
    assert_eq!(
        v.verify(&with(json!("billing")), NOW),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        v.verify(&with(json!(["billing"])), NOW),
        Err(TokenError::WrongAudience)
    );
    assert_eq!(
        v.verify(&with(json!([])), NOW),
        Err(TokenError::WrongAudience)
    );
    let missing = sign_hs(None, SECRET, &good_claims());
    assert_eq!(v.verify(&missing, NOW), Err(TokenError::WrongAudience));
    // Without an audience configured, aud is not checked.
    assert!(hs_verifier().verify(&with(json!("billing")), NOW).is_ok());
}

#[test]
fn issuer_is_enforced_when_configured() {
    let v = verifier_with(vec![KeyConfig::hs256(SECRET)], |c| {
        c.issuer = Some("app".into())
    });
    let with = |iss: &str| {
        let mut claims = good_claims();
        claims["iss"] = json!(iss);
        sign_hs(None, SECRET, &claims)
    };
    assert!(v.verify(&with("app"), NOW).is_ok());
    assert_eq!(v.verify(&with("evil"), NOW), Err(TokenError::WrongIssuer));
    assert_eq!(v.verify(&with("app2"), NOW), Err(TokenError::WrongIssuer));
    let missing = sign_hs(None, SECRET, &good_claims());
    assert_eq!(v.verify(&missing, NOW), Err(TokenError::WrongIssuer));
    assert!(hs_verifier().verify(&with("evil"), NOW).is_ok());
}

#[test]
fn invalid_subject_is_refused() {
    for sub in [
        json!("has space"),
        json!(""),
        json!("a".repeat(65)),
        json!("a/b"),
    ] {
        let token = sign_hs(None, SECRET, &json!({ "sub": sub, "exp": NOW + 60 }));
        let e = hs_verifier().verify(&token, NOW).unwrap_err();
        assert_eq!(e, TokenError::InvalidSubject, "{sub}");
        assert_eq!(e.reason(), "invalid_subject");
    }
    let token = sign_hs(None, SECRET, &json!({ "exp": NOW + 60 }));
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::InvalidSubject)
    );
}

#[test]
fn invalid_channel_pattern_is_refused() {
    for (claim, patterns) in [
        ("channels", json!(["rooms.*", "ro*ms"])),
        ("channels", json!([""])),
        ("publish", json!(["has space"])),
        ("publish", json!(["**"])),
    ] {
        let mut claims = good_claims();
        claims[claim] = patterns.clone();
        let token = sign_hs(None, SECRET, &claims);
        let e = hs_verifier().verify(&token, NOW).unwrap_err();
        assert!(
            matches!(&e, TokenError::InvalidScope { claim: c, .. } if *c == claim),
            "{e:?}"
        );
        assert_eq!(e.reason(), "invalid_scope");
    }
}

#[test]
fn forged_claims_are_never_reported_before_the_signature() {
    // An expired token with a bad signature reports the signature, so an
    // attacker learns nothing about which claims would pass.
    let token = sign_hs(None, SECRET2, &json!({ "sub": "bad sub", "exp": 1 }));
    assert_eq!(
        hs_verifier().verify(&token, NOW),
        Err(TokenError::BadSignature)
    );
}
