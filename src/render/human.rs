//! The terminal view: each target as a row of its build's stages (done ✓, failed ✗, running ▶,
//! next ▷, not run ·) with the target in brackets, the call a promotion makes and every stage
//! it runs, then a summary line like Terraform's.

use std::borrow::Cow;
use std::fmt::{self, Write};

use crate::observe::ObservedBuild;
use crate::reconcile::{Plan, PlanItem, Status, Summary};

/// Whether to colour: only on a terminal, never with `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
}

impl Style {
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal;
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Style {
            colour: std::io::stdout().is_terminal() && !no_color,
        }
    }

    fn paint<'a>(&self, code: &'a str, text: &'a str) -> Painted<'a> {
        Painted {
            code: self.colour.then_some(code),
            text,
        }
    }
}

/// Text in a colour (an SGR code), or plain; written straight into the report.
struct Painted<'a> {
    code: Option<&'a str>,
    text: &'a str,
}

impl fmt::Display for Painted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.code {
            Some(code) => write!(f, "\x1b[{code}m{}\x1b[0m", self.text),
            None => f.write_str(self.text),
        }
    }
}

/// `plan` (with calls) or `status` (where things stand).
pub fn render(plan: &Plan, server: &str, show_calls: bool, style: Style) -> String {
    let mut out = String::new();
    let verb = if show_calls { "Plan" } else { "Status" };
    let _ = writeln!(out, "{verb} for {} targets on {server}\n", plan.items.len());
    let id_width = plan
        .items
        .iter()
        .map(|i| i.target.id.len())
        .max()
        .unwrap_or(0);
    let key_width = plan
        .items
        .iter()
        .map(|i| build_label(i).len())
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(id_width + 6);
    for item in &plan.items {
        let (mark, colour, words) = describe(&item.status, show_calls);
        let _ = writeln!(
            out,
            "  {} {:<id_width$}  {:<key_width$}  {}  {}",
            style.paint(colour, mark),
            item.target.id,
            build_label(item),
            stage_row(item.build.as_deref(), &item.target.stage),
            style.paint(colour, &words),
        );
        if let (true, Status::Queue { action }) = (show_calls, &item.status) {
            let _ = write!(out, "{pad}call: {} {}", action.method, action.path);
            for (i, (k, v)) in action.query.iter().enumerate() {
                let separator = if i == 0 { '?' } else { '&' };
                let _ = write!(out, "{separator}{k}={}", crate::bamboo::encode_segment(v));
            }
            let _ = writeln!(out, "\n{pad}runs: {}", action.runs.join(", "));
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(&plan.summary(), show_calls));
    out
}

fn build_label(item: &PlanItem) -> Cow<'_, str> {
    match (&item.build, &item.target.branch) {
        (Some(build), _) => Cow::Borrowed(&build.key),
        (None, Some(branch)) => Cow::Owned(format!("{} ({branch})", item.target.plan)),
        (None, None) => Cow::Borrowed(&item.target.plan),
    }
}

/// A status in the words of the plan: `in sync`, `promote to Deploy Staging`, `blocked: …`.
pub fn status_words(status: &Status) -> String {
    describe(status, true).2
}

fn describe(status: &Status, planning: bool) -> (&'static str, &'static str, String) {
    match status {
        Status::InSync => ("=", "32", "in sync".into()),
        Status::Ahead { beyond } => ("=", "32", format!("ahead: also ran {}", beyond.join(", "))),
        Status::Queue { action } if planning => ("+", "33", format!("promote to {}", action.stage)),
        Status::Queue { action } => ("+", "33", format!("needs {}", action.stage)),
        Status::Running { stage: Some(stage) } => ("~", "36", format!("running {stage}")),
        Status::Running { stage: None } => ("~", "36", "running".into()),
        Status::Waiting { on } => ("…", "36", format!("waiting on {}", on.join(", "))),
        Status::Blocked { reason } => ("!", "31", format!("blocked: {reason}")),
    }
}

/// `Build ✓ › [Deploy Staging ▷] › Deploy Prod ·`, written where it is displayed.
pub fn stage_row<'a>(build: Option<&'a ObservedBuild>, target: &'a str) -> StageRow<'a> {
    StageRow { build, target }
}

pub struct StageRow<'a> {
    build: Option<&'a ObservedBuild>,
    target: &'a str,
}

impl fmt::Display for StageRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(build) = self.build else {
            return f.write_str("(no build)");
        };
        for (i, s) in build.stages.iter().enumerate() {
            let symbol = match (s.life_cycle_state.as_str(), s.state.as_str()) {
                ("Finished", "Successful") => "✓",
                ("Finished", "Failed") => "✗",
                ("InProgress", _) => "▶",
                ("Pending" | "Queued", _) => "…",
                _ if s.runnable => "▷",
                _ => "·",
            };
            let separator = if i == 0 { "" } else { " › " };
            if s.name == self.target {
                write!(f, "{separator}[{} {symbol}]", s.name)?;
            } else {
                write!(f, "{separator}{} {symbol}", s.name)?;
            }
        }
        Ok(())
    }
}

pub fn summary_line(s: &Summary, planning: bool) -> String {
    let promote = if planning {
        "to promote"
    } else {
        "need promotion"
    };
    format!(
        "{} {promote}, {} in sync, {} ahead, {} running, {} waiting, {} blocked.",
        s.to_promote, s.in_sync, s.ahead, s.running, s.waiting, s.blocked
    )
}
