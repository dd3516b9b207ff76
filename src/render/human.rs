//! The terminal view: each target as a row of its build's stages (done ✓, failed ✗, running ▶,
//! next ▷, not run ·) with the target in brackets, the call a promotion makes and every stage
//! it runs, then a summary line like Terraform's.

use std::fmt::Write;

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

    fn paint(&self, code: &str, text: &str) -> String {
        if self.colour {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
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
    for item in &plan.items {
        let (mark, colour, words) = describe(&item.status, show_calls);
        let _ = writeln!(
            out,
            "  {} {:<id_width$}  {:<key_width$}  {}  {}",
            style.paint(colour, mark),
            item.target.id,
            build_label(item),
            stage_row(item.build.as_ref(), &item.target.stage),
            style.paint(colour, &words),
        );
        if let (true, Status::Queue { action }) = (show_calls, &item.status) {
            let pad = " ".repeat(id_width + 6);
            let query: Vec<String> = action
                .query
                .iter()
                .map(|(k, v)| format!("{k}={}", crate::bamboo::encode_segment(v)))
                .collect();
            let _ = writeln!(
                out,
                "{pad}call: {} {}?{}",
                action.method,
                action.path,
                query.join("&")
            );
            let _ = writeln!(out, "{pad}runs: {}", action.runs.join(", "));
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(&plan.summary(), show_calls));
    out
}

fn build_label(item: &PlanItem) -> String {
    match &item.build {
        Some(build) => build.key.clone(),
        None => match &item.target.branch {
            Some(branch) => format!("{} ({branch})", item.target.plan),
            None => item.target.plan.clone(),
        },
    }
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

/// `Build ✓ › [Deploy Staging ▷] › Deploy Prod ·`
pub fn stage_row(build: Option<&ObservedBuild>, target: &str) -> String {
    let Some(build) = build else {
        return "(no build)".to_string();
    };
    let cells: Vec<String> = build
        .stages
        .iter()
        .map(|s| {
            let symbol = match (s.life_cycle_state.as_str(), s.state.as_str()) {
                ("Finished", "Successful") => "✓",
                ("Finished", "Failed") => "✗",
                ("InProgress", _) => "▶",
                ("Pending" | "Queued", _) => "…",
                _ if s.runnable => "▷",
                _ => "·",
            };
            if s.name == target {
                format!("[{} {symbol}]", s.name)
            } else {
                format!("{} {symbol}", s.name)
            }
        })
        .collect();
    cells.join(" › ")
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
