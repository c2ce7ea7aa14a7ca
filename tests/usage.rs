//! End-to-end: per-query usage counters, flushed by real DNS server
//! processes into real PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use signpost_core::RecordSet;
use signpost_core::model::{CidrRouting, Coordinates, GeoLocation, GeoProximity};
use signpost_store::{Change, ChangeAction, Store};

const STANDARD: usize = 0;
const LATENCY: usize = 1;
const GEOLOCATION: usize = 2;
const GEOPROXIMITY: usize = 3;
const IP_BASED: usize = 4;

/// A zone with one name per usage category.
async fn zone_with_every_category(store: &Store) -> (String, String) {
    let account = store.ensure_account("usage").await.unwrap();
    let zone = store.create_zone(&account, "count.example.", None, &Default::default()).await.unwrap();
    let collection: String =
        sqlx::query_scalar("INSERT INTO cidr_collections (account_id, name) VALUES ($1, 'c') RETURNING id")
            .bind(&account)
            .fetch_one(store.pool())
            .await
            .unwrap();
    let member = |name: &str, id: &str| {
        let mut r = RecordSet::simple(name, "A", 60, &["192.0.2.1"]);
        r.set_identifier = Some(id.into());
        r
    };
    let mut weighted = member("weighted.count.example.", "w");
    weighted.weight = Some(1);
    let mut latency = member("latency.count.example.", "l");
    latency.region = Some("us-east-1".into());
    let mut geo = member("geo.count.example.", "g");
    geo.geo_location = Some(GeoLocation { country: Some("*".into()), ..GeoLocation::default() });
    let mut prox = member("prox.count.example.", "p");
    prox.geo_proximity = Some(GeoProximity {
        region: None,
        coordinates: Some(Coordinates { latitude: 1.0, longitude: 1.0 }),
        bias: 0,
    });
    let mut ip = member("ip.count.example.", "i");
    ip.cidr_routing = Some(CidrRouting { collection_id: collection, location_name: "*".into() });
    let rrsets = vec![
        RecordSet::simple("www.count.example.", "A", 60, &["192.0.2.7"]),
        weighted,
        latency,
        geo,
        prox,
        ip,
    ];
    let changes: Vec<Change> =
        rrsets.into_iter().map(|rrset| Change { action: ChangeAction::Create, rrset }).collect();
    store.apply_changes(&zone.id, None, &changes, None).await.unwrap();
    (account, zone.id)
}

/// Sends the same mix of queries; returns the counts it should produce.
fn send_mix(server: std::net::SocketAddr, rounds: usize) -> [i64; 5] {
    let udp = |name: &str, qtype: RecordType| udp_query(server, &query_message(name, qtype, None));
    let tcp = |name: &str, qtype: RecordType| tcp_query(server, &query_message(name, qtype, None));
    let mut expected = [0i64; 5];
    for _ in 0..rounds {
        // Standard: simple, weighted, NXDOMAIN and NODATA, over UDP and TCP.
        udp("www.count.example.", RecordType::A);
        udp("weighted.count.example.", RecordType::A);
        tcp("missing.count.example.", RecordType::A);
        tcp("www.count.example.", RecordType::MX);
        expected[STANDARD] += 4;
        udp("latency.count.example.", RecordType::A);
        expected[LATENCY] += 1;
        udp("geo.count.example.", RecordType::A);
        tcp("geo.count.example.", RecordType::A);
        expected[GEOLOCATION] += 2;
        tcp("prox.count.example.", RecordType::A);
        expected[GEOPROXIMITY] += 1;
        udp("ip.count.example.", RecordType::A);
        expected[IP_BASED] += 1;
        // Not ours: REFUSED, not counted.
        let refused: Message = udp("example.org.", RecordType::A);
        assert_eq!(refused.metadata.response_code, hickory_proto::op::ResponseCode::Refused);
    }
    expected
}

fn add(a: [i64; 5], b: [i64; 5]) -> [i64; 5] {
    std::array::from_fn(|i| a[i] + b[i])
}

async fn usage_now(store: &Store, zone: &str) -> [i64; 5] {
    store.zone_usage(zone, chrono::Utc::now().date_naive()).await.unwrap()
}

async fn wait_for_usage(store: &Store, zone: &str, want: [i64; 5]) -> [i64; 5] {
    let mut last = [0; 5];
    for _ in 0..100 {
        last = usage_now(store, zone).await;
        if last == want {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn exact_counts_per_category_after_a_flush_and_after_sigterm() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (_, zone) = zone_with_every_category(&store).await;
    let server = Signpost::dns_only(&db, &["--usage-flush-interval", "0.3"]);
    let expected = send_mix(server.dns, 25);
    assert_eq!(wait_for_usage(&store, &zone, expected).await, expected, "after periodic flushes");
    // Stay exact: nothing counted twice by later flushes.
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(usage_now(&store, &zone).await, expected);

    // A server that would flush only in an hour: SIGTERM writes its counts.
    let slow = Signpost::dns_only(&db, &["--usage-flush-interval", "3600"]);
    let more = send_mix(slow.dns, 10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(usage_now(&store, &zone).await, expected, "nothing flushed before the signal");
    let status = slow.terminate();
    assert!(status.success());
    assert_eq!(usage_now(&store, &zone).await, add(expected, more), "after SIGTERM");
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn two_dns_servers_on_one_database_add_up() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (_, zone) = zone_with_every_category(&store).await;
    let a = Signpost::dns_only(&db, &["--usage-flush-interval", "0.3"]);
    let b = Signpost::dns_only(&db, &["--usage-flush-interval", "0.3"]);
    let from_a = send_mix(a.dns, 7);
    let from_b = send_mix(b.dns, 11);
    let want = add(from_a, from_b);
    assert_eq!(wait_for_usage(&store, &zone, want).await, want);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flush_retried_after_an_injected_failure_counts_once() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (_, zone) = zone_with_every_category(&store).await;
    // The first three flushes commit, then report failure; each is retried
    // with the same sequence number.
    let server = Signpost::dns_only_with_env(
        &db,
        &["--usage-flush-interval", "0.2"],
        &[("SIGNPOST_FAULT_USAGE_FLUSH_AFTER_COMMIT", "3")],
    );
    let expected = send_mix(server.dns, 20);
    assert_eq!(wait_for_usage(&store, &zone, expected).await, expected);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(usage_now(&store, &zone).await, expected, "retries counted once");
    assert!(server.log().contains("injected failure"), "the fault was not exercised:\n{}", server.log());
    let retried: i64 =
        sqlx::query_scalar("SELECT count(*) FROM usage_flushes").fetch_one(store.pool()).await.unwrap();
    assert!(retried >= 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_retried_flush_is_idempotent_in_the_store() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (_, zone) = zone_with_every_category(&store).await;
    let deltas = vec![signpost_store::usage::UsageDelta {
        zone_id: zone.clone(),
        category: signpost_core::UsageCategory::Geolocation,
        queries: 42,
    }];
    let today = chrono::Utc::now().date_naive();
    assert!(store.flush_usage("server-x", 1, today, &deltas).await.unwrap());
    assert!(!store.flush_usage("server-x", 1, today, &deltas).await.unwrap(), "same seq: skipped");
    assert!(store.flush_usage("server-y", 1, today, &deltas).await.unwrap(), "another server's seq 1");
    assert_eq!(usage_now(&store, &zone).await, [0, 0, 84, 0, 0]);
}
