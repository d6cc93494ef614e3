//! How to reach etcd: endpoints, TLS files, credentials and timeouts, read
//! from the same environment variables calico-node uses.
//!
//! | variable | field | default |
//! |---|---|---|
//! | `ETCD_ENDPOINTS` | `endpoints` (comma-separated URLs) | `http://127.0.0.1:2379` |
//! | `ETCD_CA_CERT_FILE` | `ca_cert` | none |
//! | `ETCD_CERT_FILE` | `client_cert` | none |
//! | `ETCD_KEY_FILE` | `client_key` | none |
//! | `ETCD_USERNAME` | `username` | none |
//! | `ETCD_PASSWORD` | `password` | none |
//!
//! TLS is rustls (no OpenSSL). It is on when any of the three file
//! variables is set; then every endpoint must be `https://`. A client
//! certificate needs its key and the other way round. The timeouts have no
//! Calico variable; they default to [`DEFAULT_DIAL_TIMEOUT`] and
//! [`DEFAULT_REQUEST_TIMEOUT`].

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use etcd_client::{Certificate, ConnectOptions, Identity, TlsOptions};

use super::error::{Error, Result};

/// The endpoint used when `ETCD_ENDPOINTS` is unset (Calico's default).
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";
/// How long connecting to one endpoint may take.
pub const DEFAULT_DIAL_TIMEOUT: Duration = Duration::from_secs(5);
/// The deadline of every request.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// HTTP/2 keep-alive ping interval and timeout, so a watch on a dead
/// connection fails instead of waiting forever (calico-node's values).
pub(crate) const KEEP_ALIVE: (Duration, Duration) =
    (Duration::from_secs(30), Duration::from_secs(10));

/// How to reach etcd.
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Client URLs, e.g. `https://10.0.0.1:2379`.
    pub endpoints: Vec<String>,
    /// PEM file of the CA that signed the servers' certificates.
    pub ca_cert: Option<PathBuf>,
    /// PEM file of this client's certificate.
    pub client_cert: Option<PathBuf>,
    /// PEM file of this client's private key.
    pub client_key: Option<PathBuf>,
    /// etcd user name (etcd's own auth).
    pub username: Option<String>,
    /// etcd password; never printed by `Debug`.
    pub password: Option<String>,
    /// Connect timeout per endpoint.
    pub dial_timeout: Duration,
    /// Deadline of each request.
    pub request_timeout: Duration,
}

impl fmt::Debug for EtcdConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdConfig")
            .field("endpoints", &self.endpoints)
            .field("ca_cert", &self.ca_cert)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("dial_timeout", &self.dial_timeout)
            .field("request_timeout", &self.request_timeout)
            .finish()
    }
}

impl Default for EtcdConfig {
    fn default() -> Self {
        Self::new([DEFAULT_ENDPOINT])
    }
}

impl EtcdConfig {
    /// Plain-HTTP access to `endpoints` with the default timeouts.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        EtcdConfig {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            ca_cert: None,
            client_cert: None,
            client_key: None,
            username: None,
            password: None,
            dial_timeout: DEFAULT_DIAL_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
        }
    }

    /// Read Calico's `ETCD_*` variables from the process environment.
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// Like [`EtcdConfig::from_env`], with `var` answering for the
    /// environment. Empty values count as unset.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |name: &str| {
            var(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let endpoints = match get("ETCD_ENDPOINTS") {
            Some(list) => list
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_string)
                .collect(),
            None => vec![DEFAULT_ENDPOINT.to_string()],
        };
        let config = EtcdConfig {
            endpoints,
            ca_cert: get("ETCD_CA_CERT_FILE").map(PathBuf::from),
            client_cert: get("ETCD_CERT_FILE").map(PathBuf::from),
            client_key: get("ETCD_KEY_FILE").map(PathBuf::from),
            username: get("ETCD_USERNAME"),
            password: get("ETCD_PASSWORD"),
            ..EtcdConfig::new(Vec::<String>::new())
        };
        config.validate()?;
        Ok(config)
    }

    /// Whether TLS is configured.
    pub fn tls(&self) -> bool {
        self.ca_cert.is_some() || self.client_cert.is_some() || self.client_key.is_some()
    }

    /// Check what can be checked without touching files or the network.
    pub fn validate(&self) -> Result<()> {
        if self.endpoints.is_empty() {
            return Err(Error::Config(
                "no etcd endpoints: set ETCD_ENDPOINTS to a comma-separated list of URLs".into(),
            ));
        }
        for e in &self.endpoints {
            let scheme_ok = if self.tls() {
                e.starts_with("https://")
            } else {
                e.starts_with("http://") || e.starts_with("https://")
            };
            if !scheme_ok {
                return Err(Error::Config(if self.tls() {
                    format!("etcd endpoint {e:?} must be https:// when TLS files are set")
                } else {
                    format!("etcd endpoint {e:?} must start with http:// or https://")
                }));
            }
        }
        if self.client_cert.is_some() != self.client_key.is_some() {
            return Err(Error::Config(
                "ETCD_CERT_FILE and ETCD_KEY_FILE must be set together".into(),
            ));
        }
        if self.username.is_some() != self.password.is_some() {
            return Err(Error::Config(
                "ETCD_USERNAME and ETCD_PASSWORD must be set together".into(),
            ));
        }
        if self.dial_timeout.is_zero() || self.request_timeout.is_zero() {
            return Err(Error::Config("etcd timeouts must be above zero".into()));
        }
        Ok(())
    }

    /// etcd-client's options; reads the TLS files.
    pub(crate) fn connect_options(&self) -> Result<ConnectOptions> {
        self.validate()?;
        let mut options = ConnectOptions::new()
            .with_connect_timeout(self.dial_timeout)
            .with_keep_alive(KEEP_ALIVE.0, KEEP_ALIVE.1)
            .with_require_leader(true);
        if let (Some(user), Some(password)) = (&self.username, &self.password) {
            options = options.with_user(user.clone(), password.clone());
        }
        if self.tls() {
            let mut tls = TlsOptions::new();
            if let Some(ca) = &self.ca_cert {
                tls = tls.ca_certificate(Certificate::from_pem(read(ca, "ETCD_CA_CERT_FILE")?));
            }
            if let (Some(cert), Some(key)) = (&self.client_cert, &self.client_key) {
                tls = tls.identity(Identity::from_pem(
                    read(cert, "ETCD_CERT_FILE")?,
                    read(key, "ETCD_KEY_FILE")?,
                ));
            }
            options = options.with_tls(tls);
        }
        Ok(options)
    }
}

fn read(path: &PathBuf, var: &str) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::Config(format!("reading {var} {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<EtcdConfig> {
        EtcdConfig::from_vars(|name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn defaults_to_local_plain_http() {
        let c = from(&[]).unwrap();
        assert_eq!(c.endpoints, vec![DEFAULT_ENDPOINT]);
        assert!(!c.tls());
        assert_eq!(c.request_timeout, DEFAULT_REQUEST_TIMEOUT);
    }

    #[test]
    fn reads_calico_variables() {
        let c = from(&[
            (
                "ETCD_ENDPOINTS",
                "https://10.0.0.1:2379, https://10.0.0.2:2379,",
            ),
            ("ETCD_CA_CERT_FILE", "/etc/calico/ca.pem"),
            ("ETCD_CERT_FILE", "/etc/calico/cert.pem"),
            ("ETCD_KEY_FILE", "/etc/calico/key.pem"),
            ("ETCD_USERNAME", "calico"),
            ("ETCD_PASSWORD", "s3cret"),
        ])
        .unwrap();
        assert_eq!(
            c.endpoints,
            vec!["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(c.ca_cert, Some(PathBuf::from("/etc/calico/ca.pem")));
        assert_eq!(c.client_cert, Some(PathBuf::from("/etc/calico/cert.pem")));
        assert_eq!(c.client_key, Some(PathBuf::from("/etc/calico/key.pem")));
        assert_eq!(c.username.as_deref(), Some("calico"));
        assert!(c.tls());
        let debug = format!("{c:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn rejects_half_configured_tls_and_auth() {
        for pairs in [
            &[("ETCD_CERT_FILE", "/c.pem")][..],
            &[("ETCD_KEY_FILE", "/k.pem")][..],
            &[("ETCD_USERNAME", "u")][..],
            &[("ETCD_ENDPOINTS", "10.0.0.1:2379")][..],
            &[("ETCD_ENDPOINTS", " , ")][..],
            &[
                ("ETCD_CA_CERT_FILE", "/ca.pem"),
                ("ETCD_ENDPOINTS", "http://10.0.0.1:2379"),
            ][..],
        ] {
            let err = from(pairs).unwrap_err();
            assert!(matches!(err, Error::Config(_)), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn missing_tls_file_is_a_config_error_naming_it() {
        let mut c = EtcdConfig::new(["https://127.0.0.1:2379"]);
        c.ca_cert = Some(PathBuf::from("/nonexistent/ca.pem"));
        let err = c.connect_options().unwrap_err();
        let Error::Config(msg) = err else {
            panic!("{err}")
        };
        assert!(msg.contains("ETCD_CA_CERT_FILE") && msg.contains("/nonexistent/ca.pem"));
    }
}
