//! Certificates made at test time, for etcd over TLS: a CA, a server
//! certificate for `127.0.0.1` and `localhost` signed by it, a client
//! certificate signed by it, and a second, unrelated CA with its own client
//! certificate (what a wrong CA or a stranger's certificate looks like).
//! Keys are ECDSA P-256, generated with `rcgen`; files are PEM in a
//! scratch dir removed on drop.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};

use crate::scratch::{self, ScratchDir};

/// PEM files of a test PKI (see the module docs).
#[derive(Debug)]
pub struct TlsFiles {
    /// The CA that signed the server's and the client's certificates.
    pub ca_cert: PathBuf,
    /// etcd's certificate (SANs `127.0.0.1`, `localhost`) and key.
    pub server_cert: PathBuf,
    /// etcd's key.
    pub server_key: PathBuf,
    /// A client certificate (CN `manul-test-client`) signed by the CA.
    pub client_cert: PathBuf,
    /// Its key.
    pub client_key: PathBuf,
    /// Another CA, which signed nothing the server has.
    pub other_ca_cert: PathBuf,
    /// A client certificate signed by the other CA (the server refuses it).
    pub other_client_cert: PathBuf,
    /// Its key.
    pub other_client_key: PathBuf,
    dir: ScratchDir,
}

impl TlsFiles {
    /// Generate everything into a new scratch dir.
    pub fn generate() -> Result<Self> {
        let dir = scratch::run().tempdir("tls")?;
        let d = dir.path();
        let ca = new_ca("manul test CA")?;
        let other = new_ca("manul other CA")?;
        let server = leaf(
            &ca,
            "etcd",
            &["127.0.0.1", "localhost"],
            ExtendedKeyUsagePurpose::ServerAuth,
        )?;
        let client = leaf(
            &ca,
            "manul-test-client",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        let stranger = leaf(
            &other,
            "manul-test-stranger",
            &[],
            ExtendedKeyUsagePurpose::ClientAuth,
        )?;
        Ok(TlsFiles {
            ca_cert: write(d, "ca.pem", &ca.pem())?,
            server_cert: write(d, "server.pem", &server.0)?,
            server_key: write(d, "server-key.pem", &server.1)?,
            client_cert: write(d, "client.pem", &client.0)?,
            client_key: write(d, "client-key.pem", &client.1)?,
            other_ca_cert: write(d, "other-ca.pem", &other.pem())?,
            other_client_cert: write(d, "other-client.pem", &stranger.0)?,
            other_client_key: write(d, "other-client-key.pem", &stranger.1)?,
            dir,
        })
    }

    /// The dir holding the files.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

fn new_ca(name: &str) -> Result<CertifiedIssuer<'static, KeyPair>> {
    let mut p = CertificateParams::new(Vec::<String>::new())?;
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(CertifiedIssuer::self_signed(p, KeyPair::generate()?)?)
}

/// A certificate signed by `ca`: (certificate PEM, key PEM).
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> Result<(String, String)> {
    let key = KeyPair::generate()?;
    let mut p = CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    p.extended_key_usages = vec![usage];
    let cert = p.signed_by(&key, ca)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn write(dir: &Path, name: &str, pem: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    std::fs::write(&path, pem).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
