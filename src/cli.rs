//! The command line, as clap derive structs. The help text lives in the doc comments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::render::human::ColourChoice;

/// Declarative promotion of Bamboo builds through manual stages.
///
/// Manifests say which builds should have reached which manual stages; `plan` shows what it
/// would take, `apply` does it with only the calls needed, and never re-runs a stage.
#[derive(Debug, Parser)]
#[command(
    name = "bamboo-promote",
    version = env!("BAMBOO_PROMOTE_VERSION"),
    propagate_version = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// When to colour: on a terminal (auto; NO_COLOR turns it off, CLICOLOR_FORCE on), always,
    /// or never.
    #[arg(long, global = true, value_enum, default_value_t = ColourChoice::Auto)]
    pub color: ColourChoice,
    /// Say more on stderr: for the commands that talk to Bamboo, each request (method, path,
    /// status, time, retries); twice, their answers too. Credentials never appear. RUST_LOG,
    /// when set, chooses instead.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors, the audit trail and the results: no progress.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// The environment a command that talks to Bamboo reads: `--help` shows it, and the man
/// pages' ENVIRONMENT section is made from it (`ENVIRONMENT`).
macro_rules! environment {
    () => {
        "  BAMBOO_URL           Bamboo's base URL, as --server
  BAMBOO_TOKEN         a personal access token (sent as Authorization: Bearer)
  BAMBOO_TOKEN_FILE    a file holding the token, as --token-file
  BAMBOO_USERNAME, BAMBOO_PASSWORD
                       basic auth, where tokens are not available
  SSL_CERT_FILE        a PEM file of CAs to trust besides the system's
  HTTPS_PROXY, HTTP_PROXY
                       a proxy to Bamboo
  NO_COLOR             no colour
  XDG_CONFIG_HOME      holds bamboo-promote/config.toml (else ~/.config), the user's
                       defaults; bamboo-promote.toml in the repository wins over it"
    };
}

/// Examples, then the environment, for `--help`.
macro_rules! with_environment {
    ($examples:literal) => {
        concat!($examples, "\n\nEnvironment:\n", environment!())
    };
}

/// The environment, as `--help` lists it: a name (or names) at two spaces, then what it is.
pub const ENVIRONMENT: &str = environment!();

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check manifests offline: syntax, fields, ids, `after` references, cycles, conflicts.
    #[command(after_help = "Examples:
  bamboo-promote validate promotions
  bamboo-promote validate --format github promotions    # annotations on a pull request's diff
  bamboo-promote validate --format json release.yaml")]
    Validate(ValidateArgs),
    /// Print a JSON Schema: of the manifest format, the plan document, or apply's events.
    #[command(after_help = "Examples:
  bamboo-promote schema --out schemas/promotion.v1.schema.json
  bamboo-promote schema --kind events")]
    Schema(SchemaArgs),
    /// Show what apply would do, without changing anything.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote plan promotions
  bamboo-promote plan --detailed-exitcode --format markdown promotions > plan.md
  bamboo-promote plan --target app-prod --out plan.json promotions
  bamboo-promote plan --server sim:examples/sim/world.yaml examples/promotions"))]
    Plan(PlanArgs),
    /// Show where each target's build stands now.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote status promotions
  bamboo-promote status --format json promotions"))]
    Status(StatusArgs),
    /// What runs where: for each plan and manual stage, the build that last ran it, what is
    /// on its way, and the targets that want it.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote environments promotions
  bamboo-promote environments --format markdown promotions > environments.md"))]
    Environments(EnvironmentsArgs),
    /// Queue the promotions the manifests (or a saved plan) call for.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote apply promotions                       # shows the plan, asks, applies
  bamboo-promote apply --auto-approve --wait --timeout 45m promotions
  bamboo-promote apply --auto-approve plan.json         # exactly what `plan --out` saved
  bamboo-promote apply --auto-approve --format json --audit-log audit.jsonl promotions"))]
    Apply(ApplyArgs),
    /// Keep Bamboo in line with the manifests: every interval, re-read them, plan and apply
    /// what they call for, trying each build and stage once.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote watch --interval 30s promotions
  bamboo-promote watch --pull --format json --listen 127.0.0.1:9464 promotions
  bamboo-promote watch --once --audit-log audit.jsonl promotions"))]
    Watch(WatchArgs),
    /// List the lock labels on the builds the manifests' targets name: which apply holds
    /// which build, since when, until when.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote locks promotions"))]
    Locks(LocksArgs),
    /// Take bamboo-promote's lock labels off builds (expired ones; live ones with --force).
    #[command(after_help = with_environment!("Examples:
  bamboo-promote unlock SHOP-APP-42
  bamboo-promote unlock --force --reason 'checked in Bamboo after an exit 7' SHOP-APP-42"))]
    Unlock(UnlockArgs),
    /// Write manifests that describe what Bamboo holds now: the first plan is in sync.
    #[command(after_help = with_environment!("Examples:
  bamboo-promote init --project SHOP --out promotions
  bamboo-promote init --project SHOP --plan SHOP-APP --plan SHOP-API"))]
    Init(InitArgs),
    /// Print a shell's completion script (bash, zsh, fish, powershell, elvish).
    #[command(after_help = "Examples:
  bamboo-promote completions bash > ~/.local/share/bash-completion/completions/bamboo-promote
  bamboo-promote completions zsh > ~/.zfunc/_bamboo-promote")]
    Completions(CompletionsArgs),
    /// Print the man page (roff), for `man -l -`; with --out, write one page per command.
    #[command(after_help = "Examples:
  bamboo-promote man | man -l -
  bamboo-promote man --out ~/.local/share/man/man1")]
    Man(ManArgs),
    /// Serve a simulated Bamboo described by a world file.
    #[command(after_help = "Examples:
  bamboo-promote sim --world examples/sim/world.yaml --listen 127.0.0.1:8085")]
    Sim(SimArgs),
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Manifest files or folders (every *.yaml / *.yml below, in path order).
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[arg(long, value_enum, default_value_t = DiagnosticFormat::Human)]
    pub format: DiagnosticFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DiagnosticFormat {
    Human,
    Json,
    /// GitHub Actions annotations (`::error file=…,line=…,col=…::…`), marked on the diff.
    Github,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema: the manifest format, the plan document (`plan --format json`, saved
    /// plans), apply's event stream (`apply --format json`), or a line of the audit log
    /// (`apply --audit-log FILE`).
    #[arg(long, value_enum, default_value_t = SchemaKind::Manifest)]
    pub kind: SchemaKind,
    /// Write the schema to this file instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Manifest,
    Plan,
    Events,
    Audit,
    Environments,
}

/// How the manifest folders are walked; the same for every command that reads manifests.
#[derive(Debug, Args)]
pub struct Walk {
    /// Leave out of folder walks what this glob names: a name (`docker-compose.yml`, `*.ci.yaml`)
    /// anywhere, or a path below the folder (`ci/*.yml`). Repeat for more.
    #[arg(long, value_name = "GLOB", value_parser = parse_glob)]
    pub exclude: Vec<String>,
}

/// Where Bamboo is and how to talk to it.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Bamboo's base URL (with its context path, if any), or `sim:WORLD.yaml` to start the
    /// simulator inside this process. `apply PLAN.json` takes the one the plan was made for.
    #[arg(long, env = "BAMBOO_URL", hide_env_values = true)]
    pub server: Option<String>,
    /// Read the personal access token from this file (else BAMBOO_TOKEN).
    #[arg(long, env = "BAMBOO_TOKEN_FILE", hide_env_values = true)]
    pub token_file: Option<PathBuf>,
    /// Requests in flight at once, at most.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallelism: u16,
    /// Time allowed for one HTTP request (1s at least).
    #[arg(long, default_value = "30s", value_parser = parse_request_timeout)]
    pub request_timeout: Duration,
}

/// Which of the manifests' targets a command acts on.
#[derive(Debug, Clone, Args)]
pub struct Selection {
    /// Only this target and those it is `after`, transitively, like Terraform's -target.
    /// Repeat for more.
    #[arg(long = "target", value_name = "ID")]
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Markdown,
    /// The human plan, with errors as GitHub Actions annotations on the manifests' lines.
    Github,
}

/// apply reports as it goes: lines for people, or events for machines (no Markdown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ApplyFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Manifest files or folders.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Plan as it would be at this time (RFC 3339), for promotion windows: "what if we merge
    /// this on Friday at 17:00?". Builds are read as they are now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<jiff::Timestamp>,
    /// Save the plan as JSON, for `apply plan.json`.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes to apply (0 when none), like Terraform.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// The base branch's manifests (a file or folder, e.g. a `git worktree` of the base): with
    /// `--format markdown`, the comment shows first the targets this change adds, changes or
    /// removes, and folds the rest.
    #[arg(long, value_name = "PATH")]
    pub compare: Vec<PathBuf>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Manifest files or folders.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub selection: Selection,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Plan as it would be at this time (RFC 3339), for promotion windows: "what if we merge
    /// this on Friday at 17:00?". Builds are read as they are now.
    #[arg(long, value_name = "TIME")]
    pub at: Option<jiff::Timestamp>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Manifest files or folders, or one plan saved by `plan --out`.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub selection: Selection,
    /// Do not ask for confirmation (needed without a terminal).
    #[arg(long)]
    pub auto_approve: bool,
    /// Wait until every queued stage has finished, and go on in `after` order.
    #[arg(long)]
    pub wait: bool,
    /// How long `--wait` waits in all.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How often `--wait` re-reads builds (100ms at least).
    #[arg(long, default_value = "2s", value_parser = parse_poll_interval)]
    pub poll_interval: Duration,
    /// `human`, or `json` for one event per line.
    #[arg(long, value_enum, default_value_t = ApplyFormat::Human)]
    pub format: ApplyFormat,
    /// Append every write, as JSON lines, to this file.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Exit 2 when this run promoted something (0 when it did nothing), like Terraform.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Why this apply is run: written to the audit trail and to the comment left on each
    /// build it promotes.
    #[arg(long, value_name = "TEXT", value_parser = not_blank)]
    pub reason: Option<String>,
    /// Promote outside the targets' promotion windows; needs --reason, which the audit trail
    /// and the comment on each build keep.
    #[arg(long, requires = "reason")]
    pub override_window: bool,
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// How a run locks the builds it promotes: `apply`'s and `watch`'s.
#[derive(Debug, Clone, Args)]
pub struct LeaseArgs {
    /// How long to wait for another apply's lock on a build before giving up on it. Unless
    /// given, until this run has watched the lock for its whole lifetime (at most 1h), so a
    /// retry after a crashed run clears its lock by itself.
    #[arg(long, value_parser = parse_duration)]
    pub lock_timeout: Option<Duration>,
    /// How far the clocks of the server's front ends (proxies, Data Center nodes) may
    /// disagree. Another apply's lock is taken for expired once this run has watched it for
    /// its whole lifetime, or once it is older than its lifetime plus this; a run whose own
    /// Date readings disagree by more writes nothing.
    #[arg(long, default_value = "1h", value_parser = parse_duration)]
    pub max_clock_skew: Duration,
    /// How long a lock label this run puts on a build is honoured by other runs, on the
    /// server's clock. Longer than --request-timeout by 3s at least.
    #[arg(long, default_value = "10m", value_parser = parse_duration)]
    pub lock_ttl: Duration,
}

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Manifest files or folders, re-read every cycle.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub selection: Selection,
    /// How long from the start of one cycle to the start of the next (1s at least).
    #[arg(long, default_value = "30s", value_parser = parse_cycle_interval)]
    pub interval: Duration,
    /// Run one cycle, then exit with apply's exit code.
    #[arg(long)]
    pub once: bool,
    /// Fast-forward the Git checkout the manifests are in (`git pull --ff-only`) before each
    /// cycle; a cycle whose pull fails writes nothing.
    #[arg(long)]
    pub pull: bool,
    /// `human`, or `json` for one event per line and a `cycle` event per cycle.
    #[arg(long, value_enum, default_value_t = ApplyFormat::Human)]
    pub format: ApplyFormat,
    /// Serve GET /healthz, /metrics (Prometheus) and / (a live board) on this address, such
    /// as 127.0.0.1:9464.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// Append every write, as JSON lines, to this file.
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
    /// Why this watcher runs: written to the audit trail and to the comment left on each build
    /// it promotes.
    #[arg(long, value_name = "TEXT", value_parser = not_blank)]
    pub reason: Option<String>,
    #[command(flatten)]
    pub lease: LeaseArgs,
    /// Refused: a watcher does what the manifests say, windows included. Run `apply
    /// --override-window --reason …` once instead.
    #[arg(long, hide = true)]
    pub override_window: bool,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write bamboo-promote.1 and a page per command (bamboo-promote-plan.1, …) into this
    /// folder instead of printing the main page.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// The Bamboo project whose plans to describe.
    #[arg(long, value_name = "KEY")]
    pub project: String,
    /// Only these plans of the project (PROJ-PLAN); repeat for more. Default: every plan with
    /// a build.
    #[arg(long = "plan", value_name = "KEY")]
    pub plans: Vec<String>,
    /// The folder to write the manifest (and the schema editors read) into.
    #[arg(long, default_value = "promotions")]
    pub out: PathBuf,
    /// Overwrite a manifest already there.
    #[arg(long)]
    pub force: bool,
    #[command(flatten)]
    pub server: ServerArgs,
}

#[derive(Debug, Args)]
pub struct EnvironmentsArgs {
    /// Manifest files or folders.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub selection: Selection,
    /// human (a table fitted to the terminal), json (`schema --kind environments`), or
    /// markdown (for a pull request).
    #[arg(long, value_enum, default_value_t = ViewFormat::Human)]
    pub format: ViewFormat,
}

/// The environments view's formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ViewFormat {
    Human,
    Json,
    Markdown,
}

#[derive(Debug, Args)]
pub struct LocksArgs {
    /// Manifest files or folders.
    #[arg(default_value = ".")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub walk: Walk,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub selection: Selection,
}

#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Build keys, such as SHOP-APP-42.
    #[arg(required = true, value_name = "BUILD_KEY")]
    pub builds: Vec<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Also remove live lock labels: only when no apply is using them. Needs --reason, which
    /// goes into the audit trail with each label removed.
    #[arg(long, conflicts_with = "watch", requires = "reason")]
    pub force: bool,
    /// Why the locks are removed by hand (required with --force), for the audit trail.
    #[arg(long, value_name = "TEXT", value_parser = not_blank)]
    pub reason: Option<String>,
    /// Wait until each live lock label has been watched for its whole lifetime (at most
    /// 1h), then remove it: what apply does by itself, without trusting any clock.
    #[arg(long)]
    pub watch: bool,
    /// Append every label removed, as JSON lines, to this file (as apply's --audit-log).
    #[arg(long)]
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SimArgs {
    /// The world file: plans, stages, builds, tokens, faults.
    #[arg(long)]
    pub world: PathBuf,
    /// Address to listen on; port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:8085")]
    pub listen: SocketAddr,
}

/// A request timeout: a second at least, or every call would end with an unknown outcome.
fn parse_request_timeout(text: &str) -> Result<Duration, String> {
    let timeout = parse_duration(text)?;
    if timeout < Duration::from_secs(1) {
        return Err(format!(
            "`{text}` is too short for a request; use 1s or more"
        ));
    }
    Ok(timeout)
}

/// A glob for `--exclude`, checked as the command line is read.
fn parse_glob(text: &str) -> Result<String, String> {
    globset::Glob::new(text)
        .map(|_| text.to_string())
        .map_err(|e| e.to_string())
}

/// A poll interval: a duration of 100 ms at least, so that `--wait` cannot flood a server.
fn parse_cycle_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_secs(1) {
        return Err(format!(
            "`{text}` is too short: each cycle reads every target's builds; use 1s or more"
        ));
    }
    Ok(interval)
}

fn parse_poll_interval(text: &str) -> Result<Duration, String> {
    let interval = parse_duration(text)?;
    if interval < Duration::from_millis(100) {
        return Err(format!(
            "`{text}` is too short: --wait re-reads every build each round; use 100ms or more"
        ));
    }
    Ok(interval)
}

/// `250ms`, `30s`, `1.5s`, `5m`, `1h30m`, `1h 30m`, or ISO 8601 (`PT1H30M`), read by jiff; a
/// bare number is seconds. Negative or too long durations are refused.
/// A reason that says something: a blank one would let a closed window be overridden with no
/// justification on the record.
fn not_blank(text: &str) -> Result<String, String> {
    // Zero-width and other format characters (U+200B, U+2060, U+FEFF, ...) show nothing.
    let invisible = |c: char| {
        c.is_whitespace()
            || matches!(c, '\u{00AD}' | '\u{180E}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{206F}' | '\u{FEFF}')
    };
    if text.chars().any(|c| c.is_control() && !c.is_whitespace()) {
        return Err("a reason is plain text: no control characters or escape sequences".into());
    }
    if text.chars().all(invisible) {
        return Err("a reason must say why; it cannot be blank".into());
    }
    Ok(text.to_string())
}

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let with_unit = if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        format!("{text}s")
    } else {
        text.to_string()
    };
    let signed: jiff::SignedDuration = with_unit.parse().map_err(|_| {
        format!(
            "`{text}` is not a duration such as 30s, 1.5s, 5m or 1h30m (a bare number is seconds)"
        )
    })?;
    Duration::try_from(signed).map_err(|_| format!("`{text}` is negative"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        let ms = |text: &str| parse_duration(text).map(|d| d.as_millis());
        assert_eq!(ms("250ms"), Ok(250));
        assert_eq!(ms("30s"), Ok(30_000));
        assert_eq!(ms("30"), Ok(30_000));
        assert_eq!(ms("1.5s"), Ok(1_500));
        assert_eq!(ms("1h30m"), Ok(5_400_000));
        assert_eq!(ms("1h 30m"), Ok(5_400_000));
        assert_eq!(ms("PT1H30M"), Ok(5_400_000));
        for bad in ["", "soon", "-5s", "99999999999999999999999h", "5 parsecs"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
