//! End-to-end: the real `signpost` binary, real PostgreSQL, real UDP and TCP.

mod common;

use std::io::Read;
use std::net::{TcpStream, UdpSocket};
use std::time::Duration;

use common::*;
use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
use hickory_proto::rr::{RData, RecordType};
use rand::Rng;
use signpost_core::RecordSet;
use signpost_store::{Change, ChangeAction};

#[tokio::test(flavor = "multi_thread")]
async fn example_zone_answers_every_case() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &[]);
    let cases = std::fs::read_to_string(repo_root().join("zones/cases.tsv")).unwrap();
    let mut checked = 0;
    for line in cases.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let f: Vec<&str> = line.split('\t').collect();
        assert_eq!(f.len(), 6, "malformed case line: {line}");
        let qtype: RecordType = f[1].parse().unwrap();
        let reply = ask(server.dns, f[0], qtype);
        let context = format!("{} {}", f[0], f[1]);
        assert_eq!(reply.metadata.response_code, rcode(f[2]), "{context}");
        assert_eq!(reply.metadata.authoritative, f[3] == "1", "AA of {context}");
        let expected: Vec<String> =
            if f[4] == "-" { Vec::new() } else { f[4].split(" | ").map(str::to_string).collect() };
        let mut expected_sorted = expected.clone();
        expected_sorted.sort();
        assert_eq!(answer_texts(&reply), expected_sorted, "answers of {context}");
        let authority: Vec<String> = reply.authorities.iter().map(|r| r.record_type().to_string()).collect();
        if f[5] == "-" {
            assert!(authority.is_empty(), "authority of {context}: {authority:?}");
        } else {
            assert!(authority.iter().all(|t| t == f[5]) && !authority.is_empty(), "authority of {context}");
        }
        checked += 1;
    }
    assert!(checked >= 20);
}

#[tokio::test(flavor = "multi_thread")]
async fn negative_answers_carry_soa_with_rfc2308_ttl_and_referrals_carry_glue() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &[]);
    let nx = ask(server.dns, "missing.example.com.", RecordType::A);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    let soa = &nx.authorities[0];
    let RData::SOA(data) = &soa.data else { panic!("no SOA") };
    // min(SOA TTL 900, MINIMUM 300)
    assert_eq!(soa.ttl, 300);
    assert_eq!(data.minimum, 300);

    let referral = ask(server.dns, "a.b.lab.example.com.", RecordType::AAAA);
    assert!(!referral.metadata.authoritative);
    assert_eq!(referral.metadata.response_code, ResponseCode::NoError);
    assert!(referral.answers.is_empty());
    assert_eq!(referral.authorities.len(), 2);
    let mut glue: Vec<String> =
        referral.additionals.iter().map(|r| format!("{} {}", r.name, r.record_type())).collect();
    glue.sort();
    assert_eq!(glue, ["ns1.lab.example.com. A", "ns2.lab.example.com. A", "ns2.lab.example.com. AAAA"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn edns_is_echoed_capped_and_versioned() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &[]);
    // No EDNS in the query: none in the answer.
    let plain = udp_query(server.dns, &query_message("www.example.com.", RecordType::A, None));
    assert!(plain.edns.is_none());
    // EDNS: OPT echoed with our 1232 cap even when the client offers more.
    let reply = udp_query(server.dns, &query_message("www.example.com.", RecordType::A, Some(edns(4096))));
    assert_eq!(reply.edns.as_ref().unwrap().max_payload(), 1232);
    // Version 1 → BADVERS (16) with an OPT of version 0 and no answer.
    let mut v1 = edns(1232);
    v1.set_version(1);
    let bad = udp_query(server.dns, &query_message("www.example.com.", RecordType::A, Some(v1)));
    assert_eq!(u16::from(bad.metadata.response_code), 16);
    assert_eq!(bad.edns.as_ref().unwrap().version(), 0);
    assert!(bad.answers.is_empty());
    // An unknown option is ignored and not echoed.
    let mut unknown = edns(1232);
    unknown.options_mut().insert(EdnsOption::Unknown(65001, vec![1, 2, 3]));
    let reply = udp_query(server.dns, &query_message("www.example.com.", RecordType::A, Some(unknown)));
    assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
    assert!(reply.edns.as_ref().unwrap().option(EdnsCode::Unknown(65001)).is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn truncation_then_tcp_gives_the_full_answer() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let server = Signpost::serve(&db, &[]);
    // Plain UDP: 40 addresses do not fit 512 bytes.
    let q = query_message("big.example.com.", RecordType::A, None);
    let raw = udp_raw(server.dns, &q.to_vec().unwrap(), Duration::from_secs(2)).unwrap();
    assert!(raw.len() <= 512, "{} bytes", raw.len());
    let udp = Message::from_vec(&raw).unwrap();
    assert!(udp.metadata.truncation);
    assert!(udp.metadata.authoritative);
    assert_eq!(udp.queries.len(), 1);
    let tcp = tcp_query(server.dns, &q);
    assert!(!tcp.metadata.truncation);
    assert_eq!(tcp.answers.len(), 40);
    // A client advertising 600 bytes is honoured (the 40 records need ~700).
    let small = udp_query(server.dns, &query_message("big.example.com.", RecordType::A, Some(edns(600))));
    assert!(small.metadata.truncation);
    // EDNS 4096 against a 2 KB record set: capped at 1232, truncated, full over TCP.
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    let texts: Vec<String> = (0..12).map(|i| format!("\"{}\"", format!("{i:02}").repeat(90))).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let change = Change {
        action: ChangeAction::Create,
        rrset: RecordSet::simple("huge.example.com.", "TXT", 60, &refs),
    };
    store.apply_changes(&zone.id, None, &[change], None).await.unwrap();
    let q = query_message("huge.example.com.", RecordType::TXT, Some(edns(4096)));
    wait_until(Duration::from_secs(3), || tcp_query(server.dns, &q).answers.len() == 12)
        .expect("change applied");
    let raw = udp_raw(server.dns, &q.to_vec().unwrap(), Duration::from_secs(2)).unwrap();
    assert!(raw.len() <= 1232, "{} bytes", raw.len());
    assert!(Message::from_vec(&raw).unwrap().metadata.truncation);
    let full = tcp_query(server.dns, &q);
    assert!(!full.metadata.truncation);
    assert_eq!(full.answers.len(), 12);
}

#[tokio::test(flavor = "multi_thread")]
async fn any_is_minimal_case_is_preserved_and_records_rotate() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &[]);
    let any = ask(server.dns, "example.com.", RecordType::ANY);
    assert_eq!(any.metadata.response_code, ResponseCode::NoError);
    let types: std::collections::BTreeSet<RecordType> = any.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types.len(), 1, "RFC 8482: one RRset, got {types:?}");
    let nx_any = ask(server.dns, "nope.example.com.", RecordType::ANY);
    assert_eq!(nx_any.metadata.response_code, ResponseCode::NXDomain);

    let mixed = ask(server.dns, "wWw.ExAmPlE.CoM.", RecordType::A);
    assert_eq!(mixed.queries[0].name().to_ascii(), "wWw.ExAmPlE.CoM.");

    let firsts: std::collections::BTreeSet<String> = (0..3)
        .map(|_| ask(server.dns, "www.example.com.", RecordType::A).answers[0].data.to_string())
        .collect();
    assert_eq!(firsts.len(), 3, "round robin: each of the 3 records comes first once");
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_headers_get_formerr_notimp_or_silence() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &[]);
    let mut notify = query_message("example.com.", RecordType::SOA, None);
    notify.metadata.op_code = OpCode::Notify;
    let reply = udp_query(server.dns, &notify);
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    let mut two = query_message("example.com.", RecordType::SOA, None);
    two.add_query(hickory_proto::op::Query::query("www.example.com.".parse().unwrap(), RecordType::A));
    assert_eq!(udp_query(server.dns, &two).metadata.response_code, ResponseCode::FormErr);
    let mut response = query_message("example.com.", RecordType::SOA, None).to_vec().unwrap();
    response[2] |= 0x80;
    assert!(udp_raw(server.dns, &response, Duration::from_millis(500)).is_none(), "QR=1 is dropped");
    let mut cut = query_message("example.com.", RecordType::SOA, None).to_vec().unwrap();
    cut.truncate(cut.len() - 2);
    let formerr = Message::from_vec(&udp_raw(server.dns, &cut, Duration::from_secs(2)).unwrap()).unwrap();
    assert_eq!(formerr.metadata.response_code, ResponseCode::FormErr);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_malformed_packets_leaves_the_server_answering() {
    let db = TestDb::new().await;
    let mut server = Signpost::serve(&db, &[]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut rng = rand::rng();
    let valid = query_message("www.example.com.", RecordType::A, Some(edns(1232))).to_vec().unwrap();
    for i in 0..20_000u32 {
        let packet: Vec<u8> = match i % 4 {
            // Random bytes of random length.
            0 => (0..rng.random_range(0..600)).map(|_| rng.random()).collect(),
            // A valid query with random bytes flipped.
            1 => {
                let mut p = valid.clone();
                for _ in 0..rng.random_range(1..6) {
                    let at = rng.random_range(0..p.len());
                    p[at] = rng.random();
                }
                p
            }
            // A valid header followed by garbage.
            2 => {
                let mut p = valid[..12].to_vec();
                p.extend((0..rng.random_range(0..300)).map(|_| rng.random::<u8>()));
                p
            }
            // A compression pointer loop in the question.
            _ => {
                let mut p = valid[..12].to_vec();
                p.extend_from_slice(&[0xC0, 12, 0, 1, 0, 1]);
                p
            }
        };
        let _ = socket.send_to(&packet, server.dns);
    }
    // Garbage over TCP too: bogus lengths, short frames, random payloads.
    for _ in 0..50 {
        if let Ok(mut stream) = TcpStream::connect(server.dns) {
            let len = rng.random_range(0..200u16);
            let mut frame = len.to_be_bytes().to_vec();
            frame.extend((0..rng.random_range(0..400)).map(|_| rng.random::<u8>()));
            let _ = std::io::Write::write_all(&mut stream, &frame);
        }
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(server.is_running(), "server died:\n{}", server.log());
    let canary = ask(server.dns, "example.com.", RecordType::SOA);
    assert_eq!(canary.metadata.response_code, ResponseCode::NoError);
    assert_eq!(canary.answers.len(), 1);
    let tcp = tcp_query(server.dns, &query_message("example.com.", RecordType::SOA, None));
    assert_eq!(tcp.answers.len(), 1);
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_pipelines_and_caps_connections() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--tcp-max-per-address", "3"]);
    // Three queries in one write, three answers in order.
    let mut stream = TcpStream::connect(server.dns).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let names = ["www.example.com.", "mail.example.com.", "ns1.example.com."];
    let mut batch = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut q = query_message(name, RecordType::A, None);
        q.metadata.id = i as u16 + 100;
        let bytes = q.to_vec().unwrap();
        batch.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
        batch.extend_from_slice(&bytes);
    }
    std::io::Write::write_all(&mut stream, &batch).unwrap();
    for (i, name) in names.iter().enumerate() {
        let reply = read_framed(&mut stream).expect("pipelined answer");
        assert_eq!(reply.metadata.id, i as u16 + 100);
        assert_eq!(reply.queries[0].name().to_ascii(), *name);
    }
    drop(stream);
    std::thread::sleep(Duration::from_millis(200));
    // Three connections from one address fill its cap; each is answered.
    let query = query_message("www.example.com.", RecordType::A, None).to_vec().unwrap();
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut stream = TcpStream::connect(server.dns).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            write_framed(&mut stream, &query);
            assert_eq!(read_framed(&mut stream).expect("an answer under the cap").answers.len(), 3);
            stream
        })
        .collect();
    // A fourth is closed: its query gets end-of-stream or a reset, not an
    // answer and not silence.
    let mut fourth = TcpStream::connect(server.dns).unwrap();
    fourth.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut frame = (query.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&query);
    let _ = std::io::Write::write_all(&mut fourth, &frame);
    let mut buf = [0u8; 512];
    match fourth.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the connection over the cap was answered ({n} bytes)"),
        Err(e) => assert!(
            matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted),
            "the connection over the cap was not closed: {e}"
        ),
    }
    // The connections under the cap still answer, and UDP does not starve.
    for stream in &mut held {
        write_framed(stream, &query);
        assert_eq!(read_framed(stream).expect("an answer under the cap").answers.len(), 3);
    }
    assert_eq!(ask(server.dns, "www.example.com.", RecordType::A).answers.len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn do_bit_ecs_strictness_and_opt_on_errors() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &[]);
    // RFC 3225 §3: DO is copied, over UDP and TCP.
    let mut with_do = edns(1232);
    with_do.set_dnssec_ok(true);
    let q = query_message("www.example.com.", RecordType::A, Some(with_do.clone()));
    let raw = udp_raw(server.dns, &q.to_vec().unwrap(), Duration::from_secs(2)).unwrap();
    // The reply's OPT is its last 11 bytes (root, type 41, size, ext-rcode,
    // version, flags, no options): the flags word has DO set.
    let opt = &raw[raw.len() - 11..];
    assert_eq!(&opt[..3], &[0, 0, 41]);
    assert_eq!(u16::from_be_bytes([opt[7], opt[8]]), 0x8000);
    assert!(tcp_query(server.dns, &q).edns.unwrap().flags().dnssec_ok);
    let plain = ask(server.dns, "www.example.com.", RecordType::A);
    assert!(!plain.edns.unwrap().flags().dnssec_ok);
    // RFC 6891 §7: NOTIMP to an EDNS request carries OPT (and DO).
    let mut notify = query_message("example.com.", RecordType::SOA, Some(with_do));
    notify.metadata.op_code = OpCode::Notify;
    let reply = udp_query(server.dns, &notify);
    assert_eq!(reply.metadata.response_code, ResponseCode::NotImp);
    assert!(reply.edns.unwrap().flags().dnssec_ok);
    // RFC 7871 §6: an ECS option with more address octets than its prefix
    // needs, or bits past the prefix, gets FORMERR (with OPT).
    let ecs = |source: u8, address: &[u8]| {
        let mut data = vec![0, 1, source, 0];
        data.extend_from_slice(address);
        let mut e = edns(1232);
        e.options_mut().insert(EdnsOption::Unknown(8, data));
        udp_query(server.dns, &query_message("www.example.com.", RecordType::A, Some(e)))
    };
    for (source, address) in [(24, &[192, 0, 2, 7][..]), (20, &[192, 0, 0x21][..])] {
        let reply = ecs(source, address);
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr, "/{source} {address:?}");
        assert!(reply.edns.is_some());
    }
    let good = ecs(24, &[192, 0, 2]);
    assert_eq!(good.metadata.response_code, ResponseCode::NoError);
    assert!(good.edns.unwrap().option(EdnsCode::Subnet).is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_cname_into_a_delegation_is_followed_by_the_referral() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let server = Signpost::serve(&db, &[]);
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    let change = Change {
        action: ChangeAction::Create,
        rrset: RecordSet::simple("tolab.example.com.", "CNAME", 60, &["host.lab.example.com."]),
    };
    store.apply_changes(&zone.id, None, &[change], None).await.unwrap();
    let reply = wait_until(Duration::from_secs(3), || {
        !ask(server.dns, "tolab.example.com.", RecordType::A).answers.is_empty()
    });
    assert!(reply.is_some(), "change applied");
    let reply = ask(server.dns, "tolab.example.com.", RecordType::A);
    assert_eq!(answer_texts(&reply), ["tolab.example.com. CNAME host.lab.example.com."]);
    // RFC 1034 §4.3.2: the CNAME, then the referral as for host.lab itself.
    let direct = ask(server.dns, "host.lab.example.com.", RecordType::A);
    let texts = |section: &[hickory_proto::rr::Record]| {
        let mut v: Vec<String> =
            section.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect();
        v.sort();
        v
    };
    assert_eq!(texts(&reply.authorities), texts(&direct.authorities));
    assert_eq!(texts(&reply.additionals), texts(&direct.additionals));
    assert_eq!(reply.authorities.len(), 2);
    assert_eq!(reply.additionals.len(), 3);
    assert!(reply.metadata.authoritative, "the CNAME is ours");
}

#[tokio::test(flavor = "multi_thread")]
async fn committed_change_is_answered_within_a_second_and_serial_rises() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let server = Signpost::serve(&db, &[]);
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    let serial_before = soa_serial(&ask(server.dns, "example.com.", RecordType::SOA));
    let change = Change {
        action: ChangeAction::Create,
        rrset: RecordSet::simple("fresh.example.com.", "A", 60, &["192.0.2.200"]),
    };
    let info = store.apply_changes(&zone.id, None, &[change], None).await.unwrap();
    let took = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "fresh.example.com.", RecordType::A).answers.len() == 1
    });
    assert!(took.is_some(), "change not answered within 1 s");
    let serial_after = soa_serial(&ask(server.dns, "example.com.", RecordType::SOA));
    assert!(serial_after > serial_before, "{serial_after} > {serial_before}");
    // The server records that it applied the change: the change turns INSYNC.
    let insync = async {
        for _ in 0..50 {
            if store.change(&info.id, None).await.unwrap().status == signpost_store::ChangeStatus::Insync {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    };
    assert!(insync.await, "change never INSYNC");
    // A delete disappears as fast.
    let delete = Change {
        action: ChangeAction::Delete,
        rrset: RecordSet::simple("fresh.example.com.", "A", 60, &["192.0.2.200"]),
    };
    store.apply_changes(&zone.id, None, &[delete], None).await.unwrap();
    let gone = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "fresh.example.com.", RecordType::A).metadata.response_code == ResponseCode::NXDomain
    });
    assert!(gone.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn changes_still_arrive_when_the_listen_connection_drops() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let server = Signpost::serve(&db, &[]);
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    // Kill the DNS server's LISTEN connection from the database side.
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND query ILIKE 'LISTEN%'",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    assert!(killed >= 1, "no LISTEN connection found");
    let change = Change {
        action: ChangeAction::Upsert,
        rrset: RecordSet::simple("polled.example.com.", "A", 60, &["192.0.2.201"]),
    };
    store.apply_changes(&zone.id, None, &[change], None).await.unwrap();
    let took = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "polled.example.com.", RecordType::A).answers.len() == 1
    });
    assert!(took.is_some(), "change not answered within 1 s after LISTEN dropped:\n{}", server.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_zone_appears_and_a_deleted_zone_is_refused() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let server = Signpost::serve(&db, &[]);
    let account = store.ensure_account("other").await.unwrap();
    let zone = store.create_zone(&account, "new.example.", None, &Default::default()).await.unwrap();
    let seen = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "new.example.", RecordType::NS).answers.len() == 2
    });
    assert!(seen.is_some());
    store.delete_zone(&zone.id, None).await.unwrap();
    let refused = wait_until(Duration::from_secs(1), || {
        ask(server.dns, "new.example.", RecordType::NS).metadata.response_code == ResponseCode::Refused
    });
    assert!(refused.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn dns_keeps_answering_while_it_cannot_reach_the_database() {
    let db = TestDb::new().await;
    let store = db.store().await;
    let server = Signpost::serve(&db, &[]);
    // Cut every connection of the server to its database, repeatedly.
    for _ in 0..5 {
        let _ = sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(store.pool())
        .await;
        assert_eq!(ask(server.dns, "www.example.com.", RecordType::A).answers.len(), 3);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And it catches up afterwards.
    let zone = store.zone_by_name("example.com.").await.unwrap().unwrap();
    let change = Change {
        action: ChangeAction::Create,
        rrset: RecordSet::simple("after.example.com.", "A", 60, &["192.0.2.202"]),
    };
    store.apply_changes(&zone.id, None, &[change], None).await.unwrap();
    assert!(
        wait_until(Duration::from_secs(3), || ask(server.dns, "after.example.com.", RecordType::A)
            .answers
            .len()
            == 1)
        .is_some()
    );
}

fn rcode(text: &str) -> ResponseCode {
    match text {
        "NOERROR" => ResponseCode::NoError,
        "NXDOMAIN" => ResponseCode::NXDomain,
        "REFUSED" => ResponseCode::Refused,
        "SERVFAIL" => ResponseCode::ServFail,
        other => panic!("unknown rcode {other} in zones/cases.tsv"),
    }
}

fn soa_serial(message: &Message) -> u32 {
    match &message.answers[0].data {
        RData::SOA(soa) => soa.serial,
        other => panic!("not an SOA: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dns_server_started_before_its_database_serves_once_the_database_is_up() {
    let db = TestDb::new().await;
    let file = repo_root().join("zones/example.com.zone");
    assert!(run_cli(&db, &["zone", "import", file.to_str().unwrap()]).status.success());
    let Some((mut proxy, url)) = proxied_url(&db) else {
        // Under CI the database is on TCP; a missing precondition fails there.
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must reach the test database over TCP (the outage proxy)"
        );
        eprintln!("not run outside CI: the test database is on a Unix socket; the proxy needs TCP");
        return;
    };
    proxy.down();
    // The database comes up 4 s after the server starts (past the bootstrap's own probe).
    let opener = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(4000));
        proxy.up();
        proxy
    });
    let args: Vec<String> = ["dns", "--dns-addr", "127.0.0.1:0"].iter().map(|s| s.to_string()).collect();
    let server = Signpost::launch(&url, &args, true, false, &[]);
    let _proxy = opener.join().unwrap();
    assert!(server.log().contains("waiting for it"), "{}", server.log());
    // It answers (SERVFAIL) from the start and serves the zones once the database is up.
    let served = wait_until(Duration::from_secs(15), || {
        ask(server.dns, "www.example.com.", RecordType::A).answers.len() == 3
    });
    assert!(served.is_some(), "{}", server.log());
}
