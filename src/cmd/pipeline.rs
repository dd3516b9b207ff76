//! The steps `plan`, `status` and `apply` share: load and validate the manifests (nothing is
//! contacted when one is invalid), connect, observe, validate online, plan.

use std::path::PathBuf;

use super::failure::Failure;
use crate::bamboo::{BambooClient, BambooError};
use crate::cli::{OutputFormat, Selection, ServerArgs};
use crate::config::{self, Connection};
use crate::manifest::{self, Desired};
use crate::observe;
use crate::observe::Observed;
use crate::reconcile::{self, Plan};
use crate::render;
use crate::render::DocumentKind;
use crate::render::human::Style;

/// The moment a plan is for: now on the server's clock unless `--at` says otherwise, and
/// whether windows are overridden (`apply --override-window`).
#[derive(Debug, Clone, Copy, Default)]
pub struct When {
    pub at: Option<jiff::Timestamp>,
    pub override_windows: bool,
}

pub struct Planned {
    pub connection: Connection,
    pub desired: Desired,
    pub plan: Plan,
    /// The manifest paths as given: names the set in a pull-request comment's marker.
    pub set: String,
}

/// Loads, selects, observes and plans; a failure says why, for `Failure::report`.
pub async fn plan(
    paths: &[PathBuf],
    exclude: &[String],
    server: &ServerArgs,
    selection: &Selection,
    when: When,
) -> Result<Planned, Failure> {
    // Neither parsing the manifests nor setting up the client (which reads the system's trusted
    // certificates) contacts the server, so they run side by side; the manifests' verdict
    // comes first, and nothing is sent unless they are valid.
    // A command line without a server, or with one that is no address, is wrong whatever the
    // manifests say.
    config::given(server).map_err(Failure::connecting)?;
    let owned = paths.to_vec();
    let exclude = manifest::Exclude::new(exclude).map_err(Failure::new)?;
    let (desired, connection) = tokio::join!(
        tokio::task::spawn_blocking(move || load(&owned, &exclude)),
        config::connect(server)
    );
    let desired = desired
        .expect("the manifest loader panicked")?
        .select(&selection.targets)
        .map_err(|e| Failure::new(format!("{e}; nothing was contacted")))?;
    let connection = connection.map_err(Failure::connecting)?;
    let observed = observe(&connection, &desired).await?;
    let online = reconcile::check(&desired, &observed);
    if !online.is_empty() {
        // When no plan at all is found, the likelier mistake is the address, not every key.
        let none_found = observed.plans.values().all(Option::is_none);
        if none_found && let Some(problem) = address_problem(&connection.client).await {
            return Err(Failure::new(format!("{problem}; nothing was queued")));
        }
        return Err(Failure::manifests(online, "nothing was queued"));
    }
    let moment = match when.at {
        Some(at) => reconcile::Moment::at(at, when.override_windows),
        None => reconcile::Moment::on_server(&connection.client, when.override_windows),
    };
    let plan = reconcile::plan(&desired, &observed, moment);
    let set: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok(Planned {
        connection,
        desired,
        plan,
        set: set.join(" "),
    })
}

/// Where and when a comment is made: the manifests' commit (when they are in a Git checkout),
/// now, and the CI run. Only a comment shows it, so only for one is git run.
pub async fn provenance(format: OutputFormat, paths: &[PathBuf]) -> render::markdown::Provenance {
    if format != OutputFormat::Markdown {
        return render::markdown::Provenance::default();
    }
    let commit = match paths.first() {
        Some(path) => match crate::git::Checkout::of(path).await {
            Some(checkout) => checkout.head().await,
            None => None,
        },
        None => None,
    };
    render::markdown::Provenance {
        commit,
        at: Some(jiff::Timestamp::now()),
        ci_run: crate::apply::ci_run(crate::apply::env),
    }
}

/// What is wrong with the server's address, if `GET info` shows it is not Bamboo's REST API:
/// a missing or extra context path, `/rest/api/latest` given twice, a login page. `None` when
/// the address answers as Bamboo (or cannot tell: credentials refused).
async fn address_problem(client: &BambooClient) -> Option<String> {
    let server = client.server();
    let answer = match client.info().await {
        Ok(_)
        | Err(BambooError::Status {
            status: 401 | 403, ..
        }) => return None,
        Err(BambooError::Status {
            status, message, ..
        }) => format!("{status} ({message})"),
        Err(BambooError::Decode { detail, .. }) => detail,
        Err(BambooError::Transport { detail, .. }) => return Some(unreachable(server, &detail)),
        Err(other) => other.to_string(),
    };
    let fix = if server.trim_end_matches('/').ends_with("/rest/api/latest") {
        "give Bamboo's base address without /rest/api/latest".to_string()
    } else {
        // With a path given, the likelier mistake is a context path the server does not
        // have; without one, a context path left out.
        let context = url::Url::parse(server)
            .ok()
            .filter(|url| !url.path().trim_matches('/').is_empty())
            .map(|url| url.origin().ascii_serialization());
        match context {
            Some(origin) => format!(
                "give Bamboo's base address as --server: without a context path if it has none (such as {origin}), or with the one it has"
            ),
            None => format!(
                "give Bamboo's base address as --server: with its context path if it has one (such as {server}/bamboo)"
            ),
        }
    };
    Some(format!(
        "{server} does not answer as Bamboo: GET {server}/rest/api/latest/info gave {answer}. {fix}"
    ))
}

/// A read that failed every retry, said of the server rather than of the read.
fn unreachable(server: &str, detail: &str) -> String {
    if detail.starts_with("Bamboo answered") {
        format!(
            "Bamboo at {server} keeps failing: {detail}; try again later, or ask its administrators"
        )
    } else {
        format!(
            "cannot reach Bamboo at {server}: {detail}; check --server (or BAMBOO_URL), the network and any proxy"
        )
    }
}

pub fn load(paths: &[PathBuf], exclude: &manifest::Exclude) -> Result<Desired, Failure> {
    manifest::load_excluding(paths, exclude)
        .map_err(|errors| Failure::manifests(errors, "nothing was contacted"))
}

pub async fn connect(server: &ServerArgs) -> Result<Connection, Failure> {
    config::connect(server).await.map_err(Failure::connecting)
}

/// Observes; errors that come from the address rather than from one read are said once,
/// naming it.
pub async fn observe(connection: &Connection, desired: &Desired) -> Result<Observed, Failure> {
    let client = &connection.client;
    let error = match observe::observe(client, desired).await {
        Ok(observed) => return Ok(observed),
        Err(error) => error,
    };
    let problem = match &error {
        BambooError::Transport { detail, .. } => Some(unreachable(client.server(), detail)),
        BambooError::Decode { .. } | BambooError::TooLarge { .. } | BambooError::Status { .. } => {
            address_problem(client).await
        }
        _ => None,
    };
    Err(Failure::new(problem.unwrap_or_else(|| error.to_string())))
}

/// The document for `--format json` and `--out`.
pub fn document(kind: DocumentKind, planned: &Planned) -> render::PlanDocument {
    render::PlanDocument::new(
        kind,
        &planned.connection.given,
        &planned.desired.digest,
        planned.plan.clone(),
    )
}

/// Prints a plan (`kind` = `plan`, with the calls) or a status report in the chosen format.
pub fn print(
    format: OutputFormat,
    kind: DocumentKind,
    planned: &Planned,
    context: &render::markdown::Context,
) {
    let server = &planned.connection.server;
    match format {
        OutputFormat::Human | OutputFormat::Github => {
            crate::output::out_text(render::human::render(
                &planned.plan,
                server,
                kind == DocumentKind::Plan,
                Style::for_stdout(),
            ));
            if let Some(comparison) = context.comparison {
                crate::output::out_text(render::human::changes(comparison));
            }
            if format == OutputFormat::Github {
                super::validate::annotate_plan(&planned.plan, &planned.desired);
            }
        }
        OutputFormat::Markdown => crate::output::out_text(render::markdown::render(
            &planned.plan,
            server,
            kind,
            &planned.set,
            context,
        )),
        OutputFormat::Json => crate::output::out_line(
            serde_json::to_string_pretty(&document(kind, planned)).expect("a plan serializes"),
        ),
    }
}
