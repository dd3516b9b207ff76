//! A simulated Bamboo server: the stand-in for a real one in tests, benchmarks and the quick
//! start. `world` is what it holds, `engine` how builds move through stages, `routes` and
//! `view` the REST API, `server` the HTTP side with faults and the request log.

mod clock;
mod engine;
mod faults;
mod log;
mod routes;
mod server;
mod view;
pub mod world;
mod xml;

use std::path::Path;

pub use log::LoggedRequest;
pub use server::{SimServer, spawn};
pub use world::World;

/// Reads a world file; the error is a rendered, located message.
pub fn load_world(path: &Path) -> Result<World, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read world file {}: {e}", path.display()))?;
    serde_saphyr::from_str(&text).map_err(|e| format!("invalid world file {}: {e}", path.display()))
}
