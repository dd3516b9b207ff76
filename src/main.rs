//! The `bamboo-promote` binary: read the configuration files, parse the command line, run,
//! exit with the code `run` chose.

use std::io::Write as _;

use clap::{CommandFactory, FromArgMatches};

use bamboo_promote::{cli::Cli, config_file, exit};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let command = std::env::current_dir()
        .map_err(|e| e.to_string())
        .and_then(|dir| config_file::find(&dir).map_err(|e| e.to_string()))
        .and_then(|defaults| defaults.apply(Cli::command()).map_err(|e| e.to_string()));
    let command = match command {
        Ok(command) => command,
        Err(e) => {
            // A closed stderr is no reason to panic: the exit code still says it.
            let _ = writeln!(std::io::stderr(), "error: {e}");
            return std::process::ExitCode::from(exit::USAGE);
        }
    };
    let cli = match command
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches))
    {
        Ok(cli) => cli,
        Err(error) => {
            // `--help` and `--version` are not errors; everything else is a usage error.
            let _ = error.print();
            let code = if error.use_stderr() {
                exit::USAGE
            } else {
                exit::SUCCESS
            };
            return std::process::ExitCode::from(code);
        }
    };
    std::process::ExitCode::from(bamboo_promote::run(cli).await)
}
