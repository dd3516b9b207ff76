//! `GET /`: the board a release manager keeps open — what runs where, what is on its way, when
//! closed windows open, and the last cycles — as one server-rendered HTML page with its style
//! inline and no script or external asset (it works offline, behind any proxy, on a phone),
//! which reloads itself every interval.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::time::Duration;

use super::{Cycle, Row, Snapshot};

const STYLE: &str = "
body{font-family:system-ui,sans-serif;margin:0;padding:1rem;background:#f6f7f9;color:#172b4d}
h1{font-size:1.3rem;margin:0 0 .3rem}h2{font-size:1.05rem;margin:1.4rem 0 .4rem}
p.meta{margin:0;color:#5e6c84;font-size:.9rem}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92rem}
th,td{text-align:left;padding:.35rem .5rem;border-bottom:1px solid #dfe1e6;vertical-align:top}
th{background:#ebecf0}
.kind{display:inline-block;border-radius:3px;padding:0 .35rem;font-weight:600;font-size:.8rem}
.in-sync,.ok{background:#e3fcef;color:#006644}.ahead{background:#e3fcef;color:#006644}
.promote,.running{background:#deebff;color:#0747a6}.waiting{background:#fffae6;color:#974f0c}
.blocked,.invalid,.unreachable,.pullFailed{background:#ffebe6;color:#bf2600}
@media (max-width:640px){table,thead,tbody,tr,th,td{display:block}thead{display:none}
tr{margin-bottom:.6rem;border:1px solid #dfe1e6}td{border:0}
td[data-label]::before{content:attr(data-label) \": \";font-weight:600}}
";

/// The page; `unhealthy` says why `/healthz` answers 503, if it does.
pub(super) fn render(
    interval: Duration,
    unhealthy: Option<String>,
    snapshot: Option<&Snapshot>,
    cycles: &VecDeque<Cycle>,
) -> String {
    let refresh = interval.as_secs().max(5);
    let mut page = String::new();
    let _ = write!(
        page,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=\"refresh\" content=\"{refresh}\">\
         <title>bamboo-promote watch</title><style>{STYLE}</style></head><body>\n\
         <h1>bamboo-promote watch</h1>\n"
    );
    let _ = match unhealthy {
        None => writeln!(
            page,
            "<p id=\"health\"><span class=\"kind ok\">healthy</span></p>"
        ),
        Some(why) => writeln!(
            page,
            "<p id=\"health\"><span class=\"kind blocked\">unhealthy</span> {}</p>",
            escape(&why)
        ),
    };
    match snapshot {
        Some(snapshot) => {
            let _ = writeln!(
                page,
                "<p class=\"meta\" id=\"server\">{} · plan made at {} (server time) · reloads every {refresh}s</p>",
                escape(&snapshot.server),
                escape(&snapshot.server_time)
            );
            where_things_run(&mut page, &snapshot.rows);
            windows(&mut page, &snapshot.rows);
        }
        None => page.push_str("<p class=\"meta\" id=\"server\">No plan made yet.</p>\n"),
    }
    last_cycles(&mut page, cycles);
    page.push_str("</body></html>\n");
    page
}

/// The targets, plan by plan: the build each has or is getting, and its status.
fn where_things_run(page: &mut String, rows: &[Row]) {
    page.push_str("<h2>What runs where</h2>\n<table id=\"targets\"><thead><tr><th>Plan</th><th>Stage</th><th>Target</th><th>Build</th><th>Status</th></tr></thead><tbody>\n");
    let mut by_plan: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for row in rows {
        by_plan
            .entry(row.plan.as_deref().unwrap_or("(not found)"))
            .or_default()
            .push(row);
    }
    for (plan, rows) in by_plan {
        for row in rows {
            let _ = writeln!(
                page,
                "<tr data-target=\"{}\" data-kind=\"{}\"><td data-label=\"Plan\">{}</td><td data-label=\"Stage\">{}</td><td data-label=\"Target\">{}</td><td data-label=\"Build\">{}</td><td data-label=\"Status\"><span class=\"kind {}\">{}</span> {}</td></tr>",
                escape(&row.target),
                row.kind,
                escape(plan),
                escape(&row.stage),
                escape(&row.target),
                escape(row.build.as_deref().unwrap_or("–")),
                row.kind,
                row.kind,
                escape(&row.status),
            );
        }
    }
    page.push_str("</tbody></table>\n");
}

/// Closed windows and when they open, with the targets waiting on each.
fn windows(page: &mut String, rows: &[Row]) {
    let mut waiting: BTreeMap<(&str, &str), Vec<&str>> = BTreeMap::new();
    for row in rows {
        if let Some((window, opens)) = &row.window {
            let opens = opens.as_deref().unwrap_or("not within a year");
            waiting
                .entry((window.as_str(), opens))
                .or_default()
                .push(&row.target);
        }
    }
    if waiting.is_empty() {
        return;
    }
    page.push_str("<h2>Next window openings</h2>\n<table id=\"windows\"><thead><tr><th>Window</th><th>Opens</th><th>Targets waiting</th></tr></thead><tbody>\n");
    for ((window, opens), targets) in waiting {
        let _ = writeln!(
            page,
            "<tr><td data-label=\"Window\">{}</td><td data-label=\"Opens\">{}</td><td data-label=\"Targets\">{}</td></tr>",
            escape(window),
            escape(opens),
            escape(&targets.join(", "))
        );
    }
    page.push_str("</tbody></table>\n");
}

fn last_cycles(page: &mut String, cycles: &VecDeque<Cycle>) {
    page.push_str("<h2>Last cycles</h2>\n<table id=\"cycles\"><thead><tr><th>Cycle</th><th>Ended</th><th>Commit</th><th>Outcome</th><th>Took</th></tr></thead><tbody>\n");
    for cycle in cycles.iter().rev() {
        let c = &cycle.counts;
        let mut outcome = format!(
            "{} promoted, {} in sync, {} blocked, {} waiting",
            c.promoted, c.in_sync, c.blocked, c.waiting
        );
        for (n, what) in [
            (c.stage_failed, "stage failed"),
            (c.unknown, "unknown"),
            (c.stale, "stale"),
            (c.errors, "errors"),
        ] {
            if n > 0 {
                let _ = write!(outcome, ", {n} {what}");
            }
        }
        if let Some(message) = &cycle.message {
            outcome = message.clone();
        }
        let word = cycle.outcome.word();
        let _ = writeln!(
            page,
            "<tr data-cycle=\"{}\" data-outcome=\"{word}\"><td data-label=\"Cycle\">{}</td><td data-label=\"Ended\">{}</td><td data-label=\"Commit\">{}</td><td data-label=\"Outcome\"><span class=\"kind {word}\">{word}</span> {}</td><td data-label=\"Took\">{:.1}s</td></tr>",
            cycle.number,
            cycle.number,
            escape(&cycle.ended_at.strftime("%Y-%m-%d %H:%M:%S UTC").to_string()),
            escape(cycle.commit.as_deref().unwrap_or("–")),
            escape(&outcome),
            cycle.duration.as_secs_f64(),
        );
    }
    page.push_str("</tbody></table>\n");
}

/// Text in HTML: every name on the board comes from manifests or Bamboo.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_from_manifests_and_bamboo_are_escaped() {
        assert_eq!(
            super::escape("<script>\"a&b'</script>"),
            "&lt;script&gt;&quot;a&amp;b&#39;&lt;/script&gt;"
        );
    }
}
