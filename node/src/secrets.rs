//! BGP passwords from secret references (`password.secretKeyRef {name,
//! key}` on a BGPPeer, `nodeMeshPassword` on the BGPConfiguration), read
//! from a directory laid out as Kubernetes mounts secrets: the value of
//! key `key` of secret `name` is the file `<dir>/<name>/<key>`. The files
//! are read again every [`RECHECK`] by the BGP driver, so a rotated secret
//! (Kubernetes swaps the mounted files atomically) reaches the session
//! without a restart. One trailing newline (`\n` or `\r\n`) is dropped, so
//! a file written with `echo` holds the password it seems to.

use std::path::{Path, PathBuf};
use std::time::Duration;

use manul_datastore::resources::SecretKeySelector;

/// How often the driver reads the secrets again.
pub const RECHECK: Duration = Duration::from_secs(2);

/// The secrets directory.
#[derive(Debug, Clone)]
pub struct Secrets {
    dir: PathBuf,
}

impl Secrets {
    /// Secrets under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Secrets { dir: dir.into() }
    }

    /// The file holding `r`.
    pub fn path(&self, r: &SecretKeySelector) -> PathBuf {
        self.dir.join(&r.name).join(&r.key)
    }

    /// The value of `r`, or an error naming the secret, its key and file.
    pub fn read(&self, r: &SecretKeySelector) -> Result<String, String> {
        let bad = |why: &str| -> bool { why.is_empty() || why.contains('/') || why == ".." };
        if bad(&r.name) || bad(&r.key) {
            return Err(format!(
                "secret {:?} key {:?}: not a valid secret name and key",
                r.name, r.key
            ));
        }
        let path = self.path(r);
        read_value(&path).map_err(|e| {
            format!(
                "secret {:?} key {:?}: {}: {e}",
                r.name,
                r.key,
                path.display()
            )
        })
    }
}

fn read_value(path: &Path) -> std::io::Result<String> {
    let mut s = std::fs::read_to_string(path)?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(name: &str, key: &str) -> SecretKeySelector {
        SecretKeySelector {
            name: name.into(),
            key: key.into(),
            ..Default::default()
        }
    }

    #[test]
    fn reads_kubernetes_layout_and_names_what_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("bgp")).unwrap();
        std::fs::write(dir.path().join("bgp/tor"), "s3cret\n").unwrap();
        let s = Secrets::new(dir.path());
        assert_eq!(s.read(&r("bgp", "tor")).unwrap(), "s3cret");
        std::fs::write(dir.path().join("bgp/tor"), "rotated").unwrap();
        assert_eq!(s.read(&r("bgp", "tor")).unwrap(), "rotated");
        let err = s.read(&r("bgp", "spine")).unwrap_err();
        assert!(err.contains(r#"secret "bgp" key "spine""#), "{err}");
        assert!(err.contains("bgp/spine"), "{err}");
        assert!(s.read(&r("..", "x")).is_err());
        assert!(s.read(&r("a/b", "x")).is_err());
    }
}
