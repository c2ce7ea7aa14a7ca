//! Usage counting off the hot path: every zone's counter cell lives in a
//! registry; a flusher takes the deltas every interval (and at every month
//! boundary, so a count belongs to the month of its query) and writes them
//! in one idempotent transaction per batch (server id + seq).
//!
//! A batch that cannot be written stays queued in memory and is retried
//! with the same key; counts taken meanwhile go into a new batch. After
//! every failed flush the queue, keys included, is also spooled to
//! `<state-dir>/dns/usage-spill-<server>.bin` (a crash in an outage loses at
//! most one interval); at shutdown the flusher tries for at most
//! `FINAL_FLUSH_BUDGET`, then spills what is left there. The next start
//! writes every spill of its database (a batch that had in fact committed is
//! recognised by its key and counts once) and removes it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use signpost_core::UsageCategory;
use signpost_core::usage::ZoneUsage;
use signpost_store::Store;
use signpost_store::usage::{UsageDelta, month_of};
use tokio::sync::watch;

use crate::persist;

/// How long the last flush at shutdown may try before spilling to disk.
pub const FINAL_FLUSH_BUDGET: Duration = Duration::from_secs(4);
/// Flush keys (`usage_flushes` rows) older than this are pruned.
pub const FLUSH_KEY_RETENTION: Duration = Duration::from_secs(40 * 24 * 3600);
/// A spill older than this is not replayed: its keys may have been pruned,
/// so a batch that had committed could count twice.
pub const SPILL_MAX_AGE: Duration = Duration::from_secs(35 * 24 * 3600);
/// How often old flush keys are pruned.
const PRUNE_INTERVAL: Duration = Duration::from_secs(3600);
/// Magic of a spill file.
pub const SPILL_MAGIC: [u8; 8] = *b"SPUSAGE\n";
const SPILL_PREFIX: &str = "usage-spill-";

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

/// Test-only fault injection (cargo feature `fault-injection`, which the
/// root package's tests turn on): `SIGNPOST_FAULT_USAGE_FLUSH_AFTER_COMMIT=N`
/// makes the first N flushes fail after their transaction committed, as a
/// lost reply from the database would. The flush is then retried with the
/// same sequence number and must count once.
#[cfg(feature = "fault-injection")]
fn injected_failures() -> u32 {
    std::env::var("SIGNPOST_FAULT_USAGE_FLUSH_AFTER_COMMIT").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// Without the feature nothing is injected and the variable is not read.
#[cfg(not(feature = "fault-injection"))]
fn injected_failures() -> u32 {
    0
}

/// One batch of counts: its key, month and counts per zone.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Batch {
    /// The server that took the counts (the key's first half).
    server_id: String,
    /// The key's second half.
    seq: i64,
    /// First day of the month the queries were answered in.
    month: NaiveDate,
    /// Queries per zone and category (index = `UsageCategory::as_index`).
    counts: Vec<(String, [u64; 5])>,
    /// Whether a write was tried: its outcome may be unknown, so it is
    /// never changed again (a retry must carry the same content).
    #[serde(skip)]
    attempted: bool,
    /// The spill file it was read from, removed once it is written.
    #[serde(skip)]
    source: Option<PathBuf>,
}

impl Batch {
    fn deltas(&self) -> Vec<UsageDelta> {
        self.counts
            .iter()
            .flat_map(|(zone_id, counts)| {
                UsageCategory::ALL.into_iter().filter(move |c| counts[c.as_index()] > 0).map(move |c| {
                    UsageDelta {
                        zone_id: zone_id.clone(),
                        category: c,
                        queries: i64::try_from(counts[c.as_index()]).unwrap_or(i64::MAX),
                    }
                })
            })
            .collect()
    }

    fn queries(&self) -> u64 {
        self.counts.iter().flat_map(|(_, c)| c.iter()).sum()
    }
}

/// A spill file's one value.
#[derive(Serialize, Deserialize)]
struct Spill {
    /// `Store::database_identity` of the database the counts belong to.
    database: String,
    /// When it was written (Unix seconds).
    spilled_at: i64,
    batches: Vec<Batch>,
}

/// How the last flush at shutdown ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UsageOutcome {
    /// Every count is in the database.
    Written,
    /// The database could not be reached; the counts are in this file and
    /// the next start writes them.
    Spilled {
        /// The spill file.
        path: PathBuf,
        /// Queries in it.
        queries: u64,
    },
    /// Counts could not be written nor spilled: they are lost.
    Dropped {
        /// Queries lost.
        queries: u64,
    },
}

/// The first instant of the month after `now`'s.
fn next_month_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let (year, month) = if now.month() == 12 { (now.year() + 1, 1) } else { (now.year(), now.month() + 1) };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .unwrap_or(now + chrono::Duration::days(31))
}

/// Writes the registry's deltas to the database.
pub struct UsageFlusher {
    store: Store,
    registry: Arc<UsageRegistry>,
    server_id: String,
    next_seq: i64,
    queue: Vec<Batch>,
    failures_to_inject: u32,
    /// When the counts now in the registry started being counted.
    interval_started: DateTime<Utc>,
    /// Where spills are written and read (None: no state directory).
    spill_dir: Option<PathBuf>,
    /// Which database the counts belong to.
    database: String,
    last_prune: Option<Instant>,
    /// This server's spill file, while it holds counts not yet written.
    spooled: Option<PathBuf>,
}

impl UsageFlusher {
    /// A flusher for `registry`, identified as `server_id`. Spills go to
    /// `spill_dir` (none: counts that cannot be written at shutdown are lost).
    pub fn new(
        store: Store,
        registry: Arc<UsageRegistry>,
        server_id: String,
        spill_dir: Option<PathBuf>,
    ) -> Self {
        let database = store.database_identity();
        UsageFlusher {
            store,
            registry,
            server_id,
            next_seq: 1,
            queue: Vec::new(),
            failures_to_inject: injected_failures(),
            interval_started: Utc::now(),
            spill_dir,
            database,
            last_prune: None,
            spooled: None,
        }
    }

    /// Flushes every `interval` (and at each month boundary) until `stop`
    /// (sent once the listeners have stopped), then once more for at most
    /// `FINAL_FLUSH_BUDGET`, then spills what is left.
    pub async fn run(mut self, interval: Duration, mut stop: watch::Receiver<bool>) -> UsageOutcome {
        self.read_spills();
        loop {
            let now = Utc::now();
            let to_boundary = (next_month_start(now) - now).to_std().unwrap_or(Duration::ZERO);
            tokio::select! {
                _ = tokio::time::sleep(interval.min(to_boundary + Duration::from_millis(1))) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            // A flush that hangs (a partitioned connection) must not hold up
            // the stop: its batch is marked attempted and keeps its key, so
            // the final flush or the spill carries it and it counts once.
            let flushed = tokio::select! {
                result = self.flush() => result,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            match flushed {
                Ok(()) => {
                    self.remove_spool();
                    self.prune_now_and_then().await;
                }
                Err(e) => {
                    tracing::warn!(error = %e, queued = self.queue.len(), "usage flush failed; counts kept, will retry");
                    self.spool();
                }
            }
        }
        // The listeners have stopped: take every remaining count.
        self.take();
        let deadline = tokio::time::Instant::now() + FINAL_FLUSH_BUDGET;
        while !self.queue.is_empty() {
            match tokio::time::timeout_at(deadline, self.write_queue()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(error = %e, "final usage flush failed"),
                Err(_) => break,
            }
            if self.queue.is_empty() || tokio::time::Instant::now() + Duration::from_millis(250) >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        if self.queue.is_empty() {
            self.remove_spool();
            return UsageOutcome::Written;
        }
        self.spill()
    }

    /// Takes the registry's counts into the queue, then writes the queue.
    pub async fn flush(&mut self) -> Result<(), signpost_store::StoreError> {
        self.take();
        self.write_queue().await
    }

    /// Moves the registry's counts into the queue: into the newest batch if
    /// it was never tried and is of the same month, else into a new one.
    fn take(&mut self) {
        let now = Utc::now();
        let month = month_of(self.interval_started.date_naive());
        self.interval_started = now;
        let taken = self.registry.take_all();
        if taken.is_empty() {
            return;
        }
        if let Some(open) = self.queue.last_mut()
            && !open.attempted
            && open.month == month
            && open.server_id == self.server_id
        {
            for (zone, counts) in taken {
                match open.counts.iter_mut().find(|(z, _)| *z == zone) {
                    Some((_, sum)) => sum.iter_mut().zip(counts).for_each(|(s, n)| *s += n),
                    None => open.counts.push((zone, counts)),
                }
            }
            return;
        }
        self.queue.push(Batch {
            server_id: self.server_id.clone(),
            seq: self.next_seq,
            month,
            counts: taken,
            attempted: false,
            source: None,
        });
        self.next_seq += 1;
    }

    /// Writes the queued batches in order; stops at the first failure.
    async fn write_queue(&mut self) -> Result<(), signpost_store::StoreError> {
        while let Some(batch) = self.queue.first_mut() {
            batch.attempted = true;
            let deltas = batch.deltas();
            self.store.flush_usage(&batch.server_id, batch.seq, batch.month, &deltas).await?;
            if self.failures_to_inject > 0 {
                self.failures_to_inject -= 1;
                tracing::warn!(seq = batch.seq, "injected failure after a committed usage flush");
                return Ok(());
            }
            tracing::debug!(server = %batch.server_id, seq = batch.seq, deltas = deltas.len(), "usage flushed");
            let done = self.queue.remove(0);
            if let Some(source) = done.source
                && !self.queue.iter().any(|b| b.source.as_ref() == Some(&source))
            {
                match std::fs::remove_file(&source) {
                    Ok(()) => tracing::info!(file = %source.display(), "spilled usage counts written"),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(file = %source.display(), error = %e, "cannot remove a written spill")
                    }
                }
            }
        }
        Ok(())
    }

    /// Queues the batches of every spill in the state directory written for
    /// this database (before the new counts: they are older).
    fn read_spills(&mut self) {
        let Some(dir) = &self.spill_dir else { return };
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(SPILL_PREFIX) && n.ends_with(".bin"))
            })
            .collect();
        paths.sort();
        for path in paths {
            match read_spill(&path) {
                Ok(Some(spill)) if spill.database != self.database => {
                    tracing::debug!(file = %path.display(), database = %spill.database, "spill of another database left alone");
                }
                Ok(Some(spill)) => {
                    let age = Utc::now().timestamp().saturating_sub(spill.spilled_at);
                    if age > SPILL_MAX_AGE.as_secs() as i64 {
                        tracing::error!(file = %path.display(), age_days = age / 86_400, "spill older than the flush-key retention: not replayed (it could count twice)");
                        continue;
                    }
                    let queries: u64 = spill.batches.iter().map(Batch::queries).sum();
                    tracing::info!(file = %path.display(), batches = spill.batches.len(), queries, "replaying spilled usage counts");
                    for mut batch in spill.batches {
                        batch.attempted = true;
                        batch.source = Some(path.clone());
                        self.queue.push(batch);
                    }
                }
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "spilled usage counts ignored"),
            }
        }
    }

    /// Writes the queue to this server's spill file and removes the spills
    /// it had replayed (their batches are in the new one).
    fn spill(&mut self) -> UsageOutcome {
        let queries: u64 = self.queue.iter().map(Batch::queries).sum();
        match self.write_spill() {
            Ok(Some(path)) => {
                tracing::warn!(file = %path.display(), queries, batches = self.queue.len(), "database unreachable: usage counts spilled to disk; the next start writes them");
                UsageOutcome::Spilled { path, queries }
            }
            Ok(None) => {
                tracing::error!(
                    queries,
                    "usage counts could not be written nor spilled (no state directory): lost"
                );
                UsageOutcome::Dropped { queries }
            }
            Err(e) => {
                tracing::error!(error = %e, queries, "usage counts could not be written nor spilled: lost");
                UsageOutcome::Dropped { queries }
            }
        }
    }

    /// Writes the whole queue to this server's spill file (None: no state
    /// directory) and removes the spills it had replayed, whose batches it
    /// now holds.
    fn write_spill(&mut self) -> Result<Option<PathBuf>, persist::PersistError> {
        let Some(dir) = &self.spill_dir else { return Ok(None) };
        let path = dir.join(format!("{SPILL_PREFIX}{}.bin", self.server_id));
        // A batch on disk never changes again: another server started on the
        // same state directory may replay it (and commit its key) at any time,
        // so later counts must go into a new batch with a new key.
        for batch in &mut self.queue {
            batch.attempted = true;
        }
        let spill = Spill {
            database: self.database.clone(),
            spilled_at: Utc::now().timestamp(),
            batches: self.queue.clone(),
        };
        persist::write_atomically(&path, SPILL_MAGIC, |out| persist::encode(out, &spill))?;
        let mut sources: Vec<&PathBuf> = self.queue.iter().filter_map(|b| b.source.as_ref()).collect();
        sources.dedup();
        for source in sources.into_iter().filter(|s| **s != path) {
            let _ = std::fs::remove_file(source);
        }
        self.spooled = Some(path.clone());
        Ok(Some(path))
    }

    /// After a failed flush: keeps the queue on disk too, so that a crash
    /// during the outage loses at most the counts of the last interval.
    fn spool(&mut self) {
        let queries: u64 = self.queue.iter().map(Batch::queries).sum();
        match self.write_spill() {
            Ok(Some(path)) => {
                tracing::info!(file = %path.display(), queries, "usage counts spooled to disk until the database returns")
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "spooling usage counts to disk failed"),
        }
    }

    /// Once the queue is written: the spool is not needed any more.
    fn remove_spool(&mut self) {
        if self.queue.is_empty()
            && let Some(path) = self.spooled.take()
            && let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(file = %path.display(), error = %e, "cannot remove the usage spool");
        }
    }

    /// Prunes old flush keys once at start and then hourly.
    async fn prune_now_and_then(&mut self) {
        if self.last_prune.is_some_and(|t| t.elapsed() < PRUNE_INTERVAL) {
            return;
        }
        match self.store.prune_usage_flushes(FLUSH_KEY_RETENTION).await {
            Ok(n) => {
                self.last_prune = Some(Instant::now());
                if n > 0 {
                    tracing::info!(rows = n, "old usage flush keys pruned");
                }
            }
            Err(e) => tracing::debug!(error = %e, "pruning usage flush keys failed; will retry"),
        }
    }
}

/// Reads one spill file (None: it vanished).
fn read_spill(path: &Path) -> Result<Option<Spill>, persist::PersistError> {
    let Some(mut reader) = persist::open_verified(path, SPILL_MAGIC, "usage spill")? else { return Ok(None) };
    persist::decode(path, &mut reader).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_boundaries() {
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
        assert_eq!(next_month_start(t("2026-11-30T23:59:59Z")), t("2026-12-01T00:00:00Z"));
        assert_eq!(next_month_start(t("2026-12-15T10:00:00Z")), t("2027-01-01T00:00:00Z"));
        assert_eq!(next_month_start(t("2026-12-01T00:00:00Z")), t("2027-01-01T00:00:00Z"));
    }

    #[tokio::test]
    async fn counts_go_to_the_month_of_their_interval_and_tried_batches_never_change() {
        let store = Store::connect_lazy("postgres://nobody@127.0.0.1:1/none").unwrap();
        let registry = Arc::new(UsageRegistry::default());
        let mut flusher = UsageFlusher::new(store, registry.clone(), "dns-t".into(), None);
        let cell = registry.cell("Z1");
        // Counted in the last interval of November, taken in December.
        flusher.interval_started = DateTime::parse_from_rfc3339("2026-11-30T23:59:59Z").unwrap().to_utc();
        cell.count(UsageCategory::Standard);
        flusher.take();
        assert_eq!(flusher.queue[0].month, NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
        // A tried batch keeps its content; new counts open a new batch, then merge into it.
        flusher.queue[0].attempted = true;
        cell.count(UsageCategory::Standard);
        flusher.take();
        cell.count(UsageCategory::Latency);
        flusher.take();
        assert_eq!(flusher.queue.len(), 2);
        assert_eq!((flusher.queue[0].seq, flusher.queue[0].queries()), (1, 1));
        assert_eq!(
            (flusher.queue[1].seq, flusher.queue[1].counts.clone()),
            (2, vec![("Z1".into(), [1, 1, 0, 0, 0])])
        );
        assert_eq!(flusher.queue[1].month, month_of(Utc::now().date_naive()));
        // Nowhere to spill: the counts are reported lost.
        assert_eq!(flusher.spill(), UsageOutcome::Dropped { queries: 3 });
    }

    #[test]
    fn a_spill_reads_back_with_its_keys() {
        let dir = std::env::temp_dir().join(format!("signpost-spill-{:016x}", rand::random::<u64>()));
        let path = dir.join("usage-spill-x.bin");
        let batch = Batch {
            server_id: "dns-1".into(),
            seq: 7,
            month: NaiveDate::from_ymd_opt(2026, 11, 1).unwrap(),
            counts: vec![("Z1".into(), [3, 0, 1, 0, 0])],
            attempted: true,
            source: None,
        };
        let spill = Spill { database: "db".into(), spilled_at: 5, batches: vec![batch] };
        persist::write_atomically(&path, SPILL_MAGIC, |out| persist::encode(out, &spill)).unwrap();
        let back = read_spill(&path).unwrap().unwrap();
        assert_eq!((back.database.as_str(), back.spilled_at), ("db", 5));
        let b = &back.batches[0];
        assert_eq!(
            (b.server_id.as_str(), b.seq, b.month, b.queries()),
            ("dns-1", 7, spill.batches[0].month, 4)
        );
        assert_eq!(b.deltas().len(), 2);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
