//! Shared harness of the end-to-end tests: a fresh PostgreSQL database per
//! test, the real `signpost` binary on port 0, and plain UDP/TCP DNS clients.
// Compiled into several test binaries: not each uses every helper, and its
// `pub` items are the tests' shared surface, not a crate's API.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::{Name, RecordType};
use signpost_core::rdata::rdata_text;
use signpost_pgboot::{create_database, drop_database, locate_database};
use signpost_store::Store;

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A database made for one test and dropped after it.
pub struct TestDb {
    pub url: String,
    server_url: String,
    name: String,
}

impl TestDb {
    pub async fn new() -> TestDb {
        let configured = std::env::var("DATABASE_URL").ok();
        let located = locate_database(configured.as_deref(), &repo_root().join(".signpost"), "signpost")
            .await
            .expect("a PostgreSQL server for the tests");
        let name = format!("signpost_test_{}_{}", std::process::id(), rand::random::<u32>());
        let url = create_database(&located.url, &name).await.expect("create the test database");
        TestDb { url, server_url: located.url, name }
    }

    /// A migrated store on this database.
    pub async fn store(&self) -> Store {
        let store = Store::connect(&self.url).await.expect("connect");
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server_url = self.server_url.clone();
        let name = self.name.clone();
        let _ = std::thread::spawn(move || {
            if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = rt.block_on(drop_database(&server_url, &name));
            }
        })
        .join();
    }
}

/// A running `signpost` process.
pub struct Signpost {
    child: Child,
    pub dns: SocketAddr,
    pub api: Option<SocketAddr>,
    stderr_path: PathBuf,
}

impl Signpost {
    /// `signpost serve` with the example zones, every address on port 0.
    pub fn serve(db: &TestDb, extra: &[&str]) -> Signpost {
        let zones = repo_root().join("zones");
        let mut args = vec![
            "serve".to_string(),
            "--dns-addr".into(),
            "127.0.0.1:0".into(),
            "--api-addr".into(),
            "127.0.0.1:0".into(),
            "--zones-dir".into(),
            zones.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        Signpost::spawn(db, &args, true, &[])
    }

    /// `signpost dns` only.
    pub fn dns_only(db: &TestDb, extra: &[&str]) -> Signpost {
        Signpost::dns_only_with_env(db, extra, &[])
    }

    /// `signpost dns` only, with extra environment variables.
    pub fn dns_only_with_env(db: &TestDb, extra: &[&str], envs: &[(&str, &str)]) -> Signpost {
        let mut args = vec!["dns".to_string(), "--dns-addr".into(), "127.0.0.1:0".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Signpost::spawn(db, &args, false, envs)
    }

    fn spawn(db: &TestDb, args: &[String], with_api: bool, envs: &[(&str, &str)]) -> Signpost {
        Signpost::launch(&db.url, args, true, with_api, envs)
    }

    /// Starts `signpost ARGS` with `DATABASE_URL=url` and waits for the
    /// `dns listening on` / `api listening on` lines asked for. A process
    /// without DNS has `dns` 0.0.0.0:0.
    pub fn launch(
        url: &str,
        args: &[String],
        need_dns: bool,
        need_api: bool,
        envs: &[(&str, &str)],
    ) -> Signpost {
        let stderr_path = std::env::temp_dir().join(format!("signpost-test-{}.log", rand::random::<u64>()));
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_signpost"))
            .args(args)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "info,signpost_dns=debug,sqlx=warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start signpost");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut dns = None;
        let mut api = None;
        let deadline = Instant::now() + Duration::from_secs(60);
        while (need_dns && dns.is_none()) || (need_api && api.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = rx.recv_timeout(left) else {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                panic!("signpost did not start listening:\n{log}");
            };
            if let Some(addr) = line.strip_prefix("dns listening on ") {
                dns = addr.trim().parse().ok();
            }
            if let Some(addr) = line.strip_prefix("api listening on ") {
                api = addr.trim().parse().ok();
            }
        }
        let dns = dns.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Signpost { child, dns, api, stderr_path }
    }

    /// The process id (for signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM, waits for the exit, and returns the status with the log.
    pub fn terminate_with_log(mut self) -> (std::process::ExitStatus, String) {
        let status = self.stop_on_sigterm();
        (status, self.log())
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        self.stop_on_sigterm()
    }

    fn stop_on_sigterm(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("signpost did not stop on SIGTERM:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Signpost {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.stderr_path);
    }
}

/// Builds a query message.
pub fn query_message(name: &str, qtype: RecordType, edns: Option<Edns>) -> Message {
    let mut message = Message::query();
    message.metadata.recursion_desired = false;
    message.add_query(Query::query(Name::from_ascii(name).expect("name"), qtype));
    if let Some(edns) = edns {
        message.set_edns(edns);
    }
    message
}

/// EDNS with this UDP size.
pub fn edns(size: u16) -> Edns {
    let mut e = Edns::new();
    e.set_max_payload(size);
    e
}

/// Sends raw bytes over UDP and returns the raw reply, if any within `wait`.
pub fn udp_raw(server: SocketAddr, packet: &[u8], wait: Duration) -> Option<Vec<u8>> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket.set_read_timeout(Some(wait)).expect("timeout");
    socket.send_to(packet, server).expect("send");
    let mut buf = vec![0u8; 65_535];
    match socket.recv(&mut buf) {
        Ok(n) => Some(buf[..n].to_vec()),
        Err(_) => None,
    }
}

/// One query over UDP (retried twice on loss).
pub fn udp_query(server: SocketAddr, message: &Message) -> Message {
    let bytes = message.to_vec().expect("encode");
    for _ in 0..3 {
        if let Some(reply) = udp_raw(server, &bytes, Duration::from_secs(2)) {
            return Message::from_vec(&reply).expect("decode reply");
        }
    }
    panic!("no UDP answer from {server}");
}

/// Convenience: ask `name`/`qtype` over UDP with EDNS 1232.
pub fn ask(server: SocketAddr, name: &str, qtype: RecordType) -> Message {
    udp_query(server, &query_message(name, qtype, Some(edns(1232))))
}

/// One query over a new TCP connection.
pub fn tcp_query(server: SocketAddr, message: &Message) -> Message {
    let mut stream = TcpStream::connect(server).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let bytes = message.to_vec().expect("encode");
    write_framed(&mut stream, &bytes);
    read_framed(&mut stream).expect("a TCP answer")
}

/// Writes one length-prefixed message.
pub fn write_framed(stream: &mut TcpStream, bytes: &[u8]) {
    let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    stream.write_all(&out).expect("write");
}

/// Reads one length-prefixed message.
pub fn read_framed(stream: &mut TcpStream) -> Option<Message> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).ok()?;
    let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
    stream.read_exact(&mut buf).ok()?;
    Message::from_vec(&buf).ok()
}

/// "name TYPE data" of each answer record, sorted.
pub fn answer_texts(message: &Message) -> Vec<String> {
    let mut texts: Vec<String> = message
        .answers
        .iter()
        .map(|r| format!("{} {} {}", r.name.to_lowercase(), r.record_type(), rdata_text(&r.data)))
        .collect();
    texts.sort();
    texts
}

/// Polls `check` until it holds or `limit` passes; returns the time it took.
pub fn wait_until(limit: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check() {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Runs the signpost binary to completion with the test database.
pub fn run_cli(db: &TestDb, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run signpost")
}

/// A path under the system temporary directory, unique to this call.
pub fn temp_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("signpost-{}-{name}", rand::random::<u64>()))
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| Path::new(&p).join(program).is_file()))
        .unwrap_or(false)
}

impl Signpost {
    /// Any `signpost` subcommand with `DATABASE_URL=url`, waiting for the
    /// `api listening on` line (and `dns listening on` when `with_dns`).
    /// Without DNS, `dns` is 0.0.0.0:0.
    pub fn start_with_url(url: &str, args: &[String], with_dns: bool) -> Signpost {
        Signpost::launch(url, args, with_dns, true, &[])
    }

    /// The API's address (panics for a process without the API).
    pub fn api_addr(&self) -> SocketAddr {
        self.api.expect("this process serves the API")
    }
}

/// An HTTP response, read whole.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// A header's value (name compared case-insensitively).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {}: {:?}", self.status, self.body))
    }
}

/// One HTTP/1.1 request on a new connection: `key` as a bearer token, `body`
/// as JSON.
pub fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> HttpResponse {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(key) = key {
        head.push_str(&format!("Authorization: Bearer {key}\r\n"));
    }
    let body = body.unwrap_or("");
    if !body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH") {
        head.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body.as_bytes());
    http_raw(addr, &bytes)
}

/// Sends raw request bytes and reads the response to the end.
pub fn http_raw(addr: SocketAddr, request: &[u8]) -> HttpResponse {
    let mut stream = TcpStream::connect(addr).expect("connect to the API");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
    stream.write_all(request).expect("send the request");
    read_http_response(&mut stream)
}

/// Reads one response (the server closes the connection after it).
pub fn read_http_response(stream: &mut TcpStream) -> HttpResponse {
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP response head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).expect("a status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse { status, headers, body: String::from_utf8_lossy(&body).to_string() }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(end) = data.windows(2).position(|w| w == b"\r\n") else { return out };
        let size_text = String::from_utf8_lossy(&data[..end]).to_string();
        let Ok(size) = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16) else {
            return out;
        };
        if size == 0 || data.len() < end + 2 + size {
            return out;
        }
        out.extend_from_slice(&data[end + 2..end + 2 + size]);
        data = &data[(end + 4 + size).min(data.len())..];
    }
}

/// A TCP proxy in front of PostgreSQL that can go away (its port closed and
/// its connections cut) and come back on the same port: a real outage of
/// the database as the API sees it.
pub struct DbProxy {
    /// The proxy's port on 127.0.0.1.
    pub port: u16,
    upstream: String,
    stop: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl DbProxy {
    /// A proxy to `upstream` (host:port), up.
    pub fn start(upstream: String) -> DbProxy {
        let mut proxy = DbProxy {
            port: 0,
            upstream,
            stop: Arc::new(AtomicBool::new(false)),
            conns: Arc::new(Mutex::new(Vec::new())),
        };
        proxy.up();
        proxy
    }

    /// Listens again on the same port.
    pub fn up(&mut self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).expect("bind the proxy");
        self.port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        self.stop = stop.clone();
        let conns = self.conns.clone();
        let upstream = self.upstream.clone();
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        let Ok(server) = TcpStream::connect(&upstream) else { continue };
                        let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else { continue };
                        if let (Ok(c3), Ok(s3)) = (client.try_clone(), server.try_clone()) {
                            conns.lock().expect("proxy connections").extend([c3, s3]);
                        }
                        pipe(client, s2);
                        pipe(server, c2);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
    }

    /// Closes the port and cuts every connection.
    pub fn down(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        std::thread::sleep(Duration::from_millis(50)); // the accept loop drops the listener
        for conn in self.conns.lock().expect("proxy connections").drain(..) {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
    }
}

impl Drop for DbProxy {
    fn drop(&mut self) {
        self.down();
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream) {
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut from, &mut to);
        let _ = to.shutdown(std::net::Shutdown::Both);
        let _ = to.flush();
    });
}

/// A URL to the test database through a new proxy (None when the test
/// database is reached over a Unix socket, which the proxy cannot carry).
pub fn proxied_url(db: &TestDb) -> Option<(DbProxy, String)> {
    use std::str::FromStr;
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).ok()?;
    let host = options.get_host().to_string();
    if host.starts_with('/') {
        return None;
    }
    let proxy = DbProxy::start(format!("{host}:{}", options.get_port()));
    let url = format!(
        "postgres://{}@127.0.0.1:{}/{}?sslmode=disable",
        options.get_username(),
        proxy.port,
        options.get_database().unwrap_or("postgres")
    );
    Some((proxy, url))
}

impl Signpost {
    /// `signpost api` only, on port 0 (no DNS server, no checker).
    pub fn api_only(db: &TestDb, extra: &[&str]) -> Signpost {
        let mut args = vec!["api".to_string(), "--api-addr".into(), "127.0.0.1:0".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        Signpost::launch(&db.url, &args, false, true, &[])
    }
}

/// A query for `name`/`qtype` carrying an EDNS Client Subnet option
/// (`addr` with `source` prefix bits).
pub fn ecs_message(name: &str, qtype: RecordType, addr: &str, source: u8) -> Message {
    use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsOption};
    let mut e = edns(1232);
    let addr: std::net::IpAddr = addr.parse().expect("an address");
    e.options_mut().insert(EdnsOption::Subnet(ClientSubnet::new(addr, source, 0)));
    query_message(name, qtype, Some(e))
}

/// The ECS scope prefix of a reply, if it carries the option.
pub fn ecs_scope_of(reply: &Message) -> Option<u8> {
    use hickory_proto::rr::rdata::opt::{EdnsCode, EdnsOption};
    match reply.edns.as_ref()?.option(EdnsCode::Subnet) {
        Some(EdnsOption::Subnet(s)) => Some(s.scope_prefix()),
        _ => None,
    }
}

/// The record data of a reply's answer section, sorted (what TestDNSAnswer lists).
pub fn answer_data(reply: &Message) -> Vec<String> {
    let mut data: Vec<String> = reply.answers.iter().map(|r| rdata_text(&r.data)).collect();
    data.sort();
    data
}

/// The DNS name of a reply's response code (NOERROR, NXDOMAIN, ...).
pub fn rcode_name(reply: &Message) -> String {
    match u16::from(reply.metadata.response_code) {
        0 => "NOERROR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// A client of one API server with one key.
#[derive(Clone)]
pub struct Api {
    /// The server's address.
    pub addr: SocketAddr,
    /// The bearer key.
    pub key: String,
}

impl Api {
    /// The same server with another key.
    pub fn as_key(&self, key: &str) -> Api {
        Api { addr: self.addr, key: key.to_string() }
    }

    /// GET with the key.
    pub fn get(&self, path: &str) -> HttpResponse {
        http(self.addr, "GET", path, Some(&self.key), None)
    }

    /// POST a JSON body with the key.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> HttpResponse {
        http(self.addr, "POST", path, Some(&self.key), Some(&body.to_string()))
    }

    /// PUT a JSON body with the key.
    pub fn put(&self, path: &str, body: &serde_json::Value) -> HttpResponse {
        http(self.addr, "PUT", path, Some(&self.key), Some(&body.to_string()))
    }

    /// DELETE with the key.
    pub fn delete(&self, path: &str) -> HttpResponse {
        http(self.addr, "DELETE", path, Some(&self.key), None)
    }

    /// Creates a zone and returns its id.
    pub fn zone(&self, name: &str) -> String {
        let r = self.post("/v1/zones", &serde_json::json!({"name": name}));
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().expect("a zone id").to_string()
    }
}

/// `signpost serve` with the rate limits lifted (plus `extra` arguments) and
/// a key of a fresh account `acme`.
pub async fn serve_with_key(extra: &[&str]) -> (TestDb, Signpost, Api) {
    let db = TestDb::new().await;
    let mut args = vec!["--api-rate-limit", "0"];
    args.extend_from_slice(extra);
    let server = Signpost::serve(&db, &args);
    let api = Api { addr: server.api_addr(), key: account_key(&db, "acme") };
    (db, server, api)
}

/// Creates an account with the CLI and returns its API key.
pub fn account_key(db: &TestDb, name: &str) -> String {
    let out = run_cli(db, &["accounts", "create", name]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    line["apiKey"].as_str().expect("an apiKey").to_string()
}

/// Asserts an API error: the status, the `{"error": {code, message, field?}}`
/// shape, the field when given, and a part of the message.
pub fn assert_error(r: &HttpResponse, status: u16, field: Option<&str>, message_part: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let body = r.json();
    let error = &body["error"];
    assert!(error["code"].is_string(), "{}", r.body);
    if let Some(field) = field {
        assert_eq!(error["field"], serde_json::json!(field), "{}", r.body);
    }
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains(message_part), "expected {message_part:?} in {message:?}");
}
