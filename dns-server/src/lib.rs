//! signpost-dns: the authoritative DNS server. It answers from an in-memory
//! snapshot (swapped atomically with arc-swap), never from the database;
//! the follower keeps the snapshot equal to PostgreSQL's content.

// Issue 10: the services do not unwrap outside unit tests.
#![warn(clippy::unwrap_used)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod follower;
#[doc(hidden)]
pub mod fuzzing;
pub mod listeners;
pub mod metrics;
pub mod persist;
pub mod rrl;
pub mod usage;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use rand::RngCore;
use signpost_core::Snapshot;
use signpost_core::geo::{GeoLocator, NoGeo};
use signpost_store::Store;
use signpost_store::readiness::DatabaseState;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use listeners::{ListenerStats, TcpLimits};
pub use wire::Transport;

/// What every listener shares: the snapshot, health verdicts, counters.
pub struct ServerState {
    /// The zones answered from.
    pub snapshot: ArcSwap<Snapshot>,
    /// Health verdicts by check id (missing: healthy).
    pub health: ArcSwap<HashMap<String, bool>>,
    /// Whether the first snapshot has been loaded (SERVFAIL before).
    pub ready: AtomicBool,
    /// Listener counters.
    pub stats: Arc<ListenerStats>,
    /// Where clients are (a MaxMind database, or nothing).
    pub geo: Arc<dyn GeoLocator>,
    /// Responses by category and code (Prometheus).
    pub metrics: Arc<metrics::DnsMetrics>,
    /// Whether queries are counted for usage (billing) and metrics.
    pub counting: bool,
    /// Response rate limiting of UDP answers (None: off).
    pub rrl: Option<rrl::RateLimiter>,
    /// Bumped after every `replace_snapshot` (the persister watches it).
    generation: AtomicU64,
    /// The change-log position the snapshot reflects (-1: none yet).
    applied_seq: AtomicI64,
    /// Whether the snapshot was loaded from the database (not only from disk).
    following: AtomicBool,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState::new(Arc::new(NoGeo))
    }
}

impl ServerState {
    /// State with this geo database.
    pub fn new(geo: Arc<dyn GeoLocator>) -> Self {
        let stats = Arc::new(ListenerStats::default());
        let metrics = Arc::new(metrics::DnsMetrics::default());
        metrics.watch_listeners(stats.clone());
        ServerState {
            snapshot: ArcSwap::from_pointee(Snapshot::empty()),
            health: ArcSwap::from_pointee(HashMap::new()),
            ready: AtomicBool::new(false),
            stats,
            geo,
            metrics,
            counting: true,
            rrl: None,
            generation: AtomicU64::new(0),
            applied_seq: AtomicI64::new(-1),
            following: AtomicBool::new(false),
        }
    }

    /// Installs a new snapshot and marks the server ready.
    pub fn replace_snapshot(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.ready.store(true, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Records the change-log position the installed snapshot reflects
    /// (called after `replace_snapshot`; the disk copy is labelled with it).
    pub fn note_applied_seq(&self, seq: i64) {
        self.applied_seq.store(seq, Ordering::Release);
    }

    /// The change-log position the snapshot reflects (-1: none yet).
    pub fn applied_seq(&self) -> i64 {
        self.applied_seq.load(Ordering::Acquire)
    }

    /// How many snapshots have been installed.
    pub fn snapshot_generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the server has loaded from the database and follows it
    /// (false while it answers only from its disk copy, or SERVFAIL).
    pub fn is_following(&self) -> bool {
        self.following.load(Ordering::Acquire)
    }

    /// Answers one request (None: drop it).
    pub fn respond<R: RngCore>(
        &self,
        packet: &[u8],
        peer: IpAddr,
        transport: Transport,
        rng: &mut R,
    ) -> Option<Vec<u8>> {
        let snapshot = self.snapshot.load();
        let health = self.health.load();
        if !self.ready.load(Ordering::Acquire) {
            return wire::not_ready(packet);
        }
        let env = wire::QueryEnv { health: health.as_ref(), geo: self.geo.as_ref() };
        let response = wire::handle_request(&snapshot, &env, packet, peer, transport, rng)?;
        if transport == Transport::Udp
            && let Some(rrl) = &self.rrl
        {
            // Limited responses are neither billed nor counted as answered.
            match rrl.decide(peer, response.identity) {
                rrl::Verdict::Send => {}
                rrl::Verdict::Slip => {
                    self.stats.rrl_slipped.fetch_add(1, Ordering::Relaxed);
                    return wire::slipped(&response.bytes);
                }
                rrl::Verdict::Drop => {
                    self.stats.rrl_dropped.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        if self.counting {
            // A query answered for a hosted zone counts (NXDOMAIN and NODATA
            // too); REFUSED and malformed queries have no zone and do not.
            if let Some(usage) = response.zone_usage {
                usage.count(response.category);
            }
            self.metrics.count(response.zone_usage.map(|_| response.category), response.rcode);
        }
        Some(response.bytes)
    }
}

/// Settings of one DNS server.
#[derive(Clone)]
pub struct DnsConfig {
    /// Address for UDP and TCP (port 0: any free port, the same for both).
    pub addr: SocketAddr,
    /// UDP worker threads.
    pub udp_workers: usize,
    /// TCP limits.
    pub tcp: TcpLimits,
    /// Response rate limiting of UDP answers (rate 0: off).
    pub rrl: rrl::RrlConfig,
    /// Id in the heartbeat table.
    pub server_id: String,
    /// Where clients are (a MaxMind database); none: every location unknown.
    pub geo: Option<Arc<dyn GeoLocator>>,
    /// Whether to count queries (usage and metrics).
    pub count_usage: bool,
    /// How often usage deltas are written.
    pub usage_flush_interval: std::time::Duration,
    /// Registry the DNS metrics are registered in.
    pub registry: Option<prometheus::Registry>,
    /// The state directory (`--state-dir`): the disk copy of the snapshot
    /// and spilled usage counts live in its `dns/`; none: nothing on disk.
    pub state_dir: Option<PathBuf>,
    /// Whether the database is migrated yet (the binary migrates in the
    /// background); none: it is. The follower starts once it is `Ready`.
    pub database: Option<watch::Receiver<DatabaseState>>,
}

/// How long `start` waits for the first load while the database is not
/// known to be down (a slow load goes on in the background).
pub const STARTUP_LOAD_WAIT: Duration = Duration::from_secs(10);
/// How long `join` waits for the follower to say goodbye to the database.
const FOLLOWER_STOP_WAIT: Duration = Duration::from_secs(4);

/// Errors starting the DNS server.
#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The first load from the database failed.
    #[error("loading zones failed: {0}")]
    Load(#[from] signpost_store::StoreError),
    /// At shutdown, usage counts could be neither written nor spilled.
    #[error("{queries} counted queries could not be written to the database nor spilled to disk")]
    UsageDropped {
        /// Queries lost.
        queries: u64,
    },
}

/// A running DNS server.
pub struct DnsServer {
    /// The bound address (UDP and TCP).
    pub local_addr: SocketAddr,
    /// Shared state (for tests and metrics).
    pub state: Arc<ServerState>,
    stop_udp: Arc<AtomicBool>,
    udp_threads: Vec<std::thread::JoinHandle<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    follower: tokio::task::JoinHandle<()>,
    persister: Option<tokio::task::JoinHandle<()>>,
    stop_flusher: watch::Sender<bool>,
    flusher: tokio::task::JoinHandle<usage::UsageOutcome>,
}

impl DnsServer {
    /// Binds the sockets and answers at once: from the disk copy in the
    /// state directory if there is one, else SERVFAIL. Loads the zones from
    /// the database and follows the change log in the background until
    /// `shutdown`. Returns once the database's zones are served, or as soon
    /// as the database is known to be unreachable, or after
    /// `STARTUP_LOAD_WAIT`, whichever comes first.
    pub async fn start(
        config: DnsConfig,
        store: Store,
        shutdown: watch::Receiver<bool>,
    ) -> Result<DnsServer, DnsError> {
        let geo: Arc<dyn GeoLocator> = config.geo.clone().unwrap_or_else(|| Arc::new(NoGeo));
        let (udp, tcp) = bind_pair(config.addr).await?;
        let local_addr = udp.local_addr().map_err(|source| DnsError::Bind { addr: config.addr, source })?;
        let mut state = ServerState::new(geo);
        state.counting = config.count_usage;
        state.rrl = (config.rrl.responses_per_second > 0).then(|| rrl::RateLimiter::new(config.rrl));
        if let Some(registry) = &config.registry
            && let Err(e) = registry.register(Box::new(metrics::MetricsCollector(state.metrics.clone())))
        {
            tracing::warn!(error = %e, "DNS metrics not registered");
        }
        let state = Arc::new(state);
        let stop_udp = Arc::new(AtomicBool::new(false));
        let udp_threads =
            listeners::spawn_udp_workers(&udp, state.clone(), config.udp_workers, stop_udp.clone())
                .map_err(|source| DnsError::Bind { addr: local_addr, source })?;
        let tasks =
            vec![tokio::spawn(listeners::serve_tcp(tcp, state.clone(), config.tcp, shutdown.clone()))];
        let usage = Arc::new(usage::UsageRegistry::default());
        let database = store.database_identity();
        let dns_dir = config.state_dir.as_deref().map(persist::dns_dir);
        let snapshot_path = dns_dir.as_ref().map(|d| d.join(persist::SNAPSHOT_FILE));
        if let Some(path) = snapshot_path.clone() {
            restore_disk_copy(path, database.clone(), &state, &usage).await;
        }
        let persister = snapshot_path.map(|path| {
            let persister = persist::Persister::new(path, database, state.clone());
            tokio::spawn(persister.run(shutdown.clone()))
        });
        let (loaded, mut loaded_rx) = watch::channel(false);
        let follower =
            follower::Follower::new(store.clone(), state.clone(), usage.clone(), config.server_id.clone());
        let follower =
            tokio::spawn(load_and_follow(follower, state.clone(), config.database.clone(), loaded, shutdown));
        let (stop_flusher, flusher_stop) = watch::channel(false);
        let flusher = usage::UsageFlusher::new(store, usage, config.server_id.clone(), dns_dir);
        let flusher = tokio::spawn(flusher.run(config.usage_flush_interval, flusher_stop));
        let mut database_state = config.database.clone();
        let database_down = async {
            match database_state.as_mut() {
                // Err: the preparation is over (the database is ready).
                Some(state) => {
                    if state.wait_for(|s| *s == DatabaseState::Unreachable).await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = loaded_rx.wait_for(|loaded| *loaded) => {}
            _ = database_down => tracing::warn!(
                from_disk = state.ready.load(Ordering::Acquire),
                "database unreachable: answering from the disk copy (SERVFAIL without one) until it returns"
            ),
            _ = tokio::time::sleep(STARTUP_LOAD_WAIT) => tracing::warn!("the first load is slow; it goes on in the background"),
        }
        Ok(DnsServer {
            local_addr,
            state,
            stop_udp,
            udp_threads,
            tasks,
            follower,
            persister,
            stop_flusher,
            flusher,
        })
    }

    /// After shutdown was signalled: stops the listeners, waits for the
    /// tasks, then writes the last usage counts (spilling them to the state
    /// directory when the database is unreachable). Fails when counts were
    /// lost.
    pub async fn join(self) -> Result<(), DnsError> {
        self.stop_udp.store(true, Ordering::Relaxed);
        for thread in self.udp_threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = self.stop_flusher.send(true);
        let follower = async {
            let abort = self.follower.abort_handle();
            if tokio::time::timeout(FOLLOWER_STOP_WAIT, self.follower).await.is_err() {
                abort.abort();
            }
        };
        let persister = async {
            if let Some(persister) = self.persister {
                let _ = persister.await;
            }
        };
        let (_, _, outcome) = tokio::join!(follower, persister, self.flusher);
        match outcome {
            Ok(usage::UsageOutcome::Dropped { queries }) => Err(DnsError::UsageDropped { queries }),
            Ok(_) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "the usage flusher failed");
                Err(DnsError::UsageDropped { queries: 0 })
            }
        }
    }
}

/// Serves the snapshot saved in `path`, if there is a usable one.
async fn restore_disk_copy(
    path: PathBuf,
    database: String,
    state: &Arc<ServerState>,
    usage: &Arc<usage::UsageRegistry>,
) {
    let started = std::time::Instant::now();
    let usage = usage.clone();
    let shown = path.display().to_string();
    let read = tokio::task::spawn_blocking(move || persist::read_snapshot(&path, &database, &usage)).await;
    match read {
        Ok(Ok(Some(copy))) => {
            tracing::info!(
                file = %shown, zones = copy.snapshot.zone_count(), seq = copy.seq, took = ?started.elapsed(),
                "answering from the disk copy until the database is loaded"
            );
            state.health.store(Arc::new(copy.health));
            state.replace_snapshot(copy.snapshot);
            state.note_applied_seq(copy.seq);
        }
        Ok(Ok(None)) => tracing::info!(file = %shown, "no disk copy of the snapshot yet"),
        Ok(Err(e)) => tracing::warn!(error = %e, "disk copy of the snapshot ignored"),
        Err(e) => tracing::warn!(error = %e, "reading the disk copy of the snapshot failed"),
    }
}

/// Waits for the database to be migrated, loads every zone (retrying until
/// it works or `shutdown`), then follows the change log.
async fn load_and_follow(
    mut follower: follower::Follower,
    state: Arc<ServerState>,
    mut database: Option<watch::Receiver<DatabaseState>>,
    loaded: watch::Sender<bool>,
    mut shutdown: watch::Receiver<bool>,
) {
    if let Some(database) = database.as_mut() {
        tokio::select! {
            _ = database.wait_for(|s| *s == DatabaseState::Ready) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
    // Count as live (and behind, at the disk copy's position) before the
    // load, which may take long: no change committed meanwhile can be INSYNC
    // while this server still answers from an old copy.
    follower.start_heartbeat(state.applied_seq().max(0));
    loop {
        let loaded = follower.initial_load(&mut shutdown.clone()).await;
        let stopping = *shutdown.borrow();
        match loaded {
            Ok(()) => break,
            Err(_) if stopping => return follower.goodbye().await,
            Err(e) => {
                tracing::error!(error = %e, "loading the zones failed; retrying");
                let stop = tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => false,
                    _ = shutdown.wait_for(|stop| *stop) => true,
                };
                if stop {
                    return follower.goodbye().await;
                }
            }
        }
    }
    state.following.store(true, Ordering::Release);
    let _ = loaded.send(true);
    follower.run(shutdown).await;
}

/// Binds UDP and TCP on the same port (for port 0, retries until both agree).
async fn bind_pair(addr: SocketAddr) -> Result<(std::net::UdpSocket, TcpListener), DnsError> {
    let mut last_error = None;
    for _ in 0..20 {
        let udp = listeners::bind_udp(addr).map_err(|source| DnsError::Bind { addr, source })?;
        let bound = udp.local_addr().map_err(|source| DnsError::Bind { addr, source })?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last_error = Some(e),
            Err(source) => return Err(DnsError::Bind { addr, source }),
        }
    }
    Err(DnsError::Bind {
        addr,
        source: last_error.unwrap_or_else(|| std::io::Error::other("no port free for both UDP and TCP")),
    })
}
