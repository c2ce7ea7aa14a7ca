//! Choosing among the members of a policy group (Route 53's routing rules).
//!
//! Every policy skips members whose health check is unhealthy; when every
//! member is unhealthy the group answers as if all were healthy (Route 53),
//! or NODATA / SERVFAIL where the group asks for that.

use rand::Rng;
use rand::seq::SliceRandom;

use crate::answer::{Client, HealthView};
use crate::model::{AllUnhealthy, Failover, PolicyKind};
use crate::snapshot::{Member, PolicyGroup};

/// Most records a multivalue answer returns.
pub const MULTIVALUE_MAX: usize = 8;

/// What a policy group answers.
pub(crate) enum Choice<'a> {
    /// These members' records, in this order.
    Members(Vec<&'a Member>),
    /// No records (NOERROR, empty answer).
    NoData,
    /// SERVFAIL.
    ServFail,
}

/// A choice and the ECS scope it depended on.
pub(crate) struct Decision<'a> {
    pub(crate) choice: Choice<'a>,
    pub(crate) scope: u8,
}

fn healthy(member: &Member, health: &dyn HealthView) -> bool {
    member.health_check_id().is_none_or(|id| health.is_healthy(id))
}

/// Chooses the members of `group` to answer `client` with.
pub(crate) fn choose<'a, R: Rng + ?Sized>(
    group: &'a PolicyGroup,
    _client: Client,
    health: &dyn HealthView,
    rng: &mut R,
) -> Decision<'a> {
    let healthy_members: Vec<&Member> = group.members.iter().filter(|m| healthy(m, health)).collect();
    let all_down = healthy_members.is_empty();
    if all_down {
        match group.all_unhealthy {
            AllUnhealthy::Nodata => return Decision { choice: Choice::NoData, scope: 0 },
            AllUnhealthy::Servfail => return Decision { choice: Choice::ServFail, scope: 0 },
            AllUnhealthy::AnswerAll => {}
        }
    }
    let candidates: Vec<&Member> = if all_down { group.members.iter().collect() } else { healthy_members };
    let choice = match group.policy {
        Some(PolicyKind::Weighted) => weighted(&candidates, rng).map(|m| vec![m]),
        Some(PolicyKind::Failover) => failover(group, health).map(|m| vec![m]),
        Some(PolicyKind::Multivalue) => {
            let mut chosen = candidates.clone();
            chosen.shuffle(rng);
            chosen.truncate(MULTIVALUE_MAX);
            Some(chosen)
        }
        Some(PolicyKind::Geolocation) => geolocation_default(&candidates).map(|m| vec![m]),
        Some(PolicyKind::IpBased) => candidates
            .iter()
            .copied()
            .find(|m| m.routing.cidr_routing.as_ref().is_some_and(|c| c.location_name == "*"))
            .map(|m| vec![m]),
        // Location-based choice needs the client's position; without it the
        // first candidate in stored order answers.
        Some(PolicyKind::Latency) | Some(PolicyKind::Geoproximity) | None => {
            candidates.first().map(|m| vec![*m])
        }
    };
    match choice {
        Some(members) if !members.is_empty() => Decision { choice: Choice::Members(members), scope: 0 },
        _ => Decision { choice: Choice::NoData, scope: 0 },
    }
}

/// Weighted: chance weight / sum over the non-zero weights; the zero-weight
/// members only when no non-zero member is a candidate (then uniformly).
fn weighted<'a, R: Rng + ?Sized>(candidates: &[&'a Member], rng: &mut R) -> Option<&'a Member> {
    let weight = |m: &Member| u32::from(m.routing.weight.unwrap_or(0));
    let total: u32 = candidates.iter().map(|m| weight(m)).sum();
    if total == 0 {
        if candidates.is_empty() {
            return None;
        }
        return Some(candidates[rng.random_range(0..candidates.len())]);
    }
    let mut pick = rng.random_range(0..total);
    for member in candidates {
        let w = weight(member);
        if pick < w {
            return Some(member);
        }
        pick -= w;
    }
    None
}

/// Failover: PRIMARY while healthy, else a healthy SECONDARY, else PRIMARY.
fn failover<'a>(group: &'a PolicyGroup, health: &dyn HealthView) -> Option<&'a Member> {
    let role = |r: Failover| group.members.iter().find(|m| m.routing.failover == Some(r));
    let primary = role(Failover::Primary);
    let secondary = role(Failover::Secondary);
    match (primary, secondary) {
        (Some(p), _) if healthy(p, health) => Some(p),
        (_, Some(s)) if healthy(s, health) => Some(s),
        (Some(p), _) => Some(p),
        (None, s) => s,
    }
}

/// Geolocation without a known client location: the default (`*`) member.
fn geolocation_default<'a>(candidates: &[&'a Member]) -> Option<&'a Member> {
    candidates
        .iter()
        .copied()
        .find(|m| m.routing.geo_location.as_ref().is_some_and(|g| g.country.as_deref() == Some("*")))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::model::{HostedZone, RecordSet};
    use crate::snapshot::ZoneContent;

    fn zone_with(members: Vec<RecordSet>) -> ZoneContent {
        let mut rrsets = vec![RecordSet::simple("example.com.", "SOA", 60, &["ns. h. 1 2 3 4 5"])];
        rrsets.extend(members);
        let zone =
            HostedZone { id: "Z".into(), account_id: "A".into(), name: "example.com.".into(), serial: 1 };
        ZoneContent::build(zone, &rrsets).unwrap()
    }

    fn member(id: &str, addr: &str) -> RecordSet {
        let mut r = RecordSet::simple("w.example.com.", "A", 60, &[addr]);
        r.set_identifier = Some(id.into());
        r
    }

    fn group_of(zone: &ZoneContent) -> &PolicyGroup {
        zone.policy_group_for_tests("w.example.com.", hickory_proto::rr::RecordType::A)
    }

    fn client() -> Client {
        Client::from_addr(IpAddr::from([192, 0, 2, 1]))
    }

    #[test]
    fn weighted_follows_weights_and_skips_zero() {
        let mut a = member("a", "192.0.2.1");
        a.weight = Some(3);
        let mut b = member("b", "192.0.2.2");
        b.weight = Some(1);
        let mut z = member("z", "192.0.2.3");
        z.weight = Some(0);
        let zone = zone_with(vec![a, b, z]);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts: HashMap<String, u32> = HashMap::new();
        for _ in 0..4000 {
            let Choice::Members(m) =
                choose(group_of(&zone), client(), &crate::answer::AllHealthy, &mut rng).choice
            else {
                panic!()
            };
            *counts.entry(m[0].routing.set_identifier.clone().unwrap()).or_default() += 1;
        }
        assert_eq!(counts.get("z"), None);
        let a_share = f64::from(counts["a"]) / 4000.0;
        assert!((a_share - 0.75).abs() < 0.03, "{a_share}");
    }

    #[test]
    fn failover_follows_health_and_falls_back_to_primary() {
        let mut p = member("p", "192.0.2.1");
        p.failover = Some(Failover::Primary);
        p.health_check_id = Some("hp".into());
        let mut s = member("s", "192.0.2.2");
        s.failover = Some(Failover::Secondary);
        s.health_check_id = Some("hs".into());
        let zone = zone_with(vec![p, s]);
        let mut rng = StdRng::seed_from_u64(1);
        let pick = |health: &HashMap<String, bool>, rng: &mut StdRng| match choose(
            group_of(&zone),
            client(),
            health,
            rng,
        )
        .choice
        {
            Choice::Members(m) => m[0].routing.set_identifier.clone().unwrap(),
            _ => panic!(),
        };
        let mut health = HashMap::new();
        assert_eq!(pick(&health, &mut rng), "p");
        health.insert("hp".to_string(), false);
        assert_eq!(pick(&health, &mut rng), "s");
        health.insert("hs".to_string(), false);
        assert_eq!(pick(&health, &mut rng), "p", "both down: primary");
    }

    #[test]
    fn multivalue_caps_at_eight_and_all_down_answers_all_or_nodata() {
        let mut members = Vec::new();
        for i in 0..10 {
            let mut m = member(&format!("m{i}"), &format!("192.0.2.{i}"));
            m.multi_value_answer = Some(true);
            m.health_check_id = Some(format!("h{i}"));
            members.push(m);
        }
        let zone = zone_with(members.clone());
        let mut rng = StdRng::seed_from_u64(1);
        let mut health: HashMap<String, bool> = (0..10).map(|i| (format!("h{i}"), i < 3)).collect();
        let Choice::Members(m) = choose(group_of(&zone), client(), &health, &mut rng).choice else {
            panic!()
        };
        assert_eq!(m.len(), 3);
        for v in health.values_mut() {
            *v = false;
        }
        let Choice::Members(m) = choose(group_of(&zone), client(), &health, &mut rng).choice else {
            panic!()
        };
        assert_eq!(m.len(), MULTIVALUE_MAX);
        for m in members.iter_mut() {
            m.all_unhealthy = Some(AllUnhealthy::Nodata);
        }
        let zone = zone_with(members);
        assert!(matches!(choose(group_of(&zone), client(), &health, &mut rng).choice, Choice::NoData));
    }
}
