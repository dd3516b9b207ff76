//! bamboo-promote: declarative promotion of Bamboo builds through manual stages.
//!
//! The flow: `manifest` (desired) and `observe` (what Bamboo has) feed the pure
//! `reconcile::plan`; `render` shows the plan and `apply` carries it out. `bamboo` is the only
//! module that speaks HTTP; `sim` is an independent simulated Bamboo for tests and demos.

// The simulator's JSON views copy Bamboo's large recorded shapes in `json!`, which needs it.
#![recursion_limit = "256"]
// Output goes through `output`, which never panics on a closed pipe nor blocks on a stalled one.
#![deny(clippy::print_stdout, clippy::print_stderr)]

#[macro_use]
mod output;

mod adopt;
pub mod apply;
pub mod bamboo;
pub mod boot_clock;
pub mod cli;
mod cmd;
mod compare;
mod config;
pub mod config_file;
pub mod environments;
pub mod exit;
pub mod explore;
pub mod git;
mod label;
pub mod lock_label;
mod logs;
pub mod manifest;
pub mod observe;
pub mod process;
pub mod reconcile;
pub mod render;
pub mod sim;
mod suggest;
pub mod tried_label;
pub mod watch;
pub mod windows;

use cli::{Cli, Command};

/// Runs one command line and returns the process exit code.
pub async fn run(cli: Cli) -> u8 {
    let code = run_command(cli).await;
    output::flush();
    code
}

async fn run_command(cli: Cli) -> u8 {
    render::human::choose_colour(cli.color);
    logs::start(cli.verbose, cli.quiet);
    match &cli.command {
        Command::Validate(args) => cmd::validate::run(args),
        Command::Schema(args) => cmd::schema::run(args),
        Command::Sim(args) => cmd::sim::run(args).await,
        Command::Plan(args) => cmd::plan::run(args).await,
        Command::Status(args) => cmd::status::run(args).await,
        Command::Apply(args) => cmd::apply::run(args).await,
        Command::Watch(args) => cmd::watch::run(args).await,
        Command::Locks(args) => cmd::locks::run(args).await,
        Command::Environments(args) => cmd::environments::run(args).await,
        Command::Unlock(args) => cmd::unlock::run(args).await,
        Command::Init(args) => cmd::init::run(args).await,
        Command::Completions(args) => cmd::completions::completions(args),
        Command::Man(args) => cmd::completions::man(args),
    }
}
