//! signpost-api: the HTTP side of Signpost. The /v1 control API (API keys,
//! hosted zones, record sets and atomic change batches, zone files, health
//! checks, CIDR collections, the latency table and regions, TestDNSAnswer,
//! usage and cost) with bearer-key authentication, per-key rate limits and
//! JSON errors; its OpenAPI document; `/healthz` and Prometheus `/metrics`.
//!
//! Only this crate knows HTTP. Handlers live in [`routes`], one module per
//! resource; the store does the SQL, core the validation of names and data,
//! and [`checks`] the rules the API adds (routing fields, policy groups).

pub mod auth;
pub mod checks;
pub mod dto;
pub mod error;
pub mod extract;
pub mod geo;
pub mod metrics;
pub mod openapi;
pub mod pricing;
pub mod route53;
pub mod routes;
pub mod sigv4;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use signpost_core::geo::GeoLocator;
use signpost_core::usage::PriceTable;
use signpost_store::readiness::DatabaseState;
use signpost_store::{Store, ZoneDefaults};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use auth::RateLimit;
use auth::{AddressLimiter, KeyLimiter, Limiters, authenticate};
use error::ApiError;
use metrics::HttpMetrics;

/// DESIGN.md's bound on request bodies: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Settings of the API.
#[derive(Clone)]
pub struct ApiConfig {
    /// Largest request body (413 above).
    pub max_body_bytes: usize,
    /// Per-key rate limit; `None` turns every rate limit off.
    pub rate_limit: Option<RateLimit>,
    /// Per-account rate limit, shared by the account's keys (`None`: twice
    /// the per-key limit).
    pub account_rate_limit: Option<RateLimit>,
    /// Requests without a valid key allowed per client address (before
    /// any lookup of the key).
    pub address_rate_limit: RateLimit,
    /// Longest a request may take before it is answered 503.
    pub request_timeout: Duration,
    /// SOA and NS of zones created through the API.
    pub zone_defaults: ZoneDefaults,
    /// Local mode (`serve`, `--allow-private-targets`): loopback health-check
    /// targets are allowed unless the installation's stored policy decides.
    pub local_targets: bool,
    /// Where clients are, for TestDNSAnswer (`None`: every location unknown).
    pub geo: Option<Arc<dyn GeoLocator>>,
    /// Prices of usage (default: Route 53's).
    pub prices: PriceTable,
    /// Whether the database is migrated (/v1 answers 503 before); none: it is.
    pub database: Option<watch::Receiver<DatabaseState>>,
    /// What else /readyz requires (`serve`: the DNS server follows).
    pub readiness: Option<ReadinessCheck>,
}

/// A readiness condition of the process: Err says why it is not ready.
pub type ReadinessCheck = Arc<dyn Fn() -> Result<(), String> + Send + Sync>;

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("max_body_bytes", &self.max_body_bytes)
            .field("rate_limit", &self.rate_limit)
            .field("account_rate_limit", &self.account_rate_limit)
            .field("address_rate_limit", &self.address_rate_limit)
            .field("request_timeout", &self.request_timeout)
            .field("zone_defaults", &self.zone_defaults)
            .field("local_targets", &self.local_targets)
            .field("geo", &self.geo.is_some())
            .field("prices", &self.prices)
            .field("database", &self.database.as_ref().map(|d| *d.borrow()))
            .field("readiness", &self.readiness.is_some())
            .finish()
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            rate_limit: Some(RateLimit::default()),
            account_rate_limit: None,
            address_rate_limit: RateLimit::ADDRESS_DEFAULT,
            request_timeout: Duration::from_secs(30),
            zone_defaults: ZoneDefaults::default(),
            local_targets: false,
            geo: None,
            prices: PriceTable::default(),
            database: None,
            readiness: None,
        }
    }
}

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiState {
    /// The database.
    pub store: Store,
    /// The metrics registry (the one registry of the process).
    pub registry: prometheus::Registry,
    /// Settings.
    pub config: Arc<ApiConfig>,
    /// Token buckets per key, account and client address, when limiting is on.
    pub limiter: Option<Arc<Limiters>>,
    /// The API's own metrics.
    pub metrics: HttpMetrics,
    /// What the background database probe last saw (/healthz, /readyz).
    pub database_probe: Arc<routes::system::DatabaseProbe>,
}

impl ApiState {
    /// State for the API; registers its metrics in `registry`.
    pub fn new(
        store: Store,
        registry: prometheus::Registry,
        config: ApiConfig,
    ) -> Result<Self, prometheus::Error> {
        let metrics = HttpMetrics::register(&registry)?;
        let limiter = config.rate_limit.map(|limit| {
            let account = config.account_rate_limit.unwrap_or_else(|| limit.doubled());
            Arc::new(Limiters {
                keys: KeyLimiter::new(limit),
                accounts: KeyLimiter::new(account),
                addresses: AddressLimiter::new(config.address_rate_limit),
            })
        });
        let database_probe = Arc::default();
        Ok(ApiState { store, registry, config: Arc::new(config), limiter, metrics, database_probe })
    }
}

/// Answers 503 when a request takes longer than the configured timeout.
async fn time_limit(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::unavailable("the request timed out").into_response(),
    }
}

/// The router of every HTTP route.
pub fn router(state: ApiState) -> Router {
    use routes::{
        changes, cidr_collections, health_checks, keys, regions, rrsets, system, test_dns, usage, zonefile,
        zones,
    };
    let v1 = Router::new()
        .route("/v1/keys", get(keys::list_keys).post(keys::create_key))
        .route("/v1/keys/{id}", get(keys::get_key).delete(keys::delete_key))
        .route("/v1/zones", get(zones::list_zones).post(zones::create_zone))
        .route("/v1/zones/{id}", get(zones::get_zone).delete(zones::delete_zone))
        .route("/v1/zones/{id}/rrsets", get(rrsets::list_rrsets))
        .route("/v1/zones/{id}/changes", axum::routing::post(changes::change_rrsets))
        .route("/v1/zones/{id}/zonefile", get(zonefile::export_zone).post(zonefile::import_zone))
        .route("/v1/changes/{id}", get(changes::get_change))
        .route("/v1/zones/{id}/test-dns-answer", get(test_dns::test_dns_answer))
        .route("/v1/zones/{id}/usage", get(usage::get_zone_usage))
        .route("/v1/usage", get(usage::get_account_usage))
        .route(
            "/v1/health-checks",
            get(health_checks::list_health_checks).post(health_checks::create_health_check),
        )
        .route(
            "/v1/health-checks/{id}",
            get(health_checks::get_health_check).delete(health_checks::delete_health_check),
        )
        .route("/v1/health-checks/{id}/status", get(health_checks::health_check_status))
        .route("/v1/health-checks/{id}/override", put(health_checks::set_override))
        .route(
            "/v1/cidr-collections",
            get(cidr_collections::list_collections).post(cidr_collections::create_collection),
        )
        .route(
            "/v1/cidr-collections/{id}",
            get(cidr_collections::get_collection)
                .put(cidr_collections::replace_collection)
                .delete(cidr_collections::delete_collection),
        )
        .route("/v1/latency-table", get(regions::get_latency_table).put(regions::put_latency_table))
        .route("/v1/regions", get(regions::list_regions))
        .route("/v1/regions/{code}", put(regions::put_region).delete(regions::delete_region))
        .route_layer(from_fn_with_state(state.clone(), authenticate))
        .route_layer(from_fn_with_state(state.clone(), system::require_migrated));
    let public = Router::new()
        .route("/healthz", get(system::healthz))
        .route("/readyz", get(system::readyz))
        .route("/metrics", get(system::metrics))
        .route("/v1/openapi.json", get(system::openapi));
    v1.merge(public)
        .merge(route53::router(state.clone()))
        .fallback(system::no_route)
        .method_not_allowed_fallback(system::no_method)
        .layer(from_fn_with_state(state.clone(), time_limit))
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), metrics::track))
        .with_state(state)
}

/// Binds `addr` and serves until `shutdown` turns true. Returns the bound address
/// once listening, and the serving future.
pub async fn bind(
    addr: SocketAddr,
    state: ApiState,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<(SocketAddr, impl std::future::Future<Output = std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    tokio::spawn(routes::system::probe_database(state.clone(), shutdown.clone()));
    let app = router(state);
    let serve = async move {
        axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    };
    Ok((local, serve))
}
