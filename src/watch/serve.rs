//! The watcher's HTTP server (`--listen`): `/healthz` for probes, `/metrics` for Prometheus,
//! and `/`, the board. Read-only, and it answers from what the last cycles kept: a scrape or a
//! page view never reaches Bamboo.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::Watch;

/// Binds `addr` (so that a port in use is said at start, not later) and serves in the
/// background; returns the address bound (port 0 picks one).
pub async fn serve(
    addr: std::net::SocketAddr,
    watch: Arc<Watch>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = Router::new()
        .route("/", get(board))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(watch);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            errln!("warning: the --listen server stopped: {e}");
        }
    });
    Ok(bound)
}

async fn healthz(State(watch): State<Arc<Watch>>) -> Response {
    let (healthy, body) = watch.health();
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(watch): State<Arc<Watch>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        watch.metrics.text(),
    )
        .into_response()
}

async fn board(State(watch): State<Arc<Watch>>) -> Html<String> {
    Html(watch.board())
}
