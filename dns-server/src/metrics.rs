//! Prometheus metrics of the DNS server. The hot path bumps sharded atomic
//! counters; the values are copied into Prometheus counters only when the
//! registry is scraped, so answering does no label lookup and takes no lock.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use hickory_proto::op::ResponseCode;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntCounterVec, Opts};
use signpost_core::UsageCategory;

use crate::listeners::ListenerStats;

/// Category labels: the five usage categories, then `none` (no hosted zone).
const CATEGORIES: [&str; 6] = ["standard", "latency", "geolocation", "geoproximity", "ipBased", "none"];
/// Response-code labels.
const RCODES: [&str; 7] = ["NOERROR", "NXDOMAIN", "SERVFAIL", "REFUSED", "FORMERR", "NOTIMP", "OTHER"];
const SHARDS: usize = 8;

fn rcode_index(rcode: ResponseCode) -> usize {
    match rcode {
        ResponseCode::NoError => 0,
        ResponseCode::NXDomain => 1,
        ResponseCode::ServFail => 2,
        ResponseCode::Refused => 3,
        ResponseCode::FormErr => 4,
        ResponseCode::NotImp => 5,
        _ => 6,
    }
}

#[repr(align(64))]
struct Shard([[AtomicU64; 7]; 6]);

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

/// Answered queries by category and response code.
pub struct DnsMetrics {
    shards: Vec<Shard>,
    queries: IntCounterVec,
    panics: IntCounterVec,
    rrl: IntCounterVec,
    skipped: IntCounter,
    stats: Mutex<Option<Arc<ListenerStats>>>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        let queries = IntCounterVec::new(
            Opts::new(
                "signpost_dns_queries_total",
                "DNS responses sent, by usage category and response code",
            ),
            &["category", "rcode"],
        )
        .expect("static metric definition");
        let panics = IntCounterVec::new(
            Opts::new(
                "signpost_dns_listener_events_total",
                "Listener events: handler panics; TCP connections refused, evicted when idle to make \
                 room, closed for not reading (write timeout) or at the end of their lifetime",
            ),
            &["event"],
        )
        .expect("static metric definition");
        let rrl = IntCounterVec::new(
            Opts::new(
                "signpost_dns_rrl_responses_total",
                "UDP responses limited by response rate limiting: slipped (sent truncated) or dropped",
            ),
            &["action"],
        )
        .expect("static metric definition");
        let skipped = IntCounter::new(
            "signpost_dns_record_sets_skipped_total",
            "Stored record sets that failed to build into the snapshot and are not served",
        )
        .expect("static metric definition");
        DnsMetrics {
            shards: (0..SHARDS).map(|_| Shard(Default::default())).collect(),
            queries,
            panics,
            rrl,
            skipped,
            stats: Mutex::new(None),
        }
    }
}

impl DnsMetrics {
    /// Counts one response.
    pub fn count(&self, category: Option<UsageCategory>, rcode: ResponseCode) {
        let shard = SHARD.with(|s| *s);
        let c = category.map_or(5, |c| c.as_index());
        self.shards[shard].0[c][rcode_index(rcode)].fetch_add(1, Ordering::Relaxed);
    }

    /// Reports these listener counters too.
    pub fn watch_listeners(&self, stats: Arc<ListenerStats>) {
        if let Ok(mut slot) = self.stats.lock() {
            *slot = Some(stats);
        }
    }

    /// Total responses counted for `category`/`rcode` labels.
    pub fn total(&self, category: usize, rcode: usize) -> u64 {
        self.shards.iter().map(|s| s.0[category][rcode].load(Ordering::Relaxed)).sum()
    }
}

impl Collector for DnsMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.queries.desc();
        d.extend(self.panics.desc());
        d.extend(self.rrl.desc());
        d.extend(self.skipped.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        for (c, category) in CATEGORIES.iter().enumerate() {
            for (r, rcode) in RCODES.iter().enumerate() {
                let total = self.total(c, r);
                if total > 0 {
                    let counter = self.queries.with_label_values(&[category, rcode]);
                    counter.reset();
                    counter.inc_by(total);
                }
            }
        }
        if let Ok(slot) = self.stats.lock()
            && let Some(stats) = slot.as_ref()
        {
            for (event, value) in [
                ("handler_panic", &stats.handler_panics),
                ("tcp_refused", &stats.tcp_refused),
                ("tcp_evicted", &stats.tcp_evicted),
                ("tcp_write_timeout", &stats.tcp_write_timeouts),
                ("tcp_lifetime_end", &stats.tcp_lifetime_ends),
            ] {
                let counter = self.panics.with_label_values(&[event]);
                counter.reset();
                counter.inc_by(value.load(Ordering::Relaxed));
            }
            for (action, value) in [("slipped", &stats.rrl_slipped), ("dropped", &stats.rrl_dropped)] {
                let counter = self.rrl.with_label_values(&[action]);
                counter.reset();
                counter.inc_by(value.load(Ordering::Relaxed));
            }
        }
        self.skipped.reset();
        self.skipped.inc_by(crate::follower::SKIPPED_RECORD_SETS.load(Ordering::Relaxed));
        let mut families = self.queries.collect();
        families.extend(self.panics.collect());
        families.extend(self.rrl.collect());
        families.extend(self.skipped.collect());
        families
    }
}

/// A shared [`DnsMetrics`] as a collector for a Prometheus registry.
pub struct MetricsCollector(pub Arc<DnsMetrics>);

impl Collector for MetricsCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0.collect()
    }
}
