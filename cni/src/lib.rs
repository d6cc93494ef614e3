//! manul-cni: the CNI plugin (spec 1.1.0 and 1.0.0; 0.3.x and 0.4.0
//! runtimes too).
//!
//! A container runtime runs the binary with `CNI_COMMAND` (ADD, DEL,
//! CHECK, GC, STATUS, VERSION), the other `CNI_*` variables and the network
//! configuration on stdin; it answers with a result or a CNI error as JSON
//! on stdout (exit status 1 on error). State lives only in etcd.
//!
//! - [`env`](mod@env): the `CNI_*` variables; [`conf`]: the network configuration;
//! - [`names`]: Calico's veth, handle and WorkloadEndpoint names;
//! - [`workload`]: the WorkloadEndpoint; [`netlink`]: the veth pair;
//! - [`commands`]: ADD, DEL, CHECK; [`gc`]: GC and STATUS;
//!   [`result`]: the result JSON;
//! - [`error`]: CNI errors with codes.

pub mod commands;
pub mod conf;
pub mod env;
pub mod error;
pub mod gc;
pub mod names;
pub mod netlink;
pub mod result;
pub mod workload;

use std::io::Read;

use crate::env::{CniEnv, Command};
use crate::error::{CniError, INCOMPATIBLE_VERSION, IO_FAILURE};

/// Run one invocation: read stdin and the environment, do the command,
/// return what to print and whether it succeeded.
pub fn run() -> (String, bool) {
    let mut stdin = Vec::new();
    let read = std::io::stdin().read_to_end(&mut stdin);
    let env = match CniEnv::from_vars(|n| std::env::var(n).ok()) {
        Ok(e) => e,
        Err(e) => return (e.to_json("1.0.0"), false),
    };
    if env.command == Command::Version {
        let v = conf::NetConf::parse(&stdin)
            .ok()
            .map(|c| c.cni_version)
            .filter(|v| !v.is_empty())
            .unwrap_or_else(|| "1.0.0".into());
        return (result::version(&v).to_string(), true);
    }
    let conf = match read
        .map_err(|e| CniError::new(IO_FAILURE, format!("reading stdin: {e}")))
        .and_then(|_| conf::NetConf::parse(&stdin))
    {
        Ok(c) => c,
        Err(e) => return (e.to_json("1.0.0"), false),
    };
    let version = if conf.cni_version.is_empty() {
        "1.0.0".to_string()
    } else {
        conf.cni_version.clone()
    };
    match execute(&conf, &env) {
        Ok(out) => (out, true),
        Err(e) => (e.to_json(&version), false),
    }
}

fn execute(conf: &conf::NetConf, env: &CniEnv) -> Result<String, CniError> {
    if !conf.cni_version.is_empty() && !result::SUPPORTED.contains(&conf.cni_version.as_str()) {
        return Err(CniError::new(
            INCOMPATIBLE_VERSION,
            format!(
                "cniVersion {} is not supported (supported: {})",
                conf.cni_version,
                result::SUPPORTED.join(", ")
            ),
        ));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CniError::new(IO_FAILURE, format!("starting the runtime: {e}")))?;
    rt.block_on(async {
        match env.command {
            Command::Add => commands::add(conf, env).await.map(|v| v.to_string()),
            Command::Del => commands::del(conf, env).await.map(|()| String::new()),
            Command::Check => commands::check(conf, env).await.map(|()| String::new()),
            Command::Gc => gc::gc(conf).await.map(|()| String::new()),
            Command::Status => gc::status(conf).await.map(|()| String::new()),
            Command::Version => Ok(result::version(&conf.cni_version).to_string()),
        }
    })
}
