//! The `bamboo-promote` binary: parse the command line, run, exit with the code `run` chose.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = match bamboo_promote::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` are not errors; everything else is a usage error.
            let _ = error.print();
            let code = if error.use_stderr() {
                bamboo_promote::exit::USAGE
            } else {
                bamboo_promote::exit::SUCCESS
            };
            return std::process::ExitCode::from(code);
        }
    };
    std::process::ExitCode::from(bamboo_promote::run(cli).await)
}
