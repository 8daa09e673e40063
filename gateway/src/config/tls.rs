//! [`TlsConfig`]: the listener's certificate and key, and how they are
//! read: PEM files, checked at start (missing file, bad PEM, key not
//! matching the certificate, each naming its field) and read again on
//! SIGHUP or when they change ([`crate::tls`]). Also [`read_certs`], the
//! PEM certificate reader `redis.tls_ca` shares.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use super::{ConfigError, invalid, nonzero};

/// TLS on the listener. Absent (the default): plaintext `ws://` and
/// `http://`; present, every connection to `listen` speaks TLS (`wss://`,
/// `https://`), e.g. `TOKENIM_TLS__CERT=/etc/tokenim/cert.pem
/// TOKENIM_TLS__KEY=/etc/tokenim/key.pem`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM file of the certificate chain, the server's own certificate
    /// first. Required.
    pub cert: PathBuf,
    /// PEM file of the private key (PKCS#8, PKCS#1 or SEC1) matching
    /// `cert`. Required.
    pub key: PathBuf,
    /// How often the two files are checked for a change (modification time
    /// and size); a change loads them again, as SIGHUP does. A pair that
    /// does not load keeps the previous certificate in service, logs an
    /// error and counts `tokenim_tls_reloads_total{result="error"}`.
    /// Default `5s`.
    #[serde(with = "humantime_serde", default = "default_reload_interval")]
    pub reload_interval: Duration,
}

fn default_reload_interval() -> Duration {
    Duration::from_secs(5)
}

impl TlsConfig {
    /// A configuration serving `cert` and `key`, checked every 5 s.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
            reload_interval: default_reload_interval(),
        }
    }

    /// Reads both files into a rustls server configuration (HTTP/1.1 by
    /// ALPN); the error names the field at fault.
    pub fn load(&self) -> Result<Arc<ServerConfig>, ConfigError> {
        let certs = read_certs("tls.cert", &self.cert)?;
        let key = read_key("tls.key", &self.key)?;
        let mut config = ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| {
                invalid(
                    "tls.key",
                    format!(
                        "{} does not go with the certificate in {}: {e}",
                        self.key.display(),
                        self.cert.display()
                    ),
                )
            })?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        for (field, path) in [("tls.cert", &self.cert), ("tls.key", &self.key)] {
            if path.as_os_str().is_empty() {
                return Err(invalid(
                    field,
                    "required: [tls] needs both cert and key (PEM file paths)",
                ));
            }
        }
        nonzero(&[("tls.reload_interval", self.reload_interval)])?;
        self.load().map(drop)
    }
}

/// The certificates of the PEM file at `path`, at least one; errors name
/// `field`.
pub(crate) fn read_certs(
    field: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(field, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(field, format!("{}: bad PEM: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(invalid(
            field,
            format!("{}: no CERTIFICATE in this PEM file", path.display()),
        ));
    }
    Ok(certs)
}

/// The private key of the PEM file at `path`; errors name `field`.
fn read_key(field: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read(field, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        invalid(
            field,
            format!("{}: no usable private key: {e}", path.display()),
        )
    })
}

fn read(field: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| invalid(field, format!("cannot read {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let (c, k) = (
            dir.join(format!("{name}.crt")),
            dir.join(format!("{name}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k)
    }

    #[test]
    fn each_failure_names_its_field() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = pair(dir.path(), "a");
        TlsConfig::new(&cert, &key).validate().unwrap();

        let error = |c: &TlsConfig| c.validate().unwrap_err().to_string();
        let e = error(&TlsConfig::new(&cert, ""));
        assert!(e.contains("`tls.key`") && e.contains("required"), "{e}");
        let e = error(&TlsConfig::new(dir.path().join("nope.pem"), &key));
        assert!(e.contains("`tls.cert`") && e.contains("cannot read"), "{e}");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a pem file").unwrap();
        let e = error(&TlsConfig::new(&junk, &key));
        assert!(
            e.contains("`tls.cert`") && e.contains("no CERTIFICATE"),
            "{e}"
        );
        let e = error(&TlsConfig::new(&cert, &junk));
        assert!(e.contains("`tls.key`") && e.contains("private key"), "{e}");
        let (_, other_key) = pair(dir.path(), "b");
        let e = error(&TlsConfig::new(&cert, &other_key));
        assert!(
            e.contains("`tls.key`") && e.contains("does not go with"),
            "{e}"
        );
    }
}
