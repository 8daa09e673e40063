//! What `tokenim config` prints: the effective configuration with every
//! secret replaced by a fingerprint, so the output can go into a ticket
//! or a log and still tell two secrets apart.
//!
//! Secrets are found by their field's name wherever they sit: `secret`,
//! `private_key_pem` and `password` values are replaced whole; the secret
//! half of `admin_key` (`<key id>:<secret>`) and the password in a `url`'s
//! user info (`redis://:<password>@host`, several URLs separated by
//! commas) are replaced, the rest is kept.

use sha2::{Digest, Sha256};
use toml::Value;

use super::Config;

/// Fields whose whole value is a secret.
const SECRET_FIELDS: [&str; 3] = ["secret", "private_key_pem", "password"];

/// `redacted:sha256:<first 12 hex digits of the secret's SHA-256>`.
pub fn fingerprint(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("redacted:sha256:{hex}")
}

/// `config` as TOML, secrets replaced by fingerprints.
pub fn redacted_toml(config: &Config) -> Result<String, toml::ser::Error> {
    let mut value = Value::try_from(config)?;
    redact(&mut value, None);
    toml::to_string_pretty(&value)
}

/// Redacts `value`, found under the field `field`.
fn redact(value: &mut Value, field: Option<&str>) {
    match value {
        Value::Table(table) => {
            for (name, v) in table.iter_mut() {
                redact(v, Some(name));
            }
        }
        Value::Array(items) => {
            for v in items {
                redact(v, field);
            }
        }
        Value::String(s) => {
            if let Some(replaced) = field.and_then(|f| redact_string(f, s)) {
                *s = replaced;
            }
        }
        _ => {}
    }
}

/// The redacted form of the string `s` of field `field`, if it holds a
/// secret.
fn redact_string(field: &str, s: &str) -> Option<String> {
    if SECRET_FIELDS.contains(&field) {
        return Some(fingerprint(s));
    }
    match field {
        "admin_key" => Some(match s.split_once(':') {
            Some((id, secret)) => format!("{id}:{}", fingerprint(secret)),
            None => fingerprint(s),
        }),
        "url" | "urls" => {
            let urls: Vec<String> = s.split(',').map(redact_url).collect();
            let joined = urls.join(",");
            (joined != s).then_some(joined)
        }
        _ => None,
    }
}

/// A URL with the password of its user info (if any) redacted.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else {
        return url.to_owned();
    };
    let redacted = match userinfo.split_once(':') {
        Some((user, password)) => format!("{user}:{}", fingerprint(password)),
        // `redis://<password>@host` is a password alone for some clients.
        None => fingerprint(userinfo),
    };
    format!("{scheme}://{redacted}@{host}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::dev_key;

    #[test]
    fn every_secret_is_replaced_by_its_fingerprint() {
        let mut config = Config::default();
        config.auth.keys.push(tokenim_auth::KeyConfig {
            secret: Some("key-secret-0123456789abcdef0123456789".into()),
            ..dev_key()
        });
        config.api.admin_key = Some("ak_0123456789abcdef:admin-secret-0123456789abcdef0123".into());
        config.redis = Some(crate::config::RedisConfig {
            url: "redis://app:redis-pass-123@10.0.0.1:6379/0,redis://:other-pass@10.0.0.2".into(),
            ..Default::default()
        });
        let text = redacted_toml(&config).unwrap();
        for secret in [
            "key-secret-0123456789abcdef0123456789",
            "admin-secret-0123456789abcdef0123",
            "redis-pass-123",
            "other-pass",
        ] {
            assert!(!text.contains(secret), "{secret} in\n{text}");
            assert!(text.contains(&fingerprint(secret)), "{secret}\n{text}");
        }
        assert!(
            text.contains("ak_0123456789abcdef:redacted:sha256:"),
            "{text}"
        );
        assert!(text.contains("redis://app:redacted:sha256:"), "{text}");
        assert!(text.contains("@10.0.0.1:6379/0"), "{text}");
        // What is not secret is printed as is.
        assert!(text.contains("listen = \"127.0.0.1:8080\""), "{text}");
    }

    #[test]
    fn urls_without_passwords_are_unchanged() {
        assert_eq!(
            redact_url("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(redact_url("not a url"), "not a url");
        assert_eq!(
            redact_url("rediss://pw@h/0?x=a@b"),
            format!("rediss://{}@h/0?x=a@b", fingerprint("pw"))
        );
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
