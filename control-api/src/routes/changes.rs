//! Change batches (CREATE / UPSERT / DELETE, all or nothing) and their
//! propagation state (PENDING until every live DNS server applied them,
//! then INSYNC).

use axum::extract::State;
use signpost_core::model::RecordSet;
use signpost_core::validate::validate_record_set;
use signpost_core::{HostedZone, ValidationError};
use signpost_store::{ChangeAction, MAX_BATCH_RECORDS, StoreError};

use super::caller_zone;
use crate::ApiState;
use crate::auth::Caller;
use crate::checks::{BatchItem, check_comment, check_groups, check_rrset_fields, inside_zone, is_id};
use crate::dto::{Change, ChangeBatch};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, IdPath};

/// Apply a batch of changes to a zone's record sets atomically.
#[utoipa::path(
    post, path = "/v1/zones/{id}/changes", tag = "record sets",
    params(("id" = String, Path, description = "Zone id")),
    request_body = ChangeBatch,
    responses(
        (status = 200, description = "The committed change (PENDING, then INSYNC)", body = Change),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
        (status = 409, description = "The batch conflicts with the zone: CREATE of an existing set, DELETE of a missing or different one", body = ErrorBody),
    ),
)]
pub async fn change_rrsets(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(batch): ApiJson<ChangeBatch>,
) -> Result<axum::Json<Change>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    check_comment(batch.comment.as_deref(), "comment")?;
    if batch.changes.is_empty() {
        return Err(ApiError::invalid("changes", "a batch needs at least one change"));
    }
    let records: usize = batch.changes.iter().map(|c| c.rrset.records.len().max(1)).sum();
    if records > MAX_BATCH_RECORDS {
        return Err(ApiError::invalid(
            "changes",
            format!("{records} records in one batch; the limit is {MAX_BATCH_RECORDS}"),
        ));
    }
    let apex = signpost_core::names::parse_name(&zone.name, "zone")?;
    let mut changes = Vec::with_capacity(batch.changes.len());
    let mut items = Vec::with_capacity(batch.changes.len());
    for (index, change) in batch.changes.into_iter().enumerate() {
        let field = format!("changes[{index}].rrset");
        let rrset = change.rrset.into_core().map_err(|e| e.within(&field))?;
        let action = ChangeAction::from(change.action);
        if action != ChangeAction::Delete {
            check_rrset_fields(&rrset).map_err(|e| e.within(&field))?;
        }
        let parsed = validate_record_set(&apex, &rrset).map_err(|e| e.within(&field))?;
        items.push(BatchItem { index, action, rrset: parsed.canonical });
        changes.push(signpost_store::Change { action, rrset });
    }
    check_references(&state, &caller, &zone, &items).await?;
    let zone_name = zone.name.clone();
    let check = move |_: &HostedZone, all: &[RecordSet]| -> signpost_store::Result<()> {
        check_groups(&zone_name, &items, all).map_err(StoreError::from)
    };
    let info = state
        .store
        .apply_changes_checked(&zone.id, Some(&caller.account_id), &changes, batch.comment.as_deref(), &check)
        .await
        .map_err(batch_error)?;
    Ok(axum::Json(Change::from(info)))
}

/// The client's view of a store error while applying a batch.
fn batch_error(e: StoreError) -> ApiError {
    match e {
        StoreError::NotFound(what) if what.starts_with("hosted zone") => {
            ApiError::not_found("NoSuchHostedZone", format!("no {what}"))
        }
        StoreError::NotFound(what) => {
            // "resource record set [name=…, type=…] (changes[3])"
            let field = what
                .rfind("(changes[")
                .and_then(|start| what[start + 1..].strip_suffix(')').map(|f| format!("{f}.rrset")));
            let described = what.split(" (changes[").next().unwrap_or(&what).to_string();
            let e = ApiError::conflict(
                "InvalidChangeBatch",
                format!("Tried to delete {described} but it was not found"),
            );
            match field {
                Some(f) => e.with_field(f),
                None => e,
            }
        }
        StoreError::Conflict { field, message } => {
            ApiError::conflict("InvalidChangeBatch", message).with_field(field)
        }
        other => ApiError::from_store(other, "NoSuchHostedZone"),
    }
}

/// Checks what the batch refers to outside the zone's record sets: health
/// checks and CIDR collections of the account, and alias targets in its
/// other zones.
async fn check_references(
    state: &ApiState,
    caller: &Caller,
    zone: &HostedZone,
    items: &[BatchItem],
) -> Result<(), ApiError> {
    let store = &state.store;
    let account = caller.account_id.as_str();
    let map = |e| ApiError::from_store(e, "NoSuchHostedZone");
    let writes = || items.iter().filter(|i| i.action != ChangeAction::Delete);
    let wanted: Vec<String> = writes().filter_map(|i| i.rrset.health_check_id.clone()).collect();
    if !wanted.is_empty() {
        let owned = store.owned_health_checks(account, &wanted).await.map_err(map)?;
        for item in writes() {
            if let Some(hc) = &item.rrset.health_check_id
                && !owned.contains(hc)
            {
                return Err(ApiError::invalid(
                    format!("changes[{}].rrset.healthCheckId", item.index),
                    format!("no health check {hc} in this account"),
                ));
            }
        }
    }
    for item in writes() {
        let field = |rest: &str| format!("changes[{}].rrset.{rest}", item.index);
        if let Some(cidr) = &item.rrset.cidr_routing {
            match store.cidr_collection_locations(account, &cidr.collection_id).await.map_err(map)? {
                None => {
                    return Err(ValidationError::new(
                        field("cidrRouting.collectionId"),
                        format!("no CIDR collection {} in this account", cidr.collection_id),
                    )
                    .into());
                }
                Some(locations) if cidr.location_name != "*" && !locations.contains(&cidr.location_name) => {
                    return Err(ValidationError::new(
                        field("cidrRouting.locationName"),
                        format!(
                            "the CIDR collection {} has no location {}",
                            cidr.collection_id, cidr.location_name
                        ),
                    )
                    .into());
                }
                Some(_) => {}
            }
        }
        if let Some(alias) = &item.rrset.alias_target
            && !inside_zone(&alias.name, &zone.name)
            && !store.rrset_exists_in_account(account, &alias.name, &item.rrset.rtype).await.map_err(map)?
        {
            return Err(ValidationError::new(
                field("aliasTarget.name"),
                format!(
                    "the alias target {} has no {} record set in a hosted zone of this account",
                    alias.name, item.rrset.rtype
                ),
            )
            .into());
        }
    }
    Ok(())
}

/// Get a change and its propagation state.
#[utoipa::path(
    get, path = "/v1/changes/{id}", tag = "record sets",
    params(("id" = String, Path, description = "Change id")),
    responses(
        (status = 200, description = "The change", body = Change),
        (status = 404, description = "No such change in this account", body = ErrorBody),
    ),
)]
pub async fn get_change(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Change>, ApiError> {
    let missing = || ApiError::not_found("NoSuchChange", format!("no change {id}"));
    if !is_id(&id, 'C') {
        return Err(missing());
    }
    let to_api = |e| match e {
        StoreError::NotFound(_) => missing(),
        other => ApiError::from_store(other, "NoSuchChange"),
    };
    let zone = state.store.change_zone(&id, &caller.account_id).await.map_err(to_api)?;
    if caller.zone_ids.is_some() {
        match &zone {
            Some(zone_id) => caller.require_zone(zone_id)?,
            None => return Err(ApiError::forbidden("this API key is limited to some zones")),
        }
    }
    let info = state.store.change(&id, Some(&caller.account_id)).await.map_err(to_api)?;
    Ok(axum::Json(Change::from(info)))
}
