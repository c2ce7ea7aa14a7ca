//! The DNS server's files in its state directory (`<state-dir>/dns/`): the
//! last snapshot, so that a server started while PostgreSQL is down answers
//! from it, and spilled usage counts (`usage.rs`).
//!
//! Every file is framed the same way: 8 bytes of magic, the format version
//! (u32 LE), the body's length (u64 LE), the body's CRC-32 (u32 LE), then the
//! body, a sequence of MessagePack values (self-describing, so the model's
//! serde attributes hold). Files are written to a temporary file in the same
//! directory, fsync'd, renamed over the old one, and the directory fsync'd:
//! a reader sees the old file or the new one, never half of one. A file that
//! is damaged, of another version or written for another database is
//! ignored with a log line, never trusted.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use signpost_core::cidr::Prefix;
use signpost_core::model::Coordinates;
use signpost_core::routing::{AccountRouting, CidrCollectionData};
use signpost_core::{HostedZone, RecordSet, Snapshot};
use tokio::sync::watch;

use crate::ServerState;
use crate::follower::build_zone;
use crate::usage::UsageRegistry;

/// Version of every file this module writes; other versions are ignored.
pub const FORMAT_VERSION: u32 = 1;
/// The snapshot's file name in the DNS state directory.
pub const SNAPSHOT_FILE: &str = "snapshot.bin";
/// Magic of the snapshot file.
pub const SNAPSHOT_MAGIC: [u8; 8] = *b"SPSNAP\r\n";
/// Shortest time between two snapshot writes (the debounce).
pub const MIN_WRITE_GAP: Duration = Duration::from_secs(1);

const HEADER_LEN: u64 = 8 + 4 + 8 + 4;

/// Why a file in the state directory could not be written or used.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading or writing failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// Not one of our files, or cut short.
    #[error("{}: not a Signpost {what} file (bad header)", path.display())]
    Header {
        /// The file.
        path: PathBuf,
        /// Which kind was expected.
        what: &'static str,
    },
    /// Written by another format version.
    #[error("{}: format version {found}; this build reads {FORMAT_VERSION}", path.display())]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
    },
    /// The body does not match its checksum or length.
    #[error("{}: damaged (length or checksum does not match)", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
    },
    /// Written for another database.
    #[error("{}: written for database {found}, not {expected}", path.display())]
    OtherDatabase {
        /// The file.
        path: PathBuf,
        /// The database it was written for.
        found: String,
        /// This server's database.
        expected: String,
    },
    /// The body does not decode.
    #[error("{}: cannot decode: {message}", path.display())]
    Decode {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// The content does not encode (a bug).
    #[error("{}: cannot encode: {message}", path.display())]
    Encode {
        /// The file.
        path: PathBuf,
        /// Why.
        message: String,
    },
}

/// The DNS server's part of the state directory: `<state-dir>/dns`.
pub fn dns_dir(state_dir: &Path) -> PathBuf {
    state_dir.join("dns")
}

/// A writer that counts and checksums what passes through.
struct Checksummed<W> {
    inner: W,
    hasher: crc32fast::Hasher,
    len: u64,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.len += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes one MessagePack value (structs as maps, so skipped fields decode).
pub fn encode<T: Serialize + ?Sized>(out: &mut dyn Write, value: &T) -> Result<(), String> {
    let mut out = out;
    value.serialize(&mut rmp_serde::Serializer::new(&mut out).with_struct_map()).map_err(|e| e.to_string())
}

/// Writes `path` atomically: a temporary file beside it, fsync'd, renamed
/// over it, the directory fsync'd. `body` writes the values. Returns the
/// file's size.
pub fn write_atomically(
    path: &Path,
    magic: [u8; 8],
    body: impl FnOnce(&mut dyn Write) -> Result<(), String>,
) -> Result<u64, PersistError> {
    let io_error = |source| PersistError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io_error)?;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = dir.join(format!(".{file_name}.{}-{:08x}.tmp", std::process::id(), rand::random::<u32>()));
    let result = (|| {
        let file = File::create(&temp).map_err(io_error)?;
        let mut writer = BufWriter::with_capacity(1 << 16, file);
        writer.write_all(&magic).map_err(io_error)?;
        writer.write_all(&FORMAT_VERSION.to_le_bytes()).map_err(io_error)?;
        writer.write_all(&[0u8; 12]).map_err(io_error)?; // length and checksum, filled in below
        let mut counted = Checksummed { inner: writer, hasher: crc32fast::Hasher::new(), len: 0 };
        body(&mut counted).map_err(|message| PersistError::Encode { path: path.to_path_buf(), message })?;
        let Checksummed { inner, hasher, len } = counted;
        let mut file = inner.into_inner().map_err(|e| io_error(e.into_error()))?;
        file.seek(SeekFrom::Start(12)).map_err(io_error)?;
        file.write_all(&len.to_le_bytes()).map_err(io_error)?;
        file.write_all(&hasher.finalize().to_le_bytes()).map_err(io_error)?;
        file.sync_all().map_err(io_error)?;
        std::fs::rename(&temp, path).map_err(io_error)?;
        if let Ok(dir) = File::open(dir) {
            let _ = dir.sync_all();
        }
        Ok(HEADER_LEN + len)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Opens a framed file and checks its header, length and checksum (one
/// streaming pass, so a big file is not held in memory). Returns a reader
/// of the body, or None when the file does not exist.
pub fn open_verified(
    path: &Path,
    magic: [u8; 8],
    what: &'static str,
) -> Result<Option<BufReader<io::Take<File>>>, PersistError> {
    let io_error = |source| PersistError::Io { path: path.to_path_buf(), source };
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(e)),
    };
    let mut header = [0u8; HEADER_LEN as usize];
    if file.read_exact(&mut header).is_err() || header[..8] != magic {
        return Err(PersistError::Header { path: path.to_path_buf(), what });
    }
    let word =
        |range: std::ops::Range<usize>| header[range].iter().rev().fold(0u64, |n, b| n << 8 | u64::from(*b));
    let version = word(8..12) as u32;
    if version != FORMAT_VERSION {
        return Err(PersistError::Version { path: path.to_path_buf(), found: version });
    }
    let len = word(12..20);
    let expected_crc = word(20..24) as u32;
    let size = file.metadata().map_err(io_error)?.len();
    if HEADER_LEN.checked_add(len) != Some(size) {
        return Err(PersistError::Damaged { path: path.to_path_buf() });
    }
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(io_error)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    if hasher.finalize() != expected_crc {
        return Err(PersistError::Damaged { path: path.to_path_buf() });
    }
    file.seek(SeekFrom::Start(HEADER_LEN)).map_err(io_error)?;
    Ok(Some(BufReader::with_capacity(1 << 16, file.take(len))))
}

/// Reads the next MessagePack value of a verified body.
pub fn decode<T: DeserializeOwned, R: Read>(path: &Path, reader: &mut R) -> Result<T, PersistError> {
    T::deserialize(&mut rmp_serde::Deserializer::new(reader))
        .map_err(|e| PersistError::Decode { path: path.to_path_buf(), message: e.to_string() })
}

/// The first value of the snapshot file: where it comes from and what is
/// not in the zones.
#[derive(Serialize, Deserialize)]
struct SnapshotMeta {
    /// `Store::database_identity` of the database it was loaded from.
    database: String,
    /// The change-log position the copy reflects.
    seq: i64,
    /// When it was written (Unix seconds).
    written_at: i64,
    /// How many zone values follow.
    zones: u64,
    /// Health verdicts by check id.
    health: Vec<(String, bool)>,
    /// Every account's routing data.
    routing: Vec<RoutingCopy>,
}

/// A CIDR block with its value: (network address, prefix length, value).
type Block<T> = (IpAddr, u8, T);

/// One account's routing data in source form (what `AccountRouting::build` takes).
#[derive(Serialize, Deserialize)]
struct RoutingCopy {
    account_id: String,
    /// Collection id → (block address, length, location name), in table order.
    collections: Vec<(String, Vec<Block<String>>)>,
    /// (block address, length, region, milliseconds).
    latency: Vec<(IpAddr, u8, String, f32)>,
    /// (region code, latitude, longitude).
    regions: Vec<(String, f64, f64)>,
}

impl RoutingCopy {
    fn of(account_id: &str, routing: &AccountRouting) -> Self {
        let collections = routing
            .cidr_collections
            .iter()
            .map(|(id, map)| {
                let blocks =
                    map.entries().iter().map(|(p, name)| (p.addr(), p.len(), name.clone())).collect();
                (id.clone(), blocks)
            })
            .collect();
        let latency = routing
            .latency
            .entries()
            .iter()
            .flat_map(|(p, regions)| regions.iter().map(move |(r, ms)| (p.addr(), p.len(), r.clone(), *ms)))
            .collect();
        let regions =
            routing.regions.iter().map(|(code, c)| (code.clone(), c.latitude, c.longitude)).collect();
        RoutingCopy { account_id: account_id.to_string(), collections, latency, regions }
    }

    fn build(self) -> (String, AccountRouting) {
        let collections = self
            .collections
            .into_iter()
            .map(|(id, blocks)| CidrCollectionData {
                id,
                // One location entry per block keeps the table's order exactly.
                locations: blocks
                    .into_iter()
                    .map(|(addr, len, name)| (name, vec![Prefix::new(addr, len)]))
                    .collect(),
            })
            .collect();
        let latency = self
            .latency
            .into_iter()
            .map(|(addr, len, region, ms)| (Prefix::new(addr, len), region, ms))
            .collect();
        let regions = self
            .regions
            .into_iter()
            .map(|(code, latitude, longitude)| (code, Coordinates { latitude, longitude }))
            .collect();
        (self.account_id, AccountRouting::build(collections, latency, regions))
    }
}

/// One zone as written: its row and record sets, borrowed from the snapshot.
#[derive(Serialize)]
struct ZoneOut<'a> {
    zone: &'a HostedZone,
    rrsets: Vec<&'a RecordSet>,
}

/// One zone as read.
#[derive(Deserialize)]
struct ZoneIn {
    zone: HostedZone,
    rrsets: Vec<RecordSet>,
}

/// A snapshot read back from disk.
pub struct SnapshotCopy {
    /// The change-log position it reflects.
    pub seq: i64,
    /// The zones and routing data, with the registry's usage cells.
    pub snapshot: Snapshot,
    /// Health verdicts.
    pub health: HashMap<String, bool>,
}

/// Writes the snapshot (zones, routing data, health verdicts, seq) to
/// `path`, streaming zone by zone. Returns the file's size.
pub fn write_snapshot(
    path: &Path,
    database: &str,
    seq: i64,
    snapshot: &Snapshot,
    health: &HashMap<String, bool>,
) -> Result<u64, PersistError> {
    let meta = SnapshotMeta {
        database: database.to_string(),
        seq,
        written_at: chrono::Utc::now().timestamp(),
        zones: snapshot.zone_count() as u64,
        health: health.iter().map(|(id, healthy)| (id.clone(), *healthy)).collect(),
        routing: snapshot.routing().map(|(account, routing)| RoutingCopy::of(account, routing)).collect(),
    };
    write_atomically(path, SNAPSHOT_MAGIC, |out| {
        encode(out, &meta)?;
        for zone in snapshot.zones() {
            encode(out, &ZoneOut { zone: &zone.zone, rrsets: zone.record_sets().collect() })?;
        }
        Ok(())
    })
}

/// Reads the snapshot at `path` written for `database`, building its zones
/// with the registry's usage cells. None when there is no file.
pub fn read_snapshot(
    path: &Path,
    database: &str,
    usage: &UsageRegistry,
) -> Result<Option<SnapshotCopy>, PersistError> {
    let Some(mut reader) = open_verified(path, SNAPSHOT_MAGIC, "snapshot")? else { return Ok(None) };
    let meta: SnapshotMeta = decode(path, &mut reader)?;
    if meta.database != database {
        return Err(PersistError::OtherDatabase {
            path: path.to_path_buf(),
            found: meta.database,
            expected: database.to_string(),
        });
    }
    let mut snapshot = Snapshot::empty();
    for _ in 0..meta.zones {
        let zone: ZoneIn = decode(path, &mut reader)?;
        if let Some(content) = build_zone(zone.zone, &zone.rrsets, usage) {
            snapshot.insert(content);
        }
    }
    for routing in meta.routing {
        let (account, routing) = routing.build();
        snapshot.insert_routing(&account, Arc::new(routing));
    }
    Ok(Some(SnapshotCopy { seq: meta.seq, snapshot, health: meta.health.into_iter().collect() }))
}

/// Keeps the snapshot file equal to what the server answers from: writes it
/// at most every `MIN_WRITE_GAP` (longer when writing is slow) after the
/// snapshot, the applied seq or the health verdicts changed, and once more
/// when stopped.
pub struct Persister {
    path: PathBuf,
    database: String,
    state: Arc<ServerState>,
    written_generation: u64,
    written_seq: i64,
    written_health: Arc<HashMap<String, bool>>,
}

impl Persister {
    /// A persister of `state` into `path`; what `state` holds now counts as
    /// written (it was just read from there, or is empty).
    pub fn new(path: PathBuf, database: String, state: Arc<ServerState>) -> Self {
        let written_generation = state.snapshot_generation();
        let written_seq = state.applied_seq();
        let written_health = state.health.load_full();
        Persister { path, database, state, written_generation, written_seq, written_health }
    }

    /// Writes when something changed; returns how long writing took.
    async fn write_if_changed(&mut self) -> Duration {
        // Generation and seq first, then the snapshot: what is written is
        // at least as new as the seq it is labelled with.
        let generation = self.state.snapshot_generation();
        let seq = self.state.applied_seq();
        let health = self.state.health.load_full();
        let health_changed = !Arc::ptr_eq(&health, &self.written_health) && *health != *self.written_health;
        if !self.state.ready.load(Ordering::Acquire)
            || (generation == self.written_generation && seq == self.written_seq && !health_changed)
        {
            return Duration::ZERO;
        }
        let snapshot = self.state.snapshot.load_full();
        let (path, database) = (self.path.clone(), self.database.clone());
        let started = Instant::now();
        let written = {
            let health = health.clone();
            tokio::task::spawn_blocking(move || write_snapshot(&path, &database, seq, &snapshot, &health))
                .await
        };
        match written {
            Ok(Ok(bytes)) => {
                tracing::debug!(seq, bytes, took = ?started.elapsed(), "snapshot written to disk");
                self.written_generation = generation;
                self.written_seq = seq;
                self.written_health = health;
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "writing the snapshot to disk failed; will retry"),
            Err(e) => tracing::warn!(error = %e, "writing the snapshot to disk failed; will retry"),
        }
        started.elapsed()
    }

    /// Runs until `stop` turns true, then writes a last time.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let mut gap = MIN_WRITE_GAP;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(gap) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            // Writing may take no more than about a quarter of the time.
            gap = MIN_WRITE_GAP.max(self.write_if_changed().await * 3);
        }
        self.write_if_changed().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use signpost_core::cidr::PrefixMap;

    fn temp_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("signpost-persist-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn sample() -> (Snapshot, HashMap<String, bool>) {
        let rrsets = vec![
            RecordSet::simple(
                "example.com.",
                "SOA",
                900,
                &["ns1.example.com. h.example.com. 1 7200 900 1209600 60"],
            ),
            RecordSet::simple("example.com.", "NS", 3600, &["ns1.example.com."]),
            RecordSet::simple("www.example.com.", "A", 60, &["192.0.2.1", "192.0.2.2"]),
            RecordSet {
                set_identifier: Some("one".into()),
                weight: Some(3),
                health_check_id: Some("H1".into()),
                ..RecordSet::simple("w.example.com.", "A", 60, &["192.0.2.3"])
            },
            RecordSet {
                set_identifier: Some("two".into()),
                weight: Some(0),
                ..RecordSet::simple("w.example.com.", "A", 60, &["192.0.2.4"])
            },
        ];
        let zone =
            HostedZone { id: "Z1".into(), account_id: "A1".into(), name: "example.com.".into(), serial: 9 };
        let registry = UsageRegistry::default();
        let mut snapshot = Snapshot::from_zones(build_zone(zone, &rrsets, &registry));
        let p = |s: &str| Prefix::parse(s, "cidr").unwrap();
        let routing = AccountRouting::build(
            vec![CidrCollectionData {
                id: "C1".into(),
                locations: vec![("here".into(), vec![p("10.0.0.0/8"), p("2001:db8::/32")])],
            }],
            vec![(p("192.0.2.0/24"), "eu-west-1".into(), 12.5)],
            vec![("lab-1".into(), Coordinates { latitude: 1.5, longitude: -2.0 })],
        );
        snapshot.insert_routing("A1", Arc::new(routing));
        (snapshot, HashMap::from([("H1".to_string(), false)]))
    }

    fn sorted_sets(snapshot: &Snapshot) -> Vec<String> {
        let mut sets: Vec<String> =
            snapshot.zones().flat_map(|z| z.record_sets().map(|r| format!("{r:?}"))).collect();
        sets.sort();
        sets
    }

    fn entries<T: Clone>(map: &PrefixMap<T>) -> Vec<(String, T)> {
        map.entries().iter().map(|(p, v)| (p.to_string(), v.clone())).collect()
    }

    #[test]
    fn a_written_snapshot_reads_back_the_same() {
        let dir = temp_dir();
        let path = dir.join(SNAPSHOT_FILE);
        let (snapshot, health) = sample();
        write_snapshot(&path, "db1", 42, &snapshot, &health).unwrap();
        let copy = read_snapshot(&path, "db1", &UsageRegistry::default()).unwrap().unwrap();
        assert_eq!(copy.seq, 42);
        assert_eq!(copy.health, health);
        assert_eq!(sorted_sets(&copy.snapshot), sorted_sets(&snapshot));
        let zone = copy.snapshot.zone_by_id("Z1").unwrap();
        assert_eq!(zone.serial(), 9);
        let (a, b) = (copy.snapshot.routing_for("A1").unwrap(), snapshot.routing_for("A1").unwrap());
        assert_eq!(entries(&a.cidr_collections["C1"]), entries(&b.cidr_collections["C1"]));
        assert_eq!(entries(&a.latency), entries(&b.latency));
        assert_eq!(a.regions, b.regions);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn damaged_foreign_and_missing_files_are_refused_or_absent() {
        let dir = temp_dir();
        let path = dir.join(SNAPSHOT_FILE);
        let registry = UsageRegistry::default();
        assert!(read_snapshot(&path, "db1", &registry).unwrap().is_none());
        let (snapshot, health) = sample();
        write_snapshot(&path, "db1", 1, &snapshot, &health).unwrap();
        assert!(matches!(read_snapshot(&path, "db2", &registry), Err(PersistError::OtherDatabase { .. })));
        let good = std::fs::read(&path).unwrap();
        let mut flipped = good.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 0x40;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(read_snapshot(&path, "db1", &registry), Err(PersistError::Damaged { .. })));
        std::fs::write(&path, &good[..good.len() - 3]).unwrap();
        assert!(matches!(read_snapshot(&path, "db1", &registry), Err(PersistError::Damaged { .. })));
        let mut other_version = good.clone();
        other_version[8] = 99;
        std::fs::write(&path, &other_version).unwrap();
        assert!(matches!(
            read_snapshot(&path, "db1", &registry),
            Err(PersistError::Version { found: 99, .. })
        ));
        std::fs::write(&path, b"hello").unwrap();
        assert!(matches!(read_snapshot(&path, "db1", &registry), Err(PersistError::Header { .. })));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
