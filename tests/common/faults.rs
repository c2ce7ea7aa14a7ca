//! Fault-injection kit of the end-to-end tests: a private PostgreSQL cluster
//! that a test may stop, kill and restart; `signpost` processes that can be
//! SIGKILLed, SIGTERMed and restarted on the same address; a UDP canary that
//! checks every answer; and the figures a scenario reports.
// Compiled into several test binaries: not each uses every helper, and its
// `pub` items are the tests' shared surface, not a crate's API.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use signpost_pgboot::{ClusterOptions, Listen, PrivateCluster, StopMode};

use crate::common::{answer_data, edns, query_message, rcode_name};

// ---------------------------------------------------------------------------
// A private PostgreSQL cluster
// ---------------------------------------------------------------------------

/// A PostgreSQL cluster of one test (signpost-pgboot's [`PrivateCluster`]):
/// its own data directory under a temporary directory, reachable only over
/// a Unix socket in that directory (`listen_addresses=''`), so stopping it
/// with `-m immediate` leaves no TCP port in TIME_WAIT to block the restart
/// (the probe's trap with a port in the ephemeral range). Stopped and
/// removed on drop.
pub struct PgCluster {
    dir: PathBuf,
    cluster: PrivateCluster,
}

impl PgCluster {
    /// `initdb` and start a fresh cluster (run as the `postgres` OS user when
    /// the tests run as root, as PostgreSQL refuses to run as root).
    pub fn start() -> PgCluster {
        // Short: the socket path must fit in sun_path.
        let dir = PathBuf::from(format!("/tmp/sp-pg-{:08x}", rand::random::<u32>()));
        let options = ClusterOptions {
            listen: Listen::SocketOnly,
            // fsync off only guards against a crash of the machine, which no
            // scenario makes; commits still reach the kernel before the
            // client hears of them, so killed servers lose nothing committed.
            settings: vec![("fsync".into(), "off".into()), ("max_connections".into(), "200".into())],
            no_sync: true,
        };
        let cluster = block_on(PrivateCluster::start(&dir, options))
            .expect("a private PostgreSQL cluster (apt-get install postgresql)");
        PgCluster { dir, cluster }
    }

    /// The URL of database `name` on this cluster (over its socket).
    pub fn url(&self, name: &str) -> String {
        self.cluster.url(name)
    }

    /// `pg_ctl start` (waits until it accepts connections).
    pub fn resume(&self) {
        if let Err(e) = block_on(self.cluster.resume()) {
            let tail = std::fs::read_to_string(self.cluster.log_file()).unwrap_or_default();
            panic!("pg_ctl start: {e}\n{tail}");
        }
    }

    /// `pg_ctl stop -m MODE` (`fast`: sessions are ended and it shuts down
    /// cleanly; `immediate`: every process quits at once, crash recovery on
    /// the next start).
    pub fn stop(&self, mode: &str) {
        let mode = match mode {
            "fast" => StopMode::Fast,
            "immediate" => StopMode::Immediate,
            other => panic!("no stop mode {other:?} (fast or immediate)"),
        };
        block_on(self.cluster.stop(mode)).expect("pg_ctl stop");
    }

    /// SIGKILL to the postmaster and every backend (a crash of the machine's
    /// database as the clients see it), then waits for them to be gone.
    pub fn kill(&self) {
        let pid_file =
            std::fs::read_to_string(self.cluster.data_dir().join("postmaster.pid")).expect("postmaster.pid");
        let postmaster: u32 = pid_file.lines().next().and_then(|l| l.trim().parse().ok()).expect("a pid");
        let mut pids = children_of(postmaster);
        pids.push(postmaster);
        for pid in &pids {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        let gone = crate::common::wait_until(Duration::from_secs(10), || {
            pids.iter().all(|pid| !Path::new(&format!("/proc/{pid}")).exists() || is_zombie(*pid))
        });
        assert!(gone.is_some(), "the cluster's processes did not die");
        // pg_ctl refuses to start over a stale pid file only when the pid lives.
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if self.cluster.data_dir().join("postmaster.pid").exists() {
            let _ = block_on(self.cluster.stop(StopMode::Immediate));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `future` to completion on a runtime of its own, on another thread
/// (the scenarios are plain `#[test]`s, and a drop may happen anywhere).
fn block_on<F>(future: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime")
                    .block_on(future)
            })
            .join()
            .expect("the cluster thread")
    })
}

/// Process ids whose parent is `parent`.
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .map(|(_, rest)| rest.split_whitespace().nth(1) == Some(&parent.to_string()[..]))
                })
                .unwrap_or(false)
        })
        .collect()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with('Z')))
        .unwrap_or(true)
}

// ---------------------------------------------------------------------------
// signpost processes that can be killed and restarted
// ---------------------------------------------------------------------------

/// A `signpost` process started without waiting; its stdout lines are
/// collected so the test can wait for `dns listening on` with its own bound.
pub struct Proc {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    log: PathBuf,
    /// The DNS address it reported, once it did.
    pub dns: Option<SocketAddr>,
    /// The API address it reported, once it did.
    pub api: Option<SocketAddr>,
    /// When it was spawned.
    pub started: Instant,
}

impl Proc {
    /// Spawns `signpost ARGS` with `DATABASE_URL=url`.
    pub fn spawn(url: &str, args: &[String]) -> Proc {
        let log = crate::common::temp_path("proc.log");
        let stderr = std::fs::File::create(&log).expect("log file");
        let mut child = Command::new(env!("CARGO_BIN_EXE_signpost"))
            .args(args)
            .env("DATABASE_URL", url)
            .env("RUST_LOG", "info,sqlx=warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start signpost");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Proc { child: Some(child), lines, log, dns: None, api: None, started: Instant::now() }
    }

    /// `signpost dns` on `addr` (port 0 at first; the same address on a restart).
    pub fn dns(url: &str, addr: &str, state_dir: &Path, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = vec!["dns".into(), "--dns-addr".into(), addr.into()];
        args.extend(["--state-dir".into(), state_dir.display().to_string()]);
        args.extend(extra.iter().map(|s| s.to_string()));
        Proc::spawn(url, &args)
    }

    /// Waits up to `limit` for the listening lines asked for; false if they
    /// did not come (the process is left running).
    pub fn wait_listening(&mut self, need_dns: bool, need_api: bool, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while (need_dns && self.dns.is_none()) || (need_api && self.api.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = self.lines.recv_timeout(left) else { return false };
            if let Some(addr) = line.strip_prefix("dns listening on ") {
                self.dns = addr.trim().parse().ok();
            }
            if let Some(addr) = line.strip_prefix("api listening on ") {
                self.api = addr.trim().parse().ok();
            }
        }
        true
    }

    /// Like [`Proc::wait_listening`], panicking with the log when it fails.
    pub fn expect_listening(mut self, need_dns: bool, need_api: bool, limit: Duration) -> Proc {
        if !self.wait_listening(need_dns, need_api, limit) {
            panic!("signpost did not start listening within {limit:?}:\n{}", self.log());
        }
        self
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// What it logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL and reap.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM; waits up to `limit` for the exit. Returns the exit status and
    /// how long it took, or None (then the process was SIGKILLed).
    pub fn terminate(&mut self, limit: Duration) -> Option<(ExitStatus, Duration)> {
        let child = self.child.as_mut()?;
        let sent = Instant::now();
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        while sent.elapsed() < limit {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some((status, sent.elapsed()));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

// ---------------------------------------------------------------------------
// The canary
// ---------------------------------------------------------------------------

/// What one canary query got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The expected records.
    Correct,
    /// Another answer: other data, NXDOMAIN, NODATA (a promise broken).
    Wrong(String),
    /// SERVFAIL or REFUSED: no answer, but no false one either.
    Error(String),
    /// No reply within the timeout.
    Lost,
}

/// One query of the canary.
#[derive(Debug, Clone)]
pub struct Probe {
    /// When it was sent.
    pub sent: Instant,
    /// Time to the reply, when there was one.
    pub latency: Option<Duration>,
    /// What came back.
    pub outcome: Outcome,
}

/// The names the canary asks for and the answers it expects:
/// `c{i}.{zone}` A `198.51.100.{i+1}`.
pub fn canary_records(zone: &str, count: usize) -> Vec<(String, String)> {
    (0..count).map(|i| (format!("c{i}.{zone}"), format!("198.51.100.{}", i + 1))).collect()
}

/// A UDP client asking `rate` queries per second in turn for known names,
/// checking every answer, until stopped.
pub struct Canary {
    stop: Arc<AtomicBool>,
    probes: Arc<Mutex<Vec<Probe>>>,
    /// Replies that came after their query timed out (answered, so counted).
    late: Arc<Mutex<u64>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Canary {
    /// Starts asking `server` (from 127.0.0.1) at `rate`/s with a `timeout` per query.
    pub fn start(
        server: SocketAddr,
        expected: Vec<(String, String)>,
        rate: u32,
        timeout: Duration,
    ) -> Canary {
        let stop = Arc::new(AtomicBool::new(false));
        let probes = Arc::new(Mutex::new(Vec::new()));
        let late = Arc::new(Mutex::new(0u64));
        let (stop2, probes2, late2) = (stop.clone(), probes.clone(), late.clone());
        let handle = std::thread::spawn(move || {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").expect("canary socket");
            let period = Duration::from_secs_f64(1.0 / f64::from(rate.max(1)));
            let mut next = Instant::now();
            let mut i = 0usize;
            let mut buf = vec![0u8; 4096];
            while !stop2.load(Ordering::SeqCst) {
                let now = Instant::now();
                if now < next {
                    std::thread::sleep(next - now);
                }
                next += period;
                if next < Instant::now() {
                    next = Instant::now();
                }
                let (name, want) = &expected[i % expected.len()];
                i += 1;
                let mut message = query_message(name, RecordType::A, Some(edns(1232)));
                let id: u16 = rand::random();
                message.metadata.id = id;
                let bytes = message.to_vec().expect("encode");
                let sent = Instant::now();
                let _ = socket.send_to(&bytes, server);
                let outcome = loop {
                    let left = timeout.saturating_sub(sent.elapsed());
                    if left.is_zero() {
                        break None;
                    }
                    let _ = socket.set_read_timeout(Some(left));
                    match socket.recv(&mut buf) {
                        Ok(n) => match Message::from_vec(&buf[..n]) {
                            Ok(reply) if reply.metadata.id == id => break Some(reply),
                            _ => *late2.lock().expect("late") += 1,
                        },
                        Err(_) => break None,
                    }
                };
                let probe = match outcome {
                    None => Probe { sent, latency: None, outcome: Outcome::Lost },
                    Some(reply) => {
                        let latency = Some(sent.elapsed());
                        let rcode = rcode_name(&reply);
                        let data = answer_data(&reply);
                        let outcome = if rcode == "NOERROR" && data == [want.clone()] {
                            Outcome::Correct
                        } else if rcode == "SERVFAIL" || rcode == "REFUSED" {
                            Outcome::Error(rcode)
                        } else {
                            Outcome::Wrong(format!("{name}: {rcode} {data:?}"))
                        };
                        Probe { sent, latency, outcome }
                    }
                };
                probes2.lock().expect("probes").push(probe);
            }
        });
        Canary { stop, probes, late, handle: Some(handle) }
    }

    /// Everything so far.
    pub fn probes(&self) -> Vec<Probe> {
        self.probes.lock().expect("probes").clone()
    }

    /// The send time of the first correct answer to a query sent at or after `since`.
    pub fn first_correct_after(&self, since: Instant) -> Option<Instant> {
        self.probes().into_iter().find(|p| p.sent >= since && p.outcome == Outcome::Correct).map(|p| p.sent)
    }

    /// Waits until a query sent at or after `since` is answered correctly;
    /// returns the time from `since` to its sending.
    pub fn wait_correct_after(&self, since: Instant, limit: Duration) -> Option<Duration> {
        crate::common::wait_until(limit, || self.first_correct_after(since).is_some())?;
        self.first_correct_after(since).map(|t| t - since)
    }

    /// Stops it and returns its summary.
    pub fn finish(mut self) -> CanaryReport {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
        CanaryReport::of(&self.probes(), *self.late.lock().expect("late"))
    }
}

impl Drop for Canary {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// The canary's figures.
#[derive(Debug, Clone, Default)]
pub struct CanaryReport {
    /// Queries sent.
    pub sent: u64,
    /// Answered with the expected records.
    pub correct: u64,
    /// Answered with something else (each should be zero).
    pub wrong: u64,
    /// SERVFAIL/REFUSED.
    pub errors: u64,
    /// Not answered in time.
    pub lost: u64,
    /// Replies that came late (after the query's timeout).
    pub late: u64,
    /// 99th percentile of the answered queries' latency.
    pub p99: Duration,
    /// The slowest answer.
    pub max: Duration,
    /// Up to five of the wrong answers.
    pub wrong_examples: Vec<String>,
}

impl CanaryReport {
    fn of(probes: &[Probe], late: u64) -> CanaryReport {
        let mut report = CanaryReport { sent: probes.len() as u64, late, ..CanaryReport::default() };
        let mut latencies: Vec<Duration> = Vec::new();
        for p in probes {
            match &p.outcome {
                Outcome::Correct => report.correct += 1,
                Outcome::Wrong(text) => {
                    report.wrong += 1;
                    if report.wrong_examples.len() < 5 {
                        report.wrong_examples.push(text.clone());
                    }
                }
                Outcome::Error(_) => report.errors += 1,
                Outcome::Lost => report.lost += 1,
            }
            latencies.extend(p.latency);
        }
        latencies.sort();
        if !latencies.is_empty() {
            let index = ((latencies.len() as f64) * 0.99).ceil() as usize;
            report.p99 = latencies[index.clamp(1, latencies.len()) - 1];
            report.max = *latencies.last().expect("one latency");
        }
        report
    }

    /// Queries the server answered with data from the zone (NOERROR or
    /// NXDOMAIN, including late replies): what its usage counters should hold.
    pub fn answered_from_zone(&self) -> u64 {
        self.correct + self.wrong + self.late
    }
}

// ---------------------------------------------------------------------------
// Figures
// ---------------------------------------------------------------------------

/// One row of the reliability table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// The scenario's name.
    pub scenario: String,
    /// The canary's figures.
    pub canary: CanaryReport,
    /// Time to recover (what it measures is in `recovery_of`).
    pub recovery: Option<Duration>,
    /// What `recovery` measures.
    pub recovery_of: String,
    /// Usage counts lost: (answered, counted), when measured.
    pub usage: Option<(u64, u64)>,
    /// Anything else worth a column.
    pub notes: String,
}

impl Row {
    /// Prints the row as a Markdown table line prefixed with `FAULTS-ROW`
    /// (bench/faults.sh collects these lines into the table).
    pub fn print(&self) {
        let c = &self.canary;
        let recovery = match self.recovery {
            Some(d) => format!("{:.2} s ({})", d.as_secs_f64(), self.recovery_of),
            None if self.recovery_of.is_empty() => "-".to_string(),
            None => format!("never ({})", self.recovery_of),
        };
        let usage = match self.usage {
            Some((answered, counted)) => {
                format!("{} of {answered}", answered.saturating_sub(counted))
            }
            None => "-".to_string(),
        };
        println!(
            "FAULTS-ROW | {} | {} | {} | {} | {} | {} | {:.1} ms | {:.1} ms | {} | {} | {} |",
            self.scenario,
            c.sent,
            c.wrong,
            c.lost,
            c.errors,
            c.correct,
            c.p99.as_secs_f64() * 1000.0,
            c.max.as_secs_f64() * 1000.0,
            recovery,
            usage,
            self.notes
        );
    }
}

/// The header bench/faults.sh prints above the rows.
pub const TABLE_HEADER: &str = "| scenario | canary sent | wrong | lost | SERVFAIL/REFUSED | correct | p99 | max | time to recover | usage counts lost | notes |";

/// Collects broken promises so a scenario reports all of them (and its row)
/// before failing.
#[derive(Default)]
pub struct Promises {
    broken: Vec<String>,
}

impl Promises {
    /// Records `what` as broken unless `holds`.
    pub fn check(&mut self, holds: bool, what: impl Into<String>) {
        if !holds {
            self.broken.push(what.into());
        }
    }

    /// Prints the row, then panics listing every broken promise.
    pub fn finish(self, row: &Row) {
        row.print();
        assert!(self.broken.is_empty(), "{}: broken promises:\n- {}", row.scenario, self.broken.join("\n- "));
    }
}
