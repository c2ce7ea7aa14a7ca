//! End-to-end: the control API's health checks, routing data (CIDR
//! collections, latency table, regions), TestDNSAnswer and usage, against
//! the real binary, a real PostgreSQL and real DNS queries (issues 4-6).
//! Every test runs its own server on port 0 against its own database.

mod common;

use std::net::TcpListener;
use std::path::PathBuf;
use std::time::Duration;

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::{Value, json};
use signpost_core::UsageCategory;
use signpost_core::usage::{PriceTable, round_usd};

impl Api {
    /// Applies a batch of `(action, rrset)`; asserts it is accepted.
    fn apply(&self, zone: &str, changes: &[(&str, &Value)]) {
        let changes: Vec<Value> =
            changes.iter().map(|(action, rrset)| json!({"action": action, "rrset": rrset})).collect();
        let r = self.post(&format!("/v1/zones/{zone}/changes"), &json!({ "changes": changes }));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    /// Creates a health check; returns its id.
    fn check(&self, body: Value) -> String {
        let r = self.post("/v1/health-checks", &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    }
    /// Creates a CIDR collection; returns its id.
    fn collection(&self, body: Value) -> String {
        let r = self.post("/v1/cidr-collections", &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().unwrap().to_string()
    }
    /// TestDNSAnswer for `name`/`qtype` with an optional client subnet.
    fn test_dns(&self, zone: &str, name: &str, qtype: &str, subnet: Option<&str>) -> Value {
        let mut path = format!("/v1/zones/{zone}/test-dns-answer?name={name}&type={qtype}");
        if let Some(subnet) = subnet {
            path.push_str(&format!("&clientSubnet={subnet}"));
        }
        let r = self.get(&path);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        r.json()
    }
}

fn a(name: &str, records: &[&str]) -> Value {
    json!({"name": name, "type": "A", "ttl": 60, "records": records})
}

/// A member of a policy group: an A record set with `extra` routing fields.
fn member(name: &str, id: &str, addr: &str, extra: Value) -> Value {
    let mut r = json!({"name": name, "type": "A", "ttl": 60, "records": [addr], "setIdentifier": id});
    for (k, v) in extra.as_object().unwrap() {
        r[k] = v.clone();
    }
    r
}

/// A TCP listener that accepts and drops connections (a healthy TCP target).
fn tcp_target() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            drop(conn);
        }
    });
    port
}

/// The DNS answer to `name` (A) for a client subnet, as record data.
fn dns_a(server: &Signpost, name: &str, subnet: Option<(&str, u8)>) -> Vec<String> {
    let reply = match subnet {
        Some((addr, source)) => udp_query(server.dns, &ecs_message(name, RecordType::A, addr, source)),
        None => ask(server.dns, name, RecordType::A),
    };
    answer_data(&reply)
}

/// Asks DNS and TestDNSAnswer the same question; asserts they agree on the
/// response code, the record data and the ECS scope; returns the data.
fn agree(
    server: &Signpost,
    api: &Api,
    zone: &str,
    name: &str,
    qtype: RecordType,
    subnet: Option<(&str, u8)>,
) -> Vec<String> {
    let reply = match subnet {
        Some((addr, source)) => udp_query(server.dns, &ecs_message(name, qtype, addr, source)),
        None => ask(server.dns, name, qtype),
    };
    let subnet_text = subnet.map(|(addr, source)| format!("{addr}/{source}"));
    let tested = api.test_dns(zone, name, &qtype.to_string(), subnet_text.as_deref());
    let mut records: Vec<String> =
        tested["records"].as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    records.sort();
    let context = format!("{name} {qtype} {subnet:?}: {tested}");
    assert_eq!(records, answer_data(&reply), "{context}");
    assert_eq!(tested["rcode"], json!(rcode_name(&reply)), "{context}");
    assert_eq!(tested["type"], json!(qtype.to_string()), "{context}");
    match subnet {
        Some(_) => assert_eq!(tested["ecsScope"], json!(ecs_scope_of(&reply)), "{context}"),
        None => assert_eq!(tested["ecsScope"], Value::Null, "{context}"),
    }
    records
}

/// A MaxMind DB with two networks: 10.4.0.0/16 in Germany (Frankfurt) and
/// 10.6.0.0/16 in Gabon, on the equator.
fn write_geo_db() -> PathBuf {
    let mut writer = mmdb_writer::Writer::new("GeoIP2-City");
    for (net, continent, country, lat, lon) in
        [("10.4.0.0/16", "EU", "DE", 50.1, 8.7), ("10.6.0.0/16", "AF", "GA", 0.0, 14.0)]
    {
        let record = json!({
            "continent": {"code": continent},
            "country": {"iso_code": country},
            "location": {"latitude": lat, "longitude": lon},
        });
        writer.insert(net.parse::<ipnet::IpNet>().unwrap(), &record).unwrap();
    }
    let path = temp_path("api-geo.mmdb");
    std::fs::write(&path, writer.to_bytes().unwrap()).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn health_checks_are_created_once_listed_and_deleted_only_when_unused() {
    let (_db, _server, api) = serve_with_key(&[]).await;
    let port = tcp_target();
    let body = json!({"type": "TCP", "ip": "127.0.0.1", "port": port, "requestInterval": 1,
        "failureThreshold": 1, "callerReference": "tcp-1"});
    let first = api.post("/v1/health-checks", &body);
    assert_eq!(first.status, 201, "{}", first.body);
    let first = first.json();
    let id = first["id"].as_str().unwrap().to_string();
    assert!(id.starts_with('H') && id.len() == 21, "{id}");
    for (field, want) in [
        ("type", json!("TCP")),
        ("ip", json!("127.0.0.1")),
        ("port", json!(port)),
        ("requestInterval", json!(1)),
        ("failureThreshold", json!(1)),
        ("inverted", json!(false)),
        ("disabled", json!(false)),
        ("callerReference", json!("tcp-1")),
        ("override", Value::Null),
    ] {
        assert_eq!(first[field], want, "{field}: {first}");
    }
    // The same request again gives the same check (200); other settings under the same reference, 409.
    let again = api.post("/v1/health-checks", &body);
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.json(), first);
    let mut other = body.clone();
    other["failureThreshold"] = json!(2);
    assert_error(&api.post("/v1/health-checks", &other), 409, Some("callerReference"), "other settings");
    assert_eq!(api.post("/v1/health-checks", &other).json()["error"]["code"], "HealthCheckAlreadyExists");

    // Bad input is a 400 naming the field, whatever its kind.
    let cases = [
        (json!({"type": "TCP", "ip": "127.0.0.1"}), Some("port"), "port"),
        (json!({"type": "HTTP", "ip": "127.0.0.1", "port": 70000}), Some("port"), "1 to 65535"),
        (json!({"type": "HTTP", "ip": "127.0.0.1", "port": "80"}), Some("port"), "invalid type"),
        (json!({"type": "FTP", "ip": "127.0.0.1"}), Some("type"), "unknown variant"),
        (json!({"type": "HTTP", "ip": "192.0.2.1"}), Some("ip"), "documentation"),
        (json!({"type": "HTTP", "ip": "nope"}), Some("ip"), "not an IPv4"),
        (
            json!({"type": "HTTP", "ip": "127.0.0.1", "requestInterval": 0}),
            Some("requestInterval"),
            "1 to 300",
        ),
        (json!({"type": "HTTP", "ip": "127.0.0.1", "bogus": 1}), Some("bogus"), "unknown field"),
        (
            json!({"type": "CALCULATED", "childHealthChecks": ["H0123456789ABCDEF0123"]}),
            Some("childHealthChecks[0]"),
            "no health check",
        ),
        (json!({"ip": "127.0.0.1"}), Some("type"), "missing field `type`"),
    ];
    for (body, field, message) in &cases {
        assert_error(&api.post("/v1/health-checks", body), 400, *field, message);
    }
    let malformed = http(api.addr, "POST", "/v1/health-checks", Some(&api.key), Some("{\"type\": "));
    assert_error(&malformed, 400, None, "malformed JSON");
    assert_eq!(malformed.json()["error"]["code"], "MalformedJson");

    // Listing pages through the checks by id.
    let disabled = json!({"type": "HTTP", "ip": "127.0.0.1", "port": port, "disabled": true});
    let second = api.check(disabled.clone());
    let third = api.check(disabled);
    let page = api.get("/v1/health-checks?limit=2").json();
    assert_eq!(page["items"].as_array().unwrap().len(), 2, "{page}");
    let cursor = page["nextCursor"].as_str().expect("a next page").to_string();
    let rest = api.get(&format!("/v1/health-checks?limit=2&cursor={cursor}")).json();
    assert_eq!(rest["items"].as_array().unwrap().len(), 1, "{rest}");
    assert_eq!(rest["nextCursor"], Value::Null);
    let mut listed: Vec<String> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .chain(rest["items"].as_array().unwrap())
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect();
    let mut made = vec![id.clone(), second.clone(), third.clone()];
    made.sort();
    assert_eq!(listed, made, "by id");
    listed.dedup();
    assert_eq!(listed.len(), 3);
    assert_error(&api.get("/v1/health-checks?limit=0"), 400, Some("limit"), "an integer from 1 to 100");
    assert_error(&api.get("/v1/health-checks?cursor=zz"), 400, Some("cursor"), "not a cursor");
    assert_eq!(api.get(&format!("/v1/health-checks/{id}")).json(), first);

    // The status: the verdict, the override and the local checker's state.
    let mut status = Value::Null;
    let seen = wait_until(Duration::from_secs(15), || {
        status = api.get(&format!("/v1/health-checks/{id}/status")).json();
        status["checkers"].as_array().is_some_and(|c| !c.is_empty())
    });
    assert!(seen.is_some(), "no checker reported: {status}");
    assert_eq!(status["id"], json!(id));
    assert_eq!(status["healthy"], json!(true));
    assert_eq!(status["override"], Value::Null);
    let checker = &status["checkers"][0];
    assert_eq!(checker["region"], "local", "{status}");
    assert_eq!(checker["healthy"], json!(true), "{status}");
    assert!(checker["lastCheckedAt"].is_string(), "{status}");
    assert!(checker["latencyMs"].is_number(), "{status}");
    assert_eq!(checker["lastError"], Value::Null, "{status}");

    // In use by a record set or a CALCULATED check: 409; unused: 204.
    let zone = api.zone("checked.test.");
    let gated = member("w.checked.test.", "one", "192.0.2.1", json!({"weight": 1, "healthCheckId": id}));
    api.apply(&zone, &[("CREATE", &gated)]);
    let in_use = api.delete(&format!("/v1/health-checks/{id}"));
    assert_error(&in_use, 409, None, "in use");
    assert_eq!(in_use.json()["error"]["code"], "HealthCheckInUse");
    let calculated =
        api.check(json!({"type": "CALCULATED", "childHealthChecks": [second], "healthThreshold": 1}));
    assert_error(&api.delete(&format!("/v1/health-checks/{second}")), 409, None, "CALCULATED");
    assert_eq!(api.delete(&format!("/v1/health-checks/{calculated}")).status, 204);
    assert_eq!(api.delete(&format!("/v1/health-checks/{second}")).status, 204);
    let gone = api.get(&format!("/v1/health-checks/{second}"));
    assert_error(&gone, 404, None, "no health check");
    assert_eq!(gone.json()["error"]["code"], "NoSuchHealthCheck");
    assert_eq!(api.delete(&format!("/v1/health-checks/{second}")).status, 404);
    assert_eq!(api.get("/v1/health-checks/nope").status, 404);
    api.apply(&zone, &[("DELETE", &gated)]);
    assert_eq!(api.delete(&format!("/v1/health-checks/{id}")).status, 204);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_reaches_dns_within_a_second() {
    let (_db, server, api) = serve_with_key(&[]).await;
    let port = tcp_target();
    let check = api.check(json!({"type": "TCP", "ip": "127.0.0.1", "port": port, "requestInterval": 1,
        "failureThreshold": 1}));
    let zone = api.zone("failover.test.");
    let name = "www.failover.test.";
    let primary =
        member(name, "primary", "192.0.2.1", json!({"failover": "PRIMARY", "healthCheckId": check}));
    let secondary = member(name, "secondary", "192.0.2.2", json!({"failover": "SECONDARY"}));
    api.apply(&zone, &[("CREATE", &primary), ("CREATE", &secondary)]);
    let answers = |want: &str| dns_a(&server, name, None) == [want];
    assert!(wait_until(Duration::from_secs(5), || answers("192.0.2.1")).is_some());

    let set = |state: Value| {
        let r = api.put(&format!("/v1/health-checks/{check}/override"), &json!({ "state": state }));
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    assert_eq!(set(json!("UNHEALTHY"))["override"], "UNHEALTHY");
    let took = wait_until(Duration::from_secs(5), || answers("192.0.2.2")).expect("DNS follows the override");
    println!("override UNHEALTHY answered by DNS after {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
    let status = api.get(&format!("/v1/health-checks/{check}/status")).json();
    assert_eq!((status["healthy"].clone(), status["override"].clone()), (json!(false), json!("UNHEALTHY")));

    assert_eq!(set(Value::Null)["override"], Value::Null);
    let took = wait_until(Duration::from_secs(5), || answers("192.0.2.1"))
        .expect("DNS follows the cleared override");
    println!("override cleared, answered by DNS after {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");

    // An empty body clears too; a state that is not one is a 400.
    let r = api.put(&format!("/v1/health-checks/{check}/override"), &json!({}));
    assert_eq!((r.status, r.json()["override"].clone()), (200, Value::Null));
    let bad = api.put(&format!("/v1/health-checks/{check}/override"), &json!({"state": "MAYBE"}));
    assert_error(&bad, 400, Some("state"), "unknown variant");
    let r = api.put("/v1/health-checks/H0123456789ABCDEF0123/override", &json!({}));
    assert_error(&r, 404, None, "no health check H0123456789ABCDEF0123");
}

#[tokio::test(flavor = "multi_thread")]
async fn signpost_api_applies_the_installation_target_policy() {
    let db = TestDb::new().await;
    let strict = Signpost::api_only(&db, &["--api-rate-limit", "0"]);
    let api = Api { addr: strict.api_addr(), key: account_key(&db, "acme") };
    // Loopback only in local mode; link-local and metadata refused by the
    // stored default.
    for (ip, class, why) in [
        ("127.0.0.1", "loopback", "only to `signpost serve`"),
        ("::1", "loopback", "only to `signpost serve`"),
        ("::ffff:127.0.0.1", "loopback", "only to `signpost serve`"),
        ("169.254.169.254", "metadata", "target policy refuses them"),
        ("fe80::1", "link-local", "target policy refuses them"),
    ] {
        let r = api.post("/v1/health-checks", &json!({"type": "HTTP", "ip": ip}));
        assert_error(&r, 400, Some("ip"), class);
        assert_error(&r, 400, Some("ip"), why);
    }
    let r = api.post("/v1/health-checks", &json!({"type": "HTTP", "host": "localhost"}));
    assert_error(&r, 400, Some("host"), "loopback");
    // Private networks are allowed by default (users probe their containers).
    api.check(json!({"type": "HTTP", "ip": "10.1.2.3", "disabled": true}));
    api.check(json!({"type": "HTTP", "ip": "8.8.8.8", "disabled": true}));

    let open = Signpost::api_only(&db, &["--api-rate-limit", "0", "--allow-private-targets"]);
    let api = Api { addr: open.api_addr(), key: api.key.clone() };
    api.check(json!({"type": "HTTP", "ip": "127.0.0.1", "disabled": true}));
    let r = api.post("/v1/health-checks", &json!({"type": "TCP", "ip": "169.254.169.254", "port": 80}));
    assert_error(&r, 400, Some("ip"), "metadata");
    let r = api.post("/v1/health-checks", &json!({"type": "HTTP", "ip": "192.0.2.1"}));
    assert_error(&r, 400, Some("ip"), "cannot be health checked");
}

#[tokio::test(flavor = "multi_thread")]
async fn accounts_are_walls_and_narrow_keys_cannot_write() {
    let (db, server, alice) = serve_with_key(&[]).await;
    let bob = alice.as_key(&account_key(&db, "bob"));
    let zone = alice.zone("walls.test.");
    let check = alice.check(json!({"type": "HTTP", "ip": "127.0.0.1", "disabled": true}));
    let collection =
        alice.collection(json!({"name": "c", "locations": [{"name": "x", "cidrs": ["10.0.0.0/8"]}]}));
    let (no_check, no_collection, no_zone) =
        ("H0123456789ABCDEF0123", "C0123456789ABCDEF0123", "Z0123456789ABCDEF0123");

    // Bob gets exactly what a missing id gets, for reads and writes.
    let routes = |check: &str, collection: &str, zone: &str| {
        vec![
            ("GET", format!("/v1/health-checks/{check}"), None),
            ("GET", format!("/v1/health-checks/{check}/status"), None),
            ("DELETE", format!("/v1/health-checks/{check}"), None),
            ("PUT", format!("/v1/health-checks/{check}/override"), Some(json!({"state": "UNHEALTHY"}))),
            ("GET", format!("/v1/cidr-collections/{collection}"), None),
            ("PUT", format!("/v1/cidr-collections/{collection}"), Some(json!({"name": "c"}))),
            ("DELETE", format!("/v1/cidr-collections/{collection}"), None),
            ("GET", format!("/v1/zones/{zone}/usage"), None),
            ("GET", format!("/v1/zones/{zone}/test-dns-answer?name=walls.test.&type=A"), None),
        ]
    };
    for ((method, theirs, body), (_, missing, _)) in
        routes(&check, &collection, &zone).into_iter().zip(routes(no_check, no_collection, no_zone))
    {
        let body = body.map(|b| b.to_string());
        let a = http(bob.addr, method, &theirs, Some(&bob.key), body.as_deref());
        let b = http(bob.addr, method, &missing, Some(&bob.key), body.as_deref());
        assert_eq!(a.status, 404, "{method} {theirs}: {}", a.body);
        assert_eq!(a.json()["error"]["code"], b.json()["error"]["code"], "{method} {theirs}");
    }
    assert_eq!(bob.get("/v1/health-checks").json()["items"], json!([]));
    assert_eq!(bob.get("/v1/cidr-collections").json()["items"], json!([]));
    assert_eq!(bob.get("/v1/usage").json()["zones"], json!([]));
    // Bob's region override and latency table are his alone.
    assert_eq!(bob.put("/v1/regions/us-east-1", &json!({"latitude": 0, "longitude": 0})).status, 200);
    let region = |api: &Api| {
        api.get("/v1/regions").json()["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["code"] == "us-east-1")
            .cloned()
            .unwrap()
    };
    assert_eq!(region(&bob)["builtIn"], json!(false));
    assert_eq!(region(&alice)["builtIn"], json!(true));
    assert_eq!(region(&alice)["latitude"], json!(38.9));
    let entries = json!({"entries": [{"cidr": "10.0.0.0/8", "region": "us-east-1", "latencyMs": 1}]});
    assert_eq!(bob.put("/v1/latency-table", &entries).status, 200);
    assert_eq!(alice.get("/v1/latency-table").json(), json!({"entries": []}));
    // Alice's objects are untouched.
    assert_eq!(alice.get(&format!("/v1/health-checks/{check}")).json()["override"], Value::Null);
    assert_eq!(alice.get(&format!("/v1/cidr-collections/{collection}")).status, 200);

    // Every new route needs a key.
    let writes = [
        ("POST", "/v1/health-checks".to_string(), json!({"type": "HTTP", "ip": "127.0.0.1"})),
        ("DELETE", format!("/v1/health-checks/{check}"), Value::Null),
        ("PUT", format!("/v1/health-checks/{check}/override"), json!({"state": "UNHEALTHY"})),
        ("POST", "/v1/cidr-collections".to_string(), json!({"name": "d"})),
        ("PUT", format!("/v1/cidr-collections/{collection}"), json!({"name": "c"})),
        ("DELETE", format!("/v1/cidr-collections/{collection}"), Value::Null),
        ("PUT", "/v1/latency-table".to_string(), json!({"entries": []})),
        ("PUT", "/v1/regions/on-prem-1".to_string(), json!({"latitude": 1, "longitude": 2})),
        ("DELETE", "/v1/regions/us-east-1".to_string(), Value::Null),
    ];
    let reads = [
        "/v1/health-checks".to_string(),
        format!("/v1/health-checks/{check}"),
        format!("/v1/health-checks/{check}/status"),
        "/v1/cidr-collections".to_string(),
        format!("/v1/cidr-collections/{collection}"),
        "/v1/latency-table".to_string(),
        "/v1/regions".to_string(),
        "/v1/usage".to_string(),
        format!("/v1/zones/{zone}/usage"),
        format!("/v1/zones/{zone}/test-dns-answer?name=walls.test.&type=SOA"),
    ];
    for (method, path, body) in &writes {
        let r = http(server.api_addr(), method, path, None, Some(&body.to_string()));
        assert_eq!(r.status, 401, "{method} {path}");
    }
    for path in &reads {
        assert_eq!(http(server.api_addr(), "GET", path, None, None).status, 401, "{path}");
    }

    // A read-only key reads everything and writes nothing; so does a key
    // limited to some zones, for the account-wide objects.
    let reader = alice.post("/v1/keys", &json!({"readOnly": true})).json();
    let reader = alice.as_key(reader["apiKey"].as_str().unwrap());
    let other_zone = alice.zone("other-walls.test.");
    let limited = alice.post("/v1/keys", &json!({"zoneIds": [zone]})).json();
    let limited = alice.as_key(limited["apiKey"].as_str().unwrap());
    for key in [&reader, &limited] {
        for path in &reads {
            assert_eq!(key.get(path).status, 200, "{path}");
        }
        for (method, path, body) in &writes {
            let body = (!body.is_null()).then(|| body.to_string());
            let r = http(key.addr, method, path, Some(&key.key), body.as_deref());
            assert_eq!(r.status, 403, "{method} {path}: {}", r.body);
            assert_eq!(r.json()["error"]["code"], "AccessDenied");
        }
    }
    assert_eq!(limited.get(&format!("/v1/zones/{other_zone}/usage")).status, 403);
    let usage = limited.get("/v1/usage").json();
    assert_eq!(usage["zones"].as_array().unwrap().len(), 1, "{usage}");
    assert_eq!(usage["zones"][0]["zoneId"], json!(zone));
    assert_eq!(alice.get("/v1/usage").json()["zones"].as_array().unwrap().len(), 2);
    assert_eq!(alice.get(&format!("/v1/health-checks/{check}")).json()["override"], Value::Null);
    assert_eq!(alice.get(&format!("/v1/cidr-collections/{collection}")).status, 200);
    assert_eq!(region(&alice)["builtIn"], json!(true));
}

#[tokio::test(flavor = "multi_thread")]
async fn cidr_collections_steer_dns_by_client_subnet() {
    let (_db, server, api) = serve_with_key(&[]).await;
    let body = json!({"name": "offices", "locations": [
        {"name": "paris", "cidrs": ["203.0.113.0/24", "2001:db8:1::/48"]},
        {"name": "berlin", "cidrs": ["198.51.100.0/24"]}]});
    let made = api.post("/v1/cidr-collections", &body);
    assert_eq!(made.status, 201, "{}", made.body);
    let made = made.json();
    let id = made["id"].as_str().unwrap().to_string();
    let shape: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(shape, [8, 4, 4, 4, 12], "a UUID, like Route 53's CollectionId: {id}");
    assert_eq!(made["name"], "offices");
    assert_eq!(
        made["locations"],
        json!([{"name": "berlin", "cidrs": ["198.51.100.0/24"]},
               {"name": "paris", "cidrs": ["203.0.113.0/24", "2001:db8:1::/48"]}])
    );
    assert_eq!(api.get(&format!("/v1/cidr-collections/{id}")).json(), made);
    assert_eq!(api.get("/v1/cidr-collections").json(), json!({"items": [made], "nextCursor": null}));
    let taken = api.post("/v1/cidr-collections", &json!({"name": "offices"}));
    assert_error(&taken, 409, Some("name"), "already has");
    assert_eq!(taken.json()["error"]["code"], "CidrCollectionAlreadyExists");

    // Route 53's rules, with the field named.
    let location = |name: &str, cidrs: Value| json!({"name": name, "cidrs": cidrs});
    let cases = [
        (json!({"name": "bad name!"}), "name", "letters, digits"),
        (json!({"name": "x".repeat(65)}), "name", "1 to 64"),
        (
            json!({"name": "x", "locations": [location("*", json!(["10.0.0.0/8"]))]}),
            "locations[0].name",
            "default",
        ),
        (
            json!({"name": "x", "locations": [location("much-too-long-name", json!(["10.0.0.0/8"]))]}),
            "locations[0].name",
            "1 to 16",
        ),
        (json!({"name": "x", "locations": [location("a", json!([]))]}), "locations[0].cidrs", "at least one"),
        (
            json!({"name": "x", "locations": [location("a", json!(["10.0.0.0/25"]))]}),
            "locations[0].cidrs[0]",
            "/1 to /24",
        ),
        (
            json!({"name": "x", "locations": [location("a", json!(["2001:db8::/64"]))]}),
            "locations[0].cidrs[0]",
            "/1 to /48",
        ),
        (
            json!({"name": "x", "locations": [location("a", json!(["10.0.0.1/8"]))]}),
            "locations[0].cidrs[0]",
            "host bits",
        ),
        (
            json!({"name": "x", "locations": [location("a", json!(["10.0.0.0"]))]}),
            "locations[0].cidrs[0]",
            "not a CIDR",
        ),
        (
            json!({"name": "x", "locations": [location("a", json!(["10.0.0.0/8"])), location("b", json!(["10.0.0.0/8"]))]}),
            "locations[1].cidrs[0]",
            "one location",
        ),
        (
            json!({"name": "x", "locations": [location("a", json!(["10.0.0.0/8"])), location("a", json!(["11.0.0.0/8"]))]}),
            "locations[1].name",
            "twice",
        ),
        (
            json!({"name": "x", "locations": [location("a", json!("10.0.0.0/8"))]}),
            "locations[0].cidrs",
            "invalid type",
        ),
    ];
    for (body, field, message) in &cases {
        assert_error(&api.post("/v1/cidr-collections", body), 400, Some(field), message);
    }
    let many: Vec<String> = (0..1001).map(|i| format!("10.{}.{}.0/24", i / 256, i % 256)).collect();
    let r =
        api.post("/v1/cidr-collections", &json!({"name": "big", "locations": [location("a", json!(many))]}));
    assert_error(&r, 400, Some("locations"), "at most 1000");

    // Record sets route by the collection; DNS and TestDNSAnswer agree.
    let zone = api.zone("ip.test.");
    let name = "www.ip.test.";
    let cidr = |location: &str| json!({"cidrRouting": {"collectionId": id, "locationName": location}});
    let sets = [
        member(name, "berlin", "192.0.2.1", cidr("berlin")),
        member(name, "paris", "192.0.2.2", cidr("paris")),
        member(name, "rest", "192.0.2.9", cidr("*")),
    ];
    api.apply(&zone, &sets.iter().map(|s| ("CREATE", s)).collect::<Vec<_>>());
    assert!(
        wait_until(Duration::from_secs(5), || dns_a(&server, name, Some(("198.51.100.0", 24)))
            == ["192.0.2.1"])
        .is_some()
    );
    for (addr, source, want) in [
        ("198.51.100.0", 24, "192.0.2.1"),
        ("198.51.100.128", 25, "192.0.2.1"),
        ("203.0.113.0", 24, "192.0.2.2"),
        ("2001:db8:1::", 56, "192.0.2.2"),
        ("192.0.2.0", 24, "192.0.2.9"),
    ] {
        assert_eq!(
            agree(&server, &api, &zone, name, RecordType::A, Some((addr, source))),
            [want],
            "{addr}/{source}"
        );
    }
    let reply = udp_query(server.dns, &ecs_message(name, RecordType::A, "198.51.100.0", 24));
    assert_eq!(ecs_scope_of(&reply), Some(24));

    // In use: no delete, no dropping a used location; moving a block is fine.
    let in_use = api.delete(&format!("/v1/cidr-collections/{id}"));
    assert_error(&in_use, 409, None, "in use");
    assert_eq!(in_use.json()["error"]["code"], "CidrCollectionInUse");
    let dropped = json!({"name": "offices", "locations": [location("berlin", json!(["198.51.100.0/24"]))]});
    assert_error(&api.put(&format!("/v1/cidr-collections/{id}"), &dropped), 409, Some("locations"), "paris");
    let moved = json!({"name": "offices", "locations": [location("berlin", json!(["10.9.0.0/16"])),
        location("paris", json!(["198.51.100.0/24", "203.0.113.0/24"]))]});
    let r = api.put(&format!("/v1/cidr-collections/{id}"), &moved);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["locations"][1]["cidrs"], json!(["198.51.100.0/24", "203.0.113.0/24"]));
    let took = wait_until(Duration::from_secs(5), || {
        dns_a(&server, name, Some(("198.51.100.0", 24))) == ["192.0.2.2"]
    });
    println!("collection change answered by DNS after {took:?}");
    assert!(took.is_some(), "DNS follows the changed collection");
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, Some(("10.9.1.0", 24))), ["192.0.2.1"]);
    api.collection(json!({"name": "other"}));
    let renamed = api.put(
        &format!("/v1/cidr-collections/{id}"),
        &json!({"name": "other", "locations": moved["locations"]}),
    );
    assert_error(&renamed, 409, Some("name"), "already has");
    assert_error(
        &api.put("/v1/cidr-collections/C0123456789ABCDEF0123", &moved),
        404,
        None,
        "no CIDR collection",
    );

    // Unused, it goes.
    api.apply(&zone, &sets.iter().map(|s| ("DELETE", s)).collect::<Vec<_>>());
    assert_eq!(api.delete(&format!("/v1/cidr-collections/{id}")).status, 204);
    assert_eq!(api.get(&format!("/v1/cidr-collections/{id}")).status, 404);
    assert_eq!(api.delete(&format!("/v1/cidr-collections/{id}")).status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_latency_table_and_the_account_regions_steer_latency_records() {
    let (_db, server, api) = serve_with_key(&[]).await;
    let zone = api.zone("latency.test.");
    let name = "www.latency.test.";
    let region = |r: &str| json!({ "region": r });
    api.apply(
        &zone,
        &[
            ("CREATE", &member(name, "use1", "192.0.2.1", region("us-east-1"))),
            ("CREATE", &member(name, "euc1", "192.0.2.2", region("eu-central-1"))),
            ("CREATE", &member(name, "prem", "192.0.2.3", region("on-prem-1"))),
        ],
    );
    let client = Some(("198.51.100.0", 24));
    // Without a location or a measurement: the first member in stored order.
    assert!(wait_until(Duration::from_secs(5), || dns_a(&server, name, client) == ["192.0.2.1"]).is_some());

    let table = json!({"entries": [
        {"cidr": "198.51.100.0/24", "region": "eu-central-1", "latencyMs": 12.5},
        {"cidr": "198.51.100.0/24", "region": "us-east-1", "latencyMs": 90}]});
    let put = api.put("/v1/latency-table", &table);
    assert_eq!(put.status, 200, "{}", put.body);
    let sorted = json!({"entries": [
        {"cidr": "198.51.100.0/24", "region": "eu-central-1", "latencyMs": 12.5},
        {"cidr": "198.51.100.0/24", "region": "us-east-1", "latencyMs": 90.0}]});
    assert_eq!(put.json(), sorted);
    assert_eq!(api.get("/v1/latency-table").json(), sorted);
    let took = wait_until(Duration::from_secs(5), || dns_a(&server, name, client) == ["192.0.2.2"]);
    println!("latency table answered by DNS after {took:?}");
    assert!(took.is_some(), "DNS follows the latency table");
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, client), ["192.0.2.2"]);
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, Some(("203.0.113.0", 24))), ["192.0.2.1"]);

    // Regions must be known: built in, or the account's own.
    let unknown = json!({"entries": [{"cidr": "198.51.100.0/24", "region": "on-prem-1", "latencyMs": 1}]});
    assert_error(&api.put("/v1/latency-table", &unknown), 400, Some("entries[0].region"), "unknown region");
    for (entries, field, message) in [
        (
            json!([{"cidr": "198.51.100.1/24", "region": "us-east-1", "latencyMs": 1}]),
            "entries[0].cidr",
            "host bits set",
        ),
        (
            json!([{"cidr": "198.51.100.0/24", "region": "us-east-1", "latencyMs": -1}]),
            "entries[0].latencyMs",
            "0 to 100000 milliseconds",
        ),
        (
            json!([{"cidr": "198.51.100.0/24", "region": "us-east-1", "latencyMs": "1"}]),
            "entries[0].latencyMs",
            "invalid type",
        ),
        (
            json!([{"cidr": "198.51.100.0/24", "region": "us-east-1", "latencyMs": 1},
                {"cidr": "198.51.100.0/24", "region": "us-east-1", "latencyMs": 2}]),
            "entries[1]",
            "two entries for us-east-1",
        ),
    ] {
        assert_error(
            &api.put("/v1/latency-table", &json!({ "entries": entries })),
            400,
            Some(field),
            message,
        );
    }
    let added = api.put("/v1/regions/on-prem-1", &json!({"latitude": 10, "longitude": 20.5}));
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(
        added.json(),
        json!({"code": "on-prem-1", "latitude": 10.0, "longitude": 20.5, "builtIn": false})
    );
    let unknown = json!({"entries": [{"cidr": "198.51.100.0/24", "region": "on-prem-1", "latencyMs": 1},
        {"cidr": "198.51.100.0/24", "region": "eu-central-1", "latencyMs": 12.5}]});
    assert_eq!(api.put("/v1/latency-table", &unknown).status, 200);
    assert!(wait_until(Duration::from_secs(5), || dns_a(&server, name, client) == ["192.0.2.3"]).is_some());
    let regions = api.get("/v1/regions").json();
    let items = regions["items"].as_array().unwrap();
    assert!(items.len() > 30, "built-in regions are listed: {regions}");
    assert!(items.iter().any(|r| r["code"] == "on-prem-1" && r["builtIn"] == json!(false)));
    assert!(items.iter().any(|r| r["code"] == "eu-central-1" && r["builtIn"] == json!(true)));
    let codes: Vec<&str> = items.iter().map(|r| r["code"].as_str().unwrap()).collect();
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "by code");
    // A region of the account's own that is in use stays.
    let r = api.delete("/v1/regions/on-prem-1");
    assert_error(&r, 409, Some("code"), "latency table");
    assert_eq!(api.put("/v1/latency-table", &json!({"entries": []})).status, 200);
    assert_error(&api.delete("/v1/regions/on-prem-1"), 409, Some("code"), "record set");
    assert!(wait_until(Duration::from_secs(5), || dns_a(&server, name, client) == ["192.0.2.1"]).is_some());
    api.apply(&zone, &[("DELETE", &member(name, "prem", "192.0.2.3", region("on-prem-1")))]);
    assert_eq!(api.delete("/v1/regions/on-prem-1").status, 204);
    assert_error(&api.delete("/v1/regions/on-prem-1"), 404, None, "no region");
    assert_error(&api.delete("/v1/regions/us-east-1"), 404, None, "built-in");
    assert_error(
        &api.put("/v1/regions/Not_A_Region", &json!({"latitude": 1, "longitude": 1})),
        400,
        Some("code"),
        "is not a region code",
    );
    assert_error(
        &api.put("/v1/regions/on-prem-2", &json!({"latitude": 91, "longitude": 1})),
        400,
        Some("latitude"),
        "-90 to 90 degrees",
    );
    assert_error(
        &api.put("/v1/regions/on-prem-2", &json!({"latitude": 1})),
        400,
        Some("longitude"),
        "missing",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_region_override_moves_latency_answers_for_located_clients() {
    let geo = write_geo_db();
    let (_db, server, api) = serve_with_key(&["--geoip-db", geo.to_str().unwrap()]).await;
    let zone = api.zone("near.test.");
    let name = "www.near.test.";
    api.apply(
        &zone,
        &[
            ("CREATE", &member(name, "frankfurt", "192.0.2.1", json!({"region": "eu-central-1"}))),
            ("CREATE", &member(name, "cape-town", "192.0.2.2", json!({"region": "af-south-1"}))),
        ],
    );
    // A client in Gabon is nearer Cape Town than Frankfurt.
    let gabon = Some(("10.6.1.0", 24));
    assert!(wait_until(Duration::from_secs(5), || dns_a(&server, name, gabon) == ["192.0.2.2"]).is_some());
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, gabon), ["192.0.2.2"]);
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, Some(("10.4.1.0", 24))), ["192.0.2.1"]);

    // Moved to the far north-east, af-south-1 loses the client to Frankfurt.
    let r = api.put("/v1/regions/af-south-1", &json!({"latitude": 60, "longitude": 150}));
    assert_eq!(r.status, 200, "{}", r.body);
    let took = wait_until(Duration::from_secs(5), || dns_a(&server, name, gabon) == ["192.0.2.1"]);
    println!("region override answered by DNS after {took:?}");
    assert!(took.is_some(), "DNS follows the region override");
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, gabon), ["192.0.2.1"]);
    let listed = api.get("/v1/regions").json();
    let af = listed["items"].as_array().unwrap().iter().find(|r| r["code"] == "af-south-1").unwrap().clone();
    assert_eq!(af, json!({"code": "af-south-1", "latitude": 60.0, "longitude": 150.0, "builtIn": false}));

    // Removing the override restores the built-in coordinates.
    assert_eq!(api.delete("/v1/regions/af-south-1").status, 204);
    assert!(wait_until(Duration::from_secs(5), || dns_a(&server, name, gabon) == ["192.0.2.2"]).is_some());
    assert_eq!(agree(&server, &api, &zone, name, RecordType::A, gabon), ["192.0.2.2"]);
    let _ = std::fs::remove_file(geo);
}

/// A question (name, type, client subnet) and the record data it gets.
type Case<'a> = (&'a str, RecordType, Option<(&'a str, u8)>, &'a [&'a str]);

#[tokio::test(flavor = "multi_thread")]
async fn test_dns_answer_agrees_with_dns() {
    let geo = write_geo_db();
    let (db, server, api) = serve_with_key(&["--geoip-db", geo.to_str().unwrap()]).await;
    let zone = api.zone("t.test.");
    let check = api.check(json!({"type": "HTTP", "ip": "127.0.0.1", "disabled": true}));
    let sets = [
        member("w.t.test.", "one", "192.0.2.1", json!({"weight": 1})),
        member("w.t.test.", "zero", "192.0.2.2", json!({"weight": 0})),
        member("f.t.test.", "primary", "192.0.2.3", json!({"failover": "PRIMARY", "healthCheckId": check})),
        member("f.t.test.", "secondary", "192.0.2.4", json!({"failover": "SECONDARY"})),
        member("g.t.test.", "de", "192.0.2.5", json!({"geoLocation": {"country": "DE"}})),
        member("g.t.test.", "default", "192.0.2.6", json!({"geoLocation": {"country": "*"}})),
        json!({"name": "c.t.test.", "type": "CNAME", "ttl": 60, "records": ["w.t.test."]}),
        a("m.t.test.", &["192.0.2.7", "192.0.2.8"]),
    ];
    api.apply(&zone, &sets.iter().map(|s| ("CREATE", s)).collect::<Vec<_>>());
    assert!(wait_until(Duration::from_secs(5), || dns_a(&server, "m.t.test.", None).len() == 2).is_some());

    let cases: [Case<'_>; 12] = [
        ("w.t.test.", RecordType::A, None, &["192.0.2.1"]),
        ("W.T.Test.", RecordType::A, Some(("198.51.100.0", 24)), &["192.0.2.1"]),
        ("f.t.test.", RecordType::A, None, &["192.0.2.3"]),
        ("g.t.test.", RecordType::A, Some(("10.4.7.0", 24)), &["192.0.2.5"]),
        ("g.t.test.", RecordType::A, Some(("10.6.7.0", 24)), &["192.0.2.6"]),
        ("g.t.test.", RecordType::A, Some(("2001:db8::", 56)), &["192.0.2.6"]),
        ("g.t.test.", RecordType::A, None, &["192.0.2.6"]),
        ("c.t.test.", RecordType::A, None, &["192.0.2.1", "w.t.test."]),
        ("m.t.test.", RecordType::A, None, &["192.0.2.7", "192.0.2.8"]),
        ("m.t.test.", RecordType::MX, None, &[]),
        ("missing.t.test.", RecordType::A, Some(("10.4.7.0", 24)), &[]),
        ("t.test.", RecordType::NS, None, &["ns1.signpost.test.", "ns2.signpost.test."]),
    ];
    for (name, qtype, subnet, want) in cases {
        assert_eq!(agree(&server, &api, &zone, name, qtype, subnet), want, "{name} {qtype} {subnet:?}");
    }
    let de = api.test_dns(&zone, "g.t.test.", "A", Some("10.4.7.0/24"));
    assert_eq!(de["ecsScope"], json!(16), "the geo network's length: {de}");
    assert_eq!(de["name"], "g.t.test.");
    let missing = api.test_dns(&zone, "missing.t.test.", "A", None);
    assert_eq!((missing["rcode"].clone(), missing["ecsScope"].clone()), (json!("NXDOMAIN"), Value::Null));
    let any = api.test_dns(&zone, "m.t.test.", "ANY", None);
    assert_eq!(any["records"].as_array().unwrap().len(), 2, "{any}");
    // An address alone is a /24 (Route 53's default).
    assert_eq!(api.test_dns(&zone, "g.t.test.", "A", Some("10.4.7.9"))["records"], json!(["192.0.2.5"]));

    // Health verdicts count: an unhealthy primary moves both.
    let r = api.put(&format!("/v1/health-checks/{check}/override"), &json!({"state": "UNHEALTHY"}));
    assert_eq!(r.status, 200);
    assert!(
        wait_until(Duration::from_secs(5), || dns_a(&server, "f.t.test.", None) == ["192.0.2.4"]).is_some()
    );
    assert_eq!(agree(&server, &api, &zone, "f.t.test.", RecordType::A, None), ["192.0.2.4"]);

    // Bad questions are 400s naming the parameter; other zones are 404s.
    let base = format!("/v1/zones/{zone}/test-dns-answer");
    for (query, field, message) in [
        ("type=A", "name", "required"),
        ("name=w.t.test.", "type", "required"),
        ("name=www.example.org.&type=A", "name", "not inside the zone"),
        ("name=bad..name&type=A", "name", "empty label"),
        ("name=w.t.test.&type=BOGUS", "type", "not a record type"),
        ("name=w.t.test.&type=A&clientSubnet=10.0.0.0/33", "clientSubnet", "0 to 32"),
        ("name=w.t.test.&type=A&clientSubnet=nope", "clientSubnet", "address"),
        ("name=w.t.test.&type=A&resolverIp=nope", "resolverIp", "address"),
    ] {
        assert_error(&api.get(&format!("{base}?{query}")), 400, Some(field), message);
    }
    let bob = api.as_key(&account_key(&db, "bob"));
    assert_error(&bob.get(&format!("{base}?name=w.t.test.&type=A")), 404, None, "no hosted zone");
    let _ = std::fs::remove_file(geo);
}

/// What `n` queries of `category` cost after `before` of them this month, as the API reports it.
fn cost(prices: &PriceTable, category: UsageCategory, before: u64, n: u64) -> f64 {
    round_usd(prices.query_cost(category, before, n))
}

fn close(a: &Value, b: f64) -> bool {
    a.as_f64().is_some_and(|a| (a - b).abs() < 1e-9)
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_counts_queries_by_category_and_prices_them() {
    let (db, server, api) = serve_with_key(&["--usage-flush-interval", "0.3"]).await;
    let zone = api.zone("usage.test.");
    let big = api.zone("a-big.test.");
    let collection = api.collection(json!({"name": "everyone"}));
    let sets = [
        a("www.usage.test.", &["192.0.2.1"]),
        member("lat.usage.test.", "l", "192.0.2.2", json!({"region": "us-east-1"})),
        member("geo.usage.test.", "g", "192.0.2.3", json!({"geoLocation": {"country": "*"}})),
        member(
            "prox.usage.test.",
            "p",
            "192.0.2.4",
            json!({"geoProximity": {"coordinates": {"latitude": 1, "longitude": 1}}}),
        ),
        member(
            "ip.usage.test.",
            "i",
            "192.0.2.5",
            json!({"cidrRouting": {"collectionId": collection, "locationName": "*"}}),
        ),
    ];
    api.apply(&zone, &sets.iter().map(|s| ("CREATE", s)).collect::<Vec<_>>());
    assert!(
        wait_until(Duration::from_secs(5), || dns_a(&server, "ip.usage.test.", None) == ["192.0.2.5"])
            .is_some()
    );
    // The wait above asked ip.usage.test. at least once: count from what the
    // usage shows once it stops moving (flushes every 0.3 s).
    let counts =
        |api: &Api, zone: &str| api.get(&format!("/v1/zones/{zone}/usage")).json()["queries"].clone();
    let mut baseline = counts(&api, &zone);
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(700));
        let now = counts(&api, &zone);
        if now == baseline {
            break;
        }
        baseline = now;
    }
    let mut sent = [0u64; 5];
    let mut send = |name: &str, qtype: RecordType, category: UsageCategory, times: u64| {
        for _ in 0..times {
            ask(server.dns, name, qtype);
        }
        sent[category.as_index()] += times;
    };
    send("www.usage.test.", RecordType::A, UsageCategory::Standard, 5);
    send("missing.usage.test.", RecordType::A, UsageCategory::Standard, 2);
    send("www.usage.test.", RecordType::MX, UsageCategory::Standard, 1);
    send("lat.usage.test.", RecordType::A, UsageCategory::Latency, 3);
    send("geo.usage.test.", RecordType::A, UsageCategory::Geolocation, 4);
    send("prox.usage.test.", RecordType::A, UsageCategory::Geoproximity, 2);
    send("ip.usage.test.", RecordType::A, UsageCategory::IpBased, 6);
    let base = |key: &str| baseline[key].as_u64().unwrap();
    let want = json!({
        "standard": base("standard") + sent[0],
        "latency": base("latency") + sent[1],
        "geolocation": base("geolocation") + sent[2],
        "geoproximity": base("geoproximity") + sent[3],
        "ipBased": base("ipBased") + sent[4],
    });
    let took = wait_until(Duration::from_secs(10), || counts(&api, &zone) == want);
    assert!(took.is_some(), "counts {} != {want}", counts(&api, &zone));

    // The first billion of a category is account-wide; zones take it in name
    // order, so a-big.test. (first by name) uses it up.
    let store = db.store().await;
    sqlx::query(
        "INSERT INTO usage_counters (zone_id, month, category, queries)
         VALUES ($1, date_trunc('month', now() AT TIME ZONE 'UTC')::date, 'standard', 999999995)",
    )
    .bind(&big)
    .execute(store.pool())
    .await
    .unwrap();
    let prices = PriceTable::default();
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let usage = api.get(&format!("/v1/zones/{zone}/usage")).json();
    assert_eq!(usage["zoneId"], json!(zone));
    assert_eq!(usage["month"], json!(month));
    assert_eq!(usage["queries"], want);
    let n = |key: &str| want[key].as_u64().unwrap();
    let expected = [
        ("standard", cost(&prices, UsageCategory::Standard, 999_999_995, n("standard"))),
        ("latency", cost(&prices, UsageCategory::Latency, 0, n("latency"))),
        ("geolocation", cost(&prices, UsageCategory::Geolocation, 0, n("geolocation"))),
        ("geoproximity", cost(&prices, UsageCategory::Geoproximity, 0, n("geoproximity"))),
        ("ipBased", cost(&prices, UsageCategory::IpBased, 0, n("ipBased"))),
    ];
    let c = &usage["cost"];
    assert_eq!(c["currency"], "USD");
    for (key, value) in expected {
        assert!(close(&c["queries"][key], value), "{key}: {} != {value}", c["queries"][key]);
    }
    assert!(
        cost(&prices, UsageCategory::Standard, 999_999_995, n("standard"))
            < cost(&prices, UsageCategory::Standard, 0, n("standard")),
        "past the billion the price halves"
    );
    assert!(close(&c["hostedZone"], 0.50), "{c}");
    let zone_total = round_usd(expected.iter().map(|(_, v)| v).sum::<f64>() + 0.50);
    assert!(close(&c["total"], zone_total), "{c} vs {zone_total}");

    // 26 zones: the 26th created costs $0.10.
    let mut last = String::new();
    for i in 0..24 {
        last = api.zone(&format!("z{i:02}.test."));
    }
    let account = api.get("/v1/usage").json();
    assert_eq!(account["month"], json!(month));
    let zones = account["zones"].as_array().unwrap();
    assert_eq!(zones.len(), 26);
    let names: Vec<&str> = zones.iter().map(|z| z["zoneName"].as_str().unwrap()).collect();
    assert_eq!(&names[..2], ["a-big.test.", "usage.test."], "by name");
    let by_id = |id: &str| zones.iter().find(|z| z["zoneId"] == json!(id)).unwrap();
    assert_eq!(by_id(&zone)["cost"], usage["cost"], "the zone route and the account agree");
    assert!(close(&by_id(&last)["cost"]["hostedZone"], 0.10));
    let big_cost = cost(&prices, UsageCategory::Standard, 0, 999_999_995);
    assert!(close(&by_id(&big)["cost"]["queries"]["standard"], big_cost));
    let total = round_usd(zones.iter().map(|z| z["cost"]["total"].as_f64().unwrap()).sum());
    assert!(close(&account["cost"]["total"], total), "{}", account["cost"]);
    assert_eq!(account["cost"]["currency"], "USD");
    assert!(close(&account["cost"]["total"], zone_total + big_cost + 0.50 + 23.0 * 0.50 + 0.10));

    // Months: another month has no queries and no zones yet; bad ones are 400s.
    let old = api.get(&format!("/v1/zones/{zone}/usage?month=1999-01")).json();
    assert_eq!(old["month"], "1999-01");
    assert!(close(&old["cost"]["total"], 0.0), "{old}");
    assert_eq!(old["queries"]["standard"], json!(0));
    for bad in ["2026-13", "2026-1", "november", "2026-11-01"] {
        assert_error(&api.get(&format!("/v1/usage?month={bad}")), 400, Some("month"), "not a month");
        assert_error(
            &api.get(&format!("/v1/zones/{zone}/usage?month={bad}")),
            400,
            Some("month"),
            "is not a month",
        );
    }
    let bob = api.as_key(&account_key(&db, "bob"));
    assert_error(&bob.get(&format!("/v1/zones/{zone}/usage")), 404, None, "no hosted zone");

    // A price file changes the cost (missing prices keep Route 53's).
    let prices_file = temp_path("prices.json");
    std::fs::write(&prices_file, r#"{"geolocation": {"firstBillion": 2000000}, "hostedZoneFirst25": 1}"#)
        .unwrap();
    let priced = Signpost::api_only(&db, &["--prices", prices_file.to_str().unwrap()]);
    let priced = Api { addr: priced.api_addr(), ..api.clone() };
    let usage = priced.get(&format!("/v1/zones/{zone}/usage")).json();
    assert!(close(&usage["cost"]["queries"]["geolocation"], 2.0 * n("geolocation") as f64), "{usage}");
    assert!(close(&usage["cost"]["hostedZone"], 1.0), "{usage}");
    assert!(close(&usage["cost"]["queries"]["latency"], expected[1].1), "{usage}");
    let _ = std::fs::remove_file(prices_file);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_new_routes_answer_503_while_the_database_is_away() {
    let db = TestDb::new().await;
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
    let args: Vec<String> =
        ["api", "--api-addr", "127.0.0.1:0", "--api-db-timeout-ms", "500", "--api-rate-limit", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    let server = Signpost::start_with_url(&url, &args, false);
    let api = Api { addr: server.api_addr(), key };
    let zone = api.zone("outage.test.");
    let check = api.check(json!({"type": "HTTP", "ip": "8.8.8.8"}));
    let routes = [
        ("GET", "/v1/health-checks".to_string(), None),
        ("POST", "/v1/health-checks".to_string(), Some(json!({"type": "HTTP", "ip": "8.8.4.4"}))),
        ("GET", format!("/v1/health-checks/{check}/status"), None),
        ("PUT", format!("/v1/health-checks/{check}/override"), Some(json!({"state": "HEALTHY"}))),
        ("POST", "/v1/cidr-collections".to_string(), Some(json!({"name": "c"}))),
        ("PUT", "/v1/latency-table".to_string(), Some(json!({"entries": []}))),
        ("GET", "/v1/regions".to_string(), None),
        ("GET", format!("/v1/zones/{zone}/test-dns-answer?name=outage.test.&type=SOA"), None),
        ("GET", format!("/v1/zones/{zone}/usage"), None),
        ("GET", "/v1/usage".to_string(), None),
    ];
    let send = |(method, path, body): &(&str, String, Option<Value>)| {
        let body = body.as_ref().map(|b| b.to_string());
        http(api.addr, method, path, Some(&api.key), body.as_deref())
    };
    proxy.down();
    for route in &routes {
        let r = send(route);
        assert_error(&r, 503, None, "database");
        assert!(r.header("retry-after").is_some(), "{} {}", route.0, route.1);
    }
    proxy.up();
    assert!(wait_until(Duration::from_secs(10), || api.get("/v1/regions").status == 200).is_some());
    for route in &routes {
        let r = send(route);
        assert!(r.status / 100 == 2, "{} {}: {}", route.0, route.1, r.body);
    }
    assert!(!server.log().contains("panicked"));
}
