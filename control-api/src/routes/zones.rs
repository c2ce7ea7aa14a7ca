//! Hosted zones: create (SOA and NS made, name servers in the answer), list,
//! get, and delete (refused while the zone holds more than its SOA and NS).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use signpost_store::StoreError;

use super::{PageParams, caller_zone, encode_cursor, no_such_zone};
use crate::ApiState;
use crate::auth::Caller;
use crate::checks::check_comment;
use crate::dto::{Change, CreateZone, Zone, ZoneList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};

fn already_exists(name: &str) -> ApiError {
    ApiError::conflict(
        "HostedZoneAlreadyExists",
        format!("{name} (or a zone that overlaps it) is already hosted here; one name has one owner"),
    )
    .with_field("name")
}

/// Create a hosted zone.
#[utoipa::path(
    post, path = "/v1/zones", tag = "zones",
    request_body = CreateZone,
    responses(
        (status = 201, description = "The zone, its name servers and the change that created it", body = Zone),
        (status = 400, description = "Not a name that may be hosted (the root, a top-level name or a public suffix), or the account's zone quota is reached (`LimitExceeded`)", body = ErrorBody),
        (status = 409, description = "The name (or an overlapping one) is hosted by another owner", body = ErrorBody),
    ),
)]
pub async fn create_zone(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateZone>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_all_zones("create hosted zones")?;
    check_comment(body.comment.as_deref(), "comment")?;
    let store = &state.store;
    // The store checks the name (root, public suffixes), the overlap with
    // other accounts' zones and the quota, in the creating transaction.
    let zone = store
        .create_zone(&caller.account_id, &body.name, body.comment.as_deref(), &state.config.zone_defaults)
        .await
        .map_err(|e| match e {
            StoreError::Conflict { .. } => already_exists(
                &signpost_core::names::canonical_text(&body.name, "name")
                    .unwrap_or_else(|_| body.name.clone()),
            ),
            other => ApiError::from_store(other, "NoSuchHostedZone"),
        })?;
    let details = store
        .zone_details(&caller.account_id, &zone.id)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    let change = store.zone_creation_change(&zone.id).await.ok().map(Change::from);
    let mut out = Zone::from(details);
    out.change = change;
    Ok((StatusCode::CREATED, axum::Json(out)))
}

/// List the account's hosted zones, by name.
#[utoipa::path(
    get, path = "/v1/zones", tag = "zones",
    params(PageParams),
    responses((status = 200, description = "A page of zones", body = ZoneList)),
)]
pub async fn list_zones(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<ZoneList>, ApiError> {
    let limit = page.limit(100, 100)?;
    let after: Option<String> = page.cursor()?;
    let found = state
        .store
        .list_zones(&caller.account_id, caller.zone_ids.as_deref(), after.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    let next_cursor = if found.more { found.items.last().and_then(|z| encode_cursor(&z.name)) } else { None };
    Ok(axum::Json(ZoneList { items: found.items.into_iter().map(Zone::from).collect(), next_cursor }))
}

/// Get a hosted zone.
#[utoipa::path(
    get, path = "/v1/zones/{id}", tag = "zones",
    params(("id" = String, Path, description = "Zone id")),
    responses(
        (status = 200, description = "The zone", body = Zone),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
    ),
)]
pub async fn get_zone(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Zone>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let details = state.store.zone_details(&caller.account_id, &zone.id).await.map_err(|e| match e {
        StoreError::NotFound(_) => no_such_zone(&id),
        other => ApiError::from_store(other, "NoSuchHostedZone"),
    })?;
    Ok(axum::Json(Zone::from(details)))
}

/// Delete a hosted zone that holds nothing but its SOA and NS.
#[utoipa::path(
    delete, path = "/v1/zones/{id}", tag = "zones",
    params(("id" = String, Path, description = "Zone id")),
    responses(
        (status = 200, description = "The change that deleted the zone", body = Change),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
        (status = 409, description = "The zone holds record sets other than its SOA and NS", body = ErrorBody),
    ),
)]
pub async fn delete_zone(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Change>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let info = state.store.delete_empty_zone(&zone.id, &caller.account_id).await.map_err(|e| match e {
        StoreError::Conflict { message, .. } => ApiError::conflict("HostedZoneNotEmpty", message),
        StoreError::NotFound(_) => no_such_zone(&id),
        other => ApiError::from_store(other, "NoSuchHostedZone"),
    })?;
    Ok(axum::Json(Change::from(info)))
}
