//! The checks a checker probes, kept current: a full load at start, then
//! the store's [`ChangeFeed`]: every `HEALTH` change that names a check
//! (created, deleted, overridden) reloads that check; a `TARGET_POLICY`
//! change reloads the policy and every check. The feed is gap-free
//! and polls when LISTEN is down, so no check is missed; a full reload every
//! poll interval still finds checks written by other means.

use std::time::Duration;

use signpost_store::health::{HealthCheck, TargetPolicy};
use signpost_store::{ChangeBatch, ChangeFeed, Store, StoreError};
use tokio::sync::{mpsc, watch};

/// How soon a failed load is tried again.
const RETRY: Duration = Duration::from_millis(500);

/// A change to the set of checks.
#[derive(Debug)]
pub enum FeedEvent {
    /// Every probe check, as now stored.
    All(Vec<HealthCheck>),
    /// One check created or changed.
    Upsert(Box<HealthCheck>),
    /// One check deleted.
    Removed(String),
    /// The installation's target policy, as stored (sent before every full load).
    Policy(TargetPolicy),
}

/// Follows the checks until shutdown, sending events to `out`.
pub async fn run(
    store: Store,
    poll: Duration,
    out: mpsc::Sender<FeedEvent>,
    mut shutdown: watch::Receiver<bool>,
) {
    // The position first, then the full load: a check changed in between
    // is in both, never in neither.
    let position = loop {
        match store.latest_change_seq().await {
            Ok(seq) => break seq,
            Err(e) => tracing::warn!(error = %e, "reading the change log failed; will retry"),
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(RETRY) => {}
        }
    };
    let mut feed = ChangeFeed::new(store.clone(), position);
    let mut reload = true;
    let mut poll_timer = tokio::time::interval(poll);
    poll_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll_timer.tick().await;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if reload {
            match store.target_policy().await {
                Ok(policy) => {
                    if out.send(FeedEvent::Policy(policy)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "loading the target policy failed; will retry"),
            }
            match store.probe_targets().await {
                Ok(all) => {
                    reload = false;
                    if out.send(FeedEvent::All(all)).await.is_err() {
                        return;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "loading health checks failed; will retry"),
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = poll_timer.tick() => reload = true,
            _ = tokio::time::sleep(RETRY), if reload => {}
            batch = feed.next() => match changed_checks(&store, &batch).await {
                Ok(events) => {
                    // A new target policy: reload it and every check (each is judged again).
                    if batch.has_target_policy() {
                        reload = true;
                    }
                    for event in events {
                        if out.send(event).await.is_err() {
                            return;
                        }
                    }
                    feed.applied(&batch);
                }
                // Not applied: the feed hands the batch out again.
                Err(e) => tracing::debug!(error = %e, "loading a changed health check failed; will retry"),
            },
        }
    }
}

/// The current state of every check the batch names.
async fn changed_checks(store: &Store, batch: &ChangeBatch) -> Result<Vec<FeedEvent>, StoreError> {
    let mut events = Vec::new();
    for id in batch.health_check_ids() {
        events.push(match store.health_check_by_id(id).await? {
            Some(check) => FeedEvent::Upsert(Box::new(check)),
            None => FeedEvent::Removed(id.to_string()),
        });
    }
    Ok(events)
}
