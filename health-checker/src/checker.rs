//! The checker service: one scheduling loop holds every check with its
//! hysteresis state, starts probes when they are due (each in its own task,
//! at most `max_concurrent_probes` at once), feeds results through the
//! state machine and hands the states to the writer. Beside it run the
//! check feed, the writer and the heartbeat.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use rand::Rng;
use signpost_store::Store;
use signpost_store::health::{HealthCheck, HealthCheckConfig, Observation, StateFlip, TargetPolicy};
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::feed::{self, FeedEvent};
use crate::probe::{ProbeOutcome, Prober, ProberError};
use crate::schedule::{Schedule, next_due, startup_delay};
use crate::state::Hysteresis;
use crate::writer::{self, WriteItem};

/// How a checker runs.
#[derive(Debug, Clone)]
pub struct CheckerConfig {
    /// The region it reports as (status shows it per checker).
    pub region: String,
    /// Its id in `health_checkers` (default: region, process id and a random suffix).
    pub checker_id: Option<String>,
    /// Local mode (`serve`, `--allow-private-targets`): loopback targets
    /// are allowed unless the installation's stored policy decides.
    pub local_targets: bool,
    /// Probes in flight at once.
    pub max_concurrent_probes: usize,
    /// The source address of probe connections (default: the system's choice).
    pub source_addr: Option<IpAddr>,
    /// Full reload of the checks this often (besides LISTEN/NOTIFY).
    pub poll_interval: Duration,
    /// Heartbeat this often (the DNS servers drop a checker after 60 s without one).
    pub heartbeat_interval: Duration,
    /// Latest states are written at least this often.
    pub flush_interval: Duration,
}

impl CheckerConfig {
    /// Defaults for a checker in `region`.
    pub fn new(region: &str, local_targets: bool) -> Self {
        CheckerConfig {
            region: region.to_string(),
            checker_id: None,
            local_targets,
            max_concurrent_probes: 256,
            source_addr: None,
            poll_interval: Duration::from_secs(15),
            heartbeat_interval: Duration::from_secs(5),
            flush_interval: Duration::from_secs(1),
        }
    }
}

/// Errors starting a checker.
#[derive(Debug, thiserror::Error)]
pub enum CheckerError {
    /// The prober could not be set up.
    #[error(transparent)]
    Prober(#[from] ProberError),
    /// The region is empty or too long.
    #[error("a region is 1 to 64 characters")]
    Region,
}

/// A running checker.
pub struct Checker {
    /// Its id in `health_checkers`.
    pub id: String,
    task: JoinHandle<()>,
}

impl Checker {
    /// Starts probing every check in the database until `shutdown` turns
    /// true; then the last states are written and the checker removes its
    /// row (it stops counting at once).
    pub async fn start(
        store: Store,
        config: CheckerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Checker, CheckerError> {
        if config.region.is_empty() || config.region.len() > 64 {
            return Err(CheckerError::Region);
        }
        // The stored policy, in this process's mode; until it can be read,
        // the built-in default (the same as the migration's row).
        let policy = store.target_policy().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "health checker: reading the target policy failed; using the default");
            TargetPolicy::DEFAULT
        });
        let prober = Arc::new(Prober::new(policy.in_mode(config.local_targets), config.source_addr)?);
        let id = config.checker_id.clone().unwrap_or_else(|| {
            format!("{}-{}-{:08x}", config.region, std::process::id(), rand::random::<u32>())
        });
        if let Err(e) = store.checker_heartbeat(&id, &config.region).await {
            tracing::warn!(error = %e, "health checker: first heartbeat failed; will retry");
        }
        let task = tokio::spawn(run(store, config, id.clone(), prober, shutdown));
        Ok(Checker { id, task })
    }

    /// Waits until the checker has stopped.
    pub async fn join(self) {
        let _ = self.task.await;
    }
}

/// What the loop knows of one check.
struct Entry {
    config: Arc<HealthCheckConfig>,
    state: Hysteresis,
    generation: u64,
    due: Instant,
    in_flight: bool,
    /// A due time passed while a probe was in flight: probe again on its result.
    owed: bool,
}

/// A finished probe.
struct ProbeDone {
    id: String,
    generation: u64,
    checked_at: DateTime<Utc>,
    outcome: ProbeOutcome,
}

struct Loop {
    entries: HashMap<String, Entry>,
    schedule: Schedule,
    next_generation: u64,
    prober: Arc<Prober>,
    permits: Arc<Semaphore>,
    results: mpsc::UnboundedSender<ProbeDone>,
    writes: mpsc::UnboundedSender<WriteItem>,
    loaded: bool,
    local_targets: bool,
}

async fn run(
    store: Store,
    config: CheckerConfig,
    id: String,
    prober: Arc<Prober>,
    mut shutdown: watch::Receiver<bool>,
) {
    tracing::info!(checker = %id, region = %config.region, local_targets = config.local_targets, "health checker started");
    let (feed_tx, mut feed_rx) = mpsc::channel(64);
    let feed = tokio::spawn(feed::run(store.clone(), config.poll_interval, feed_tx, shutdown.clone()));
    let (write_tx, write_rx) = mpsc::unbounded_channel();
    let writer = tokio::spawn(writer::run(
        store.clone(),
        id.clone(),
        config.region.clone(),
        config.flush_interval,
        write_rx,
    ));
    let heartbeat = tokio::spawn(heartbeat(
        store.clone(),
        id.clone(),
        config.region.clone(),
        config.heartbeat_interval,
        shutdown.clone(),
    ));
    let (results_tx, mut results_rx) = mpsc::unbounded_channel();
    let mut state = Loop {
        entries: HashMap::new(),
        schedule: Schedule::new(),
        next_generation: 1,
        prober,
        permits: Arc::new(Semaphore::new(config.max_concurrent_probes.max(1))),
        results: results_tx,
        writes: write_tx,
        loaded: false,
        local_targets: config.local_targets,
    };
    loop {
        let wake = state.schedule.next_at().unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            Some(done) = results_rx.recv() => state.finished(done),
            Some(event) = feed_rx.recv() => state.apply(event),
            _ = tokio::time::sleep_until(wake) => state.fire(Instant::now()),
        }
    }
    drop(state);
    let _ = feed.await;
    let _ = writer.await;
    let _ = heartbeat.await;
    if let Err(e) = store.checker_gone(&id).await {
        tracing::warn!(error = %e, "health checker: removing its row failed (it stops counting after 60 s)");
    }
    tracing::info!(checker = %id, "health checker stopped");
}

async fn heartbeat(
    store: Store,
    id: String,
    region: String,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tick.tick() => {
                if let Err(e) = store.checker_heartbeat(&id, &region).await {
                    tracing::warn!(error = %e, "health checker heartbeat failed");
                }
            }
        }
    }
}

impl Loop {
    /// Applies a change to the set of checks.
    fn apply(&mut self, event: FeedEvent) {
        match event {
            FeedEvent::All(checks) => {
                let startup = !self.loaded;
                self.loaded = true;
                let keep: std::collections::HashSet<&str> = checks.iter().map(|c| c.id.as_str()).collect();
                self.entries.retain(|id, _| keep.contains(id.as_str()));
                for check in checks {
                    self.upsert(check, startup);
                }
            }
            FeedEvent::Upsert(check) => self.upsert(*check, false),
            FeedEvent::Removed(id) => {
                self.entries.remove(&id);
            }
            // The full reload that follows judges every check again.
            FeedEvent::Policy(policy) => self.prober.set_policy(policy.in_mode(self.local_targets)),
        }
    }

    /// Adds a check (probed at once, or spread over the interval at
    /// startup), replaces a changed one (its state starts over), drops a
    /// disabled one.
    fn upsert(&mut self, check: HealthCheck, startup: bool) {
        if check.config.disabled || check.config.check_type == signpost_store::health::CheckType::Calculated {
            self.entries.remove(&check.id);
            return;
        }
        // Judged before the unchanged shortcut: a check probed until now is
        // dropped when the installation's policy stops allowing it.
        if let Some(refusal) = self.prober.refusal(&check.config) {
            // Not probed; the status shows why. The row does not count.
            tracing::warn!(check = %check.id, reason = %refusal, "health check not probed");
            self.entries.remove(&check.id);
            let observation = Observation {
                check_id: check.id.clone(),
                healthy: false,
                settled: false,
                checked_at: Utc::now(),
                latency_ms: None,
                last_error: Some(refusal),
            };
            let _ = self.writes.send(WriteItem { observation, flip: None, announce: false });
            return;
        }
        if self.entries.get(&check.id).is_some_and(|e| *e.config == check.config) {
            return;
        }
        let interval = Duration::from_secs(u64::from(check.config.request_interval.max(1)));
        let delay =
            if startup { startup_delay(interval, rand::rng().random::<f64>()) } else { Duration::ZERO };
        let due = Instant::now() + delay;
        let generation = self.next_generation;
        self.next_generation += 1;
        self.schedule.push(&check.id, generation, due);
        self.entries.insert(
            check.id.clone(),
            Entry {
                config: Arc::new(check.config),
                state: Hysteresis::new(),
                generation,
                due,
                in_flight: false,
                owed: false,
            },
        );
    }

    /// Starts the probes that are due and schedules their next ones.
    fn fire(&mut self, now: Instant) {
        for (id, generation, _) in self.schedule.pop_due(now) {
            let Some(entry) = self.entries.get_mut(&id) else { continue };
            if entry.generation != generation {
                continue;
            }
            let interval = Duration::from_secs(u64::from(entry.config.request_interval.max(1)));
            entry.due = next_due(entry.due, interval, now);
            self.schedule.push(&id, generation, entry.due);
            if entry.in_flight {
                entry.owed = true;
            } else {
                self.start_probe(&id);
            }
        }
    }

    fn start_probe(&mut self, id: &str) {
        let Some(entry) = self.entries.get_mut(id) else { return };
        entry.in_flight = true;
        entry.owed = false;
        let config = entry.config.clone();
        let generation = entry.generation;
        let prober = self.prober.clone();
        let permits = self.permits.clone();
        let results = self.results.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            let checked_at = Utc::now();
            let outcome = prober.probe(&config).await;
            let _ = results.send(ProbeDone { id, generation, checked_at, outcome });
        });
    }

    /// Feeds a result through the state machine and hands it to the writer.
    fn finished(&mut self, done: ProbeDone) {
        let Some(entry) = self.entries.get_mut(&done.id) else { return };
        if entry.generation != done.generation {
            return;
        }
        entry.in_flight = false;
        let config = &entry.config;
        let step = entry.state.observe(done.outcome.ok, config.failure_threshold);
        let healthy = entry.state.reported(config.inverted, false);
        let flip = step.flipped.then(|| {
            let reason = if entry.state.healthy() {
                format!("{} consecutive probes passed", config.failure_threshold)
            } else {
                done.outcome.error.clone().unwrap_or_else(|| "probe failed".into())
            };
            tracing::info!(check = %done.id, healthy, reason = %reason, "health state changed");
            StateFlip { check_id: done.id.clone(), healthy, reason: Some(reason) }
        });
        let observation = Observation {
            check_id: done.id.clone(),
            healthy,
            settled: entry.state.settled(),
            checked_at: done.checked_at,
            latency_ms: done.outcome.latency.map(|l| l.as_secs_f32() * 1000.0),
            last_error: done.outcome.error,
        };
        let _ = self.writes.send(WriteItem { observation, flip, announce: step.announce() });
        if entry.owed {
            let id = done.id.clone();
            self.start_probe(&id);
        }
    }
}
