//! Response rate limiting (RRL) for UDP, as NSD, Knot and BIND do it: a token
//! bucket per (client network, kind of response, what was asked), refilled
//! at a fixed rate; a response over the rate is dropped, except every Nth,
//! which is "slipped" as an empty TC=1 answer so that a real client retries
//! over TCP (which is not rate-limited) while a spoofed victim gets little.
//!
//! The buckets live in a fixed-size table (a power of two, allocated once):
//! a bucket is found by a keyed hash and overwritten when another key hashes
//! to it (NSD's rule), so spoofed sources cannot make it grow. Time is passed
//! in by the caller ([`RrlTable::decide`] does no IO and reads no clock, so
//! it is unit-tested with made-up times); [`RateLimiter`] reads the monotonic
//! clock.

use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// What kind of response a bucket counts (the classes of BIND and NSD).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResponseKind {
    /// Records for the name and type asked (counted per name and type).
    Positive,
    /// The name exists without the type (counted per name).
    NoData,
    /// The name does not exist (counted per zone: random subdomains share a bucket).
    NxDomain,
    /// A referral to a child zone (counted per zone cut).
    Referral,
    /// REFUSED, FORMERR, SERVFAIL, NOTIMP and the like (one bucket per network).
    Error,
}

/// Which bucket a response counts against, besides the client's network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ResponseIdentity {
    /// The kind of response.
    pub kind: ResponseKind,
    /// Hash of what distinguishes buckets of this kind (name and type, zone, cut; 0 for errors).
    pub detail: u64,
}

impl ResponseIdentity {
    /// The identity of an error response (one bucket per network).
    pub const ERROR: ResponseIdentity = ResponseIdentity { kind: ResponseKind::Error, detail: 0 };
}

/// What to do with a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within the rate: send it.
    Send,
    /// Over the rate, and this one is slipped: send it truncated (TC=1, no records).
    Slip,
    /// Over the rate: send nothing.
    Drop,
}

/// RRL settings.
#[derive(Debug, Clone, Copy)]
pub struct RrlConfig {
    /// Responses per second allowed per bucket (also the burst); 0 turns RRL off.
    pub responses_per_second: u32,
    /// Every `slip`-th limited response is slipped (TC=1); 0 drops them all, 1 slips them all.
    pub slip: u32,
    /// IPv4 clients are grouped by this prefix length.
    pub ipv4_prefix: u8,
    /// IPv6 clients are grouped by this prefix length.
    pub ipv6_prefix: u8,
    /// Buckets in the table (rounded up to a power of two; memory is fixed at start).
    pub table_size: usize,
    /// Whether loopback sources (127.0.0.0/8, ::1) are exempt: they cannot be
    /// spoofed from outside, and local tools and tests query at high rates.
    pub exempt_loopback: bool,
}

impl Default for RrlConfig {
    /// Generous limits (NSD's rate and slip, BIND's prefixes).
    fn default() -> Self {
        RrlConfig {
            responses_per_second: 200,
            slip: 2,
            ipv4_prefix: 24,
            ipv6_prefix: 56,
            table_size: 1 << 17,
            exempt_loopback: true,
        }
    }
}

/// One token bucket. `key` 0 marks an unused bucket.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    /// The full hash of the key that owns the bucket.
    key: u64,
    /// When tokens were last added, in milliseconds.
    stamp_ms: u64,
    /// Tokens left, in thousandths of a response.
    milli_tokens: u64,
    /// Limited responses so far (for the slip count).
    limited: u32,
}

/// Buckets are split into this many independently locked stripes.
const STRIPES: usize = 64;

/// The fixed-size bucket table; the caller passes the time.
pub struct RrlTable {
    config: RrlConfig,
    stripes: Vec<Mutex<Box<[Bucket]>>>,
    /// Buckets per stripe (a power of two).
    stripe_len: usize,
    hasher: std::collections::hash_map::RandomState,
}

impl RrlTable {
    /// A table of `config.table_size` buckets (at least one per stripe), rounded up to a power of two.
    pub fn new(config: RrlConfig) -> RrlTable {
        let total = config.table_size.clamp(STRIPES, 1 << 26).next_power_of_two();
        let stripe_len = total / STRIPES;
        let stripes = (0..STRIPES)
            .map(|_| Mutex::new(vec![Bucket::default(); stripe_len].into_boxed_slice()))
            .collect();
        RrlTable { config, stripes, stripe_len, hasher: Default::default() }
    }

    /// Number of buckets (fixed for the table's life).
    pub fn capacity(&self) -> usize {
        self.stripe_len * STRIPES
    }

    /// The settings.
    pub fn config(&self) -> &RrlConfig {
        &self.config
    }

    /// The network a client is grouped in: its address masked to the prefix.
    pub fn network(&self, ip: IpAddr) -> IpAddr {
        network_of(ip, self.config.ipv4_prefix, self.config.ipv6_prefix)
    }

    /// Whether responses to `ip` are limited at all.
    pub fn applies_to(&self, ip: IpAddr) -> bool {
        self.config.responses_per_second > 0
            && !(self.config.exempt_loopback && ip.to_canonical().is_loopback())
    }

    /// Counts one response to `ip` at `now_ms` and says what to do with it.
    pub fn decide(&self, ip: IpAddr, identity: ResponseIdentity, now_ms: u64) -> Verdict {
        if !self.applies_to(ip) {
            return Verdict::Send;
        }
        // Never 0: 0 marks an unused bucket.
        let key = self.hasher.hash_one((self.network(ip), identity)) | 1;
        let stripe = (key >> 58) as usize % STRIPES;
        let index = (key as usize >> 1) & (self.stripe_len - 1);
        let rate = u64::from(self.config.responses_per_second);
        let full = rate * 1000;
        let Ok(mut buckets) = self.stripes[stripe].lock() else { return Verdict::Send };
        let bucket = &mut buckets[index];
        if bucket.key != key {
            // A new key, or another one that hashed here: it takes the bucket over.
            *bucket = Bucket { key, stamp_ms: now_ms, milli_tokens: full, limited: 0 };
        } else {
            // `rate` responses per second is `rate` thousandths per millisecond.
            let elapsed = now_ms.saturating_sub(bucket.stamp_ms);
            bucket.milli_tokens = bucket.milli_tokens.saturating_add(elapsed.saturating_mul(rate)).min(full);
            bucket.stamp_ms = bucket.stamp_ms.max(now_ms);
        }
        if bucket.milli_tokens >= 1000 {
            bucket.milli_tokens -= 1000;
            return Verdict::Send;
        }
        bucket.limited = bucket.limited.wrapping_add(1);
        match self.config.slip {
            0 => Verdict::Drop,
            n if bucket.limited % n == 0 => Verdict::Slip,
            _ => Verdict::Drop,
        }
    }
}

/// `ip` (IPv4-mapped addresses as IPv4) masked to `ipv4_prefix` or `ipv6_prefix` bits.
pub fn network_of(ip: IpAddr, ipv4_prefix: u8, ipv6_prefix: u8) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let bits = u32::from(ipv4_prefix.min(32));
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            IpAddr::from((u32::from(v4) & mask).to_be_bytes())
        }
        IpAddr::V6(v6) => {
            let bits = u32::from(ipv6_prefix.min(128));
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            IpAddr::from((u128::from(v6) & mask).to_be_bytes())
        }
    }
}

/// An [`RrlTable`] on the monotonic clock.
pub struct RateLimiter {
    table: RrlTable,
    start: Instant,
}

impl RateLimiter {
    /// A limiter with these settings.
    pub fn new(config: RrlConfig) -> RateLimiter {
        RateLimiter { table: RrlTable::new(config), start: Instant::now() }
    }

    /// Counts one response to `ip` now and says what to do with it.
    pub fn decide(&self, ip: IpAddr, identity: ResponseIdentity) -> Verdict {
        if !self.table.applies_to(ip) {
            return Verdict::Send;
        }
        let now_ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.table.decide(ip, identity, now_ms)
    }

    /// The table (for its settings and size).
    pub fn table(&self) -> &RrlTable {
        &self.table
    }
}

/// Hashes a name case-insensitively, label by label, with a type (for [`ResponseIdentity::detail`]).
pub fn name_hash(name: &hickory_proto::rr::Name, extra: u16) -> u64 {
    let labels = name
        .iter()
        .flat_map(|label| std::iter::once(label.len() as u8).chain(label.iter().map(u8::to_ascii_lowercase)));
    fnv(labels.chain(std::iter::once(0)).chain(extra.to_be_bytes()))
}

/// Hashes bytes (for [`ResponseIdentity::detail`]).
pub fn bytes_hash(bytes: &[u8]) -> u64 {
    fnv(bytes.iter().copied())
}

/// FNV-1a: stable and cheap; the table mixes it with its random key.
fn fnv(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes
        .into_iter()
        .fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(rate: u32, slip: u32) -> RrlConfig {
        RrlConfig {
            responses_per_second: rate,
            slip,
            table_size: 1024,
            exempt_loopback: false,
            ..Default::default()
        }
    }

    const POSITIVE: ResponseIdentity = ResponseIdentity { kind: ResponseKind::Positive, detail: 7 };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn tally(table: &RrlTable, from: IpAddr, n: usize, now_ms: u64) -> (usize, usize, usize) {
        let (mut sent, mut slipped, mut dropped) = (0, 0, 0);
        for _ in 0..n {
            match table.decide(from, POSITIVE, now_ms) {
                Verdict::Send => sent += 1,
                Verdict::Slip => slipped += 1,
                Verdict::Drop => dropped += 1,
            }
        }
        (sent, slipped, dropped)
    }

    #[test]
    fn a_burst_gets_the_rate_then_refills_at_the_rate() {
        let table = RrlTable::new(config(10, 2));
        let client = ip("192.0.2.1");
        // A full bucket: 10 sent, the other 90 limited, every second one slipped.
        assert_eq!(tally(&table, client, 100, 0), (10, 45, 45));
        // 500 ms later: 5 more tokens.
        assert_eq!(tally(&table, client, 20, 500).0, 5);
        // Ten seconds idle refills to the burst, not beyond.
        assert_eq!(tally(&table, client, 100, 10_500).0, 10);
        // Steady 1,000 queries/s for 3 s at 1 ms steps: about 10/s get through.
        let mut sent = 0;
        for ms in 0..3000 {
            if table.decide(client, POSITIVE, 20_000 + ms) == Verdict::Send {
                sent += 1;
            }
        }
        assert!((30..=41).contains(&sent), "{sent} sent in 3 s at 10/s");
    }

    #[test]
    fn slip_zero_drops_all_and_slip_one_slips_all() {
        let drop_all = RrlTable::new(config(5, 0));
        assert_eq!(tally(&drop_all, ip("192.0.2.1"), 20, 0), (5, 0, 15));
        let slip_all = RrlTable::new(config(5, 1));
        assert_eq!(tally(&slip_all, ip("192.0.2.1"), 20, 0), (5, 15, 0));
        let every_third = RrlTable::new(config(5, 3));
        assert_eq!(tally(&every_third, ip("192.0.2.1"), 20, 0), (5, 5, 10));
    }

    #[test]
    fn clients_are_grouped_by_network_prefix() {
        let table = RrlTable::new(config(4, 2));
        // 192.0.2.0/24 shares one bucket per identity.
        assert_eq!(tally(&table, ip("192.0.2.1"), 4, 0).0, 4);
        assert_eq!(tally(&table, ip("192.0.2.200"), 4, 0).0, 0);
        // Another /24 has its own.
        assert_eq!(tally(&table, ip("192.0.3.1"), 4, 0).0, 4);
        // IPv6: one /56, whatever the /64s and interface ids.
        assert_eq!(tally(&table, ip("2001:db8:0:100::1"), 4, 0).0, 4);
        assert_eq!(tally(&table, ip("2001:db8:0:1ff:ffff::9"), 4, 0).0, 0);
        assert_eq!(tally(&table, ip("2001:db8:0:200::1"), 4, 0).0, 4);
        // An IPv4-mapped IPv6 address is the IPv4 client.
        assert_eq!(tally(&table, ip("::ffff:192.0.2.9"), 1, 0).0, 0);
        // Another kind of response from the same network has its own bucket.
        let nx = ResponseIdentity { kind: ResponseKind::NxDomain, detail: 7 };
        assert_eq!(table.decide(ip("192.0.2.1"), nx, 0), Verdict::Send);
        assert_eq!(table.network(ip("2001:db8:0:1ff:ffff::9")), ip("2001:db8:0:100::"));
        assert_eq!(table.network(ip("192.0.2.77")), ip("192.0.2.0"));
    }

    #[test]
    fn loopback_is_exempt_only_when_configured_and_zero_rate_is_off() {
        let exempt = RrlTable::new(RrlConfig { exempt_loopback: true, ..config(1, 1) });
        assert_eq!(tally(&exempt, ip("127.0.0.1"), 50, 0), (50, 0, 0));
        assert_eq!(tally(&exempt, ip("::1"), 50, 0), (50, 0, 0));
        assert_eq!(tally(&exempt, ip("192.0.2.1"), 50, 0).0, 1);
        let limited = RrlTable::new(config(1, 1));
        assert_eq!(tally(&limited, ip("127.0.0.1"), 50, 0).0, 1);
        let off = RrlTable::new(config(0, 1));
        assert_eq!(tally(&off, ip("192.0.2.1"), 500, 0), (500, 0, 0));
    }

    #[test]
    fn the_table_never_grows_under_spoofed_sources() {
        let table = RrlTable::new(config(2, 2));
        let capacity = table.capacity();
        assert_eq!(capacity, 1024);
        let bytes = |t: &RrlTable| t.stripes.iter().map(|s| s.lock().unwrap().len()).sum::<usize>();
        let before = bytes(&table);
        // A million distinct sources (every /24 of 1.0.0.0 - 16.255.255.0).
        for i in 0..1_000_000u32 {
            let source = IpAddr::from(((1 << 24) + (i << 8)).to_be_bytes());
            table.decide(source, POSITIVE, u64::from(i / 1000));
        }
        assert_eq!(table.capacity(), capacity);
        assert_eq!(bytes(&table), before);
        // Sizes are rounded up to a power of two; tiny sizes get one bucket per stripe.
        assert_eq!(RrlTable::new(RrlConfig { table_size: 1000, ..config(1, 1) }).capacity(), 1024);
        assert_eq!(RrlTable::new(RrlConfig { table_size: 1, ..config(1, 1) }).capacity(), STRIPES);
    }

    #[test]
    fn names_hash_case_insensitively() {
        let a = hickory_proto::rr::Name::from_ascii("WwW.Example.COM.").unwrap();
        let b = hickory_proto::rr::Name::from_ascii("www.example.com.").unwrap();
        assert_eq!(name_hash(&a, 1), name_hash(&b, 1));
        assert_ne!(name_hash(&a, 1), name_hash(&b, 28));
    }
}
