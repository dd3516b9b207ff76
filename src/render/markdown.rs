//! Markdown for a pull-request comment. A hidden marker lets a CI step find its own comment
//! and edit it instead of adding one per push; targets that need something come first, those
//! in sync are folded away; every cell is escaped; build keys link to Bamboo; the order that
//! `after` sets is drawn as a Mermaid graph; and the comment stays under GitHub's limit of
//! 65 536 characters, saying what it left out.

use std::fmt::Write;

use super::DocumentKind;
use super::human::{stage_row, summary_line};
use crate::reconcile::{Plan, PlanItem, Status};

/// Room left under GitHub's 65 536 characters for the closing lines.
const MAX_CHARS: usize = 60_000;

pub fn render(plan: &Plan, server: &str, kind: DocumentKind, set: &str) -> String {
    let planning = kind == DocumentKind::Plan;
    let word = if planning { "plan" } else { "status" };
    let mut out = String::new();
    let _ = writeln!(out, "<!-- bamboo-promote:{word} {} -->", marker_text(set));
    let _ = writeln!(out, "### bamboo-promote {word}\n");
    let _ = writeln!(
        out,
        "**{}** (server {})\n",
        escape(&summary_line(&plan.summary(), planning)),
        escape(server)
    );
    let (settled, acting): (Vec<&PlanItem>, Vec<&PlanItem>) =
        plan.items.iter().partition(|i| i.status.is_settled());
    // The order graph is short and says much: its room is kept before the rows take theirs.
    let graph = order_graph(plan);
    let limit = MAX_CHARS.saturating_sub(graph.len());
    let mut left_out = 0;
    if !acting.is_empty() {
        left_out += table(&mut out, &acting, server, planning, limit);
    }
    if !settled.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} in sync or ahead</summary>\n",
            settled.len()
        );
        left_out += table(&mut out, &settled, server, planning, limit);
        let _ = writeln!(out, "\n</details>");
    }
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n_{left_out} more targets are not shown, to stay under GitHub's comment limit; `bamboo-promote {word}` shows them all._"
        );
    }
    out.push_str(&graph);
    out
}

/// The rows of `items` that fit in `limit`; returns how many did not.
fn table(
    out: &mut String,
    items: &[&PlanItem],
    server: &str,
    planning: bool,
    limit: usize,
) -> usize {
    let _ = writeln!(out, "| Target | Build | Stages | Status | Will run |");
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (shown, item) in items.iter().enumerate() {
        let row = row(item, server, planning);
        if out.len() + row.len() > limit {
            return items.len() - shown;
        }
        out.push_str(&row);
    }
    0
}

fn row(item: &PlanItem, server: &str, planning: bool) -> String {
    let build = item.build.as_ref().map_or("—".to_string(), |b| {
        format!(
            "[{}]({}/browse/{})",
            escape(&b.key),
            server.trim_end_matches('/'),
            b.key
        )
    });
    let (status, runs) = match &item.status {
        Status::InSync => ("✅ in sync".to_string(), String::new()),
        Status::Ahead { beyond } => (
            format!("✅ ahead (also ran {})", escape(&beyond.join(", "))),
            String::new(),
        ),
        Status::Queue { action } if planning => (
            format!("🚀 promote to **{}**", escape(&action.stage)),
            escape(&action.runs.join(" → ")),
        ),
        Status::Queue { action } => (
            format!("🚀 needs **{}**", escape(&action.stage)),
            String::new(),
        ),
        Status::Running { stage } => (
            format!("⏳ running {}", escape(stage.as_deref().unwrap_or(""))),
            String::new(),
        ),
        Status::Waiting { on } => (
            format!("⏸ waiting on {}", escape(&on.join(", "))),
            String::new(),
        ),
        Status::Blocked { reason } => (
            format!("⛔ blocked: {}", escape(&reason.to_string())),
            String::new(),
        ),
    };
    // A pin in sync whose stage a newer build has run since: the stage runs that one now.
    let status = match &item.superseded_by {
        Some(newer) => format!(
            "{status} — superseded: {} has since run {}",
            escape(newer),
            escape(&item.target.stage)
        ),
        None => status,
    };
    let status = match &item.locked_by {
        Some(lock) => format!("{status} — 🔒 locked by another apply: {}", escape(lock)),
        None => status,
    };
    let stages = escape(&stage_row(item.build.as_deref(), &item.target.stage).to_string());
    format!(
        "| {} | {build} | {stages} | {status} | {runs} |\n",
        escape(&item.target.id)
    )
}

/// `after` as a Mermaid graph, when any target has one: the order apply follows.
fn order_graph(plan: &Plan) -> String {
    let mut out = String::new();
    let index: std::collections::HashMap<&str, usize> = plan
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.target.id.as_str(), i))
        .collect();
    let edges: Vec<(usize, usize)> = plan
        .items
        .iter()
        .enumerate()
        .flat_map(|(i, item)| {
            item.target
                .after
                .iter()
                .filter_map(|before| index.get(before.as_str()).map(|b| (*b, i)))
                .collect::<Vec<_>>()
        })
        .collect();
    if edges.is_empty() {
        return out;
    }
    let mut nodes: Vec<usize> = edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    nodes.sort_unstable();
    nodes.dedup();
    let _ = writeln!(out, "\n```mermaid\ngraph LR");
    for n in nodes {
        // Node names are positions; labels are quoted, with quotes replaced, as Mermaid wants.
        let label = plan.items[n].target.id.replace('"', "#quot;");
        let _ = writeln!(out, "  t{n}[\"{label}\"]");
    }
    for (before, after) in edges {
        let _ = writeln!(out, "  t{before} --> t{after}");
    }
    let _ = writeln!(out, "```");
    out
}

/// Text safe in a table cell: Markdown's punctuation escaped, `|` included, and HTML's.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '#' | '~' => {
                out.push('\\');
                out.push(c);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The manifest set in the marker, where `--` would end the HTML comment.
fn marker_text(set: &str) -> String {
    set.replace("--", "- -").replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn cells_escape_what_would_break_a_table_or_inject_markup() {
        assert_eq!(
            escape("a|b *c* _d_ `e` [f](g) <img> \\ h\ni"),
            "a\\|b \\*c\\* \\_d\\_ \\`e\\` \\[f\\](g) &lt;img&gt; \\\\ h i"
        );
    }
}
