//! Markdown for a pull-request comment: a summary line and a table, one row per target.

use std::fmt::Write;

use super::human::{stage_row, summary_line};
use crate::reconcile::{Plan, Status};

pub fn render(plan: &Plan, server: &str) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### bamboo-promote plan\n");
    let _ = writeln!(
        out,
        "**{}** (server `{server}`)\n",
        summary_line(&plan.summary(), true)
    );
    let _ = writeln!(out, "| Target | Build | Stages | Status | Will run |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for item in &plan.items {
        let build = item
            .build
            .as_ref()
            .map_or("—".to_string(), |b| format!("`{}`", b.key));
        let (status, runs) = match &item.status {
            Status::InSync => ("✅ in sync".to_string(), String::new()),
            Status::Ahead { beyond } => {
                (format!("✅ ahead ({})", beyond.join(", ")), String::new())
            }
            Status::Queue { action } => (
                format!("🚀 promote to **{}**", action.stage),
                action.runs.join(" → "),
            ),
            Status::Running { stage } => (
                format!("⏳ running {}", stage.as_deref().unwrap_or("")),
                String::new(),
            ),
            Status::Waiting { on } => (format!("⏸ waiting on {}", on.join(", ")), String::new()),
            Status::Blocked { reason } => (format!("⛔ blocked: {reason}"), String::new()),
        };
        let stages = stage_row(item.build.as_deref(), &item.target.stage)
            .to_string()
            .replace('|', "\\|");
        let _ = writeln!(
            out,
            "| `{}` | {build} | {stages} | {status} | {runs} |",
            item.target.id
        );
    }
    out
}
