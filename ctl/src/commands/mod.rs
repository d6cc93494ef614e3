//! The commands, one module each, and [`run`], which dispatches to them.
//!
//! A command module holds its `Args` (clap), its help texts (`LONG_ABOUT`,
//! `AFTER_HELP` with examples) and its `run`. A command group such as
//! `ipam` is a module with its own `Subcommand` enum; see [`crate::cli`]
//! for where to hook it in.

pub mod apply;
pub mod completion;
pub mod create;
pub mod delete;
pub mod delete_node;
pub mod edit;
pub mod get;
pub mod ipam;
pub mod label;
pub mod node;
pub mod patch;
pub mod replace;

use crate::cli::Command;
use crate::context::Context;
use crate::error::{Failure, fail};

/// Runs `command`.
pub async fn run(ctx: &Context, command: &Command) -> anyhow::Result<()> {
    if let Some(file) = ctx.output_file() {
        if !ipam::takes_output_file(command) {
            return Err(fail(
                Failure::General,
                format!(
                    "invalid value {:?} for -o/--output: use table, wide, json or yaml \
                     (only `ipam check` writes to a file)",
                    file.display().to_string()
                ),
            ));
        }
    }
    match command {
        Command::Apply(args) => apply::run(ctx, args).await,
        Command::Create(args) => create::run(ctx, args).await,
        Command::Replace(args) => replace::run(ctx, args).await,
        Command::Patch(args) => patch::run(ctx, args).await,
        Command::Label(args) => label::run(ctx, args).await,
        Command::Get(args) => get::run(ctx, args).await,
        Command::Delete(args) => delete::run(ctx, args).await,
        Command::Ipam(args) => ipam::run(ctx, args).await,
        Command::Node(args) => node::run(ctx, args).await,
        Command::Completion(args) => {
            completion::run(args);
            Ok(())
        }
    }
}
