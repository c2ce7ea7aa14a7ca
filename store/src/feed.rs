//! The change log and the feed that follows it.
//!
//! Every committed change (a zone's content, a deleted zone, health verdict
//! inputs, an account's routing data) is one row of `changes`, appended by
//! [`append`] as the last statement of the writer's transaction, with a
//! `NOTIFY signpost_changes`. Readers remember the newest `seq` they applied
//! and ask for `seq > last` ([`ChangeFeed`]): the DNS servers and the health
//! checkers.
//!
//! **Why reading by position is gap-free.** `seq` is an identity value, handed
//! out at INSERT, not at COMMIT. Left alone, a transaction could draw seq 10,
//! a second one seq 11 and commit first; a reader would see 11, move past
//! 10, and never see 10 when it commits. So appends are serialized: [`append`]
//! takes one transaction-scoped advisory lock ([`CHANGE_LOG_LOCK`]) right
//! before the INSERT, and PostgreSQL holds it until the transaction ends.
//! PostgreSQL releases a transaction's locks only after its commit is
//! visible to new snapshots, so a later seq can only be drawn after the
//! transaction holding the earlier one has committed (or rolled back; its
//! number is then never used). Hence whenever a reader sees seq N, every
//! committed seq below N is visible to it too, and no uncommitted one below
//! N exists. The migration `20261202000001_change_feed.sql` takes the same
//! lock in a statement trigger, so an INSERT from anywhere keeps the order.
//! The price: appends commit one at a time (the lock is held only for the
//! INSERT, the NOTIFY and the COMMIT, since the append is the last statement).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgConnection, Row};

use crate::changes::{ChangeInfo, ChangeStatus};
use crate::{CHANGES_CHANNEL, Result, Store, StoreError};

/// The advisory lock key that serializes appends to the change log
/// (`signpost` in ASCII); the migration's trigger uses the same number.
pub const CHANGE_LOG_LOCK: i64 = 0x7369_676e_706f_7374;

/// How often the log is read when the LISTEN connection is down.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often the log is read anyway while listening (a lost notification).
pub const SAFETY_POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How long after a batch that was not applied it is read again.
pub const RETRY_INTERVAL: Duration = Duration::from_millis(250);
/// The longest wait between attempts to LISTEN again.
const MAX_LISTEN_BACKOFF: Duration = Duration::from_secs(5);
/// Rows read at once.
const BATCH_LIMIT: i64 = 500;

/// What a change-log row says changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeKind {
    /// A zone's record sets or the zone itself (created, imported, changed).
    Zone,
    /// A zone was deleted.
    ZoneDeleted,
    /// Something health verdicts depend on: a checker's flips, a checker
    /// gone, an override, a check created or deleted.
    Health,
    /// An account's routing data (CIDR collections, latency table, regions).
    Routing,
    /// The installation's health-check target policy (checkers reload it
    /// and judge every check again).
    TargetPolicy,
}

impl ChangeKind {
    /// Every kind.
    pub const ALL: [ChangeKind; 5] = [
        ChangeKind::Zone,
        ChangeKind::ZoneDeleted,
        ChangeKind::Health,
        ChangeKind::Routing,
        ChangeKind::TargetPolicy,
    ];

    /// The stored spelling (the column's CHECK lists the same words).
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Zone => "ZONE",
            ChangeKind::ZoneDeleted => "ZONE_DELETED",
            ChangeKind::Health => "HEALTH",
            ChangeKind::Routing => "ROUTING",
            ChangeKind::TargetPolicy => "TARGET_POLICY",
        }
    }

    /// The kind stored as `text`, if known.
    pub fn parse(text: &str) -> Option<ChangeKind> {
        ChangeKind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

impl fmt::Display for ChangeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// Position in the log (commit order).
    pub seq: i64,
    /// What changed.
    pub kind: ChangeKind,
    /// The account the change belongs to.
    pub account_id: Option<String>,
    /// The zone whose content changed (zone kinds only).
    pub zone_id: Option<String>,
    /// The health check a `Health` change is about, when it is about one.
    pub health_check_id: Option<String>,
}

/// A change to append; the constructors give each kind its required fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewChange<'a> {
    /// What changed.
    pub kind: ChangeKind,
    /// The account the change belongs to.
    pub account_id: Option<&'a str>,
    /// The zone (zone kinds only).
    pub zone_id: Option<&'a str>,
    /// The health check (health changes about one check only).
    pub health_check_id: Option<&'a str>,
    /// Free text shown to operators.
    pub comment: Option<&'a str>,
}

impl<'a> NewChange<'a> {
    /// A zone's content changed.
    pub fn zone(account_id: &'a str, zone_id: &'a str) -> Self {
        NewChange::of(ChangeKind::Zone, Some(account_id), Some(zone_id))
    }

    /// A zone was deleted.
    pub fn zone_deleted(account_id: &'a str, zone_id: &'a str) -> Self {
        NewChange::of(ChangeKind::ZoneDeleted, Some(account_id), Some(zone_id))
    }

    /// Health verdicts may have changed.
    pub fn health(account_id: Option<&'a str>) -> Self {
        NewChange::of(ChangeKind::Health, account_id, None)
    }

    /// One health check was created, deleted or changed.
    pub fn health_check(account_id: &'a str, check_id: &'a str) -> Self {
        NewChange { health_check_id: Some(check_id), ..NewChange::health(Some(account_id)) }
    }

    /// An account's routing data changed.
    pub fn routing(account_id: &'a str) -> Self {
        NewChange::of(ChangeKind::Routing, Some(account_id), None)
    }

    /// The installation's health-check target policy changed.
    pub fn target_policy() -> Self {
        NewChange::of(ChangeKind::TargetPolicy, None, None)
    }

    /// With a comment.
    pub fn comment(self, comment: Option<&'a str>) -> Self {
        NewChange { comment, ..self }
    }

    fn of(kind: ChangeKind, account_id: Option<&'a str>, zone_id: Option<&'a str>) -> Self {
        NewChange { kind, account_id, zone_id, health_check_id: None, comment: None }
    }
}

/// Appends `change` to the log and notifies the listeners, inside the
/// caller's transaction. Call it as the **last statement before COMMIT**:
/// it takes [`CHANGE_LOG_LOCK`], which every other append then waits for
/// until this transaction ends (see the module's doc for why).
pub async fn append(conn: &mut PgConnection, change: NewChange<'_>) -> Result<ChangeInfo> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(CHANGE_LOG_LOCK).execute(&mut *conn).await?;
    let row = sqlx::query(
        "INSERT INTO changes (account_id, zone_id, kind, health_check_id, comment)
         VALUES ($1, $2, $3, $4, $5) RETURNING seq, id, submitted_at",
    )
    .bind(change.account_id)
    .bind(change.zone_id)
    .bind(change.kind.as_str())
    .bind(change.health_check_id)
    .bind(change.comment)
    .fetch_one(&mut *conn)
    .await?;
    let seq: i64 = row.try_get("seq")?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANGES_CHANNEL)
        .bind(seq.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(ChangeInfo {
        id: row.try_get("id")?,
        status: ChangeStatus::Pending,
        submitted_at: row.try_get("submitted_at")?,
        seq,
    })
}

impl Store {
    /// Change-log rows after `seq`, oldest first, at most `limit`. Gap-free:
    /// no row below the newest one returned can commit later.
    pub async fn changes_after(&self, seq: i64, limit: i64) -> Result<Vec<ChangeRow>> {
        let rows = sqlx::query(
            "SELECT seq, kind, account_id, zone_id, health_check_id FROM changes
             WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(seq)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let kind: String = r.try_get("kind")?;
                let kind = ChangeKind::parse(&kind).ok_or_else(|| {
                    StoreError::Database(sqlx::Error::Decode(format!("unknown change kind {kind:?}").into()))
                })?;
                Ok(ChangeRow {
                    seq: r.try_get("seq")?,
                    kind,
                    account_id: r.try_get("account_id")?,
                    zone_id: r.try_get("zone_id")?,
                    health_check_id: r.try_get("health_check_id")?,
                })
            })
            .collect()
    }

    /// The newest position of the change log (0 when empty): everything up
    /// to it is committed, so a reader may start after it.
    pub async fn latest_change_seq(&self) -> Result<i64> {
        let row =
            sqlx::query("SELECT coalesce(max(seq), 0) AS seq FROM changes").fetch_one(self.pool()).await?;
        Ok(row.try_get("seq")?)
    }

    /// Appends a change in a transaction of its own (for changes with no
    /// other rows: a zone to reload, verdicts or routing data changed by
    /// other means) and returns its seq.
    pub async fn log_change(&self, change: NewChange<'_>) -> Result<i64> {
        let mut tx = self.pool().begin().await?;
        let info = append(&mut tx, change).await?;
        tx.commit().await?;
        Ok(info.seq)
    }
}

/// Rows of the log read at once, oldest first (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeBatch {
    /// The rows.
    pub rows: Vec<ChangeRow>,
}

impl ChangeBatch {
    /// The newest seq in the batch.
    pub fn last_seq(&self) -> i64 {
        self.rows.last().map_or(0, |r| r.seq)
    }

    /// The zones whose content changed or that were deleted.
    pub fn zone_ids(&self) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| matches!(r.kind, ChangeKind::Zone | ChangeKind::ZoneDeleted))
            .filter_map(|r| r.zone_id.as_deref())
            .collect()
    }

    /// The accounts whose routing data changed.
    pub fn routing_accounts(&self) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| r.kind == ChangeKind::Routing)
            .filter_map(|r| r.account_id.as_deref())
            .collect()
    }

    /// Whether health verdicts may have changed.
    pub fn has_health(&self) -> bool {
        self.rows.iter().any(|r| r.kind == ChangeKind::Health)
    }

    /// Whether the health-check target policy changed.
    pub fn has_target_policy(&self) -> bool {
        self.rows.iter().any(|r| r.kind == ChangeKind::TargetPolicy)
    }

    /// The health checks created, deleted or changed.
    pub fn health_check_ids(&self) -> BTreeSet<&str> {
        self.rows
            .iter()
            .filter(|r| r.kind == ChangeKind::Health)
            .filter_map(|r| r.health_check_id.as_deref())
            .collect()
    }
}

/// Follows the change log from a position: woken by `NOTIFY
/// signpost_changes`, reading every [`SAFETY_POLL_INTERVAL`] anyway (a lost
/// notification), and every [`POLL_INTERVAL`] while the LISTEN connection is
/// down (LISTEN is retried with backoff; a hot standby refuses it, and then
/// the feed just polls).
///
/// The position moves only when the consumer says a batch was applied
/// ([`ChangeFeed::applied`]); a batch that was not is read again after
/// [`RETRY_INTERVAL`]. So a consumer that fails on a change never skips it.
pub struct ChangeFeed {
    store: Store,
    position: i64,
    listener: Option<PgListener>,
    listen_backoff: Duration,
    listen_at: tokio::time::Instant,
    /// The newest seq handed out and not yet applied.
    delivered: Option<i64>,
    /// Rows may be waiting: read without waiting.
    ready: bool,
}

impl ChangeFeed {
    /// A feed of the changes after `position` (a position everything up to
    /// which the consumer has applied, e.g. [`Store::latest_change_seq`] read
    /// before a full load).
    pub fn new(store: Store, position: i64) -> ChangeFeed {
        ChangeFeed {
            store,
            position,
            listener: None,
            listen_backoff: POLL_INTERVAL,
            listen_at: tokio::time::Instant::now(),
            delivered: None,
            ready: true,
        }
    }

    /// The newest seq applied.
    pub fn position(&self) -> i64 {
        self.position
    }

    /// Whether notifications are being received (else the feed polls).
    pub fn is_listening(&self) -> bool {
        self.listener.is_some()
    }

    /// Marks `batch` as applied: the next read starts after it.
    pub fn applied(&mut self, batch: &ChangeBatch) {
        self.position = self.position.max(batch.last_seq());
        if self.delivered.is_some_and(|d| d <= self.position) {
            self.delivered = None;
        }
        self.ready = true;
    }

    /// The next batch after the position; waits until there is one. Database
    /// errors are logged and retried. Cancel-safe: dropping the future loses
    /// nothing (the position moves only in [`ChangeFeed::applied`]).
    pub async fn next(&mut self) -> ChangeBatch {
        loop {
            if self.listener.is_none() && tokio::time::Instant::now() >= self.listen_at {
                self.listen().await;
            }
            if self.delivered.take().is_some() {
                // The last batch was not applied: read it again a little later.
                self.ready = true;
                tokio::time::sleep(RETRY_INTERVAL).await;
            }
            if self.ready {
                match self.store.changes_after(self.position, BATCH_LIMIT).await {
                    Ok(rows) if rows.is_empty() => self.ready = false,
                    Ok(rows) => {
                        let batch = ChangeBatch { rows };
                        self.delivered = Some(batch.last_seq());
                        return batch;
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "reading the change log failed; will retry");
                        tokio::time::sleep(RETRY_INTERVAL).await;
                        continue;
                    }
                }
            }
            self.wait().await;
        }
    }

    /// Subscribes to the channel; anything committed meanwhile is read next.
    async fn listen(&mut self) {
        let subscribed = async {
            let mut listener = PgListener::connect_with(self.store.pool()).await?;
            listener.listen(CHANGES_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        match subscribed.await {
            Ok(listener) => {
                self.listener = Some(listener);
                self.listen_backoff = POLL_INTERVAL;
                self.ready = true;
            }
            Err(e) => {
                tracing::debug!(error = %e, "LISTEN unavailable; polling the change log");
                self.listen_at = tokio::time::Instant::now() + self.listen_backoff;
                self.listen_backoff = (self.listen_backoff * 2).min(MAX_LISTEN_BACKOFF);
            }
        }
    }

    /// Waits for a notification or the next poll; afterwards rows may be waiting.
    async fn wait(&mut self) {
        // Set first: a wait cut short (the future dropped) reads once more.
        self.ready = true;
        match self.listener.as_mut() {
            Some(listener) => {
                tokio::select! {
                    received = listener.try_recv() => match received {
                        Ok(Some(_)) => {
                            // One read covers every notification already buffered.
                            while listener.next_buffered().is_some() {}
                        }
                        Ok(None) | Err(_) => {
                            tracing::warn!("LISTEN connection lost; polling the change log");
                            self.listener = None;
                        }
                    },
                    _ = tokio::time::sleep(SAFETY_POLL_INTERVAL) => {}
                }
            }
            None => tokio::time::sleep(POLL_INTERVAL).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_their_stored_spelling() {
        for kind in ChangeKind::ALL {
            assert_eq!(ChangeKind::parse(kind.as_str()), Some(kind));
            assert_eq!(kind.to_string(), kind.as_str());
        }
        assert_eq!(ChangeKind::parse("zone"), None);
        assert_eq!(ChangeKind::parse("ROUTE"), None);
    }

    #[test]
    fn the_lock_key_and_the_kinds_are_the_migrations() {
        let migration = include_str!("../../migrations/20261202000001_change_feed.sql");
        assert!(migration.contains(&format!("pg_advisory_xact_lock({CHANGE_LOG_LOCK})")));
        // The newest definition of the kinds' CHECK (20261202000005 added TARGET_POLICY).
        let tenancy = include_str!("../../migrations/20261202000005_tenancy.sql");
        let check = &tenancy[tenancy.rfind("changes_kind_known").expect("the kinds' CHECK")..];
        for kind in ChangeKind::ALL {
            assert!(check.contains(&format!("'{kind}'")), "{kind} missing from the CHECK");
        }
    }

    #[test]
    fn a_batch_says_what_to_reload() {
        let row = |seq, kind, account: Option<&str>, zone: Option<&str>, check: Option<&str>| ChangeRow {
            seq,
            kind,
            account_id: account.map(str::to_string),
            zone_id: zone.map(str::to_string),
            health_check_id: check.map(str::to_string),
        };
        let batch = ChangeBatch {
            rows: vec![
                row(3, ChangeKind::Zone, Some("A1"), Some("Z1"), None),
                row(4, ChangeKind::ZoneDeleted, Some("A1"), Some("Z2"), None),
                row(7, ChangeKind::Routing, Some("A2"), None, None),
                row(8, ChangeKind::Zone, Some("A1"), Some("Z1"), None),
                row(9, ChangeKind::Health, None, None, None),
                row(11, ChangeKind::Health, Some("A1"), None, Some("H1")),
            ],
        };
        assert_eq!(batch.last_seq(), 11);
        assert_eq!(batch.zone_ids().into_iter().collect::<Vec<_>>(), ["Z1", "Z2"]);
        assert_eq!(batch.routing_accounts().into_iter().collect::<Vec<_>>(), ["A2"]);
        assert!(batch.has_health());
        assert_eq!(batch.health_check_ids().into_iter().collect::<Vec<_>>(), ["H1"]);
        let zones_only = ChangeBatch { rows: batch.rows[..2].to_vec() };
        assert!(!zones_only.has_health());
    }
}
