//! End-to-end: zone data is stored and served exactly (issue 9). Every
//! octet 0–255 in owner names and TXT strings goes through `zone import`,
//! PostgreSQL, DNS (hickory and dig) and `zone export` unchanged; through
//! the /v1 API a TXT record with octets ≥ 0x80 is stored and answered
//! exactly; what cannot be stored exactly is a 400 naming the field.

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RData, RecordType};
use serde_json::{Value, json};
use signpost_core::RecordSet;
use signpost_core::names::{label_text, name_from_labels, name_text, parse_name};
use signpost_core::rdata::quote_character_string;
use signpost_core::zonefile::{render_zone_file, with_serial};

const ORIGIN: &str = "fid.test.";

/// The owner labels of the test zone: every octet 0–255 over eight names
/// (32 octets each; A–Z lower-case, since names compare case-insensitively
/// and are stored lower-case), plus the spellings from the issue.
fn owner_labels() -> Vec<Vec<u8>> {
    let mut labels: Vec<Vec<u8>> =
        (0..8u8).map(|k| (k * 32..=k * 32 + 31).map(|b| b.to_ascii_lowercase()).collect()).collect();
    labels.push(b"a_b".to_vec());
    labels.push(b"*x".to_vec());
    labels.push(b"sp ace".to_vec());
    labels.push(b"bin\x80byte".to_vec());
    labels
}

/// The TXT strings of one owner: all 256 octets in two strings, then the
/// owner's own label (so every set differs).
fn txt_strings(label: &[u8]) -> Vec<Vec<u8>> {
    let all: Vec<u8> = (0..=255u8).collect();
    vec![all[..200].to_vec(), all[200..].to_vec(), label.to_vec()]
}

fn owner_name(label: &[u8]) -> Name {
    name_from_labels(&[label, b"fid", b"test"]).expect("a valid owner")
}

/// The zone as record sets in canonical text, built from raw octets.
fn zone_sets() -> Vec<RecordSet> {
    let mut sets = vec![
        RecordSet::simple(ORIGIN, "SOA", 300, &["ns1.fid.test. hostmaster.fid.test. 1 7200 900 1209600 300"]),
        RecordSet::simple(ORIGIN, "NS", 300, &["ns1.fid.test."]),
        RecordSet::simple("ns1.fid.test.", "A", 300, &["192.0.2.53"]),
    ];
    for label in owner_labels() {
        let data: Vec<String> = txt_strings(&label).iter().map(|s| quote_character_string(s)).collect();
        let name = format!("{}.fid.test.", label_text(&label));
        sets.push(RecordSet::simple(&name, "TXT", 60, &[data.join(" ").as_str()]));
    }
    sets
}

/// Asks `name` (raw labels, no text parsing) for `qtype` over UDP.
fn ask_name(dns: SocketAddr, name: &Name, qtype: RecordType) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(name.clone(), qtype));
    message.set_edns(edns(1232));
    udp_query(dns, &message)
}

/// The TXT strings of the answer's single record, with its owner's labels.
fn answered_txt(reply: &Message) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    assert_eq!(rcode_name(reply), "NOERROR", "{reply:?}");
    assert_eq!(reply.answers.len(), 1, "{reply:?}");
    let record = &reply.answers[0];
    let RData::TXT(txt) = &record.data else { panic!("not TXT: {record:?}") };
    let owner = record.name.iter().map(<[u8]>::to_vec).collect();
    (owner, txt.txt_data.iter().map(|s| s.to_vec()).collect())
}

/// The text with the SOA serial set to 0 (the export carries the zone's).
fn without_serial(text: &str) -> String {
    text.lines()
        .map(|line| match line.splitn(5, '\t').collect::<Vec<_>>().as_slice() {
            [name, ttl, class, "SOA", data] => {
                format!("{name}\t{ttl}\t{class}\tSOA\t{}", with_serial(data, 0))
            }
            _ => line.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn dig(dns: SocketAddr, name: &str, qtype: &str) -> String {
    let out = Command::new("dig")
        .args(["@127.0.0.1", "-p", &dns.port().to_string(), "+norec", "+noall", "+answer", "+time=2"])
        .args([name, qtype])
        .output()
        .expect("run dig");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("dig prints ASCII")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_octet_in_names_and_txt_survives_import_dns_and_export() {
    let db = TestDb::new().await;
    let origin = parse_name(ORIGIN, "origin").unwrap();
    let input = render_zone_file(&origin, 1, &zone_sets());
    let file = temp_path("fid.test.zone");
    std::fs::write(&file, &input).unwrap();
    let out = run_cli(&db, &["zone", "import", file.to_str().unwrap(), "--origin", ORIGIN]);
    assert!(out.status.success(), "{}\n{input}", String::from_utf8_lossy(&out.stderr));

    // PostgreSQL holds the canonical text.
    let store = db.store().await;
    let zone = store.zone_by_name(ORIGIN).await.unwrap().expect("the zone");
    let stored = store.zone_rrsets(&zone.id).await.unwrap();
    let key = |sets: &[RecordSet]| {
        let mut keys: Vec<(String, String, Vec<String>)> = sets
            .iter()
            .map(|s| {
                let records =
                    if s.rtype == "SOA" { vec![with_serial(&s.records[0], 0)] } else { s.records.clone() };
                (s.name.clone(), s.rtype.clone(), records)
            })
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(key(&stored), key(&zone_sets()));

    // DNS answers every name with its exact octets.
    let server = Signpost::dns_only(&db, &[]);
    for label in owner_labels() {
        let name = owner_name(&label);
        let reply = ask_name(server.dns, &name, RecordType::TXT);
        let (owner, strings) = answered_txt(&reply);
        assert_eq!(owner, [label.clone(), b"fid".to_vec(), b"test".to_vec()], "{}", name_text(&name));
        assert_eq!(strings, txt_strings(&label), "{}", name_text(&name));
        assert!(reply.metadata.authoritative);
    }
    // Over TCP too, for the name holding the octets 32–63 ('.', '*', ' ', '"', ...).
    let mut message = Message::query();
    message.add_query(Query::query(owner_name(&owner_labels()[1]), RecordType::TXT));
    let (owner, strings) = answered_txt(&tcp_query(server.dns, &message));
    assert_eq!(owner[0], owner_labels()[1]);
    assert_eq!(strings, txt_strings(&owner_labels()[1]));
    // A name that differs in one octet does not exist.
    let reply = ask_name(server.dns, &owner_name(b"bin\x81byte"), RecordType::TXT);
    assert_eq!(rcode_name(&reply), "NXDOMAIN");

    // dig (BIND's decimal \DDD) asks by text and sees the same octets.
    if have("dig") {
        let answer = dig(server.dns, "bin\\128byte.fid.test.", "TXT");
        assert!(answer.starts_with("bin\\128byte.fid.test.\t"), "{answer}");
        let printed: Vec<String> =
            txt_strings(b"bin\x80byte").iter().map(|s| quote_character_string(s)).collect();
        assert!(
            answer.trim_end().ends_with(&printed.join(" ")),
            "dig printed:\n{answer}\nexpected {printed:?}"
        );
        let answer = dig(server.dns, "sp\\032ace.fid.test.", "TXT");
        assert!(answer.starts_with("sp\\032ace.fid.test.\t"), "{answer}");
        let answer = dig(server.dns, "a_b.fid.test.", "TXT");
        assert!(answer.trim_end().ends_with("\"a_b\""), "{answer}");
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must install bind9-dnsutils (dig)");
    }

    // The export is the canonical input, and imports back to the same sets.
    let out = run_cli(&db, &["zone", "export", ORIGIN]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let exported = String::from_utf8(out.stdout).unwrap();
    assert_eq!(without_serial(&exported), without_serial(&input));
    let again = temp_path("fid.test.zone");
    std::fs::write(&again, &exported).unwrap();
    // BIND reads the export as the same names and strings: its canonical
    // dump holds every owner and TXT text exactly as Signpost prints them.
    if have("named-checkzone") {
        let check = Command::new("named-checkzone")
            .args(["-D", "-o", "-", "fid.test", again.to_str().unwrap()])
            .output()
            .unwrap();
        let dump = String::from_utf8_lossy(&check.stdout);
        assert!(check.status.success(), "named-checkzone rejected the export:\n{dump}\n{exported}");
        for set in zone_sets().iter().filter(|s| s.rtype == "TXT") {
            let line = dump.lines().find(|l| {
                l.starts_with(&format!("{}\t", set.name)) || l.starts_with(&format!("{} ", set.name))
            });
            let line = line.unwrap_or_else(|| panic!("BIND has no {} in:\n{dump}", set.name));
            assert!(line.ends_with(&set.records[0]), "BIND: {line}\nours: {}", set.records[0]);
        }
    } else {
        assert!(std::env::var_os("CI").is_none(), "CI must install bind9-utils (named-checkzone)");
    }
    let out = run_cli(&db, &["zone", "import", again.to_str().unwrap(), "--origin", ORIGIN]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(key(&store.zone_rrsets(&zone.id).await.unwrap()), key(&stored));
    let _ = std::fs::remove_file(file);
    let _ = std::fs::remove_file(again);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_zone_file_error_names_the_line_and_changes_nothing() {
    let db = TestDb::new().await;
    let file = temp_path("bad.test.zone");
    let text = "$ORIGIN bad.test.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\nok IN TXT \"\\200\"\n\
                long IN TXT \"\\256\"\n";
    std::fs::write(&file, text).unwrap();
    let out = run_cli(&db, &["zone", "import", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 6: ") && err.contains("255"), "{err}");
    let store = db.store().await;
    assert!(store.zone_by_name("bad.test.").await.unwrap().is_none());
    let _ = std::fs::remove_file(file);
}

fn change(api: &Api, zone: &str, rrset: Value) -> HttpResponse {
    api.post(
        &format!("/v1/zones/{zone}/changes"),
        &json!({"changes": [{"action": "CREATE", "rrset": rrset}]}),
    )
}

fn wait_insync(api: &Api, change_id: &str) -> bool {
    wait_until(Duration::from_secs(10), || {
        api.get(&format!("/v1/changes/{change_id}")).json()["status"] == "INSYNC"
    })
    .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_api_stores_high_octets_exactly_and_refuses_what_it_cannot_store() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--api-rate-limit", "1000", "--api-rate-burst", "1000"]);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    let zone = api.zone("hi.test.");

    // \DDD is decimal; a raw UTF-8 character is its octets.
    let r = change(
        &api,
        &zone,
        json!({"name": "BIN\\128byte.hi.test", "type": "TXT", "ttl": 60,
               "records": ["\"\\200\\255\\000\\065\" \"caf\u{e9}\""]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(wait_insync(&api, r.json()["id"].as_str().unwrap()));
    let listed = api.get(&format!("/v1/zones/{zone}/rrsets?type=TXT")).json();
    assert_eq!(listed["items"][0]["name"], "bin\\128byte.hi.test.");
    assert_eq!(listed["items"][0]["records"], json!(["\"\\200\\255\\000A\" \"caf\\195\\169\""]));
    let owner = name_from_labels(&[&b"bin\x80byte"[..], b"hi", b"test"]).unwrap();
    let (labels, strings) = answered_txt(&ask_name(server.dns, &owner, RecordType::TXT));
    assert_eq!(labels[0], b"bin\x80byte");
    assert_eq!(strings, [vec![200, 255, 0, b'A'], vec![b'c', b'a', b'f', 0xc3, 0xa9]]);
    // The list filter finds the name in any spelling.
    let found = api.get(&format!("/v1/zones/{zone}/rrsets?name=%5C098in%5C128byte.hi.test&type=TXT"));
    assert_eq!(found.json()["items"].as_array().map(Vec::len), Some(1), "{}", found.body);

    // SVCB keys without values round-trip through the API and DNS.
    let r = change(
        &api,
        &zone,
        json!({"name": "svc.hi.test.", "type": "HTTPS", "ttl": 60, "records": ["1 . alpn=h2 no-default-alpn key65333"]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(wait_insync(&api, r.json()["id"].as_str().unwrap()));
    let reply = ask(server.dns, "svc.hi.test.", RecordType::HTTPS);
    assert_eq!(answer_data(&reply), ["1 . alpn=h2 no-default-alpn key65333"]);

    // What cannot be stored exactly is a 400 naming the field, and nothing is served.
    let cases = [
        (
            json!({"name": "long.hi.test.", "type": "TXT", "ttl": 60, "records": [format!("\"{}\"", "x".repeat(256))]}),
            "changes[0].rrset.records[0]",
            "255",
        ),
        (
            json!({"name": "esc.hi.test.", "type": "TXT", "ttl": 60, "records": ["\"\\256\""]}),
            "changes[0].rrset.records[0]",
            "255",
        ),
        (
            json!({"name": format!("{}.hi.test.", "\\097".repeat(64)), "type": "A", "ttl": 60, "records": ["192.0.2.1"]}),
            "changes[0].rrset.name",
            "63",
        ),
        (
            json!({"name": "cname.hi.test.", "type": "CNAME", "ttl": 60,
                "records": [format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(55))]}),
            "changes[0].rrset.records[0]",
            "255",
        ),
        (
            json!({"name": "uni.hi.test.", "type": "HTTPS", "ttl": 60, "records": ["1 . no-default-alpn=x"]}),
            "changes[0].rrset.records[0]",
            "no value",
        ),
        (
            json!({"name": "bücher.hi.test.", "type": "A", "ttl": 60, "records": ["192.0.2.1"]}),
            "changes[0].rrset.name",
            "punycode",
        ),
    ];
    for (rrset, field, part) in cases {
        let name = rrset["name"].as_str().unwrap().to_string();
        let r = change(&api, &zone, rrset);
        assert_error(&r, 400, Some(field), part);
        if let Ok(parsed) = parse_name(&name, "name") {
            let reply = ask_name(server.dns, &parsed, RecordType::A);
            assert_eq!(rcode_name(&reply), "NXDOMAIN", "{name}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn zone_names_keep_every_octet_through_the_api_and_dns() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--api-rate-limit", "1000", "--api-rate-burst", "1000"]);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    // Decimal escapes: `\032` is a space, `\200` the octet 0xC8; never read as octal.
    let r = api.post("/v1/zones", &json!({"name": "Sp\\032ace\\200.test."}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["name"], "sp\\032ace\\200.test.", "{}", r.body);
    let apex = name_from_labels(&[&b"sp ace\xc8"[..], b"test"]).unwrap();
    let mut reply = ask_name(server.dns, &apex, RecordType::SOA);
    let mut waited = 0;
    while reply.answers.is_empty() && waited < 100 {
        std::thread::sleep(Duration::from_millis(50));
        waited += 1;
        reply = ask_name(server.dns, &apex, RecordType::SOA);
    }
    assert_eq!(reply.answers.len(), 1, "{reply:?}");
    assert_eq!(reply.answers[0].name.iter().next(), Some(&b"sp ace\xc8"[..]));
}
