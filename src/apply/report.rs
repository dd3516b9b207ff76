//! What apply tells people and machines: progress and events (human lines on stderr, or one
//! versioned JSON event per line on stdout, see `events`), and the audit trail of every write
//! (stderr, and `--audit-log FILE` as JSON lines). Nothing here ever sees a secret.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use super::audit::{AuditRecord, Outcome};
use super::events::{Event, EventLine};

pub struct Reporter {
    json: bool,
    /// Where progress bars are drawn, on a terminal: lines go above them.
    bars: Option<indicatif::MultiProgress>,
    audit_file: Option<Mutex<File>>,
    /// `--reason`, for every audit record.
    reason: Option<String>,
    /// Queue calls sent and not yet answered: (target, build, call).
    in_flight: Mutex<Vec<(String, String, String)>>,
}

impl Reporter {
    pub fn new(
        json: bool,
        audit_path: Option<&std::path::Path>,
        reason: Option<String>,
    ) -> std::io::Result<Reporter> {
        let audit_file = match audit_path {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)?,
            )),
            None => None,
        };
        let drawn = !json && !crate::logs::quiet() && std::io::stderr().is_terminal();
        Ok(Reporter {
            json,
            bars: drawn.then(indicatif::MultiProgress::new),
            audit_file,
            in_flight: Mutex::new(Vec::new()),
            reason,
        })
    }

    pub fn is_json(&self) -> bool {
        self.json
    }

    pub fn is_quiet(&self) -> bool {
        crate::logs::quiet()
    }

    /// The bars progress draws on a terminal, if any.
    pub fn bars(&self) -> Option<&indicatif::MultiProgress> {
        self.bars.as_ref()
    }

    /// A line on stderr, above the progress bars when they are drawn (indicatif moves them
    /// down), so that no bar is left behind half-drawn.
    /// A closed stderr (a CI runner that went away) is no reason to stop mid-apply: the line is
    /// dropped, where `eprintln!` would panic with the calls still to be recorded.
    pub fn say(&self, line: &str) {
        match &self.bars {
            Some(bars) => {
                let _ = bars.println(line);
            }
            None => crate::output::err_line(line),
        }
    }

    /// An event: one JSON line on stdout in JSON mode, `human` on stderr otherwise.
    /// With `-q`, only what someone must act on is said: errors, unknown outcomes, failed
    /// stages, stale plans.
    pub fn emit(&self, event: Event, human: impl FnOnce() -> String) {
        if self.json {
            crate::output::out_line(
                serde_json::to_string(&EventLine::now(&event)).expect("an event serializes"),
            );
        } else if !self.is_quiet() || event.is_alarm() {
            self.say(&human());
        }
    }

    /// Another apply holds the lock on a build this one waits for.
    pub fn lock_wait(&self, target: &str, build: &str, holder: &str) {
        self.emit(
            Event::LockWait {
                target: target.into(),
                build: build.into(),
                holder: holder.into(),
            },
            || format!("{target}: waiting for the lock on {build} ({holder})"),
        );
    }

    /// A queue call is about to be sent: recorded, so that a process told to die at once
    /// still writes it to the audit trail (`abandon_in_flight`).
    pub fn sending(&self, target: &str, build: &str, call: &str) {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        in_flight.push((target.to_string(), build.to_string(), call.to_string()));
    }

    /// The call to `build` has its answer (or gave up waiting for one).
    pub fn answered(&self, build: &str) {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        in_flight.retain(|(_, b, _)| b != build);
    }

    /// Writes every call still waiting for its answer to the audit trail as abandoned with an
    /// unknown outcome (their lock labels stay on the builds); returns how many there were.
    pub fn abandon_in_flight(&self) -> usize {
        let in_flight = std::mem::take(&mut *self.in_flight.lock().expect("in-flight lock"));
        for (target, build, call) in &in_flight {
            self.audit(target, build, call.clone(), Outcome::Abandoned, None);
        }
        in_flight.len()
    }

    pub fn audit(
        &self,
        target: &str,
        build: &str,
        call: String,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        let reason = self.reason.as_deref();
        let record = AuditRecord::now(target, build, call, outcome, detail, reason);
        // The file first: it is the record that must survive whatever stderr does.
        if let Some(file) = &self.audit_file {
            let line = serde_json::to_string(&record).expect("audit record serializes");
            let mut file = file.lock().expect("audit lock");
            if let Err(e) = writeln!(file, "{line}").and_then(|()| file.flush()) {
                self.say(&format!("warning: cannot write the audit log: {e}"));
            }
        }
        self.say(&format!(
            "audit: {} {} {} {} → {}{}",
            record.time,
            record.target,
            record.build,
            record.call,
            record.outcome.words(),
            record
                .detail
                .as_ref()
                .map_or(String::new(), |d| format!(" ({d})"))
        ));
    }
}
