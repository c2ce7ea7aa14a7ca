//! Routing data: CIDR collections, the measured latency table, regions, and
//! the answer of TestDNSAnswer.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signpost_store::routing_api as store;
use utoipa::ToSchema;

/// A location of a CIDR collection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CidrLocation {
    /// 1 to 16 letters, digits, `-` or `_` (not `*`, the default of record sets).
    #[schema(example = "office", pattern = "^[0-9A-Za-z_-]{1,16}$")]
    pub name: String,
    /// Blocks: IPv4 /1 to /24, IPv6 /1 to /48, without host bits; each block in one location only.
    #[schema(example = json!(["198.51.100.0/24"]))]
    pub cidrs: Vec<String>,
}

impl From<store::CidrLocation> for CidrLocation {
    fn from(l: store::CidrLocation) -> Self {
        CidrLocation { name: l.name, cidrs: l.cidrs }
    }
}

impl From<CidrLocation> for store::CidrLocation {
    fn from(l: CidrLocation) -> Self {
        store::CidrLocation { name: l.name, cidrs: l.cidrs }
    }
}

/// A CIDR collection to create, or the new content of one (at most 1,000 blocks).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "offices", "locations": [{"name": "berlin", "cidrs": ["198.51.100.0/24"]}]}))]
pub struct CidrCollectionBody {
    /// 1 to 64 letters, digits, `-` or `_`, unique in the account.
    #[schema(pattern = "^[0-9A-Za-z_-]{1,64}$")]
    pub name: String,
    /// The locations (replaced whole by PUT).
    #[serde(default)]
    pub locations: Vec<CidrLocation>,
}

impl From<CidrCollectionBody> for store::CidrCollectionSpec {
    fn from(b: CidrCollectionBody) -> Self {
        store::CidrCollectionSpec {
            name: b.name,
            locations: b.locations.into_iter().map(Into::into).collect(),
        }
    }
}

/// A CIDR collection: record sets route by it with `cidrRouting`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CidrCollection {
    /// Collection id (a UUID, like Route 53's), the `cidrRouting.collectionId` of record sets.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Locations by name.
    pub locations: Vec<CidrLocation>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<store::CidrCollection> for CidrCollection {
    fn from(c: store::CidrCollection) -> Self {
        CidrCollection {
            id: c.id,
            name: c.name,
            locations: c.locations.into_iter().map(Into::into).collect(),
            created_at: c.created_at,
        }
    }
}

/// A page of CIDR collections.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CidrCollectionList {
    /// The collections, by name.
    pub items: Vec<CidrCollection>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// One measurement: clients in `cidr` reach `region` in `latencyMs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LatencyEntry {
    /// Client network, without host bits.
    #[schema(example = "198.51.100.0/24")]
    pub cidr: String,
    /// A built-in region or one of the account's.
    #[schema(example = "eu-central-1")]
    pub region: String,
    /// Milliseconds, 0 to 100,000.
    #[schema(minimum = 0, maximum = 100000, example = 12.5)]
    pub latency_ms: f64,
}

/// The account's measured latency table; latency routing prefers it over
/// distance for clients it covers (longest matching block).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LatencyTable {
    /// At most 10,000 entries, one per block and region.
    pub entries: Vec<LatencyEntry>,
}

impl From<Vec<store::LatencyEntry>> for LatencyTable {
    fn from(entries: Vec<store::LatencyEntry>) -> Self {
        LatencyTable {
            entries: entries
                .into_iter()
                .map(|e| LatencyEntry { cidr: e.cidr, region: e.region, latency_ms: e.latency_ms })
                .collect(),
        }
    }
}

impl LatencyTable {
    /// The store's entries.
    pub fn into_store(self) -> Vec<store::LatencyEntry> {
        self.entries
            .into_iter()
            .map(|e| store::LatencyEntry { cidr: e.cidr, region: e.region, latency_ms: e.latency_ms })
            .collect()
    }
}

/// A region the account's record sets can name (latency, geoproximity).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Region {
    /// Region code.
    #[schema(example = "eu-central-1")]
    pub code: String,
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
    /// True when the coordinates are the built-in table's; false for the account's own or overridden ones.
    pub built_in: bool,
}

impl From<store::RegionInfo> for Region {
    fn from(r: store::RegionInfo) -> Self {
        Region {
            code: r.code,
            latitude: r.coordinates.latitude,
            longitude: r.coordinates.longitude,
            built_in: r.built_in,
        }
    }
}

/// Every region the account can use, by code (one page).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RegionList {
    /// The regions.
    pub items: Vec<Region>,
    /// Always null: the list comes in one page.
    pub next_cursor: Option<String>,
}

/// What the DNS server would answer (Route 53's TestDNSAnswer).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DnsAnswer {
    /// The name asked for (lower case, fully qualified).
    pub name: String,
    /// The type asked for.
    #[serde(rename = "type")]
    pub rtype: String,
    /// Response code: NOERROR, NXDOMAIN, SERVFAIL, REFUSED, ...
    #[schema(example = "NOERROR")]
    pub rcode: String,
    /// The answer section's record data, in presentation form.
    #[schema(example = json!(["192.0.2.1"]))]
    pub records: Vec<String>,
    /// The ECS scope prefix the answer would carry; null without `clientSubnet`.
    pub ecs_scope: Option<u8>,
}
