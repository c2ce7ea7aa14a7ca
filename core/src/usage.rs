//! Query counting and pricing. Counting is a per-zone cell of atomic
//! counters, sharded by worker so that workers do not share cache lines;
//! pricing is Route 53's public price list, overridable.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use serde::{Deserialize, Serialize};

use crate::model::UsageCategory;

/// Shards of a zone's counters (workers pick one by thread).
const SHARDS: usize = 8;

#[repr(align(64))]
#[derive(Default)]
struct Shard([AtomicU64; 5]);

/// A hosted zone's query counters, kept across snapshot rebuilds of the zone.
#[derive(Default)]
pub struct ZoneUsage {
    shards: [Shard; SHARDS],
}

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static SHARD: usize = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
}

impl ZoneUsage {
    /// Counts one query in `category` (no lock; a relaxed atomic add on
    /// this thread's shard).
    pub fn count(&self, category: UsageCategory) {
        let shard = SHARD.with(|s| *s);
        self.shards[shard].0[category.as_index()].fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the counts since the last call, per category (index = `UsageCategory::as_index`).
    pub fn take(&self) -> [u64; 5] {
        let mut total = [0u64; 5];
        for shard in &self.shards {
            for (i, counter) in shard.0.iter().enumerate() {
                total[i] += counter.swap(0, Ordering::Relaxed);
            }
        }
        total
    }

    /// Gives counts back (a flush that will be retried as a new batch).
    pub fn restore(&self, counts: [u64; 5]) {
        for (i, n) in counts.into_iter().enumerate() {
            if n > 0 {
                self.shards[0].0[i].fetch_add(n, Ordering::Relaxed);
            }
        }
    }
}

/// Price of one million queries in a category, below and above one billion
/// queries a month.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryPrice {
    /// USD per million for the first billion.
    pub first_billion: f64,
    /// USD per million after that.
    pub after: f64,
}

/// The price list (USD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PriceTable {
    /// Hosted zone per month, for the first 25 zones of an account.
    pub hosted_zone_first_25: f64,
    /// Hosted zone per month after 25.
    pub hosted_zone_after_25: f64,
    /// Standard queries.
    pub standard: QueryPrice,
    /// Latency-based queries.
    pub latency: QueryPrice,
    /// Geolocation queries.
    pub geolocation: QueryPrice,
    /// Geoproximity queries.
    pub geoproximity: QueryPrice,
    /// IP-based queries.
    pub ip_based: QueryPrice,
    /// Health check per month (non-AWS endpoint).
    pub health_check: f64,
}

impl Default for PriceTable {
    /// Route 53's public prices (research/route53.md §6).
    fn default() -> Self {
        PriceTable {
            hosted_zone_first_25: 0.50,
            hosted_zone_after_25: 0.10,
            standard: QueryPrice { first_billion: 0.40, after: 0.20 },
            latency: QueryPrice { first_billion: 0.60, after: 0.30 },
            geolocation: QueryPrice { first_billion: 0.70, after: 0.35 },
            geoproximity: QueryPrice { first_billion: 0.70, after: 0.35 },
            ip_based: QueryPrice { first_billion: 0.80, after: 0.40 },
            health_check: 0.75,
        }
    }
}

impl PriceTable {
    /// The price of a category.
    pub fn of(&self, category: UsageCategory) -> QueryPrice {
        match category {
            UsageCategory::Standard => self.standard,
            UsageCategory::Latency => self.latency,
            UsageCategory::Geolocation => self.geolocation,
            UsageCategory::Geoproximity => self.geoproximity,
            UsageCategory::IpBased => self.ip_based,
        }
    }

    /// Cost of `queries` in `category` when `before` queries of that category
    /// were already billed this month (tiers apply per category and account).
    pub fn query_cost(&self, category: UsageCategory, before: u64, queries: u64) -> f64 {
        const BILLION: u64 = 1_000_000_000;
        let price = self.of(category);
        let first = queries.min(BILLION.saturating_sub(before));
        let rest = queries - first;
        (first as f64 * price.first_billion + rest as f64 * price.after) / 1_000_000.0
    }

    /// Monthly cost of the `index`-th hosted zone of an account (0-based).
    pub fn hosted_zone_cost(&self, index: usize) -> f64 {
        if index < 25 { self.hosted_zone_first_25 } else { self.hosted_zone_after_25 }
    }
}

/// Rounds a USD amount to whole millionths (stable JSON numbers).
pub fn round_usd(amount: f64) -> f64 {
    (amount * 1_000_000.0).round() / 1_000_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_across_threads_and_take_resets() {
        let usage = std::sync::Arc::new(ZoneUsage::default());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let u = usage.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        u.count(UsageCategory::Geolocation);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        usage.count(UsageCategory::Standard);
        assert_eq!(usage.take(), [1, 0, 4000, 0, 0]);
        assert_eq!(usage.take(), [0; 5]);
        usage.restore([2, 0, 0, 0, 1]);
        assert_eq!(usage.take(), [2, 0, 0, 0, 1]);
    }

    #[test]
    fn tiers_follow_route53_prices() {
        let prices = PriceTable::default();
        assert!((prices.query_cost(UsageCategory::Standard, 0, 1_000_000) - 0.40).abs() < 1e-9);
        assert!((prices.query_cost(UsageCategory::Geolocation, 0, 2_000_000) - 1.40).abs() < 1e-9);
        // Crossing the billion: half at each price.
        let cost = prices.query_cost(UsageCategory::Latency, 999_000_000, 2_000_000);
        assert!((cost - (0.60 + 0.30)).abs() < 1e-9, "{cost}");
        assert_eq!(prices.hosted_zone_cost(0), 0.50);
        assert_eq!(prices.hosted_zone_cost(25), 0.10);
    }
}
