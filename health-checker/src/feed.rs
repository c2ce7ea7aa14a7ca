//! The checks a checker probes, kept current: a full load at start, then
//! one check at a time as `signpost_health_checks` announces them, and a
//! full reload every poll interval and whenever the LISTEN connection was
//! lost (notifications may have been missed), so checks written by other
//! means are found too.

use std::time::Duration;

use signpost_store::Store;
use signpost_store::health::{HealthCheck, TARGET_POLICY_CHANGED, TargetPolicy};
use sqlx::postgres::PgListener;
use tokio::sync::{mpsc, watch};

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
    let mut listener: Option<PgListener> = None;
    let mut reload = true;
    let mut poll_timer = tokio::time::interval(poll);
    poll_timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    poll_timer.tick().await;
    loop {
        if *shutdown.borrow() {
            return;
        }
        if listener.is_none() {
            match store.listen_health_checks().await {
                Ok(l) => {
                    listener = Some(l);
                    reload = true;
                }
                Err(e) => tracing::debug!(error = %e, "LISTEN for health checks failed; polling"),
            }
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
        let retry = if reload || listener.is_none() { Duration::from_millis(500) } else { poll };
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = poll_timer.tick() => reload = true,
            _ = tokio::time::sleep(retry), if reload || listener.is_none() => {}
            note = next_notification(&mut listener) => match note {
                Ok(Some(payload)) if payload == TARGET_POLICY_CHANGED => reload = true,
                Ok(Some(id)) => {
                    let event = match store.health_check_by_id(&id).await {
                        Ok(Some(check)) => FeedEvent::Upsert(Box::new(check)),
                        Ok(None) => FeedEvent::Removed(id),
                        Err(e) => {
                            tracing::debug!(error = %e, "loading a health check failed; reloading all");
                            reload = true;
                            continue;
                        }
                    };
                    if out.send(event).await.is_err() {
                        return;
                    }
                }
                // The connection was lost (and is reconnected by the next
                // receive): notifications may be missing.
                Ok(None) => reload = true,
                Err(e) => {
                    tracing::debug!(error = %e, "health-check notifications lost; reloading");
                    listener = None;
                    reload = true;
                }
            },
        }
    }
}

/// The next notification's payload; pends forever without a listener.
async fn next_notification(listener: &mut Option<PgListener>) -> Result<Option<String>, sqlx::Error> {
    match listener {
        Some(l) => Ok(l.try_recv().await?.map(|n| n.payload().to_string())),
        None => std::future::pending().await,
    }
}
