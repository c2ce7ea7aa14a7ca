//! Usage counting off the hot path: every zone's counter cell lives in a
//! registry; a flusher takes the deltas every interval (and at shutdown) and
//! writes them in one idempotent transaction per flush (server id + seq).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use signpost_core::UsageCategory;
use signpost_core::usage::ZoneUsage;
use signpost_store::Store;
use signpost_store::usage::UsageDelta;
use tokio::sync::watch;

/// The counter cells of every zone this server has served.
#[derive(Default)]
pub struct UsageRegistry {
    cells: Mutex<HashMap<String, Arc<ZoneUsage>>>,
}

impl UsageRegistry {
    /// The cell of a zone (created on first use; the same cell across rebuilds).
    pub fn cell(&self, zone_id: &str) -> Arc<ZoneUsage> {
        match self.cells.lock() {
            Ok(mut cells) => cells.entry(zone_id.to_string()).or_default().clone(),
            Err(_) => Arc::default(),
        }
    }

    /// Takes every non-zero delta.
    fn take_all(&self) -> Vec<(String, [u64; 5])> {
        let Ok(cells) = self.cells.lock() else { return Vec::new() };
        cells
            .iter()
            .map(|(zone, cell)| (zone.clone(), cell.take()))
            .filter(|(_, counts)| counts.iter().any(|n| *n > 0))
            .collect()
    }
}

/// Test-only fault injection: `SIGNPOST_FAULT_USAGE_FLUSH_AFTER_COMMIT=N`
/// makes the first N flushes fail after their transaction committed, as a
/// lost reply from the database would. The flush is then retried with the
/// same sequence number and must count once.
fn injected_failures() -> u32 {
    std::env::var("SIGNPOST_FAULT_USAGE_FLUSH_AFTER_COMMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// One flush: its sequence number, month and deltas.
struct Batch {
    seq: i64,
    month: chrono::NaiveDate,
    deltas: Vec<UsageDelta>,
}

/// Writes the registry's deltas to the database.
pub struct UsageFlusher {
    store: Store,
    registry: Arc<UsageRegistry>,
    server_id: String,
    next_seq: i64,
    pending: Option<Batch>,
    failures_to_inject: u32,
}

impl UsageFlusher {
    /// A flusher for `registry`, identified as `server_id`.
    pub fn new(store: Store, registry: Arc<UsageRegistry>, server_id: String) -> Self {
        UsageFlusher {
            store,
            registry,
            server_id,
            next_seq: 1,
            pending: None,
            failures_to_inject: injected_failures(),
        }
    }

    /// Flushes every `interval` until `stop` (sent once the listeners have
    /// stopped), then once more, retrying for a few seconds, so a graceful
    /// stop loses nothing.
    pub async fn run(mut self, interval: Duration, mut stop: watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            if let Err(e) = self.flush().await {
                tracing::warn!(error = %e, "usage flush failed; will retry");
            }
        }
        // The listeners have stopped: one flush takes every remaining count.
        for attempt in 0..20 {
            match self.flush().await {
                Ok(()) if self.pending.is_none() => return,
                Ok(()) => {}
                Err(e) => tracing::warn!(error = %e, attempt, "final usage flush failed"),
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        tracing::error!("usage counts of the last interval could not be written");
    }

    /// Writes the pending batch (if a previous flush failed), else a new one.
    pub async fn flush(&mut self) -> Result<(), signpost_store::StoreError> {
        if self.pending.is_none() {
            let taken = self.registry.take_all();
            if taken.is_empty() {
                return Ok(());
            }
            let deltas = taken
                .into_iter()
                .flat_map(|(zone_id, counts)| {
                    UsageCategory::ALL.into_iter().filter(move |c| counts[c.as_index()] > 0).map(move |c| {
                        UsageDelta {
                            zone_id: zone_id.clone(),
                            category: c,
                            queries: counts[c.as_index()] as i64,
                        }
                    })
                })
                .collect();
            self.pending = Some(Batch { seq: self.next_seq, month: chrono::Utc::now().date_naive(), deltas });
            self.next_seq += 1;
        }
        let Some(batch) = &self.pending else { return Ok(()) };
        self.store.flush_usage(&self.server_id, batch.seq, batch.month, &batch.deltas).await?;
        if self.failures_to_inject > 0 {
            self.failures_to_inject -= 1;
            tracing::warn!(seq = batch.seq, "injected failure after a committed usage flush");
            return Ok(());
        }
        tracing::debug!(seq = batch.seq, deltas = batch.deltas.len(), "usage flushed");
        self.pending = None;
        Ok(())
    }
}
