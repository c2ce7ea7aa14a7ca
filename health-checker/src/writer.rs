//! Writes a checker's observations in batches: the latest state of each
//! check at least every flush interval, and at once when a verdict may have
//! changed (a flip, or a state that just settled), so that failover does not
//! wait for the next batch. On a database error the batch is kept and
//! merged into the next one.

use std::collections::HashMap;
use std::time::Duration;

use signpost_store::Store;
use signpost_store::health::{Observation, ObservationBatch, StateFlip};
use tokio::sync::mpsc;

/// Most flips kept while the database is unreachable.
const MAX_PENDING_FLIPS: usize = 100_000;

/// One probe's write.
#[derive(Debug, Clone)]
pub struct WriteItem {
    /// The latest state.
    pub observation: Observation,
    /// A flip to keep in the history.
    pub flip: Option<StateFlip>,
    /// Whether the verdict may have changed.
    pub announce: bool,
}

#[derive(Default)]
struct Pending {
    latest: HashMap<String, Observation>,
    flips: Vec<StateFlip>,
    announce: bool,
}

impl Pending {
    fn add(&mut self, item: WriteItem) {
        self.latest.insert(item.observation.check_id.clone(), item.observation);
        if let Some(flip) = item.flip {
            if self.flips.len() >= MAX_PENDING_FLIPS {
                self.flips.remove(0);
            }
            self.flips.push(flip);
        }
        self.announce |= item.announce;
    }

    fn is_empty(&self) -> bool {
        self.latest.is_empty() && self.flips.is_empty() && !self.announce
    }

    async fn flush(&mut self, store: &Store, checker_id: &str, region: &str) {
        if self.is_empty() {
            return;
        }
        let batch = ObservationBatch {
            observations: self.latest.values().cloned().collect(),
            flips: self.flips.clone(),
            announce: self.announce,
        };
        match store.record_observations(checker_id, region, &batch).await {
            Ok(()) => *self = Pending::default(),
            Err(e) => {
                tracing::warn!(error = %e, pending = self.latest.len(), "writing health observations failed; will retry")
            }
        }
    }
}

/// Writes until `items` closes, then flushes what is left.
pub async fn run(
    store: Store,
    checker_id: String,
    region: String,
    flush_every: Duration,
    mut items: mpsc::UnboundedReceiver<WriteItem>,
) {
    let mut pending = Pending::default();
    let mut tick = tokio::time::interval(flush_every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            item = items.recv() => match item {
                Some(item) => {
                    pending.add(item);
                    while let Ok(more) = items.try_recv() {
                        pending.add(more);
                    }
                    if pending.announce {
                        pending.flush(&store, &checker_id, &region).await;
                    }
                }
                None => break,
            },
            _ = tick.tick() => pending.flush(&store, &checker_id, &region).await,
        }
    }
    pending.flush(&store, &checker_id, &region).await;
}
