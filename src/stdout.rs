//! Standard output for what the commands report. A reader that stops early (`plan | head`)
//! closes the pipe: the rest of the report is then dropped quietly where `print!` would panic,
//! and the command's work and exit code are not affected.

use std::fmt::Display;
use std::io::{ErrorKind, Write};
use std::sync::Once;

/// Writes `text` and a newline.
pub fn line(text: impl Display) {
    write(format_args!("{text}\n"));
}

/// Writes `text` as it is.
pub fn text(text: impl Display) {
    write(format_args!("{text}"));
}

fn write(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    match out.write_fmt(args).and_then(|()| out.flush()) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::BrokenPipe => {}
        Err(e) => {
            static WARNED: Once = Once::new();
            WARNED.call_once(|| eprintln!("warning: cannot write to standard output: {e}"));
        }
    }
}
