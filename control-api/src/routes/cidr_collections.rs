//! CIDR collections for IP-based routing: create, list, get, replace the
//! content, delete (refused while a record set uses the collection, and a
//! replace that drops a location in use). Every write reaches the DNS
//! servers through a `ROUTING` change. Writes need a key for every zone of
//! the account (a collection can steer any zone's answers).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use signpost_store::StoreError;
use signpost_store::routing_api::{CidrCollectionSpec, is_collection_id};

use super::{PageParams, encode_cursor};
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{CidrCollection, CidrCollectionBody, CidrCollectionList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};

fn no_such_collection(id: &str) -> ApiError {
    ApiError::not_found("NoSuchCidrCollection", format!("no CIDR collection {id}"))
}

fn collection_error(id: &str) -> impl Fn(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::NotFound(_) => no_such_collection(id),
        StoreError::Conflict { field, message } if field == "name" => {
            ApiError::conflict("CidrCollectionAlreadyExists", message).with_field(field)
        }
        StoreError::Conflict { field, message } => {
            ApiError::conflict("CidrCollectionInUse", message).with_field(field)
        }
        other => ApiError::from_store(other, "NoSuchCidrCollection"),
    }
}

fn collection_id(id: &str) -> Result<(), ApiError> {
    if is_collection_id(id) { Ok(()) } else { Err(no_such_collection(id)) }
}

/// Create a CIDR collection.
#[utoipa::path(
    post, path = "/v1/cidr-collections", tag = "routing",
    request_body = CidrCollectionBody,
    responses(
        (status = 201, description = "The collection", body = CidrCollection),
        (status = 409, description = "The account has a collection of that name", body = ErrorBody),
    ),
)]
pub async fn create_collection(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CidrCollectionBody>,
) -> Result<impl IntoResponse, ApiError> {
    caller.require_all_zones("change CIDR collections")?;
    let spec = CidrCollectionSpec::from(body);
    let made =
        state.store.create_cidr_collection(&caller.account_id, &spec).await.map_err(collection_error(""))?;
    Ok((StatusCode::CREATED, axum::Json(CidrCollection::from(made))))
}

/// List the account's CIDR collections, by name.
#[utoipa::path(
    get, path = "/v1/cidr-collections", tag = "routing",
    params(PageParams),
    responses((status = 200, description = "A page of collections", body = CidrCollectionList)),
)]
pub async fn list_collections(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<CidrCollectionList>, ApiError> {
    let limit = page.limit(100, 100)?;
    let after: Option<String> = page.cursor()?;
    let found = state
        .store
        .list_cidr_collections(&caller.account_id, after.as_deref(), limit)
        .await
        .map_err(collection_error(""))?;
    let next_cursor = if found.more { found.items.last().and_then(|c| encode_cursor(&c.name)) } else { None };
    Ok(axum::Json(CidrCollectionList {
        items: found.items.into_iter().map(CidrCollection::from).collect(),
        next_cursor,
    }))
}

/// Get a CIDR collection.
#[utoipa::path(
    get, path = "/v1/cidr-collections/{id}", tag = "routing",
    params(("id" = String, Path, description = "Collection id")),
    responses(
        (status = 200, description = "The collection", body = CidrCollection),
        (status = 404, description = "No such collection in this account", body = ErrorBody),
    ),
)]
pub async fn get_collection(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<CidrCollection>, ApiError> {
    collection_id(&id)?;
    let found = state.store.cidr_collection(&caller.account_id, &id).await.map_err(collection_error(&id))?;
    Ok(axum::Json(CidrCollection::from(found)))
}

/// Replace a CIDR collection's name and locations.
#[utoipa::path(
    put, path = "/v1/cidr-collections/{id}", tag = "routing",
    params(("id" = String, Path, description = "Collection id")),
    request_body = CidrCollectionBody,
    responses(
        (status = 200, description = "The collection as it is now", body = CidrCollection),
        (status = 404, description = "No such collection in this account", body = ErrorBody),
        (status = 409, description = "A record set uses a location the new content drops, or the name is taken", body = ErrorBody),
    ),
)]
pub async fn replace_collection(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<CidrCollectionBody>,
) -> Result<axum::Json<CidrCollection>, ApiError> {
    collection_id(&id)?;
    caller.require_all_zones("change CIDR collections")?;
    let spec = CidrCollectionSpec::from(body);
    let stored = state
        .store
        .replace_cidr_collection(&caller.account_id, &id, &spec)
        .await
        .map_err(collection_error(&id))?;
    Ok(axum::Json(CidrCollection::from(stored)))
}

/// Delete a CIDR collection no record set uses.
#[utoipa::path(
    delete, path = "/v1/cidr-collections/{id}", tag = "routing",
    params(("id" = String, Path, description = "Collection id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such collection in this account", body = ErrorBody),
        (status = 409, description = "A record set uses the collection", body = ErrorBody),
    ),
)]
pub async fn delete_collection(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    collection_id(&id)?;
    caller.require_all_zones("change CIDR collections")?;
    state.store.delete_cidr_collection(&caller.account_id, &id).await.map_err(collection_error(&id))?;
    Ok(StatusCode::NO_CONTENT)
}
