//! End-to-end: the data plane survives its database. A DNS server keeps its
//! snapshot on disk and starts from it while PostgreSQL is down; usage
//! counts outlive an outage and a SIGTERM in it; /healthz and /readyz tell
//! the truth without waiting on the database. "Down" is a cut TCP proxy in
//! front of the shared PostgreSQL server (tests/common DbProxy).

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;
use signpost_core::RecordSet;
use signpost_store::{Change, ChangeAction, Store};

/// A proxied URL to the test database (the shared server is reached over TCP).
fn proxy_for(db: &TestDb) -> (DbProxy, String) {
    proxied_url(db).expect("the test database must be reached over TCP for the outage proxy")
}

/// `signpost dns` on port 0 with this database URL and state directory.
fn dns_server(url: &str, state_dir: &Path, extra: &[&str]) -> Signpost {
    let mut args: Vec<String> = vec![
        "dns".into(),
        "--dns-addr".into(),
        "127.0.0.1:0".into(),
        "--state-dir".into(),
        state_dir.display().to_string(),
    ];
    args.extend(extra.iter().map(|s| s.to_string()));
    Signpost::launch(url, &args, true, false, &[])
}

/// Creates `name` (account `survive`) with one A record set per (label, address).
async fn zone_with(store: &Store, name: &str, records: &[(&str, &str)]) -> String {
    let account = store.ensure_account("survive").await.unwrap();
    let zone = store.create_zone(&account, name, None, &Default::default()).await.unwrap();
    for (label, addr) in records {
        add_a(store, &zone.id, &format!("{label}.{name}"), addr).await;
    }
    zone.id
}

async fn add_a(store: &Store, zone_id: &str, name: &str, addr: &str) {
    let rrset = RecordSet::simple(name, "A", 60, &[addr]);
    store
        .apply_changes(zone_id, None, &[Change { action: ChangeAction::Create, rrset }], None)
        .await
        .unwrap();
}

/// The A records answered for `name` (empty for any other answer).
fn a_of(server: SocketAddr, name: &str) -> Vec<String> {
    answer_data(&ask(server, name, RecordType::A))
}

/// Waits until `name` answers `addr`.
fn served(server: SocketAddr, name: &str, addr: &str, limit: Duration) -> bool {
    wait_until(limit, || a_of(server, name) == vec![addr.to_string()]).is_some()
}

/// SIGTERM, and a clean exit (the log shown when not).
fn stop(server: Signpost) {
    let (status, log) = server.terminate_with_log();
    assert!(status.success(), "{status:?}\n{log}");
}

fn spills(state_dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(state_dir.join("dns"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("usage-spill-"))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn started_while_the_database_is_down_it_answers_from_its_disk_copy_and_catches_up() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (mut proxy, url) = proxy_for(&db);
    let state_dir = temp_path("state");
    let zone = zone_with(&store, "disk.test.", &[("www", "192.0.2.10")]).await;

    // With the database: serves, follows a change, writes its copy at SIGTERM.
    let first = dns_server(&url, &state_dir, &[]);
    assert_eq!(a_of(first.dns, "www.disk.test."), vec!["192.0.2.10"], "{}", first.log());
    add_a(&store, &zone, "late.disk.test.", "192.0.2.11").await;
    assert!(served(first.dns, "late.disk.test.", "192.0.2.11", Duration::from_secs(10)), "{}", first.log());
    stop(first);
    assert!(state_dir.join("dns/snapshot.bin").is_file());

    // Without it: the copy is served at once; a change made meanwhile is not there yet.
    proxy.down();
    add_a(&store, &zone, "during.disk.test.", "192.0.2.12").await;
    let started = Instant::now();
    let second = dns_server(&url, &state_dir, &[]);
    let reply = ask(second.dns, "www.disk.test.", RecordType::A);
    assert_eq!(answer_data(&reply), vec!["192.0.2.10"], "{reply:?}\n{}", second.log());
    eprintln!("first answer from the disk copy {:?} after the start", started.elapsed());
    assert_eq!(a_of(second.dns, "late.disk.test."), vec!["192.0.2.11"]);
    let during = ask(second.dns, "during.disk.test.", RecordType::A);
    assert_eq!(rcode_name(&during), "NXDOMAIN");
    assert!(second.log().contains("answering from the disk copy"), "{}", second.log());

    // The database returns: the change made during the outage is served.
    proxy.up();
    assert!(
        served(second.dns, "during.disk.test.", "192.0.2.12", Duration::from_secs(20)),
        "{}",
        second.log()
    );
    assert_eq!(a_of(second.dns, "www.disk.test."), vec!["192.0.2.10"]);
    // Its heartbeat reports the position it loaded, which covers the change.
    let latest = store.latest_change_seq().await.unwrap();
    let mut reported = Vec::new();
    for _ in 0..50 {
        reported = sqlx::query_scalar::<_, i64>("SELECT last_change_seq FROM dns_servers")
            .fetch_all(store.pool())
            .await
            .unwrap();
        if reported.iter().any(|seq| *seq >= latest) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(reported.iter().any(|seq| *seq >= latest), "heartbeats {reported:?}, latest change {latest}");
    stop(second);
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_usable_disk_copy_it_answers_servfail_until_the_database_returns() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (mut proxy, url) = proxy_for(&db);
    zone_with(&store, "fresh.test.", &[("www", "192.0.2.20")]).await;
    proxy.down();

    // No copy at all: SERVFAIL, not silence (udp_query fails on no answer).
    let empty_dir = temp_path("empty");
    let fresh = dns_server(&url, &empty_dir, &[]);
    assert_eq!(rcode_name(&ask(fresh.dns, "www.fresh.test.", RecordType::A)), "SERVFAIL");
    let tcp = tcp_query(fresh.dns, &query_message("www.fresh.test.", RecordType::A, None));
    assert_eq!(rcode_name(&tcp), "SERVFAIL");

    // A damaged copy is ignored with a log line, never trusted, never a crash.
    let damaged_dir = temp_path("damaged");
    std::fs::create_dir_all(damaged_dir.join("dns")).unwrap();
    let mut bytes = b"SPSNAP\r\n\x01\x00\x00\x00".to_vec();
    bytes.extend_from_slice(&[0xff; 64]);
    std::fs::write(damaged_dir.join("dns/snapshot.bin"), &bytes).unwrap();
    let mut damaged = dns_server(&url, &damaged_dir, &[]);
    assert_eq!(rcode_name(&ask(damaged.dns, "www.fresh.test.", RecordType::A)), "SERVFAIL");
    assert!(damaged.log().contains("disk copy of the snapshot ignored"), "{}", damaged.log());
    assert!(damaged.is_running());

    // A copy written for another database is not served either.
    let other_db = TestDb::new().await;
    let other_store = other_db.store().await;
    zone_with(&other_store, "other.test.", &[("www", "192.0.2.30")]).await;
    let foreign_dir = temp_path("foreign");
    let writer = dns_server(&other_db.url, &foreign_dir, &[]);
    assert_eq!(a_of(writer.dns, "www.other.test."), vec!["192.0.2.30"]);
    stop(writer);
    let foreign = dns_server(&url, &foreign_dir, &[]);
    assert_eq!(rcode_name(&ask(foreign.dns, "www.other.test.", RecordType::A)), "SERVFAIL");
    assert!(foreign.log().contains("written for database"), "{}", foreign.log());

    proxy.up();
    for server in [&fresh, &damaged, &foreign] {
        assert!(
            served(server.dns, "www.fresh.test.", "192.0.2.20", Duration::from_secs(20)),
            "{}",
            server.log()
        );
    }
    assert_eq!(rcode_name(&ask(foreign.dns, "www.other.test.", RecordType::A)), "REFUSED");
    for dir in [empty_dir, damaged_dir, foreign_dir] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Sends `n` queries for www.`zone` and returns how many were answered NOERROR.
fn answered(server: SocketAddr, name: &str, n: usize) -> i64 {
    (0..n).filter(|_| rcode_name(&ask(server, name, RecordType::A)) == "NOERROR").count() as i64
}

fn standard_usage(api: &Api, zone: &str) -> i64 {
    let month = chrono::Utc::now().format("%Y-%m");
    let r = api.get(&format!("/v1/zones/{zone}/usage?month={month}"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["queries"]["standard"].as_i64().expect("a count")
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_counted_across_an_outage_and_a_sigterm_in_it_is_exact() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (mut proxy, url) = proxy_for(&db);
    let key = account_key(&db, "counter");
    let api_server = Signpost::api_only(&db, &["--api-rate-limit", "0"]);
    let api = Api { addr: api_server.api_addr(), key };
    let zone = api.zone("count.test.");
    add_a(&store, &zone, "www.count.test.", "192.0.2.40").await;
    let state_dir = temp_path("usage");
    let flush = ["--usage-flush-interval", "0.5"];

    let first = dns_server(&url, &state_dir, &flush);
    let mut expected = answered(first.dns, "www.count.test.", 40);
    assert_eq!(expected, 40, "{}", first.log());
    assert!(wait_until(Duration::from_secs(10), || standard_usage(&api, &zone) == expected).is_some());

    // The outage: answered from memory, counted, and SIGTERM arrives in it.
    proxy.down();
    expected += answered(first.dns, "www.count.test.", 60);
    std::thread::sleep(Duration::from_millis(1200)); // a failed flush or two
    expected += answered(first.dns, "www.count.test.", 25);
    let stopping = Instant::now();
    let (status, log) = first.terminate_with_log();
    eprintln!("stopped {:?} after SIGTERM during the outage", stopping.elapsed());
    assert!(status.success(), "counts spilled, none dropped: {status:?}\n{log}");
    assert!(log.contains("usage counts spilled to disk"), "{log}");
    let spilled = spills(&state_dir);
    assert_eq!(spilled.len(), 1, "one spill file in {}", state_dir.display());
    let spill_copy = std::fs::read(&spilled[0]).unwrap();
    assert!(standard_usage(&api, &zone) < expected);

    // The database is back: the next start writes the spill, then counts on.
    proxy.up();
    let second = dns_server(&url, &state_dir, &flush);
    expected += answered(second.dns, "www.count.test.", 30);
    assert!(
        wait_until(Duration::from_secs(15), || standard_usage(&api, &zone) == expected).is_some(),
        "usage {} != {expected} answered\n{}",
        standard_usage(&api, &zone),
        second.log()
    );
    assert!(wait_until(Duration::from_secs(5), || spills(&state_dir).is_empty()).is_some());
    stop(second);
    assert_eq!(standard_usage(&api, &zone), expected);

    // Replaying the same spill again counts nothing twice (its flush keys are known).
    std::fs::write(&spilled[0], &spill_copy).unwrap();
    let third = dns_server(&url, &state_dir, &flush);
    assert!(
        wait_until(Duration::from_secs(10), || spills(&state_dir).is_empty()).is_some(),
        "{}",
        third.log()
    );
    stop(third);
    assert_eq!(standard_usage(&api, &zone), expected);
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthz_answers_while_the_database_is_cut_and_readyz_says_why() {
    let db = TestDb::new().await;
    let (mut proxy, url) = proxy_for(&db);
    let state_dir = temp_path("serve");
    let args: Vec<String> = [
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--api-addr",
        "127.0.0.1:0",
        "--state-dir",
        &state_dir.display().to_string(),
        "--zones-dir",
        &repo_root().join("zones").display().to_string(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let get = |server: &Signpost, path: &str| http(server.api_addr(), "GET", path, None, None);

    // Cold start with the database cut: the API answers, says why it is not ready.
    proxy.down();
    let server = Signpost::start_with_url(&url, &args, true);
    let health = get(&server, "/healthz");
    assert_eq!((health.status, health.json()), (200, json!({"status": "ok", "database": "down"})));
    let ready = get(&server, "/readyz");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["status"], "not ready");
    let reasons = ready.json()["reasons"].to_string();
    assert!(reasons.contains("database") && reasons.contains("no snapshot"), "{reasons}");
    assert_eq!(rcode_name(&ask(server.dns, "www.example.com.", RecordType::A)), "SERVFAIL");
    let r = http(server.api_addr(), "GET", "/v1/zones", Some("sp_x"), None);
    assert_eq!(r.status, 503, "{}", r.body);

    // The database arrives: migrated, example zones loaded, DNS follows, ready.
    proxy.up();
    let ready_at = wait_until(Duration::from_secs(30), || get(&server, "/readyz").status == 200);
    assert!(ready_at.is_some(), "{}\n{}", get(&server, "/readyz").body, server.log());
    assert_eq!(get(&server, "/readyz").json(), json!({"status": "ready", "reasons": []}));
    assert_eq!(get(&server, "/healthz").json()["database"], "up");
    assert_eq!(rcode_name(&ask(server.dns, "www.example.com.", RecordType::A)), "NOERROR");

    // Cut again: /healthz still answers (from the probe), /readyz turns 503, DNS answers.
    proxy.down();
    let down = wait_until(Duration::from_secs(10), || get(&server, "/healthz").json()["database"] == "down");
    assert!(down.is_some());
    let ready = wait_until(Duration::from_secs(15), || get(&server, "/readyz").status == 503);
    assert!(ready.is_some(), "{}", get(&server, "/readyz").body);
    assert!(get(&server, "/readyz").json()["reasons"].to_string().contains("database"));
    assert_eq!(rcode_name(&ask(server.dns, "www.example.com.", RecordType::A)), "NOERROR");

    proxy.up();
    assert!(wait_until(Duration::from_secs(15), || get(&server, "/readyz").status == 200).is_some());
    stop(server);
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn counts_that_can_be_neither_written_nor_spilled_make_the_exit_non_zero() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let (mut proxy, url) = proxy_for(&db);
    zone_with(&store, "lost.test.", &[("www", "192.0.2.50")]).await;
    // A state directory that cannot be one (a plain file): nowhere to spill.
    let not_a_dir = temp_path("not-a-dir");
    std::fs::write(&not_a_dir, b"a file").unwrap();
    let server = dns_server(&url, &not_a_dir, &["--usage-flush-interval", "60"]);
    proxy.down();
    assert_eq!(answered(server.dns, "www.lost.test.", 5), 5);
    let (status, log) = server.terminate_with_log();
    assert!(!status.success(), "dropped counts must fail the exit\n{log}");
    assert!(log.contains("could not be written nor spilled"), "{log}");
    let _ = std::fs::remove_file(&not_a_dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crash_during_an_outage_loses_no_count_already_spooled() {
    let db = TestDb::new().await;
    let (mut proxy, url) = proxy_for(&db);
    let key = account_key(&db, "crash");
    let api_server = Signpost::api_only(&db, &["--api-rate-limit", "0"]);
    let api = Api { addr: api_server.api_addr(), key };
    let zone = api.zone("crash.test.");
    add_a(&db.store().await, &zone, "www.crash.test.", "192.0.2.60").await;
    let state_dir = temp_path("crash");
    let flush = ["--usage-flush-interval", "0.5"];

    let first = dns_server(&url, &state_dir, &flush);
    let before = answered(first.dns, "www.crash.test.", 20);
    assert!(wait_until(Duration::from_secs(10), || standard_usage(&api, &zone) == before).is_some());
    proxy.down();
    let during = answered(first.dns, "www.crash.test.", 30);
    // After a failed flush the queue is on disk; wait until it holds all of them.
    let spooled = wait_until(Duration::from_secs(20), || {
        first.log().lines().any(|l| {
            l.contains("spooled to disk") && l.split_whitespace().any(|w| w == format!("queries={during}"))
        })
    });
    assert!(spooled.is_some(), "{}", first.log());
    drop(first); // SIGKILL
    assert_eq!(spills(&state_dir).len(), 1);

    proxy.up();
    let second = dns_server(&url, &state_dir, &flush);
    let total = before + during;
    assert!(
        wait_until(Duration::from_secs(15), || standard_usage(&api, &zone) == total).is_some(),
        "usage {} != {total}\n{}",
        standard_usage(&api, &zone),
        second.log()
    );
    assert!(wait_until(Duration::from_secs(5), || spills(&state_dir).is_empty()).is_some());
    stop(second);
    assert_eq!(standard_usage(&api, &zone), total);
    let _ = std::fs::remove_dir_all(&state_dir);
}
