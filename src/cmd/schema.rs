//! `schema`: the JSON Schema of the manifest format, generated from the Rust types.

use crate::cli::SchemaArgs;
use crate::{exit, manifest, stdout};

pub fn run(args: &SchemaArgs) -> u8 {
    let schema = manifest::schema();
    match &args.out {
        None => {
            stdout::text(schema);
            exit::SUCCESS
        }
        Some(path) => match std::fs::write(path, schema) {
            Ok(()) => exit::SUCCESS,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                exit::ERROR
            }
        },
    }
}
