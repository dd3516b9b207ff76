//! Progress while `--wait` waits: a spinner per promoted build on a terminal (indicatif), plain
//! lines when a stage changes otherwise, so CI logs stay readable.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::observe::ObservedBuild;
use crate::render::human::stage_row;

pub struct Progress {
    bars: Option<(MultiProgress, BTreeMap<String, ProgressBar>)>,
    last: BTreeMap<String, String>,
}

impl Progress {
    /// Spinners only on a terminal, and never when stdout carries JSON events.
    pub fn new(json: bool) -> Progress {
        let fancy = !json && std::io::stderr().is_terminal();
        Progress {
            bars: fancy.then(|| (MultiProgress::new(), BTreeMap::new())),
            last: BTreeMap::new(),
        }
    }

    /// Shows where a promoted build stands; plain output prints only changes.
    pub fn update(&mut self, target: &str, build: &ObservedBuild, stage: &str) {
        let line = format!("{target} {}: {}", build.key, stage_row(Some(build), stage));
        if self.last.get(target) == Some(&line) {
            return;
        }
        self.last.insert(target.to_string(), line.clone());
        match &mut self.bars {
            Some((multi, bars)) => {
                let bar = bars.entry(target.to_string()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new_spinner());
                    bar.set_style(
                        ProgressStyle::with_template("{spinner} {msg}").expect("valid template"),
                    );
                    bar.enable_steady_tick(Duration::from_millis(120));
                    bar
                });
                bar.set_message(line);
            }
            None => eprintln!("{line}"),
        }
    }

    pub fn finish(&mut self) {
        if let Some((_, bars)) = &self.bars {
            for bar in bars.values() {
                bar.finish();
            }
        }
    }
}
