//! signpost-dns: the authoritative DNS server. It answers from an in-memory
//! snapshot (swapped atomically with arc-swap), never from the database;
//! the follower keeps the snapshot equal to PostgreSQL's content.

pub mod follower;
#[doc(hidden)]
pub mod fuzzing;
pub mod listeners;
pub mod metrics;
pub mod rrl;
pub mod usage;
pub mod wire;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use rand::RngCore;
use signpost_core::Snapshot;
use signpost_core::geo::{GeoLocator, NoGeo};
use signpost_store::Store;
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
        }
    }

    /// Installs a new snapshot and marks the server ready.
    pub fn replace_snapshot(&self, snapshot: Snapshot) {
        self.snapshot.store(Arc::new(snapshot));
        self.ready.store(true, Ordering::Release);
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
}

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
    stop_flusher: watch::Sender<bool>,
    flusher: tokio::task::JoinHandle<()>,
}

impl DnsServer {
    /// Binds the sockets, starts answering (SERVFAIL until the first load),
    /// loads the zones and follows the change log until `shutdown`.
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
        let mut tasks =
            vec![tokio::spawn(listeners::serve_tcp(tcp, state.clone(), config.tcp, shutdown.clone()))];
        let usage = Arc::new(usage::UsageRegistry::default());
        let mut follower =
            follower::Follower::new(store.clone(), state.clone(), usage.clone(), config.server_id.clone());
        let mut load_shutdown = shutdown.clone();
        follower.initial_load(&mut load_shutdown).await?;
        tasks.push(tokio::spawn(follower.run(shutdown)));
        let (stop_flusher, flusher_stop) = watch::channel(false);
        let flusher = usage::UsageFlusher::new(store, usage, config.server_id.clone());
        let flusher = tokio::spawn(flusher.run(config.usage_flush_interval, flusher_stop));
        Ok(DnsServer { local_addr, state, stop_udp, udp_threads, tasks, stop_flusher, flusher })
    }

    /// After shutdown was signalled: stops the listeners, waits for the
    /// tasks, then writes the last usage counts.
    pub async fn join(self) {
        self.stop_udp.store(true, Ordering::Relaxed);
        for thread in self.udp_threads {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
        for task in self.tasks {
            let _ = task.await;
        }
        let _ = self.stop_flusher.send(true);
        let _ = self.flusher.await;
    }
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
