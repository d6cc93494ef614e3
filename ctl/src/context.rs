//! [`Context`]: what every command gets: the global options, and the etcd
//! connection made from them.

use manul_datastore::etcd::config::DEFAULT_DIAL_TIMEOUT;
use manul_datastore::{Datastore, EtcdConfig};

use std::path::Path;

use crate::cli::{GlobalArgs, Output, OutputArg};
use crate::error::etcd;

/// The global options of one run.
#[derive(Debug, Clone)]
pub struct Context {
    /// As parsed (flags, else the `ETCD_*` variables, else defaults).
    pub global: GlobalArgs,
}

impl Context {
    /// The output format (table when `-o` named a file).
    pub fn output(&self) -> Output {
        match self.global.output {
            OutputArg::Format(f) => f,
            OutputArg::File(_) => Output::Table,
        }
    }

    /// The file `-o` named, if it named one (only `ipam check` takes one).
    pub fn output_file(&self) -> Option<&Path> {
        match &self.global.output {
            OutputArg::File(p) => Some(p),
            OutputArg::Format(_) => None,
        }
    }

    /// The etcd settings, checked by the datastore's own rules (it reads
    /// the flag values through the same names as the `ETCD_*` variables).
    pub fn etcd_config(&self) -> anyhow::Result<EtcdConfig> {
        let g = &self.global;
        let path = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let mut config = EtcdConfig::from_vars(|name| match name {
            "ETCD_ENDPOINTS" => Some(g.etcd_endpoints.clone()),
            "ETCD_CA_CERT_FILE" => path(&g.etcd_ca_cert_file),
            "ETCD_CERT_FILE" => path(&g.etcd_cert_file),
            "ETCD_KEY_FILE" => path(&g.etcd_key_file),
            "ETCD_USERNAME" => g.etcd_username.clone(),
            "ETCD_PASSWORD" => g.etcd_password.clone(),
            _ => None,
        })
        .map_err(etcd("reading the etcd settings"))?;
        config.request_timeout = g.request_timeout;
        config.dial_timeout = g.request_timeout.min(DEFAULT_DIAL_TIMEOUT);
        Ok(config)
    }

    /// A client for the configured etcd. Connections are made lazily, so
    /// an unreachable etcd shows on the first request.
    pub async fn datastore(&self) -> anyhow::Result<Datastore> {
        let config = self.etcd_config()?;
        Datastore::connect(&config)
            .await
            .map_err(etcd("connecting to etcd"))
    }
}
