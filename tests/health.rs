//! End-to-end: the health checker against real endpoints that stand for
//! containers (each a process or listener on its own loopback address),
//! judged through real DNS queries to a real `signpost serve`: failover
//! when an endpoint dies or freezes (SIGSTOP, like `docker pause`), return
//! when it is back, string matching, calculated checks, two checkers that
//! disagree, the target policy, overrides and the per-checker status.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use signpost_core::RecordSet;
use signpost_core::model::Failover;
use signpost_store::health::{
    CheckType, DEFAULT_CHECKER_LIVENESS, DEFAULT_HEALTHY_SHARE, HealthCheckSpec, HealthStatus, OverrideState,
    TargetPolicy,
};
use signpost_store::{Change, ChangeAction, Store, StoreError};

/// An HTTP(S) server in its own process: answers every GET with the status
/// in `DIR/status` (default 200) and the body in `DIR/body` (default `ok`),
/// 503 to client addresses listed in `DIR/deny`, and logs each request to
/// `DIR/requests.log`.
const ENDPOINT_PY: &str = r#"
import http.server, os, ssl, sys, time
bind, port, d = sys.argv[1], int(sys.argv[2]), sys.argv[3]
cert = sys.argv[4] if len(sys.argv) > 4 else None
def read(name, default):
    try:
        with open(os.path.join(d, name)) as f:
            return f.read()
    except FileNotFoundError:
        return default
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        client = self.client_address[0]
        with open(os.path.join(d, "requests.log"), "a") as f:
            f.write("%f %s %s\n" % (time.time(), client, self.path))
        status = int(read("status", "200").strip() or "200")
        if client in read("deny", "").split():
            status = 503
        body = read("body", "ok").encode()
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
class Server(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True
server = Server((bind, port), Handler)
if cert:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert)
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

/// One endpoint process.
struct Endpoint {
    child: Option<Child>,
    ip: IpAddr,
    port: u16,
    dir: PathBuf,
    cert: Option<PathBuf>,
}

impl Endpoint {
    fn start(ip: &str) -> Endpoint {
        Endpoint::start_with(ip, None)
    }

    fn start_with(ip: &str, cert: Option<PathBuf>) -> Endpoint {
        let dir = temp_path("endpoint");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("server.py"), ENDPOINT_PY).unwrap();
        let mut endpoint = Endpoint { child: None, ip: ip.parse().unwrap(), port: 0, dir, cert };
        endpoint.launch();
        endpoint
    }

    /// Starts the process (again, on the same port after a kill).
    fn launch(&mut self) {
        let mut args = vec![
            self.dir.join("server.py").display().to_string(),
            self.ip.to_string(),
            self.port.to_string(),
            self.dir.display().to_string(),
        ];
        if let Some(cert) = &self.cert {
            args.push(cert.display().to_string());
        }
        let mut child = Command::new("python3")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs the test endpoints");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).expect("the endpoint prints its port");
        self.port = line.trim().parse().unwrap_or_else(|_| panic!("endpoint said {line:?}"));
        self.child = Some(child);
    }

    fn signal(&self, signal: &str) {
        if let Some(child) = &self.child {
            let status = Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
            assert!(status.success());
        }
    }

    /// SIGKILL: the container dies; its port refuses connections.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGSTOP: the container is paused; connections hang.
    fn freeze(&self) {
        self.signal("-STOP");
    }

    /// SIGCONT.
    fn thaw(&self) {
        self.signal("-CONT");
    }

    fn set(&self, file: &str, content: &str) {
        let tmp = self.dir.join(format!("{file}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.dir.join(file)).unwrap();
    }

    /// Client addresses of the requests served so far.
    fn requests(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.dir.join("requests.log")).unwrap_or_default();
        log.lines().filter_map(|l| l.split(' ').nth(1).map(String::from)).collect()
    }

    fn spec(&self, check_type: CheckType) -> HealthCheckSpec {
        HealthCheckSpec {
            ip: Some(self.ip.to_string()),
            port: Some(i64::from(self.port)),
            request_interval: Some(1),
            failure_threshold: Some(2),
            ..HealthCheckSpec::new(check_type)
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.thaw();
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TCP endpoint: a listener accepting (and closing) connections until closed.
struct TcpEndpoint {
    addr: SocketAddr,
    open: Arc<AtomicBool>,
}

impl TcpEndpoint {
    fn start(addr: SocketAddr) -> TcpEndpoint {
        let listener = TcpListener::bind(addr).unwrap();
        let addr = listener.local_addr().unwrap();
        listener.set_nonblocking(true).unwrap();
        let open = Arc::new(AtomicBool::new(true));
        let flag = open.clone();
        std::thread::spawn(move || {
            while flag.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => drop(stream),
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TcpEndpoint { addr, open }
    }

    fn close(&self) {
        self.open.store(false, Ordering::SeqCst);
    }
}

impl Drop for TcpEndpoint {
    fn drop(&mut self) {
        self.close();
    }
}

/// A `signpost checker` process.
struct CheckerProcess {
    child: Child,
    log: PathBuf,
}

impl CheckerProcess {
    fn start(db: &TestDb, args: &[&str]) -> CheckerProcess {
        let log = temp_path("checker.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_signpost"))
            .arg("checker")
            .args(args)
            .env("DATABASE_URL", &db.url)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start signpost checker");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.starts_with("health checker ") => break,
                Ok(_) => {}
                Err(_) => {
                    let _ = child.kill();
                    panic!("checker did not start:\n{}", std::fs::read_to_string(&log).unwrap_or_default());
                }
            }
        }
        CheckerProcess { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM and a clean exit.
    fn terminate(&mut self) {
        let _ = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "checker exit: {status}\n{}", self.log());
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("checker did not stop on SIGTERM:\n{}", self.log());
    }
}

impl Drop for CheckerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

const NAME: &str = "fo.health.example.";
const PRIMARY: &str = "192.0.2.1";
const SECONDARY: &str = "192.0.2.2";

struct Setup {
    db: TestDb,
    store: Store,
    account: String,
    zone: String,
}

async fn setup() -> Setup {
    let db = TestDb::new().await;
    let store = db.store().await;
    let account = store.ensure_account("health").await.unwrap();
    let zone = store.create_zone(&account, "health.example.", None, &Default::default()).await.unwrap().id;
    Setup { db, store, account, zone }
}

impl Setup {
    async fn create(&self, spec: &HealthCheckSpec) -> String {
        let created = self.store.create_health_check(&self.account, spec, &TargetPolicy::ALLOW_PRIVATE).await;
        created.unwrap().check.id
    }

    /// `fo.health.example.` answers PRIMARY while `check` is healthy, else SECONDARY.
    async fn failover(&self, check: &str) {
        let member = |id: &str, addr: &str, role: Failover| {
            let mut r = RecordSet::simple(NAME, "A", 5, &[addr]);
            r.set_identifier = Some(id.into());
            r.failover = Some(role);
            r
        };
        let mut primary = member("primary", PRIMARY, Failover::Primary);
        primary.health_check_id = Some(check.to_string());
        let secondary = member("secondary", SECONDARY, Failover::Secondary);
        let changes: Vec<Change> = [primary, secondary]
            .into_iter()
            .map(|rrset| Change { action: ChangeAction::Upsert, rrset })
            .collect();
        self.store.apply_changes(&self.zone, None, &changes, None).await.unwrap();
    }

    async fn status(&self, check: &str) -> HealthStatus {
        self.store
            .health_check_status(&self.account, check, DEFAULT_HEALTHY_SHARE, DEFAULT_CHECKER_LIVENESS)
            .await
            .unwrap()
    }

    /// Waits until `count` checkers hold a settled state for the check (as `healthy`).
    async fn settled(&self, check: &str, count: usize, healthy: bool) -> HealthStatus {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = self.status(check).await;
            if status.checkers.iter().filter(|c| c.settled && c.healthy == healthy).count() >= count {
                return status;
            }
            assert!(Instant::now() < deadline, "checkers never settled {healthy}: {status:?}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The A records answered for `fo.health.example.`.
fn answer(server: &Signpost) -> Vec<String> {
    let reply = ask(server.dns, NAME, RecordType::A);
    reply.answers.iter().map(|r| r.data.to_string()).collect()
}

/// Time until DNS answers `want` (panics after `limit`, with the server log).
fn until_answer(server: &Signpost, want: &str, limit: Duration) -> Duration {
    wait_until(limit, || answer(server) == [want])
        .unwrap_or_else(|| panic!("DNS never answered {want} within {limit:?}:\n{}", server.log()))
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_primary_fails_over_within_interval_times_threshold() {
    let s = setup().await;
    let mut endpoint = Endpoint::start("127.0.0.21");
    let check = s.create(&endpoint.spec(CheckType::Http)).await;
    s.failover(&check).await;
    let server = Signpost::serve(&s.db, &[]);
    assert_eq!(answer(&server), [PRIMARY]);
    s.settled(&check, 1, true).await;

    endpoint.kill();
    let took = until_answer(&server, SECONDARY, Duration::from_secs(10));
    eprintln!("killed primary: secondary answered after {took:?}");
    // interval 1 s × threshold 2 + 1 s
    assert!(took <= Duration::from_secs(3), "failover took {took:?}");
    let status = s.status(&check).await;
    assert!(!status.healthy);
    assert_eq!(status.checkers.len(), 1);
    assert_eq!(status.checkers[0].last_error.as_deref(), Some("connection refused"));
    let history = s.store.health_check_history(&s.account, &check, 10).await.unwrap();
    assert_eq!((history[0].healthy, history[0].reason.as_deref()), (false, Some("connection refused")));

    endpoint.launch();
    let took = until_answer(&server, PRIMARY, Duration::from_secs(10));
    assert!(took <= Duration::from_secs(4), "return took {took:?}");
    assert!(s.status(&check).await.healthy);
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_primary_fails_over_through_the_timeout() {
    let s = setup().await;
    let endpoint = Endpoint::start("127.0.0.22");
    let check = s.create(&endpoint.spec(CheckType::Http)).await;
    s.failover(&check).await;
    let server = Signpost::serve(&s.db, &[]);
    s.settled(&check, 1, true).await;
    assert_eq!(answer(&server), [PRIMARY]);

    endpoint.freeze();
    let took = until_answer(&server, SECONDARY, Duration::from_secs(10));
    eprintln!("frozen primary: secondary answered after {took:?}");
    // interval 1 s × (threshold 2 + 1) + 1 s: each probe waits for its timeout.
    assert!(took <= Duration::from_secs(4), "failover took {took:?}");
    let status = s.status(&check).await;
    let error = status.checkers[0].last_error.clone().unwrap_or_default();
    assert!(error.starts_with("timeout"), "{error}");

    endpoint.thaw();
    until_answer(&server, PRIMARY, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn tcp_check_follows_a_listener() {
    let s = setup().await;
    let listener = TcpEndpoint::start("127.0.0.23:0".parse().unwrap());
    let spec = HealthCheckSpec {
        ip: Some("127.0.0.23".into()),
        port: Some(i64::from(listener.addr.port())),
        request_interval: Some(1),
        failure_threshold: Some(2),
        ..HealthCheckSpec::new(CheckType::Tcp)
    };
    let check = s.create(&spec).await;
    s.failover(&check).await;
    let server = Signpost::serve(&s.db, &[]);
    let status = s.settled(&check, 1, true).await;
    assert!(status.checkers[0].latency_ms.is_some_and(|ms| ms < 1000.0), "{status:?}");
    listener.close();
    let took = until_answer(&server, SECONDARY, Duration::from_secs(10));
    assert!(took <= Duration::from_secs(3), "failover took {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_body_fails_the_search_string() {
    let s = setup().await;
    let endpoint = Endpoint::start("127.0.0.24");
    endpoint.set("body", "service: up\n");
    let spec =
        HealthCheckSpec { search_string: Some("service: up".into()), ..endpoint.spec(CheckType::Http) };
    let check = s.create(&spec).await;
    s.failover(&check).await;
    let server = Signpost::serve(&s.db, &[]);
    s.settled(&check, 1, true).await;
    assert_eq!(answer(&server), [PRIMARY]);

    endpoint.set("body", "service: degraded\n");
    until_answer(&server, SECONDARY, Duration::from_secs(10));
    let status = s.status(&check).await;
    let error = status.checkers[0].last_error.clone().unwrap_or_default();
    assert!(error.starts_with("string not found"), "{error}");

    // Only the first 5,120 bytes count.
    endpoint.set("body", &format!("{}service: up", "x".repeat(5_120)));
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(answer(&server), [SECONDARY], "the string past 5,120 bytes is not seen");
    endpoint.set("body", &format!("{}service: up", "x".repeat(5_100)));
    until_answer(&server, PRIMARY, Duration::from_secs(10));

    // A 2xx/3xx status is needed as well.
    endpoint.set("status", "503");
    until_answer(&server, SECONDARY, Duration::from_secs(10));
    assert_eq!(s.status(&check).await.checkers[0].last_error.as_deref(), Some("status 503"));
    endpoint.set("status", "302");
    until_answer(&server, PRIMARY, Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_calculated_check_follows_its_children() {
    let s = setup().await;
    let mut a = Endpoint::start("127.0.0.25");
    let b = Endpoint::start("127.0.0.26");
    let child_a = s.create(&a.spec(CheckType::Http)).await;
    let child_b = s.create(&b.spec(CheckType::Http)).await;
    let calc = |threshold: i64| HealthCheckSpec {
        child_health_checks: Some(vec![child_a.clone(), child_b.clone()]),
        health_threshold: Some(threshold),
        ..HealthCheckSpec::new(CheckType::Calculated)
    };
    let both = s.create(&calc(2)).await;
    let either = s.create(&calc(1)).await;
    s.failover(&both).await;
    let server = Signpost::serve(&s.db, &[]);
    s.settled(&child_a, 1, true).await;
    s.settled(&child_b, 1, true).await;
    assert_eq!(answer(&server), [PRIMARY]);

    a.kill();
    until_answer(&server, SECONDARY, Duration::from_secs(10));
    let status = s.status(&both).await;
    assert!(!status.healthy && status.checkers.is_empty(), "{status:?}");
    assert!(s.status(&either).await.healthy, "one of two is enough for threshold 1");

    a.launch();
    until_answer(&server, PRIMARY, Duration::from_secs(10));

    // A child in use cannot be deleted; the parent can, then the child.
    let refused = s.store.delete_health_check(&s.account, &child_b).await.unwrap_err();
    assert!(matches!(refused, StoreError::Conflict { .. }), "{refused}");
    s.store.delete_health_check(&s.account, &either).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_checkers_that_disagree_give_the_quorum_verdict() {
    let s = setup().await;
    let endpoint = Endpoint::start("127.0.0.27");
    // The endpoint answers 503 to the second checker, which probes from 127.0.0.2.
    endpoint.set("deny", "127.0.0.2");
    let check = s.create(&endpoint.spec(CheckType::Http)).await;
    s.failover(&check).await;
    let server = Signpost::serve(&s.db, &[]);
    let mut eu = CheckerProcess::start(
        &s.db,
        &["--region", "eu-west-1", "--allow-private-targets", "--source-addr", "127.0.0.2"],
    );
    s.settled(&check, 1, true).await;
    let status = s.settled(&check, 1, false).await;
    let regions: Vec<(&str, bool)> = status.checkers.iter().map(|c| (c.region.as_str(), c.healthy)).collect();
    assert_eq!(regions, [("eu-west-1", false), ("local", true)]);
    assert!(status.healthy, "1 of 2 checkers is more than 18%");
    assert_eq!(answer(&server), [PRIMARY]);
    // With a stricter share, the same observations give another verdict.
    let strict = s.store.health_verdicts(0.5, DEFAULT_CHECKER_LIVENESS).await.unwrap();
    assert!(!strict[&check], "1 of 2 is not more than 50%");

    // Both see it down → unhealthy.
    endpoint.set("deny", "127.0.0.1 127.0.0.2");
    until_answer(&server, SECONDARY, Duration::from_secs(10));

    // Only eu-west-1 sees it up → healthy again.
    endpoint.set("deny", "127.0.0.1");
    until_answer(&server, PRIMARY, Duration::from_secs(10));
    let status = s.status(&check).await;
    let local = status.checkers.iter().find(|c| c.region == "local").unwrap();
    assert_eq!((local.healthy, local.last_error.as_deref()), (false, Some("status 503")));
    let eu_status = status.checkers.iter().find(|c| c.region == "eu-west-1").unwrap();
    assert!(eu_status.healthy && eu_status.latency_ms.is_some() && eu_status.last_error.is_none());

    // The status shape clients rely on.
    let json = serde_json::to_value(&status).unwrap();
    assert_eq!(json["id"], check.as_str());
    assert!(json["override"].is_null());
    for key in ["region", "healthy", "lastCheckedAt", "latencyMs", "lastError"] {
        assert!(json["checkers"][0].get(key).is_some(), "{key} in {json}");
    }

    // The healthy-seeing checker stops: it stops counting at once.
    eu.terminate();
    until_answer(&server, SECONDARY, Duration::from_secs(5));
    assert_eq!(s.status(&check).await.checkers.len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn private_targets_are_refused_unless_allowed() {
    let s = setup().await;
    let endpoint = Endpoint::start("127.0.0.28");
    let spec = endpoint.spec(CheckType::Http);
    // The API's validation: a clear error naming the field.
    let err = s.store.create_health_check(&s.account, &spec, &TargetPolicy::STRICT).await.unwrap_err();
    match err {
        StoreError::Invalid(e) => {
            assert_eq!(e.field, "ip");
            assert!(e.message.contains("loopback address"), "{}", e.message);
        }
        other => panic!("{other}"),
    }
    let metadata = HealthCheckSpec { ip: Some("169.254.169.254".into()), ..spec.clone() };
    assert!(s.store.create_health_check(&s.account, &metadata, &TargetPolicy::STRICT).await.is_err());
    let localhost =
        HealthCheckSpec { ip: None, host: Some("localhost".into()), ..HealthCheckSpec::new(CheckType::Http) };
    assert!(s.store.create_health_check(&s.account, &localhost, &TargetPolicy::STRICT).await.is_err());

    // Stored anyway (an operator allowed it at the API), a strict checker
    // refuses to probe it, says why, and does not count.
    let check = s.create(&spec).await;
    let strict = CheckerProcess::start(&s.db, &["--region", "strict"]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = s.status(&check).await;
        if !status.checkers.is_empty() {
            break status;
        }
        assert!(Instant::now() < deadline, "the strict checker never reported:\n{}", strict.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let error = status.checkers[0].last_error.clone().unwrap_or_default();
    assert!(error.starts_with("target refused") && error.contains("loopback"), "{error}");
    assert!(!status.checkers[0].settled && status.healthy);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(endpoint.requests().is_empty(), "a refused target got requests");

    // With the flag, the same target is probed.
    let _allowed = CheckerProcess::start(&s.db, &["--region", "lab", "--allow-private-targets"]);
    s.settled(&check, 1, true).await;
    assert!(!endpoint.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_override_forces_the_verdict_at_once() {
    let s = setup().await;
    let endpoint = Endpoint::start("127.0.0.29");
    let check = s.create(&endpoint.spec(CheckType::Http)).await;
    s.failover(&check).await;
    let server = Signpost::serve(&s.db, &[]);
    s.settled(&check, 1, true).await;
    assert_eq!(answer(&server), [PRIMARY]);
    s.store.set_health_check_override(&s.account, &check, Some(OverrideState::Unhealthy)).await.unwrap();
    let took = until_answer(&server, SECONDARY, Duration::from_secs(5));
    assert!(took <= Duration::from_secs(1), "override took {took:?}");
    let status = s.status(&check).await;
    assert_eq!((status.healthy, status.override_state), (false, Some(OverrideState::Unhealthy)));
    assert!(status.checkers[0].healthy, "the checker still sees it healthy");
    s.store.set_health_check_override(&s.account, &check, None).await.unwrap();
    until_answer(&server, PRIMARY, Duration::from_secs(5));
    // Another account sees nothing.
    let other = s.store.ensure_account("other").await.unwrap();
    let missing = s.store.set_health_check_override(&other, &check, None).await.unwrap_err();
    assert!(matches!(missing, StoreError::NotFound(_)));
}

#[tokio::test(flavor = "multi_thread")]
async fn https_passes_without_certificate_validation() {
    if !have("openssl") {
        assert!(std::env::var_os("CI").is_none(), "CI must install openssl (a self-signed certificate)");
        eprintln!("not run outside CI: no openssl to make a self-signed certificate");
        return;
    }
    let s = setup().await;
    let cert = temp_path("cert.pem");
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=expired.invalid"])
        .arg("-keyout")
        .arg(&cert)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let endpoint = Endpoint::start_with("127.0.0.30", Some(cert.clone()));
    endpoint.set("body", "tls ok");
    let spec = HealthCheckSpec {
        host: Some("www.health.example".into()),
        path: Some("status".into()),
        search_string: Some("tls ok".into()),
        ..endpoint.spec(CheckType::Https)
    };
    let check = s.create(&spec).await;
    let _server = Signpost::serve(&s.db, &[]);
    let status = s.settled(&check, 1, true).await;
    assert!(status.healthy && status.checkers[0].last_error.is_none(), "{status:?}");
    let _ = std::fs::remove_file(cert);
}

#[tokio::test(flavor = "multi_thread")]
async fn checks_are_listed_with_a_cursor_and_created_idempotently() {
    let s = setup().await;
    let spec = |i: usize| HealthCheckSpec {
        ip: Some("8.8.8.8".into()),
        port: Some(80),
        caller_reference: Some(format!("ref-{i}")),
        disabled: Some(true),
        ..HealthCheckSpec::new(CheckType::Tcp)
    };
    let mut ids = Vec::new();
    for i in 0..5 {
        let created = s.store.create_health_check(&s.account, &spec(i), &TargetPolicy::STRICT).await.unwrap();
        assert!(created.created);
        ids.push(created.check.id);
    }
    let again = s.store.create_health_check(&s.account, &spec(0), &TargetPolicy::STRICT).await.unwrap();
    assert_eq!((again.created, again.check.id.as_str()), (false, ids[0].as_str()));
    let changed = HealthCheckSpec { port: Some(81), ..spec(0) };
    let conflict =
        s.store.create_health_check(&s.account, &changed, &TargetPolicy::STRICT).await.unwrap_err();
    assert!(matches!(conflict, StoreError::Conflict { ref field, .. } if field == "callerReference"));

    ids.sort();
    let first = s.store.list_health_checks(&s.account, None, 2).await.unwrap();
    assert!(first.more);
    let cursor = first.items.last().unwrap().id.clone();
    let rest = s.store.list_health_checks(&s.account, Some(&cursor), 10).await.unwrap();
    assert!(!rest.more);
    let listed: Vec<String> = first.items.iter().chain(&rest.items).map(|c| c.id.clone()).collect();
    assert_eq!(listed, ids);
    let other = s.store.ensure_account("other").await.unwrap();
    assert!(s.store.list_health_checks(&other, None, 10).await.unwrap().items.is_empty());
    assert!(matches!(s.store.health_check(&other, &ids[0]).await, Err(StoreError::NotFound(_))));

    // A check gating a record set cannot be deleted.
    s.failover(&ids[1]).await;
    let in_use = s.store.delete_health_check(&s.account, &ids[1]).await.unwrap_err();
    assert!(matches!(in_use, StoreError::Conflict { .. }), "{in_use}");
    s.store.delete_health_check(&s.account, &ids[2]).await.unwrap();
    assert!(matches!(s.store.delete_health_check(&s.account, &ids[2]).await, Err(StoreError::NotFound(_))));
    let json = serde_json::to_value(s.store.health_check(&s.account, &ids[0]).await.unwrap()).unwrap();
    assert_eq!((json["type"].as_str(), json["port"].as_u64()), (Some("TCP"), Some(80)));
    assert_eq!((json["requestInterval"].as_u64(), json["disabled"].as_bool()), (Some(30), Some(true)));
}
