//! The terminal view: each target as a row of its build's stages (done ✓, failed ✗, running ▶,
//! next ▷, not run ·) with the target in brackets, the call a promotion makes and every stage
//! it runs, then a summary line like Terraform's.

use std::borrow::Cow;
use std::fmt::{self, Write};

use unicode_width::UnicodeWidthStr;

use crate::observe::ObservedBuild;
use crate::reconcile::{Plan, PlanItem, Status, Summary};

/// `--color`: when to colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColourChoice {
    /// On a terminal, unless `NO_COLOR` is set; also off a terminal with `CLICOLOR_FORCE`.
    #[default]
    Auto,
    Always,
    Never,
}

static CHOICE: std::sync::OnceLock<ColourChoice> = std::sync::OnceLock::new();

/// Sets `--color` for the run, once, before anything is printed.
pub fn choose_colour(choice: ColourChoice) {
    let _ = CHOICE.set(choice);
}

/// Whether to colour, and how wide the terminal is (`None` off a terminal: no fitting).
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub colour: bool,
    pub width: Option<usize>,
}

impl Style {
    pub fn for_stdout() -> Style {
        use std::io::IsTerminal;
        let set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty() && v != "0");
        let terminal = std::io::stdout().is_terminal();
        let colour = match CHOICE.get().copied().unwrap_or_default() {
            ColourChoice::Always => true,
            ColourChoice::Never => false,
            ColourChoice::Auto => !set("NO_COLOR") && (terminal || set("CLICOLOR_FORCE")),
        };
        let width = terminal
            .then(|| console::Term::stdout().size_checked())
            .flatten()
            .map(|(_, columns)| usize::from(columns));
        Style { colour, width }
    }

    /// No colour, no fitting: for Markdown and logs.
    pub fn plain() -> Style {
        Style {
            colour: false,
            width: None,
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

/// What the marks mean, under every human plan.
pub const LEGEND: &str = "+ promote  = in sync or ahead  ~ running  … waiting  ! blocked    stages: ✓ done  ✗ failed  ▶ running  ▷ next  · not run  [target]";

/// `plan` (with calls) or `status` (where things stand).
pub fn render(plan: &Plan, server: &str, show_calls: bool, style: Style) -> String {
    let mut out = String::new();
    let verb = if show_calls { "Plan" } else { "Status" };
    let _ = writeln!(
        out,
        "{verb} for {} on {server}\n",
        counted(plan.items.len(), "target")
    );
    let id_width = plan
        .items
        .iter()
        .map(|i| i.target.id.width())
        .max()
        .unwrap_or(0);
    let key_width = plan
        .items
        .iter()
        .map(|i| build_label(i).width())
        .max()
        .unwrap_or(0);
    let pad = " ".repeat(id_width + 6);
    for item in &plan.items {
        let (mark, colour, words) = describe(&item.status, show_calls);
        let id = &item.target.id;
        let key = build_label(item);
        let head = format!(
            "  {} {id}{}  {key}{}  ",
            style.paint(colour, mark),
            " ".repeat(id_width - id.width()),
            " ".repeat(key_width - key.width()),
        );
        let head_width = 2 + 2 + id_width + 2 + key_width + 2;
        let whole = stage_row_styled(item.build.as_deref(), &item.target.stage, style, None);
        let one_line = head_width + plain_width(&whole.to_string()) + 2 + words.width();
        match style.width {
            // On a terminal too narrow for the line: the status first, wrapped to the width,
            // and the stage row under it, cut around the target with `…`.
            Some(width) if one_line > width => {
                let lines = wrap(&words, width.saturating_sub(head_width).max(20));
                for (i, line) in lines.iter().enumerate() {
                    let lead = if i == 0 {
                        head.clone()
                    } else {
                        " ".repeat(head_width)
                    };
                    let _ = writeln!(out, "{lead}{}", style.paint(colour, line));
                }
                let room = width.saturating_sub(pad.len());
                let stages =
                    stage_row_styled(item.build.as_deref(), &item.target.stage, style, Some(room));
                let _ = writeln!(out, "{pad}{stages}");
            }
            _ => {
                let _ = writeln!(out, "{head}{whole}  {}", style.paint(colour, &words));
            }
        }
        let detail = |out: &mut String, label: &str, text: &str| {
            detail_line(out, &pad, label, text, style.width);
        };
        if let (Some(newer), Some(build)) = (&item.superseded_by, item.build.as_deref()) {
            let text = format!(
                "{newer} has since run {stage}; Bamboo cannot run that stage again on {pinned}, so going back to it needs a new build",
                stage = item.target.stage,
                pinned = build.key,
            );
            detail(&mut out, "superseded", &text);
        }
        if let (Some(lock), Some(build)) = (&item.locked_by, item.build.as_deref()) {
            let text = format!(
                "{lock}; apply waits for it. If an apply exited 7 on {key}, check the build in Bamboo, then `bamboo-promote unlock {key} --force --reason …`",
                key = build.key,
            );
            detail(&mut out, "locked by another apply", &text);
        }
        if let (true, Status::Queue { action }) = (show_calls, &item.status) {
            // The call on one line however narrow the terminal: it is copied whole.
            let _ = write!(out, "{pad}call: {} {}", action.method, action.path);
            for (i, (k, v)) in action.query.iter().enumerate() {
                let separator = if i == 0 { '?' } else { '&' };
                let _ = write!(out, "{separator}{k}={}", crate::bamboo::encode_segment(v));
            }
            let _ = writeln!(out);
            detail(&mut out, "runs", &action.runs.join(", "));
        }
        if !item.gates.is_empty() {
            let gates: Vec<String> = item
                .gates
                .iter()
                .map(|g| {
                    let mark = if g.passed { "✓" } else { "✗" };
                    let kind = match g.gate.as_str() {
                        "withoutLabel" => "without ",
                        "window" => "window ",
                        _ => "",
                    };
                    let overridden = if g.overridden {
                        " closed, overridden by --override-window"
                    } else {
                        ""
                    };
                    format!("{mark} {kind}{}{overridden}", g.label)
                })
                .collect();
            detail(&mut out, "gates", &gates.join(", "));
        }
        if !item.passed_over.is_empty() {
            let passed: Vec<String> = item
                .passed_over
                .iter()
                .map(|p| format!("{} ({})", p.build, p.reason))
                .collect();
            detail(&mut out, "passed over", &passed.join(", "));
        }
    }
    let _ = writeln!(out, "\n{}", summary_line(&plan.summary(), show_calls));
    match style.width {
        // The legend's two halves, on a terminal too narrow for it.
        Some(width) if LEGEND.width() > width => {
            for half in LEGEND.split("    ") {
                let _ = writeln!(out, "{half}");
            }
        }
        _ => {
            let _ = writeln!(out, "{LEGEND}");
        }
    }
    out
}

/// `plan --compare` on a terminal: what the change adds, changes and removes, after the plan.
pub fn changes(comparison: &crate::compare::Comparison) -> String {
    use crate::compare::Change;
    let mut out = String::from("\nThis change, against the base:\n");
    if comparison.is_empty() {
        out.push_str("  adds, changes or removes no target\n");
        return out;
    }
    let mut changed: Vec<(&String, &Change)> = comparison.changes.iter().collect();
    changed.sort_by_key(|(id, _)| *id);
    for (id, change) in changed {
        let _ = match change {
            Change::Added => writeln!(out, "  + {id}: added"),
            Change::Changed(what) => writeln!(out, "  ~ {id}: {}", what.join("; ")),
        };
    }
    for removed in &comparison.removed {
        let branch = removed
            .branch
            .as_ref()
            .map_or(String::new(), |b| format!(" ({b})"));
        let _ = writeln!(
            out,
            "  - {}: removed ({}{branch} › {}); nothing is undone on Bamboo",
            removed.id, removed.plan, removed.stage
        );
    }
    out
}

/// The width of text as shown, its colour codes left out.
fn plain_width(text: &str) -> usize {
    let mut shown = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // An SGR sequence: ESC [ … m.
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            shown.push(c);
        }
    }
    shown.width()
}

/// `{pad}{label}: {text}`; on a terminal too narrow for it, `text` wrapped at spaces, its
/// later lines under its first.
fn detail_line(out: &mut String, pad: &str, label: &str, text: &str, width: Option<usize>) {
    let lead = format!("{pad}{label}: ");
    let lines = match width {
        Some(width) if lead.width() + text.width() > width => {
            wrap(text, width.saturating_sub(lead.width()).max(20))
        }
        _ => vec![text.to_string()],
    };
    let indent = " ".repeat(lead.width());
    for (i, line) in lines.iter().enumerate() {
        let _ = writeln!(out, "{}{line}", if i == 0 { &lead } else { &indent });
    }
}

/// `text` in lines of at most `room` columns, broken at spaces (a word longer than that has a
/// line of its own).
fn wrap(text: &str, room: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ') {
        if !line.is_empty() && line.width() + 1 + word.width() > room {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines
}

/// `1 target`, `2 targets`.
pub fn counted(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
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
    stage_row_styled(build, target, Style::plain(), None)
}

/// The stage row, its marks coloured, in `room` columns at most when given: the stages far
/// from the target give way to `…` first.
pub fn stage_row_styled<'a>(
    build: Option<&'a ObservedBuild>,
    target: &'a str,
    style: Style,
    room: Option<usize>,
) -> StageRow<'a> {
    StageRow {
        build,
        target,
        style,
        room,
    }
}

pub struct StageRow<'a> {
    build: Option<&'a ObservedBuild>,
    target: &'a str,
    style: Style,
    room: Option<usize>,
}

impl StageRow<'_> {
    /// Each stage's text and mark colour, and the index of the target.
    fn cells(&self, build: &ObservedBuild) -> (Vec<(String, &'static str, &'static str)>, usize) {
        let mut target = 0;
        let cells = build
            .stages
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (symbol, colour) = match (s.life_cycle_state.as_str(), s.state.as_str()) {
                    ("Finished", "Successful") => ("✓", "32"),
                    ("Finished", "Failed") => ("✗", "31"),
                    ("InProgress", _) => ("▶", "36"),
                    ("Pending" | "Queued", _) => ("…", "36"),
                    _ if s.runnable => ("▷", "33"),
                    _ => ("·", "2"),
                };
                let text = if s.name == self.target {
                    target = i;
                    format!("[{} {symbol}]", s.name)
                } else {
                    format!("{} {symbol}", s.name)
                };
                (text, symbol, colour)
            })
            .collect();
        (cells, target)
    }
}

impl fmt::Display for StageRow<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(build) = self.build else {
            return f.write_str("(no build)");
        };
        let (cells, target) = self.cells(build);
        // Which stages to show: all, or those nearest the target that fit, with `…` for the
        // rest on each side.
        let (mut first, mut last) = (0, cells.len().saturating_sub(1));
        if let Some(room) = self.room {
            // `name ✓` cells, ` › ` between them, `… › ` and ` › …` for what is left out.
            let width = |from: usize, to: usize| {
                let shown: usize = cells[from..=to].iter().map(|c| c.0.width()).sum();
                shown
                    + 3 * (to - from)
                    + if from > 0 { 4 } else { 0 }
                    + if to + 1 < cells.len() { 4 } else { 0 }
            };
            (first, last) = (target, target);
            loop {
                let grown_right = last + 1 < cells.len() && width(first, last + 1) <= room;
                if grown_right {
                    last += 1;
                }
                let grown_left = first > 0 && width(first - 1, last) <= room;
                if grown_left {
                    first -= 1;
                }
                if !grown_right && !grown_left {
                    break;
                }
            }
        }
        if first > 0 {
            f.write_str("… › ")?;
        }
        for (i, (text, symbol, colour)) in cells.iter().enumerate().take(last + 1).skip(first) {
            if i > first {
                f.write_str(" › ")?;
            }
            // The mark is the last character but a closing bracket: colour just the mark.
            let (before, after) = text.rsplit_once(symbol).unwrap_or((text, ""));
            write!(f, "{before}{}{after}", self.style.paint(colour, symbol))?;
        }
        if last + 1 < cells.len() {
            f.write_str(" › …")?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::ObservedStage;

    fn build(stages: &[&str], done: usize) -> ObservedBuild {
        ObservedBuild {
            key: "A-B-1".into(),
            number: 1,
            life_cycle_state: "Finished".into(),
            state: "Successful".into(),
            continuable: true,
            restartable: false,
            revision: None,
            labels: Vec::new(),
            stages: stages
                .iter()
                .enumerate()
                .map(|(i, name)| ObservedStage {
                    name: (*name).into(),
                    life_cycle_state: if i < done { "Finished" } else { "NotBuilt" }.into(),
                    state: if i < done { "Successful" } else { "Unknown" }.into(),
                    manual: i > 0,
                    runnable: i == done,
                    restartable: false,
                })
                .collect(),
        }
    }

    #[test]
    fn a_narrow_terminal_elides_the_stages_far_from_the_target_never_the_target() {
        let stages = [
            "Build",
            "Test",
            "Deploy Staging",
            "Smoke",
            "Deploy Prod",
            "Verify",
        ];
        let b = build(&stages, 2);
        let row =
            |room| stage_row_styled(Some(&b), "Deploy Staging", Style::plain(), room).to_string();
        assert_eq!(
            row(None),
            "Build ✓ › Test ✓ › [Deploy Staging ▷] › Smoke · › Deploy Prod · › Verify ·"
        );
        assert_eq!(
            row(Some(45)),
            "… › Test ✓ › [Deploy Staging ▷] › Smoke · › …"
        );
        assert_eq!(row(Some(44)), "… › [Deploy Staging ▷] › Smoke · › …");
        assert_eq!(row(Some(5)), "… › [Deploy Staging ▷] › …");
        for room in [20, 30, 40, 50, 60] {
            assert!(row(Some(room)).contains("[Deploy Staging ▷]"));
        }
    }

    /// An 80-column terminal (issue 24): lines of 150 characters and more had the status at
    /// their end. Too wide a line puts the status first, wrapped, and the stage row under it,
    /// cut around the target; every line fits.
    #[test]
    fn on_a_narrow_terminal_the_status_comes_first_and_every_line_fits() {
        let stages = [
            "Build",
            "Integration Tests",
            "Deploy Staging",
            "Smoke Staging",
            "Deploy Prod",
            "Verify Prod",
        ];
        let mut blocked = build(&stages, 1);
        blocked.key = "SHOP-SEARCH-230".into();
        let target = crate::reconcile::TargetRef {
            id: "search-staging".into(),
            plan: "SHOP-SEARCH".into(),
            branch: None,
            build: crate::manifest::BuildSelector::Latest,
            stage: "Deploy Staging".into(),
            after: Vec::new(),
            execute_all_stages: false,
            require: Default::default(),
            set: "shop".into(),
            record_label: None,
            allow_downgrade: false,
        };
        let item = PlanItem {
            target,
            build: Some(std::sync::Arc::new(blocked)),
            status: Status::Blocked {
                reason: crate::reconcile::BlockReason::WindowClosed {
                    window: "office".into(),
                    opens: Some(
                        "Monday 2027-01-04 09:00 Europe/Berlin (2027-01-04 08:00 UTC)".into(),
                    ),
                },
            },
            gates: vec![crate::manifest::GateCheck {
                gate: "window".into(),
                label: "office (Monday to Friday 09:00 to 17:00 Europe/Berlin)".into(),
                passed: false,
                overridden: false,
            }],
            passed_over: (231..234)
                .map(|n| crate::reconcile::PassedOver {
                    build: format!("SHOP-SEARCH-{n}"),
                    reason: "still running short of Deploy Staging".into(),
                })
                .collect(),
            superseded_by: None,
            locked_by: None,
        };
        let plan = Plan { items: vec![item] };
        let narrow = Style {
            colour: false,
            width: Some(80),
        };
        let shown = render(&plan, "http://bamboo", true, narrow);
        let first = shown.lines().nth(2).unwrap();
        assert!(
            first.starts_with(
                "  ! search-staging  SHOP-SEARCH-230  blocked: window office is closed"
            ),
            "{shown}"
        );
        assert!(shown.lines().all(|l| l.width() <= 80), "{shown}");
        assert!(
            shown
                .lines()
                .any(|l| l.contains("[Deploy Staging ·]") && l.contains('…')),
            "{shown}"
        );
        // Off a terminal, or wide enough, one line as before.
        let wide = render(&plan, "http://bamboo", true, Style::plain());
        assert!(
            wide.lines()
                .nth(2)
                .unwrap()
                .contains("Verify Prod ·  blocked: window office"),
            "{wide}"
        );
    }

    #[test]
    fn marks_are_coloured_only_when_asked_and_rows_align_by_display_width() {
        let b = build(&["Build", "Deploy"], 1);
        let coloured = Style {
            colour: true,
            width: None,
        };
        let row = stage_row_styled(Some(&b), "Deploy", coloured, None).to_string();
        assert_eq!(row, "Build \x1b[32m✓\x1b[0m › [Deploy \x1b[33m▷\x1b[0m]");
        assert_eq!(counted(1, "target"), "1 target");
        assert_eq!(counted(2, "target"), "2 targets");
        assert_eq!("déploiement-é".width(), "deploiement-e".width());
    }
}
