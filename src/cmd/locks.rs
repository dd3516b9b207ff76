//! `locks`: the lock labels on the builds the targets name, live or expired, with their age
//! on the server's clock — what `plan` marks as "locked by another apply", listed, so that
//! after an exit 7 a person sees what is held before `unlock`.

use std::collections::BTreeSet;

use super::failure::Json;
use crate::cli::LocksArgs;
use crate::exit;
use crate::lock_label::{DEFAULT_MAX_SKEW, LockLabel};
use crate::render::human::counted;

pub async fn run(args: &LocksArgs) -> u8 {
    let planned = match super::pipeline::plan(
        &args.paths,
        &args.walk.exclude,
        &args.server,
        &args.selection,
        super::pipeline::When::default(),
    )
    .await
    {
        Ok(planned) => planned,
        Err(failure) => return failure.report(Json::No),
    };
    let now = crate::reconcile::Moment::on_server(&planned.connection.client, false)
        .now
        .as_millisecond();
    let mut seen = BTreeSet::new();
    let mut lines = Vec::new();
    for item in &planned.plan.items {
        let Some(build) = item.build.as_deref() else {
            continue;
        };
        if !seen.insert(build.key.clone()) {
            continue;
        }
        for lock in build.labels.iter().filter_map(|l| LockLabel::parse(l)) {
            let state = if lock.is_expired(now, DEFAULT_MAX_SKEW) {
                "expired"
            } else {
                "live"
            };
            lines.push(format!(
                "{}  {state}: {}  (target {})",
                build.key,
                lock.describe(now),
                item.target.id
            ));
        }
    }
    if lines.is_empty() {
        outln!(
            "No lock labels on the {} the targets name.",
            counted(seen.len(), "build")
        );
    } else {
        for line in &lines {
            outln!("{line}");
        }
        outln!(
            "\nA live lock is an apply at work, or one that exited 7: check the build in Bamboo, then `bamboo-promote unlock BUILD_KEY --force --reason …`; expired ones go with `bamboo-promote unlock BUILD_KEY`."
        );
    }
    exit::SUCCESS
}
