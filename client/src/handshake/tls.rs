//! TLS for `wss://` URLs: rustls (ring) over the TCP connection, checking
//! the server's certificate against the webpki roots (Mozilla's) plus, when
//! set, [`ConnectOptions::tls_ca_pem`] (a private or test CA), and its name
//! against the URL's host.

use std::io;
use std::sync::{Arc, OnceLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::ConnectOptions;

/// Runs the TLS handshake for `host` on `tcp`. A certificate the client
/// does not trust fails with an `InvalidData` error naming why.
pub(crate) async fn connect(
    tcp: TcpStream,
    host: &str,
    options: &ConnectOptions,
) -> io::Result<TlsStream<TcpStream>> {
    let name = ServerName::try_from(host.to_owned()).map_err(|e| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("TLS name {host}: {e}"))
    })?;
    TlsConnector::from(config(options)?)
        .connect(name, tcp)
        .await
}

/// The client configuration: one shared when no CA is added, else built
/// with the CA.
fn config(options: &ConnectOptions) -> io::Result<Arc<ClientConfig>> {
    static DEFAULT: OnceLock<Arc<ClientConfig>> = OnceLock::new();
    let Some(pem) = &options.tls_ca_pem else {
        return Ok(Arc::clone(DEFAULT.get_or_init(|| build(roots()))));
    };
    let bad =
        |why: String| io::Error::new(io::ErrorKind::InvalidInput, format!("tls_ca_pem: {why}"));
    let mut roots = roots();
    let mut added = 0;
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        let cert = cert.map_err(|e| bad(format!("bad PEM: {e}")))?;
        roots.add(cert).map_err(|e| bad(e.to_string()))?;
        added += 1;
    }
    if added == 0 {
        return Err(bad("no CERTIFICATE in the PEM text".into()));
    }
    Ok(build(roots))
}

fn roots() -> RootCertStore {
    RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

fn build(roots: RootCertStore) -> Arc<ClientConfig> {
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}
