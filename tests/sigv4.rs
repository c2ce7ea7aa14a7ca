//! End-to-end: AWS access key pairs made through `POST /v1/keys` sign
//! requests to Route 53's API (`/2013-04-01/`) on the real binary, against a
//! real PostgreSQL. The requests are signed by a SigV4 signer written here,
//! independently of the server's verifier (whose unit tests use botocore's
//! own signatures as fixed vectors).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use chrono::{DateTime, TimeDelta, Utc};
use common::*;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8], data: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("any key length");
    mac.update(data.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Encodes a path as botocore does for route53: every byte but unreserved
/// characters and `/` (so `%` of an escaped path becomes `%25`).
fn encode_path(path: &str) -> String {
    path.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A request to sign: `query` already URI-encoded, as a client sends it.
struct Signed<'a> {
    method: &'a str,
    path: &'a str,
    query: &'a str,
    body: &'a str,
}

/// The request's bytes, signed for `region` and `service` at `when` with
/// `access_key_id`/`secret`. `sent_query`, when given, replaces the query
/// on the wire after signing (tampering).
fn sign(
    addr: std::net::SocketAddr,
    r: &Signed<'_>,
    (access_key_id, secret): (&str, &str),
    region: &str,
    service: &str,
    when: DateTime<Utc>,
    sent_query: Option<&str>,
) -> Vec<u8> {
    let amz_date = when.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let host = addr.to_string();
    let mut pairs: Vec<&str> = r.query.split('&').filter(|p| !p.is_empty()).collect();
    pairs.sort();
    let with_body = !r.body.is_empty();
    let (canonical_headers, signed_headers) = if with_body {
        (
            format!("content-type:text/xml\nhost:{host}\nx-amz-date:{amz_date}\n"),
            "content-type;host;x-amz-date",
        )
    } else {
        (format!("host:{host}\nx-amz-date:{amz_date}\n"), "host;x-amz-date")
    };
    let canonical = format!(
        "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        r.method,
        encode_path(r.path),
        pairs.join("&"),
        hex::encode(Sha256::digest(r.body.as_bytes()))
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign =
        format!("AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}", hex::encode(Sha256::digest(canonical)));
    let key = ["aws4_request"]
        .iter()
        .fold(hmac(&hmac(&hmac(format!("AWS4{secret}").as_bytes(), date), region), service), |k, part| {
            hmac(&k, part)
        });
    let signature = hex::encode(hmac(&key, &to_sign));
    let query = sent_query.unwrap_or(r.query);
    let target = if query.is_empty() { r.path.to_string() } else { format!("{}?{query}", r.path) };
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nX-Amz-Date: {amz_date}\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential={access_key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}\r\n",
        r.method
    );
    if with_body || r.method == "POST" {
        head.push_str(&format!("Content-Type: text/xml\r\nContent-Length: {}\r\n", r.body.len()));
    }
    head.push_str("\r\n");
    [head.as_bytes(), r.body.as_bytes()].concat()
}

/// Asserts Route 53's XML error envelope with `code` and the request id header.
fn assert_route53_error(r: &HttpResponse, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert!(
        r.body.contains("<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Error><Type>Sender</Type>"),
        "{}",
        r.body
    );
    assert!(r.body.contains(&format!("<Code>{code}</Code>")), "want {code}: {}", r.body);
    let id = r.header("x-amzn-RequestId").expect("an x-amzn-RequestId header");
    assert_eq!(id.len(), 36, "{id}");
    assert!(r.body.contains(&format!("<RequestId>{id}</RequestId>")), "{}", r.body);
    assert_eq!(r.header("content-type"), Some("text/xml"));
}

fn temp_state_dir() -> PathBuf {
    let dir = temp_path("state");
    std::fs::create_dir_all(&dir).expect("state dir");
    dir
}

fn start(db: &TestDb, state_dir: &Path) -> Signpost {
    let dir = state_dir.display().to_string();
    Signpost::api_only(db, &["--state-dir", &dir, "--api-rate-limit", "1000", "--api-rate-burst", "1000"])
}

fn aws_key(api: &Api, extra: Value) -> (String, String, String) {
    let mut body = json!({"kind": "aws", "name": "terraform"});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    let r = api.post("/v1/keys", &body);
    assert_eq!(r.status, 201, "{}", r.body);
    let made = r.json();
    assert_eq!(made["kind"], "aws");
    assert!(made.get("apiKey").is_none(), "{made}");
    let id = made["id"].as_str().expect("id").to_string();
    let akid = made["accessKeyId"].as_str().expect("accessKeyId").to_string();
    let secret = made["secretAccessKey"].as_str().expect("secretAccessKey").to_string();
    (id, akid, secret)
}

const CREATE_BODY: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>example.com.</Name><CallerReference>r1</CallerReference></CreateHostedZoneRequest>";

#[tokio::test]
async fn aws_key_pairs_authenticate_route53_requests() {
    let db = TestDb::new().await;
    let state_dir = temp_state_dir();
    let server = start(&db, &state_dir);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    let addr = api.addr;
    let (key_id, akid, secret) = aws_key(&api, json!({}));
    assert!(
        akid.len() == 20
            && akid.starts_with("AKIA")
            && akid.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
        "{akid}"
    );
    assert_eq!(secret.len(), 40, "{secret}");

    // The master key was made on first use, readable by the owner only.
    let master = state_dir.join("master.key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&master).expect("master.key made").permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    // Listing shows the access key id, never the secret.
    let listed = api.get("/v1/keys");
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(!listed.body.contains(&secret) && !listed.body.contains("secretAccessKey"), "{}", listed.body);
    let items = listed.json()["items"].as_array().expect("items").clone();
    let entry = items.iter().find(|k| k["id"] == key_id.as_str()).expect("the new key is listed");
    assert_eq!(entry["accessKeyId"], akid.as_str());
    assert_eq!(entry["kind"], "aws");
    let bearer = items.iter().find(|k| k["id"] != key_id.as_str()).expect("the bearer key");
    assert_eq!(bearer["kind"], "bearer");
    assert!(bearer.get("accessKeyId").is_none(), "{bearer}");

    let now = Utc::now();
    let list = Signed {
        method: "GET",
        path: "/2013-04-01/hostedzone",
        query: "maxitems=10&marker=Z1%2FX",
        body: "",
    };
    let create = Signed { method: "POST", path: "/2013-04-01/hostedzone", query: "", body: CREATE_BODY };
    let creds = (akid.as_str(), secret.as_str());

    // A valid signature passes: the operation is not offered yet (400, not 404).
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 400, "InvalidAction");
    assert!(r.body.contains("not offered"), "{}", r.body);
    // Any region in the scope; a body is signed too.
    let r = http_raw(addr, &sign(addr, &create, creds, "eu-central-1", "route53", now, None));
    assert_route53_error(&r, 400, "InvalidAction");
    // An escaped path, signed the way botocore encodes it.
    let escaped = Signed { method: "GET", path: "/2013-04-01/healthcheck/a%3Ab", query: "", body: "" };
    let r = http_raw(addr, &sign(addr, &escaped, creds, "us-west-2", "route53", now, None));
    assert_route53_error(&r, 400, "InvalidAction");

    // Wrong secret.
    let wrong = (akid.as_str(), "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
    let r = http_raw(addr, &sign(addr, &list, wrong, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 403, "SignatureDoesNotMatch");
    // Unknown access key.
    let unknown = ("AKIAAAAAAAAAAAAAAAAA", secret.as_str());
    let r = http_raw(addr, &sign(addr, &list, unknown, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 403, "InvalidClientTokenId");
    // Unsigned.
    let r = http(addr, "GET", "/2013-04-01/hostedzone", None, None);
    assert_route53_error(&r, 403, "MissingAuthenticationToken");
    // A bearer key is not a signature.
    let r = http(addr, "GET", "/2013-04-01/hostedzone", Some(&api.key), None);
    assert_route53_error(&r, 403, "IncompleteSignature");
    // Stale and future dates.
    let stale = now - TimeDelta::minutes(20);
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "route53", stale, None));
    assert_route53_error(&r, 403, "SignatureDoesNotMatch");
    assert!(r.body.contains("Signature expired"), "{}", r.body);
    let future = now + TimeDelta::minutes(20);
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "route53", future, None));
    assert_route53_error(&r, 403, "SignatureDoesNotMatch");
    // Another service.
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "ec2", now, None));
    assert_route53_error(&r, 403, "SignatureDoesNotMatch");
    // A query parameter changed after signing.
    let r = http_raw(
        addr,
        &sign(addr, &list, creds, "us-east-1", "route53", now, Some("maxitems=11&marker=Z1%2FX")),
    );
    assert_route53_error(&r, 403, "SignatureDoesNotMatch");
    // The body changed after signing.
    let mut bytes = sign(addr, &create, creds, "us-east-1", "route53", now, None);
    let at = bytes.len() - 30;
    bytes[at] = b'X';
    let r = http_raw(addr, &bytes);
    assert_route53_error(&r, 403, "SignatureDoesNotMatch");

    // The server never logs the secret.
    assert!(!server.log().contains(&secret), "the secret is in the log");

    // Deleted: the key stops working at once.
    let r = api.delete(&format!("/v1/keys/{key_id}"));
    assert_eq!(r.status, 204, "{}", r.body);
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 403, "InvalidClientTokenId");
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test]
async fn read_only_aws_keys_may_not_write_and_secrets_are_sealed_at_rest() {
    let db = TestDb::new().await;
    let state_dir = temp_state_dir();
    let server = start(&db, &state_dir);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    let (_, akid, secret) = aws_key(&api, json!({"readOnly": true}));
    let creds = (akid.as_str(), secret.as_str());
    let now = Utc::now();
    let create = Signed { method: "POST", path: "/2013-04-01/hostedzone", query: "", body: CREATE_BODY };
    let list = Signed { method: "GET", path: "/2013-04-01/hostedzone", query: "", body: "" };
    let r = http_raw(api.addr, &sign(api.addr, &create, creds, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 403, "AccessDenied");
    let r = http_raw(api.addr, &sign(api.addr, &list, creds, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 400, "InvalidAction");

    // At rest: a sealed value, not the secret, with the master key's id.
    let store = db.store().await;
    let row: (Vec<u8>, Vec<u8>, String, i16) = sqlx::query_as(
        "SELECT secret_nonce, secret_sealed, kek_id, key_version FROM api_keys WHERE access_key_id = $1",
    )
    .bind(&akid)
    .fetch_one(store.pool())
    .await
    .expect("the key's row");
    assert_eq!(row.0.len(), 12);
    assert!(!row.1.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert_eq!(row.2.len(), 16);
    assert_eq!(row.3, 1);

    // A restart with the same state directory keeps the key working.
    drop(server);
    let server = start(&db, &state_dir);
    let addr = server.api_addr();
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "route53", now, None));
    assert_route53_error(&r, 400, "InvalidAction");
    drop(server);

    // Another master key cannot open it: refused, never accepted.
    let other = temp_state_dir();
    let server = start(&db, &other);
    let addr = server.api_addr();
    let r = http_raw(addr, &sign(addr, &list, creds, "us-east-1", "route53", now, None));
    assert_eq!(r.status, 500, "{}", r.body);
    assert!(r.body.contains("<Type>Receiver</Type><Code>InternalFailure</Code>"), "{}", r.body);
    let _ = std::fs::remove_dir_all(&state_dir);
    let _ = std::fs::remove_dir_all(&other);
}

#[tokio::test]
async fn accounts_create_aws_prints_a_key_pair_once() {
    let db = TestDb::new().await;
    let state_dir = temp_state_dir();
    // The master key from the environment: no file is made.
    let master_hex = "42".repeat(32);
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args(["--state-dir", &state_dir.display().to_string(), "accounts", "create", "tf", "--aws"])
        .env("DATABASE_URL", &db.url)
        .env("SIGNPOST_MASTER_KEY", &master_hex)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run signpost");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let akid = line["accessKeyId"].as_str().expect("accessKeyId").to_string();
    let secret = line["secretAccessKey"].as_str().expect("secretAccessKey").to_string();
    assert!(line["apiKey"].as_str().is_some_and(|k| k.starts_with("sp_")), "{line}");
    assert!(!state_dir.join("master.key").exists());

    let dir = state_dir.display().to_string();
    let server = Signpost::launch(
        &db.url,
        &["api".into(), "--api-addr".into(), "127.0.0.1:0".into(), "--state-dir".into(), dir],
        false,
        true,
        &[("SIGNPOST_MASTER_KEY", &master_hex)],
    );
    let addr = server.api_addr();
    let list = Signed { method: "GET", path: "/2013-04-01/hostedzone", query: "", body: "" };
    let r = http_raw(addr, &sign(addr, &list, (&akid, &secret), "us-east-1", "route53", Utc::now(), None));
    assert_route53_error(&r, 400, "InvalidAction");
    let _ = std::fs::remove_dir_all(&state_dir);
}

#[tokio::test]
async fn aws_key_pairs_share_the_key_quota_and_zone_limits() {
    let db = TestDb::new().await;
    let state_dir = temp_state_dir();
    let dir = state_dir.display().to_string();
    let server = Signpost::api_only(
        &db,
        &["--state-dir", &dir, "--api-rate-limit", "0", "--max-api-keys-per-account", "3"],
    );
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    let zone = api.zone("quota.sigv4.test.");

    // Limited to a zone of the account; the pair signs like any other.
    let (_, akid, secret) = aws_key(&api, json!({"zoneIds": [zone]}));
    let listed = api.get("/v1/keys").json();
    let entry = listed["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|k| k["accessKeyId"] == akid.as_str())
        .cloned();
    assert_eq!(entry.expect("listed")["zoneIds"], json!([zone]));
    let list = Signed { method: "GET", path: "/2013-04-01/hostedzone", query: "", body: "" };
    let r = http_raw(
        api.addr,
        &sign(api.addr, &list, (&akid, &secret), "ap-south-1", "route53", Utc::now(), None),
    );
    assert_route53_error(&r, 400, "InvalidAction");

    // Bad input changes nothing.
    let r = api.post("/v1/keys", &json!({"kind": "aws", "zoneIds": ["Z00000000000000000000"]}));
    assert_error(&r, 400, Some("zoneIds[0]"), "no hosted zone");
    let r = api.post("/v1/keys", &json!({"kind": "sigv2"}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(api.get("/v1/keys").json()["items"].as_array().expect("items").len(), 2);

    // The same quota as bearer keys: the account's key, the limited pair, one more.
    aws_key(&api, json!({}));
    for kind in ["aws", "bearer"] {
        let r = api.post("/v1/keys", &json!({ "kind": kind }));
        assert_error(&r, 400, None, "max-api-keys-per-account");
        assert_eq!(r.json()["error"]["code"], "LimitExceeded", "{}", r.body);
    }
    assert_eq!(api.get("/v1/keys").json()["items"].as_array().expect("items").len(), 3);
    let _ = std::fs::remove_dir_all(&state_dir);
}
