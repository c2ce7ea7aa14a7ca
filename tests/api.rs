//! End-to-end: the control API of the real binary against a real
//! PostgreSQL, over real sockets (issue 3). Every test runs its own server
//! on port 0 against its own database.

mod common;

use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};

impl Api {
    fn post_text(&self, path: &str, text: &str) -> HttpResponse {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
             Content-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            self.addr,
            self.key,
            text.len()
        );
        http_raw(self.addr, &[head.as_bytes(), text.as_bytes()].concat())
    }
    /// Applies a batch; returns the response.
    fn change(&self, zone: &str, changes: Value) -> HttpResponse {
        self.post(&format!("/v1/zones/{zone}/changes"), &json!({ "changes": changes }))
    }
    /// A key of a new account.
    fn new_account(&self, db: &TestDb, name: &str) -> Api {
        self.as_key(&account_key(db, name))
    }
}

/// A server (example zones loaded, rate limit lifted unless `extra` sets
/// it) and a key of a fresh account.
async fn setup(extra: &[&str]) -> (TestDb, Signpost, Api) {
    let db = TestDb::new().await;
    let mut args = vec!["--api-rate-limit", "1000", "--api-rate-burst", "1000"];
    args.extend_from_slice(extra);
    let server = Signpost::serve(&db, &args);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    (db, server, api)
}

fn a(name: &str, ttl: i64, records: &[&str]) -> Value {
    json!({"name": name, "type": "A", "ttl": ttl, "records": records})
}

fn create(rrset: Value) -> Value {
    json!({"action": "CREATE", "rrset": rrset})
}

fn export(api: &Api, zone: &str) -> String {
    let r = api.get(&format!("/v1/zones/{zone}/zonefile"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn listing(api: &Api, zone: &str) -> String {
    let r = api.get(&format!("/v1/zones/{zone}/rrsets?limit=300"));
    assert_eq!(r.status, 200, "{}", r.body);
    r.body
}

fn wait_insync(api: &Api, change_id: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        api.get(&format!("/v1/changes/{change_id}")).json()["status"] == "INSYNC"
    })
    .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn keys_are_shown_once_and_every_v1_route_needs_one() {
    let (db, server, api) = setup(&[]).await;
    let zone = api.zone("keys.test.");

    let made = api.post("/v1/keys", &json!({"name": "ci"}));
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.json();
    assert_eq!(made["readOnly"], json!(false));
    assert_eq!(made["zoneIds"], Value::Null);
    let second = api.as_key(made["apiKey"].as_str().unwrap());
    assert_eq!(second.get(&format!("/v1/zones/{zone}")).status, 200, "the new key works");

    // Listing pages through the keys and never shows a secret.
    for _ in 0..2 {
        assert_eq!(api.post("/v1/keys", &json!({})).status, 201);
    }
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/keys?limit=2&cursor={c}"),
            None => "/v1/keys?limit=2".to_string(),
        };
        let page = api.get(&path);
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(!page.body.contains("apiKey") && !page.body.contains("sp_"), "{}", page.body);
        let page = page.json();
        ids.extend(page["items"].as_array().unwrap().iter().map(|k| k["id"].as_str().unwrap().to_string()));
        match page["nextCursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(ids.len(), 4, "the initial key and three more: {ids:?}");
    let id = made["id"].as_str().unwrap();
    assert!(ids.iter().any(|k| k == id));
    assert_eq!(api.get(&format!("/v1/keys/{id}")).json()["name"], "ci");

    // A key cannot delete itself; a deleted key stops working at once.
    let own = second.get("/v1/keys").json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap().to_string())
        .find(|k| k == made["id"].as_str().unwrap())
        .unwrap();
    assert_error(&second.delete(&format!("/v1/keys/{own}")), 409, None, "cannot delete itself");
    assert_eq!(api.delete(&format!("/v1/keys/{id}")).status, 204);
    assert_error(&second.get("/v1/zones"), 401, None, "not valid");
    assert_error(&api.get(&format!("/v1/keys/{id}")), 404, None, "no API key");

    // Every /v1 route answers 401 without a valid key, with WWW-Authenticate.
    let routes = [
        ("GET", "/v1/keys".to_string()),
        ("POST", "/v1/keys".to_string()),
        ("GET", format!("/v1/keys/{id}")),
        ("DELETE", format!("/v1/keys/{id}")),
        ("GET", "/v1/zones".to_string()),
        ("POST", "/v1/zones".to_string()),
        ("GET", format!("/v1/zones/{zone}")),
        ("DELETE", format!("/v1/zones/{zone}")),
        ("GET", format!("/v1/zones/{zone}/rrsets")),
        ("POST", format!("/v1/zones/{zone}/changes")),
        ("GET", format!("/v1/zones/{zone}/zonefile")),
        ("POST", format!("/v1/zones/{zone}/zonefile")),
        ("GET", "/v1/changes/C00000000000000000000".to_string()),
    ];
    let unknown = format!("sp_{}", "0".repeat(64));
    for (method, path) in &routes {
        for key in [None, Some("garbage"), Some(unknown.as_str())] {
            let r = http(server.api_addr(), method, path, key, Some("{}"));
            assert_eq!(r.status, 401, "{method} {path} with {key:?}: {}", r.body);
            assert_eq!(r.header("www-authenticate"), Some("Bearer"));
            assert_eq!(r.json()["error"]["code"], "Unauthorized");
        }
    }
    // The spec, liveness and metrics need no key.
    for path in ["/v1/openapi.json", "/healthz", "/metrics"] {
        assert_eq!(http(server.api_addr(), "GET", path, None, None).status, 200, "{path}");
    }
    // Keys are stored hashed.
    let store = db.store().await;
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM api_keys WHERE key_hash = $1")
        .bind(signpost_store::hash_api_key(&api.key))
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_only_key_gets_403_on_every_mutating_route() {
    let (_db, _server, api) = setup(&[]).await;
    let zone = api.zone("readonly.test.");
    let change = api.change(&zone, json!([create(a("w.readonly.test.", 60, &["192.0.2.1"]))])).json();
    let reader = api.post("/v1/keys", &json!({"readOnly": true})).json();
    assert_eq!(reader["readOnly"], json!(true));
    let reader = api.as_key(reader["apiKey"].as_str().unwrap());
    let key_id = api.post("/v1/keys", &json!({})).json()["id"].as_str().unwrap().to_string();

    // Reads work.
    for path in [
        "/v1/zones".to_string(),
        format!("/v1/zones/{zone}"),
        format!("/v1/zones/{zone}/rrsets"),
        format!("/v1/zones/{zone}/zonefile"),
        format!("/v1/changes/{}", change["id"].as_str().unwrap()),
        "/v1/keys".to_string(),
    ] {
        assert_eq!(reader.get(&path).status, 200, "{path}");
    }
    let before = export(&api, &zone);
    // Every write is refused, whatever it targets.
    let writes = [
        ("POST", "/v1/keys".to_string(), json!({})),
        ("DELETE", format!("/v1/keys/{key_id}"), json!(null)),
        ("POST", "/v1/zones".to_string(), json!({"name": "other.test."})),
        ("DELETE", format!("/v1/zones/{zone}"), json!(null)),
        (
            "POST",
            format!("/v1/zones/{zone}/changes"),
            json!({"changes": [create(a("x.readonly.test.", 1, &["192.0.2.9"]))]}),
        ),
        ("POST", format!("/v1/zones/{zone}/zonefile"), json!("x")),
        ("DELETE", "/v1/zones/Z00000000000000000000".to_string(), json!(null)),
        ("POST", "/v1/zones/Z00000000000000000000/changes".to_string(), json!({"changes": []})),
    ];
    for (method, path, body) in &writes {
        let body = (!body.is_null()).then(|| body.to_string());
        let r = http(reader.addr, method, path, Some(&reader.key), body.as_deref());
        assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["error"]["code"], "AccessDenied");
    }
    assert_eq!(export(&api, &zone), before);
    assert_eq!(api.get(&format!("/v1/keys/{key_id}")).status, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zone_limited_key_stays_inside_its_zones() {
    let (db, _server, api) = setup(&[]).await;
    let mine = api.zone("mine.test.");
    let theirs = api.zone("theirs.test.");
    let other_change = api.change(&theirs, json!([create(a("w.theirs.test.", 60, &["192.0.2.1"]))])).json();
    let limited = api.post("/v1/keys", &json!({"zoneIds": [mine]}));
    assert_eq!(limited.status, 201, "{}", limited.body);
    assert_eq!(limited.json()["zoneIds"], json!([mine]));
    let limited = api.as_key(limited.json()["apiKey"].as_str().unwrap());

    assert_eq!(limited.get(&format!("/v1/zones/{mine}")).status, 200);
    let ok = limited.change(&mine, json!([create(a("w.mine.test.", 60, &["192.0.2.2"]))]));
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(limited.get(&format!("/v1/changes/{}", ok.json()["id"].as_str().unwrap())).status, 200);
    let zones = limited.get("/v1/zones").json();
    assert_eq!(zones["items"].as_array().unwrap().len(), 1);
    assert_eq!(zones["items"][0]["id"], json!(mine));

    for r in [
        limited.get(&format!("/v1/zones/{theirs}")),
        limited.get(&format!("/v1/zones/{theirs}/rrsets")),
        limited.get(&format!("/v1/zones/{theirs}/zonefile")),
        limited.change(&theirs, json!([create(a("x.theirs.test.", 60, &["192.0.2.3"]))])),
        limited.delete(&format!("/v1/zones/{theirs}")),
        limited.get(&format!("/v1/changes/{}", other_change["id"].as_str().unwrap())),
        limited.post("/v1/zones", &json!({"name": "new.test."})),
        limited.post("/v1/keys", &json!({})),
        limited.post("/v1/keys", &json!({"zoneIds": [theirs]})),
    ] {
        assert_error(&r, 403, None, "this API key is");
    }
    // It may make keys for its own zones.
    assert_eq!(limited.post("/v1/keys", &json!({"zoneIds": [mine]})).status, 201);
    // Limiting a key to another account's zone is refused.
    let stranger = api.new_account(&db, "stranger");
    assert_error(
        &stranger.post("/v1/keys", &json!({"zoneIds": [mine]})),
        400,
        Some("zoneIds[0]"),
        "no hosted zone",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_accounts_cannot_see_each_others_objects() {
    let (db, _server, alice) = setup(&[]).await;
    let bob = alice.new_account(&db, "bob");
    let zone = alice.zone("alice.test.");
    let change = alice.change(&zone, json!([create(a("w.alice.test.", 60, &["192.0.2.1"]))])).json();
    let change = change["id"].as_str().unwrap().to_string();
    let key = alice.post("/v1/keys", &json!({})).json()["id"].as_str().unwrap().to_string();

    // Bob gets exactly what a missing id gets.
    let missing_zone = "Z0123456789ABCDEF0123";
    let pairs = [
        (format!("/v1/zones/{zone}"), format!("/v1/zones/{missing_zone}")),
        (format!("/v1/zones/{zone}/rrsets"), format!("/v1/zones/{missing_zone}/rrsets")),
        (format!("/v1/zones/{zone}/zonefile"), format!("/v1/zones/{missing_zone}/zonefile")),
        (format!("/v1/changes/{change}"), "/v1/changes/C0123456789ABCDEF0123".to_string()),
        (format!("/v1/keys/{key}"), "/v1/keys/K0123456789ABCDEF0123".to_string()),
    ];
    for (theirs, missing) in &pairs {
        let a = bob.get(theirs);
        let b = bob.get(missing);
        assert_eq!(a.status, 404, "{theirs}: {}", a.body);
        assert_eq!(a.json()["error"]["code"], b.json()["error"]["code"]);
    }
    for r in [
        bob.delete(&format!("/v1/zones/{zone}")),
        bob.delete(&format!("/v1/keys/{key}")),
        bob.change(&zone, json!([create(a("x.alice.test.", 60, &["192.0.2.66"]))])),
        bob.post_text(&format!("/v1/zones/{zone}/zonefile"), "$ORIGIN alice.test.\n"),
    ] {
        assert_eq!(r.status, 404, "{}", r.body);
    }
    assert_eq!(bob.get("/v1/zones").json()["items"], json!([]));
    assert_eq!(alice.get(&format!("/v1/zones/{zone}")).status, 200, "nothing happened to alice's zone");

    // A name hosted by one account is not available to another, nor names
    // inside or above it (the DNS servers would answer for both).
    for name in ["alice.test.", "ALICE.test", "sub.alice.test.", "example.com."] {
        assert_error(&bob.post("/v1/zones", &json!({"name": name})), 409, Some("name"), "already hosted");
    }
    assert_error(
        &alice.post("/v1/zones", &json!({"name": "alice.test."})),
        409,
        Some("name"),
        "already hosted",
    );
    assert_eq!(alice.post("/v1/zones", &json!({"name": "sub.alice.test."})).status, 201, "own subzone");

    // Health checks: only the account's own can gate a record set.
    let store = db.store().await;
    let account: String = sqlx::query_scalar("SELECT account_id FROM hosted_zones WHERE id = $1")
        .bind(&zone)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let check: String = sqlx::query_scalar(
        "INSERT INTO health_checks (account_id, type, ip, port) VALUES ($1, 'TCP', '192.0.2.1', 80) RETURNING id",
    )
    .bind(&account)
    .fetch_one(store.pool())
    .await
    .unwrap();
    let gated = |name: &str| {
        json!([create(json!({"name": name, "type": "A", "ttl": 60, "records": ["192.0.2.7"],
            "setIdentifier": "one", "weight": 1, "healthCheckId": check}))])
    };
    let bob_zone = bob.zone("bob.test.");
    assert_error(
        &bob.change(&bob_zone, gated("w.bob.test.")),
        400,
        Some("changes[0].rrset.healthCheckId"),
        "no health check",
    );
    let r = alice.change(&zone, gated("gated.alice.test."));
    assert_eq!(r.status, 200, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn zones_are_created_listed_and_deleted_like_route53() {
    let (_db, server, api) = setup(&["--nameservers", "ns1.custom.test.,ns2.custom.test."]).await;
    let r = api.post("/v1/zones", &json!({"name": "Life.Test", "comment": "made by a test"}));
    assert_eq!(r.status, 201, "{}", r.body);
    let zone = r.json();
    assert_eq!(zone["name"], "life.test.");
    assert_eq!(zone["nameServers"], json!(["ns1.custom.test.", "ns2.custom.test."]));
    assert_eq!(zone["recordSetCount"], 2);
    assert_eq!(zone["comment"], "made by a test");
    assert!(zone["change"]["id"].as_str().unwrap().starts_with('C'));
    let id = zone["id"].as_str().unwrap().to_string();
    let ns = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "life.test.", RecordType::NS).answers.len() == 2
    });
    assert!(ns.is_some(), "the new zone is served within 1 s");
    let soa = api.get(&format!("/v1/zones/{id}/rrsets?type=SOA")).json();
    assert!(
        soa["items"][0]["records"][0]
            .as_str()
            .unwrap()
            .starts_with("ns1.custom.test. hostmaster.life.test. ")
    );
    assert_eq!(api.get(&format!("/v1/zones/{id}")).json()["nameServers"], zone["nameServers"]);

    // Pagination over the account's zones, by name.
    for n in 0..4 {
        api.zone(&format!("page{n}.test."));
    }
    let mut names = Vec::new();
    let mut path = "/v1/zones?limit=2".to_string();
    loop {
        let page = api.get(&path).json();
        assert!(page["items"].as_array().unwrap().len() <= 2);
        names.extend(
            page["items"].as_array().unwrap().iter().map(|z| z["name"].as_str().unwrap().to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/v1/zones?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(names, ["life.test.", "page0.test.", "page1.test.", "page2.test.", "page3.test."]);
    assert_error(&api.get("/v1/zones?limit=0"), 400, Some("limit"), "1 to 100");
    assert_error(&api.get("/v1/zones?cursor=nonsense"), 400, Some("cursor"), "cursor");

    // Bad names are 400 with the field.
    assert_error(&api.post("/v1/zones", &json!({"name": "bad..name"})), 400, Some("name"), "empty label");
    assert_error(&api.post("/v1/zones", &json!({"name": "."})), 400, Some("name"), "root");
    assert_error(&api.post("/v1/zones", &json!({"name": 5})), 400, Some("name"), "invalid type");

    // Delete is refused while the zone holds more than SOA and NS.
    let w = a("w.life.test.", 60, &["192.0.2.1"]);
    assert_eq!(api.change(&id, json!([create(w.clone())])).status, 200);
    assert_error(&api.delete(&format!("/v1/zones/{id}")), 409, None, "not its SOA or NS");
    assert_eq!(api.change(&id, json!([{"action": "DELETE", "rrset": w}])).status, 200);
    let deleted = api.delete(&format!("/v1/zones/{id}"));
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.json()["id"].as_str().unwrap().starts_with('C'));
    assert_eq!(api.get(&format!("/v1/zones/{id}")).status, 404);
    let refused = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "life.test.", RecordType::NS).metadata.response_code == ResponseCode::Refused
    });
    assert!(refused.is_some(), "a deleted zone is no longer served");
}

#[tokio::test(flavor = "multi_thread")]
async fn record_sets_list_in_route53_order_with_filters_and_pages() {
    let (_db, _server, api) = setup(&[]).await;
    let zone = api.zone("order.test.");
    let r = api.change(
        &zone,
        json!([
            create(a("b.order.test.", 60, &["192.0.2.2"])),
            create(json!({"name": "a.b.order.test.", "type": "TXT", "ttl": 60, "records": ["\"x\""]})),
            create(a("a.order.test.", 60, &["192.0.2.1"])),
            create(json!({"name": "a.order.test.", "type": "AAAA", "ttl": 60, "records": ["2001:db8::1"]})),
            create(a("order.test.", 60, &["192.0.2.9"])),
            create(json!({"name": "w.order.test.", "type": "A", "ttl": 60, "records": ["192.0.2.5"],
                "setIdentifier": "two", "weight": 2})),
            create(json!({"name": "w.order.test.", "type": "A", "ttl": 60, "records": ["192.0.2.4"],
                "setIdentifier": "one", "weight": 1})),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let all = api.get(&format!("/v1/zones/{zone}/rrsets")).json();
    let keys: Vec<String> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["name"].as_str().unwrap(),
                r["type"].as_str().unwrap(),
                r["setIdentifier"].as_str().unwrap_or("-")
            )
        })
        .collect();
    assert_eq!(
        keys,
        [
            "order.test. SOA -",
            "order.test. NS -",
            "order.test. A -",
            "a.order.test. A -",
            "a.order.test. AAAA -",
            "b.order.test. A -",
            "a.b.order.test. TXT -",
            "w.order.test. A one",
            "w.order.test. A two",
        ]
    );
    assert_eq!(all["nextCursor"], Value::Null);

    // Pages of 2 add up to the whole listing.
    let mut paged = Vec::new();
    let mut path = format!("/v1/zones/{zone}/rrsets?limit=2");
    loop {
        let page = api.get(&path).json();
        paged.extend(page["items"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(c) => path = format!("/v1/zones/{zone}/rrsets?limit=2&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(Value::Array(paged), all["items"]);

    // Filters.
    let by_name = api.get(&format!("/v1/zones/{zone}/rrsets?name=A.Order.Test")).json();
    assert_eq!(by_name["items"].as_array().unwrap().len(), 2);
    let by_type = api.get(&format!("/v1/zones/{zone}/rrsets?type=aaaa")).json();
    assert_eq!(by_type["items"].as_array().unwrap().len(), 1);
    let both = api.get(&format!("/v1/zones/{zone}/rrsets?name=w.order.test.&type=A&limit=1")).json();
    assert_eq!(both["items"][0]["setIdentifier"], "one");
    assert!(both["nextCursor"].is_string());
    assert_error(&api.get(&format!("/v1/zones/{zone}/rrsets?type=NOPE")), 400, Some("type"), "record type");
    assert_error(&api.get(&format!("/v1/zones/{zone}/rrsets?limit=301")), 400, Some("limit"), "1 to 300");
    assert_error(&api.get(&format!("/v1/zones/{zone}/rrsets?limit=x")), 400, Some("limit"), "an integer");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_change_is_answered_by_dns_within_a_second_and_turns_insync() {
    let (_db, server, api) = setup(&[]).await;
    let zone = api.zone("fast.test.");
    let r = api.change(&zone, json!([create(a("www.fast.test.", 60, &["192.0.2.10", "192.0.2.11"]))]));
    assert_eq!(r.status, 200, "{}", r.body);
    let change = r.json();
    assert!(change["status"] == "PENDING" || change["status"] == "INSYNC");
    assert!(change["submittedAt"].is_string());
    let took = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "www.fast.test.", RecordType::A).answers.len() == 2
    });
    assert!(took.is_some(), "not answered within 1 s:\n{}", server.log());
    assert!(wait_insync(&api, change["id"].as_str().unwrap()), "the change never turned INSYNC");

    // UPSERT replaces; an alias at the apex answers the target's records.
    let r = api.change(
        &zone,
        json!([
            {"action": "UPSERT", "rrset": a("www.fast.test.", 30, &["192.0.2.12"])},
            create(json!({"name": "fast.test.", "type": "A", "aliasTarget": {"name": "www.fast.test."}})),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let took = wait_until(Duration::from_secs(1), || {
        answer_texts(&ask(server.dns, "fast.test.", RecordType::A)) == ["fast.test. A 192.0.2.12"]
    });
    assert!(took.is_some(), "{:?}", answer_texts(&ask(server.dns, "fast.test.", RecordType::A)));
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_must_match_exactly_and_create_must_be_new() {
    let (_db, server, api) = setup(&[]).await;
    let zone = api.zone("exact.test.");
    let member = |id: &str, weight: i64, ip: &str| json!({"name": "w.exact.test.", "type": "A", "ttl": 60, "records": [ip], "setIdentifier": id, "weight": weight});
    let r = api
        .change(&zone, json!([create(member("one", 1, "192.0.2.1")), create(member("two", 1, "192.0.2.2"))]));
    assert_eq!(r.status, 200, "{}", r.body);
    let before = export(&api, &zone);

    assert_error(
        &api.change(&zone, json!([create(member("one", 1, "192.0.2.1"))])),
        409,
        Some("changes[0].rrset"),
        "already exists",
    );
    // DELETE with another weight, another value, or another set identifier.
    for wrong in [member("one", 2, "192.0.2.1"), member("one", 1, "192.0.2.9")] {
        assert_error(
            &api.change(&zone, json!([{"action": "DELETE", "rrset": wrong}])),
            409,
            Some("changes[0].rrset"),
            "do not match",
        );
    }
    assert_error(
        &api.change(&zone, json!([{"action": "DELETE", "rrset": member("three", 1, "192.0.2.1")}])),
        409,
        Some("changes[0].rrset"),
        "not found",
    );
    assert_eq!(export(&api, &zone), before);
    // The exact set, set identifier included, deletes only that member.
    let r = api.change(&zone, json!([{"action": "DELETE", "rrset": member("one", 1, "192.0.2.1")}]));
    assert_eq!(r.status, 200, "{}", r.body);
    let left = api.get(&format!("/v1/zones/{zone}/rrsets?name=w.exact.test.")).json();
    assert_eq!(left["items"].as_array().unwrap().len(), 1);
    assert_eq!(left["items"][0]["setIdentifier"], "two");
    let only_two = wait_until(Duration::from_secs(1), || {
        answer_texts(&ask(server.dns, "w.exact.test.", RecordType::A)) == ["w.exact.test. A 192.0.2.2"]
    });
    assert!(only_two.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rejected_batch_leaves_the_zone_byte_for_byte_unchanged() {
    let (_db, _server, api) = setup(&[]).await;
    let zone = api.zone("atomic.test.");
    let seed = api.change(
        &zone,
        json!([
            create(a("keep.atomic.test.", 60, &["192.0.2.1"])),
            create(json!({"name": "f.atomic.test.", "type": "A", "ttl": 60, "records": ["192.0.2.2"],
                "setIdentifier": "p", "failover": "PRIMARY"})),
        ]),
    );
    assert_eq!(seed.status, 200, "{}", seed.body);
    let file_before = export(&api, &zone);
    let list_before = listing(&api, &zone);
    let good = create(a("new.atomic.test.", 60, &["192.0.2.3"]));
    let long_txt = format!(
        "\"{}\" \"{}\" \"{}\" \"{}\"",
        "a".repeat(250),
        "b".repeat(250),
        "c".repeat(250),
        "d".repeat(250)
    );
    let txts: Vec<Value> = (0..32)
        .map(|i| create(json!({"name": format!("t{i}.atomic.test."), "type": "TXT", "ttl": 60, "records": [long_txt]})))
        .collect();
    let many: Vec<String> = (0..1001).map(|i| format!("10.0.{}.{}", i / 250, i % 250)).collect();
    let bad_batches = vec![
        // A validation error after a good change.
        (
            json!([good, create(a("bad.atomic.test.", 60, &["192.0.2.300"]))]),
            400,
            "changes[1].rrset.records[0]",
            "invalid A data",
        ),
        // A CREATE of an existing set.
        (
            json!([good, create(a("keep.atomic.test.", 60, &["192.0.2.1"]))]),
            409,
            "changes[1].rrset",
            "already exists",
        ),
        // A DELETE that does not match.
        (
            json!([good, {"action": "DELETE", "rrset": a("keep.atomic.test.", 61, &["192.0.2.1"])}]),
            409,
            "changes[1].rrset",
            "do not match the current values",
        ),
        // A group rule found inside the transaction: a second PRIMARY.
        (
            json!([
                good,
                create(json!({"name": "f.atomic.test.", "type": "A", "ttl": 60, "records": ["192.0.2.4"],
                "setIdentifier": "q", "failover": "PRIMARY"}))
            ]),
            400,
            "changes[1].rrset.failover",
            "one PRIMARY and one SECONDARY",
        ),
        // A CNAME beside other data.
        (
            json!([
                good,
                create(
                    json!({"name": "keep.atomic.test.", "type": "CNAME", "ttl": 60, "records": ["x.example."]})
                )
            ]),
            400,
            "changes[1].rrset.type",
            "must stand alone",
        ),
        // Route 53's bounds: 1,000 records, 32,000 characters.
        (
            json!([
                good,
                create(json!({"name": "many.atomic.test.", "type": "A", "ttl": 60, "records": many}))
            ]),
            400,
            "changes",
            "records in one batch",
        ),
        (Value::Array([vec![good.clone()], txts].concat()), 400, "changes", "characters of record values"),
        // Deleting the apex NS.
        (
            json!([good, {"action": "DELETE", "rrset": {"name": "atomic.test.", "type": "NS", "ttl": 172800,
            "records": ["ns1.signpost.test.", "ns2.signpost.test."]}}]),
            400,
            "changes[1].rrset.type",
            "apex NS record set cannot be deleted",
        ),
    ];
    for (batch, status, field, message) in bad_batches {
        let r = api.change(&zone, batch);
        assert_error(&r, status, Some(field), message);
        assert_eq!(export(&api, &zone), file_before, "zone changed after a rejected batch: {}", r.body);
        assert_eq!(listing(&api, &zone), list_before);
    }
    let r = api.change(&zone, json!([good]));
    assert_eq!(r.status, 200, "the good change alone goes through: {}", r.body);
    assert_ne!(export(&api, &zone), file_before);
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_errors_name_the_field() {
    let (_db, server, api) = setup(&[]).await;
    let zone = api.zone("valid.test.");
    let seed = api.change(&zone, json!([create(a("www.valid.test.", 60, &["192.0.2.1"]))]));
    assert_eq!(seed.status, 200, "{}", seed.body);
    let before = export(&api, &zone);
    let weighted = |id: &str, extra: Value| {
        let mut r = json!({"name": "p.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.5"], "setIdentifier": id});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        r
    };
    let long_label = format!("{}.valid.test.", "l".repeat(64));
    let long_name = format!("{}valid.test.", "abcdefghi.".repeat(25));
    let cases: Vec<(Value, &str, &str)> = vec![
        (json!([create(a(&long_name, 60, &["192.0.2.1"]))]), "changes[0].rrset.name", "the limit is 253"),
        (json!([create(a(&long_label, 60, &["192.0.2.1"]))]), "changes[0].rrset.name", "the limit is 63"),
        (
            json!([create(a("www.other.test.", 60, &["192.0.2.1"]))]),
            "changes[0].rrset.name",
            "not inside the zone",
        ),
        (
            json!([create(a("x.valid.test.", 60, &["192.0.2.1", "bad"]))]),
            "changes[0].rrset.records[1]",
            "invalid A data",
        ),
        (
            json!([create(
                json!({"name": "x.valid.test.", "type": "MX", "ttl": 60, "records": ["mail.valid.test."]})
            )]),
            "changes[0].rrset.records[0]",
            "invalid MX data",
        ),
        (
            json!([create(json!({"name": "x.valid.test.", "type": "WHAT", "ttl": 60, "records": ["x"]}))]),
            "changes[0].rrset.type",
            "not a record type",
        ),
        (json!([create(a("x.valid.test.", -1, &["192.0.2.1"]))]), "changes[0].rrset.ttl", "0 to 2147483647"),
        (
            json!([create(a("x.valid.test.", 2_147_483_648, &["192.0.2.1"]))]),
            "changes[0].rrset.ttl",
            "0 to 2147483647",
        ),
        (
            json!([create(json!({"name": "x.valid.test.", "type": "A", "records": ["192.0.2.1"]}))]),
            "changes[0].rrset.ttl",
            "ttl is required",
        ),
        (
            json!([create(
                json!({"name": "valid.test.", "type": "CNAME", "ttl": 60, "records": ["x.example."]})
            )]),
            "changes[0].rrset.type",
            "apex",
        ),
        (
            json!([create(
                json!({"name": "c.valid.test.", "type": "CNAME", "ttl": 60, "records": ["x.example.", "y.example."]})
            )]),
            "changes[0].rrset.records",
            "exactly one",
        ),
        (
            json!([create(
                json!({"name": "www.valid.test.", "type": "CNAME", "ttl": 60, "records": ["x.example."]})
            )]),
            "changes[0].rrset.type",
            "stand alone",
        ),
        (json!([create(weighted("a", json!({"weight": 256})))]), "changes[0].rrset.weight", "0 to 255"),
        (json!([create(weighted("a", json!({"weight": -1})))]), "changes[0].rrset.weight", "0 to 255"),
        (
            json!([create(weighted("a", json!({})))]),
            "changes[0].rrset.setIdentifier",
            "needs a routing policy",
        ),
        (
            json!([
                create(a("p.valid.test.", 60, &["192.0.2.1"])),
                create(
                    json!({"name": "p.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.2"], "weight": 1})
                )
            ]),
            "changes[1].rrset.setIdentifier",
            "needs a setIdentifier",
        ),
        (
            json!([create(weighted("a", json!({"weight": 1, "region": "us-east-1"})))]),
            "changes[0].rrset.setIdentifier",
            "only one routing policy",
        ),
        (json!([create(weighted("", json!({"weight": 1})))]), "changes[0].rrset.setIdentifier", "1 to 128"),
        (
            json!([create(weighted(&"s".repeat(129), json!({"weight": 1})))]),
            "changes[0].rrset.setIdentifier",
            "1 to 128",
        ),
        (
            json!([create(weighted("a", json!({"weight": 1}))), create(weighted("a", json!({"weight": 2})))]),
            "changes[1].rrset",
            "already exists",
        ),
        (
            json!([create(
                json!({"name": "www.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.9"], "setIdentifier": "w", "weight": 1})
            )]),
            "changes[0].rrset",
            "mixes routing policies",
        ),
        (
            json!([
                create(weighted("a", json!({"weight": 1}))),
                create(weighted("b", json!({"region": "us-east-1"})))
            ]),
            "changes[1].rrset",
            "mixes routing policies",
        ),
        (
            json!([
                create(weighted("a", json!({"failover": "PRIMARY"}))),
                create(weighted("b", json!({"failover": "PRIMARY"})))
            ]),
            "changes[1].rrset.failover",
            "one PRIMARY and one SECONDARY",
        ),
        (
            json!([create(weighted("a", json!({"failover": "TERTIARY"})))]),
            "changes[0].rrset.failover",
            "unknown variant",
        ),
        (
            json!([create(weighted("a", json!({"geoLocation": {"continent": "XX"}})))]),
            "changes[0].rrset.geoLocation.continent",
            "not a continent",
        ),
        (
            json!([create(weighted("a", json!({"geoLocation": {"country": "ZZ"}})))]),
            "changes[0].rrset.geoLocation.country",
            "ISO 3166-1",
        ),
        (
            json!([create(weighted("a", json!({"geoLocation": {"country": "US", "subdivision": "QQ"}})))]),
            "changes[0].rrset.geoLocation.subdivision",
            "not a subdivision",
        ),
        (
            json!([create(weighted("a", json!({"geoLocation": {"continent": "EU", "country": "DE"}})))]),
            "changes[0].rrset.geoLocation",
            "continent excludes",
        ),
        (
            json!([
                create(weighted("a", json!({"geoLocation": {"country": "DE"}}))),
                create(weighted("b", json!({"geoLocation": {"country": "de"}})))
            ]),
            "changes[1].rrset.geoLocation",
            "already used",
        ),
        (
            json!([create(weighted("a", json!({"region": "mars-north-1x"})))]),
            "changes[0].rrset.region",
            "region code",
        ),
        (
            json!([
                create(weighted("a", json!({"region": "eu-west-1"}))),
                create(weighted("b", json!({"region": "eu-west-1"})))
            ]),
            "changes[1].rrset.region",
            "already used",
        ),
        (
            json!([create(weighted("a", json!({"geoProximity": {"region": "eu-west-1", "bias": 100}})))]),
            "changes[0].rrset.geoProximity.bias",
            "-99 to 99",
        ),
        (
            json!([create(weighted(
                "a",
                json!({"geoProximity": {"coordinates": {"latitude": 10, "longitude": 200}}})
            ))]),
            "changes[0].rrset.geoProximity.coordinates.longitude",
            "-180 to 180",
        ),
        (
            json!([create(weighted("a", json!({"healthCheckId": "H0123456789ABCDEF0123", "weight": 1})))]),
            "changes[0].rrset.healthCheckId",
            "no health check",
        ),
        (
            json!([create(weighted(
                "a",
                json!({"cidrRouting": {"collectionId": "C0123456789ABCDEF0123", "locationName": "*"}})
            ))]),
            "changes[0].rrset.cidrRouting.collectionId",
            "no CIDR collection",
        ),
        (
            json!([create(weighted(
                "a",
                json!({"multiValueAnswer": true, "type": "CNAME", "records": ["x.example."]})
            ))]),
            "changes[0].rrset.multiValueAnswer",
            "does not apply",
        ),
        (
            json!([create(
                json!({"name": "al.valid.test.", "type": "A", "aliasTarget": {"name": "missing.valid.test."}})
            )]),
            "changes[0].rrset.aliasTarget.name",
            "has no A record set",
        ),
        (
            json!([create(
                json!({"name": "al.valid.test.", "type": "AAAA", "aliasTarget": {"name": "www.valid.test."}})
            )]),
            "changes[0].rrset.aliasTarget.name",
            "has no AAAA record set",
        ),
        (
            json!([create(
                json!({"name": "al.valid.test.", "type": "A", "aliasTarget": {"name": "www.nowhere.example."}})
            )]),
            "changes[0].rrset.aliasTarget.name",
            "hosted zone of this account",
        ),
        (
            json!([create(
                json!({"name": "al.valid.test.", "type": "A", "ttl": 60, "aliasTarget": {"name": "www.valid.test."}})
            )]),
            "changes[0].rrset.aliasTarget",
            "no ttl",
        ),
        (
            json!([{"action": "DELETE", "rrset": a("www.valid.test.", 60, &["192.0.2.1"])}, create(json!({"name": "al.valid.test.", "type": "A", "aliasTarget": {"name": "www.valid.test."}}))]),
            "changes[1].rrset.aliasTarget.name",
            "has no A record set",
        ),
        (
            json!([{"action": "REPLACE", "rrset": a("x.valid.test.", 60, &["192.0.2.1"])}]),
            "changes[0].action",
            "unknown variant",
        ),
        (
            json!([create(
                json!({"name": "x.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.1"], "wieght": 1})
            )]),
            "changes[0].rrset",
            "unknown field",
        ),
        (json!([]), "changes", "at least one change"),
    ];
    for (changes, field, message) in cases {
        let r = api.change(&zone, changes.clone());
        assert_eq!(r.status / 100, 4, "{changes}: {}", r.body);
        let body = r.json();
        let got_field = body["error"]["field"].as_str().unwrap_or_default();
        assert!(
            got_field == field || got_field.starts_with(&format!("{field}.")),
            "{changes}\n=> {}",
            r.body
        );
        let got = body["error"]["message"].as_str().unwrap_or_default();
        assert!(got.contains(message), "{changes}\nexpected {message:?} in {got:?}");
    }
    assert_eq!(export(&api, &zone), before, "no rejected batch changed the zone");

    // What Route 53 accepts goes through, and DNS answers it.
    let ok = api.change(
        &zone,
        json!([
            create(weighted("eu", json!({"geoLocation": {"continent": "EU"}}))),
            create(json!({"name": "p.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.6"],
                "setIdentifier": "default", "geoLocation": {"country": "*"}})),
            create(json!({"name": "p.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.7"],
                "setIdentifier": "ca", "geoLocation": {"country": "us", "subdivision": "ca"}})),
            create(json!({"name": "f.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.8"],
                "setIdentifier": "p", "failover": "PRIMARY"})),
            create(json!({"name": "f.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.9"],
                "setIdentifier": "s", "failover": "SECONDARY"})),
            create(json!({"name": "l.valid.test.", "type": "A", "ttl": 60, "records": ["192.0.2.10"],
                "setIdentifier": "use1", "region": "us-east-1"})),
            create(json!({"name": "valid.test.", "type": "A", "aliasTarget": {"name": "www.valid.test.", "evaluateTargetHealth": true}})),
            create(json!({"name": "m.valid.test.", "type": "TXT", "ttl": 60, "records": ["\"one\""],
                "setIdentifier": "m1", "multiValueAnswer": true})),
        ]),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    let stored = api.get(&format!("/v1/zones/{zone}/rrsets?name=p.valid.test.")).json();
    assert!(
        stored["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["geoLocation"] == json!({"country": "US", "subdivision": "CA"}))
    );
    let answered = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "f.valid.test.", RecordType::A).answers.len() == 1
            && ask(server.dns, "valid.test.", RecordType::A).answers.len() == 1
    });
    assert!(answered.is_some(), "failover and alias answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn zone_files_export_through_named_checkzone_and_import_atomically() {
    let (_db, _server, api) = setup(&[]).await;
    let zone = api.zone("files.test.");
    let r = api.change(
        &zone,
        json!([
            create(a("www.files.test.", 60, &["192.0.2.1", "192.0.2.2"])),
            create(json!({"name": "files.test.", "type": "MX", "ttl": 300, "records": ["10 mail.files.test."]})),
            create(a("mail.files.test.", 300, &["192.0.2.25"])),
            create(json!({"name": "files.test.", "type": "TXT", "ttl": 300, "records": ["\"v=spf1 mx -all\""]})),
            create(json!({"name": "w.files.test.", "type": "A", "ttl": 60, "records": ["192.0.2.7"], "setIdentifier": "x", "weight": 5})),
        ]),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let text = export(&api, &zone);
    assert!(text.starts_with("$ORIGIN files.test."), "{text}");
    let path = temp_path("files.test.zone");
    std::fs::write(&path, &text).unwrap();
    if have("named-checkzone") {
        let check = std::process::Command::new("named-checkzone")
            .args(["files.test", path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "named-checkzone:\n{}\n{text}",
            String::from_utf8_lossy(&check.stdout)
        );
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must install bind9-utils (named-checkzone)");
    }
    let _ = std::fs::remove_file(path);

    // Import makes the zone equal to the file; SOA and NS stay when absent.
    let file = "$ORIGIN files.test.\n$TTL 120\nnew IN A 192.0.2.50\nwww IN A 192.0.2.51\n";
    let r = api.post_text(&format!("/v1/zones/{zone}/zonefile"), file);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.json()["id"].as_str().unwrap().starts_with('C'));
    let names: Vec<String> = api.get(&format!("/v1/zones/{zone}/rrsets")).json()["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| format!("{} {}", r["name"].as_str().unwrap(), r["type"].as_str().unwrap()))
        .collect();
    assert_eq!(names, ["files.test. SOA", "files.test. NS", "new.files.test. A", "www.files.test. A"]);

    // A bad file, or one for another zone, changes nothing.
    let before = export(&api, &zone);
    for (bad, message) in [
        ("$ORIGIN files.test.\n$TTL 60\nok IN A 192.0.2.1\nbad IN A 192.0.2.300\n", "invalid IPv4 address"),
        ("$ORIGIN elsewhere.test.\n$TTL 60\nx IN A 192.0.2.1\n", "is not the zone"),
        ("$ORIGIN files.test.\n$TTL 60\nc IN CNAME x.example.\nc IN A 192.0.2.1\n", "must stand alone"),
        ("$INCLUDE /etc/passwd\n", "$INCLUDE is not supported"),
        // Without a TTL anywhere.
        ("$ORIGIN files.test.\nx IN A 192.0.2.1\n", "line 2: no TTL"),
    ] {
        let r = api.post_text(&format!("/v1/zones/{zone}/zonefile"), bad);
        assert_error(&r, 400, None, message);
        assert_eq!(export(&api, &zone), before, "{bad}");
    }
    let r = api.post_text(&format!("/v1/zones/{zone}/zonefile"), "\u{0}\u{1}garbage");
    assert_eq!(r.status, 400, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_bodies_get_413_and_malformed_json_400() {
    let (_db, server, api) = setup(&["--api-max-body", "2000"]).await;
    let zone = api.zone("limits.test.");
    let path = format!("/v1/zones/{zone}/changes");
    // A declared oversize body is refused before it is sent (Expect: 100-continue).
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 5000000\r\nExpect: 100-continue\r\n\r\n",
        api.key
    );
    let r = http_raw(server.api_addr(), head.as_bytes());
    assert_error(&r, 413, None, "larger than 2000 bytes");
    // A chunked body that grows over the bound.
    let filler = format!("{{\"changes\": [], \"comment\": \"{}\"}}", "x".repeat(3000));
    let mut chunked = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
        api.key
    )
    .into_bytes();
    for piece in filler.as_bytes().chunks(500) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_error(&http_raw(server.api_addr(), &chunked), 413, None, "larger than");

    // Malformed JSON: 400 with the reason, never a plain-text 422.
    for (body, part) in [
        ("{\"changes\": [", "malformed JSON"),
        ("not json", "malformed JSON"),
        ("", "malformed JSON"),
        ("{\"changes\": []} trailing", "malformed JSON"),
        ("[1, 2]", "one JSON object"),
        ("{\"changes\": \"no\"}", "invalid type"),
        ("{\"changes\": [{\"action\": \"CREATE\"}]}", "missing field `rrset`"),
    ] {
        let r = http(server.api_addr(), "POST", &path, Some(&api.key), Some(body));
        assert_error(&r, 400, None, part);
        assert_eq!(r.header("content-type"), Some("application/json"));
    }
    let r = http(server.api_addr(), "POST", "/v1/zones", Some(&api.key), Some("{\"name\": [\"x\"]}"));
    assert_error(&r, 400, Some("name"), "invalid type");
    let mut raw = format!(
        "POST /v1/zones HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\n\
         Content-Type: application/json\r\nContent-Length: 4\r\n\r\n",
        api.key
    )
    .into_bytes();
    raw.extend_from_slice(&[0xff, 0xfe, 0x00, 0x01]);
    assert_error(&http_raw(server.api_addr(), &raw), 400, None, "malformed JSON");
    // Unknown routes and methods answer JSON too.
    assert_error(&api.get("/v1/nothing"), 404, None, "no such route");
    assert_error(
        &http(server.api_addr(), "PUT", "/v1/zones", Some(&api.key), Some("{}")),
        405,
        None,
        "method",
    );
    assert_error(&api.get("/v1/zones/not-an-id"), 404, None, "no hosted zone");
    assert_error(&api.get("/v1/zones/%FF%FE"), 400, None, "Invalid UTF-8");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_key_is_rate_limited_with_retry_after() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--api-rate-limit", "1", "--api-rate-burst", "3"]);
    let key = account_key(&db, "limited");
    let other = account_key(&db, "unlimited");
    let api = Api { addr: server.api_addr(), key };
    for _ in 0..3 {
        assert_eq!(api.get("/v1/zones").status, 200);
    }
    // The burst is spent; one token comes back per second, so a slow machine
    // may see one more 200 before the 429.
    let r = (0..5).map(|_| api.get("/v1/zones")).find(|r| r.status != 200).expect("a 429");
    assert_error(&r, 429, None, "Rate exceeded");
    assert_eq!(r.json()["error"]["code"], "Throttling");
    let wait: u64 = r.header("retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    assert_eq!(api.as_key(&other).get("/v1/zones").status, 200, "another key has its own bucket");
    std::thread::sleep(Duration::from_secs(wait));
    assert_eq!(api.get("/v1/zones").status, 200, "the bucket refills");
}

#[tokio::test(flavor = "multi_thread")]
async fn openapi_document_and_metrics_are_served() {
    let (_db, server, api) = setup(&[]).await;
    let spec = http(server.api_addr(), "GET", "/v1/openapi.json", None, None);
    assert_eq!(spec.status, 200);
    let spec = spec.json();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/v1/zones", "/v1/zones/{id}/changes", "/v1/changes/{id}", "/v1/keys"] {
        assert!(spec["paths"][path].is_object(), "{path}");
    }
    assert!(spec["components"]["schemas"]["RecordSet"].is_object());
    let zone = api.zone("metrics.test.");
    assert_eq!(api.get(&format!("/v1/zones/{zone}")).status, 200);
    assert_eq!(api.get("/v1/zones/Z0123456789ABCDEF0123").status, 404);
    let metrics = http(server.api_addr(), "GET", "/metrics", None, None).body;
    for line in [
        r#"signpost_http_requests_total{method="POST",route="/v1/zones",status="201"} 1"#,
        r#"signpost_http_requests_total{method="GET",route="/v1/zones/{id}",status="200"} 1"#,
        r#"signpost_http_requests_total{method="GET",route="/v1/zones/{id}",status="404"} 1"#,
        r#"signpost_http_request_duration_seconds_count{method="GET",route="/v1/zones/{id}"} 2"#,
    ] {
        assert!(metrics.contains(line), "{line} missing from\n{metrics}");
    }
    let health = http(server.api_addr(), "GET", "/healthz", None, None).json();
    assert_eq!(health, json!({"status": "ok", "database": "up"}));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_database_gives_a_quick_503_and_the_api_recovers() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let key = account_key(&db, "outage");
    let Some((mut proxy, url)) = proxied_url(&db) else {
        // Under CI the database is on TCP; a missing precondition fails there.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must reach the test database over TCP (the outage proxy)"
        );
        eprintln!("not run outside CI: the test database is on a Unix socket; the proxy needs TCP");
        return;
    };
    let args: Vec<String> = ["api", "--api-addr", "127.0.0.1:0", "--api-db-timeout-ms", "500"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let server = Signpost::start_with_url(&url, &args, false);
    let api = Api { addr: server.api_addr(), key };
    let zone = api.zone("outage.test.");
    assert_eq!(api.get(&format!("/v1/zones/{zone}")).status, 200);

    proxy.down();
    for _ in 0..3 {
        let started = Instant::now();
        let r = api.get(&format!("/v1/zones/{zone}"));
        assert_error(&r, 503, None, "database");
        assert_eq!(r.json()["error"]["code"], "ServiceUnavailable");
        assert!(r.header("retry-after").is_some());
        assert!(started.elapsed() < Duration::from_secs(3), "503 took {:?}", started.elapsed());
    }
    let r = api.change(&zone, json!([create(a("w.outage.test.", 60, &["192.0.2.1"]))]));
    assert_eq!(r.status, 503, "{}", r.body);
    let health = http(api.addr, "GET", "/healthz", None, None);
    assert_eq!((health.status, health.json()["database"].clone()), (200, json!("down")));

    proxy.up();
    let back = wait_until(Duration::from_secs(10), || api.get(&format!("/v1/zones/{zone}")).status == 200);
    assert!(back.is_some(), "the API did not recover:\n{}", server.log());
    let r = api.change(&zone, json!([create(a("w.outage.test.", 60, &["192.0.2.1"]))]));
    assert_eq!(r.status, 200, "{}", r.body);
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM record_sets WHERE zone_id = $1")
        .bind(&zone)
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(n, 3);
    assert!(!server.log().contains("panicked"));
}
