//! `completions` and `man`: what a shell and `man` need, generated from the same clap
//! definitions as `--help`, so they never fall behind a flag.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs};
use crate::exit;

pub fn completions(args: &CompletionsArgs) -> u8 {
    let mut script = Vec::new();
    clap_complete::generate(
        args.shell,
        &mut Cli::command(),
        "bamboo-promote",
        &mut script,
    );
    crate::output::out_text(String::from_utf8_lossy(&script));
    exit::SUCCESS
}

pub fn man() -> u8 {
    let mut page = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut page)
        .expect("rendering into memory cannot fail");
    crate::output::out_text(String::from_utf8_lossy(&page));
    exit::SUCCESS
}
