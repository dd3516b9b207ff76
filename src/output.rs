//! Standard output and standard error, written so that they never stop the program's own work.
//!
//! `println!` panics on a closed pipe (`plan | head`, a cancelled `apply 2>&1 | tee`), and any
//! direct write blocks while a pipe's reader has stopped reading. Either would hold up an apply
//! between its last check and its write, or kill the task that listens for signals. So each
//! stream has a writer thread of its own; the program hands it lines and goes on. Standard
//! output keeps every line (it is the report; a reader that stalls stalls only the end of the
//! run, in `flush`); standard error drops progress lines once `ERR_BACKLOG` wait unwritten, and
//! says how many it dropped. A broken pipe or a closed descriptor ends a stream quietly.

use std::fmt::Display;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

/// Lines stderr may hold unwritten before it drops new ones.
const ERR_BACKLOG: usize = 4096;
/// How long the end of a run waits for stderr to drain: a stalled reader must not hold the
/// exit (and a signal's exit) forever.
const ERR_DRAIN: Duration = Duration::from_secs(2);

enum Message {
    Text(String),
    /// Answered once everything before it was written (or dropped).
    Flush(Sender<()>),
}

struct Stream {
    sender: Mutex<Sender<Message>>,
    /// Lines handed over and not yet written.
    pending: AtomicUsize,
    /// Lines dropped because the backlog was full.
    dropped: AtomicUsize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Which {
    Out,
    Err,
}

fn stream(which: Which) -> &'static Stream {
    static OUT: OnceLock<Stream> = OnceLock::new();
    static ERR: OnceLock<Stream> = OnceLock::new();
    let cell = match which {
        Which::Out => &OUT,
        Which::Err => &ERR,
    };
    cell.get_or_init(|| {
        let (sender, receiver) = channel();
        std::thread::Builder::new()
            .name(format!("{which:?}-writer"))
            .spawn(move || write_all(which, receiver))
            .expect("a writer thread starts");
        Stream {
            sender: Mutex::new(sender),
            pending: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
        }
    })
}

/// The writer thread: writes each text as it comes; after a write fails (a closed pipe, a
/// closed descriptor), drops the rest.
fn write_all(which: Which, receiver: Receiver<Message>) {
    let mut broken = false;
    for message in receiver {
        match message {
            Message::Text(text) => {
                if !broken && let Err(e) = write_one(which, &text) {
                    broken = true;
                    if which == Which::Out && e.kind() != std::io::ErrorKind::BrokenPipe {
                        err_line(format_args!(
                            "warning: cannot write to standard output: {e}"
                        ));
                    }
                }
                stream(which).pending.fetch_sub(1, Ordering::SeqCst);
            }
            Message::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

fn write_one(which: Which, text: &str) -> std::io::Result<()> {
    match which {
        Which::Out => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        }
        Which::Err => std::io::stderr().lock().write_all(text.as_bytes()),
    }
}

/// Hands `text` to the stream's thread. Standard output keeps every line: it is the report.
/// Standard error drops a line when its reader has fallen `ERR_BACKLOG` lines behind.
fn send(which: Which, text: String) {
    if let Some(process) = crate::process::current() {
        let captured = &process.captured;
        let (kept, broken) = match which {
            Which::Out => (&captured.out, captured.out_broken),
            Which::Err => (&captured.err, captured.err_broken),
        };
        if broken {
            // As the writer thread does after a write fails: the text is lost, nothing else.
            return;
        }
        kept.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push_str(&text);
        return;
    }
    let stream = stream(which);
    if which == Which::Err && stream.pending.load(Ordering::SeqCst) >= ERR_BACKLOG {
        stream.dropped.fetch_add(1, Ordering::SeqCst);
        return;
    }
    stream.pending.fetch_add(1, Ordering::SeqCst);
    let sender = stream.sender.lock().unwrap_or_else(|e| e.into_inner());
    if sender.send(Message::Text(text)).is_err() {
        stream.pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A line on standard output.
pub fn out_line(text: impl Display) {
    send(Which::Out, format!("{text}\n"));
}

/// Text on standard output, as it is.
pub fn out_text(text: impl Display) {
    send(Which::Out, text.to_string());
}

/// A line on standard error; dropped rather than waited for when stderr has stalled.
pub fn err_line(text: impl Display) {
    send(Which::Err, format!("{text}\n"));
}

/// Text on standard error, as it is (a prompt).
pub fn err_text(text: impl Display) {
    send(Which::Err, text.to_string());
}

/// Waits until what was handed to both streams is written: before reading an answer to a
/// prompt, and before the process exits. Standard error is waited for at most `ERR_DRAIN`.
pub fn flush() {
    flush_within(Which::Out, None);
    flush_within(Which::Err, Some(ERR_DRAIN));
}

/// Waits for both streams at most `limit` each: for an exit forced by a second signal.
pub fn flush_briefly(limit: Duration) {
    flush_within(Which::Out, Some(limit));
    flush_within(Which::Err, Some(limit));
}

fn flush_within(which: Which, limit: Option<Duration>) {
    let stream = stream(which);
    let dropped = stream.dropped.swap(0, Ordering::SeqCst);
    if dropped > 0 {
        err_line(format_args!(
            "warning: {dropped} progress lines were dropped: standard error did not keep up"
        ));
    }
    let (done, written) = channel();
    let queued = {
        let sender = stream.sender.lock().unwrap_or_else(|e| e.into_inner());
        sender.send(Message::Flush(done)).is_ok()
    };
    if !queued {
        return;
    }
    match limit {
        None => {
            let _ = written.recv();
        }
        Some(limit) => {
            let _ = written.recv_timeout(limit);
        }
    }
}

/// A `tracing` writer that goes through standard error's thread.
pub struct ErrWriter;

impl Write for ErrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        send(Which::Err, String::from_utf8_lossy(buf).into_owned());
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `eprintln!`, through standard error's thread: never panics, never blocks.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::output::err_line(format_args!($($arg)*))
    };
}

/// `println!`, through standard output's thread: never panics.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::output::out_line(format_args!($($arg)*))
    };
}
