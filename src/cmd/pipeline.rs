//! The steps `plan`, `status` and `apply` share: load and validate the manifests (nothing is
//! contacted when one is invalid), connect, observe, validate online, plan.

use std::path::PathBuf;

use crate::cli::{DiagnosticFormat, OutputFormat, Selection, ServerArgs};
use crate::config::{self, Connection};
use crate::manifest::{self, Desired};
use crate::observe::{self, Observed};
use crate::reconcile::{self, Plan};
use crate::render::human::Style;
use crate::{exit, render, stdout};

pub struct Planned {
    pub connection: Connection,
    pub desired: Desired,
    pub plan: Plan,
}

/// Loads, selects, observes and plans; on failure the error is already reported and the exit
/// code is returned.
pub async fn plan(
    paths: &[PathBuf],
    server: &ServerArgs,
    selection: &Selection,
) -> Result<Planned, u8> {
    // Neither parsing the manifests nor setting up the client (which reads the system's trusted
    // certificates) contacts the server, so they run side by side; the manifests' verdict
    // comes first, and nothing is sent unless they are valid.
    let owned = paths.to_vec();
    let (desired, connection) = tokio::join!(
        tokio::task::spawn_blocking(move || load(&owned)),
        config::connect(server)
    );
    let desired = desired
        .expect("the manifest loader panicked")?
        .select(&selection.targets)
        .map_err(|e| {
            eprintln!("error: {e}; nothing was contacted");
            exit::ERROR
        })?;
    let connection = connection.map_err(report_connect_error)?;
    let observed = observe_or_report(&connection, &desired).await?;
    let online = reconcile::check(&desired, &observed);
    if !online.is_empty() {
        super::validate::report(&online, DiagnosticFormat::Human, "nothing was queued");
        if let Some(note) = wrong_address_note(&observed, &connection.server) {
            eprintln!("{note}");
        }
        return Err(exit::ERROR);
    }
    let plan = reconcile::plan(&desired, &observed);
    Ok(Planned {
        connection,
        desired,
        plan,
    })
}

/// When not one of several plans exists, the likelier mistake is the address, not every key:
/// a Bamboo served under a context path (`/bamboo`) answers 404 to everything without it.
fn wrong_address_note(observed: &Observed, server: &str) -> Option<String> {
    let missing = observed.plans.values().filter(|p| p.is_none()).count();
    (missing >= 2 && missing == observed.plans.len()).then(|| {
        format!(
            "note: none of the {missing} plans was found on {server}; if Bamboo is served under a \
             context path, include it in --server (such as https://bamboo.example.com/bamboo)"
        )
    })
}

pub fn load(paths: &[PathBuf]) -> Result<Desired, u8> {
    manifest::load(paths).map_err(|errors| {
        super::validate::report(&errors, DiagnosticFormat::Human, "nothing was contacted");
        exit::ERROR
    })
}

pub async fn connect(server: &ServerArgs) -> Result<Connection, u8> {
    config::connect(server).await.map_err(report_connect_error)
}

fn report_connect_error(error: config::ConfigError) -> u8 {
    eprintln!("error: {error}");
    exit::ERROR
}

pub async fn observe_or_report(connection: &Connection, desired: &Desired) -> Result<Observed, u8> {
    observe::observe(&connection.client, desired)
        .await
        .map_err(|e| {
            eprintln!("error: {e}");
            exit::ERROR
        })
}

/// The document for `--format json` and `--out`.
pub fn document(kind: &str, planned: &Planned) -> render::PlanDocument {
    render::PlanDocument::new(
        kind,
        &planned.connection.given,
        &planned.desired.digest,
        planned.plan.clone(),
    )
}

/// Prints a plan (`kind` = `plan`, with the calls) or a status report in the chosen format.
pub fn print(format: OutputFormat, kind: &str, planned: &Planned) {
    let server = &planned.connection.server;
    match format {
        OutputFormat::Human => stdout::text(render::human::render(
            &planned.plan,
            server,
            kind == "plan",
            Style::for_stdout(),
        )),
        OutputFormat::Markdown => stdout::text(render::markdown::render(&planned.plan, server)),
        OutputFormat::Json => stdout::line(
            serde_json::to_string_pretty(&document(kind, planned)).expect("a plan serializes"),
        ),
    }
}
