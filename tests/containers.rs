//! End-to-end failover with endpoints that are containers as the kernel
//! knows them (what the users' docker does, without a docker engine): each
//! endpoint is an HTTP server in its own network namespace, on a veth pair
//! into a bridge `sp-br0` (10.77.0.1/24, docker0's shape), and in its own
//! freezer cgroup. A real `signpost serve` probes them over the bridge; DNS
//! fails over when container 1 is paused with the freezer (`docker pause`)
//! and when it is killed, and back when it is thawed and restarted.
//!
//! The whole set-up lives inside namespaces the test makes first:
//! `unshare --net --mount --pid --fork --kill-child` re-executes this test
//! binary (the `container_world` test), so every address is private to the
//! test, no packet can leave the machine even when a step fails, and every
//! process dies with the namespace. PostgreSQL is reached over its Unix
//! socket (a file, visible across network namespaces). The cgroups are made
//! and removed by the outer test, which also thaws them, so nothing is left
//! behind after a failure.
//!
//! Needs root, util-linux (`unshare`), iproute2 (`ip`) and a freezer: cgroup
//! v1's `freezer` controller or cgroup v2's `cgroup.freeze`.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use hickory_proto::rr::RecordType;
use serde_json::json;

/// Set (to the database URL) in the re-executed test that builds the world.
const WORLD_ENV: &str = "SIGNPOST_CONTAINERS_WORLD_DB";
/// The cgroups of the two containers, `:`-separated, and their kind.
const CGROUPS_ENV: &str = "SIGNPOST_CONTAINERS_CGROUPS";
/// Set (to ip:port) in the re-executed test that serves one container's HTTP.
const ENDPOINT_ENV: &str = "SIGNPOST_CONTAINER_ENDPOINT";
/// How long the whole set-up may take.
const WORLD_LIMIT: Duration = Duration::from_secs(90);

const BRIDGE: &str = "sp-br0";
const GATEWAY: &str = "10.77.0.1";
const C1: &str = "10.77.0.11";
const C2: &str = "10.77.0.12";
const PORT: u16 = 8080;
const NAME: &str = "app.containers.test.";

// ---------------------------------------------------------------------------
// Freezer cgroups
// ---------------------------------------------------------------------------

/// A freezer cgroup: v1's `freezer.state` or v2's `cgroup.freeze`.
#[derive(Clone, Debug)]
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Freezer {
    /// Where new freezer cgroups go on this machine: a cgroup v2 hierarchy
    /// mounted at /sys/fs/cgroup; else v1's freezer controller (what docker
    /// uses on a v1 or hybrid host); else the hybrid host's v2 `unified`.
    fn root() -> Option<(PathBuf, &'static str)> {
        let base = Path::new("/sys/fs/cgroup");
        if base.join("cgroup.controllers").exists() {
            return Some((base.to_path_buf(), "v2"));
        }
        if base.join("freezer/freezer.state").exists() || base.join("freezer/cgroup.procs").exists() {
            return Some((base.join("freezer"), "v1"));
        }
        if base.join("unified/cgroup.procs").exists() {
            return Some((base.join("unified"), "v2"));
        }
        None
    }

    fn parse(text: &str) -> Freezer {
        match text.split_once('=') {
            Some(("v1", path)) => Freezer::V1(path.into()),
            Some((_, path)) => Freezer::V2(path.into()),
            None => panic!("bad cgroup spec {text:?}"),
        }
    }

    fn spec(&self) -> String {
        match self {
            Freezer::V1(p) => format!("v1={}", p.display()),
            Freezer::V2(p) => format!("v2={}", p.display()),
        }
    }

    fn path(&self) -> &Path {
        match self {
            Freezer::V1(p) | Freezer::V2(p) => p,
        }
    }

    /// Freezes (true) or thaws every process in it and waits until the kernel says it is done.
    fn set_frozen(&self, frozen: bool) {
        let (file, value) = match self {
            Freezer::V1(_) => ("freezer.state", if frozen { "FROZEN" } else { "THAWED" }),
            Freezer::V2(_) => ("cgroup.freeze", if frozen { "1" } else { "0" }),
        };
        std::fs::write(self.path().join(file), value)
            .unwrap_or_else(|e| panic!("write {value} to {}: {e}", self.path().join(file).display()));
        let done = wait_until(Duration::from_secs(5), || match self {
            Freezer::V1(p) => {
                std::fs::read_to_string(p.join("freezer.state")).is_ok_and(|s| s.trim() == value)
            }
            Freezer::V2(p) => std::fs::read_to_string(p.join("cgroup.events"))
                .is_ok_and(|s| s.lines().any(|l| l == format!("frozen {value}"))),
        });
        assert!(done.is_some(), "{} did not become {value}", self.path().display());
    }

    fn pids(&self) -> Vec<u32> {
        std::fs::read_to_string(self.path().join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }
}

/// The cgroups of one run, made and removed by the outer test.
struct Cgroups {
    base: PathBuf,
    members: Vec<Freezer>,
}

impl Cgroups {
    fn make() -> Cgroups {
        let (root, kind) = Freezer::root().expect(
            "a freezer cgroup hierarchy (cgroup v2 with cgroup.freeze, or the v1 freezer controller) under /sys/fs/cgroup",
        );
        let base = root.join(format!("signpost-containers-{:08x}", rand::random::<u32>()));
        std::fs::create_dir(&base).unwrap_or_else(|e| panic!("create {}: {e}", base.display()));
        let members = ["c1", "c2"]
            .iter()
            .map(|name| {
                let path = base.join(name);
                std::fs::create_dir(&path).unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
                if kind == "v1" { Freezer::V1(path) } else { Freezer::V2(path) }
            })
            .collect();
        Cgroups { base, members }
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for member in &self.members {
            // A frozen process cannot die: thaw first, then kill what is left
            // (only this run's processes can be in its cgroups).
            let _ = std::panic::catch_unwind(|| member.set_frozen(false));
            for pid in member.pids() {
                let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
            }
            wait_until(Duration::from_secs(5), || member.pids().is_empty());
            let _ = std::fs::remove_dir(member.path());
        }
        let _ = std::fs::remove_dir(&self.base);
    }
}

// ---------------------------------------------------------------------------
// The outer test
// ---------------------------------------------------------------------------

/// A URL of the test database over its Unix socket (reachable from inside
/// a network namespace); the TCP URL's port names the socket.
fn socket_url(db: &TestDb) -> String {
    let options = sqlx::postgres::PgConnectOptions::from_str(&db.url).expect("the test database URL");
    let host = options.get_host().to_string();
    let dir = if host.starts_with('/') { host } else { "/var/run/postgresql".to_string() };
    let socket = Path::new(&dir).join(format!(".s.PGSQL.{}", options.get_port()));
    assert!(
        socket.exists(),
        "the test database must be reachable over a Unix socket from inside a network namespace; no {}",
        socket.display()
    );
    format!(
        "postgres:///{}?host={dir}&port={}&user={}",
        options.get_database().unwrap_or("postgres"),
        options.get_port(),
        options.get_username()
    )
}

#[test]
fn containers_fail_over_and_back() {
    for tool in ["unshare", "ip"] {
        assert!(have(tool), "{tool} is needed (apt-get install util-linux iproute2)");
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let db = runtime.block_on(TestDb::new());
    let url = socket_url(&db);
    let cgroups = Cgroups::make();
    let specs: Vec<String> = cgroups.members.iter().map(Freezer::spec).collect();

    let exe = std::env::current_exe().expect("this test binary");
    let mut child = Command::new("unshare")
        .args(["--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc"])
        .arg(&exe)
        .args(["--exact", "container_world", "--ignored", "--nocapture", "--test-threads=1"])
        .env(WORLD_ENV, &url)
        .env(CGROUPS_ENV, specs.join(":"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run unshare");
    let output = collect_output(&mut child);
    let started = Instant::now();
    let status = loop {
        if let Ok(Some(status)) = child.try_wait() {
            break Some(status);
        }
        if started.elapsed() > WORLD_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let text = output.recv_timeout(Duration::from_secs(5)).unwrap_or_default();
    drop(cgroups);
    println!("{text}");
    match status {
        Some(status) => assert!(status.success(), "the container world failed ({status}):\n{text}"),
        None => panic!("the container world did not finish within {WORLD_LIMIT:?}:\n{text}"),
    }
    assert!(text.contains("CONTAINERS-ROW"), "no figures printed:\n{text}");
}

/// Reads a child's stdout and stderr to the end; the text arrives on the channel.
fn collect_output(child: &mut Child) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        let err = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text.push_str(&err.join().unwrap_or_default());
        let _ = tx.send(text);
    });
    rx
}

// ---------------------------------------------------------------------------
// Inside the namespaces
// ---------------------------------------------------------------------------

/// Runs `ip ARGS` (or any command) and panics with its output when it fails.
fn sh(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("run {program}: {e}"));
    assert!(out.status.success(), "{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
}

/// The bridge and the two containers' network namespaces and veth pairs.
fn build_network() {
    sh("ip", &["link", "set", "lo", "up"]);
    sh("ip", &["link", "add", BRIDGE, "type", "bridge"]);
    sh("ip", &["addr", "add", &format!("{GATEWAY}/24"), "dev", BRIDGE]);
    sh("ip", &["link", "set", BRIDGE, "up"]);
    // `ip netns` keeps its handles in /run/netns: a tmpfs of this mount
    // namespace, so nothing appears on the host.
    std::fs::create_dir_all("/run/netns").expect("/run/netns");
    sh("mount", &["-t", "tmpfs", "netns", "/run/netns"]);
    for (name, ip) in [("c1", C1), ("c2", C2)] {
        let host_end = format!("veth-{name}");
        sh("ip", &["netns", "add", name]);
        sh("ip", &["link", "add", &host_end, "type", "veth", "peer", "name", "eth0", "netns", name]);
        sh("ip", &["link", "set", &host_end, "master", BRIDGE, "up"]);
        sh("ip", &["-n", name, "link", "set", "lo", "up"]);
        sh("ip", &["-n", name, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        sh("ip", &["-n", name, "link", "set", "eth0", "up"]);
        sh("ip", &["-n", name, "route", "add", "default", "via", GATEWAY]);
    }
}

/// One container: its namespace, cgroup and HTTP server process.
struct Container {
    name: &'static str,
    ip: &'static str,
    cgroup: Freezer,
    server: Option<Child>,
}

impl Container {
    /// Starts the server inside the container: the shell joins the cgroup,
    /// then execs into the namespace (so the server is in both from its
    /// first instruction, as `docker run` does it).
    fn start(&mut self) {
        let exe = std::env::current_exe().expect("this test binary");
        let script = format!(
            "echo $$ > {}/cgroup.procs && exec ip netns exec {} {} --exact container_endpoint --ignored --nocapture",
            self.cgroup.path().display(),
            self.name,
            exe.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .env(ENDPOINT_ENV, format!("{}:{PORT}", self.ip))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the container's server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("endpoint listening") {
                    let _ = tx.send(());
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(20)).expect("the container's server starts");
        assert!(self.cgroup.pids().contains(&child.id()), "the server is in its cgroup");
        self.server = Some(child);
    }

    /// SIGKILL (`docker kill`).
    fn kill(&mut self) {
        if let Some(mut child) = self.server.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.cgroup.set_frozen(false));
        self.kill();
    }
}

/// One HTTP GET straight to a container; Some(status) when it answered within `wait`.
fn http_get(ip: &str, wait: Duration) -> Option<u16> {
    let addr: SocketAddr = format!("{ip}:{PORT}").parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, wait).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    stream.write_all(b"GET /health HTTP/1.1\r\nHost: c\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text.split(' ').nth(1)?.parse().ok()
}

/// The A records DNS answers for NAME.
fn answer(server: &Signpost) -> Vec<String> {
    answer_data(&ask(server.dns, NAME, RecordType::A))
}

#[test]
#[ignore = "runs inside the namespaces made by containers_fail_over_and_back"]
fn container_world() {
    let url = std::env::var(WORLD_ENV)
        .expect("run through containers_fail_over_and_back, which sets the namespaces up");
    let cgroups: Vec<Freezer> =
        std::env::var(CGROUPS_ENV).expect("the cgroups").split(':').map(Freezer::parse).collect();
    let world = Instant::now();
    build_network();
    let mut c1 = Container { name: "c1", ip: C1, cgroup: cgroups[0].clone(), server: None };
    let mut c2 = Container { name: "c2", ip: C2, cgroup: cgroups[1].clone(), server: None };
    c1.start();
    c2.start();
    assert_eq!(http_get(C1, Duration::from_secs(2)), Some(200), "container 1 answers over the bridge");
    assert_eq!(http_get(C2, Duration::from_secs(2)), Some(200), "container 2 answers over the bridge");

    let zones = RemovedOnDrop(temp_path("no-zones"));
    std::fs::create_dir_all(&zones.0).expect("an empty zones dir");
    let args: Vec<String> = [
        "serve",
        "--dns-addr",
        "127.0.0.1:0",
        "--api-addr",
        "127.0.0.1:0",
        "--zones-dir",
        &zones.0.display().to_string(),
        "--api-rate-limit",
        "0",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let server = Signpost::launch(&url, &args, true, true, &[]);
    let out = Command::new(env!("CARGO_BIN_EXE_signpost"))
        .args(["accounts", "create", "containers"])
        .env("DATABASE_URL", &url)
        .env("RUST_LOG", "warn")
        .output()
        .expect("accounts create");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let key: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    let api = Api { addr: server.api_addr(), key: key["apiKey"].as_str().expect("apiKey").to_string() };

    // The failover pair, through the API: PRIMARY on container 1, SECONDARY on 2.
    let check = |ip: &str| {
        let body = json!({"type": "HTTP", "ip": ip, "port": PORT, "path": "/health", "requestInterval": 1, "failureThreshold": 2});
        let r = api.post("/v1/health-checks", &body);
        assert_eq!(r.status, 201, "{}", r.body);
        r.json()["id"].as_str().expect("a check id").to_string()
    };
    let check1 = check(C1);
    let check2 = check(C2);
    let zone = api.zone("containers.test.");
    let member = |id: &str, ip: &str, role: &str, check: &str| {
        json!({"action": "CREATE", "rrset": {"name": NAME, "type": "A", "ttl": 5, "records": [ip],
            "setIdentifier": id, "failover": role, "healthCheckId": check}})
    };
    let r = api.post(
        &format!("/v1/zones/{zone}/changes"),
        &json!({"changes": [member("one", C1, "PRIMARY", &check1), member("two", C2, "SECONDARY", &check2)]}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let settled = |check: &str, healthy: bool| {
        wait_until(Duration::from_secs(15), || {
            let status = api.get(&format!("/v1/health-checks/{check}/status")).json();
            status["checkers"]
                .as_array()
                .is_some_and(|c| !c.is_empty() && c.iter().all(|c| c["healthy"] == healthy))
        })
    };
    assert!(settled(&check1, true).is_some(), "the checker never saw container 1 healthy:\n{}", server.log());
    let until = |want: &str, what: &str| -> Duration {
        let took = wait_until(Duration::from_secs(15), || answer(&server) == [want.to_string()]);
        took.unwrap_or_else(|| panic!("{what}: DNS never answered {want}:\n{}", server.log()))
    };
    until(C1, "start");

    let last_error = |check: &str| -> String {
        let status = api.get(&format!("/v1/health-checks/{check}/status")).json();
        status["checkers"][0]["lastError"].as_str().unwrap_or("").to_string()
    };
    let mut figures: Vec<(&str, Duration)> = Vec::new();

    // docker pause: the freezer stops every process of the container.
    c1.cgroup.set_frozen(true);
    let paused = Instant::now();
    assert_eq!(http_get(C1, Duration::from_millis(500)), None, "a frozen container does not answer");
    until(C2, "paused");
    figures.push(("pause (freezer) → SECONDARY", paused.elapsed()));
    assert!(last_error(&check1).starts_with("timeout"), "paused: {}", last_error(&check1));

    // docker unpause
    c1.cgroup.set_frozen(false);
    let thawed = Instant::now();
    until(C1, "thawed");
    figures.push(("unpause → PRIMARY", thawed.elapsed()));

    // docker kill
    c1.kill();
    let killed = Instant::now();
    until(C2, "killed");
    figures.push(("kill → SECONDARY", killed.elapsed()));
    assert_eq!(last_error(&check1), "connection refused");

    // docker start
    c1.start();
    let restarted = Instant::now();
    until(C1, "restarted");
    figures.push(("restart → PRIMARY", restarted.elapsed()));
    assert!(settled(&check2, true).is_some(), "container 2 stayed healthy");

    for (what, took) in &figures {
        println!("CONTAINERS-ROW | {what} | {:.2} s |", took.as_secs_f64());
    }
    println!(
        "CONTAINERS-ROW | whole run (network, containers, serve, 4 transitions) | {:.1} s |",
        world.elapsed().as_secs_f64()
    );
    // Route 53's arithmetic with interval 1 s and threshold 2: two failed
    // probes (each up to its 1 s timeout when paused) and the verdict's way
    // to DNS. Generous bounds; the figures above are the measurement.
    for (what, took) in &figures {
        assert!(*took < Duration::from_secs(10), "{what} took {took:?}");
    }
}

/// A temporary directory, removed when dropped (also on a panic).
struct RemovedOnDrop(PathBuf);

impl Drop for RemovedOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The HTTP server of one container: 200 `ok` to every request.
#[test]
#[ignore = "the HTTP server of one container, started by container_world"]
fn container_endpoint() {
    let addr = std::env::var(ENDPOINT_ENV).expect("started by container_world");
    let listener = TcpListener::bind(&addr).unwrap_or_else(|e| panic!("bind {addr}: {e}"));
    println!("endpoint listening on {addr}");
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        std::thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
            let mut buf = [0u8; 2048];
            let mut seen = Vec::new();
            while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => seen.extend_from_slice(&buf[..n]),
                }
            }
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        });
    }
}
