//! Validation of record sets against their zone: the rules every path into
//! the database (API, zone import) and the snapshot builder apply alike.

use hickory_proto::rr::{Name, RData, RecordType};

use crate::ValidationError;
use crate::model::RecordSet;
use crate::names::{name_text, parse_name};
use crate::rdata::{parse_rdata, parse_type, rdata_text};

/// Largest TTL (RFC 2181 §8).
pub const MAX_TTL: u32 = 2_147_483_647;
/// Longest set identifier (Route 53's limit).
pub const MAX_SET_IDENTIFIER_LEN: usize = 128;

/// A record set whose name, type and data have been parsed.
#[derive(Debug, Clone)]
pub struct ParsedRecordSet {
    /// Owner name, lower-case and fully qualified.
    pub name: Name,
    /// Record type.
    pub rtype: RecordType,
    /// TTL (0 for alias record sets, which take their target's).
    pub ttl: u32,
    /// Parsed record data, in the stored order.
    pub rdatas: Vec<RData>,
    /// The record set in canonical form (canonical name, type and data text).
    pub canonical: RecordSet,
}

/// Validates one record set for the zone `zone` and returns it parsed and
/// canonicalized. Rules that span record sets (CNAME exclusivity, policy
/// groups) are checked by [`check_zone_consistency`].
pub fn validate_record_set(zone: &Name, rrset: &RecordSet) -> Result<ParsedRecordSet, ValidationError> {
    let name = parse_name(&rrset.name, "name")?;
    if !zone.zone_of(&name) {
        return Err(ValidationError::new(
            "name",
            format!("{} is not inside the zone {}", name_text(&name), name_text(zone)),
        ));
    }
    let rtype = parse_type(&rrset.rtype, "type")?;
    let mut canonical = rrset.clone();
    canonical.name = name_text(&name);
    canonical.rtype = rtype.to_string();

    if let Some(id) = &rrset.set_identifier
        && (id.is_empty() || id.len() > MAX_SET_IDENTIFIER_LEN)
    {
        return Err(ValidationError::new(
            "setIdentifier",
            format!("must be 1 to {MAX_SET_IDENTIFIER_LEN} characters"),
        ));
    }
    let policy_fields = [
        rrset.weight.is_some(),
        rrset.region.is_some(),
        rrset.geo_location.is_some(),
        rrset.geo_proximity.is_some(),
        rrset.failover.is_some(),
        rrset.multi_value_answer == Some(true),
        rrset.cidr_routing.is_some(),
    ]
    .iter()
    .filter(|set| **set)
    .count();
    if policy_fields > 1 {
        return Err(ValidationError::new("setIdentifier", "a record set may use only one routing policy"));
    }
    if policy_fields == 1 && rrset.set_identifier.is_none() {
        return Err(ValidationError::new(
            "setIdentifier",
            "a record set with a routing policy needs a setIdentifier",
        ));
    }
    if matches!(rtype, RecordType::NS | RecordType::SOA) && rrset.set_identifier.is_some() {
        return Err(ValidationError::new(
            "setIdentifier",
            format!("{rtype} record sets cannot use routing policies (a delegation is one referral)"),
        ));
    }
    if rtype == RecordType::NS && name.is_wildcard() {
        return Err(ValidationError::new("name", "a wildcard NS record set is not allowed (RFC 4592 §4.2)"));
    }
    if policy_fields == 0 && rrset.set_identifier.is_some() {
        return Err(ValidationError::new(
            "setIdentifier",
            "a setIdentifier needs a routing policy (weight, region, geoLocation, geoProximity, failover, multiValueAnswer or cidrRouting)",
        ));
    }

    if let Some(alias) = &rrset.alias_target {
        if rrset.ttl.is_some() || !rrset.records.is_empty() {
            return Err(ValidationError::new("aliasTarget", "an alias record set has no ttl and no records"));
        }
        if !matches!(
            rtype,
            RecordType::A
                | RecordType::AAAA
                | RecordType::CNAME
                | RecordType::MX
                | RecordType::TXT
                | RecordType::SRV
                | RecordType::CAA
                | RecordType::HTTPS
                | RecordType::SVCB
                | RecordType::NAPTR
                | RecordType::PTR
        ) {
            return Err(ValidationError::new(
                "type",
                format!("an alias record set cannot have type {rtype}"),
            ));
        }
        let target = parse_name(&alias.name, "aliasTarget.name")?;
        canonical.alias_target =
            Some(crate::model::AliasTarget { name: name_text(&target), ..alias.clone() });
        return Ok(ParsedRecordSet { name, rtype, ttl: 0, rdatas: Vec::new(), canonical });
    }

    let ttl = rrset
        .ttl
        .ok_or_else(|| ValidationError::new("ttl", "ttl is required (except for alias record sets)"))?;
    if ttl > MAX_TTL {
        return Err(ValidationError::new("ttl", format!("must be 0 to {MAX_TTL}")));
    }
    if rrset.records.is_empty() {
        return Err(ValidationError::new("records", "at least one record is required"));
    }
    let mut rdatas = Vec::with_capacity(rrset.records.len());
    let mut texts = Vec::with_capacity(rrset.records.len());
    for (i, text) in rrset.records.iter().enumerate() {
        let rdata = parse_rdata(rtype, text, zone, &format!("records[{i}]"))?;
        let canon = rdata_text(&rdata);
        if texts.contains(&canon) {
            return Err(ValidationError::new(format!("records[{i}]"), format!("duplicate record {canon:?}")));
        }
        texts.push(canon);
        rdatas.push(rdata);
    }
    canonical.records = texts;
    match rtype {
        RecordType::CNAME if rdatas.len() > 1 => {
            return Err(ValidationError::new("records", "a CNAME record set holds exactly one record"));
        }
        RecordType::CNAME if name == *zone => {
            return Err(ValidationError::new("type", "a CNAME is not allowed at the zone apex"));
        }
        RecordType::SOA if name != *zone => {
            return Err(ValidationError::new("type", "an SOA record set is only allowed at the zone apex"));
        }
        RecordType::SOA if rdatas.len() > 1 => {
            return Err(ValidationError::new("records", "an SOA record set holds exactly one record"));
        }
        _ => {}
    }
    Ok(ParsedRecordSet { name, rtype, ttl, rdatas, canonical })
}

/// Checks the rules that span record sets of one zone: no duplicate keys,
/// a CNAME alone at its name, an SOA and NS at the apex, one routing policy
/// per name and type. `rrsets` must already be canonical.
pub fn check_zone_consistency(zone: &Name, rrsets: &[RecordSet]) -> Result<(), ValidationError> {
    use std::collections::{HashMap, HashSet};
    let mut keys = HashSet::new();
    let mut types_at: HashMap<&str, HashSet<&str>> = HashMap::new();
    let mut policy_of: HashMap<(&str, &str), Option<crate::model::PolicyKind>> = HashMap::new();
    for (i, rrset) in rrsets.iter().enumerate() {
        let field = format!("rrsets[{i}]");
        let key = (&rrset.name, &rrset.rtype, &rrset.set_identifier);
        if !keys.insert(key) {
            return Err(ValidationError::new(field, format!("{} {} appears twice", rrset.name, rrset.rtype)));
        }
        types_at.entry(&rrset.name).or_default().insert(&rrset.rtype);
        let policy = rrset.policy();
        match policy_of.get(&(rrset.name.as_str(), rrset.rtype.as_str())) {
            Some(existing) if *existing != policy => {
                return Err(ValidationError::new(
                    field,
                    format!("{} {} mixes routing policies in one group", rrset.name, rrset.rtype),
                ));
            }
            _ => {
                policy_of.insert((&rrset.name, &rrset.rtype), policy);
            }
        }
    }
    for (name, types) in &types_at {
        if types.contains("CNAME") && types.len() > 1 {
            return Err(ValidationError::new(
                "rrsets",
                format!("{name} has a CNAME and other data; a CNAME must stand alone"),
            ));
        }
    }
    let apex = name_text(zone);
    let apex_types = types_at.get(apex.as_str());
    for required in ["SOA", "NS"] {
        if !apex_types.is_some_and(|t| t.contains(required)) {
            return Err(ValidationError::new(
                "rrsets",
                format!("the zone apex {apex} needs an {required} record set"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{AliasTarget, RecordSet};

    fn zone() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn canonicalizes_name_type_and_data() {
        let rrset = RecordSet::simple("WWW.example.com", "a", 60, &["192.0.2.1"]);
        let parsed = validate_record_set(&zone(), &rrset).unwrap();
        assert_eq!(parsed.canonical.name, "www.example.com.");
        assert_eq!(parsed.canonical.rtype, "A");
        assert_eq!(parsed.rdatas.len(), 1);
    }

    #[test]
    fn rejects_names_outside_the_zone_and_bad_shapes() {
        let outside = RecordSet::simple("www.example.org.", "A", 60, &["192.0.2.1"]);
        assert_eq!(validate_record_set(&zone(), &outside).unwrap_err().field, "name");
        let apex_cname = RecordSet::simple("example.com.", "CNAME", 60, &["x.example.net."]);
        assert!(validate_record_set(&zone(), &apex_cname).is_err());
        let two_cnames = RecordSet::simple("a.example.com.", "CNAME", 60, &["x.", "y."]);
        assert!(validate_record_set(&zone(), &two_cnames).is_err());
        let dup = RecordSet::simple("a.example.com.", "A", 60, &["192.0.2.1", "192.0.2.1"]);
        assert_eq!(validate_record_set(&zone(), &dup).unwrap_err().field, "records[1]");
        let mut no_ttl = RecordSet::simple("a.example.com.", "A", 60, &["192.0.2.1"]);
        no_ttl.ttl = None;
        assert_eq!(validate_record_set(&zone(), &no_ttl).unwrap_err().field, "ttl");
        let mut weighted = RecordSet::simple("a.example.com.", "A", 60, &["192.0.2.1"]);
        weighted.weight = Some(1);
        assert_eq!(validate_record_set(&zone(), &weighted).unwrap_err().field, "setIdentifier");
    }

    #[test]
    fn ns_takes_no_policy_and_no_wildcard() {
        let mut weighted_ns = RecordSet::simple("sub.example.com.", "NS", 60, &["ns.example.net."]);
        weighted_ns.set_identifier = Some("a".into());
        weighted_ns.weight = Some(1);
        assert_eq!(validate_record_set(&zone(), &weighted_ns).unwrap_err().field, "setIdentifier");
        let wild_ns = RecordSet::simple("*.example.com.", "NS", 60, &["ns.example.net."]);
        assert_eq!(validate_record_set(&zone(), &wild_ns).unwrap_err().field, "name");
    }

    #[test]
    fn alias_has_no_ttl_or_records() {
        let alias = RecordSet {
            name: "example.com.".into(),
            rtype: "A".into(),
            alias_target: Some(AliasTarget { name: "WWW.example.com".into(), evaluate_target_health: false }),
            ..RecordSet::default()
        };
        let parsed = validate_record_set(&zone(), &alias).unwrap();
        assert_eq!(parsed.canonical.alias_target.unwrap().name, "www.example.com.");
    }

    #[test]
    fn zone_rules_span_record_sets() {
        let base = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1.example.com. h.example.com. 1 2 3 4 5"]),
            RecordSet::simple("example.com.", "NS", 900, &["ns1.example.com."]),
        ];
        assert!(check_zone_consistency(&zone(), &base).is_ok());
        let mut cname_clash = base.clone();
        cname_clash.push(RecordSet::simple("a.example.com.", "CNAME", 60, &["b.example.com."]));
        cname_clash.push(RecordSet::simple("a.example.com.", "A", 60, &["192.0.2.1"]));
        assert!(check_zone_consistency(&zone(), &cname_clash).unwrap_err().message.contains("CNAME"));
        assert!(check_zone_consistency(&zone(), &base[1..]).is_err());
    }

    #[test]
    fn the_snapshot_builds_every_set_that_validation_accepted() {
        use crate::model::HostedZone;
        use crate::snapshot::ZoneContent;
        let raw = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1 h 1 2 3 4 5"]),
            RecordSet::simple("example.com.", "NS", 900, &["ns1"]),
            RecordSet::simple("A_b.example.com", "TXT", 60, &["\"\\200\\255\\000\" caf\u{e9}"]),
            RecordSet::simple("*x.example.com.", "A", 60, &["192.0.2.1"]),
            RecordSet::simple("sp\\032ace.example.com.", "CNAME", 60, &["bin\\200byte"]),
            RecordSet::simple(
                "bin\\200byte.example.com.",
                "HTTPS",
                60,
                &["1 . alpn=h2 no-default-alpn key9"],
            ),
            RecordSet::simple("dot\\.ted.example.com.", "MX", 60, &["10 \\065"]),
            RecordSet::simple("n.example.com.", "NAPTR", 60, &["1 2 \"U\" \"E2U+sip\" \"\\200\" ."]),
            RecordSet::simple("c.example.com.", "CAA", 60, &["0 issue \"\\200\""]),
        ];
        let canonical: Vec<RecordSet> = raw
            .iter()
            .map(|r| validate_record_set(&zone(), r).unwrap_or_else(|e| panic!("{e}")).canonical)
            .collect();
        // Validation of the canonical form is the identity.
        for set in &canonical {
            assert_eq!(&validate_record_set(&zone(), set).unwrap().canonical, set);
        }
        check_zone_consistency(&zone(), &canonical).unwrap();
        let hosted =
            HostedZone { id: "Z1".into(), account_id: "A1".into(), name: "example.com.".into(), serial: 1 };
        let content = ZoneContent::build(hosted, &canonical).unwrap();
        assert!(content.skipped.is_empty(), "{:?}", content.skipped);
    }

    /// Random octets in names and strings: whatever validation accepts, it
    /// accepts again unchanged in canonical form, and the snapshot serves.
    #[test]
    fn canonical_form_is_a_fixed_point_for_random_octets() {
        use crate::model::HostedZone;
        use crate::names::label_text;
        use crate::rdata::quote_character_string;
        use crate::snapshot::ZoneContent;
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};
        let mut rng = StdRng::seed_from_u64(9);
        let octets = |rng: &mut StdRng, max: usize| -> Vec<u8> {
            let len = rng.random_range(1..=max);
            (0..len).map(|_| rng.random::<u8>()).collect()
        };
        let mut sets = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1 h 1 2 3 4 5"]),
            RecordSet::simple("example.com.", "NS", 900, &["ns1"]),
        ];
        for i in 0..400 {
            let owner = format!("{}.r{i}.example.com.", label_text(&octets(&mut rng, 63)));
            let target = label_text(&octets(&mut rng, 40));
            let string = quote_character_string(&octets(&mut rng, 255));
            let (rtype, data) = match i % 6 {
                0 => ("TXT", format!("{string} {}", quote_character_string(&octets(&mut rng, 20)))),
                1 => ("CNAME", target),
                2 => ("MX", format!("10 {target}")),
                3 => ("NAPTR", format!("1 2 \"U\" {string} \"\" {target}")),
                4 => ("CAA", format!("0 tbs {string}")),
                _ => ("SVCB", format!("1 {target} no-default-alpn key{} = {string}", 7 + i)),
            };
            // `key7 = "..."` is two tokens: a key without a value, then junk.
            let data = data.replace(" = ", "=");
            let rrset = RecordSet::simple(&owner, rtype, 60, &[data.as_str()]);
            let parsed = validate_record_set(&zone(), &rrset)
                .unwrap_or_else(|e| panic!("{owner} {rtype} {data}: {e}"));
            let again = validate_record_set(&zone(), &parsed.canonical).unwrap();
            assert_eq!(again.canonical, parsed.canonical);
            assert_eq!(again.rdatas, parsed.rdatas);
            sets.push(parsed.canonical);
        }
        let hosted =
            HostedZone { id: "Z1".into(), account_id: "A1".into(), name: "example.com.".into(), serial: 1 };
        let content = ZoneContent::build(hosted, &sets).unwrap();
        assert!(content.skipped.is_empty(), "{:?}", content.skipped);
    }
}
