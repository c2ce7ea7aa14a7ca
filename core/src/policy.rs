//! Choosing among the members of a policy group (Route 53's routing rules,
//! research/route53.md §2).
//!
//! Every policy skips members whose health check is unhealthy; when every
//! applicable member is unhealthy the group answers as if all were healthy
//! (Route 53), or NODATA / SERVFAIL where the group asks for that.

use rand::RngCore;
use rand::seq::SliceRandom;

use crate::cidr::ClientNet;
use crate::geo::{Location, biased_distance, distance_km};
use crate::model::{AllUnhealthy, Coordinates, Failover, PolicyKind};
use crate::routing::AccountRouting;
use crate::snapshot::{Member, PolicyGroup};

/// Most records a multivalue answer returns.
pub const MULTIVALUE_MAX: usize = 8;

/// What a policy needs to know about the query and the world.
pub(crate) trait PolicyEnv {
    /// Whether a member counts as healthy (its check, and its alias target
    /// when it evaluates target health).
    fn healthy(&mut self, member: &Member) -> bool;
    /// The client's network as routing sees it.
    fn client(&self) -> ClientNet;
    /// The client's location (looked up once, on first use).
    fn location(&mut self) -> Option<Location>;
    /// The zone owner's routing data.
    fn routing(&self) -> Option<&AccountRouting>;
    /// Randomness.
    fn rng(&mut self) -> &mut dyn RngCore;
}

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

impl<'a> Decision<'a> {
    fn one(member: &'a Member, scope: u8) -> Self {
        Decision { choice: Choice::Members(vec![member]), scope }
    }

    fn nodata(scope: u8) -> Self {
        Decision { choice: Choice::NoData, scope }
    }
}

/// Chooses the members of `group` to answer with.
pub(crate) fn choose<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> Decision<'a> {
    match group.policy {
        Some(PolicyKind::Weighted) => weighted(group, env),
        Some(PolicyKind::Failover) => failover(group, env),
        Some(PolicyKind::Multivalue) => multivalue(group, env),
        Some(PolicyKind::Geolocation) => geolocation(group, env),
        Some(PolicyKind::IpBased) => ip_based(group, env),
        Some(PolicyKind::Latency) => {
            let (ranked, scope) = rank_by_latency(group, env);
            first_healthy(group, ranked, scope, env)
        }
        Some(PolicyKind::Geoproximity) => {
            let (ranked, scope) = rank_by_proximity(group, env);
            first_healthy(group, ranked, scope, env)
        }
        None => first_healthy(group, group.members.iter().collect(), 0, env),
    }
}

/// The first healthy member of `ranked`; when none is healthy, the group's
/// all-unhealthy rule (Route 53: the first of them anyway).
fn first_healthy<'a>(
    group: &'a PolicyGroup,
    ranked: Vec<&'a Member>,
    scope: u8,
    env: &mut dyn PolicyEnv,
) -> Decision<'a> {
    if let Some(m) = ranked.iter().copied().find(|m| env.healthy(m)) {
        return Decision::one(m, scope);
    }
    match (group.all_unhealthy, ranked.first()) {
        (_, None) => Decision::nodata(scope),
        (AllUnhealthy::AnswerAll, Some(m)) => Decision::one(m, scope),
        (AllUnhealthy::Nodata, Some(_)) => Decision::nodata(scope),
        (AllUnhealthy::Servfail, Some(_)) => Decision { choice: Choice::ServFail, scope },
    }
}

/// Weighted: chance weight / sum. Zero-weight members answer only when all
/// weights are zero, or when every non-zero member is unhealthy; when all
/// are unhealthy, the non-zero ones answer as if healthy.
fn weighted<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> Decision<'a> {
    let weight = |m: &Member| u32::from(m.routing.weight.unwrap_or(0));
    let healthy: Vec<&Member> = group.members.iter().filter(|m| env.healthy(m)).collect();
    let pool: Vec<&Member> = if healthy.is_empty() {
        match group.all_unhealthy {
            AllUnhealthy::AnswerAll => group.members.iter().collect(),
            AllUnhealthy::Nodata => return Decision::nodata(0),
            AllUnhealthy::Servfail => return Decision { choice: Choice::ServFail, scope: 0 },
        }
    } else {
        healthy
    };
    let total: u32 = pool.iter().map(|m| weight(m)).sum();
    let rng = env.rng();
    if total == 0 {
        return match pool.len() {
            0 => Decision::nodata(0),
            n => Decision::one(pool[random_below(rng, n as u32) as usize], 0),
        };
    }
    let mut pick = random_below(rng, total);
    for member in &pool {
        let w = weight(member);
        if pick < w {
            return Decision::one(member, 0);
        }
        pick -= w;
    }
    Decision::nodata(0)
}

fn random_below(rng: &mut dyn RngCore, n: u32) -> u32 {
    // Lemire's multiply-shift: unbiased enough for n ≤ 2^16 (255 × 100 at most here).
    ((u64::from(rng.next_u32()) * u64::from(n)) >> 32) as u32
}

/// Failover: PRIMARY while healthy, else a healthy SECONDARY, else PRIMARY.
fn failover<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> Decision<'a> {
    let role = |r: Failover| group.members.iter().find(|m| m.routing.failover == Some(r));
    let ranked: Vec<&Member> =
        [role(Failover::Primary), role(Failover::Secondary)].into_iter().flatten().collect();
    first_healthy(group, ranked, 0, env)
}

/// Multivalue: up to eight healthy members in random order (all unhealthy:
/// up to eight of them anyway).
fn multivalue<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> Decision<'a> {
    let mut chosen: Vec<&Member> = group.members.iter().filter(|m| env.healthy(m)).collect();
    if chosen.is_empty() {
        match group.all_unhealthy {
            AllUnhealthy::AnswerAll => chosen = group.members.iter().collect(),
            AllUnhealthy::Nodata => return Decision::nodata(0),
            AllUnhealthy::Servfail => return Decision { choice: Choice::ServFail, scope: 0 },
        }
    }
    chosen.shuffle(&mut RngAdapter(env.rng()));
    chosen.truncate(MULTIVALUE_MAX);
    Decision { choice: Choice::Members(chosen), scope: 0 }
}

/// `&mut dyn RngCore` as a sized `RngCore` (for `shuffle`).
struct RngAdapter<'r>(&'r mut dyn RngCore);

impl RngCore for RngAdapter<'_> {
    fn next_u32(&mut self) -> u32 {
        self.0.next_u32()
    }
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        self.0.fill_bytes(dest)
    }
}

/// Geolocation: the most specific match — subdivision, country, continent,
/// then the `*` default; an unhealthy match walks up that chain; no match and
/// no default → NODATA.
fn geolocation<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> Decision<'a> {
    let location = env.location();
    let scope = location.as_ref().map_or(0, |l| l.network_len);
    let find = |pred: &dyn Fn(&crate::model::GeoLocation) -> bool| {
        group.members.iter().find(|m| m.routing.geo_location.as_ref().is_some_and(pred))
    };
    let mut chain: Vec<&Member> = Vec::with_capacity(4);
    if let Some(loc) = &location {
        if let (Some(country), Some(sub)) = (&loc.country, &loc.subdivision)
            && let Some(m) =
                find(&|g| g.country.as_ref() == Some(country) && g.subdivision.as_ref() == Some(sub))
        {
            chain.push(m);
        }
        if let Some(country) = &loc.country
            && let Some(m) = find(&|g| g.country.as_ref() == Some(country) && g.subdivision.is_none())
        {
            chain.push(m);
        }
        if let Some(continent) = &loc.continent
            && let Some(m) = find(&|g| g.continent.as_ref() == Some(continent))
        {
            chain.push(m);
        }
    }
    if let Some(m) = find(&|g| g.country.as_deref() == Some("*")) {
        chain.push(m);
    }
    first_healthy(group, chain, scope, env)
}

/// IP-based: the location of the longest block of the group's CIDR
/// collection that contains the client, then the `*` default.
fn ip_based<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> Decision<'a> {
    let client = env.client();
    let collection =
        group.members.iter().find_map(|m| m.routing.cidr_routing.as_ref()).map(|c| c.collection_id.clone());
    let matched = collection
        .as_ref()
        .and_then(|id| env.routing().and_then(|r| r.cidr_collections.get(id)))
        .map(|table| {
            let m = table.lookup(client);
            (m.value.cloned(), m.scope)
        });
    let (location, scope) = matched.unwrap_or((None, 0));
    let by_location = |name: &str| {
        group
            .members
            .iter()
            .find(|m| m.routing.cidr_routing.as_ref().is_some_and(|c| c.location_name == name))
    };
    let chain: Vec<&Member> =
        [location.as_deref().and_then(by_location), by_location("*")].into_iter().flatten().collect();
    first_healthy(group, chain, scope, env)
}

/// Latency: members ordered by the measured latency from the client's
/// network (the account's table) or, without a measurement, by distance
/// from the client's location to the member's region.
fn rank_by_latency<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> (Vec<&'a Member>, u8) {
    let client = env.client();
    let mut ranked: Vec<&Member> = group.members.iter().collect();
    // A miss in the measured table still decides (a resolver must not cache
    // the answer for the table's blocks): its scope counts too.
    let (measured, table_scope) = match env.routing().map(|r| r.latency.lookup(client)) {
        Some(m) => (m.value.cloned(), m.scope),
        None => (None, 0),
    };
    if let Some(list) = measured {
        let scope = table_scope;
        let ms = |m: &Member| {
            m.routing
                .region
                .as_ref()
                .and_then(|r| list.iter().find(|(region, _)| region == r))
                .map_or(f32::INFINITY, |(_, ms)| *ms)
        };
        ranked.sort_by(|a, b| ms(a).total_cmp(&ms(b)));
        return (ranked, scope);
    }
    let Some(location) = env.location() else { return (ranked, table_scope) };
    let scope = table_scope.max(location.network_len);
    let Some(here) = location.coordinates else { return (ranked, scope) };
    let routing = env.routing();
    let distance = |m: &Member| {
        m.routing
            .region
            .as_deref()
            .and_then(|r| routing.and_then(|rt| rt.region(r)).or_else(|| crate::geo::builtin_region(r)))
            .map_or(f64::INFINITY, |c| distance_km(here, c))
    };
    ranked.sort_by(|a, b| distance(a).total_cmp(&distance(b)));
    (ranked, scope)
}

/// Geoproximity: members ordered by biased distance from the client.
fn rank_by_proximity<'a>(group: &'a PolicyGroup, env: &mut dyn PolicyEnv) -> (Vec<&'a Member>, u8) {
    let mut ranked: Vec<&Member> = group.members.iter().collect();
    let Some(location) = env.location() else { return (ranked, 0) };
    let Some(here) = location.coordinates else { return (ranked, location.network_len) };
    let routing = env.routing();
    let place = |m: &Member| -> Option<(Coordinates, i8)> {
        let g = m.routing.geo_proximity.as_ref()?;
        let at = g.coordinates.or_else(|| {
            let region = g.region.as_deref()?;
            routing.and_then(|r| r.region(region)).or_else(|| crate::geo::builtin_region(region))
        })?;
        Some((at, g.bias))
    };
    let distance = |m: &Member| {
        place(m).map_or(f64::INFINITY, |(at, bias)| biased_distance(distance_km(here, at), bias))
    };
    ranked.sort_by(|a, b| distance(a).total_cmp(&distance(b)));
    (ranked, location.network_len)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::net::IpAddr;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::cidr::Prefix;
    use crate::model::{CidrRouting, GeoLocation, GeoProximity, HostedZone, RecordSet};
    use crate::routing::CidrCollectionData;
    use crate::snapshot::ZoneContent;

    struct TestEnv {
        health: HashMap<String, bool>,
        client: ClientNet,
        location: Option<Location>,
        routing: Option<AccountRouting>,
        rng: StdRng,
    }

    impl TestEnv {
        fn new() -> Self {
            TestEnv {
                health: HashMap::new(),
                client: ClientNet { addr: IpAddr::from([192, 0, 2, 1]), source_len: 32 },
                location: None,
                routing: None,
                rng: StdRng::seed_from_u64(7),
            }
        }
    }

    impl PolicyEnv for TestEnv {
        fn healthy(&mut self, member: &Member) -> bool {
            member.health_check_id().is_none_or(|id| self.health.get(id).copied().unwrap_or(true))
        }
        fn client(&self) -> ClientNet {
            self.client
        }
        fn location(&mut self) -> Option<Location> {
            self.location.clone()
        }
        fn routing(&self) -> Option<&AccountRouting> {
            self.routing.as_ref()
        }
        fn rng(&mut self) -> &mut dyn RngCore {
            &mut self.rng
        }
    }

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
        r.health_check_id = Some(format!("h-{id}"));
        r
    }

    fn group_of(zone: &ZoneContent) -> &PolicyGroup {
        zone.policy_group_for_tests("w.example.com.", hickory_proto::rr::RecordType::A)
    }

    fn picked(decision: Decision<'_>) -> Vec<String> {
        match decision.choice {
            Choice::Members(m) => m.iter().map(|m| m.routing.set_identifier.clone().unwrap()).collect(),
            Choice::NoData => vec!["NODATA".into()],
            Choice::ServFail => vec!["SERVFAIL".into()],
        }
    }

    fn weights(ws: &[(&str, u8)]) -> ZoneContent {
        zone_with(
            ws.iter()
                .enumerate()
                .map(|(i, (id, w))| {
                    let mut m = member(id, &format!("192.0.2.{}", i + 1));
                    m.weight = Some(*w);
                    m
                })
                .collect(),
        )
    }

    #[test]
    fn weighted_follows_route53_truth_table() {
        // Weights 1, 1, 0 (research/route53.md §2.2).
        let zone = weights(&[("r1", 1), ("r2", 1), ("r3", 0)]);
        let case = |h: [bool; 3]| {
            let mut env = TestEnv::new();
            for (id, ok) in ["r1", "r2", "r3"].iter().zip(h) {
                env.health.insert(format!("h-{id}"), ok);
            }
            let mut seen: Vec<String> =
                (0..200).flat_map(|_| picked(choose(group_of(&zone), &mut env))).collect();
            seen.sort();
            seen.dedup();
            seen
        };
        assert_eq!(case([false, false, true]), ["r3"]);
        assert_eq!(case([false, false, false]), ["r1", "r2"]);
        assert_eq!(case([false, true, false]), ["r2"]);
        assert_eq!(case([true, true, false]), ["r1", "r2"]);
        assert_eq!(case([true, true, true]), ["r1", "r2"]);
        let all_zero = weights(&[("a", 0), ("b", 0)]);
        let mut env = TestEnv::new();
        let mut seen: Vec<String> =
            (0..100).flat_map(|_| picked(choose(group_of(&all_zero), &mut env))).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen, ["a", "b"]);
    }

    #[test]
    fn failover_follows_health_and_falls_back_to_primary() {
        let mut p = member("p", "192.0.2.1");
        p.failover = Some(Failover::Primary);
        let mut s = member("s", "192.0.2.2");
        s.failover = Some(Failover::Secondary);
        let zone = zone_with(vec![s, p]);
        let mut env = TestEnv::new();
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["p"]);
        env.health.insert("h-p".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["s"]);
        env.health.insert("h-s".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["p"], "both down: primary");
    }

    #[test]
    fn multivalue_caps_at_eight_and_all_down_follows_the_group_rule() {
        let mut members = Vec::new();
        for i in 0..10 {
            let mut m = member(&format!("m{i}"), &format!("192.0.2.{i}"));
            m.multi_value_answer = Some(true);
            members.push(m);
        }
        let zone = zone_with(members.clone());
        let mut env = TestEnv::new();
        for i in 0..10 {
            env.health.insert(format!("h-m{i}"), i < 3);
        }
        assert_eq!(picked(choose(group_of(&zone), &mut env)).len(), 3);
        for i in 0..10 {
            env.health.insert(format!("h-m{i}"), false);
        }
        assert_eq!(picked(choose(group_of(&zone), &mut env)).len(), MULTIVALUE_MAX);
        for m in members.iter_mut() {
            m.all_unhealthy = Some(AllUnhealthy::Servfail);
        }
        let zone = zone_with(members);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["SERVFAIL"]);
    }

    fn geo(id: &str, continent: Option<&str>, country: Option<&str>, sub: Option<&str>) -> RecordSet {
        let mut m = member(id, "192.0.2.9");
        m.geo_location = Some(GeoLocation {
            continent: continent.map(str::to_string),
            country: country.map(str::to_string),
            subdivision: sub.map(str::to_string),
        });
        m
    }

    #[test]
    fn geolocation_picks_the_most_specific_and_walks_up_when_unhealthy() {
        let zone = zone_with(vec![
            geo("default", None, Some("*"), None),
            geo("na", Some("NA"), None, None),
            geo("us", None, Some("US"), None),
            geo("ca-state", None, Some("US"), Some("CA")),
        ]);
        let mut env = TestEnv::new();
        let at = |country: &str, sub: Option<&str>, continent: &str| Location {
            continent: Some(continent.into()),
            country: Some(country.into()),
            subdivision: sub.map(str::to_string),
            coordinates: None,
            network_len: 20,
        };
        env.location = Some(at("US", Some("CA"), "NA"));
        let d = choose(group_of(&zone), &mut env);
        assert_eq!(d.scope, 20);
        assert_eq!(picked(d), ["ca-state"]);
        env.location = Some(at("US", Some("TX"), "NA"));
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["us"]);
        env.location = Some(at("MX", None, "NA"));
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["na"]);
        env.location = Some(at("DE", None, "EU"));
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["default"]);
        env.location = None;
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["default"]);
        // Unhealthy walks up: state → country → continent → default.
        env.location = Some(at("US", Some("CA"), "NA"));
        env.health.insert("h-ca-state".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["us"]);
        env.health.insert("h-us".into(), false);
        env.health.insert("h-na".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["default"]);
        env.health.insert("h-default".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["ca-state"], "all down: the smallest region");
        // No default and no match: NODATA.
        let no_default = zone_with(vec![geo("us", None, Some("US"), None)]);
        env.location = Some(at("DE", None, "EU"));
        assert_eq!(picked(choose(group_of(&no_default), &mut env)), ["NODATA"]);
    }

    #[test]
    fn geoproximity_bias_moves_the_boundary() {
        let prox = |id: &str, lat: f64, lon: f64, bias: i8| {
            let mut m = member(id, "192.0.2.9");
            m.geo_proximity = Some(GeoProximity {
                region: None,
                coordinates: Some(Coordinates { latitude: lat, longitude: lon }),
                bias,
            });
            m
        };
        let mut env = TestEnv::new();
        // A client a bit closer to "west" (0°, 10°) than to "east" (0°, 20°).
        env.location = Some(Location {
            coordinates: Some(Coordinates { latitude: 0.0, longitude: 14.0 }),
            network_len: 24,
            ..Location::default()
        });
        let plain = zone_with(vec![prox("west", 0.0, 10.0, 0), prox("east", 0.0, 20.0, 0)]);
        assert_eq!(picked(choose(group_of(&plain), &mut env)), ["west"]);
        let biased = zone_with(vec![prox("west", 0.0, 10.0, 0), prox("east", 0.0, 20.0, 50)]);
        assert_eq!(picked(choose(group_of(&biased), &mut env)), ["east"], "bias 50 halves east's distance");
    }

    #[test]
    fn latency_uses_the_measured_table_then_distance() {
        let region = |id: &str, r: &str| {
            let mut m = member(id, "192.0.2.9");
            m.region = Some(r.into());
            m
        };
        let zone = zone_with(vec![region("us", "us-east-1"), region("eu", "eu-central-1")]);
        let mut env = TestEnv::new();
        env.location = Some(Location {
            coordinates: Some(Coordinates { latitude: 48.1, longitude: 11.6 }),
            network_len: 16,
            ..Location::default()
        });
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["eu"], "Munich is nearest Frankfurt");
        env.routing = Some(AccountRouting::build(
            Vec::new(),
            vec![
                (Prefix::parse("192.0.2.0/24", "c").unwrap(), "us-east-1".into(), 5.0),
                (Prefix::parse("192.0.2.0/24", "c").unwrap(), "eu-central-1".into(), 90.0),
            ],
            Vec::new(),
        ));
        let d = choose(group_of(&zone), &mut env);
        assert_eq!(d.scope, 24);
        assert_eq!(picked(d), ["us"], "the measured table wins");
        // A client the table does not cover: distance decides, and the scope
        // still keeps the table's block out (198.51.100.x and 192.0.2.x share 5 bits).
        env.client = ClientNet { addr: IpAddr::from([198, 51, 100, 1]), source_len: 24 };
        env.location.as_mut().unwrap().network_len = 4;
        let d = choose(group_of(&zone), &mut env);
        assert_eq!(d.scope, 6, "one bit past the 5 shared with the table's block");
        assert_eq!(picked(d), ["eu"]);
        env.location.as_mut().unwrap().network_len = 16;
        env.client = ClientNet { addr: IpAddr::from([192, 0, 2, 1]), source_len: 32 };
        env.health.insert("h-us".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["eu"], "unhealthy best region: next one");
    }

    #[test]
    fn ip_based_longest_match_then_default() {
        let cidr = |id: &str, loc: &str| {
            let mut m = member(id, "192.0.2.9");
            m.cidr_routing = Some(CidrRouting { collection_id: "col".into(), location_name: loc.into() });
            m
        };
        let zone = zone_with(vec![cidr("office", "office"), cidr("lab", "lab"), cidr("default", "*")]);
        let mut env = TestEnv::new();
        env.routing = Some(AccountRouting::build(
            vec![CidrCollectionData {
                id: "col".into(),
                locations: vec![
                    ("office".into(), vec![Prefix::parse("10.0.0.0/8", "c").unwrap()]),
                    ("lab".into(), vec![Prefix::parse("10.9.0.0/16", "c").unwrap()]),
                ],
            }],
            Vec::new(),
            Vec::new(),
        ));
        env.client = ClientNet { addr: "10.9.1.1".parse().unwrap(), source_len: 32 };
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["lab"]);
        env.client = ClientNet { addr: "10.1.1.1".parse().unwrap(), source_len: 32 };
        let d = choose(group_of(&zone), &mut env);
        assert_eq!(d.scope, 13);
        assert_eq!(picked(d), ["office"]);
        env.client = ClientNet { addr: "192.0.2.1".parse().unwrap(), source_len: 24 };
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["default"]);
        env.client = ClientNet { addr: "10.9.1.1".parse().unwrap(), source_len: 32 };
        env.health.insert("h-lab".into(), false);
        assert_eq!(picked(choose(group_of(&zone), &mut env)), ["default"], "unhealthy match: the default");
    }
}
