//! Record-set listing: Route 53's order (name with its labels reversed,
//! then type), exact `name`/`type` filters, cursor pagination.

use axum::extract::State;
use serde::Deserialize;
use signpost_core::zonefile::with_serial;
use signpost_store::api::{RrsetKey, RrsetQuery};
use utoipa::IntoParams;

use super::{PageParams, caller_zone, encode_cursor};
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{Rrset, RrsetList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, IdPath};

/// Filters and page of a record-set listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RrsetParams {
    /// Only record sets with this name.
    pub name: Option<String>,
    /// Only record sets of this type.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    pub rtype: Option<String>,
    /// Items per page (1 to 300, default 100).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 300)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// List a zone's record sets.
#[utoipa::path(
    get, path = "/v1/zones/{id}/rrsets", tag = "record sets",
    params(("id" = String, Path, description = "Zone id"), RrsetParams),
    responses(
        (status = 200, description = "A page of record sets in Route 53's order", body = RrsetList),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
    ),
)]
pub async fn list_rrsets(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<RrsetParams>,
) -> Result<axum::Json<RrsetList>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let page = PageParams { limit: params.limit, cursor: params.cursor };
    let limit = page.limit(100, 300)?;
    let after: Option<(String, String, Option<String>)> = page.cursor()?;
    let name = params.name.as_deref().map(|n| signpost_core::names::canonical_text(n, "name")).transpose()?;
    let rtype = params.rtype.as_deref().map(|t| signpost_core::rdata::parse_type(t, "type")).transpose()?;
    let query = RrsetQuery {
        name,
        rtype: rtype.map(|t| t.to_string()),
        after: after.map(|(name, rtype, set_identifier)| RrsetKey { name, rtype, set_identifier }),
        limit,
    };
    let found = state
        .store
        .list_rrsets(&zone.id, &query)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    let next_cursor = if found.more {
        found.items.last().map(RrsetKey::of).and_then(|k| encode_cursor(&(k.name, k.rtype, k.set_identifier)))
    } else {
        None
    };
    // The SOA's serial is the zone's, as in answers and exports.
    let serial = u32::try_from(zone.serial).unwrap_or(u32::MAX);
    let items = found
        .items
        .into_iter()
        .map(|mut r| {
            if r.rtype == "SOA" {
                r.records = r.records.iter().map(|t| with_serial(t, serial)).collect();
            }
            Rrset::from(r)
        })
        .collect();
    Ok(axum::Json(RrsetList { items, next_cursor }))
}
