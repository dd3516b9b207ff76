//! `completions` and `man`: what a shell and `man` need, generated from the same clap
//! definitions as `--help`, so they never fall behind a flag.

use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, ENVIRONMENT, ManArgs};
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

pub fn man(args: &ManArgs) -> u8 {
    let mut cli = Cli::command().disable_help_subcommand(true);
    cli.build();
    let Some(dir) = &args.out else {
        crate::output::out_text(String::from_utf8_lossy(&page(cli)));
        return exit::SUCCESS;
    };
    let commands = std::iter::once(cli.clone()).chain(cli.get_subcommands().cloned());
    for command in commands {
        let name = clap_mangen::Man::new(command.clone()).get_filename();
        let path = dir.join(&name);
        if let Err(e) = std::fs::write(&path, page(command)) {
            errln!("error: cannot write {}: {e}", path.display());
            return exit::ERROR;
        }
        outln!("{}", path.display());
    }
    exit::SUCCESS
}

/// One command's page: clap's sections, then EXIT STATUS and ENVIRONMENT, which every command
/// shares.
fn page(command: clap::Command) -> Vec<u8> {
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut page)
        .expect("rendering into memory cannot fail");
    page.extend_from_slice(b".SH \"EXIT STATUS\"\n");
    for (code, meaning) in exit::MEANINGS {
        page.extend_from_slice(format!(".TP\n\\fB{code}\\fR\n{}\n", roff_text(meaning)).as_bytes());
    }
    page.extend_from_slice(b".SH ENVIRONMENT\n");
    for line in ENVIRONMENT.lines() {
        // A name starts two spaces in; what it is follows it, or the next line, further in.
        let (names, what) = match line.strip_prefix("  ") {
            Some(rest) if !rest.starts_with(' ') => match rest.split_once("  ") {
                Some((names, what)) => (Some(names), what.trim()),
                None => (Some(rest), ""),
            },
            _ => (None, line.trim()),
        };
        if let Some(names) = names {
            page.extend_from_slice(
                format!(".TP\n\\fB{}\\fR\n", roff_text(names.trim())).as_bytes(),
            );
        }
        if !what.is_empty() {
            page.extend_from_slice(format!("{}\n", roff_text(what)).as_bytes());
        }
    }
    page
}

/// Text for a roff line: backslashes and hyphens escaped, no leading dot or quote.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    if escaped.starts_with(['.', '\'']) {
        format!("\\&{escaped}")
    } else {
        escaped
    }
}
