//! The environments view for people: a table with plans as rows and manual stages as columns,
//! fitted to the terminal, and the same table in Markdown for a pull request.

use std::fmt::Write as _;

use unicode_width::UnicodeWidthStr;

use super::{Environments, StageCell};

/// The lines of one cell: what ran it, what comes, who wants it.
fn cell_lines(cell: &StageCell, now: jiff::Timestamp) -> Vec<String> {
    let mut lines = Vec::new();
    lines.push(match (&cell.current, &cell.cannot_tell) {
        (_, Some(why)) => format!("cannot tell: {why}"),
        (Some(current), None) => {
            let ago = current
                .completed_at
                .as_deref()
                .and_then(|at| at.parse::<jiff::Timestamp>().ok())
                .and_then(|at| std::time::Duration::try_from(now.duration_since(at)).ok())
                .map(|age| format!(" · {} ago", crate::lock_label::words(age)))
                .unwrap_or_default();
            let by = current
                .promoted_by
                .as_deref()
                .map(|by| format!(" · by {by}"))
                .unwrap_or_default();
            format!("{}{ago}{by}", current.build)
        }
        (None, None) => "never ran".into(),
    });
    for coming in &cell.on_its_way {
        lines.push(format!("next: {} {}", coming.build, coming.state.words()));
    }
    for wanted in &cell.wanted_by {
        lines.push(format!("{}: {}", wanted.target, wanted.status));
    }
    lines
}

/// The table, each column as wide as its widest line, or narrower when `width` (the terminal's)
/// cannot hold it: then lines are cut with `…`.
pub fn human(view: &Environments, width: Option<usize>) -> String {
    let now = view
        .server_time
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let header = format!("Environments on {} at {}", view.server, view.server_time);
    let mut text = match width {
        Some(width) => format!("{}\n", fit(&header, width)),
        None => format!("{header}\n"),
    };
    for plan in &view.plans {
        let cells: Vec<Vec<String>> = plan.stages.iter().map(|c| cell_lines(c, now)).collect();
        let mut widths: Vec<usize> = plan
            .stages
            .iter()
            .zip(&cells)
            .map(|(c, lines)| {
                lines
                    .iter()
                    .map(|l| l.width())
                    .chain([c.stage.width()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        if let Some(width) = width {
            let gaps = 2 + 3 * widths.len();
            let room = width.saturating_sub(gaps) / widths.len().max(1);
            for w in &mut widths {
                *w = (*w).min(room.max(12));
            }
        }
        let _ = writeln!(text, "\n{}", plan.plan);
        if plan.stages.is_empty() {
            let _ = writeln!(text, "  no manual stages");
            continue;
        }
        let header: Vec<String> = plan.stages.iter().map(|c| c.stage.clone()).collect();
        push_row(&mut text, &header, &widths);
        let rule: Vec<String> = widths.iter().map(|w| "─".repeat(*w)).collect();
        push_row(&mut text, &rule, &widths);
        let height = cells.iter().map(Vec::len).max().unwrap_or(0);
        for line in 0..height {
            let row: Vec<String> = cells
                .iter()
                .map(|c| c.get(line).cloned().unwrap_or_default())
                .collect();
            push_row(&mut text, &row, &widths);
        }
    }
    text
}

fn push_row(text: &mut String, cells: &[String], widths: &[usize]) {
    let fitted: Vec<String> = cells
        .iter()
        .zip(widths)
        .map(|(cell, width)| {
            let cell = fit(cell, *width);
            let pad = width.saturating_sub(cell.width());
            format!("{cell}{}", " ".repeat(pad))
        })
        .collect();
    let _ = writeln!(text, "  {}", fitted.join("   ").trim_end());
}

/// `text`, cut to `width` columns with `…` when longer.
fn fit(text: &str, width: usize) -> String {
    if text.width() <= width {
        return text.to_string();
    }
    let mut cut = String::new();
    for c in text.chars() {
        if cut.width() + c.to_string().width() + 1 > width {
            break;
        }
        cut.push(c);
    }
    cut.push('…');
    cut
}

/// The same table in Markdown: a row per plan, a column per manual stage of the plans shown.
pub fn markdown(view: &Environments) -> String {
    let now = view
        .server_time
        .parse()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut stages: Vec<&str> = Vec::new();
    for cell in view.plans.iter().flat_map(|p| &p.stages) {
        if !stages.contains(&cell.stage.as_str()) {
            stages.push(&cell.stage);
        }
    }
    let mut text = format!(
        "### Environments on {}\n\nAt {} (server time).\n\n| plan | {} |\n|---|{}\n",
        view.server,
        view.server_time,
        stages.join(" | "),
        "---|".repeat(stages.len())
    );
    for plan in &view.plans {
        let cells: Vec<String> = stages
            .iter()
            .map(|stage| {
                plan.stages
                    .iter()
                    .find(|c| c.stage == *stage)
                    .map(|c| {
                        cell_lines(c, now)
                            .iter()
                            .map(|l| l.replace('|', "\\|"))
                            .collect::<Vec<_>>()
                            .join("<br>")
                    })
                    .unwrap_or_else(|| "—".into())
            })
            .collect();
        let _ = writeln!(text, "| `{}` | {} |", plan.plan, cells.join(" | "));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::super::{Approach, Deployed, OnItsWay, PlanRow, Wanted};
    use super::*;

    fn view() -> Environments {
        let cell = |stage: &str, current: Option<u32>| StageCell {
            stage: stage.into(),
            current: current.map(|n| Deployed {
                build: format!("SHOP-APPLICATION-{n}"),
                number: n,
                completed_at: Some("2027-01-01T00:00:00Z".into()),
                promoted_by: None,
            }),
            cannot_tell: None,
            on_its_way: vec![OnItsWay {
                build: "SHOP-APPLICATION-43".into(),
                number: 43,
                state: Approach::PausedBefore,
            }],
            wanted_by: vec![Wanted {
                target: "application-production".into(),
                build: Some("SHOP-APPLICATION-43".into()),
                status: "promote to Deploy Production".into(),
            }],
        };
        Environments {
            format_version: "1.0",
            server: "https://bamboo.example.com".into(),
            server_time: "2027-01-01T02:05:00Z".into(),
            plans: vec![PlanRow {
                plan: "SHOP-APPLICATION".into(),
                stages: vec![
                    cell("Deploy Staging", Some(42)),
                    cell("Deploy Production", None),
                ],
            }],
        }
    }

    /// Fitted to a terminal of 50 columns, no line is wider; the lines cut end in `…`.
    /// Unfitted (a pipe), nothing is cut.
    #[test]
    fn the_table_fits_the_terminal_and_cuts_lines_with_an_ellipsis() {
        let fitted = human(&view(), Some(50));
        for line in fitted.lines() {
            assert!(line.width() <= 50, "{line:?}\n{fitted}");
        }
        assert!(fitted.contains('…'), "{fitted}");
        let whole = human(&view(), None);
        assert!(whole.contains("SHOP-APPLICATION-42 · 2h 5m ago"), "{whole}");
        assert!(
            whole.contains("next: SHOP-APPLICATION-43 paused before"),
            "{whole}"
        );
        assert!(!whole.contains('…'), "{whole}");
    }
}
