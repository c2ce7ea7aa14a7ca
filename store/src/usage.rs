//! Usage counters: each DNS server flushes its query deltas as one
//! transaction keyed by (server id, sequence), so a flush retried after an
//! unknown outcome counts once.

use chrono::{Datelike, NaiveDate};
use signpost_core::UsageCategory;
use sqlx::Row;

use crate::{Result, Store};

/// Queries of one zone and category to add.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageDelta {
    /// Zone id.
    pub zone_id: String,
    /// Category.
    pub category: UsageCategory,
    /// Queries to add.
    pub queries: i64,
}

/// Counts of one zone in one month, by category (index = `UsageCategory::as_index`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneMonthUsage {
    /// Zone id.
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Queries per category.
    pub queries: [i64; 5],
}

/// The first day of the month of `date`.
pub fn month_of(date: NaiveDate) -> NaiveDate {
    date.with_day0(0).unwrap_or(date)
}

impl Store {
    /// Adds a flush's deltas for `month` unless (`server_id`, `seq`) was
    /// already applied. Returns whether it was applied now.
    pub async fn flush_usage(
        &self,
        server_id: &str,
        seq: i64,
        month: NaiveDate,
        deltas: &[UsageDelta],
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let fresh = sqlx::query(
            "INSERT INTO usage_flushes (server_id, seq) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING seq",
        )
        .bind(server_id)
        .bind(seq)
        .fetch_optional(&mut *tx)
        .await?;
        if fresh.is_none() {
            tx.commit().await?;
            return Ok(false);
        }
        let zones: Vec<&str> = deltas.iter().map(|d| d.zone_id.as_str()).collect();
        let categories: Vec<&str> = deltas.iter().map(|d| d.category.as_str()).collect();
        let queries: Vec<i64> = deltas.iter().map(|d| d.queries).collect();
        sqlx::query(
            "INSERT INTO usage_counters (zone_id, month, category, queries)
             SELECT z, $1, c, q FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(z, c, q)
             ON CONFLICT (zone_id, month, category)
             DO UPDATE SET queries = usage_counters.queries + excluded.queries",
        )
        .bind(month_of(month))
        .bind(&zones)
        .bind(&categories)
        .bind(&queries)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes flush keys older than `older_than`; returns how many. Keep
    /// them longer than any spill may wait to be replayed, or a batch that
    /// had committed before its reply was lost would count twice.
    pub async fn prune_usage_flushes(&self, older_than: std::time::Duration) -> Result<u64> {
        let seconds = older_than.as_secs_f64();
        let done =
            sqlx::query("DELETE FROM usage_flushes WHERE flushed_at < now() - make_interval(secs => $1)")
                .bind(seconds)
                .execute(self.pool())
                .await?;
        Ok(done.rows_affected())
    }

    /// A zone's counts for a month.
    pub async fn zone_usage(&self, zone_id: &str, month: NaiveDate) -> Result<[i64; 5]> {
        let rows =
            sqlx::query("SELECT category, queries FROM usage_counters WHERE zone_id = $1 AND month = $2")
                .bind(zone_id)
                .bind(month_of(month))
                .fetch_all(self.pool())
                .await?;
        let mut counts = [0i64; 5];
        for row in rows {
            let category: String = row.try_get("category")?;
            if let Some(c) = UsageCategory::ALL.iter().find(|c| c.as_str() == category) {
                counts[c.as_index()] += row.try_get::<i64, _>("queries")?;
            }
        }
        Ok(counts)
    }

    /// Every zone of an account with its counts for a month (zones without
    /// queries included), ordered by name.
    pub async fn account_usage(&self, account_id: &str, month: NaiveDate) -> Result<Vec<ZoneMonthUsage>> {
        let rows = sqlx::query(
            "SELECT z.id, z.name, u.category, coalesce(u.queries, 0) AS queries
             FROM hosted_zones z
             LEFT JOIN usage_counters u ON u.zone_id = z.id AND u.month = $2
             WHERE z.account_id = $1 ORDER BY z.name, z.id",
        )
        .bind(account_id)
        .bind(month_of(month))
        .fetch_all(self.pool())
        .await?;
        let mut out: Vec<ZoneMonthUsage> = Vec::new();
        for row in rows {
            let zone_id: String = row.try_get("id")?;
            if out.last().is_none_or(|z| z.zone_id != zone_id) {
                out.push(ZoneMonthUsage { zone_id, zone_name: row.try_get("name")?, queries: [0; 5] });
            }
            let category: Option<String> = row.try_get("category")?;
            if let (Some(zone), Some(category)) = (out.last_mut(), category)
                && let Some(c) = UsageCategory::ALL.iter().find(|c| c.as_str() == category)
            {
                zone.queries[c.as_index()] += row.try_get::<i64, _>("queries")?;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_start_on_the_first() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        assert_eq!(month_of(d), NaiveDate::from_ymd_opt(2026, 11, 1).unwrap());
    }
}
