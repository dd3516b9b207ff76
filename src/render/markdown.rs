//! Markdown for a pull-request comment. A hidden marker lets a CI step find its own comment
//! and edit it instead of adding one per push; it says the commit, the time and the CI run it
//! was made for; with the base's manifests (`plan --compare`), what the change adds, changes and
//! removes comes first and the rest is folded, else targets that need something come first and
//! those in sync are folded away; every cell is escaped; build keys link to Bamboo; the order that
//! `after` sets is drawn as a Mermaid graph; and the comment stays under GitHub's limit of
//! 65 536 characters, saying what it left out.

use std::fmt::Write;

use super::DocumentKind;
use super::human::{counted, stage_row, summary_line};
use crate::compare::{Change, Comparison};
use crate::reconcile::{Plan, PlanItem, Status};

/// Room left under GitHub's 65 536 characters for the closing lines.
const MAX_CHARS: usize = 60_000;

/// Where and when a comment was made, so a reader can tell a stale one: the commit the
/// manifests were at, the time, and the CI run that made it.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    pub commit: Option<String>,
    pub at: Option<jiff::Timestamp>,
    pub ci_run: Option<String>,
}

/// What a comment is about besides the plan: where it was made and, for a pull request, what
/// the change does against its base (`plan --compare`).
#[derive(Debug, Default)]
pub struct Context<'a> {
    pub provenance: Provenance,
    pub comparison: Option<&'a Comparison>,
}

pub fn render(
    plan: &Plan,
    server: &str,
    kind: DocumentKind,
    set: &str,
    context: &Context,
) -> String {
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
    if let Some(line) = provenance_line(&context.provenance) {
        let _ = writeln!(out, "{line}\n");
    }
    // The order graph is short and says much: its room is kept before the rows take theirs.
    let graph = order_graph(plan);
    let limit = MAX_CHARS.saturating_sub(graph.len());
    let left_out = match context.comparison {
        Some(comparison) => by_change(&mut out, plan, comparison, server, planning, limit),
        None => by_status(&mut out, plan, server, planning, limit),
    };
    if left_out > 0 {
        let _ = writeln!(
            out,
            "\n_{left_out} more targets are not shown, to stay under GitHub's comment limit; `bamboo-promote {word}` shows them all._"
        );
    }
    out.push_str(&graph);
    out
}

/// The targets that need something first, those in sync or ahead folded; returns how many
/// rows did not fit.
fn by_status(out: &mut String, plan: &Plan, server: &str, planning: bool, limit: usize) -> usize {
    let (settled, acting): (Vec<&PlanItem>, Vec<&PlanItem>) =
        plan.items.iter().partition(|i| i.status.is_settled());
    let mut left_out = 0;
    if !acting.is_empty() {
        left_out += table(out, &acting, server, planning, None, limit);
    }
    if !settled.is_empty() {
        let _ = writeln!(
            out,
            "\n<details><summary>{} in sync or ahead</summary>\n",
            settled.len()
        );
        left_out += table(out, &settled, server, planning, None, limit);
        let _ = writeln!(out, "\n</details>");
    }
    left_out
}

/// What the change adds, changes and removes first, with what each will do; the targets it
/// leaves alone folded, saying how many of them a merge would still promote.
fn by_change(
    out: &mut String,
    plan: &Plan,
    comparison: &Comparison,
    server: &str,
    planning: bool,
    limit: usize,
) -> usize {
    let (touched, rest): (Vec<&PlanItem>, Vec<&PlanItem>) = plan
        .items
        .iter()
        .partition(|i| comparison.of(&i.target.id).is_some());
    let _ = writeln!(out, "#### What this change does\n");
    let mut left_out = 0;
    if comparison.is_empty() {
        let _ = writeln!(out, "_It adds, changes or removes no target._");
    } else {
        left_out += table(out, &touched, server, planning, Some(comparison), limit);
        for removed in &comparison.removed {
            let _ = writeln!(
                out,
                "| ➖ removed | {} | {} | {} | no longer promoted; nothing is undone on Bamboo |  |",
                escape(&removed.id),
                escape(&match &removed.branch {
                    Some(branch) => format!("{} ({branch})", removed.plan),
                    None => removed.plan.clone(),
                }),
                escape(&removed.stage)
            );
        }
    }
    if !rest.is_empty() {
        let promoting = rest
            .iter()
            .filter(|i| matches!(i.status, Status::Queue { .. }))
            .count();
        let also = if promoting > 0 && planning {
            format!(", {promoting} of which apply would promote too")
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "\n<details><summary>{} this change leaves alone{also}</summary>\n",
            counted(rest.len(), "target")
        );
        left_out += table(out, &rest, server, planning, None, limit);
        let _ = writeln!(out, "\n</details>");
    }
    left_out
}

/// `Manifests at abc1234 · 2026-12-07 12:00 UTC · CI run`, from what is known.
fn provenance_line(provenance: &Provenance) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(commit) = &provenance.commit {
        parts.push(format!("Manifests at `{}`", escape_code(commit)));
    }
    if let Some(at) = provenance.at {
        parts.push(at.strftime("%Y-%m-%d %H:%M UTC").to_string());
    }
    if let Some(run) = &provenance.ci_run {
        parts.push(format!("[CI run]({})", escape_url(run)));
    }
    (!parts.is_empty()).then(|| format!("<sub>{}</sub>", parts.join(" · ")))
}

/// The rows of `items` that fit in `limit`; returns how many did not.
/// With `changes`, a first column says what the change did to each target.
fn table(
    out: &mut String,
    items: &[&PlanItem],
    server: &str,
    planning: bool,
    changes: Option<&Comparison>,
    limit: usize,
) -> usize {
    if changes.is_some() {
        let _ = writeln!(
            out,
            "| Change | Target | Build | Stages | Status | Will run |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
    } else {
        let _ = writeln!(out, "| Target | Build | Stages | Status | Will run |");
        let _ = writeln!(out, "|---|---|---|---|---|");
    }
    for (shown, item) in items.iter().enumerate() {
        let mut row = row(item, server, planning);
        if let Some(change) = changes.and_then(|c| c.of(&item.target.id)) {
            row.insert_str(0, &format!("| {} ", change_cell(change)));
        }
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

fn change_cell(change: &Change) -> String {
    match change {
        Change::Added => "➕ added".to_string(),
        Change::Changed(what) => format!("✏️ {}", escape(&what.join("; "))),
    }
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

/// Text inside a code span: backticks would end it.
fn escape_code(text: &str) -> String {
    text.replace('`', "'")
}

/// A URL as a link target: the characters that would end the link or start markup, encoded.
fn escape_url(url: &str) -> String {
    url.replace('(', "%28")
        .replace(')', "%29")
        .replace(' ', "%20")
        .replace('<', "%3C")
        .replace('>', "%3E")
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
