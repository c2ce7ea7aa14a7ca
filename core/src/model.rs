//! The shapes Signpost stores and serves: hosted zones and record sets, with
//! every routing-policy field of Route 53 (DESIGN.md, "Control API").

use serde::{Deserialize, Serialize};

/// A hosted zone as the DNS server needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedZone {
    /// Public id (`Z…`).
    pub id: String,
    /// Owning account's id.
    pub account_id: String,
    /// Fully qualified, lower-case name with the trailing dot.
    pub name: String,
    /// Rises with every change to the zone; the SOA serial is this value.
    pub serial: i64,
}

/// A record set: one name and type, with its records or alias target and,
/// when it belongs to a policy group, its set identifier and routing fields.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct RecordSet {
    /// Owner name, fully qualified with the trailing dot.
    pub name: String,
    /// Record type mnemonic (`A`, `MX`, ...).
    #[serde(rename = "type")]
    pub rtype: String,
    /// Time to live in seconds; absent for alias record sets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<u32>,
    /// Record data in presentation (zone file) format, one entry per record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub records: Vec<String>,
    /// Distinguishes the members of a policy group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_identifier: Option<String>,
    /// Weighted routing: 0..=255.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u8>,
    /// Latency routing: an AWS-style region code.
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
    /// Health check that gates this record set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_id: Option<String>,
    /// IP-based routing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cidr_routing: Option<CidrRouting>,
    /// Alias to another record set in a hosted zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias_target: Option<AliasTarget>,
    /// What the group answers when every member is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_unhealthy: Option<AllUnhealthy>,
}

impl RecordSet {
    /// A plain record set (no routing policy) with the given records.
    pub fn simple(name: &str, rtype: &str, ttl: u32, records: &[&str]) -> Self {
        RecordSet {
            name: name.to_string(),
            rtype: rtype.to_string(),
            ttl: Some(ttl),
            records: records.iter().map(|r| r.to_string()).collect(),
            ..RecordSet::default()
        }
    }

    /// The routing policy this record set uses, if any.
    pub fn policy(&self) -> Option<PolicyKind> {
        if self.failover.is_some() {
            Some(PolicyKind::Failover)
        } else if self.weight.is_some() {
            Some(PolicyKind::Weighted)
        } else if self.region.is_some() {
            Some(PolicyKind::Latency)
        } else if self.geo_location.is_some() {
            Some(PolicyKind::Geolocation)
        } else if self.geo_proximity.is_some() {
            Some(PolicyKind::Geoproximity)
        } else if self.cidr_routing.is_some() {
            Some(PolicyKind::IpBased)
        } else if self.multi_value_answer == Some(true) {
            Some(PolicyKind::Multivalue)
        } else {
            None
        }
    }
}

/// Route 53's routing policies (simple is the absence of one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyKind {
    /// Probability weight / sum.
    Weighted,
    /// Lowest-latency region.
    Latency,
    /// Most specific location match.
    Geolocation,
    /// Nearest after bias.
    Geoproximity,
    /// PRIMARY while healthy, else SECONDARY.
    Failover,
    /// Up to eight healthy records.
    Multivalue,
    /// CIDR collections.
    IpBased,
}

/// Geolocation of a record set; `{"country": "*"}` is the default location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GeoLocation {
    /// Two-letter continent code (AF AN AS EU NA OC SA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continent: Option<String>,
    /// ISO 3166-1 alpha-2 country code, or `*` for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Subdivision code within the country.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subdivision: Option<String>,
}

/// Geoproximity location and bias.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct GeoProximity {
    /// A region code from the region table.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Explicit coordinates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coordinates: Option<Coordinates>,
    /// −99..=99: grows (positive) or shrinks (negative) the area served.
    #[serde(default)]
    pub bias: i8,
}

/// A point on Earth, in degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Coordinates {
    /// Degrees north.
    pub latitude: f64,
    /// Degrees east.
    pub longitude: f64,
}

/// Failover role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Failover {
    /// Answered while healthy.
    Primary,
    /// Answered while the primary is unhealthy.
    Secondary,
}

/// IP-based routing target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CidrRouting {
    /// CIDR collection id.
    pub collection_id: String,
    /// Location name within the collection, or `*` for the default.
    pub location_name: String,
}

/// Alias target: another record set in a hosted zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AliasTarget {
    /// Target name, fully qualified.
    pub name: String,
    /// Whether the alias is unhealthy when its target is.
    #[serde(default)]
    pub evaluate_target_health: bool,
}

/// What a policy group answers when every member is unhealthy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum AllUnhealthy {
    /// Route 53's rule: answer as if all were healthy.
    #[default]
    AnswerAll,
    /// Answer NODATA.
    Nodata,
    /// Answer SERVFAIL.
    Servfail,
}

impl AllUnhealthy {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AllUnhealthy::AnswerAll => "ANSWER_ALL",
            AllUnhealthy::Nodata => "NODATA",
            AllUnhealthy::Servfail => "SERVFAIL",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ANSWER_ALL" => Some(AllUnhealthy::AnswerAll),
            "NODATA" => Some(AllUnhealthy::Nodata),
            "SERVFAIL" => Some(AllUnhealthy::Servfail),
            _ => None,
        }
    }
}

impl Failover {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Failover::Primary => "PRIMARY",
            Failover::Secondary => "SECONDARY",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "PRIMARY" => Some(Failover::Primary),
            "SECONDARY" => Some(Failover::Secondary),
            _ => None,
        }
    }
}

/// Usage category a query is billed in (Route 53's price list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UsageCategory {
    /// Simple, weighted, failover, multivalue and alias answers, and negative answers.
    Standard,
    /// Latency-based routing.
    Latency,
    /// Geolocation routing.
    Geolocation,
    /// Geoproximity routing.
    Geoproximity,
    /// IP-based routing.
    IpBased,
}

impl UsageCategory {
    /// Every category, in a fixed order (index = `as_index`).
    pub const ALL: [UsageCategory; 5] = [
        UsageCategory::Standard,
        UsageCategory::Latency,
        UsageCategory::Geolocation,
        UsageCategory::Geoproximity,
        UsageCategory::IpBased,
    ];

    /// Position in [`UsageCategory::ALL`].
    pub fn as_index(self) -> usize {
        self as usize
    }

    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            UsageCategory::Standard => "standard",
            UsageCategory::Latency => "latency",
            UsageCategory::Geolocation => "geolocation",
            UsageCategory::Geoproximity => "geoproximity",
            UsageCategory::IpBased => "ipBased",
        }
    }

    /// The category a policy's answers bill in.
    pub fn of_policy(policy: Option<PolicyKind>) -> Self {
        match policy {
            Some(PolicyKind::Latency) => UsageCategory::Latency,
            Some(PolicyKind::Geolocation) => UsageCategory::Geolocation,
            Some(PolicyKind::Geoproximity) => UsageCategory::Geoproximity,
            Some(PolicyKind::IpBased) => UsageCategory::IpBased,
            _ => UsageCategory::Standard,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrset_json_is_camel_case_and_omits_absent_fields() {
        let mut rrset = RecordSet::simple("www.example.com.", "A", 300, &["192.0.2.1"]);
        rrset.set_identifier = Some("one".into());
        rrset.weight = Some(10);
        let json = serde_json::to_value(&rrset).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"name": "www.example.com.", "type": "A", "ttl": 300,
                "records": ["192.0.2.1"], "setIdentifier": "one", "weight": 10})
        );
        let back: RecordSet = serde_json::from_value(json).unwrap();
        assert_eq!(back, rrset);
        assert_eq!(back.policy(), Some(PolicyKind::Weighted));
    }

    #[test]
    fn failover_and_geolocation_use_route53_spellings() {
        let json = serde_json::json!({"name": "a.", "type": "A", "ttl": 1, "records": ["192.0.2.1"],
            "failover": "SECONDARY", "geoLocation": {"country": "*"}});
        let rrset: RecordSet = serde_json::from_value(json).unwrap();
        assert_eq!(rrset.failover, Some(Failover::Secondary));
        assert_eq!(rrset.geo_location.unwrap().country.as_deref(), Some("*"));
    }
}
