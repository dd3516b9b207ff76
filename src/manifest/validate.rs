//! Offline checks of the loaded documents: what the YAML types cannot say. Every error of every
//! file is collected, so one run shows them all.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::diagnostic::{ManifestError, SourceFile};
use super::load::place;
use super::types::{API_VERSION, BuildSelector, Document, KIND, RuleSpec, TargetSpec, WindowSpec};
use super::{Gates, Target, TargetPlaces};
use crate::lock_label::{PREFIX as LOCK_PREFIX, looks_like_a_lock};
use crate::suggest;
use crate::windows::{Rule, Window};

/// Checks one document and turns its targets into resolved `Target`s.
pub fn document(
    file: &Arc<SourceFile>,
    doc: Document,
    errors: &mut Vec<ManifestError>,
) -> Vec<Target> {
    if doc.api_version.value != API_VERSION {
        errors.push(
            ManifestError::at(
                "manifest::api_version",
                place(file, &doc.api_version.referenced),
                "unsupported",
                format!("unsupported apiVersion `{}`", doc.api_version.value),
            )
            .with_help(format!(
                "this version of bamboo-promote reads `{API_VERSION}`"
            )),
        );
    }
    if doc.kind.value != KIND {
        errors.push(
            ManifestError::at(
                "manifest::kind",
                place(file, &doc.kind.referenced),
                "unknown kind",
                format!("unknown kind `{}`", doc.kind.value),
            )
            .with_help(format!("the only kind is `{KIND}`")),
        );
    }
    let defaults = &doc.spec.defaults;
    let windows = windows(file, &doc.spec.windows, errors);
    let mut targets = Vec::new();
    for spec in doc.spec.targets {
        let Some(plan) = spec.plan.as_ref().or(defaults.plan.as_ref()) else {
            errors.push(
                ManifestError::at(
                    "manifest::missing_plan",
                    place(file, &spec.id.referenced),
                    "no plan",
                    format!("target `{}` names no plan", spec.id.value),
                )
                .with_help("add `plan: PROJ-PLAN` to the target or to `spec.defaults`"),
            );
            continue;
        };
        let branch = spec.branch.as_ref().or(defaults.branch.as_ref());
        let build = spec.build.as_ref().or(defaults.build.as_ref());
        let execute_all = spec
            .execute_all_stages
            .as_ref()
            .or(defaults.execute_all_stages.as_ref());
        let target = Target {
            id: spec.id.value.clone(),
            plan: plan.value.clone(),
            branch: branch.map(|b| b.value.clone()),
            build: build.map_or(BuildSelector::Latest, |b| b.value.clone()),
            stage: spec.stage.value.clone(),
            after: spec.after.iter().map(|a| a.value.clone()).collect(),
            execute_all_stages: execute_all.is_some_and(|e| e.value),
            require: spec
                .require
                .as_ref()
                .map_or_else(Gates::default, |r| Gates {
                    labels: r.labels.iter().map(|l| l.value.clone()).collect(),
                    without_labels: r.without_labels.iter().map(|l| l.value.clone()).collect(),
                    window: r.window.as_ref().and_then(|name| {
                        window_named(file, name, &windows, &doc.spec.windows, errors)
                    }),
                }),
            record_label: spec.record.as_ref().map(|r| r.label.value.clone()),
            allow_downgrade: spec.allow_downgrade.as_ref().is_some_and(|a| a.value),
            set: doc.metadata.name.value.clone(),
            places: TargetPlaces {
                id: place(file, &spec.id.referenced),
                plan: place(file, &plan.referenced),
                branch: branch.map(|b| place(file, &b.referenced)),
                build: build.map(|b| place(file, &b.referenced)),
                stage: place(file, &spec.stage.referenced),
                after: spec
                    .after
                    .iter()
                    .map(|a| place(file, &a.referenced))
                    .collect(),
            },
        };
        check_syntax(&target, &spec, errors);
        check_labels(file, &spec, errors);
        if let Some(record) = &spec.record
            && looks_like_a_lock(&record.label.value)
        {
            errors.push(
                ManifestError::at(
                    "manifest::record_label",
                    place(file, &record.label.referenced),
                    "a lock label",
                    format!("record label `{}` looks like a lock label", record.label.value),
                )
                .with_help(format!(
                    "labels starting `{LOCK_PREFIX}` are bamboo-promote's locks: left on a build, one would keep every apply off it"
                )),
            );
        }
        if let Some(record) = &spec.record
            && crate::tried_label::looks_like_a_mark(&record.label.value)
        {
            errors.push(
                ManifestError::at(
                    "manifest::record_label",
                    place(file, &record.label.referenced),
                    "a watcher's mark",
                    format!(
                        "record label `{}` looks like the mark of a watcher's try",
                        record.label.value
                    ),
                )
                .with_help(format!(
                    "labels starting `{}` mark a build and stage as tried by `watch`: one written as a record would stop the next stage's promotion",
                    crate::tried_label::PREFIX
                )),
            );
        }
        targets.push(target);
    }
    targets
}

/// The document's windows, each checked: its zone exists, its days, times and dates read.
/// Every mistake is reported at its own value, and a window with any is left out (a target
/// that names it gets no second error for it).
fn windows(
    file: &Arc<SourceFile>,
    specs: &BTreeMap<String, WindowSpec>,
    errors: &mut Vec<ManifestError>,
) -> BTreeMap<String, Window> {
    let mut windows = BTreeMap::new();
    for (name, spec) in specs {
        let before = errors.len();
        let mut wrong = |at: &serde_saphyr::Location, message: String| {
            errors.push(
                ManifestError::at(
                    "manifest::window",
                    place(file, at),
                    "here",
                    format!("window `{name}`: {message}"),
                )
                .with_help("a zone is an IANA name (Europe/Berlin); days mon … sun; times HH:MM; dates YYYY-MM-DD"),
            );
        };
        if let Err(e) = crate::windows::check_zone(&spec.time_zone.value) {
            wrong(&spec.time_zone.referenced, e);
        }
        let zone = &spec.time_zone.referenced;
        let mut rules = |specs: &[RuleSpec]| -> Vec<Rule> {
            specs
                .iter()
                .filter_map(|r| rule(r, zone, &mut wrong))
                .collect()
        };
        let allow = rules(&spec.allow);
        let deny = rules(&spec.deny);
        if errors.len() > before {
            continue;
        }
        windows.insert(
            name.clone(),
            Window {
                name: name.clone(),
                time_zone: spec.time_zone.value.clone(),
                allow,
                deny,
            },
        );
    }
    windows
}

/// One rule, each of its values checked at its own place, then the rule as a whole (a `from`
/// equal to its `to`, dates backwards) at its `from` or `fromDate` (else at the window's zone);
/// `None`, with every error said, when any is wrong.
fn rule(
    spec: &RuleSpec,
    window: &serde_saphyr::Location,
    wrong: &mut impl FnMut(&serde_saphyr::Location, String),
) -> Option<Rule> {
    let mut fine = true;
    let mut check = |value: &serde_saphyr::Spanned<String>,
                     read: fn(&str) -> Result<(), String>| {
        if let Err(e) = read(&value.value) {
            wrong(&value.referenced, e);
            fine = false;
        }
    };
    for day in &spec.days {
        check(day, |d| crate::windows::weekday(d).map(drop));
    }
    for time in [&spec.from, &spec.to].into_iter().flatten() {
        check(time, |t| crate::windows::time_of_day(t).map(drop));
    }
    for date in [&spec.from_date, &spec.to_date].into_iter().flatten() {
        check(date, |d| crate::windows::parse_date(d).map(drop));
    }
    if !fine {
        return None;
    }
    let text =
        |value: &Option<serde_saphyr::Spanned<String>>| value.as_ref().map(|v| v.value.clone());
    let rule = Rule {
        days: spec.days.iter().map(|d| d.value.clone()).collect(),
        from: text(&spec.from),
        to: text(&spec.to),
        from_date: text(&spec.from_date),
        to_date: text(&spec.to_date),
    };
    if let Err(e) = rule.check() {
        let at = if e.starts_with("`fromDate`") {
            spec.from_date.as_ref()
        } else {
            spec.from.as_ref()
        };
        let at = at.or(spec.from.as_ref()).or(spec.from_date.as_ref());
        wrong(at.map_or(window, |at| &at.referenced), e);
        return None;
    }
    Some(rule)
}

/// The window a target's `require.window` names, or an error at that name. A window that is
/// declared but invalid (`declared`) has its own error: none follows from it here.
fn window_named(
    file: &Arc<SourceFile>,
    name: &serde_saphyr::Spanned<String>,
    windows: &BTreeMap<String, Window>,
    declared: &BTreeMap<String, WindowSpec>,
    errors: &mut Vec<ManifestError>,
) -> Option<Window> {
    if let Some(window) = windows.get(&name.value) {
        return Some(window.clone());
    }
    if declared.contains_key(&name.value) {
        return None;
    }
    let known: Vec<&str> = windows.keys().map(String::as_str).collect();
    errors.push(
        ManifestError::at(
            "manifest::unknown_window",
            place(file, &name.referenced),
            "no such window",
            format!("no window `{}` in this document's spec.windows", name.value),
        )
        .with_help(suggest::help(&name.value, "window", &known)),
    );
    None
}

fn check_syntax(target: &Target, spec: &TargetSpec, errors: &mut Vec<ManifestError>) {
    let p = &target.places;
    if !is_id(&target.id) {
        errors.push(
            ManifestError::at(
                "manifest::id",
                p.id.clone(),
                "invalid id",
                format!("invalid target id `{}`", target.id),
            )
            .with_help(
                "ids use letters, digits, `.`, `_` and `-`, and start with a letter or digit",
            ),
        );
    }
    if !is_plan_key(&target.plan) {
        let upper = target.plan.to_uppercase();
        let help = if is_plan_key(&upper) {
            format!("plan keys are upper case: did you mean `{upper}`?")
        } else {
            "a plan key is PROJECT-PLAN, upper-case letters and digits, such as `SHOP-APP`"
                .to_string()
        };
        errors.push(
            ManifestError::at(
                "manifest::plan_key",
                p.plan.clone(),
                "not a plan key",
                format!("invalid plan key `{}`", target.plan),
            )
            .with_help(help),
        );
    }
    if let (Some(branch), Some(place)) = (&target.branch, &p.branch)
        && branch.trim().is_empty()
    {
        errors.push(ManifestError::at(
            "manifest::branch",
            place.clone(),
            "empty",
            "branch name is empty",
        ));
    }
    if let Some(problem) = stage_name_problem(&target.stage) {
        errors.push(ManifestError::at(
            "manifest::stage_name",
            p.stage.clone(),
            problem,
            format!("invalid stage name `{}`", spec.stage.value.escape_debug()),
        ));
    }
    let empty_selector = match &target.build {
        BuildSelector::Revision(r) | BuildSelector::Label(r) => r.trim().is_empty(),
        _ => false,
    };
    if let (true, Some(place)) = (empty_selector, &p.build) {
        errors.push(ManifestError::at(
            "manifest::build",
            place.clone(),
            "empty",
            "build selector names an empty revision or label",
        ));
    }
}

/// Every label the target writes or looks for must survive Bamboo's label parser as written.
fn check_labels(file: &Arc<SourceFile>, spec: &TargetSpec, errors: &mut Vec<ManifestError>) {
    let gates = spec
        .require
        .iter()
        .flat_map(|r| r.labels.iter().chain(&r.without_labels));
    let record = spec.record.iter().map(|r| &r.label);
    for label in gates.chain(record) {
        if let Some(c) = crate::label::not_kept(&label.value) {
            errors.push(
                ManifestError::at(
                    "manifest::label",
                    place(file, &label.referenced),
                    "Bamboo does not keep this character",
                    format!("label `{}` has {c:?}, which Bamboo does not keep in labels", label.value),
                )
                .with_help(format!(
                    "Bamboo replaces whitespace and `{}` in labels: use letters, digits, `-`, `_` and `.`",
                    crate::label::NOT_KEPT
                )),
            );
        }
    }
}

fn is_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// `PROJ-PLAN`: two parts of upper-case letters and digits, each starting with a letter.
fn is_plan_key(key: &str) -> bool {
    let part = |p: &str| {
        let mut chars = p.chars();
        chars.next().is_some_and(|c| c.is_ascii_uppercase())
            && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
    };
    matches!(key.split_once('-'), Some((project, plan)) if part(project) && part(plan))
}

fn stage_name_problem(name: &str) -> Option<&'static str> {
    if name.trim().is_empty() {
        Some("empty")
    } else if name.trim() != name {
        Some("leading or trailing space")
    } else if name.chars().any(char::is_control) {
        Some("control character")
    } else if name.len() > 255 {
        Some("longer than 255 bytes")
    } else {
        None
    }
}

/// Checks across all targets: unique ids, known `after` ids, no cycles, no two targets
/// demanding different stages of one build.
pub fn across(targets: &[Target], errors: &mut Vec<ManifestError>) {
    let mut first: HashMap<&str, &Target> = HashMap::new();
    for target in targets {
        if let Some(original) = first.get(target.id.as_str()) {
            errors.push(
                ManifestError::at(
                    "manifest::duplicate_id",
                    target.places.id.clone(),
                    "defined again here",
                    format!("duplicate target id `{}`", target.id),
                )
                .with_related(original.places.id.clone(), "first defined here")
                .with_help("target ids must be unique across all manifests"),
            );
        } else {
            first.insert(&target.id, target);
        }
    }
    let ids: Vec<&str> = first.keys().copied().collect();
    for target in targets {
        for (after, place) in target.after.iter().zip(&target.places.after) {
            if !first.contains_key(after.as_str()) {
                errors.push(
                    ManifestError::at(
                        "manifest::unknown_after",
                        place.clone(),
                        "no such target",
                        format!("`after` names unknown target `{after}`"),
                    )
                    .with_help(suggest::help(
                        after,
                        "target id",
                        &sorted(&ids),
                    )),
                );
            }
        }
    }
    cycles(targets, &first, errors);
    conflicts(targets, errors);
}

fn sorted<'a>(ids: &[&'a str]) -> Vec<&'a str> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

/// Depth-first search over `after`; each cycle is reported once, at the edge that closes it.
fn cycles(targets: &[Target], by_id: &HashMap<&str, &Target>, errors: &mut Vec<ManifestError>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        OnStack,
        Done,
    }
    let mut marks: HashMap<&str, Mark> = by_id.keys().map(|id| (*id, Mark::Unvisited)).collect();
    for start in targets {
        if marks[start.id.as_str()] != Mark::Unvisited {
            continue;
        }
        // Iterative DFS: (target, index of the next `after` edge to follow).
        let mut stack: Vec<(&Target, usize)> = vec![(by_id[start.id.as_str()], 0)];
        marks.insert(&start.id, Mark::OnStack);
        while let Some((node, edge)) = stack.last_mut() {
            let node = *node;
            let Some(next_id) = node.after.get(*edge) else {
                marks.insert(&node.id, Mark::Done);
                stack.pop();
                continue;
            };
            let place = node.places.after[*edge].clone();
            *edge += 1;
            let Some(next) = by_id.get(next_id.as_str()) else {
                continue;
            };
            match marks[next_id.as_str()] {
                Mark::Unvisited => {
                    marks.insert(&next.id, Mark::OnStack);
                    stack.push((next, 0));
                }
                Mark::OnStack => {
                    let from = stack
                        .iter()
                        .position(|(t, _)| t.id == *next_id)
                        .unwrap_or(0);
                    let mut path: Vec<&str> =
                        stack[from..].iter().map(|(t, _)| t.id.as_str()).collect();
                    path.push(next_id);
                    errors.push(
                        ManifestError::at(
                            "manifest::cycle",
                            place,
                            "closes the cycle",
                            format!("`after` forms a cycle: {}", path.join(" → ")),
                        )
                        .with_help("remove one of these `after` entries"),
                    );
                }
                Mark::Done => {}
            }
        }
    }
}

fn conflicts(targets: &[Target], errors: &mut Vec<ManifestError>) {
    let mut by_build: BTreeMap<(&str, Option<&str>, &BuildSelector), &Target> = BTreeMap::new();
    // `newest: eligible` names a build per stage; the online check catches two that meet.
    for target in targets
        .iter()
        .filter(|t| t.build != BuildSelector::NewestEligible)
    {
        let key = (
            target.plan.as_str(),
            target.branch.as_deref(),
            &target.build,
        );
        match by_build.get(&key) {
            Some(other) if other.stage != target.stage => errors.push(
                ManifestError::at(
                    "manifest::conflict",
                    target.places.stage.clone(),
                    format!("target `{}` wants `{}`", target.id, target.stage),
                    format!("targets `{}` and `{}` demand different stages of the same build ({} {}{})", other.id, target.id, target.plan, branch_text(target), target.build),
                )
                .with_related(other.places.stage.clone(), format!("target `{}` wants `{}`", other.id, other.stage))
                .with_help("a build reaches one stage; keep the target for the furthest stage and remove the other"),
            ),
            Some(other) if other.execute_all_stages != target.execute_all_stages => errors.push(
                ManifestError::at(
                    "manifest::conflict",
                    target.places.stage.clone(),
                    format!("target `{}`: executeAllStages {}", target.id, target.execute_all_stages),
                    format!("targets `{}` and `{}` demand `{}` of the same build ({} {}{}), one with executeAllStages and one without", other.id, target.id, target.stage, target.plan, branch_text(target), target.build),
                )
                .with_related(other.places.stage.clone(), format!("target `{}`: executeAllStages {}", other.id, other.execute_all_stages))
                .with_help("one call runs the build either to this stage or to its end; keep one of the two targets"),
            ),
            Some(_) => {}
            None => {
                by_build.insert(key, target);
            }
        }
    }
}

fn branch_text(target: &Target) -> String {
    target
        .branch
        .as_ref()
        .map_or(String::new(), |b| format!("branch {b}, "))
}
