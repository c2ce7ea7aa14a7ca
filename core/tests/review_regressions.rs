//! Regressions for defects found in review of `answer`: each test pins the
//! RFC / Route 53 behaviour that an earlier version got wrong.

use std::collections::HashMap;
use std::sync::Arc;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RecordType};
use rand::SeedableRng;
use rand::rngs::StdRng;
use signpost_core::answer::{Answer, Client, Question, answer};
use signpost_core::cidr::Prefix;
use signpost_core::model::{AliasTarget, CidrRouting, HostedZone, RecordSet};
use signpost_core::routing::{AccountRouting, CidrCollectionData};
use signpost_core::snapshot::{Snapshot, ZoneContent};

fn zone_of(account: &str, name: &str, id: &str, rrsets: Vec<RecordSet>) -> ZoneContent {
    let zone = HostedZone { id: id.into(), account_id: account.into(), name: name.into(), serial: 1 };
    ZoneContent::build(zone, &rrsets).unwrap()
}

fn base(apex: &str) -> Vec<RecordSet> {
    vec![
        RecordSet::simple(apex, "SOA", 900, &[&format!("ns1.{apex} h.{apex} 1 7200 900 1209600 60")]),
        RecordSet::simple(apex, "NS", 900, &[&format!("ns1.{apex}")]),
    ]
}

fn ask<'s>(
    s: &'s Snapshot,
    name: &str,
    qtype: RecordType,
    client: Client<'_>,
    health: &HashMap<String, bool>,
) -> Answer<'s> {
    let name = Name::from_ascii(name).unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    answer(s, Question { name: &name, qtype }, client, health, &mut rng)
}

fn client() -> Client<'static> {
    Client::from_addr("192.0.2.1".parse().unwrap())
}

fn texts(a: &Answer<'_>) -> Vec<String> {
    a.answers.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect()
}

#[test]
fn nested_alias_health_is_evaluated_once_per_target() {
    // 12 levels of 8-member weighted groups of aliases with
    // evaluateTargetHealth; the last level is all unhealthy. Without a memo
    // this is 8^11 evaluations for one query.
    let (k, levels) = (8usize, 12usize);
    let mut rrsets = base("example.com.");
    let mut health = HashMap::new();
    for level in 0..levels {
        for i in 0..k {
            let name = format!("n{level}.example.com.");
            let mut m = if level + 1 < levels {
                RecordSet {
                    name,
                    rtype: "A".into(),
                    alias_target: Some(AliasTarget {
                        name: format!("n{}.example.com.", level + 1),
                        evaluate_target_health: true,
                    }),
                    ..RecordSet::default()
                }
            } else {
                let mut m = RecordSet::simple(&name, "A", 60, &[&format!("192.0.2.{}", i + 1)]);
                m.health_check_id = Some(format!("h{i}"));
                health.insert(format!("h{i}"), false);
                m
            };
            m.set_identifier = Some(format!("s{i}"));
            m.weight = Some(1);
            rrsets.push(m);
        }
    }
    let s = Snapshot::from_zones([Arc::new(zone_of("A", "example.com.", "Z", rrsets))]);
    let a = ask(&s, "n0.example.com.", RecordType::A, client(), &health);
    // All unhealthy: Route 53 answers as if all were healthy.
    assert_eq!(a.rcode, ResponseCode::NoError);
    assert!(!a.answers.is_empty());
}

#[test]
fn an_alias_to_a_policy_group_carries_its_ecs_scope_and_category() {
    let mut rrsets = base("example.com.");
    for (location, ip) in [("office", "192.0.2.1"), ("*", "192.0.2.9")] {
        let mut m = RecordSet::simple("t.example.com.", "A", 60, &[ip]);
        m.set_identifier = Some(location.into());
        m.cidr_routing = Some(CidrRouting { collection_id: "col".into(), location_name: location.into() });
        rrsets.push(m);
    }
    rrsets.push(RecordSet {
        name: "example.com.".into(),
        rtype: "A".into(),
        alias_target: Some(AliasTarget { name: "t.example.com.".into(), evaluate_target_health: false }),
        ..RecordSet::default()
    });
    let mut s = Snapshot::from_zones([Arc::new(zone_of("A", "example.com.", "Z", rrsets))]);
    let office = vec![("office".to_string(), vec![Prefix::parse("10.0.0.0/8", "c").unwrap()])];
    let collection = CidrCollectionData { id: "col".into(), locations: office };
    s.insert_routing("A", Arc::new(AccountRouting::build(vec![collection], vec![], vec![])));
    let mut c = client();
    c.subnet = Some(("10.1.2.0".parse().unwrap(), 24));
    let direct = ask(&s, "t.example.com.", RecordType::A, c, &HashMap::new());
    let via = ask(&s, "example.com.", RecordType::A, c, &HashMap::new());
    assert_eq!(direct.ecs_scope, 8);
    assert_eq!(via.ecs_scope, 8, "the alias answer depends on the client as much as its target");
    assert_eq!(via.category, direct.category);
    assert_eq!(via.answers[0].data, direct.answers[0].data);
}

#[test]
fn ns_with_a_routing_policy_and_wildcard_ns_are_not_served() {
    let mut rrsets = base("example.com.");
    for (i, ns) in ["ns.a.net.", "ns.b.net."].iter().enumerate() {
        let mut m = RecordSet::simple("sub.example.com.", "NS", 60, &[ns]);
        m.set_identifier = Some(format!("w{i}"));
        m.weight = Some(1);
        rrsets.push(m);
    }
    rrsets.push(RecordSet::simple("*.example.com.", "NS", 60, &["ns.c.net."]));
    let zone = zone_of("A", "example.com.", "Z", rrsets);
    assert_eq!(zone.skipped.len(), 3, "{:?}", zone.skipped);
}

#[test]
fn cname_chains_stop_at_loops_and_at_a_hosted_child_zone() {
    let mut parent = base("example.com.");
    parent.push(RecordSet::simple("a.example.com.", "CNAME", 60, &["b.example.com."]));
    parent.push(RecordSet::simple("b.example.com.", "CNAME", 60, &["a.example.com."]));
    parent.push(RecordSet::simple("c.example.com.", "CNAME", 60, &["x.sub.example.com."]));
    parent.push(RecordSet::simple(
        "sub.example.com.",
        "DS",
        60,
        &["60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"],
    ));
    let mut child = base("sub.example.com.");
    child.push(RecordSet::simple("x.sub.example.com.", "A", 60, &["192.0.2.77"]));
    let s = Snapshot::from_zones([
        Arc::new(zone_of("A", "example.com.", "Z", parent)),
        Arc::new(zone_of("A", "sub.example.com.", "Z2", child)),
    ]);
    let h = HashMap::new();
    let looped = ask(&s, "a.example.com.", RecordType::A, client(), &h);
    assert_eq!(
        texts(&looped),
        ["a.example.com. CNAME b.example.com.", "b.example.com. CNAME a.example.com."]
    );
    // The chain leaves the zone: the parent gives the CNAME, not NXDOMAIN.
    let into_child = ask(&s, "c.example.com.", RecordType::A, client(), &h);
    assert_eq!(into_child.rcode, ResponseCode::NoError);
    assert_eq!(texts(&into_child), ["c.example.com. CNAME x.sub.example.com."]);
    // The DS of the hosted child comes from the parent (RFC 4035 §3.1.4.1).
    let ds = ask(&s, "sub.example.com.", RecordType::DS, client(), &h);
    assert_eq!(ds.zone_id, Some("Z"));
    assert_eq!(ds.answers.len(), 1);
    assert!(ds.authoritative);
}

#[test]
fn aliases_do_not_resolve_into_another_accounts_zone() {
    let mut mine = base("example.com.");
    mine.push(RecordSet {
        name: "example.com.".into(),
        rtype: "A".into(),
        alias_target: Some(AliasTarget { name: "www.other.example.".into(), evaluate_target_health: false }),
        ..RecordSet::default()
    });
    let mut theirs = base("other.example.");
    theirs.push(RecordSet::simple("www.other.example.", "A", 60, &["203.0.113.1"]));
    let s = Snapshot::from_zones([
        Arc::new(zone_of("A", "example.com.", "Z", mine)),
        Arc::new(zone_of("B", "other.example.", "Z3", theirs)),
    ]);
    let a = ask(&s, "example.com.", RecordType::A, client(), &HashMap::new());
    assert!(a.answers.is_empty(), "{:?}", texts(&a));
}
