//! `unlock`: takes bamboo-promote's lock labels off builds (see `apply::unlock`).

use super::failure::Json;
use crate::apply::unlock::{Live, unlock};
use crate::cli::UnlockArgs;
use crate::exit;

pub async fn run(args: &UnlockArgs) -> u8 {
    let connection = match super::pipeline::connect(&args.server).await {
        Ok(connection) => connection,
        Err(failure) => return failure.report(Json::No),
    };
    // Labels taken off by hand are in the audit trail on stderr, like apply's writes.
    match crate::apply::Reporter::new(false, args.audit_log.as_deref(), args.reason.clone()) {
        Ok(reporter) => connection
            .client
            .keep_journal(std::sync::Arc::new(reporter)),
        Err(e) => {
            errln!("error: {e}");
            return exit::ERROR;
        }
    }
    let mut code = exit::SUCCESS;
    for build_key in &args.builds {
        let live = if args.force {
            Live::Force
        } else if args.watch {
            Live::Watch
        } else {
            Live::Refuse
        };
        let waiting = |line: &str| errln!("{line}");
        match unlock(&connection.client, build_key, live, waiting).await {
            Ok(removed) if removed.is_empty() => outln!("{build_key}: no lock labels"),
            Ok(removed) => {
                for label in removed {
                    outln!("{build_key}: removed {label}");
                }
            }
            Err(e) => {
                errln!("error: {e}");
                code = exit::ERROR;
            }
        }
    }
    code
}
