//! The JSON shapes of the API (DESIGN.md, "Control API"), with their
//! OpenAPI schemas. Requests use wide number types so that an out-of-range
//! value gets a message naming its field instead of a serde error, and deny
//! unknown fields so that a misspelt one is reported rather than ignored.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signpost_core::ValidationError;
use signpost_core::model as core;
use signpost_core::validate::MAX_TTL;
use signpost_store::api::{ApiKeyInfo, KeyKind, ZoneDetails};
use signpost_store::{ChangeAction, ChangeStatus};
use utoipa::ToSchema;

mod health;
mod routing;
mod usage;

pub use health::{
    CheckerStatus, CreateHealthCheck, HealthCheck, HealthCheckList, HealthCheckType, HealthStatus,
    OverrideState, SetOverride,
};
pub use routing::{
    CidrCollection, CidrCollectionBody, CidrCollectionList, CidrLocation, DnsAnswer, LatencyEntry,
    LatencyTable, Region, RegionList,
};
pub use usage::{AccountCost, AccountUsage, QueryCosts, QueryCounts, ZoneCost, ZoneUsage};

/// A record set: one name and type, with records (and a TTL) or an alias
/// target, and the routing fields of its policy group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = RecordSet)]
pub struct Rrset {
    /// Owner name; relative to nothing, a trailing dot is optional.
    #[schema(example = "www.example.com.")]
    pub name: String,
    /// Record type.
    #[serde(rename = "type")]
    #[schema(value_type = RecordType, example = "A")]
    pub rtype: String,
    /// Seconds; required unless `aliasTarget` is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 2147483647, example = 300)]
    pub ttl: Option<i64>,
    /// Record data in zone-file presentation form, one entry per record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(example = json!(["192.0.2.1"]))]
    pub records: Vec<String>,
    /// Names a member of a policy group (1 to 128 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// Weighted routing: 0 to 255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0, maximum = 255)]
    pub weight: Option<i64>,
    /// Latency routing: a region code such as `us-east-1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Geolocation routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_location: Option<GeoLocation>,
    /// Geoproximity routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub geo_proximity: Option<GeoProximity>,
    /// Failover routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// Multivalue answer routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multi_value_answer: Option<bool>,
    /// A health check of the account that gates this record set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    /// IP-based routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_routing: Option<CidrRouting>,
    /// Alias to another record set of the same type in a hosted zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasTarget>,
    /// What a policy group answers when every member is unhealthy (default ANSWER_ALL, Route 53's rule).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_unhealthy: Option<AllUnhealthy>,
}

/// The record types a record set may have (the OpenAPI schema of `type`;
/// the server also accepts them in lower case).
#[derive(Debug, Clone, Copy, ToSchema)]
#[allow(clippy::upper_case_acronyms, dead_code)]
pub enum RecordType {
    /// IPv4 address.
    A,
    /// IPv6 address.
    AAAA,
    /// Certification authority authorization.
    CAA,
    /// Canonical name.
    CNAME,
    /// HTTPS service binding.
    HTTPS,
    /// Mail exchange.
    MX,
    /// Naming authority pointer.
    NAPTR,
    /// Name server.
    NS,
    /// Pointer.
    PTR,
    /// Start of authority (apex only, UPSERT only).
    SOA,
    /// Service locator.
    SRV,
    /// SSH fingerprint.
    SSHFP,
    /// Service binding.
    SVCB,
    /// TLS association.
    TLSA,
    /// Text.
    TXT,
}

/// A geolocation: a continent, or a country (with an optional subdivision);
/// `{"country": "*"}` is the default location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeoLocation {
    /// AF, AN, AS, EU, NA, OC or SA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continent: Option<String>,
    /// ISO 3166-1 alpha-2 code, or `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Subdivision of the country (US states for the US).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
}

/// A geoproximity location (a region or coordinates) and its bias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GeoProximity {
    /// A region code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Explicit coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
    /// −99 to 99: grows (positive) or shrinks (negative) the area served.
    #[serde(default)]
    #[schema(minimum = -99, maximum = 99)]
    pub bias: i64,
}

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Coordinates {
    /// Degrees north, −90 to 90.
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: f64,
    /// Degrees east, −180 to 180.
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: f64,
}

/// Failover role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Failover {
    /// Answered while healthy.
    Primary,
    /// Answered while the primary is unhealthy.
    Secondary,
}

/// IP-based routing target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CidrRouting {
    /// A CIDR collection of the account.
    pub collection_id: String,
    /// A location of the collection, or `*` for the default.
    pub location_name: String,
}

/// An alias target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AliasTarget {
    /// Name of the target record set.
    pub name: String,
    /// Whether the alias is unhealthy when its target is.
    #[serde(default)]
    pub evaluate_target_health: bool,
}

/// What a policy group answers when every member is unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AllUnhealthy {
    /// Route 53's rule: answer as if all were healthy.
    AnswerAll,
    /// Answer NODATA.
    Nodata,
    /// Answer SERVFAIL.
    Servfail,
}

fn in_range(value: i64, min: i64, max: i64, field: &str) -> Result<i64, ValidationError> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(ValidationError::new(field, format!("must be {min} to {max}; got {value}")))
    }
}

fn upper(code: &Option<String>) -> Option<String> {
    code.as_ref().map(|c| c.to_ascii_uppercase())
}

impl Rrset {
    /// The model's record set, with numbers checked against their ranges
    /// and geolocation codes upper-cased. Errors name fields relative to the
    /// record set.
    pub fn into_core(self) -> Result<core::RecordSet, ValidationError> {
        let ttl = match self.ttl {
            Some(t) => Some(in_range(t, 0, i64::from(MAX_TTL), "ttl")? as u32),
            None => None,
        };
        let weight = match self.weight {
            Some(w) => Some(in_range(w, 0, 255, "weight")? as u8),
            None => None,
        };
        let geo_proximity = match self.geo_proximity {
            None => None,
            Some(p) => {
                let bias = in_range(p.bias, -99, 99, "geoProximity.bias")? as i8;
                if let Some(c) = &p.coordinates {
                    if !(-90.0..=90.0).contains(&c.latitude) {
                        return Err(ValidationError::new(
                            "geoProximity.coordinates.latitude",
                            "must be -90 to 90",
                        ));
                    }
                    if !(-180.0..=180.0).contains(&c.longitude) {
                        return Err(ValidationError::new(
                            "geoProximity.coordinates.longitude",
                            "must be -180 to 180",
                        ));
                    }
                }
                Some(core::GeoProximity {
                    region: p.region,
                    coordinates: p
                        .coordinates
                        .map(|c| core::Coordinates { latitude: c.latitude, longitude: c.longitude }),
                    bias,
                })
            }
        };
        Ok(core::RecordSet {
            name: self.name,
            rtype: self.rtype,
            ttl,
            records: self.records,
            set_identifier: self.set_identifier,
            weight,
            region: self.region,
            geo_location: self.geo_location.map(|g| core::GeoLocation {
                continent: upper(&g.continent),
                country: upper(&g.country),
                subdivision: upper(&g.subdivision),
            }),
            geo_proximity,
            failover: self.failover.map(|f| match f {
                Failover::Primary => core::Failover::Primary,
                Failover::Secondary => core::Failover::Secondary,
            }),
            multi_value_answer: self.multi_value_answer,
            health_check_id: self.health_check_id,
            cidr_routing: self.cidr_routing.map(|c| core::CidrRouting {
                collection_id: c.collection_id,
                location_name: c.location_name,
            }),
            alias_target: self.alias_target.map(|a| core::AliasTarget {
                name: a.name,
                evaluate_target_health: a.evaluate_target_health,
            }),
            all_unhealthy: self.all_unhealthy.map(|a| match a {
                AllUnhealthy::AnswerAll => core::AllUnhealthy::AnswerAll,
                AllUnhealthy::Nodata => core::AllUnhealthy::Nodata,
                AllUnhealthy::Servfail => core::AllUnhealthy::Servfail,
            }),
        })
    }
}

impl From<core::RecordSet> for Rrset {
    fn from(r: core::RecordSet) -> Self {
        Rrset {
            name: r.name,
            rtype: r.rtype,
            ttl: r.ttl.map(i64::from),
            records: r.records,
            set_identifier: r.set_identifier,
            weight: r.weight.map(i64::from),
            region: r.region,
            geo_location: r.geo_location.map(|g| GeoLocation {
                continent: g.continent,
                country: g.country,
                subdivision: g.subdivision,
            }),
            geo_proximity: r.geo_proximity.map(|p| GeoProximity {
                region: p.region,
                coordinates: p
                    .coordinates
                    .map(|c| Coordinates { latitude: c.latitude, longitude: c.longitude }),
                bias: i64::from(p.bias),
            }),
            failover: r.failover.map(|f| match f {
                core::Failover::Primary => Failover::Primary,
                core::Failover::Secondary => Failover::Secondary,
            }),
            multi_value_answer: r.multi_value_answer,
            health_check_id: r.health_check_id,
            cidr_routing: r
                .cidr_routing
                .map(|c| CidrRouting { collection_id: c.collection_id, location_name: c.location_name }),
            alias_target: r
                .alias_target
                .map(|a| AliasTarget { name: a.name, evaluate_target_health: a.evaluate_target_health }),
            all_unhealthy: r.all_unhealthy.map(|a| match a {
                core::AllUnhealthy::AnswerAll => AllUnhealthy::AnswerAll,
                core::AllUnhealthy::Nodata => AllUnhealthy::Nodata,
                core::AllUnhealthy::Servfail => AllUnhealthy::Servfail,
            }),
        }
    }
}

/// What a change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Action {
    /// Add a record set that must not exist yet.
    Create,
    /// Add, or replace the one with the same name, type and set identifier.
    Upsert,
    /// Remove a record set; every field must match the stored one.
    Delete,
}

impl From<Action> for ChangeAction {
    fn from(a: Action) -> Self {
        match a {
            Action::Create => ChangeAction::Create,
            Action::Upsert => ChangeAction::Upsert,
            Action::Delete => ChangeAction::Delete,
        }
    }
}

/// One change of a batch.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeItem {
    /// What to do.
    pub action: Action,
    /// The record set.
    pub rrset: Rrset,
}

/// An atomic batch of changes (at most 1,000 records and 32,000 characters
/// of record values, like Route 53).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"comment": "web servers", "changes": [{"action": "UPSERT",
    "rrset": {"name": "www.example.com.", "type": "A", "ttl": 300, "records": ["192.0.2.1", "192.0.2.2"]}}]}))]
pub struct ChangeBatch {
    /// A note kept with the change (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The changes, applied in order, all or none.
    #[schema(min_items = 1)]
    pub changes: Vec<ChangeItem>,
}

/// Propagation state of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    /// Not yet applied by every live DNS server.
    Pending,
    /// Applied by every live DNS server.
    Insync,
}

/// A committed change (Route 53's ChangeInfo).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// Change id (`C…`).
    pub id: String,
    /// PENDING until every live DNS server applied it, then INSYNC.
    pub status: Status,
    /// When it was committed.
    pub submitted_at: DateTime<Utc>,
}

impl From<signpost_store::ChangeInfo> for Change {
    fn from(c: signpost_store::ChangeInfo) -> Self {
        Change {
            id: c.id,
            status: match c.status {
                ChangeStatus::Pending => Status::Pending,
                ChangeStatus::Insync => Status::Insync,
            },
            submitted_at: c.submitted_at,
        }
    }
}

/// A hosted zone to create.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateZone {
    /// The zone's name, e.g. `example.com.`.
    #[schema(example = "example.com.")]
    pub name: String,
    /// A note (at most 256 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A hosted zone.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Zone {
    /// Zone id (`Z…`).
    pub id: String,
    /// Fully qualified, lower-case name.
    pub name: String,
    /// The owner's note.
    pub comment: Option<String>,
    /// Record sets in the zone, SOA and NS included.
    pub record_set_count: i64,
    /// The name servers of the zone's apex NS record set.
    pub name_servers: Vec<String>,
    /// When the zone was created.
    pub created_at: DateTime<Utc>,
    /// The change that created the zone (only in the answer to a create).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
}

impl From<ZoneDetails> for Zone {
    fn from(z: ZoneDetails) -> Self {
        Zone {
            id: z.id,
            name: z.name,
            comment: z.comment,
            record_set_count: z.record_set_count,
            name_servers: z.name_servers,
            created_at: z.created_at,
            change: None,
        }
    }
}

/// An API key to make.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKey {
    /// `bearer` (default): a secret for `Authorization: Bearer`; `aws`: an
    /// access key pair for Route 53's API (SigV4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<KeyKindName>,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Only reads allowed (every other method answers 403).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// Limit the key to these zones of the account (403 elsewhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zone_ids: Option<Vec<String>>,
}

/// What kind of credential a key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum KeyKindName {
    /// `Authorization: Bearer <apiKey>` on /v1.
    Bearer,
    /// An AWS access key pair signing Route 53 requests (SigV4) on /2013-04-01.
    Aws,
}

impl From<KeyKind> for KeyKindName {
    fn from(k: KeyKind) -> Self {
        match k {
            KeyKind::Bearer => KeyKindName::Bearer,
            KeyKind::Aws => KeyKindName::Aws,
        }
    }
}

impl From<KeyKindName> for KeyKind {
    fn from(k: KeyKindName) -> Self {
        match k {
            KeyKindName::Bearer => KeyKind::Bearer,
            KeyKindName::Aws => KeyKind::Aws,
        }
    }
}

/// An API key, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    /// Key id (`K…`).
    pub id: String,
    /// Bearer key or AWS access key pair.
    pub kind: KeyKindName,
    /// The access key id of an AWS key pair (`AKIA…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// A name for people.
    pub name: Option<String>,
    /// Whether the key may only read.
    pub read_only: bool,
    /// The zones the key is limited to; null: every zone of the account.
    pub zone_ids: Option<Vec<String>>,
    /// When the key was made.
    pub created_at: DateTime<Utc>,
}

impl From<ApiKeyInfo> for Key {
    fn from(k: ApiKeyInfo) -> Self {
        Key {
            id: k.id,
            kind: k.kind.into(),
            access_key_id: k.access_key_id,
            name: k.name,
            read_only: k.read_only,
            zone_ids: k.zone_ids,
            created_at: k.created_at,
        }
    }
}

/// A key just made: the only time its secret is shown.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    /// Key id (`K…`).
    pub id: String,
    /// Bearer key or AWS access key pair.
    pub kind: KeyKindName,
    /// The secret of a bearer key, for `Authorization: Bearer …`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The access key id of an AWS key pair (`AKIA…`, 20 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    /// The secret access key of an AWS key pair (40 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_access_key: Option<String>,
    /// A name for people.
    pub name: Option<String>,
    /// Whether the key may only read.
    pub read_only: bool,
    /// The zones the key is limited to; null: every zone of the account.
    pub zone_ids: Option<Vec<String>>,
    /// When the key was made.
    pub created_at: DateTime<Utc>,
}

/// A page of hosted zones.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ZoneList {
    /// The zones, by name.
    pub items: Vec<Zone>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of record sets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RrsetList {
    /// The record sets, in Route 53's order.
    pub items: Vec<Rrset>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of API keys.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyList {
    /// The keys, by id.
    pub items: Vec<Key>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// Liveness.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// Always `ok` when the process answers.
    pub status: String,
    /// `up` or `down`: whether PostgreSQL answers.
    pub database: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrset(json: serde_json::Value) -> Rrset {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn ranges_are_checked_with_field_names() {
        let r = rrset(serde_json::json!({"name": "a.", "type": "A", "ttl": -1, "records": ["192.0.2.1"]}));
        assert_eq!(r.into_core().unwrap_err().field, "ttl");
        let r = rrset(serde_json::json!({"name": "a.", "type": "A", "ttl": 1, "records": ["192.0.2.1"],
            "setIdentifier": "x", "weight": 256}));
        assert_eq!(r.into_core().unwrap_err().field, "weight");
        let r = rrset(serde_json::json!({"name": "a.", "type": "A", "ttl": 1, "records": ["192.0.2.1"],
            "setIdentifier": "x", "geoProximity": {"coordinates": {"latitude": 91, "longitude": 0}}}));
        assert_eq!(r.into_core().unwrap_err().field, "geoProximity.coordinates.latitude");
    }

    #[test]
    fn round_trips_through_the_model() {
        let json = serde_json::json!({"name": "a.example.", "type": "A", "ttl": 60, "records": ["192.0.2.1"],
            "setIdentifier": "eu", "geoLocation": {"continent": "EU"}, "healthCheckId": "H1"});
        let core = rrset(json.clone()).into_core().unwrap();
        assert_eq!(serde_json::to_value(Rrset::from(core.clone())).unwrap(), json);
        assert_eq!(serde_json::to_value(&core).unwrap(), json, "the same shape as the model's JSON");
    }
}
