//! Authentication and per-key limits: `Authorization: Bearer <key>` on every
//! /v1 route (401 without a valid key), the key's rate limit (429 with
//! Retry-After), and read-only keys refused on every method that is not a
//! read (403). Handlers get the [`Caller`].

use std::num::NonZeroU32;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::ApiState;
use crate::error::ApiError;

/// Who is calling: the key that authenticated the request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The key's id.
    pub key_id: String,
    /// The key's account.
    pub account_id: String,
    /// Whether the key may only read.
    pub read_only: bool,
    /// The zones the key is limited to, if any.
    pub zone_ids: Option<Vec<String>>,
}

impl Caller {
    /// 403 unless the key may use `zone_id` (a zone of its account).
    pub fn require_zone(&self, zone_id: &str) -> Result<(), ApiError> {
        match &self.zone_ids {
            Some(ids) if !ids.iter().any(|z| z == zone_id) => Err(ApiError::forbidden(format!(
                "this API key is not allowed to use the hosted zone {zone_id}"
            ))),
            _ => Ok(()),
        }
    }

    /// 403 unless the key may use every zone of the account (to create zones).
    pub fn require_all_zones(&self, action: &str) -> Result<(), ApiError> {
        if self.zone_ids.is_some() {
            return Err(ApiError::forbidden(format!(
                "this API key is limited to some zones and may not {action}"
            )));
        }
        Ok(())
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("an API key is required"))
    }
}

/// A per-key rate limit: requests per second and burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Sustained requests per second.
    pub per_second: NonZeroU32,
    /// Requests allowed at once.
    pub burst: NonZeroU32,
}

impl Default for RateLimit {
    /// DESIGN.md's default: 10 requests/s with a burst of 20.
    fn default() -> Self {
        RateLimit { per_second: NonZeroU32::MIN.saturating_add(9), burst: NonZeroU32::MIN.saturating_add(19) }
    }
}

/// Token buckets keyed by API key id. The table holds only ids of keys that
/// authenticated, so it is bounded by the number of keys.
pub struct KeyLimiter {
    limiter: DefaultKeyedRateLimiter<String>,
    clock: DefaultClock,
}

impl KeyLimiter {
    /// A limiter with this limit for every key.
    pub fn new(limit: RateLimit) -> Self {
        let quota = Quota::per_second(limit.per_second).allow_burst(limit.burst);
        KeyLimiter { limiter: RateLimiter::keyed(quota), clock: DefaultClock::default() }
    }

    /// Takes one request from the key's bucket, or says how long to wait.
    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        self.limiter
            .check_key(&key_id.to_string())
            .map_err(|not_until| ApiError::throttled(not_until.wait_time_from(self.clock.now())))
    }
}

fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("send the API key as Authorization: Bearer <key>"))?;
    let text = value.to_str().map_err(|_| ApiError::unauthorized("the Authorization header is not text"))?;
    let (scheme, token) = text
        .trim()
        .split_once(' ')
        .ok_or_else(|| ApiError::unauthorized("send the API key as Authorization: Bearer <key>"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::unauthorized("send the API key as Authorization: Bearer <key>"));
    }
    Ok(token.trim())
}

/// Whether `token` has the shape of a Signpost key (`sp_` and 64 hex digits).
fn well_formed(token: &str) -> bool {
    token.len() == 67 && token.starts_with("sp_") && token[3..].bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_read(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Middleware of the /v1 routes: authenticates, rate-limits, refuses writes
/// by read-only keys, and hands the [`Caller`] to the handler.
pub async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let token = match bearer_token(&req) {
        Ok(token) => token.to_string(),
        Err(e) => return e.into_response(),
    };
    let read = is_read(req.method());
    match caller(&state, &token, read).await {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => e.into_response(),
    }
}

async fn caller(state: &ApiState, token: &str, read: bool) -> Result<Caller, ApiError> {
    if !well_formed(token) {
        return Err(ApiError::unauthorized("the API key is not valid"));
    }
    let key = state
        .store
        .api_key_account(token)
        .await
        .map_err(|e| ApiError::from_store(e, "Unauthorized"))?
        .ok_or_else(|| ApiError::unauthorized("the API key is not valid"))?;
    if let Some(limiter) = &state.limiter {
        limiter.check(&key.id)?;
    }
    if key.read_only && !read {
        return Err(ApiError::forbidden("this API key is read-only"));
    }
    Ok(Caller {
        key_id: key.id,
        account_id: key.account_id,
        read_only: key.read_only,
        zone_ids: key.zone_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked_for_shape_before_the_database() {
        assert!(well_formed(&format!("sp_{}", "ab".repeat(32))));
        assert!(!well_formed("sp_short"));
        assert!(!well_formed(&format!("xx_{}", "ab".repeat(32))));
        assert!(!well_formed(&format!("sp_{}", "zz".repeat(32))));
    }

    #[test]
    fn the_limiter_throttles_after_the_burst() {
        let limiter = KeyLimiter::new(RateLimit {
            per_second: NonZeroU32::MIN,
            burst: NonZeroU32::MIN.saturating_add(1),
        });
        assert!(limiter.check("K1").is_ok());
        assert!(limiter.check("K1").is_ok());
        let e = limiter.check("K1").unwrap_err();
        assert_eq!(e.retry_after, Some(1));
        assert!(limiter.check("K2").is_ok(), "keys have their own buckets");
    }

    #[test]
    fn zone_limits() {
        let caller = Caller {
            key_id: "K".into(),
            account_id: "A".into(),
            read_only: false,
            zone_ids: Some(vec!["Z1".into()]),
        };
        assert!(caller.require_zone("Z1").is_ok());
        assert_eq!(caller.require_zone("Z2").unwrap_err().status, axum::http::StatusCode::FORBIDDEN);
        assert!(caller.require_all_zones("create zones").is_err());
    }
}
