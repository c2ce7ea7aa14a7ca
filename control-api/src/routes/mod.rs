//! The /v1 handlers, one module per resource, and what they share: zone
//! ownership, page parameters and opaque cursors.

pub mod changes;
pub mod cidr_collections;
pub mod health_checks;
pub mod keys;
pub mod regions;
pub mod rrsets;
pub mod system;
pub mod test_dns;
pub mod usage;
pub mod zonefile;
pub mod zones;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use signpost_core::HostedZone;
use utoipa::IntoParams;

use crate::ApiState;
use crate::auth::Caller;
use crate::checks::is_id;
use crate::error::ApiError;

/// `limit` and `cursor` of a listing.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page (1 to 100; record sets: 1 to 300).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 300)]
    pub limit: Option<String>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size: `default` when absent, 400 outside 1..=`max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        let Some(text) = &self.limit else { return Ok(default) };
        match text.trim().parse::<usize>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::invalid("limit", format!("limit must be an integer from 1 to {max}"))),
        }
    }

    /// The decoded cursor, if one was given.
    pub fn cursor<T: DeserializeOwned>(&self) -> Result<Option<T>, ApiError> {
        self.cursor.as_deref().filter(|c| !c.is_empty()).map(decode_cursor).transpose()
    }
}

/// An opaque cursor: hex of the JSON of the last item's key.
pub fn encode_cursor<T: serde::Serialize>(key: &T) -> Option<String> {
    serde_json::to_vec(key).ok().map(hex::encode)
}

fn decode_cursor<T: DeserializeOwned>(text: &str) -> Result<T, ApiError> {
    let bad = || ApiError::invalid("cursor", "not a cursor this listing returned");
    let bytes = hex::decode(text).map_err(|_| bad())?;
    serde_json::from_slice(&bytes).map_err(|_| bad())
}

/// 404 for a zone the caller's account does not have.
pub fn no_such_zone(id: &str) -> ApiError {
    ApiError::not_found("NoSuchHostedZone", format!("no hosted zone {id}"))
}

/// The zone `id` if it is the caller's account's (else 404, like a missing
/// one) and the key may use it (else 403).
pub async fn caller_zone(state: &ApiState, caller: &Caller, id: &str) -> Result<HostedZone, ApiError> {
    if !is_id(id, 'Z') {
        return Err(no_such_zone(id));
    }
    let zone = state.store.zone_by_id(id).await.map_err(|e| ApiError::from_store(e, "NoSuchHostedZone"))?;
    match zone {
        Some(zone) if zone.account_id == caller.account_id => {
            caller.require_zone(&zone.id)?;
            Ok(zone)
        }
        _ => Err(no_such_zone(id)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_400() {
        let c = encode_cursor(&("www.example.com.", "A", None::<String>)).unwrap();
        let p = PageParams { limit: None, cursor: Some(c) };
        let back: Option<(String, String, Option<String>)> = p.cursor().unwrap();
        assert_eq!(back.unwrap().0, "www.example.com.");
        let p = PageParams { limit: Some("0".into()), cursor: Some("zz".into()) };
        assert_eq!(p.cursor::<String>().unwrap_err().field.as_deref(), Some("cursor"));
        assert_eq!(p.limit(100, 100).unwrap_err().field.as_deref(), Some("limit"));
        assert_eq!(PageParams::default().limit(100, 300).unwrap(), 100);
    }
}
