//! signpost-api: the HTTP side of Signpost. This first slice serves liveness
//! (`/healthz`) and Prometheus metrics (`/metrics`); the /v1 control API
//! builds on the same router.

use std::net::SocketAddr;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use signpost_store::Store;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The database.
    pub store: Store,
    /// The metrics registry (the one registry of the process).
    pub registry: prometheus::Registry,
}

/// The router of every HTTP route.
pub fn router(state: ApiState) -> Router {
    Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics)).with_state(state)
}

/// Liveness: the process answers; `database` says whether PostgreSQL does.
async fn healthz(axum::extract::State(state): axum::extract::State<ApiState>) -> impl IntoResponse {
    let database = state.store.latest_change_seq().await.is_ok();
    let body = serde_json::json!({"status": "ok", "database": if database { "up" } else { "down" }});
    (StatusCode::OK, axum::Json(body))
}

/// Prometheus text exposition of the registry.
async fn metrics(axum::extract::State(state): axum::extract::State<ApiState>) -> impl IntoResponse {
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode_to_string(&state.registry.gather()) {
        Ok(text) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Binds `addr` and serves until `shutdown` turns true. Returns the bound address
/// once listening, and the serving future.
pub async fn bind(
    addr: SocketAddr,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let app = router(state);
    let serve = async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    };
    Ok((local, serve))
}
