//! `schema`: the JSON Schemas of the manifest format and of the JSON this tool prints, each
//! generated from the Rust types that read or write it.

use crate::cli::{SchemaArgs, SchemaKind};
use crate::{apply, exit, manifest, render};

pub fn run(args: &SchemaArgs) -> u8 {
    let schema = match args.kind {
        SchemaKind::Manifest => manifest::schema(),
        SchemaKind::Plan => render::document::schema(),
        SchemaKind::Events => apply::events::schema(),
        SchemaKind::Audit => apply::audit::schema(),
        SchemaKind::Environments => crate::environments::schema(),
    };
    match &args.out {
        None => {
            crate::output::out_text(schema);
            exit::SUCCESS
        }
        Some(path) => match std::fs::write(path, schema) {
            Ok(()) => exit::SUCCESS,
            Err(e) => {
                errln!("error: cannot write {}: {e}", path.display());
                exit::ERROR
            }
        },
    }
}
