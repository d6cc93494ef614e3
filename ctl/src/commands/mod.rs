//! The commands, one module each, and [`run`], which dispatches to them.
//!
//! A command module holds its `Args` (clap), its help texts (`LONG_ABOUT`,
//! `AFTER_HELP` with examples) and its `run`. A command group such as
//! `ipam` is a module with its own `Subcommand` enum; see [`crate::cli`]
//! for where to hook it in.

pub mod apply;
pub mod completion;
pub mod delete;
pub mod get;

use crate::cli::Command;
use crate::context::Context;

/// Runs `command`.
pub async fn run(ctx: &Context, command: &Command) -> anyhow::Result<()> {
    match command {
        Command::Apply(args) => apply::run(ctx, args).await,
        Command::Get(args) => get::run(ctx, args).await,
        Command::Delete(args) => delete::run(ctx, args).await,
        Command::Completion(args) => {
            completion::run(args);
            Ok(())
        }
    }
}
