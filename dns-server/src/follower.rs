//! Keeps the snapshot equal to the database: loads every zone at start, then
//! applies the change log in order, woken by `NOTIFY signpost_changes` and,
//! when the listening connection is down, by polling. Records the last
//! change applied in the server's heartbeat row.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use signpost_core::snapshot::ZoneContent;
use signpost_core::{HostedZone, RecordSet, Snapshot};
use signpost_store::routing::{DEFAULT_CHECKER_LIVENESS, DEFAULT_HEALTHY_SHARE};
use signpost_store::{Store, StoreError};
use tokio::sync::watch;

use crate::ServerState;
use crate::usage::UsageRegistry;

/// How often the log is read when the LISTEN connection is down.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often the log is read anyway while listening (missed notifications).
pub const SAFETY_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How often the heartbeat row is refreshed.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);

/// Builds a zone's content with its usage cell, logging record sets that
/// cannot be served.
pub fn build_zone(zone: HostedZone, rrsets: &[RecordSet], usage: &UsageRegistry) -> Option<Arc<ZoneContent>> {
    let name = zone.name.clone();
    let cell = usage.cell(&zone.id);
    match ZoneContent::build(zone, rrsets).map(|c| c.with_usage(cell)) {
        Ok(content) => {
            for skipped in &content.skipped {
                tracing::warn!(zone = %name, error = %skipped, "stored record set skipped");
            }
            Some(Arc::new(content))
        }
        Err(e) => {
            tracing::error!(zone = %name, error = %e, "zone cannot be served");
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
}

impl Follower {
    /// A follower for `state`, identified as `server_id` in heartbeats.
    pub fn new(store: Store, state: Arc<ServerState>, usage: Arc<UsageRegistry>, server_id: String) -> Self {
        let hostname =
            std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
        Follower { store, state, usage, server_id, hostname, last_seq: 0 }
    }

    /// Loads every zone; retries until the database answers or `shutdown`.
    pub async fn initial_load(&mut self, shutdown: &mut watch::Receiver<bool>) -> Result<(), StoreError> {
        let mut delay = Duration::from_millis(100);
        loop {
            match self.load_everything().await {
                Ok((seq, snapshot)) => {
                    tracing::info!(zones = snapshot.zone_count(), seq, "snapshot loaded");
                    self.state.replace_snapshot(snapshot);
                    self.state.note_applied_seq(seq); // disk copy hook (persist.rs)
                    self.last_seq = seq;
                    let _ = self.store.dns_heartbeat(&self.server_id, &self.hostname, seq).await;
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

    /// Applies changes until `shutdown`.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut listener = None;
        let mut last_heartbeat = Instant::now();
        loop {
            if listener.is_none() {
                match self.store.listen_changes().await {
                    Ok(l) => {
                        listener = Some(l);
                        // Anything committed while we were not listening.
                        self.catch_up().await;
                    }
                    Err(e) => tracing::debug!(error = %e, "LISTEN unavailable; polling the change log"),
                }
            }
            let woken = match listener.as_mut() {
                Some(l) => tokio::select! {
                    received = l.try_recv() => match received {
                        Ok(Some(_)) => true,
                        Ok(None) | Err(_) => {
                            tracing::warn!("LISTEN connection lost; polling the change log");
                            listener = None;
                            true
                        }
                    },
                    _ = tokio::time::sleep(SAFETY_POLL_INTERVAL) => true,
                    _ = shutdown.changed() => false,
                },
                None => tokio::select! {
                    _ = tokio::time::sleep(POLL_INTERVAL) => true,
                    _ = shutdown.changed() => false,
                },
            };
            if !woken || *shutdown.borrow() {
                break;
            }
            let applied = self.catch_up().await;
            // Checkers that stop heartbeating change verdicts without a change row.
            if let Err(e) = self.reload_health().await {
                tracing::debug!(error = %e, "reloading health verdicts failed");
            }
            if applied || last_heartbeat.elapsed() >= HEARTBEAT_INTERVAL {
                if let Err(e) = self.store.dns_heartbeat(&self.server_id, &self.hostname, self.last_seq).await
                {
                    tracing::debug!(error = %e, "heartbeat failed");
                } else {
                    last_heartbeat = Instant::now();
                }
            }
        }
        let _ = self.store.dns_server_gone(&self.server_id).await;
    }

    /// Applies every change after `last_seq`. Returns whether any was applied.
    pub async fn catch_up(&mut self) -> bool {
        let mut applied = false;
        loop {
            let changes = match self.store.changes_after(self.last_seq, 500).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::debug!(error = %e, "reading the change log failed");
                    return applied;
                }
            };
            let Some(newest) = changes.last().map(|c| c.seq) else { return applied };
            let zone_ids: BTreeSet<String> = changes.iter().filter_map(|c| c.zone_id.clone()).collect();
            let routing_accounts: BTreeSet<String> =
                changes.iter().filter(|c| c.kind == "ROUTING").filter_map(|c| c.account_id.clone()).collect();
            let mut snapshot = (**self.state.snapshot.load()).clone();
            for account_id in &routing_accounts {
                match self.store.account_routing(account_id).await {
                    Ok(routing) => snapshot.insert_routing(account_id, Arc::new(routing)),
                    Err(e) => {
                        tracing::debug!(error = %e, "loading routing data failed; will retry");
                        return applied;
                    }
                }
            }
            if changes.iter().any(|c| c.kind == "HEALTH")
                && let Err(e) = self.reload_health().await
            {
                tracing::debug!(error = %e, "loading health verdicts failed; will retry");
                return applied;
            }
            for zone_id in &zone_ids {
                match self.store.load_zone(zone_id).await {
                    Ok(Some((zone, rrsets))) => {
                        if let Some(content) = build_zone(zone, &rrsets, &self.usage) {
                            snapshot.insert(content);
                        }
                    }
                    Ok(None) => {
                        snapshot.remove(zone_id);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "loading a changed zone failed; will retry");
                        return applied;
                    }
                }
            }
            self.state.replace_snapshot(snapshot);
            self.state.note_applied_seq(newest); // disk copy hook (persist.rs)
            self.last_seq = newest;
            applied = true;
            tracing::debug!(seq = newest, zones = zone_ids.len(), "changes applied");
        }
    }
}
