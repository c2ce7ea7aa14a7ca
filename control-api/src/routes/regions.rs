//! The measured latency table and the region coordinates of an account
//! (the built-in table of cloud regions, with the account's additions and
//! overrides). Every write reaches the DNS servers through a `ROUTING`
//! change; writes need a key for every zone of the account.

use axum::extract::State;
use axum::http::StatusCode;
use signpost_core::model::Coordinates as CoreCoordinates;
use signpost_store::StoreError;

use crate::ApiState;
use crate::auth::Caller;
use crate::checks::is_region_code;
use crate::dto::{Coordinates, LatencyTable, Region, RegionList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, IdPath};

fn routing_error(e: StoreError) -> ApiError {
    match e {
        StoreError::Conflict { field, message } => {
            ApiError::conflict("RegionInUse", message).with_field(field)
        }
        other => ApiError::from_store(other, "NoSuchRegion"),
    }
}

/// The account's latency table.
#[utoipa::path(
    get, path = "/v1/latency-table", tag = "routing",
    responses((status = 200, description = "The table, by block and region", body = LatencyTable)),
)]
pub async fn get_latency_table(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<LatencyTable>, ApiError> {
    let entries = state.store.latency_table(&caller.account_id).await.map_err(routing_error)?;
    Ok(axum::Json(LatencyTable::from(entries)))
}

/// Replace the account's latency table.
#[utoipa::path(
    put, path = "/v1/latency-table", tag = "routing",
    request_body = LatencyTable,
    responses((status = 200, description = "The stored table", body = LatencyTable)),
)]
pub async fn put_latency_table(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<LatencyTable>,
) -> Result<axum::Json<LatencyTable>, ApiError> {
    caller.require_all_zones("change the latency table")?;
    let stored =
        state.store.set_latency_table(&caller.account_id, &body.into_store()).await.map_err(routing_error)?;
    Ok(axum::Json(LatencyTable::from(stored)))
}

/// Every region the account can use: the built-in table with the account's
/// overrides, and the regions it added.
#[utoipa::path(
    get, path = "/v1/regions", tag = "routing",
    responses((status = 200, description = "The regions, by code", body = RegionList)),
)]
pub async fn list_regions(
    State(state): State<ApiState>,
    caller: Caller,
) -> Result<axum::Json<RegionList>, ApiError> {
    let regions = state.store.account_regions(&caller.account_id).await.map_err(routing_error)?;
    Ok(axum::Json(RegionList { items: regions.into_iter().map(Region::from).collect(), next_cursor: None }))
}

fn region_code(code: &str) -> Result<(), ApiError> {
    if is_region_code(code) {
        Ok(())
    } else {
        Err(ApiError::invalid(
            "code",
            format!("{code:?} is not a region code like us-east-1 or eu-central-1"),
        ))
    }
}

/// Add a region for the account, or override a built-in region's coordinates.
#[utoipa::path(
    put, path = "/v1/regions/{code}", tag = "routing",
    params(("code" = String, Path, description = "Region code, like `us-east-1`")),
    request_body = Coordinates,
    responses((status = 200, description = "The region as the account sees it now", body = Region)),
)]
pub async fn put_region(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(code): IdPath,
    ApiJson(body): ApiJson<Coordinates>,
) -> Result<axum::Json<Region>, ApiError> {
    region_code(&code)?;
    caller.require_all_zones("change regions")?;
    let coordinates = CoreCoordinates { latitude: body.latitude, longitude: body.longitude };
    let stored =
        state.store.put_region(&caller.account_id, &code, coordinates).await.map_err(routing_error)?;
    Ok(axum::Json(Region::from(stored)))
}

/// Remove the account's own region or override (a built-in region gets its
/// built-in coordinates back).
#[utoipa::path(
    delete, path = "/v1/regions/{code}", tag = "routing",
    params(("code" = String, Path, description = "Region code")),
    responses(
        (status = 204, description = "Removed"),
        (status = 404, description = "The account has no region or override of that code", body = ErrorBody),
        (status = 409, description = "A region that is not built in is still used by the latency table or a record set", body = ErrorBody),
    ),
)]
pub async fn delete_region(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(code): IdPath,
) -> Result<StatusCode, ApiError> {
    caller.require_all_zones("change regions")?;
    state.store.delete_region(&caller.account_id, &code).await.map_err(|e| match e {
        StoreError::NotFound(_) => ApiError::not_found(
            "NoSuchRegion",
            format!("this account has no region or override {code} (built-in regions cannot be deleted)"),
        ),
        other => routing_error(other),
    })?;
    Ok(StatusCode::NO_CONTENT)
}
