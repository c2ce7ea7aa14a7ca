//! Zone files: export a zone as RFC 1035 text, and import one as a single
//! atomic change that makes the zone equal to the file.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use signpost_core::RecordSet;
use signpost_core::zonefile::{parse_zone_file, render_zone_file};

use super::{caller_zone, no_such_zone};
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::Change;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IdPath, TextBody};

/// Export a zone as an RFC 1035 zone file.
#[utoipa::path(
    get, path = "/v1/zones/{id}/zonefile", tag = "zones",
    params(("id" = String, Path, description = "Zone id")),
    responses(
        (status = 200, description = "The zone file (record sets a zone file cannot express are comments)", body = String, content_type = "text/plain"),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
    ),
)]
pub async fn export_zone(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<impl IntoResponse, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let (zone, rrsets) = state
        .store
        .load_zone(&zone.id)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?
        .ok_or_else(|| no_such_zone(&id))?;
    let origin = signpost_core::names::parse_name(&zone.name, "zone")?;
    let serial = u32::try_from(zone.serial).unwrap_or(u32::MAX);
    let text = render_zone_file(&origin, serial, &rrsets);
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text))
}

/// Import a zone file: the zone becomes equal to the file in one change
/// (its SOA and NS stay when the file has none).
#[utoipa::path(
    post, path = "/v1/zones/{id}/zonefile", tag = "zones",
    params(("id" = String, Path, description = "Zone id")),
    request_body(content = String, content_type = "text/plain", description = "An RFC 1035 zone file for this zone"),
    responses(
        (status = 200, description = "The change that imported the file", body = Change),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
    ),
)]
pub async fn import_zone(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    TextBody(text): TextBody,
) -> Result<axum::Json<Change>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let apex = signpost_core::names::parse_name(&zone.name, "zone")?;
    let parsed = parse_zone_file(&text, Some(&apex))?;
    if parsed.origin != apex {
        return Err(ApiError::invalid(
            "zonefile",
            format!("the file's origin {} is not the zone {}", parsed.origin, zone.name),
        ));
    }
    let mut rrsets = parsed.rrsets;
    let current =
        state.store.zone_rrsets(&zone.id).await.map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    for rtype in ["SOA", "NS"] {
        let has = |sets: &[RecordSet]| sets.iter().any(|r| r.name == zone.name && r.rtype == rtype);
        if !has(&rrsets)
            && let Some(existing) = current.iter().find(|r| r.name == zone.name && r.rtype == rtype)
        {
            rrsets.push(existing.clone());
        }
    }
    let info = state
        .store
        .replace_zone_contents(&zone.id, Some(&caller.account_id), &rrsets, Some("zone import"))
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    Ok(axum::Json(Change::from(info)))
}
