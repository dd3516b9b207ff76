//! The `bamboo-promote` binary: parse the command line, run, exit with the code `run` chose.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = bamboo_promote::cli::Cli::parse();
    std::process::ExitCode::from(bamboo_promote::run(cli).await)
}
