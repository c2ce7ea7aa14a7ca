//! Usage and cost: queries per category and what they cost, per zone and
//! for the account.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Queries in each billing category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryCounts {
    /// Simple, weighted, failover, multivalue, and negative answers.
    pub standard: i64,
    /// Latency-based routing.
    pub latency: i64,
    /// Geolocation routing.
    pub geolocation: i64,
    /// Geoproximity routing.
    pub geoproximity: i64,
    /// IP-based routing.
    pub ip_based: i64,
}

impl From<[i64; 5]> for QueryCounts {
    fn from(q: [i64; 5]) -> Self {
        // Index = UsageCategory::as_index.
        QueryCounts { standard: q[0], latency: q[1], geolocation: q[2], geoproximity: q[3], ip_based: q[4] }
    }
}

/// USD per billing category.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueryCosts {
    /// Standard queries.
    pub standard: f64,
    /// Latency-based queries.
    pub latency: f64,
    /// Geolocation queries.
    pub geolocation: f64,
    /// Geoproximity queries.
    pub geoproximity: f64,
    /// IP-based queries.
    pub ip_based: f64,
}

impl From<[f64; 5]> for QueryCosts {
    fn from(c: [f64; 5]) -> Self {
        QueryCosts { standard: c[0], latency: c[1], geolocation: c[2], geoproximity: c[3], ip_based: c[4] }
    }
}

/// What a zone costs in a month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneCost {
    /// Always `USD`.
    pub currency: String,
    /// Queries per category (the first billion of a category in an account's
    /// month are billed at the first price, to zones in name order).
    pub queries: QueryCosts,
    /// The zone itself: $0.50 for each of the account's first 25 zones (by creation), $0.10 after.
    pub hosted_zone: f64,
    /// The sum.
    pub total: f64,
}

/// A zone's queries and cost in a month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneUsage {
    /// Zone id.
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// `YYYY-MM` (UTC).
    #[schema(example = "2026-11")]
    pub month: String,
    /// Queries answered, per category of the record set that decided the answer.
    pub queries: QueryCounts,
    /// Their cost, and the zone's.
    pub cost: ZoneCost,
}

/// What the account costs in a month.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountCost {
    /// Always `USD`.
    pub currency: String,
    /// The sum over the zones.
    pub total: f64,
}

/// The account's usage in a month, zone by zone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountUsage {
    /// `YYYY-MM` (UTC).
    #[schema(example = "2026-11")]
    pub month: String,
    /// Every zone (of those the key may use), by name.
    pub zones: Vec<ZoneUsage>,
    /// The total.
    pub cost: AccountCost,
}
