//! One file per subcommand, each thin: load → observe → plan → render or apply.

pub mod schema;
pub mod sim;
pub mod validate;
