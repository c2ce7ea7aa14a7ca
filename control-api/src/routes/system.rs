//! Routes without a key: liveness, Prometheus metrics, the OpenAPI
//! document; and the JSON answers for unknown routes and methods.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;

use crate::ApiState;
use crate::dto::Health;
use crate::error::ApiError;
use crate::openapi::ApiDoc;

/// Liveness: the process answers; `database` says whether PostgreSQL does.
#[utoipa::path(
    get, path = "/healthz", tag = "system", security(()),
    responses((status = 200, description = "The process answers", body = Health)),
)]
pub async fn healthz(State(state): State<ApiState>) -> axum::Json<Health> {
    let database = state.store.latest_change_seq().await.is_ok();
    axum::Json(Health { status: "ok".into(), database: if database { "up" } else { "down" }.into() })
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
