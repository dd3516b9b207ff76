//! Progress while `--wait` waits: on a terminal, a line per promoted build that indicatif
//! redraws in place under a header with the elapsed time and how many have finished, and every
//! other line printed above them (see `Reporter::say`), so that nothing is drawn twice; plain
//! lines, only when something changed, otherwise, so CI logs stay readable.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use super::report::Reporter;
use crate::observe::ObservedBuild;
use crate::render::human::stage_row;

pub struct Progress {
    bars: Option<(MultiProgress, ProgressBar, BTreeMap<String, ProgressBar>)>,
    last: BTreeMap<String, String>,
    last_header: String,
    started: Instant,
}

impl Progress {
    /// Bars when the reporter draws on a terminal; nothing when stdout carries JSON events or
    /// `-q` asked for quiet.
    pub fn new(reporter: &Reporter) -> Progress {
        let bars = reporter.bars().map(|multi| {
            let header = multi.add(ProgressBar::new_spinner());
            header.set_style(
                ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
            );
            header.enable_steady_tick(Duration::from_millis(120));
            (multi.clone(), header, BTreeMap::new())
        });
        Progress {
            bars,
            last: BTreeMap::new(),
            last_header: String::new(),
            started: Instant::now(),
        }
    }

    /// Shows where a promoted build stands; plain output prints only changes.
    pub fn update(
        &mut self,
        reporter: &Reporter,
        target: &str,
        build: &ObservedBuild,
        stage: &str,
    ) {
        if reporter.is_quiet() {
            return;
        }
        let line = format!("{target} {}: {}", build.key, stage_row(Some(build), stage));
        if self.last.get(target) == Some(&line) {
            return;
        }
        self.last.insert(target.to_string(), line.clone());
        match &mut self.bars {
            Some((multi, _, bars)) => {
                let bar = bars.entry(target.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(1));
                    bar.set_style(ProgressStyle::with_template("  {msg}").expect("valid template"));
                    bar
                });
                bar.set_message(line);
            }
            None => reporter.say(&line),
        }
    }

    /// `waiting: 2 of 5 finished, 1m 20s`: the header on a terminal, a line when it changes
    /// otherwise (without the time, which changes every round).
    pub fn tally(&mut self, reporter: &Reporter, finished: usize, total: usize) {
        if reporter.is_quiet() || total == 0 {
            return;
        }
        let counts = format!("waiting: {finished} of {total} finished");
        match &self.bars {
            Some((_, header, _)) => {
                let elapsed = self.started.elapsed().as_secs();
                header.set_message(format!("{counts}, {}m {:02}s", elapsed / 60, elapsed % 60));
            }
            None if counts != self.last_header => reporter.say(&counts),
            None => {}
        }
        self.last_header = counts;
    }

    pub fn finish(&mut self) {
        if let Some((_, header, bars)) = &self.bars {
            header.finish_and_clear();
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}
