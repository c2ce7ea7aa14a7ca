//! RFC 1035 zone-file text: parsing a file into record sets, and rendering a
//! zone's record sets back into a file that `named-checkzone` accepts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hickory_proto::rr::{Name, RecordType};
use hickory_proto::serialize::txt::Parser;

use crate::ValidationError;
use crate::model::RecordSet;
use crate::rdata::rdata_text;
use crate::validate::validate_record_set;

/// A zone file read into record sets.
#[derive(Debug, Clone)]
pub struct ParsedZoneFile {
    /// The zone's origin.
    pub origin: Name,
    /// Its record sets, canonical, one per name and type.
    pub rrsets: Vec<RecordSet>,
}

/// Parses zone-file text. `origin` is used when the file has no `$ORIGIN`.
/// `$INCLUDE` is refused: a zone file must stand alone.
pub fn parse_zone_file(text: &str, origin: Option<&Name>) -> Result<ParsedZoneFile, ValidationError> {
    if let Some((line_no, _)) = text
        .lines()
        .enumerate()
        .find(|(_, line)| line.trim_start().to_ascii_uppercase().starts_with("$INCLUDE"))
    {
        return Err(ValidationError::new(
            "zonefile",
            format!("line {}: $INCLUDE is not supported; inline the included file", line_no + 1),
        ));
    }
    let parser = Parser::new(text, None, origin.cloned());
    let (origin, sets) = parser
        .parse()
        .map_err(|e| ValidationError::new("zonefile", format!("not a valid zone file: {e}")))?;
    let origin = origin.to_lowercase();
    let mut by_key: BTreeMap<(String, String), RecordSet> = BTreeMap::new();
    for (_, set) in sets {
        let rtype = set.record_type();
        let name = set.name().to_lowercase().to_ascii();
        let mut ttl = u32::MAX;
        let mut records = Vec::new();
        for record in set.records_without_rrsigs() {
            ttl = ttl.min(record.ttl);
            records.push(rdata_text(&record.data));
        }
        if records.is_empty() {
            continue;
        }
        let entry = by_key.entry((name.clone(), rtype.to_string())).or_insert_with(|| RecordSet {
            name,
            rtype: rtype.to_string(),
            ttl: Some(ttl),
            ..RecordSet::default()
        });
        entry.ttl = Some(entry.ttl.unwrap_or(ttl).min(ttl));
        entry.records.extend(records);
    }
    let mut rrsets = Vec::with_capacity(by_key.len());
    for (i, rrset) in by_key.into_values().enumerate() {
        let parsed = validate_record_set(&origin, &rrset)
            .map_err(|e| e.within(&format!("zonefile record set {i} ({} {})", rrset.name, rrset.rtype)))?;
        rrsets.push(parsed.canonical);
    }
    Ok(ParsedZoneFile { origin, rrsets })
}

/// Orders record sets the way Route 53 lists them: by name with its labels
/// reversed (so a zone's apex comes first and children follow their
/// parents), then SOA and NS first, then by type, then by set identifier.
pub fn route53_order(a: &RecordSet, b: &RecordSet) -> std::cmp::Ordering {
    fn reversed(name: &str) -> Vec<&str> {
        name.trim_end_matches('.').rsplit('.').collect()
    }
    fn type_rank(t: &str) -> (u8, &str) {
        match t {
            "SOA" => (0, t),
            "NS" => (1, t),
            _ => (2, t),
        }
    }
    reversed(&a.name)
        .cmp(&reversed(&b.name))
        .then_with(|| type_rank(&a.rtype).cmp(&type_rank(&b.rtype)))
        .then_with(|| a.set_identifier.cmp(&b.set_identifier))
}

/// Renders a zone as RFC 1035 text. The SOA carries `serial`. Record sets a
/// zone file cannot express (alias and routing-policy sets) are written as
/// comments so the file stays loadable elsewhere.
pub fn render_zone_file(origin: &Name, serial: u32, rrsets: &[RecordSet]) -> String {
    let mut sorted: Vec<&RecordSet> = rrsets.iter().collect();
    sorted.sort_by(|a, b| route53_order(a, b));
    let mut out = String::new();
    let _ = writeln!(out, "$ORIGIN {}", origin.to_ascii());
    for rrset in sorted {
        let plain = rrset.alias_target.is_none() && rrset.set_identifier.is_none();
        let prefix = if plain { "" } else { "; " };
        if let Some(alias) = &rrset.alias_target {
            let _ = writeln!(
                out,
                "; {} ALIAS {} -> {} (evaluateTargetHealth={})",
                rrset.name, rrset.rtype, alias.name, alias.evaluate_target_health
            );
            continue;
        }
        if let Some(id) = &rrset.set_identifier {
            let _ = writeln!(out, "; routing policy set {id:?}: {}", serde_like_policy(rrset));
        }
        let ttl = rrset.ttl.unwrap_or(0);
        for record in &rrset.records {
            let data = if rrset.rtype == RecordType::SOA.to_string() {
                with_serial(record, serial)
            } else {
                record.clone()
            };
            let _ = writeln!(out, "{prefix}{}\t{}\tIN\t{}\t{}", rrset.name, ttl, rrset.rtype, data);
        }
    }
    out
}

fn serde_like_policy(rrset: &RecordSet) -> String {
    match rrset.policy() {
        Some(kind) => format!("{kind:?}"),
        None => "none".to_string(),
    }
}

/// Replaces the serial (third field) of SOA presentation text.
pub fn with_serial(soa_text: &str, serial: u32) -> String {
    let mut fields: Vec<String> = soa_text.split_whitespace().map(str::to_string).collect();
    if fields.len() == 7 {
        fields[2] = serial.to_string();
    }
    fields.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n\
@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n\
@ IN NS ns1\n\
ns1 IN A 192.0.2.53\n\
www 60 IN A 192.0.2.1\n\
www 60 IN A 192.0.2.2\n\
mail IN MX 10 mx.example.net.\n\
txt IN TXT \"hello world\"\n";

    #[test]
    fn parses_and_renders_round_trip() {
        let parsed = parse_zone_file(ZONE, None).unwrap();
        assert_eq!(parsed.origin.to_ascii(), "example.com.");
        let www = parsed.rrsets.iter().find(|r| r.name == "www.example.com.").unwrap();
        assert_eq!(www.ttl, Some(60));
        assert_eq!(www.records.len(), 2);
        let text = render_zone_file(&parsed.origin, 42, &parsed.rrsets);
        assert!(text.contains("ns1.example.com. hostmaster.example.com. 42 7200"), "{text}");
        let again = parse_zone_file(&text, None).unwrap();
        let mut a = parsed.rrsets.clone();
        let mut b = again.rrsets.clone();
        for r in a.iter_mut().chain(b.iter_mut()) {
            if r.rtype == "SOA" {
                r.records = vec![with_serial(&r.records[0], 0)];
            }
        }
        assert_eq!(a, b);
    }

    #[test]
    fn include_is_refused_and_garbage_is_an_error() {
        assert!(parse_zone_file("$INCLUDE /etc/passwd\n", None).unwrap_err().message.contains("$INCLUDE"));
        assert!(parse_zone_file("@ IN A not-an-address\n", Some(&Name::from_ascii("x.").unwrap())).is_err());
    }

    #[test]
    fn route53_order_puts_apex_and_parents_first() {
        let mut sets = [
            RecordSet::simple("b.example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("a.b.example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("example.com.", "NS", 1, &["ns."]),
            RecordSet::simple("example.com.", "SOA", 1, &["x"]),
            RecordSet::simple("a.example.com.", "TXT", 1, &["x"]),
            RecordSet::simple("a.example.com.", "A", 1, &["192.0.2.1"]),
        ];
        sets.sort_by(route53_order);
        let keys: Vec<String> = sets.iter().map(|s| format!("{} {}", s.name, s.rtype)).collect();
        assert_eq!(
            keys,
            [
                "example.com. SOA",
                "example.com. NS",
                "a.example.com. A",
                "a.example.com. TXT",
                "b.example.com. A",
                "a.b.example.com. A"
            ]
        );
    }
}
