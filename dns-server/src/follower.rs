//! Keeps the snapshot equal to the database: loads every zone at start, then
//! applies the change log in order through the store's [`ChangeFeed`]
//! (NOTIFY, polling when LISTEN is down). The position advances only past
//! batches that were applied; a database error leaves it where it is and the
//! batch is read again. A heartbeat task writes the last applied position
//! at once when it moves and every [`HEARTBEAT_INTERVAL`] anyway; a change
//! is INSYNC when every live server's position has reached it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use signpost_core::snapshot::ZoneContent;
use signpost_core::{HostedZone, RecordSet, Snapshot};
use signpost_store::routing::{DEFAULT_CHECKER_LIVENESS, DEFAULT_HEALTHY_SHARE};
use signpost_store::{ChangeBatch, ChangeFeed, DNS_SERVER_LIVENESS, Store, StoreError};
use tokio::sync::watch;

use crate::ServerState;
use crate::usage::UsageRegistry;

/// How often the heartbeat row is refreshed (from its own task, so a long
/// reload does not let the server drop out of [`DNS_SERVER_LIVENESS`]).
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How soon a failed heartbeat is tried again.
const HEARTBEAT_RETRY: Duration = Duration::from_millis(500);
/// How often verdicts are recomputed without a `HEALTH` change: a checker
/// that stops heartbeating stops counting after
/// [`DEFAULT_CHECKER_LIVENESS`], which no change row announces.
pub const HEALTH_RELOAD_INTERVAL: Duration = Duration::from_secs(5);
/// How long applying may keep failing before it is logged as a warning.
const APPLY_FAILURE_WARNING: Duration = Duration::from_secs(10);

/// Stored record sets (and whole zones) that failed to build and are not
/// served, since the process started (`signpost_dns_record_sets_skipped_total`).
/// Validation accepts only what builds, so anything here is a bug or data
/// written around the store.
pub static SKIPPED_RECORD_SETS: AtomicU64 = AtomicU64::new(0);

/// Builds a zone's content with its usage cell; record sets that cannot be
/// served are logged as errors and counted.
pub fn build_zone(zone: HostedZone, rrsets: &[RecordSet], usage: &UsageRegistry) -> Option<Arc<ZoneContent>> {
    let name = zone.name.clone();
    let cell = usage.cell(&zone.id);
    match ZoneContent::build(zone, rrsets).map(|c| c.with_usage(cell)) {
        Ok(content) => {
            for skipped in &content.skipped {
                tracing::error!(zone = %name, error = %skipped, "stored record set cannot be served; skipped");
            }
            SKIPPED_RECORD_SETS.fetch_add(content.skipped.len() as u64, Ordering::Relaxed);
            Some(Arc::new(content))
        }
        Err(e) => {
            tracing::error!(zone = %name, error = %e, "zone cannot be served");
            SKIPPED_RECORD_SETS.fetch_add(rrsets.len().max(1) as u64, Ordering::Relaxed);
            None
        }
    }
}

/// Follows the database for one DNS server.
pub struct Follower {
    store: Store,
    state: Arc<ServerState>,
    usage: Arc<UsageRegistry>,
    server_id: String,
    hostname: String,
    last_seq: i64,
    heartbeat: Option<Heartbeat>,
}

/// The running heartbeat task: the position it reports, and its stop switch.
struct Heartbeat {
    applied: watch::Sender<i64>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Follower {
    /// A follower for `state`, identified as `server_id` in heartbeats.
    pub fn new(store: Store, state: Arc<ServerState>, usage: Arc<UsageRegistry>, server_id: String) -> Self {
        let hostname =
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        Follower { store, state, usage, server_id, hostname, last_seq: 0, heartbeat: None }
    }

    /// Starts the heartbeat at `seq` (a server restored from its disk copy
    /// reports the copy's position): from then on the server counts as live
    /// and behind, so no later change is INSYNC before this server applied it.
    pub fn start_heartbeat(&mut self, seq: i64) {
        if self.heartbeat.is_some() {
            return;
        }
        self.last_seq = self.last_seq.max(seq);
        let (applied, applied_rx) = watch::channel(self.last_seq);
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(heartbeat(
            self.store.clone(),
            self.server_id.clone(),
            self.hostname.clone(),
            applied_rx,
            stop_rx,
        ));
        self.heartbeat = Some(Heartbeat { applied, stop, task });
    }

    /// Reports `seq` as applied (to the heartbeat task).
    fn report_applied(&mut self, seq: i64) {
        self.last_seq = seq;
        self.state.note_applied_seq(seq); // disk copy hook (persist.rs)
        if let Some(heartbeat) = &self.heartbeat {
            let _ = heartbeat.applied.send(seq);
        }
    }

    /// Loads every zone; retries until the database answers or `shutdown`.
    pub async fn initial_load(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), StoreError> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.load_everything().await {
                Ok((seq, snapshot)) => {
                    tracing::info!(zones = snapshot.zone_count(), seq, "snapshot loaded");
                    self.state.replace_snapshot(snapshot);
                    self.start_heartbeat(seq);
                    self.report_applied(seq);
                    return Ok(());
                }
                Err(e) if e.is_unavailable() => {
                    tracing::warn!(error = %e, "database unavailable; retrying the initial load");
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = shutdown.changed() => return Err(e),
                    }
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Every zone, every account's routing data and the health verdicts.
    async fn load_everything(&self) -> Result<(i64, Snapshot), StoreError> {
        let (seq, zones) = self.store.load_all_zones().await?;
        let mut snapshot = Snapshot::from_zones(
            zones.into_iter().filter_map(|(zone, rrsets)| build_zone(zone, &rrsets, &self.usage)),
        );
        for account_id in self.store.accounts_with_routing().await? {
            let routing = self.store.account_routing(&account_id).await?;
            snapshot.insert_routing(&account_id, Arc::new(routing));
        }
        self.reload_health().await?;
        Ok((seq, snapshot))
    }

    /// Reloads every health verdict.
    async fn reload_health(&self) -> Result<(), StoreError> {
        let verdicts = self.store.health_verdicts(DEFAULT_HEALTHY_SHARE, DEFAULT_CHECKER_LIVENESS).await?;
        if **self.state.health.load() != verdicts {
            tracing::debug!(checks = verdicts.len(), "health verdicts changed");
            self.state.health.store(Arc::new(verdicts));
        }
        Ok(())
    }

    /// The position of the change log this server has applied.
    pub fn last_seq(&self) -> i64 {
        self.last_seq
    }

    /// Applies changes until `shutdown`, then removes the heartbeat row.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        self.start_heartbeat(self.last_seq);
        let mut feed = ChangeFeed::new(self.store.clone(), self.last_seq);
        let mut health_timer = tokio::time::interval(HEALTH_RELOAD_INTERVAL);
        health_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        health_timer.tick().await;
        // Since when applying has failed without a break (logged louder once
        // it lasts: every change stays PENDING meanwhile).
        let mut failing_since: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                batch = feed.next() => match self.apply(&batch).await {
                    Ok(()) => {
                        feed.applied(&batch);
                        self.report_applied(feed.position());
                        failing_since = None;
                        tracing::debug!(seq = self.last_seq, rows = batch.rows.len(), "changes applied");
                    }
                    Err(e) => {
                        let since = *failing_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= APPLY_FAILURE_WARNING {
                            tracing::warn!(error = %e, seconds = since.elapsed().as_secs(),
                                "applying changes keeps failing; this server is behind");
                            failing_since = Some(Instant::now());
                        } else {
                            tracing::debug!(error = %e, "applying changes failed; will retry");
                        }
                    }
                },
                _ = health_timer.tick() => {
                    if let Err(e) = self.reload_health().await {
                        tracing::debug!(error = %e, "reloading health verdicts failed");
                    }
                }
            }
            if *shutdown.borrow() {
                break;
            }
        }
        self.goodbye().await;
    }

    /// Stops the heartbeat and removes the server's row (graceful stop), so
    /// it stops counting for INSYNC at once.
    pub async fn goodbye(mut self) {
        if let Some(heartbeat) = self.heartbeat.take() {
            let _ = heartbeat.stop.send(true);
            let _ = heartbeat.task.await;
        }
        let _ = self.store.dns_server_gone(&self.server_id).await;
    }

    /// Applies every change of `batch` to the snapshot: the routing data of
    /// the accounts named, the verdicts when a `HEALTH` change is in it, and
    /// each changed zone reloaded (or removed). On an error nothing is
    /// swapped in and the batch must be applied again.
    async fn apply(&self, batch: &ChangeBatch) -> Result<(), StoreError> {
        if batch.has_health() {
            self.reload_health().await?;
        }
        let routing_accounts = batch.routing_accounts();
        let zone_ids = batch.zone_ids();
        if routing_accounts.is_empty() && zone_ids.is_empty() {
            // Verdicts live beside the snapshot: nothing to swap.
            return Ok(());
        }
        let mut snapshot = (**self.state.snapshot.load()).clone();
        for account_id in routing_accounts {
            let routing = self.store.account_routing(account_id).await?;
            snapshot.insert_routing(account_id, Arc::new(routing));
        }
        for zone_id in &zone_ids {
            match self.store.load_zone(zone_id).await? {
                Some((zone, rrsets)) => {
                    // Content that cannot be built at all (a zone the store
                    // would refuse) keeps the old content: retrying cannot help.
                    if let Some(content) = build_zone(zone, &rrsets, &self.usage) {
                        snapshot.insert(content);
                    }
                }
                None => {
                    snapshot.remove(zone_id);
                }
            }
        }
        self.state.replace_snapshot(snapshot);
        Ok(())
    }
}

/// Writes the server's heartbeat with the last applied position: at once
/// when it moves (so INSYNC follows the apply, also right after the database
/// comes back), every [`HEARTBEAT_INTERVAL`] anyway (well inside
/// [`DNS_SERVER_LIVENESS`], and independent of how long an apply takes), and
/// every [`HEARTBEAT_RETRY`] while writing fails.
async fn heartbeat(
    store: Store,
    server_id: String,
    hostname: String,
    mut applied: watch::Receiver<i64>,
    mut stop: watch::Receiver<bool>,
) {
    const _: () = assert!(HEARTBEAT_INTERVAL.as_secs() * 3 < DNS_SERVER_LIVENESS.as_secs());
    loop {
        let seq = *applied.borrow_and_update();
        let wait = match store.dns_heartbeat(&server_id, &hostname, seq).await {
            Ok(()) => HEARTBEAT_INTERVAL,
            Err(e) => {
                tracing::debug!(error = %e, "heartbeat failed");
                HEARTBEAT_RETRY
            }
        };
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => return,
        }
    }
}
