//! Validation the API adds to core's: the values of routing fields (one
//! record set at a time) and the rules of policy groups, CNAMEs and alias
//! targets over the zone as a batch leaves it. Pure functions: the store
//! runs [`check_groups`] inside the batch's transaction.

use std::collections::HashSet;

use signpost_core::ValidationError;
use signpost_core::model::{PolicyKind, RecordSet};
use signpost_store::ChangeAction;

use crate::geo;

/// Most members of a policy group (Route 53's limit).
pub const MAX_GROUP_MEMBERS: usize = 100;
/// Most members of a geoproximity group (Route 53's limit).
pub const MAX_GEOPROXIMITY_MEMBERS: usize = 30;
/// Longest comment on a zone or change.
pub const MAX_COMMENT_LEN: usize = 256;

/// A change of a batch, canonical, with its position in the request.
#[derive(Debug, Clone)]
pub struct BatchItem {
    /// Index in `changes`.
    pub index: usize,
    /// What it does.
    pub action: ChangeAction,
    /// The canonical record set.
    pub rrset: RecordSet,
}

impl BatchItem {
    fn field(&self, rest: &str) -> String {
        if rest.is_empty() {
            format!("changes[{}].rrset", self.index)
        } else {
            format!("changes[{}].rrset.{rest}", self.index)
        }
    }
}

/// Whether `id` looks like a Signpost id of kind `prefix` (`Z`, `H`, ...).
pub fn is_id(id: &str, prefix: char) -> bool {
    id.len() == 21
        && id.starts_with(prefix)
        && id[1..].bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

/// Checks a free-text comment.
pub fn check_comment(comment: Option<&str>, field: &str) -> Result<(), ValidationError> {
    if let Some(c) = comment {
        if c.chars().count() > MAX_COMMENT_LEN {
            return Err(ValidationError::new(field, format!("at most {MAX_COMMENT_LEN} characters")));
        }
        if c.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\t') {
            return Err(ValidationError::new(field, "control characters are not allowed"));
        }
    }
    Ok(())
}

/// Whether `code` has the shape of a cloud region code (`us-east-1`, `us-gov-west-1`).
pub fn is_region_code(code: &str) -> bool {
    // us-east-1, eu-central-2, us-gov-west-1, eusc-de-east-1, ...
    let parts: Vec<&str> = code.split('-').collect();
    parts.len() >= 3
        && (2..=5).contains(&parts[0].len())
        && parts[..parts.len() - 1].iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
        && parts.last().is_some_and(|n| (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Checks the routing fields of one record set (errors name fields relative
/// to the record set). Core checks names, types, data and the presence of a
/// set identifier.
pub fn check_rrset_fields(rrset: &RecordSet) -> Result<(), ValidationError> {
    if let Some(id) = &rrset.set_identifier
        && id.chars().any(char::is_control)
    {
        return Err(ValidationError::new("setIdentifier", "control characters are not allowed"));
    }
    if rrset.rtype.eq_ignore_ascii_case("SOA") && rrset.set_identifier.is_some() {
        return Err(ValidationError::new("setIdentifier", "the SOA record set takes no routing policy"));
    }
    if let Some(region) = &rrset.region
        && !is_region_code(region)
    {
        return Err(ValidationError::new(
            "region",
            format!("{region:?} is not a region code like us-east-1 or eu-central-1"),
        ));
    }
    if let Some(geo) = &rrset.geo_location {
        check_geo_location(geo.continent.as_deref(), geo.country.as_deref(), geo.subdivision.as_deref())?;
    }
    if let Some(prox) = &rrset.geo_proximity {
        match (&prox.region, &prox.coordinates) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(ValidationError::new(
                    "geoProximity",
                    "give exactly one of region and coordinates",
                ));
            }
            (Some(region), None) if !is_region_code(region) => {
                return Err(ValidationError::new(
                    "geoProximity.region",
                    format!("{region:?} is not a region code like us-east-1"),
                ));
            }
            _ => {}
        }
    }
    if rrset.multi_value_answer == Some(true) {
        if rrset.alias_target.is_some() {
            return Err(ValidationError::new(
                "aliasTarget",
                "a multivalue answer record set cannot be an alias",
            ));
        }
        let rtype = rrset.rtype.to_ascii_uppercase();
        if matches!(rtype.as_str(), "NS" | "CNAME" | "SOA") {
            return Err(ValidationError::new(
                "multiValueAnswer",
                format!("multivalue answer routing does not apply to {rtype} record sets"),
            ));
        }
    }
    if let Some(id) = &rrset.health_check_id
        && !is_id(id, 'H')
    {
        return Err(ValidationError::new("healthCheckId", format!("no health check {id:?} in this account")));
    }
    if let Some(cidr) = &rrset.cidr_routing {
        if !signpost_store::routing_api::is_collection_id(&cidr.collection_id) {
            return Err(ValidationError::new(
                "cidrRouting.collectionId",
                format!("no CIDR collection {:?} in this account", cidr.collection_id),
            ));
        }
        let name = &cidr.location_name;
        let valid = name == "*"
            || ((1..=16).contains(&name.len())
                && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        if !valid {
            return Err(ValidationError::new(
                "cidrRouting.locationName",
                "a location name is 1 to 16 letters, digits, - or _, or * for the default",
            ));
        }
    }
    Ok(())
}

fn check_geo_location(
    continent: Option<&str>,
    country: Option<&str>,
    subdivision: Option<&str>,
) -> Result<(), ValidationError> {
    match (continent, country, subdivision) {
        (Some(c), None, None) => {
            if !geo::is_continent(c) {
                return Err(ValidationError::new(
                    "geoLocation.continent",
                    format!("{c:?} is not a continent code (AF AN AS EU NA OC SA)"),
                ));
            }
        }
        (Some(_), _, _) => {
            return Err(ValidationError::new("geoLocation", "a continent excludes country and subdivision"));
        }
        (None, Some("*"), None) => {}
        (None, Some("*"), Some(_)) => {
            return Err(ValidationError::new(
                "geoLocation.subdivision",
                "the default location * has no subdivision",
            ));
        }
        (None, Some(c), sub) => {
            if !geo::is_country(c) {
                return Err(ValidationError::new(
                    "geoLocation.country",
                    format!("{c:?} is not an ISO 3166-1 alpha-2 country code or *"),
                ));
            }
            if let Some(s) = sub
                && !geo::is_subdivision(c, s)
            {
                return Err(ValidationError::new(
                    "geoLocation.subdivision",
                    format!("{s:?} is not a subdivision of {c}"),
                ));
            }
        }
        (None, None, Some(_)) => {
            return Err(ValidationError::new("geoLocation.country", "a subdivision needs its country"));
        }
        (None, None, None) => {
            return Err(ValidationError::new(
                "geoLocation",
                "give a continent, a country (with an optional subdivision) or country *",
            ));
        }
    }
    Ok(())
}

fn policy_name(p: Option<PolicyKind>) -> &'static str {
    match p {
        None => "simple (no setIdentifier)",
        Some(PolicyKind::Weighted) => "weighted",
        Some(PolicyKind::Latency) => "latency",
        Some(PolicyKind::Geolocation) => "geolocation",
        Some(PolicyKind::Geoproximity) => "geoproximity",
        Some(PolicyKind::Failover) => "failover",
        Some(PolicyKind::Multivalue) => "multivalue answer",
        Some(PolicyKind::IpBased) => "IP-based",
    }
}

/// Checks the zone as a batch leaves it (`all`, canonical) against the
/// rules that span record sets, for every record set the batch wrote or
/// deleted: one policy per name and type, failover one PRIMARY and one
/// SECONDARY, unique locations and regions, one CIDR collection per group,
/// group sizes, a CNAME alone at its name, and alias targets inside the zone
/// that exist. Errors name the change (`changes[3].rrset.failover`).
pub fn check_groups(zone: &str, batch: &[BatchItem], all: &[RecordSet]) -> Result<(), ValidationError> {
    for (position, item) in batch.iter().enumerate() {
        if item.action == ChangeAction::Delete {
            continue;
        }
        let r = &item.rrset;
        // A member that a later change of the batch writes is judged there, so
        // that a clash is reported at the change that brought it.
        let written_later = |o: &RecordSet| {
            batch[position + 1..].iter().any(|later| {
                later.action != ChangeAction::Delete
                    && later.rrset.name == o.name
                    && later.rrset.rtype == o.rtype
                    && later.rrset.set_identifier == o.set_identifier
            })
        };
        let group: Vec<&RecordSet> = all.iter().filter(|o| o.name == r.name && o.rtype == r.rtype).collect();
        let others: Vec<&RecordSet> = group
            .iter()
            .copied()
            .filter(|o| o.set_identifier != r.set_identifier && !written_later(o))
            .collect();
        let policy = r.policy();
        if let Some(other) = others.iter().find(|o| o.policy() != policy) {
            return Err(ValidationError::new(
                item.field(""),
                format!(
                    "{} {} mixes routing policies: this record set is {}, {} is {}; a name and type use one policy",
                    r.name,
                    r.rtype,
                    policy_name(policy),
                    other.set_identifier.as_deref().map_or("another".to_string(), |s| format!("{s:?}")),
                    policy_name(other.policy())
                ),
            ));
        }
        let max = if policy == Some(PolicyKind::Geoproximity) {
            MAX_GEOPROXIMITY_MEMBERS
        } else {
            MAX_GROUP_MEMBERS
        };
        if group.len() > max {
            return Err(ValidationError::new(
                item.field(""),
                format!("{} {} would have {} record sets; the limit is {max}", r.name, r.rtype, group.len()),
            ));
        }
        check_member_against_group(item, &others)?;
        check_cname_alone(item, all)?;
        check_alias_target(zone, item, all)?;
    }
    // Deletes last: an alias the batch writes to a target it deletes is
    // reported at the alias above.
    for item in batch.iter().filter(|i| i.action == ChangeAction::Delete) {
        check_deleted_target(zone, item, all)?;
    }
    Ok(())
}

fn check_member_against_group(item: &BatchItem, others: &[&RecordSet]) -> Result<(), ValidationError> {
    let r = &item.rrset;
    let clash = |other: &RecordSet| other.set_identifier.clone().unwrap_or_default();
    if let Some(role) = r.failover
        && let Some(other) = others.iter().find(|o| o.failover == Some(role))
    {
        return Err(ValidationError::new(
            item.field("failover"),
            format!(
                "a failover group has one PRIMARY and one SECONDARY; {} {} already has {} {:?}",
                r.name,
                r.rtype,
                role.as_str(),
                clash(other)
            ),
        ));
    }
    if let Some(geo) = &r.geo_location
        && let Some(other) = others.iter().find(|o| o.geo_location.as_ref() == Some(geo))
    {
        return Err(ValidationError::new(
            item.field("geoLocation"),
            format!("the location is already used by {:?} in this group", clash(other)),
        ));
    }
    if let Some(region) = &r.region
        && let Some(other) = others.iter().find(|o| o.region.as_ref() == Some(region))
    {
        return Err(ValidationError::new(
            item.field("region"),
            format!("region {region} is already used by {:?} in this group", clash(other)),
        ));
    }
    if let Some(prox) = &r.geo_proximity
        && let Some(other) = others.iter().find(|o| {
            o.geo_proximity
                .as_ref()
                .is_some_and(|p| p.region == prox.region && p.coordinates == prox.coordinates)
        })
    {
        return Err(ValidationError::new(
            item.field("geoProximity"),
            format!("the location is already used by {:?} in this group", clash(other)),
        ));
    }
    if let Some(cidr) = &r.cidr_routing {
        for other in others {
            let Some(theirs) = &other.cidr_routing else { continue };
            if theirs.collection_id != cidr.collection_id {
                return Err(ValidationError::new(
                    item.field("cidrRouting.collectionId"),
                    format!(
                        "every record set of a group uses one CIDR collection; {:?} uses {}",
                        clash(other),
                        theirs.collection_id
                    ),
                ));
            }
            if theirs.location_name == cidr.location_name {
                return Err(ValidationError::new(
                    item.field("cidrRouting.locationName"),
                    format!(
                        "location {} is already used by {:?} in this group",
                        cidr.location_name,
                        clash(other)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_cname_alone(item: &BatchItem, all: &[RecordSet]) -> Result<(), ValidationError> {
    let r = &item.rrset;
    let types: HashSet<&str> = all.iter().filter(|o| o.name == r.name).map(|o| o.rtype.as_str()).collect();
    if r.rtype == "CNAME" && types.len() > 1 {
        let mut other: Vec<&str> = types.into_iter().filter(|t| *t != "CNAME").collect();
        other.sort_unstable();
        return Err(ValidationError::new(
            item.field("type"),
            format!("a CNAME must stand alone, but {} also has {}", r.name, other.join(" ")),
        ));
    }
    if r.rtype != "CNAME" && types.contains("CNAME") {
        return Err(ValidationError::new(
            item.field("type"),
            format!("{} has a CNAME record set; no other type may share its name", r.name),
        ));
    }
    Ok(())
}

/// Whether `name` is `zone` or below it (canonical names).
pub fn inside_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}")) || zone == "."
}

fn check_alias_target(zone: &str, item: &BatchItem, all: &[RecordSet]) -> Result<(), ValidationError> {
    let r = &item.rrset;
    let Some(alias) = &r.alias_target else { return Ok(()) };
    if alias.name == r.name {
        return Err(ValidationError::new(
            item.field("aliasTarget.name"),
            "an alias cannot point at its own name",
        ));
    }
    if inside_zone(&alias.name, zone) && !all.iter().any(|o| o.name == alias.name && o.rtype == r.rtype) {
        return Err(ValidationError::new(
            item.field("aliasTarget.name"),
            format!("the alias target {} has no {} record set in this zone", alias.name, r.rtype),
        ));
    }
    Ok(())
}

fn check_deleted_target(zone: &str, item: &BatchItem, all: &[RecordSet]) -> Result<(), ValidationError> {
    let r = &item.rrset;
    if all.iter().any(|o| o.name == r.name && o.rtype == r.rtype) || !inside_zone(&r.name, zone) {
        return Ok(());
    }
    if let Some(alias) =
        all.iter().find(|o| o.rtype == r.rtype && o.alias_target.as_ref().is_some_and(|a| a.name == r.name))
    {
        return Err(ValidationError::new(
            item.field(""),
            format!(
                "{} {} is the target of the alias {} {}; change or delete the alias in the same batch",
                r.name, r.rtype, alias.name, alias.rtype
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use signpost_core::model::{AliasTarget, Failover, GeoLocation};

    fn weighted(name: &str, id: &str) -> RecordSet {
        let mut r = RecordSet::simple(name, "A", 60, &["192.0.2.1"]);
        r.set_identifier = Some(id.into());
        r.weight = Some(1);
        r
    }

    fn item(index: usize, action: ChangeAction, rrset: RecordSet) -> BatchItem {
        BatchItem { index, action, rrset }
    }

    #[test]
    fn routing_field_values_are_checked() {
        let mut r = weighted("a.example.com.", "x");
        r.weight = None;
        r.geo_location = Some(GeoLocation { country: Some("ZZ".into()), ..Default::default() });
        assert_eq!(check_rrset_fields(&r).unwrap_err().field, "geoLocation.country");
        r.geo_location = Some(GeoLocation {
            country: Some("US".into()),
            subdivision: Some("XX".into()),
            ..Default::default()
        });
        assert_eq!(check_rrset_fields(&r).unwrap_err().field, "geoLocation.subdivision");
        r.geo_location = Some(GeoLocation {
            continent: Some("EU".into()),
            country: Some("DE".into()),
            ..Default::default()
        });
        assert_eq!(check_rrset_fields(&r).unwrap_err().field, "geoLocation");
        r.geo_location = Some(GeoLocation { country: Some("*".into()), ..Default::default() });
        assert!(check_rrset_fields(&r).is_ok());
        r.geo_location = None;
        r.region = Some("moon-1".into());
        assert_eq!(check_rrset_fields(&r).unwrap_err().field, "region");
        r.region = Some("us-gov-west-1".into());
        assert!(check_rrset_fields(&r).is_ok());
        r.health_check_id = Some("nope".into());
        assert_eq!(check_rrset_fields(&r).unwrap_err().field, "healthCheckId");
    }

    #[test]
    fn failover_has_one_primary_and_one_secondary() {
        let mut a = weighted("f.example.com.", "a");
        a.weight = None;
        a.failover = Some(Failover::Primary);
        let mut b = a.clone();
        b.set_identifier = Some("b".into());
        let all = vec![a.clone(), b.clone()];
        let err =
            check_groups("example.com.", &[item(1, ChangeAction::Create, b.clone())], &all).unwrap_err();
        assert_eq!(err.field, "changes[1].rrset.failover");
        let both = [item(0, ChangeAction::Create, a.clone()), item(1, ChangeAction::Create, b.clone())];
        assert_eq!(check_groups("example.com.", &both, &all).unwrap_err().field, "changes[1].rrset.failover");
        b.failover = Some(Failover::Secondary);
        assert!(check_groups("example.com.", &[item(0, ChangeAction::Create, b.clone())], &[a, b]).is_ok());
    }

    #[test]
    fn one_policy_per_group_and_cname_alone() {
        let simple = RecordSet::simple("w.example.com.", "A", 60, &["192.0.2.1"]);
        let member = weighted("w.example.com.", "x");
        let all = vec![simple, member.clone()];
        let err = check_groups("example.com.", &[item(0, ChangeAction::Create, member)], &all).unwrap_err();
        assert!(err.message.contains("mixes routing policies"), "{}", err.message);
        let cname = RecordSet::simple("c.example.com.", "CNAME", 60, &["w.example.com."]);
        let txt = RecordSet::simple("c.example.com.", "TXT", 60, &["\"x\""]);
        let err = check_groups("example.com.", &[item(2, ChangeAction::Create, txt.clone())], &[cname, txt])
            .unwrap_err();
        assert_eq!(err.field, "changes[2].rrset.type");
    }

    #[test]
    fn alias_targets_must_exist_and_stay() {
        let target = RecordSet::simple("t.example.com.", "A", 60, &["192.0.2.1"]);
        let alias = RecordSet {
            name: "example.com.".into(),
            rtype: "A".into(),
            alias_target: Some(AliasTarget { name: "t.example.com.".into(), evaluate_target_health: false }),
            ..RecordSet::default()
        };
        let err = check_groups(
            "example.com.",
            &[item(0, ChangeAction::Create, alias.clone())],
            std::slice::from_ref(&alias),
        )
        .unwrap_err();
        assert_eq!(err.field, "changes[0].rrset.aliasTarget.name");
        assert!(
            check_groups(
                "example.com.",
                &[item(0, ChangeAction::Create, alias.clone())],
                &[alias.clone(), target.clone()]
            )
            .is_ok()
        );
        let err =
            check_groups("example.com.", &[item(0, ChangeAction::Delete, target)], &[alias]).unwrap_err();
        assert!(err.message.contains("target of the alias"), "{}", err.message);
    }

    #[test]
    fn ids_have_their_shape() {
        assert!(is_id("Z0123456789ABCDEF0123", 'Z'));
        assert!(!is_id("Z0123456789abcdef0123", 'Z'));
        assert!(!is_id("H0123456789ABCDEF0123", 'Z'));
        assert!(!is_id("Z01", 'Z'));
        assert!(!is_id("Zé123456789ABCDEF012", 'Z'));
        assert!(
            inside_zone("a.example.com.", "example.com.") && !inside_zone("aexample.com.", "example.com.")
        );
    }
}
