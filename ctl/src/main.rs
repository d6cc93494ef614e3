//! `manulctl`: manul's command-line tool. Applies, reads and deletes the
//! Calico v3 resources manul runs on (IPPool, BGPConfiguration, BGPPeer,
//! BGPFilter, Node, WorkloadEndpoint) and the rest of Calico's kinds
//! (policies, sets, host endpoints, profiles, FelixConfiguration, kept as
//! raw JSON), stored in etcd in Calico's layout;
//! shows, checks and repairs IPAM (`manulctl ipam`) through `manul-ipam`.
//!
//! - [`cli`]: the command line (global options, the command enum).
//! - [`commands`]: one module per command.
//! - [`manifest`]: reading YAML/JSON files of objects.
//! - [`object`]: one object of any kind, typed by the datastore crate.
//! - [`store`]: typed reads from etcd.
//! - [`output`]: tables, JSON, YAML.
//! - [`error`]: exit codes and the messages of datastore errors.
//!
//! All resource types, keys and validation rules come from
//! `manul-datastore`, all IPAM logic from `manul-ipam`; this crate only
//! wires them to a command line.

mod cli;
mod commands;
mod context;
mod error;
mod kind;
mod manifest;
mod object;
mod output;
mod stamp;
mod store;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::Cli;
use crate::context::Context;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with success; usage errors
            // exit 1 (2 is reserved for invalid input).
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let ctx = Context {
        global: cli.global.clone(),
    };
    match runtime.block_on(commands::run(&ctx, &cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(error::classify(&e).code())
        }
    }
}
