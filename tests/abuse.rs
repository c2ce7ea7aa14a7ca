//! End-to-end: the DNS server under abuse. TCP clients that never read,
//! that come from one network, or that hold idle connections must not lock
//! other clients out; UDP floods are rate limited per network (RRL). Clients
//! use distinct 127.x.y.z source addresses to stand for distinct networks.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

/// A TCP connection to `server` from `source` (port chosen by the system).
async fn connect_from(source: [u8; 4], server: SocketAddr) -> TcpStream {
    connect_with_buffer(source, server, None).await
}

/// A TCP connection whose receive buffer is `receive_buffer` bytes (None:
/// the system's, which Linux grows to megabytes on loopback).
async fn connect_with_buffer(source: [u8; 4], server: SocketAddr, receive_buffer: Option<u32>) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    if let Some(size) = receive_buffer {
        socket.set_recv_buffer_size(size).expect("receive buffer");
    }
    socket.bind(SocketAddr::from((source, 0))).expect("bind the source address");
    let stream = socket.connect(server).await.expect("connect");
    let stream = stream.into_std().expect("std stream");
    stream.set_nonblocking(false).expect("blocking");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream.set_write_timeout(Some(Duration::from_secs(5))).expect("timeout");
    stream
}

fn query_bytes(name: &str, id: u16) -> Vec<u8> {
    let mut q = query_message(name, RecordType::A, None);
    q.metadata.id = id;
    q.to_vec().expect("encode")
}

/// Sends a query on `stream` and expects its answer.
fn expect_answered(stream: &mut TcpStream, what: &str) {
    write_framed(stream, &query_bytes("www.example.com.", 7));
    let reply = read_framed(stream).unwrap_or_else(|| panic!("{what}: no answer"));
    assert_eq!(reply.answers.len(), 3, "{what}");
}

/// Sends a query on `stream` and expects the server to have closed it:
/// end of stream or a reset, never an answer, and not a timeout.
fn expect_closed(stream: &mut TcpStream, what: &str) {
    let mut frame = Vec::new();
    let query = query_bytes("www.example.com.", 8);
    frame.extend_from_slice(&(query.len() as u16).to_be_bytes());
    frame.extend_from_slice(&query);
    // A write into a reset connection fails: that is closed too.
    let _ = stream.write_all(&frame);
    let mut buf = [0u8; 512];
    match stream.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("{what}: the server answered ({n} bytes)"),
        Err(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe
            ) => {}
        Err(e) => panic!("{what}: still open ({e})"),
    }
}

/// Reads what the server sent until it closes; false if it stays open (reads
/// time out) or sends more than `limit` bytes.
fn drains_to_close(stream: &mut TcpStream, limit: usize) -> bool {
    stream.set_read_timeout(Some(Duration::from_secs(2))).expect("timeout");
    let mut buf = vec![0u8; 65_536];
    let mut total = 0;
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(n) => {
                total += n;
                if total > limit {
                    return false;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                return true;
            }
            Err(_) => return false,
        }
    }
}

/// The value of one Prometheus sample line `name{labels} value` (0 when absent).
fn metric(api: SocketAddr, sample: &str) -> u64 {
    let body = http(api, "GET", "/metrics", None, None).body;
    body.lines()
        .find_map(|line| line.strip_prefix(sample).and_then(|rest| rest.trim().parse::<f64>().ok()))
        .map_or(0, |v| v as u64)
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_pipeline_and_never_read_are_closed_by_the_write_timeout() {
    let db = TestDb::new().await;
    let server = Signpost::serve(
        &db,
        &["--tcp-max-connections", "4", "--tcp-write-timeout", "1", "--tcp-idle-timeout", "60"],
    );
    // Four connections fill the cap; each sends 3,000 queries for a 40-record
    // answer (about 2 MB of answers) and reads nothing.
    let mut batch = Vec::new();
    for i in 0..3000u16 {
        let q = query_bytes("big.example.com.", i);
        batch.extend_from_slice(&(q.len() as u16).to_be_bytes());
        batch.extend_from_slice(&q);
    }
    let mut attackers = Vec::new();
    for i in 1..=4u8 {
        // A small receive window, so that the answers back up into the server.
        let mut stream = connect_with_buffer([127, 0, 3, i], server.dns, Some(16 << 10)).await;
        let _ = stream.write_all(&batch);
        attackers.push(stream);
    }
    // Past the write timeout, each of them has been closed by the server
    // (what it had sent before is bounded by its send buffer and our window).
    std::thread::sleep(Duration::from_millis(2500));
    for (i, stream) in attackers.iter_mut().enumerate() {
        assert!(drains_to_close(stream, 1 << 20), "non-reading connection {i} still open");
    }
    // Their slots are free: a TCP client is served.
    let canary = query_message("example.com.", RecordType::SOA, None);
    assert_eq!(tcp_query(server.dns, &canary).answers.len(), 1);
    let api = server.api_addr();
    let timeouts = metric(api, "signpost_dns_listener_events_total{event=\"tcp_write_timeout\"}");
    assert!(timeouts >= 4, "{timeouts} write timeouts counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_network_cannot_take_more_than_its_share() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--tcp-max-per-network", "4", "--tcp-max-per-address", "2"]);
    // Two addresses of 127.0.4.0/24 take the network's four connections.
    let mut held = Vec::new();
    for source in [[127, 0, 4, 1], [127, 0, 4, 1], [127, 0, 4, 2], [127, 0, 4, 2]] {
        let mut stream = connect_from(source, server.dns).await;
        expect_answered(&mut stream, "a connection under the caps");
        held.push(stream);
    }
    // A third address in that /24 is closed, and so is a third connection of one address.
    let mut third = connect_from([127, 0, 4, 3], server.dns).await;
    expect_closed(&mut third, "a fifth connection from the /24");
    let mut again = connect_from([127, 0, 4, 1], server.dns).await;
    expect_closed(&mut again, "a third connection from one address");
    // Another /24 is served, and the held connections still answer.
    let mut other = connect_from([127, 0, 5, 1], server.dns).await;
    expect_answered(&mut other, "a connection from another /24");
    for stream in &mut held {
        expect_answered(stream, "a held connection");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_connections_filling_the_cap_make_room_for_a_new_client() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--tcp-max-connections", "6", "--tcp-idle-timeout", "60"]);
    // Six idle connections from three addresses fill the cap (the first is the oldest).
    let mut idle = Vec::new();
    for i in 0..6u8 {
        let mut stream = connect_from([127, 0, 6, 1 + i / 2], server.dns).await;
        expect_answered(&mut stream, "an idle connection's first query");
        idle.push(stream);
        std::thread::sleep(Duration::from_millis(20));
    }
    // A new client is served: the longest-idle connection was closed for it.
    let mut newcomer = connect_from([127, 0, 7, 1], server.dns).await;
    expect_answered(&mut newcomer, "a new client with the cap full of idle connections");
    expect_closed(&mut idle[0], "the longest-idle connection");
    expect_answered(&mut idle[5], "the most recent idle connection");
    let evicted = metric(server.api_addr(), "signpost_dns_listener_events_total{event=\"tcp_evicted\"}");
    assert_eq!(evicted, 1);
}

/// What a UDP client saw: full answers, slipped (TC=1) answers, no answer.
#[derive(Debug, Default)]
struct Tally {
    full: usize,
    slipped: usize,
    silent: usize,
}

/// A flood of queries for www.example.com. A from one source, sent; its
/// replies are being collected.
struct Flood {
    count: usize,
    took: Duration,
    replies: std::thread::JoinHandle<Vec<Message>>,
}

/// Sends `count` queries from `source` as fast as it can.
fn send_flood(server: SocketAddr, source: [u8; 4], count: u16) -> Flood {
    let socket = UdpSocket::bind(SocketAddr::from((source, 0))).expect("bind");
    socket.set_read_timeout(Some(Duration::from_millis(700))).expect("timeout");
    let reader = socket.try_clone().expect("clone");
    let replies = std::thread::spawn(move || {
        let mut replies = Vec::new();
        let mut buf = [0u8; 2048];
        while let Ok(n) = reader.recv(&mut buf) {
            replies.push(Message::from_vec(&buf[..n]).expect("a reply parses"));
        }
        replies
    });
    let start = Instant::now();
    for id in 0..count {
        let mut q = query_message("www.example.com.", RecordType::A, Some(edns(1232)));
        q.metadata.id = id;
        socket.send_to(&q.to_vec().unwrap(), server).expect("send");
    }
    Flood { count: usize::from(count), took: start.elapsed(), replies }
}

impl Flood {
    /// Waits for the replies and sorts them; each slipped reply is checked
    /// (TC, AA, NOERROR, question and OPT, no records).
    fn tally(self) -> Tally {
        let replies = self.replies.join().expect("reader");
        let mut tally = Tally::default();
        for reply in &replies {
            if reply.metadata.truncation {
                assert!(reply.metadata.authoritative, "slipped reply without AA");
                assert_eq!(reply.metadata.response_code, ResponseCode::NoError);
                assert!(reply.answers.is_empty() && reply.authorities.is_empty());
                assert_eq!(reply.queries[0].name().to_ascii(), "www.example.com.");
                assert!(reply.edns.is_some());
                tally.slipped += 1;
            } else {
                assert_eq!(reply.answers.len(), 3);
                tally.full += 1;
            }
        }
        tally.silent = self.count - replies.len();
        tally
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_udp_flood_is_rate_limited_per_network_and_others_are_unaffected() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--rrl-rate", "20", "--rrl-slip", "2", "--rrl-include-loopback"]);
    let flood_a = send_flood(server.dns, [127, 0, 8, 1], 300);
    let took = flood_a.took;
    // Right after it, another address of the same /24: it shares A's empty bucket.
    let flood_c = send_flood(server.dns, [127, 0, 8, 2], 10);
    let (a, c) = (flood_a.tally(), flood_c.tally());
    eprintln!("one source, 300 queries sent in {took:?}: {a:?}; same /24 right after: {c:?}");
    // The bucket holds 20 and refills at 20/s.
    let allowed = 20.0 + 20.0 * (took.as_secs_f64() + 0.5);
    assert!(a.full >= 15 && (a.full as f64) <= allowed, "{a:?} in {took:?}");
    // Of the limited responses every second one is slipped, the rest dropped.
    let limited = 300 - a.full;
    assert!(a.slipped * 5 >= limited * 2 && a.slipped * 2 <= limited + 2, "{a:?}");
    assert!(a.silent > 0, "{a:?}");
    assert!(c.full <= 5, "same /24: {c:?}");
    // Another /24 is not limited.
    let b = send_flood(server.dns, [127, 0, 9, 1], 10).tally();
    assert_eq!((b.full, b.slipped, b.silent), (10, 0, 0), "other /24");
    // The counters say what was done.
    let api = server.api_addr();
    let slipped = metric(api, "signpost_dns_rrl_responses_total{action=\"slipped\"}");
    let dropped = metric(api, "signpost_dns_rrl_responses_total{action=\"dropped\"}");
    assert!(slipped as usize >= a.slipped + c.slipped, "{slipped} slipped counted");
    assert!(dropped > 0 && dropped as usize <= a.silent + c.silent, "{dropped} dropped counted");
}

#[tokio::test(flavor = "multi_thread")]
async fn loopback_sources_are_exempt_by_default() {
    let db = TestDb::new().await;
    let server = Signpost::serve(&db, &["--rrl-rate", "5"]);
    let tally = send_flood(server.dns, [127, 0, 0, 1], 100).tally();
    assert_eq!((tally.full, tally.slipped, tally.silent), (100, 0, 0));
}
