//! Routing data as the DNS servers load them (health verdicts: `health`).

use std::time::Duration;

use signpost_core::cidr::Prefix;
use signpost_core::model::Coordinates;
use signpost_core::routing::{AccountRouting, CidrCollectionData};
use sqlx::Row;

use crate::{Result, Store};

/// Route 53's share: a check is healthy when more than 18% of live checkers say so.
pub const DEFAULT_HEALTHY_SHARE: f64 = 0.18;
/// A checker whose heartbeat is older than this no longer counts.
pub const DEFAULT_CHECKER_LIVENESS: Duration = Duration::from_secs(60);

impl Store {
    /// The ids of every account that has routing data (collections, latency, regions).
    pub async fn accounts_with_routing(&self) -> Result<Vec<String>> {
        let rows = sqlx::query(
            "SELECT account_id FROM cidr_collections
             UNION SELECT account_id FROM latency_entries
             UNION SELECT account_id FROM regions WHERE account_id IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(|r| Ok(r.try_get("account_id")?)).collect()
    }

    /// One account's routing data, built for lookups. Malformed stored blocks
    /// are skipped (the API validates them on the way in).
    pub async fn account_routing(&self, account_id: &str) -> Result<AccountRouting> {
        let rows = sqlx::query(
            "SELECT c.id, l.name, l.cidrs::text[] AS cidrs FROM cidr_collections c
             JOIN cidr_locations l ON l.collection_id = c.id WHERE c.account_id = $1 ORDER BY c.id, l.name",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        let mut collections: Vec<CidrCollectionData> = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            let name: String = row.try_get("name")?;
            let cidrs: Vec<String> = row.try_get("cidrs")?;
            let prefixes = cidrs.iter().filter_map(|c| Prefix::parse(c, "cidr").ok()).collect();
            match collections.last_mut() {
                Some(c) if c.id == id => c.locations.push((name, prefixes)),
                _ => collections.push(CidrCollectionData { id, locations: vec![(name, prefixes)] }),
            }
        }
        let rows = sqlx::query(
            "SELECT cidr::text AS cidr, region, latency_ms FROM latency_entries WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_all(self.pool())
        .await?;
        let mut latency = Vec::with_capacity(rows.len());
        for row in rows {
            let cidr: String = row.try_get("cidr")?;
            if let Ok(prefix) = Prefix::parse(&cidr, "cidr") {
                latency.push((prefix, row.try_get("region")?, row.try_get("latency_ms")?));
            }
        }
        let rows = sqlx::query("SELECT code, latitude, longitude FROM regions WHERE account_id = $1")
            .bind(account_id)
            .fetch_all(self.pool())
            .await?;
        let mut regions = Vec::with_capacity(rows.len());
        for row in rows {
            let coordinates =
                Coordinates { latitude: row.try_get("latitude")?, longitude: row.try_get("longitude")? };
            regions.push((row.try_get("code")?, coordinates));
        }
        Ok(AccountRouting::build(collections, latency, regions))
    }
}
