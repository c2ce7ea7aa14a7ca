//! API keys: more keys for the account, read-only or limited to zones;
//! bearer keys for /v1 or AWS access key pairs (`"kind": "aws"`) for Route
//! 53's API. The secret is shown once, in the answer to the create.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use signpost_store::api::{KeyKind, KeySpec, NewKeySecret};

use super::{PageParams, encode_cursor};
use crate::ApiState;
use crate::auth::Caller;
use crate::checks::is_id;
use crate::dto::{CreateKey, CreatedKey, Key, KeyList};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiJson, ApiQuery, IdPath};

fn no_such_key(id: &str) -> ApiError {
    ApiError::not_found("NoSuchKey", format!("no API key {id}"))
}

/// 403 when a zone-limited caller reaches beyond its zones.
fn within_caller_zones(caller: &Caller, zone_ids: Option<&[String]>) -> Result<(), ApiError> {
    let Some(own) = &caller.zone_ids else { return Ok(()) };
    match zone_ids {
        Some(ids) if ids.iter().all(|z| own.contains(z)) => Ok(()),
        _ => Err(ApiError::forbidden(
            "this API key is limited to some zones; it can only manage keys limited to those zones",
        )),
    }
}

/// Make an API key.
#[utoipa::path(
    post, path = "/v1/keys", tag = "keys",
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key, with its secret (shown this once): `apiKey` for a bearer key, `accessKeyId` and `secretAccessKey` for an AWS key pair", body = CreatedKey),
    ),
)]
pub async fn create_key(
    State(state): State<ApiState>,
    caller: Caller,
    ApiJson(body): ApiJson<CreateKey>,
) -> Result<impl IntoResponse, ApiError> {
    within_caller_zones(&caller, body.zone_ids.as_deref())?;
    let spec = KeySpec {
        kind: body.kind.map_or(KeyKind::Bearer, KeyKind::from),
        name: body.name,
        read_only: body.read_only.unwrap_or(false),
        zone_ids: body.zone_ids,
    };
    let made = state
        .store
        .create_api_key(&caller.account_id, &spec)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    let (api_key, secret_access_key) = match &made.secret {
        NewKeySecret::Bearer(secret) => (Some(secret.expose().to_owned()), None),
        NewKeySecret::Aws(secret) => (None, Some(secret.expose().to_owned())),
    };
    let key = CreatedKey {
        id: made.info.id,
        kind: made.info.kind.into(),
        api_key,
        access_key_id: made.info.access_key_id,
        secret_access_key,
        name: made.info.name,
        read_only: made.info.read_only,
        zone_ids: made.info.zone_ids,
        created_at: made.info.created_at,
    };
    Ok((StatusCode::CREATED, axum::Json(key)))
}

/// List the account's API keys (never their secrets).
#[utoipa::path(
    get, path = "/v1/keys", tag = "keys",
    params(PageParams),
    responses((status = 200, description = "A page of keys", body = KeyList)),
)]
pub async fn list_keys(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(page): ApiQuery<PageParams>,
) -> Result<axum::Json<KeyList>, ApiError> {
    let limit = page.limit(100, 100)?;
    let after: Option<String> = page.cursor()?;
    let found = state
        .store
        .list_api_keys(&caller.account_id, after.as_deref(), limit)
        .await
        .map_err(|e| ApiError::from_store(e, "NoSuchKey"))?;
    let next_cursor = if found.more { found.items.last().and_then(|k| encode_cursor(&k.id)) } else { None };
    Ok(axum::Json(KeyList { items: found.items.into_iter().map(Key::from).collect(), next_cursor }))
}

/// Get one API key (without its secret).
#[utoipa::path(
    get, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key", body = Key),
        (status = 404, description = "No such key in this account", body = ErrorBody),
    ),
)]
pub async fn get_key(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<axum::Json<Key>, ApiError> {
    if !is_id(&id, 'K') {
        return Err(no_such_key(&id));
    }
    let info = state.store.api_key_info(&caller.account_id, &id).await.map_err(|e| match e {
        signpost_store::StoreError::NotFound(_) => no_such_key(&id),
        other => ApiError::from_store(other, "NoSuchKey"),
    })?;
    Ok(axum::Json(Key::from(info)))
}

/// Delete an API key; it stops working at once. A key cannot delete itself.
#[utoipa::path(
    delete, path = "/v1/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No such key in this account", body = ErrorBody),
        (status = 409, description = "A key cannot delete itself", body = ErrorBody),
    ),
)]
pub async fn delete_key(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
) -> Result<StatusCode, ApiError> {
    if !is_id(&id, 'K') {
        return Err(no_such_key(&id));
    }
    let to_map = |e| match e {
        signpost_store::StoreError::NotFound(_) => no_such_key(&id),
        other => ApiError::from_store(other, "NoSuchKey"),
    };
    if id == caller.key_id {
        return Err(ApiError::conflict(
            "KeyInUse",
            "a key cannot delete itself (the account would be locked out); delete it with another key",
        ));
    }
    if caller.zone_ids.is_some() {
        let target = state.store.api_key_info(&caller.account_id, &id).await.map_err(to_map)?;
        within_caller_zones(&caller, target.zone_ids.as_deref())?;
    }
    state.store.delete_api_key(&caller.account_id, &id).await.map_err(to_map)?;
    Ok(StatusCode::NO_CONTENT)
}
