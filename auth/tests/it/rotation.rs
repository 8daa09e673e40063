//! Several keys at once, selected by `kid`: rotation without downtime.

use tokenim_auth::{Alg, KeyConfig, TokenError};

use crate::support::*;

#[test]
fn two_hs256_keys_both_verify_and_removing_one_fails_its_tokens() {
    let old = sign_hs(Some("2024-01"), SECRET, &good_claims());
    let new = sign_hs(Some("2024-06"), SECRET2, &good_claims());

    let both = verifier(vec![hs("2024-01", SECRET), hs("2024-06", SECRET2)]);
    assert_eq!(both.keys().len(), 2);
    assert_eq!(
        both.keys().kids().collect::<Vec<_>>(),
        ["2024-01", "2024-06"]
    );
    assert!(both.verify(&old, NOW).is_ok());
    assert!(both.verify(&new, NOW).is_ok());

    let rotated = verifier(vec![hs("2024-06", SECRET2)]);
    assert_eq!(
        rotated.verify(&old, NOW),
        Err(TokenError::UnknownKid {
            kid: "2024-01".into()
        })
    );
    assert_eq!(
        rotated.verify(&old, NOW).unwrap_err().reason(),
        "unknown_kid"
    );
    assert!(rotated.verify(&new, NOW).is_ok());
}

#[test]
fn kid_selects_the_key_not_the_first_match() {
    // A token naming k2 but signed with k1's secret must fail, even though
    // k1 would accept the signature.
    let v = verifier(vec![hs("k1", SECRET), hs("k2", SECRET2)]);
    let token = sign_hs(Some("k2"), SECRET, &good_claims());
    assert_eq!(v.verify(&token, NOW), Err(TokenError::BadSignature));
}

#[test]
fn keys_of_different_algorithms_side_by_side() {
    let v = verifier(vec![
        KeyConfig::public_pem(Alg::RS256, RSA_PUBLIC).with_kid("rsa"),
        KeyConfig::public_pem(Alg::ES256, EC_PUBLIC).with_kid("ec"),
        KeyConfig::public_pem(Alg::EdDSA, ED_PUBLIC).with_kid("ed"),
        hs("hs", SECRET),
    ]);
    for (alg, kid) in [
        (Alg::RS256, "rsa"),
        (Alg::ES256, "ec"),
        (Alg::EdDSA, "ed"),
        (Alg::HS256, "hs"),
    ] {
        let token = sign_pem(alg, Some(kid), &good_claims());
        assert!(v.verify(&token, NOW).is_ok(), "{alg}");
    }
    // The right algorithm under the wrong kid is refused.
    let token = sign_pem(Alg::EdDSA, Some("ec"), &good_claims());
    assert_eq!(
        v.verify(&token, NOW),
        Err(TokenError::DisallowedAlg {
            alg: "EdDSA".into()
        })
    );
}

#[test]
fn single_key_accepts_tokens_with_or_without_its_kid() {
    let v = verifier(vec![hs("only", SECRET)]);
    assert!(
        v.verify(&sign_hs(None, SECRET, &good_claims()), NOW)
            .is_ok()
    );
    assert!(
        v.verify(&sign_hs(Some("only"), SECRET, &good_claims()), NOW)
            .is_ok()
    );
}
