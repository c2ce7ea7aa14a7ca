//! End-to-end: routing policies over real DNS queries (UDP, with and without
//! ECS), with routing data and health verdicts written to the schema.

mod common;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::RecordType;
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use signpost_core::RecordSet;
use signpost_core::model::{AliasTarget, CidrRouting, Coordinates, Failover, GeoLocation, GeoProximity};
use signpost_store::{Change, ChangeAction, NewChange, Store};

/// A MaxMind DB the tests write themselves: networks with continent,
/// country, subdivision and coordinates.
fn write_geo_db() -> PathBuf {
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    let networks = [
        ("10.1.0.0/16", "NA", "US", Some("CA"), 37.4, -122.1),
        ("10.2.0.0/16", "NA", "US", Some("TX"), 30.3, -97.7),
        ("10.3.0.0/16", "NA", "MX", None, 19.4, -99.1),
        ("10.4.0.0/16", "EU", "DE", None, 50.1, 8.7),
        ("10.5.0.0/16", "AS", "JP", None, 35.7, 139.7),
        // On the equator, between the two geoproximity points (0°,10°) and (0°,20°).
        ("10.6.0.0/16", "AF", "GA", None, 0.0, 14.0),
    ];
    for (net, continent, country, sub, lat, lon) in networks {
        let mut record = serde_json::json!({
            "continent": {"code": continent},
            "country": {"iso_code": country},
            "location": {"latitude": lat, "longitude": lon},
        });
        if let Some(sub) = sub {
            record["subdivisions"] = serde_json::json!([{"iso_code": sub}]);
        }
        writer.insert(net.parse::<ipnet::IpNet>().unwrap(), &record).unwrap();
    }
    let path = temp_path("geo.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

fn ecs_query(name: &str, subnet: &str, source: u8) -> Message {
    let mut edns = Edns::new();
    edns.set_max_payload(1232);
    let addr: IpAddr = subnet.parse().unwrap();
    edns.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(addr, source, 0)));
    query_message(name, RecordType::A, Some(edns))
}

fn addresses(reply: &Message) -> Vec<String> {
    let mut a: Vec<String> = reply.answers.iter().map(|r| r.data.to_string()).collect();
    a.sort();
    a
}

fn scope(reply: &Message) -> Option<u8> {
    match reply.edns.as_ref()?.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
        _ => None,
    }
}

fn policy_member(name: &str, id: &str, addr: &str) -> RecordSet {
    let mut r = RecordSet::simple(name, "A", 60, &[addr]);
    r.set_identifier = Some(id.into());
    r
}

async fn setup() -> (TestDb, Store, String, String) {
    let db = TestDb::new().await;
    let store = db.store().await;
    let account = store.ensure_account("routing").await.unwrap();
    let zone = store.create_zone(&account, "route.example.", None, &Default::default()).await.unwrap();
    (db, store, account, zone.id)
}

async fn apply(store: &Store, zone: &str, rrsets: Vec<RecordSet>) {
    let changes: Vec<Change> =
        rrsets.into_iter().map(|rrset| Change { action: ChangeAction::Upsert, rrset }).collect();
    store.apply_changes(zone, None, &changes, None).await.unwrap();
}

async fn health_check(store: &Store, account: &str) -> String {
    sqlx::query_scalar("INSERT INTO health_checks (account_id, type, ip, port) VALUES ($1, 'TCP', '192.0.2.1', 80) RETURNING id")
        .bind(account)
        .fetch_one(store.pool())
        .await
        .unwrap()
}

/// Sets what one checker (region `test`) says of a check, and announces it.
async fn set_health(store: &Store, check: &str, healthy: bool) {
    sqlx::query(
        "INSERT INTO health_checkers (id, region) VALUES ('test-checker', 'test')
         ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
    )
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO health_observations (check_id, checker_id, healthy, last_checked_at)
         VALUES ($1, 'test-checker', $2, now())
         ON CONFLICT (check_id, checker_id) DO UPDATE SET healthy = $2, last_checked_at = now()",
    )
    .bind(check)
    .bind(healthy)
    .execute(store.pool())
    .await
    .unwrap();
    store.log_change(NewChange::health(None)).await.unwrap();
}

fn eventually(server: &Signpost, message: &Message, want: &[&str]) -> bool {
    wait_until(Duration::from_secs(3), || addresses(&udp_query(server.dns, message)) == want).is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn weighted_shares_pass_a_chi_square_test() {
    let (db, store, _, zone) = setup().await;
    let weights = [1u8, 2, 3, 4, 0];
    let members: Vec<RecordSet> = weights
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let mut m = policy_member("w.route.example.", &format!("w{i}"), &format!("192.0.2.{}", i + 1));
            m.weight = Some(*w);
            m
        })
        .collect();
    apply(&store, &zone, members).await;
    let server = Signpost::serve(&db, &[]);
    let q = query_message("w.route.example.", RecordType::A, None);
    assert!(wait_until(Duration::from_secs(3), || udp_query(server.dns, &q).answers.len() == 1).is_some());
    let n = 20_000;
    let mut counts: HashMap<String, u32> = HashMap::new();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let bytes = q.to_vec().unwrap();
    let mut buf = [0u8; 512];
    let mut answered = 0;
    while answered < n {
        socket.send_to(&bytes, server.dns).unwrap();
        let Ok(len) = socket.recv(&mut buf) else { continue };
        let reply = Message::from_vec(&buf[..len]).unwrap();
        *counts.entry(reply.answers[0].data.to_string()).or_default() += 1;
        answered += 1;
    }
    assert_eq!(counts.get("192.0.2.5"), None, "weight 0 is never answered while others are");
    let total: f64 = weights.iter().map(|w| f64::from(*w)).sum();
    let chi2: f64 = weights[..4]
        .iter()
        .enumerate()
        .map(|(i, w)| {
            let expected = f64::from(n) * f64::from(*w) / total;
            let seen = f64::from(*counts.get(&format!("192.0.2.{}", i + 1)).unwrap_or(&0));
            (seen - expected).powi(2) / expected
        })
        .sum();
    // 3 degrees of freedom; p = 0.0001 critical value is 21.11.
    assert!(chi2 < 21.11, "chi-square {chi2:.2} for {counts:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn geolocation_levels_default_and_ecs_scope() {
    let (db, store, _, zone) = setup().await;
    let geo = |id: &str, addr: &str, continent: Option<&str>, country: Option<&str>, sub: Option<&str>| {
        let mut m = policy_member("geo.route.example.", id, addr);
        m.geo_location = Some(GeoLocation {
            continent: continent.map(str::to_string),
            country: country.map(str::to_string),
            subdivision: sub.map(str::to_string),
        });
        m
    };
    apply(
        &store,
        &zone,
        vec![
            geo("california", "192.0.2.1", None, Some("US"), Some("CA")),
            geo("us", "192.0.2.2", None, Some("US"), None),
            geo("north-america", "192.0.2.3", Some("NA"), None, None),
            geo("europe", "192.0.2.4", Some("EU"), None, None),
            geo("default", "192.0.2.9", None, Some("*"), None),
        ],
    )
    .await;
    let db_path = write_geo_db();
    let server = Signpost::serve(&db, &["--geoip-db", db_path.to_str().unwrap()]);
    let name = "geo.route.example.";
    let cases = [
        ("10.1.2.0", 24, "192.0.2.1", 16), // subdivision US-CA
        ("10.2.2.0", 24, "192.0.2.2", 16), // country US (TX has no record)
        ("10.3.2.0", 24, "192.0.2.3", 16), // continent NA (MX)
        ("10.4.2.0", 24, "192.0.2.4", 16), // continent EU
        ("10.5.2.0", 24, "192.0.2.9", 16), // Asia: the default
        ("10.0.0.0", 12, "192.0.2.9", 12), // source /12 is shorter than the DB networks: capped
    ];
    for (subnet, source, want, want_scope) in cases {
        let reply = udp_query(server.dns, &ecs_query(name, subnet, source));
        assert_eq!(addresses(&reply), [want], "{subnet}/{source}");
        assert_eq!(scope(&reply), Some(want_scope), "scope for {subnet}/{source}");
    }
    // Without ECS the resolver's address decides: 127.0.0.1 is not in the DB → default.
    assert_eq!(addresses(&ask(server.dns, name, RecordType::A)), ["192.0.2.9"]);
    // Malformed ECS → FORMERR: address bits past the source prefix (10.1 in a /12) ...
    let bad = udp_query(server.dns, &ecs_query(name, "10.1.0.0", 12));
    assert_eq!(bad.metadata.response_code, ResponseCode::FormErr);
    // ... and an unknown address family (7), sent as raw option bytes.
    let mut edns = Edns::new();
    edns.options_mut().insert(EdnsOption::Unknown(8, vec![0, 7, 24, 0, 10, 1, 2]));
    let bad = udp_query(server.dns, &query_message(name, RecordType::A, Some(edns)));
    assert_eq!(bad.metadata.response_code, ResponseCode::FormErr);
    let _ = std::fs::remove_file(db_path);
}

#[tokio::test(flavor = "multi_thread")]
async fn geoproximity_bias_and_latency_nearest_region_and_measured_table() {
    let (db, store, account, zone) = setup().await;
    let prox = |id: &str, addr: &str, lon: f64, bias: i8| {
        let mut m = policy_member("prox.route.example.", id, addr);
        m.geo_proximity = Some(GeoProximity {
            region: None,
            coordinates: Some(Coordinates { latitude: 0.0, longitude: lon }),
            bias,
        });
        m
    };
    let latency = |id: &str, addr: &str, region: &str| {
        let mut m = policy_member("lat.route.example.", id, addr);
        m.region = Some(region.into());
        m
    };
    apply(
        &store,
        &zone,
        vec![
            prox("west", "192.0.2.10", 10.0, 0),
            prox("east", "192.0.2.20", 20.0, 0),
            latency("virginia", "192.0.2.31", "us-east-1"),
            latency("frankfurt", "192.0.2.32", "eu-central-1"),
            latency("tokyo", "192.0.2.33", "ap-northeast-1"),
        ],
    )
    .await;
    let db_path = write_geo_db();
    let server = Signpost::serve(&db, &["--geoip-db", db_path.to_str().unwrap()]);
    // The client at (0°, 14°) is nearer "west".
    let near = ecs_query("prox.route.example.", "10.6.1.0", 24);
    assert_eq!(addresses(&udp_query(server.dns, &near)), ["192.0.2.10"]);
    // Bias 50 on "east" halves its distance (6°→3° of arc beats 4°): the boundary moves.
    apply(&store, &zone, vec![prox("east", "192.0.2.20", 20.0, 50)]).await;
    assert!(eventually(&server, &near, &["192.0.2.20"]), "bias did not move the boundary");

    // Latency without a measured table: great-circle distance to the region.
    let lat = |subnet: &str| ecs_query("lat.route.example.", subnet, 24);
    assert_eq!(addresses(&udp_query(server.dns, &lat("10.4.1.0"))), ["192.0.2.32"], "Frankfurt client");
    assert_eq!(addresses(&udp_query(server.dns, &lat("10.5.1.0"))), ["192.0.2.33"], "Tokyo client");
    assert_eq!(addresses(&udp_query(server.dns, &lat("10.2.1.0"))), ["192.0.2.31"], "Texas client");
    // A measured table overrides distance: the Frankfurt network is fastest to Tokyo.
    for (region, ms) in [("ap-northeast-1", 3.0f32), ("eu-central-1", 40.0), ("us-east-1", 90.0)] {
        sqlx::query("INSERT INTO latency_entries (account_id, cidr, region, latency_ms) VALUES ($1, '10.4.0.0/16', $2, $3)")
            .bind(&account)
            .bind(region)
            .bind(ms)
            .execute(store.pool())
            .await
            .unwrap();
    }
    store.log_change(NewChange::routing(&account)).await.unwrap();
    assert!(eventually(&server, &lat("10.4.1.0"), &["192.0.2.33"]), "measured table not followed");
    let reply = udp_query(server.dns, &lat("10.4.1.0"));
    assert_eq!(scope(&reply), Some(16), "scope of the measured block");
    let _ = std::fs::remove_file(db_path);
}

#[tokio::test(flavor = "multi_thread")]
async fn cidr_routing_takes_the_longest_match_with_a_scope_that_excludes_inner_blocks() {
    let (db, store, account, zone) = setup().await;
    let collection: String = sqlx::query_scalar(
        "INSERT INTO cidr_collections (account_id, name) VALUES ($1, 'offices') RETURNING id",
    )
    .bind(&account)
    .fetch_one(store.pool())
    .await
    .unwrap();
    for (location, cidrs) in [("campus", vec!["10.0.0.0/8"]), ("lab", vec!["10.9.0.0/16", "2001:db8::/32"])] {
        sqlx::query("INSERT INTO cidr_locations (collection_id, name, cidrs) VALUES ($1, $2, $3::cidr[])")
            .bind(&collection)
            .bind(location)
            .bind(cidrs)
            .execute(store.pool())
            .await
            .unwrap();
    }
    let cidr = |id: &str, addr: &str, location: &str| {
        let mut m = policy_member("ip.route.example.", id, addr);
        m.cidr_routing =
            Some(CidrRouting { collection_id: collection.clone(), location_name: location.into() });
        m
    };
    apply(
        &store,
        &zone,
        vec![
            cidr("campus", "192.0.2.1", "campus"),
            cidr("lab", "192.0.2.2", "lab"),
            cidr("default", "192.0.2.9", "*"),
        ],
    )
    .await;
    store.log_change(NewChange::routing(&account)).await.unwrap();
    let server = Signpost::serve(&db, &[]);
    let q = |subnet: &str, source: u8| ecs_query("ip.route.example.", subnet, source);
    let lab = udp_query(server.dns, &q("10.9.4.0", 24));
    assert_eq!((addresses(&lab), scope(&lab)), (vec!["192.0.2.2".to_string()], Some(16)));
    let campus = udp_query(server.dns, &q("10.1.0.0", 24));
    // 10.1.x and 10.9.x share 12 bits: scope 13 keeps 10.9.0.0/16 out.
    assert_eq!((addresses(&campus), scope(&campus)), (vec!["192.0.2.1".to_string()], Some(13)));
    let elsewhere = udp_query(server.dns, &q("192.168.1.0", 24));
    assert_eq!((addresses(&elsewhere), scope(&elsewhere)), (vec!["192.0.2.9".to_string()], Some(1)));
    // Without ECS, the resolver's own address (127.0.0.1) decides.
    assert_eq!(addresses(&ask(server.dns, "ip.route.example.", RecordType::A)), ["192.0.2.9"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn failover_and_multivalue_follow_health_verdicts() {
    let (db, store, account, zone) = setup().await;
    let primary_check = health_check(&store, &account).await;
    let secondary_check = health_check(&store, &account).await;
    let mut primary = policy_member("fo.route.example.", "primary", "192.0.2.1");
    primary.failover = Some(Failover::Primary);
    primary.health_check_id = Some(primary_check.clone());
    let mut secondary = policy_member("fo.route.example.", "secondary", "192.0.2.2");
    secondary.failover = Some(Failover::Secondary);
    secondary.health_check_id = Some(secondary_check.clone());
    let mut multi = Vec::new();
    let mut multi_checks = Vec::new();
    for i in 0..10 {
        let check = health_check(&store, &account).await;
        let mut m = policy_member("mv.route.example.", &format!("m{i}"), &format!("198.51.100.{i}"));
        m.multi_value_answer = Some(true);
        m.health_check_id = Some(check.clone());
        multi_checks.push(check);
        multi.push(m);
    }
    let mut all = vec![primary, secondary];
    all.extend(multi);
    apply(&store, &zone, all).await;
    let server = Signpost::serve(&db, &[]);
    let fo = query_message("fo.route.example.", RecordType::A, None);
    assert_eq!(addresses(&udp_query(server.dns, &fo)), ["192.0.2.1"], "a new check counts as healthy");
    set_health(&store, &primary_check, false).await;
    assert!(eventually(&server, &fo, &["192.0.2.2"]), "primary down → secondary");
    set_health(&store, &secondary_check, false).await;
    assert!(eventually(&server, &fo, &["192.0.2.1"]), "both down → primary");
    set_health(&store, &primary_check, true).await;
    assert!(eventually(&server, &fo, &["192.0.2.1"]));

    let mv = query_message("mv.route.example.", RecordType::A, None);
    assert_eq!(udp_query(server.dns, &mv).answers.len(), 8, "up to 8 of 10 healthy");
    for check in &multi_checks[3..] {
        set_health(&store, check, false).await;
    }
    let healthy3 = ["198.51.100.0", "198.51.100.1", "198.51.100.2"];
    assert!(eventually(&server, &mv, &healthy3), "only the healthy ones");
    for check in &multi_checks[..3] {
        set_health(&store, check, false).await;
    }
    assert!(
        wait_until(Duration::from_secs(3), || udp_query(server.dns, &mv).answers.len() == 8).is_some(),
        "all unhealthy: answer as if all were healthy"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn alias_at_the_apex_with_target_health() {
    let (db, store, account, zone) = setup().await;
    let check = health_check(&store, &account).await;
    let mut www = RecordSet::simple("www.route.example.", "A", 120, &["192.0.2.80", "192.0.2.81"]);
    www.health_check_id = Some(check.clone());
    let apex_primary = RecordSet {
        name: "route.example.".into(),
        rtype: "A".into(),
        set_identifier: Some("apex-primary".into()),
        failover: Some(Failover::Primary),
        alias_target: Some(AliasTarget { name: "www.route.example.".into(), evaluate_target_health: true }),
        ..RecordSet::default()
    };
    let mut apex_secondary = policy_member("route.example.", "apex-secondary", "192.0.2.99");
    apex_secondary.failover = Some(Failover::Secondary);
    apply(&store, &zone, vec![www]).await;
    apply(&store, &zone, vec![apex_primary, apex_secondary]).await;
    let server = Signpost::serve(&db, &[]);
    let apex = query_message("route.example.", RecordType::A, None);
    let reply = udp_query(server.dns, &apex);
    assert_eq!(addresses(&reply), ["192.0.2.80", "192.0.2.81"]);
    assert!(reply.answers.iter().all(|r| r.name.to_ascii() == "route.example." && r.ttl == 120));
    // The target's health flows through evaluateTargetHealth.
    set_health(&store, &check, false).await;
    assert!(eventually(&server, &apex, &["192.0.2.99"]), "alias target unhealthy → secondary");
}
