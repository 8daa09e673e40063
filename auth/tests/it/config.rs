//! Key and verifier configuration: what is refused at load time, and how
//! it reads from a config file.

use serde_json::json;
use tokenim_auth::{Alg, KeyConfig, KeyError, KeySet, TokenVerifier, VerifierConfig};

use crate::support::*;

fn load(keys: &[KeyConfig]) -> Result<KeySet, KeyError> {
    KeySet::new(keys)
}

#[test]
fn no_keys() {
    assert_eq!(load(&[]).unwrap_err(), KeyError::NoKeys);
    assert_eq!(
        TokenVerifier::new(&VerifierConfig::default()).unwrap_err(),
        KeyError::NoKeys
    );
}

#[test]
fn short_hmac_secret() {
    let e = load(&[hs("a", SECRET), hs("b", &"s".repeat(31))]).unwrap_err();
    assert_eq!(
        e,
        KeyError::SecretTooShort {
            key: r#"keys[1] (kid "b")"#.into(),
            len: 31
        }
    );
    assert!(
        e.to_string()
            .starts_with(r#"keys[1] (kid "b"): HS256 `secret` is 31 bytes"#),
        "{e}"
    );
    assert!(load(&[KeyConfig::hs256("s".repeat(32))]).is_ok());
    assert!(tokenim_auth::TokenSigner::new(&KeyConfig::hs256("short")).is_err());
}

#[test]
fn missing_and_unexpected_fields() {
    let hs_no_secret = KeyConfig {
        secret: None,
        ..KeyConfig::hs256(SECRET)
    };
    let e = load(&[hs_no_secret]).unwrap_err();
    assert_eq!(
        e,
        KeyError::MissingField {
            key: "keys[0]".into(),
            alg: Alg::HS256,
            field: "secret"
        }
    );

    let rs_no_pem = KeyConfig {
        public_key_pem: None,
        ..KeyConfig::public_pem(Alg::RS256, RSA_PUBLIC)
    };
    assert!(matches!(
        load(&[rs_no_pem]),
        Err(KeyError::MissingField {
            field: "public_key_pem",
            ..
        })
    ));

    // A secret on an RSA key, or a PEM on an HMAC key, is refused: it would
    // mean someone expects the key to be used in a way it never will be.
    let rs_with_secret = KeyConfig {
        secret: Some(SECRET.into()),
        ..KeyConfig::public_pem(Alg::RS256, RSA_PUBLIC)
    };
    assert!(matches!(
        load(&[rs_with_secret]),
        Err(KeyError::UnexpectedField {
            field: "secret",
            ..
        })
    ));
    let hs_with_pem = KeyConfig {
        public_key_pem: Some(RSA_PUBLIC.into()),
        ..KeyConfig::hs256(SECRET)
    };
    assert!(matches!(
        load(&[hs_with_pem]),
        Err(KeyError::UnexpectedField {
            field: "public_key_pem",
            ..
        })
    ));
}

#[test]
fn pem_of_the_wrong_kind_is_refused() {
    for (alg, pem) in [
        (Alg::RS256, EC_PUBLIC),
        (Alg::ES256, RSA_PUBLIC),
        (Alg::ES256, ED_PUBLIC),
        (Alg::EdDSA, EC_PUBLIC),
        (Alg::ES256, P384_PUBLIC),
        (Alg::RS256, "not a pem"),
        (Alg::EdDSA, ED_PRIVATE),
    ] {
        let e = load(&[KeyConfig::public_pem(alg, pem)]).unwrap_err();
        assert!(
            matches!(
                e,
                KeyError::InvalidPem {
                    field: "public_key_pem",
                    ..
                }
            ),
            "{alg}: {e:?}"
        );
    }
    let e = load(&[KeyConfig::private_pem(Alg::ES256, ED_PRIVATE)]).unwrap_err();
    assert!(
        matches!(
            e,
            KeyError::InvalidPem {
                field: "private_key_pem",
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn small_rsa_key_is_refused() {
    let e = load(&[KeyConfig::public_pem(Alg::RS256, RSA1024_PUBLIC)]).unwrap_err();
    assert_eq!(
        e,
        KeyError::RsaTooShort {
            key: "keys[0]".into(),
            bits: 1024
        }
    );
}

#[test]
fn mismatched_key_pair_is_refused() {
    let key = KeyConfig {
        private_key_pem: Some(ED2_PRIVATE.into()),
        ..KeyConfig::public_pem(Alg::EdDSA, ED_PUBLIC)
    };
    assert_eq!(
        load(&[key]).unwrap_err(),
        KeyError::KeyPairMismatch {
            key: "keys[0]".into()
        }
    );
    let pair = |private: &str, public: &str| KeyConfig {
        private_key_pem: Some(private.into()),
        ..KeyConfig::public_pem(Alg::EdDSA, public)
    };
    let e = load(&[pair(ED_PRIVATE, ED2_PUBLIC)]).unwrap_err();
    assert!(matches!(e, KeyError::KeyPairMismatch { .. }), "{e:?}");
    assert!(load(&[pair(ED2_PRIVATE, ED2_PUBLIC)]).is_ok());
}

#[test]
fn kids_must_be_present_and_distinct_with_several_keys() {
    let e = load(&[hs("a", SECRET), KeyConfig::hs256(SECRET2)]).unwrap_err();
    assert_eq!(
        e,
        KeyError::MissingKid {
            key: "keys[1]".into()
        }
    );
    let e = load(&[hs("a", SECRET), hs("a", SECRET2)]).unwrap_err();
    assert_eq!(
        e,
        KeyError::DuplicateKid {
            key: r#"keys[1] (kid "a")"#.into(),
            kid: "a".into()
        }
    );
    let e = load(&[hs("", SECRET)]).unwrap_err();
    assert!(matches!(e, KeyError::MissingKid { .. }), "{e:?}");
}

#[test]
fn debug_never_prints_secrets() {
    let hs_key = hs("k", SECRET);
    let rs_key = KeyConfig {
        public_key_pem: Some(RSA_PUBLIC.into()),
        ..KeyConfig::private_pem(Alg::RS256, RSA_PRIVATE)
    };
    let printed = format!(
        "{hs_key:?} {rs_key:?} {:?}",
        VerifierConfig::with_keys(vec![hs_key.clone(), rs_key.clone()])
    );
    assert!(!printed.contains(SECRET), "{printed}");
    assert!(!printed.contains("PRIVATE KEY"), "{printed}");
    assert!(!printed.contains("MII"), "{printed}");
    assert!(
        printed.contains("[redacted]") && printed.contains(r#"kid: Some("k")"#),
        "{printed}"
    );
    let loaded = format!("{:?}", verifier(vec![hs_key]));
    assert!(!loaded.contains(SECRET), "{loaded}");
    let signer = format!("{:?}", tokenim_auth::TokenSigner::new(&rs_key).unwrap());
    assert!(!signer.contains("MII"), "{signer}");
}

#[test]
fn verifier_config_from_a_file() {
    let config: VerifierConfig = serde_json::from_value(json!({
        "keys": [
            { "kid": "a", "alg": "HS256", "secret": SECRET },
            { "kid": "b", "alg": "EdDSA", "public_key_pem": ED_PUBLIC },
        ],
        "audience": "tokenim",
    }))
    .unwrap();
    assert_eq!(config.keys[1].alg, Alg::EdDSA);
    assert_eq!(
        (config.leeway_secs, config.max_token_len, config.require_exp),
        (5, 8192, true)
    );
    assert_eq!(config.issuer, None);
    assert_eq!(TokenVerifier::new(&config).unwrap().keys().len(), 2);

    // Round trip.
    let back: VerifierConfig =
        serde_json::from_value(serde_json::to_value(&config).unwrap()).unwrap();
    assert_eq!(back, config);

    // Unknown fields are errors, at both levels.
    assert!(serde_json::from_value::<VerifierConfig>(json!({ "leway_secs": 1 })).is_err());
    let typo = json!({ "alg": "HS256", "secrett": SECRET });
    assert!(serde_json::from_value::<KeyConfig>(typo).is_err());
}

#[test]
fn alg_names_are_exact() {
    for alg in Alg::ALL {
        let name = serde_json::to_value(alg).unwrap();
        assert_eq!(name, json!(alg.as_str()));
        assert_eq!(serde_json::from_value::<Alg>(name).unwrap(), alg);
        assert_eq!(alg.to_string(), alg.as_str());
    }
    assert_eq!(
        Alg::ALL.map(Alg::as_str),
        ["HS256", "RS256", "ES256", "EdDSA"]
    );
    for bad in ["hs256", "none", "HS512", "EDDSA"] {
        assert!(serde_json::from_value::<Alg>(json!(bad)).is_err(), "{bad}");
        assert_eq!(Alg::from_name(bad), None);
    }
}
