//! Saying what is wrong when TLS with etcd fails.
//!
//! The gRPC client reports a refused client certificate only as "connection
//! closed", and a plain-HTTP client talking to a TLS port the same way.
//! So when a request fails at the transport level, `TlsProbe::explain`
//! connects once more by hand, with the same CA and client certificate,
//! and reads what etcd says: a TLS alert (`CertificateRequired`,
//! `BadCertificate`...), a server certificate this client cannot verify,
//! or, on an `http://` endpoint, a TLS handshake that gets as far as a
//! certificate (etcd serves TLS there). Only a positive
//! finding turns the failure into [`super::Error::Tls`]; when the probe
//! cannot connect either (etcd is down), the failure stays
//! [`super::Error::Unavailable`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::config::EtcdConfig;

/// How long each step of a probe may take.
const STEP: Duration = Duration::from_secs(2);

/// What the probe needs from the config.
#[derive(Debug, Clone)]
pub(crate) struct TlsProbe {
    endpoints: Vec<String>,
    ca_cert: Option<PathBuf>,
    client: Option<(PathBuf, PathBuf)>,
}

impl TlsProbe {
    pub(crate) fn new(c: &EtcdConfig) -> Self {
        TlsProbe {
            endpoints: c.endpoints.clone(),
            ca_cert: c.ca_cert.clone(),
            client: c.client_cert.clone().zip(c.client_key.clone()),
        }
    }

    /// The TLS problem with the first endpoint that shows one.
    pub(crate) async fn explain(&self) -> Option<String> {
        for e in &self.endpoints {
            if let Some(p) = self.probe(e).await {
                return Some(format!("{e}: {p}"));
            }
        }
        None
    }

    async fn probe(&self, endpoint: &str) -> Option<String> {
        let (https, rest) = match endpoint.split_once("://") {
            Some(("https", r)) => (true, r),
            Some(("http", r)) => (false, r),
            _ => return None,
        };
        let authority = rest.split('/').next().unwrap_or(rest);
        let host = match authority.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => authority,
        };
        let tcp = timeout(STEP, TcpStream::connect(authority))
            .await
            .ok()?
            .ok()?;
        if https {
            self.probe_tls(tcp, host).await
        } else {
            self.probe_plain(tcp, host).await
        }
    }

    /// A plain-HTTP endpoint: does a TLS server answer there? (A TLS
    /// handshake gets as far as etcd's certificate.)
    async fn probe_plain(&self, tcp: TcpStream, host: &str) -> Option<String> {
        let config = self.client_config().ok()?;
        let name = ServerName::try_from(host.to_string()).ok()?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let r = timeout(STEP, connector.connect(name, tcp)).await;
        let tls = match r.ok()? {
            Ok(_) => true,
            Err(e) => e.to_string().contains("certificate"),
        };
        tls.then(|| {
            "etcd serves TLS on this endpoint: use an https:// URL and set ETCD_CA_CERT_FILE \
             (and ETCD_CERT_FILE / ETCD_KEY_FILE if etcd requires client certificates)"
                .to_string()
        })
    }

    async fn probe_tls(&self, tcp: TcpStream, host: &str) -> Option<String> {
        let config = match self.client_config() {
            Ok(c) => c,
            Err(e) => return Some(e),
        };
        let name = ServerName::try_from(host.to_string()).ok()?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let mut tls = match timeout(STEP, connector.connect(name, tcp)).await.ok()? {
            Ok(s) => s,
            // An alert from etcd during the handshake is about us.
            Err(e) if e.to_string().contains("received fatal alert") => {
                return Some(self.client_problem(&e.to_string()));
            }
            Err(e) => return Some(self.server_problem(&e.to_string(), host)),
        };
        // TLS 1.3: a refused client certificate shows on the first read.
        tls.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .ok()?;
        let mut buf = [0u8; 64];
        match timeout(STEP, tls.read(&mut buf)).await.ok()? {
            Ok(_) => None,
            Err(e) => Some(self.client_problem(&e.to_string())),
        }
    }

    fn client_config(&self) -> Result<ClientConfig, String> {
        let mut roots = RootCertStore::empty();
        if let Some(ca) = &self.ca_cert {
            for c in CertificateDer::pem_file_iter(ca).map_err(|e| pem_error(ca, &e))? {
                roots
                    .add(c.map_err(|e| pem_error(ca, &e))?)
                    .map_err(|e| format!("CA certificate in {}: {e}", ca.display()))?;
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        match &self.client {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let certs = CertificateDer::pem_file_iter(cert)
                    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                    .map_err(|e| pem_error(cert, &e))?;
                let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, &e))?;
                builder
                    .with_client_auth_cert(certs, key)
                    .map_err(|e| format!("client certificate {}: {e}", cert.display()))
            }
        }
    }

    /// The handshake failed: what about etcd's certificate.
    fn server_problem(&self, error: &str, host: &str) -> String {
        let ca = match &self.ca_cert {
            Some(p) => format!("the CA in ETCD_CA_CERT_FILE ({})", p.display()),
            None => "no CA: ETCD_CA_CERT_FILE is not set".to_string(),
        };
        if error.contains("UnknownIssuer") || error.contains("BadSignature") {
            format!(
                "etcd's certificate is not signed by a CA this client trusts ({ca}); set \
                 ETCD_CA_CERT_FILE (--etcd-ca-cert-file) to the CA that signed it [{error}]"
            )
        } else if error.contains("NotValidForName") {
            format!("etcd's certificate is not valid for {host} [{error}]")
        } else if error.contains("Expired") {
            format!("etcd's certificate has expired or is not yet valid [{error}]")
        } else {
            format!("TLS handshake with etcd failed: {error}")
        }
    }

    /// etcd closed the connection after the handshake: what about ours.
    fn client_problem(&self, error: &str) -> String {
        match &self.client {
            // Go's TLS server answers a missing certificate with
            // BadCertificate before Go 1.x's CertificateRequired.
            None if ["CertificateRequired", "BadCertificate", "HandshakeFailure"]
                .iter()
                .any(|a| error.contains(a)) =>
            {
                format!(
                    "etcd requires a client certificate and none is set: set ETCD_CERT_FILE and \
                     ETCD_KEY_FILE (--etcd-cert-file, --etcd-key-file) [{error}]"
                )
            }
            Some((cert, _)) => format!(
                "etcd refused the client certificate in ETCD_CERT_FILE ({}): it is not signed by \
                 a CA etcd trusts (etcd's --trusted-ca-file) or not meant for client use [{error}]",
                cert.display()
            ),
            None => format!("etcd closed the TLS connection: {error}"),
        }
    }
}

fn pem_error(path: &Path, e: &dyn std::fmt::Display) -> String {
    format!("reading PEM from {}: {e}", path.display())
}
