//! `manulctl completion SHELL`: a completion script for the shell.

use clap::CommandFactory;
use clap_complete::Shell;

use crate::cli::Cli;

pub const LONG_ABOUT: &str = "\
Print a completion script for SHELL (bash, zsh, fish, elvish or powershell)
to standard output. It completes commands, flags and output formats.";

pub const AFTER_HELP: &str = "\
Examples:
  # bash, this shell only
  $ source <(manulctl completion bash)

  # bash, every shell
  $ manulctl completion bash > /etc/bash_completion.d/manulctl

  # zsh (a directory in $fpath)
  $ manulctl completion zsh > \"${fpath[1]}/_manulctl\"

  # fish
  $ manulctl completion fish > ~/.config/fish/completions/manulctl.fish";

/// `completion` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Runs `completion`.
pub fn run(args: &Args) {
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut Cli::command(), "manulctl", &mut script);
    crate::output::emit(&String::from_utf8_lossy(&script));
}
