//! Routes without a key: liveness, readiness, Prometheus metrics, the
//! OpenAPI document; and the JSON answers for unknown routes and methods.
//! Neither /healthz nor /readyz waits on the database: a background probe
//! (`DatabaseProbe`) queries it every second and they report what it saw.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use signpost_store::readiness::DatabaseState;
use tokio::sync::watch;
use utoipa::{OpenApi, ToSchema};

use crate::ApiState;
use crate::dto::Health;
use crate::error::ApiError;
use crate::openapi::ApiDoc;

/// How often the background probe queries the database.
pub const PROBE_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a probe may wait for its answer.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// The database counts as reachable for /readyz when a probe succeeded this recently.
pub const READY_WITHIN: Duration = Duration::from_secs(5);

/// What the background probe last saw of the database.
#[derive(Debug, Default)]
pub struct DatabaseProbe {
    /// (whether the last probe succeeded, when a probe last succeeded).
    seen: Mutex<(bool, Option<Instant>)>,
}

impl DatabaseProbe {
    /// Records one probe's result.
    pub fn record(&self, ok: bool) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.0 = ok;
            if ok {
                seen.1 = Some(Instant::now());
            }
        }
    }

    /// Whether the last probe succeeded.
    pub fn up(&self) -> bool {
        self.seen.lock().map(|s| s.0).unwrap_or(false)
    }

    /// How long ago a probe last succeeded (None: never).
    pub fn since_last_success(&self) -> Option<Duration> {
        self.seen.lock().ok().and_then(|s| s.1).map(|t| t.elapsed())
    }
}

/// Probes the database every `PROBE_INTERVAL` until `shutdown`.
pub async fn probe_database(state: ApiState, mut shutdown: watch::Receiver<bool>) {
    loop {
        let ok = matches!(tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await, Ok(Ok(())));
        state.database_probe.record(ok);
        tokio::select! {
            _ = tokio::time::sleep(PROBE_INTERVAL) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// Liveness: the process answers; `database` is what the last background
/// probe saw (`up` or `down`). Never waits on the database.
#[utoipa::path(
    get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "The process answers", body = Health)),
)]
pub async fn healthz(State(state): State<ApiState>) -> axum::Json<Health> {
    let database = state.database_probe.up();
    axum::Json(Health { status: "ok".into(), database: if database { "up" } else { "down" }.into() })
}

/// Readiness: `ready`, or `not ready` with the reasons.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not ready`.
    pub status: String,
    /// Why not (empty when ready).
    pub reasons: Vec<String>,
}

/// Readiness: 200 when the database answered a probe in the last
/// `READY_WITHIN` and is migrated (and, in `serve`, the DNS server has a
/// snapshot from the database and follows it); else 503 with the reasons.
#[utoipa::path(
    get, path = "/readyz", tag = "system", security(()),
    responses(
        (status = 200, description = "Ready", body = Readiness),
        (status = 503, description = "Not ready, with the reasons", body = Readiness),
    ),
)]
pub async fn readyz(State(state): State<ApiState>) -> Response {
    let mut reasons = Vec::new();
    match state.database_probe.since_last_success() {
        Some(ago) if ago <= READY_WITHIN => {}
        Some(ago) => reasons.push(format!("the database has not answered for {} s", ago.as_secs())),
        None => reasons.push("the database has not answered yet".to_string()),
    }
    if let Some(database) = &state.config.database
        && *database.borrow() != DatabaseState::Ready
    {
        reasons.push("migrations have not been applied yet".to_string());
    }
    if let Some(check) = &state.config.readiness
        && let Err(reason) = check()
    {
        reasons.push(reason);
    }
    let (status, text) = if reasons.is_empty() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    };
    (status, axum::Json(Readiness { status: text.into(), reasons })).into_response()
}

/// /v1 answers 503 until the database is migrated (a process starts
/// serving before its database is reachable).
pub async fn require_migrated(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    if let Some(database) = &state.config.database
        && *database.borrow() != DatabaseState::Ready
    {
        return ApiError::unavailable(
            "the database is not reachable yet, or its migrations are being applied",
        )
        .into_response();
    }
    next.run(req).await
}

/// Prometheus text exposition of the process's registry.
#[utoipa::path(
    get, path = "/metrics", tag = "system", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")),
)]
pub async fn metrics(State(state): State<ApiState>) -> Response {
    let encoder = prometheus::TextEncoder::new();
    match encoder.encode_to_string(&state.registry.gather()) {
        Ok(text) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "encoding metrics");
            ApiError::internal().into_response()
        }
    }
}

/// The OpenAPI 3.1 document of this API, generated from the code.
pub async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the OpenAPI document");
            ApiError::internal().into_response()
        }
    }
}

/// 404 for a path no route has.
pub async fn no_route() -> ApiError {
    ApiError::not_found("NotFound", "no such route; see /v1/openapi.json")
}

/// 405 for a method the route does not have.
pub async fn no_method() -> ApiError {
    ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "MethodNotAllowed", "this route does not take that method")
}
