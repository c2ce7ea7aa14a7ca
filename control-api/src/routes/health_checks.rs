//! Health checks: create (idempotent with a caller reference), list, get,
//! delete (refused while in use), the verdict with each live checker's
//! state, and the operator's override. Creating and changing checks needs a
//! key for every zone of the account (a check can gate any zone's records).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use signpost_store::StoreError;
use signpost_store::health::{DEFAULT_CHECKER_LIVENESS, DEFAULT_HEALTHY_SHARE, HealthCheckSpec};

use super::{PageParams, encode_cursor};
use crate::ApiState;
use crate::auth::Caller;
use crate::checks::is_id;
use crate::dto::{CreateHealthCheck, HealthCheck, HealthCheckList, HealthStatus, SetOverride};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};

fn no_such_check(id: &str) -> ApiError {
    ApiError::not_found("NoSuchHealthCheck", format!("no health check {id}"))
}

/// A store error about the check `id`, as the client should hear it.
fn check_error(id: &str) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::NotFound(_) => no_such_check(id),
        StoreError::Conflict { field, message } if field == "callerReference" => {
            ApiError::conflict("HealthCheckAlreadyExists", message).with_field(field)
        }
        StoreError::Conflict { message, .. } => ApiError::conflict("HealthCheckInUse", message),
        other => ApiError::from_store(other, "NoSuchHealthCheck"),
    }
}

/// 404 unless `id` has the shape of a health check id.
fn check_id(id: &str) -> Result<(), ApiError> {
    if is_id(id, 'H') { Ok(()) } else { Err(no_such_check(id)) }
}

/// Create a health check.
#[utoipa::path(
    post, path = "/v1/health-checks", tag = "health checks",
    request_body = CreateHealthCheck,
    responses(
        (status = 201, description = "The new check; checkers probe it at once", body = HealthCheck),
        (status = 200, description = "The check made earlier with the same callerReference and settings", body = HealthCheck),
        (status = 400, description = "Invalid settings, a target the installation's policy refuses, or the account's health-check quota is reached (`LimitExceeded`)", body = ErrorBody),
        (status = 409, description = "The callerReference was used with other settings", body = ErrorBody),
    ),
)]
pub async fn create_health_check(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(spec): ApiJson<HealthCheckSpec>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_all_zones("create health checks")?;
    // The installation's stored policy, as the checkers apply it.
    let policy = state
        .store
        .target_policy()
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHealthCheck"))?
        .in_mode(state.config.local_targets);
    let made =
        state.store.create_health_check(&caller.account_id, &spec, &policy).await.map_err(check_error(""))?;
    let status = if made.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, axum::Json(HealthCheck::from(made.check))))
}

/// List the account's health checks, by id.
#[utoipa::path(
    get, path = "/v1/health-checks", tag = "health checks",
    params(PageParams),
    responses((status = 200, description = "A page of health checks", body = HealthCheckList)),
)]
pub async fn list_health_checks(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<HealthCheckList>, ApiError> {
    let limit = page.limit(100, 100)?;
    let after: Option<String> = page.cursor()?;
    let found = state
        .store
        .list_health_checks(&caller.account_id, after.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHealthCheck"))?;
    let next_cursor = if found.more { found.items.last().and_then(|c| encode_cursor(&c.id)) } else { None };
    Ok(axum::Json(HealthCheckList {
        items: found.items.into_iter().map(HealthCheck::from).collect(),
        next_cursor,
    }))
}

/// Get a health check.
#[utoipa::path(
    get, path = "/v1/health-checks/{id}", tag = "health checks",
    params(("id" = String, Path, description = "Health check id")),
    responses(
        (status = 200, description = "The check", body = HealthCheck),
        (status = 404, description = "No such health check in this account", body = ErrorBody),
    ),
)]
pub async fn get_health_check(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<HealthCheck>, ApiError> {
    check_id(&id)?;
    let check = state.store.health_check(&caller.account_id, &id).await.map_err(check_error(&id))?;
    Ok(axum::Json(HealthCheck::from(check)))
}

/// Delete a health check that no record set and no CALCULATED check uses.
#[utoipa::path(
    delete, path = "/v1/health-checks/{id}", tag = "health checks",
    params(("id" = String, Path, description = "Health check id")),
    responses(
        (status = 204, description = "Deleted; checkers stop probing it"),
        (status = 404, description = "No such health check in this account", body = ErrorBody),
        (status = 409, description = "A record set or a CALCULATED check uses it", body = ErrorBody),
    ),
)]
pub async fn delete_health_check(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    caller.require_all_zones("delete health checks")?;
    state.store.delete_health_check(&caller.account_id, &id).await.map_err(check_error(&id))?;
    Ok(StatusCode::NO_CONTENT)
}

/// The verdict the DNS servers use and what each live checker holds.
#[utoipa::path(
    get, path = "/v1/health-checks/{id}/status", tag = "health checks",
    params(("id" = String, Path, description = "Health check id")),
    responses(
        (status = 200, description = "The verdict, the override and each live checker's state", body = HealthStatus),
        (status = 404, description = "No such health check in this account", body = ErrorBody),
    ),
)]
pub async fn health_check_status(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<HealthStatus>, ApiError> {
    check_id(&id)?;
    let status = state
        .store
        .health_check_status(&caller.account_id, &id, DEFAULT_HEALTHY_SHARE, DEFAULT_CHECKER_LIVENESS)
        .await
        .map_err(check_error(&id))?;
    Ok(axum::Json(HealthStatus::from(status)))
}

/// Force a check's verdict healthy or unhealthy, or clear the override; the
/// DNS servers follow at once.
#[utoipa::path(
    put, path = "/v1/health-checks/{id}/override", tag = "health checks",
    params(("id" = String, Path, description = "Health check id")),
    request_body = SetOverride,
    responses(
        (status = 200, description = "The check with its override", body = HealthCheck),
        (status = 404, description = "No such health check in this account", body = ErrorBody),
    ),
)]
pub async fn set_override(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<SetOverride>,
) -> Result<axum::Json<HealthCheck>, ApiError> {
    check_id(&id)?;
    caller.require_all_zones("override health checks")?;
    let check = state
        .store
        .set_health_check_override(&caller.account_id, &id, body.state.map(Into::into))
        .await
        .map_err(check_error(&id))?;
    Ok(axum::Json(HealthCheck::from(check)))
}
