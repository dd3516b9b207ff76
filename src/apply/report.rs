//! What apply tells people and machines: progress and events (human lines on stderr, or one
//! versioned JSON event per line on stdout, see `events`), and the audit trail of every write
//! (stderr, and `--audit-log FILE` as JSON lines). Nothing here ever sees a secret.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::audit::{AuditRecord, Outcome};
use super::events::{Event, EventLine};
use crate::bamboo::journal::{self, Ended, Journal};

tokio::task_local! {
    /// The target a promotion's writes are for, so that the client's journal can say it.
    pub static TARGET: String;
}

/// The target the running promotion is for; empty outside one.
fn current_target() -> String {
    TARGET.try_with(Clone::clone).unwrap_or_default()
}

pub struct Reporter {
    json: bool,
    /// Where progress bars are drawn, on a terminal: lines go above them.
    bars: Option<indicatif::MultiProgress>,
    audit_file: Option<Mutex<File>>,
    /// `--reason`, who runs this and from which CI run, for every audit record.
    run: super::audit::RunInfo,
    /// Queue calls sent and not yet answered: (target, build, call).
    in_flight: Mutex<Vec<(String, String, String)>>,
    /// Queue calls whose outcome stayed unknown after their re-read: a second signal still
    /// exits 7 for them.
    unknown: AtomicUsize,
    /// The lock labels this run put on builds and has not seen taken off: (build, label).
    /// A label whose write had no answer counts: it may be on the build.
    locks_on: Mutex<Vec<(String, String)>>,
    /// Lock labels an attempt to put on went unanswered: (build, label). Taking such a label
    /// off does not end it, since that attempt may still land after.
    unanswered: Mutex<Vec<(String, String)>>,
    /// Set once a record could not be written to the audit log: no write is sent after it.
    audit_broken: AtomicBool,
    /// The log ends in a partial line (a write that failed half-way, here or in an earlier
    /// run): the next record starts on a line of its own.
    audit_torn: AtomicBool,
}

/// Whether a file's last byte is not a newline (a record torn by a failed write).
fn ends_mid_line(path: &std::path::Path) -> bool {
    use std::io::{Read, Seek, SeekFrom};
    let Ok(mut file) = File::open(path) else {
        return false;
    };
    let mut last = [0u8];
    file.seek(SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() && last[0] != b'\n'
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
        let torn = audit_path.is_some_and(ends_mid_line);
        let drawn = !json && !crate::logs::quiet() && std::io::stderr().is_terminal();
        Ok(Reporter {
            json,
            bars: drawn.then(indicatif::MultiProgress::new),
            audit_file,
            in_flight: Mutex::new(Vec::new()),
            locks_on: Mutex::new(Vec::new()),
            unanswered: Mutex::new(Vec::new()),
            unknown: AtomicUsize::new(0),
            run: super::audit::RunInfo::new(reason, super::record::env),
            audit_broken: AtomicBool::new(false),
            audit_torn: AtomicBool::new(torn),
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
    /// still writes it to the audit trail (`last_words`).
    pub fn sending(&self, target: &str, build: &str, call: &str) {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        in_flight.push((target.to_string(), build.to_string(), call.to_string()));
    }

    /// The call to `build` has its answer (or gave up waiting for one).
    pub fn answered(&self, build: &str) {
        let mut in_flight = self.in_flight.lock().expect("in-flight lock");
        in_flight.retain(|(_, b, _)| b != build);
    }

    /// What a process told to die at once still does: writes every call waiting for its
    /// answer to the audit trail as abandoned with an unknown outcome, and names the lock
    /// labels it leaves on builds, so that a person knows where to look. Returns how many
    /// calls have an outcome this run does not know: those in flight, and those whose
    /// re-read could not settle it.
    pub fn last_words(&self) -> usize {
        let in_flight = std::mem::take(&mut *self.in_flight.lock().expect("in-flight lock"));
        for (target, build, call) in &in_flight {
            let _ = self.audit(target, build, call.clone(), Outcome::Abandoned, None);
        }
        for (build, label) in self.locks_on.lock().expect("locks lock").iter() {
            self.say(&format!(
                "lock label {label} may be left on {build}: it expires by itself, or once the build is checked in Bamboo, `bamboo-promote unlock {build} --force --reason …`"
            ));
        }
        in_flight.len() + self.unknown.load(Ordering::SeqCst)
    }

    /// How many calls' outcomes stayed unknown after their re-read, in this process's life.
    pub fn unknown_outcomes(&self) -> usize {
        self.unknown.load(Ordering::SeqCst)
    }

    /// Keeps `locks_on` up to date with a label write: on once it is about to leave, off once
    /// Bamboo took it off (or refused to put it on).
    fn track_lock(&self, write: &journal::Write, ended: Option<Ended>) {
        let Some(change) = &write.label else {
            return;
        };
        let (journal::LabelWrite::On(label) | journal::LabelWrite::Off(label)) = change;
        if !crate::lock_label::looks_like_a_lock(label) {
            return;
        }
        let key = (write.build.clone(), label.clone());
        if matches!(change, journal::LabelWrite::On(_)) && ended == Some(Ended::Unknown) {
            // Once per label, however many of its attempts went unanswered.
            let mut unanswered = self.unanswered.lock().expect("unanswered lock");
            if !unanswered.contains(&key) {
                unanswered.push(key.clone());
            }
        }
        let mut locks = self.locks_on.lock().expect("locks lock");
        let gone = match (change, ended) {
            (journal::LabelWrite::On(_), None) => {
                locks.push((write.build.clone(), label.clone()));
                return;
            }
            (journal::LabelWrite::On(_), Some(ended)) => ended == Ended::Refused,
            (journal::LabelWrite::Off(_), Some(ended)) => ended == Ended::Accepted,
            (journal::LabelWrite::Off(_), None) => false,
        };
        if gone {
            locks.retain(|lock| *lock != key);
        }
        drop(locks);
        let mut unanswered = self.unanswered.lock().expect("unanswered lock");
        if matches!(change, journal::LabelWrite::Off(_))
            && ended == Some(Ended::Accepted)
            && let Some(i) = unanswered.iter().position(|lock| *lock == key)
        {
            let (build, label) = unanswered.swap_remove(i);
            // Found by the explorer (seed 177783): a put that timed out landed after the
            // label's removal, and no output named the label left.
            self.say(&format!(
                "lock label {label} was taken off {build}, but a write that put it on went unanswered and may still land: if it shows on the build, it expires by itself, or `bamboo-promote unlock {build} --force --reason …`"
            ));
        }
    }

    /// Records a write's outcome. `Err` when the audit log could not take it: from then on
    /// the journal refuses every write (see `Journal for Reporter`).
    pub fn audit(
        &self,
        target: &str,
        build: &str,
        call: String,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), String> {
        self.audit_at(target, build, call, outcome, detail, None)
    }

    fn audit_at(
        &self,
        target: &str,
        build: &str,
        call: String,
        outcome: Outcome,
        detail: Option<String>,
        server_ms: Option<i64>,
    ) -> Result<(), String> {
        if outcome == Outcome::UnknownLockKept {
            self.unknown.fetch_add(1, Ordering::SeqCst);
        }
        let record = AuditRecord::now(target, build, call, outcome, detail, &self.run, server_ms);
        // The file first: it is the record that must survive whatever stderr does. One write
        // per line, to a file opened for appending: processes sharing a log never interleave.
        let kept = match &self.audit_file {
            Some(file) => {
                let mut line = serde_json::to_string(&record).expect("audit record serializes");
                line.push('\n');
                if self.audit_torn.swap(false, Ordering::SeqCst) {
                    line.insert(0, '\n');
                }
                let mut file = file.lock().expect("audit lock");
                let written = file.write_all(line.as_bytes()).and_then(|()| file.flush());
                if written.is_err() {
                    self.audit_torn.store(true, Ordering::SeqCst);
                }
                written.map_err(|e| format!("cannot write the audit log: {e}"))
            }
            None => Ok(()),
        };
        // On stderr, what a person reads: each queue call's outcome, and any other write that
        // did not go through. The file has every record.
        let queue_call = record.call.starts_with("PUT queue/");
        let said = match outcome {
            Outcome::Sending => false,
            Outcome::Accepted => queue_call,
            _ => true,
        };
        if said {
            self.say(&format!(
                "audit: {} {}{} {} {} → {}{}",
                record.time,
                record.target,
                if record.target.is_empty() { "" } else { " " },
                record.build,
                record.call,
                record.outcome.words(),
                record
                    .detail
                    .as_ref()
                    .map_or(String::new(), |d| format!(" ({d})"))
            ));
        }
        if let Err(e) = &kept {
            self.audit_broken.store(true, Ordering::SeqCst);
            self.say(&format!("error: {e}; no write is sent after it"));
        }
        kept
    }

    /// Whether the audit log failed: the run sends nothing more.
    pub fn audit_broken(&self) -> bool {
        self.audit_broken.load(Ordering::SeqCst)
    }
}

impl Journal for Reporter {
    fn before(&self, write: &journal::Write) -> Result<(), String> {
        if self.audit_broken() {
            return Err("the audit log failed earlier in this run".into());
        }
        self.journal_record(write, Outcome::Sending, None)?;
        self.track_lock(write, None);
        Ok(())
    }

    fn after(&self, write: &journal::Write, ended: Ended, detail: Option<String>) {
        let outcome = match ended {
            Ended::Accepted => Outcome::Accepted,
            Ended::Refused => Outcome::Refused,
            Ended::Unknown => Outcome::Unanswered,
        };
        self.track_lock(write, Some(ended));
        let _ = self.journal_record(write, outcome, detail);
    }
}

impl Reporter {
    /// A journal's record, for the target of the promotion that is running (if any).
    fn journal_record(
        &self,
        write: &journal::Write,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), String> {
        let target = current_target();
        let call = write.call.clone();
        self.audit_at(
            &target,
            &write.build,
            call,
            outcome,
            detail,
            write.server_ms,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bamboo::journal::{LabelWrite, Write};

    fn lock_write(label: Option<LabelWrite>) -> Write {
        Write {
            build: "SHOP-APP-42".into(),
            call: "POST result/SHOP-APP-42/label".into(),
            server_ms: None,
            label,
        }
    }

    /// Found by the explorer (seed 2902 on a scratch branch): a call whose re-read left its
    /// outcome unknown, then two signals — the run exited 130, not 7. Its last words count
    /// it with the calls in flight.
    #[test]
    fn last_words_count_an_outcome_left_unknown_by_its_reread() {
        let reporter = Reporter::new(true, None, None).expect("a reporter without a log");
        let _ = reporter.audit(
            "t",
            "SHOP-APP-42",
            "PUT queue/SHOP-APP-42".into(),
            Outcome::Accepted,
            None,
        );
        assert_eq!(reporter.last_words(), 0);
        let _ = reporter.audit(
            "t",
            "SHOP-APP-42",
            "PUT queue/SHOP-APP-42".into(),
            Outcome::UnknownLockKept,
            None,
        );
        assert_eq!(reporter.last_words(), 1);
    }

    /// The lock labels a run may leave are those it put on and has not seen taken off, and
    /// those taken off after a put that went unanswered (said then).
    #[test]
    fn lock_labels_on_are_tracked_until_taken_off() {
        let reporter = Reporter::new(true, None, None).expect("a reporter without a log");
        let lock = "bamboo-promote-lock-v2-1-600000-0000beef".to_string();
        let on = lock_write(Some(LabelWrite::On(lock.clone())));
        let record = lock_write(Some(LabelWrite::On("promoted-prod".into())));
        reporter.before(&on).expect("journaled");
        reporter.before(&record).expect("journaled");
        reporter.after(&on, Ended::Unknown, None);
        let held = || reporter.locks_on.lock().expect("locks lock").clone();
        assert_eq!(
            held(),
            [("SHOP-APP-42".to_string(), lock.clone())],
            "no answer: it may be on"
        );
        let off = lock_write(Some(LabelWrite::Off(lock.clone())));
        reporter.before(&off).expect("journaled");
        reporter.after(&off, Ended::Unknown, None);
        assert_eq!(held().len(), 1, "not seen taken off");
        let unanswered = || reporter.unanswered.lock().expect("unanswered lock").len();
        assert_eq!(unanswered(), 1, "a put with no answer may still land");
        reporter.after(&off, Ended::Accepted, None);
        assert!(held().is_empty());
        assert_eq!(unanswered(), 0, "said once it was taken off");
        reporter.before(&on).expect("journaled");
        reporter.after(&on, Ended::Refused, None);
        assert!(held().is_empty(), "refused: never on");
    }
}
