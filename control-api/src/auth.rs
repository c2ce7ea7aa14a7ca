//! Authentication and rate limits: `Authorization: Bearer <key>` on every
//! /v1 route (401 without a valid key); a token bucket per key and one per
//! account (429 with Retry-After), so minting keys does not multiply the
//! limit; a bucket per client address that requests without a valid key
//! drain, checked before the key is looked up, so unknown keys cost no
//! database lookup past the limit; and read-only keys refused on every
//! method that is not a read (403). Handlers get the [`Caller`].

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

impl RateLimit {
    /// Requests without a valid key per client address: 20/s, burst 100.
    pub const ADDRESS_DEFAULT: RateLimit = RateLimit {
        per_second: NonZeroU32::MIN.saturating_add(19),
        burst: NonZeroU32::MIN.saturating_add(99),
    };

    /// Twice the rate and burst (the default account limit: a second key
    /// helps a little, the fortieth does not).
    pub fn doubled(self) -> RateLimit {
        RateLimit {
            per_second: self.per_second.saturating_mul(NonZeroU32::MIN.saturating_add(1)),
            burst: self.burst.saturating_mul(NonZeroU32::MIN.saturating_add(1)),
        }
    }
}

impl Default for RateLimit {
    /// DESIGN.md's default: 10 requests/s with a burst of 20.
    fn default() -> Self {
        RateLimit { per_second: NonZeroU32::MIN.saturating_add(9), burst: NonZeroU32::MIN.saturating_add(19) }
    }
}

/// Token buckets keyed by an id (API key ids, account ids). The table holds
/// only ids that authenticated, so it is bounded by the number of keys and
/// accounts.
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

    /// Takes one request from the id's bucket, or says how long to wait.
    pub fn check(&self, key_id: &str) -> Result<(), ApiError> {
        self.limiter
            .check_key(&key_id.to_string())
            .map_err(|not_until| ApiError::throttled(not_until.wait_time_from(self.clock.now())))
    }
}

/// The API's rate limiters.
pub struct Limiters {
    /// One bucket per API key.
    pub keys: KeyLimiter,
    /// One bucket per account, shared by its keys.
    pub accounts: KeyLimiter,
    /// Requests without a valid key, per client address.
    pub addresses: AddressLimiter,
}

/// Token buckets per client address (IPv4 address, IPv6 /64) in a table of
/// fixed size: addresses hash (with a per-process random key) to one of
/// the slots, so spoofed or rotating sources cannot grow it; two addresses
/// that share a slot share a bucket.
pub struct AddressLimiter {
    slots: Box<[Mutex<Bucket>]>,
    hasher: RandomState,
    per_second: f64,
    burst: f64,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Option<Instant>,
}

/// Slots of the address table.
pub const ADDRESS_SLOTS: usize = 4096;

impl AddressLimiter {
    /// A table of [`ADDRESS_SLOTS`] buckets with this limit.
    pub fn new(limit: RateLimit) -> Self {
        let slots = (0..ADDRESS_SLOTS).map(|_| Mutex::new(Bucket { tokens: 0.0, updated: None })).collect();
        AddressLimiter {
            slots,
            hasher: RandomState::new(),
            per_second: f64::from(limit.per_second.get()),
            burst: f64::from(limit.burst.get()),
        }
    }

    fn slot(&self, ip: IpAddr) -> &Mutex<Bucket> {
        let key: u128 = match ip.to_canonical() {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            // One /64 is one subscriber.
            IpAddr::V6(v6) => (u128::from(v6) >> 64) | (1 << 127),
        };
        &self.slots[(self.hasher.hash_one(key) as usize) % self.slots.len()]
    }

    /// Refills the bucket to `now`; returns the time until one token is there.
    fn refill(&self, bucket: &mut Bucket, now: Instant) -> Duration {
        let elapsed =
            bucket.updated.map_or(f64::INFINITY, |t| now.saturating_duration_since(t).as_secs_f64());
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = Some(now);
        if bucket.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - bucket.tokens) / self.per_second)
        }
    }

    /// 429 while the address has no token left (takes none).
    pub fn ensure(&self, ip: IpAddr) -> Result<(), ApiError> {
        let mut bucket = self.slot(ip).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match self.refill(&mut bucket, Instant::now()) {
            Duration::ZERO => Ok(()),
            wait => Err(ApiError::throttled(wait)),
        }
    }

    /// Takes one token (a request without a valid key).
    pub fn take(&self, ip: IpAddr) {
        let mut bucket = self.slot(ip).lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.refill(&mut bucket, Instant::now());
        bucket.tokens = (bucket.tokens - 1.0).max(0.0);
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

/// The client's address (the TCP peer; a proxy in front is one client).
fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

/// Middleware of the /v1 routes: refuses an address that spent its
/// allowance of requests without a valid key (before any lookup),
/// authenticates, rate-limits per key and per account, refuses writes by
/// read-only keys, and hands the [`Caller`] to the handler.
pub async fn authenticate(State(state): State<ApiState>, mut req: Request, next: Next) -> Response {
    let addresses = state.limiter.as_ref().map(|l| &l.addresses).zip(client_ip(&req));
    if let Some((limiter, ip)) = addresses
        && let Err(e) = limiter.ensure(ip)
    {
        return e.into_response();
    }
    let read = is_read(req.method());
    let found = match bearer_token(&req) {
        Ok(token) => {
            let token = token.to_string();
            caller(&state, &token, read).await
        }
        Err(e) => Err(e),
    };
    match found {
        Ok(caller) => {
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            if e.status == axum::http::StatusCode::UNAUTHORIZED
                && let Some((limiter, ip)) = addresses
            {
                limiter.take(ip);
            }
            e.into_response()
        }
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
        limiter.keys.check(&key.id)?;
        limiter.accounts.check(&key.account_id)?;
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
    fn addresses_are_throttled_once_their_allowance_is_spent() {
        let limiter = AddressLimiter::new(RateLimit {
            per_second: NonZeroU32::MIN,
            burst: NonZeroU32::MIN.saturating_add(1),
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..2 {
            assert!(limiter.ensure(a).is_ok());
            limiter.take(a);
        }
        let e = limiter.ensure(a).unwrap_err();
        assert_eq!((e.status.as_u16(), e.retry_after), (429, Some(1)));
        // Another address has its own bucket (unless it hashes to the same slot).
        assert!(limiter.ensure(b).is_ok() || std::ptr::eq(limiter.slot(a), limiter.slot(b)));
        // One IPv6 /64 is one client; the IPv4-mapped form is the IPv4 address.
        let v6a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let v6b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(std::ptr::eq(limiter.slot(v6a), limiter.slot(v6b)));
        assert!(std::ptr::eq(limiter.slot(a), limiter.slot("::ffff:192.0.2.1".parse().unwrap())));
        assert_eq!(limiter.slots.len(), ADDRESS_SLOTS, "the table never grows");
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
