//! End-to-end: the walls between tenants (issue 9). Zone creations that
//! race for overlapping names, the CLI import held to the same rule, public
//! suffixes, rate limits per account and per client address, quotas, the
//! installation's health-check target policy at creation and in `serve`'s
//! own checker, and the small API contracts (NoSuchChange, object bodies,
//! 415, CIDR collection ids).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use signpost_store::health::TargetPolicy;

fn zone_count(api: &Api) -> usize {
    let r = api.get("/v1/zones");
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()["items"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread")]
async fn racing_creations_of_overlapping_zones_leave_one_owner() {
    let (db, _server, alice) = serve_with_key(&[]).await;
    let bob = alice.as_key(&account_key(&db, "bob"));
    for n in 0..20 {
        let barrier = Arc::new(Barrier::new(2));
        let racer = |api: Api, name: String| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                api.post("/v1/zones", &json!({ "name": name }))
            })
        };
        // Alternate who asks for the parent, so both orders of arrival occur.
        let (outer, inner) = if n % 2 == 0 { (&alice, &bob) } else { (&bob, &alice) };
        let a = racer(outer.clone(), format!("r{n}.race.test."));
        let b = racer(inner.clone(), format!("w.r{n}.race.test."));
        let (a, b) = (a.join().unwrap(), b.join().unwrap());
        let won: Vec<u16> = [&a, &b].iter().map(|r| r.status).collect();
        assert_eq!(won.iter().filter(|s| **s == 201).count(), 1, "pair {n}: {} / {}", a.body, b.body);
        let loser = if a.status == 201 { &b } else { &a };
        assert_error(loser, 409, Some("name"), "already hosted here");
        assert_eq!(loser.json()["error"]["code"], "HostedZoneAlreadyExists");
    }
    assert_eq!(zone_count(&alice) + zone_count(&bob), 20);

    // One after the other, as before: the same 409 inside and above.
    let mine = alice.zone("solo.race.test.");
    for name in ["solo.race.test.", "deep.er.solo.race.test.", "SOLO.Race.Test", "race.test."] {
        let r = bob.post("/v1/zones", &json!({ "name": name }));
        assert_error(&r, 409, Some("name"), "already hosted here");
    }
    // An account may host its own subzones.
    alice.zone("sub.solo.race.test.");
    assert!(!mine.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_import_obeys_the_overlap_rule() {
    let (db, _server, alice) = serve_with_key(&[]).await;
    let _bob = account_key(&db, "bob");
    alice.zone("alpha.test.");
    let file = temp_path("cli.alpha.test.zone");
    std::fs::write(&file, "$ORIGIN cli.alpha.test.\n$TTL 60\nwww IN A 198.51.100.66\n").unwrap();
    let out = run_cli(&db, &["zone", "import", file.to_str().unwrap(), "--account", "bob"]);
    assert!(!out.status.success(), "imported into another account's zone");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cli.alpha.test.") && stderr.contains("overlaps"), "{stderr}");
    let store = db.store().await;
    assert!(store.zone_by_name("cli.alpha.test.").await.unwrap().is_none());

    // The owner may import it; a public suffix is refused without the flag.
    let out = run_cli(&db, &["zone", "import", file.to_str().unwrap(), "--account", "acme"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let suffix = temp_path("co.uk.zone");
    std::fs::write(&suffix, "$ORIGIN co.uk.\n$TTL 60\nwww IN A 198.51.100.66\n").unwrap();
    let out = run_cli(&db, &["zone", "import", suffix.to_str().unwrap(), "--account", "bob"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("public suffix"), "{out:?}");
    let out = run_cli(
        &db,
        &["zone", "import", suffix.to_str().unwrap(), "--account", "bob", "--allow-public-suffix-zones"],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(suffix);
}

#[tokio::test(flavor = "multi_thread")]
async fn public_suffixes_are_refused_unless_the_operator_allows_them() {
    let (db, server, alice) = serve_with_key(&[]).await;
    for name in ["net.", "co.uk.", "in-addr.arpa.", "test.", "Example."] {
        let r = alice.post("/v1/zones", &json!({ "name": name }));
        assert_error(&r, 400, Some("name"), "--allow-public-suffix-zones");
    }
    assert_eq!(zone_count(&alice), 0);
    // Registrable names below them are fine.
    for name in ["acme.co.uk.", "2.0.192.in-addr.arpa.", "foo.net.", "example.org."] {
        alice.zone(name);
    }

    let open = Signpost::api_only(&db, &["--api-rate-limit", "0", "--allow-public-suffix-zones"]);
    let bob = Api { addr: open.api_addr(), key: account_key(&db, "bob") };
    bob.zone("io.");
    let r = bob.post("/v1/zones", &json!({"name": "net."}));
    assert_error(&r, 409, Some("name"), "already hosted here");
    // A suffix zone, once allowed, blocks the names below it for everyone
    // else: the reason it is refused by default.
    let r = alice.post("/v1/zones", &json!({"name": "shop.io."}));
    assert_error(&r, 409, Some("name"), "already hosted here");
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_account_has_one_rate_limit_however_many_keys_it_mints() {
    let db = TestDb::new().await;
    let minting = Signpost::api_only(&db, &["--api-rate-limit", "0"]);
    let first = Api { addr: minting.api_addr(), key: account_key(&db, "many") };
    let keys: Vec<String> = (0..20)
        .map(|_| {
            let r = first.post("/v1/keys", &json!({}));
            assert_eq!(r.status, 201, "{}", r.body);
            r.json()["apiKey"].as_str().unwrap().to_string()
        })
        .collect();
    let other = account_key(&db, "other");
    drop(minting);

    let limited = Signpost::api_only(
        &db,
        &[
            "--api-rate-limit",
            "5",
            "--api-rate-burst",
            "5",
            "--api-account-rate-limit",
            "5",
            "--api-account-rate-burst",
            "10",
        ],
    );
    let api = Api { addr: limited.api_addr(), key: String::new() };
    let start = Instant::now();
    let statuses: Vec<u16> =
        (0..100).map(|i| api.as_key(&keys[i % keys.len()]).get("/v1/zones").status).collect();
    let elapsed = start.elapsed().as_secs_f64();
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert!(statuses.iter().all(|s| *s == 200 || *s == 429), "{statuses:?}");
    // 20 keys with a burst of 5 each would pass all 100; the account's
    // bucket allows its burst of 10 and 5 per second.
    let bound = 10.0 + 5.0 * elapsed + 1.0;
    assert!(ok >= 10 && (ok as f64) <= bound, "{ok} accepted in {elapsed:.2} s (bound {bound:.1})");
    let r = api.as_key(&keys[0]).get("/v1/zones");
    if r.status == 429 {
        assert_error(&r, 429, None, "Rate exceeded");
        assert!(r.header("retry-after").is_some());
    }
    // Another account has its own bucket.
    assert_eq!(api.as_key(&other).get("/v1/zones").status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_without_a_valid_key_are_throttled_per_address_before_the_lookup() {
    let db = TestDb::new().await;
    let key = account_key(&db, "acme");
    let server = Signpost::api_only(&db, &["--api-address-rate-limit", "2", "--api-address-rate-burst", "5"]);
    let addr = server.api_addr();
    let unknown = format!("sp_{}", "0".repeat(64));
    let start = Instant::now();
    let statuses: Vec<u16> = (0..40)
        .map(|i| {
            let key = if i % 2 == 0 { Some(unknown.as_str()) } else { None };
            http(addr, "GET", "/v1/zones", key, None).status
        })
        .collect();
    let elapsed = start.elapsed().as_secs_f64();
    // Each 401 for the well-formed unknown key cost one lookup; a 429 none.
    let looked_up = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(looked_up + throttled, 40, "{statuses:?}");
    let bound = 5.0 + 2.0 * elapsed + 1.0;
    assert!((looked_up as f64) <= bound && looked_up >= 5, "{looked_up} answered in {elapsed:.2} s");
    let r = http(addr, "GET", "/v1/zones", Some(&unknown), None);
    assert_error(&r, 429, None, "Rate exceeded");
    assert!(r.header("retry-after").is_some());
    // Once the bucket refills, a valid key from the same address works.
    std::thread::sleep(Duration::from_millis(1200));
    let r = http(addr, "GET", "/v1/zones", Some(&key), None);
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn each_quota_refuses_clearly_and_changes_nothing() {
    let db = TestDb::new().await;
    let server = Signpost::api_only(
        &db,
        &[
            "--api-rate-limit",
            "0",
            "--allow-private-targets",
            "--max-zones-per-account",
            "2",
            "--max-record-sets-per-zone",
            "4",
            "--max-health-checks-per-account",
            "1",
            "--max-api-keys-per-account",
            "2",
        ],
    );
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    let quota_error = |r: &HttpResponse, setting: &str| {
        assert_error(r, 400, None, setting);
        assert_eq!(r.json()["error"]["code"], "LimitExceeded", "{}", r.body);
    };

    // Zones: two, then LimitExceeded.
    let zone = api.zone("one.quota.test.");
    api.zone("two.quota.test.");
    quota_error(&api.post("/v1/zones", &json!({"name": "three.quota.test."})), "max-zones-per-account");
    assert_eq!(zone_count(&api), 2);

    // Record sets: SOA and NS, plus two; a batch past four changes nothing.
    let a = |name: &str| json!({"action": "CREATE", "rrset": {"name": name, "type": "A", "ttl": 60, "records": ["192.0.2.1"]}});
    let batch =
        |changes: Vec<Value>| api.post(&format!("/v1/zones/{zone}/changes"), &json!({ "changes": changes }));
    let rrsets = || api.get(&format!("/v1/zones/{zone}/rrsets")).json()["items"].as_array().unwrap().len();
    let r = batch(vec![a("a.one.quota.test."), a("b.one.quota.test."), a("c.one.quota.test.")]);
    quota_error(&r, "max-record-sets-per-zone");
    assert_eq!(rrsets(), 2);
    assert_eq!(batch(vec![a("a.one.quota.test."), a("b.one.quota.test.")]).status, 200);
    quota_error(&batch(vec![a("c.one.quota.test.")]), "max-record-sets-per-zone");
    assert_eq!(rrsets(), 4);
    let delete = json!({"action": "DELETE", "rrset": {"name": "a.one.quota.test.", "type": "A", "ttl": 60, "records": ["192.0.2.1"]}});
    assert_eq!(batch(vec![delete]).status, 200, "deleting is never refused");

    // Health checks: one.
    let check = json!({"type": "TCP", "ip": "127.0.0.1", "port": 9, "disabled": true});
    assert_eq!(api.post("/v1/health-checks", &check).status, 201);
    quota_error(&api.post("/v1/health-checks", &check), "max-health-checks-per-account");
    assert_eq!(api.get("/v1/health-checks").json()["items"].as_array().unwrap().len(), 1);

    // API keys: the first and one more.
    assert_eq!(api.post("/v1/keys", &json!({})).status, 201);
    quota_error(&api.post("/v1/keys", &json!({})), "max-api-keys-per-account");
    assert_eq!(api.get("/v1/keys").json()["items"].as_array().unwrap().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn embedded_ipv4_forms_of_loopback_and_metadata_are_refused_at_creation() {
    let db = TestDb::new().await;
    let server = Signpost::api_only(&db, &["--api-rate-limit", "0"]);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    let loopback = [
        "64:ff9b::7f00:1",
        "64:ff9b:1::7f00:1",
        "::ffff:0:127.0.0.1",
        "::ffff:127.0.0.1",
        "::127.0.0.1",
        "2001::7f00:1",
        "2001:0:4136:e378:8000:63bf:80ff:fffe",
        "2002:7f00:1::1",
    ];
    let metadata = [
        "64:ff9b::a9fe:a9fe",
        "64:ff9b:1::a9fe:a9fe",
        "::ffff:0:169.254.169.254",
        "::ffff:169.254.169.254",
        "2001:0:4136:e378:8000:63bf:5601:5601",
        "fd00:ec2::254",
    ];
    for (ips, class) in [(&loopback[..], "loopback"), (&metadata[..], "metadata")] {
        for ip in ips {
            let r = api.post("/v1/health-checks", &json!({"type": "TCP", "ip": ip, "port": 80}));
            assert_error(&r, 400, Some("ip"), class);
        }
    }
    // serve allows loopback (local mode) but not metadata, in any form.
    let serve = Signpost::serve(&db, &["--api-rate-limit", "0"]);
    let local = Api { addr: serve.api_addr(), key: api.key.clone() };
    let r = local.post(
        "/v1/health-checks",
        &json!({"type": "TCP", "ip": "64:ff9b::7f00:1", "port": 80, "disabled": true}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    for ip in metadata {
        let r = local.post("/v1/health-checks", &json!({"type": "TCP", "ip": ip, "port": 80}));
        assert_error(&r, 400, Some("ip"), "metadata");
    }
    assert_eq!(api.get("/v1/health-checks").json()["items"].as_array().unwrap().len(), 1);
}

/// An HTTP endpoint on loopback answering 200 and counting its requests.
fn counting_endpoint() -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut buf = [0u8; 2048];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    (port, hits)
}

#[tokio::test(flavor = "multi_thread")]
async fn serve_honours_a_strict_installation_policy_in_its_own_checker() {
    let (db, _server, api) = serve_with_key(&[]).await;
    let (port, hits) = counting_endpoint();
    let r = api.post(
        "/v1/health-checks",
        &json!({"type": "HTTP", "ip": "127.0.0.1", "port": port, "requestInterval": 1, "failureThreshold": 1}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let check = r.json()["id"].as_str().unwrap().to_string();
    let status = || api.get(&format!("/v1/health-checks/{check}/status")).json();
    let probed = wait_until(Duration::from_secs(15), || {
        status()["checkers"][0]["healthy"] == json!(true) && hits.load(Ordering::SeqCst) > 0
    });
    assert!(probed.is_some(), "serve's checker never probed loopback: {}", status());

    // The operator decides: no loopback targets, for every process.
    let shown = run_cli(&db, &["target-policy", "show"]);
    let shown: Value = serde_json::from_slice(&shown.stdout).expect("the policy as JSON");
    assert_eq!((shown["loopback"].as_str(), shown["private"].as_str()), (Some("local"), Some("allow")));
    let bad = run_cli(&db, &["target-policy", "set", "--refuse-networks", "10.0.0.0/33"]);
    assert!(!bad.status.success() && String::from_utf8_lossy(&bad.stderr).contains("not a network"));
    let set =
        run_cli(&db, &["target-policy", "set", "--loopback", "refuse", "--refuse-networks", "10.9.0.0/16"]);
    assert!(set.status.success(), "{}", String::from_utf8_lossy(&set.stderr));
    let store = db.store().await;
    let strict = TargetPolicy {
        allow_loopback: Some(false),
        refused_networks: vec!["10.9.0.0/16".parse().unwrap()],
        ..TargetPolicy::DEFAULT
    };
    assert_eq!(store.target_policy().await.unwrap(), strict);
    let refused = wait_until(Duration::from_secs(15), || {
        status()["checkers"][0]["lastError"].as_str().is_some_and(|e| e.starts_with("target refused"))
    });
    assert!(refused.is_some(), "the stored check is still probed: {}", status());
    let error = status()["checkers"][0]["lastError"].as_str().unwrap().to_string();
    assert!(error.contains("loopback") && error.contains("target policy refuses"), "{error}");
    // Not probed any more (one probe may have been in flight).
    std::thread::sleep(Duration::from_millis(300));
    let after = hits.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_secs(3));
    assert!(hits.load(Ordering::SeqCst) <= after + 1, "probes went on after the policy change");
    // serve's API refuses new ones alike, and the refused network too.
    let r = api.post("/v1/health-checks", &json!({"type": "HTTP", "ip": "127.0.0.1", "port": port}));
    assert_error(&r, 400, Some("ip"), "target policy refuses");
    let r = api.post("/v1/health-checks", &json!({"type": "HTTP", "ip": "10.9.1.1", "port": port}));
    assert_error(&r, 400, Some("ip"), "10.9.0.0/16");
    // Back to the default: the check is probed again.
    assert!(
        run_cli(&db, &["target-policy", "set", "--loopback", "local", "--refuse-networks", ""])
            .status
            .success()
    );
    assert_eq!(store.target_policy().await.unwrap(), TargetPolicy::DEFAULT);
    let before = hits.load(Ordering::SeqCst);
    let again = wait_until(Duration::from_secs(15), || hits.load(Ordering::SeqCst) > before + 1);
    assert!(again.is_some(), "the check was not probed again after the policy allowed it");
}

#[tokio::test(flavor = "multi_thread")]
async fn small_contracts_of_the_api() {
    let (db, server, alice) = serve_with_key(&[]).await;
    let bob = alice.as_key(&account_key(&db, "bob"));
    let zone = bob.zone("bob.test.");
    let change = bob.post(
        &format!("/v1/zones/{zone}/changes"),
        &json!({"changes": [{"action": "CREATE", "rrset": {"name": "w.bob.test.", "type": "A", "ttl": 60, "records": ["192.0.2.1"]}}]}),
    );
    let theirs = change.json()["id"].as_str().unwrap().to_string();

    // A missing change and another account's answer alike.
    let missing = "C0123456789ABCDEF0123";
    let (a, b) = (alice.get(&format!("/v1/changes/{missing}")), alice.get(&format!("/v1/changes/{theirs}")));
    assert_error(&a, 404, None, "no change");
    assert_eq!((a.status, a.body.replace(missing, "ID")), (b.status, b.body.replace(&theirs, "ID")));
    assert_eq!(a.json()["error"]["code"], "NoSuchChange");
    assert_error(&alice.get("/v1/changes/not-a-change"), 404, None, "no change");

    // Bodies are one JSON object, sent as JSON.
    for body in [r#"["x.test."]"#, "null", "[]", r#""x.test.""#, "1"] {
        let r = http(server.api_addr(), "POST", "/v1/zones", Some(&alice.key), Some(body));
        assert_error(&r, 400, None, "one JSON object");
    }
    let raw = |content_type: Option<&str>| {
        let mut head = format!(
            "POST /v1/zones HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n",
            alice.key
        );
        if let Some(t) = content_type {
            head.push_str(&format!("Content-Type: {t}\r\n"));
        }
        let body = r#"{"name": "typed.test."}"#;
        head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        http_raw(server.api_addr(), head.as_bytes())
    };
    for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
        let r = raw(content_type);
        assert_error(&r, 415, None, "application/json");
        assert_eq!(r.json()["error"]["code"], "UnsupportedMediaType");
    }
    assert_eq!(zone_count(&alice), 0);
    assert_eq!(raw(Some("application/json; charset=utf-8")).status, 201);

    // CIDR collection ids are UUIDs, apart from change ids.
    let r = alice.post(
        "/v1/cidr-collections",
        &json!({"name": "c", "locations": [{"name": "x", "cidrs": ["10.0.0.0/8"]}]}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_string();
    let parts: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(parts, [8, 4, 4, 4, 12], "{id}");
    assert_eq!(alice.get(&format!("/v1/cidr-collections/{id}")).status, 200);
    assert_error(&alice.get(&format!("/v1/changes/{id}")), 404, None, "no change");
}
