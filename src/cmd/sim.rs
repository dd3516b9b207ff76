//! `sim`: serve a simulated Bamboo until interrupted.

use crate::cli::SimArgs;
use crate::{exit, sim};

pub async fn run(args: &SimArgs) -> u8 {
    let world = match sim::load_world(&args.world) {
        Ok(world) => world,
        Err(e) => {
            errln!("error: {e}");
            return exit::ERROR;
        }
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(listener) => listener,
        Err(e) => {
            errln!("error: cannot listen on {}: {e}", args.listen);
            return exit::ERROR;
        }
    };
    let server = match sim::spawn(world, listener) {
        Ok(server) => server,
        Err(e) => {
            errln!("error: invalid world {}: {e}", args.world.display());
            return exit::ERROR;
        }
    };
    // Tests and scripts read this line to learn the port.
    crate::output::out_line(format_args!(
        "simulated Bamboo listening on {}",
        server.url()
    ));
    let _ = tokio::signal::ctrl_c().await;
    exit::SUCCESS
}
