//! The runtime's `CNI_*` environment variables.

use std::path::PathBuf;

use crate::error::{CniError, INVALID_ENV, Result};

/// The command asked for (`CNI_COMMAND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Wire the container in.
    Add,
    /// Undo `Add`; idempotent.
    Del,
    /// Verify what `Add` did.
    Check,
    /// Report the versions supported.
    Version,
    /// Release what attachments not in `cni.dev/valid-attachments` hold (1.1.0).
    Gc,
    /// Whether ADD can be served (1.1.0).
    Status,
}

/// What the runtime told the plugin.
#[derive(Debug, Clone)]
pub struct CniEnv {
    /// The command.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` (may be empty for DEL).
    pub netns: Option<PathBuf>,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `K8S_POD_NAMESPACE` from `CNI_ARGS`.
    pub pod_namespace: Option<String>,
    /// `K8S_POD_NAME` from `CNI_ARGS`.
    pub pod_name: Option<String>,
}

/// `CNI_ARGS`: `KEY=VALUE;KEY=VALUE`.
pub fn parse_args(args: &str) -> Result<Vec<(String, String)>> {
    args.split(';')
        .filter(|kv| !kv.trim().is_empty())
        .map(|kv| {
            kv.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| {
                    CniError::new(INVALID_ENV, format!("CNI_ARGS: {kv:?} is not KEY=VALUE"))
                })
        })
        .collect()
}

impl CniEnv {
    /// Read the variables through `var`.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let get = |n: &str| var(n).filter(|v| !v.is_empty());
        let command = match get("CNI_COMMAND").as_deref() {
            Some("ADD") => Command::Add,
            Some("DEL") => Command::Del,
            Some("CHECK") => Command::Check,
            Some("VERSION") => Command::Version,
            Some("GC") => Command::Gc,
            Some("STATUS") => Command::Status,
            Some(other) => {
                return Err(CniError::new(
                    INVALID_ENV,
                    format!("CNI_COMMAND {other:?} is not ADD, DEL, CHECK, GC, STATUS or VERSION"),
                ));
            }
            None => return Err(CniError::new(INVALID_ENV, "CNI_COMMAND is not set")),
        };
        let need =
            |n: &str| get(n).ok_or_else(|| CniError::new(INVALID_ENV, format!("{n} is not set")));
        // No container for these: only the configuration matters.
        if matches!(command, Command::Version | Command::Gc | Command::Status) {
            return Ok(CniEnv {
                command,
                container_id: String::new(),
                netns: None,
                ifname: String::new(),
                pod_namespace: None,
                pod_name: None,
            });
        }
        let container_id = need("CNI_CONTAINERID")?;
        let ifname = need("CNI_IFNAME")?;
        if ifname.len() > 15 || ifname.contains('/') {
            return Err(CniError::new(
                INVALID_ENV,
                format!("CNI_IFNAME {ifname:?} is not a valid interface name"),
            ));
        }
        let netns = match command {
            Command::Del => get("CNI_NETNS").map(PathBuf::from),
            _ => Some(PathBuf::from(need("CNI_NETNS")?)),
        };
        let args = parse_args(&get("CNI_ARGS").unwrap_or_default())?;
        let arg = |k: &str| {
            args.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
                .filter(|v| !v.is_empty())
        };
        Ok(CniEnv {
            command,
            container_id,
            netns,
            ifname,
            pod_namespace: arg("K8S_POD_NAMESPACE"),
            pod_name: arg("K8S_POD_NAME"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(v: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |n| v.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_string())
    }

    #[test]
    fn reads_add() {
        let e = CniEnv::from_vars(vars(&[
            ("CNI_COMMAND", "ADD"),
            ("CNI_CONTAINERID", "abc"),
            ("CNI_NETNS", "/run/netns/x"),
            ("CNI_IFNAME", "eth0"),
            (
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0",
            ),
        ]))
        .unwrap();
        assert_eq!(e.command, Command::Add);
        assert_eq!(e.pod_namespace.as_deref(), Some("ns1"));
        assert_eq!(e.pod_name.as_deref(), Some("web-0"));
    }

    #[test]
    fn missing_variables_are_named() {
        let e = CniEnv::from_vars(vars(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "a")]))
            .unwrap_err();
        assert_eq!(e.code, INVALID_ENV);
        assert!(e.msg.contains("CNI_IFNAME"), "{}", e.msg);
        let e = CniEnv::from_vars(vars(&[])).unwrap_err();
        assert!(e.msg.contains("CNI_COMMAND"));
        // DEL without a netns is fine (the namespace may be gone).
        CniEnv::from_vars(vars(&[
            ("CNI_COMMAND", "DEL"),
            ("CNI_CONTAINERID", "a"),
            ("CNI_IFNAME", "eth0"),
        ]))
        .unwrap();
    }
}
