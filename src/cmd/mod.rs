//! One file per subcommand, each thin: load → observe → plan → render or apply.

pub mod apply;
pub mod completions;
pub mod environments;
mod failure;
pub mod init;
pub mod locks;
mod pipeline;
pub mod plan;
pub mod schema;
pub mod sim;
pub mod status;
pub mod unlock;
pub mod validate;
pub mod watch;
