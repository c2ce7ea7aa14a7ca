//! What usage costs: the price list (Route 53's by default, overridable with
//! a JSON file) applied to an account's month. Pure, so the attribution
//! rules are unit-tested.
//!
//! Query tiers (the first billion queries of a category in a month) are
//! account-wide; they are attributed to zones in name order, so the zone
//! that takes the account past a billion pays the lower price for the rest.
//! Hosted zones are priced by creation order among the zones that existed
//! in the month (the first 25 at the first price).

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use signpost_core::UsageCategory;
use signpost_core::usage::{PriceTable, round_usd};
use signpost_store::routing_api::ZoneCreated;
use signpost_store::usage::ZoneMonthUsage;

/// One zone's bill for a month.
#[derive(Debug, Clone, PartialEq)]
pub struct ZoneBill {
    /// Zone id.
    pub zone_id: String,
    /// Zone name.
    pub zone_name: String,
    /// Queries per category (index = `UsageCategory::as_index`).
    pub queries: [i64; 5],
    /// USD per category.
    pub query_costs: [f64; 5],
    /// USD for the zone itself.
    pub hosted_zone: f64,
    /// USD in all.
    pub total: f64,
}

/// Parses a month `YYYY-MM` into its first day.
pub fn parse_month(text: &str) -> Option<NaiveDate> {
    let (year, month) = text.split_once('-')?;
    if year.len() != 4 || month.len() != 2 || !(year.bytes().chain(month.bytes()).all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1).filter(|d| d.year() >= 1)
}

/// `YYYY-MM` of a date.
pub fn month_text(month: NaiveDate) -> String {
    format!("{:04}-{:02}", month.year(), month.month())
}

/// The first instant after the month that starts on `month`.
fn month_end(month: NaiveDate) -> Option<DateTime<Utc>> {
    let next = month.checked_add_months(chrono::Months::new(1))?;
    Some(next.and_hms_opt(0, 0, 0)?.and_utc())
}

/// Bills every zone of `usage` (the account's zones with their counts, in
/// name order) for `month`; `created` lists the account's zones in creation
/// order.
pub fn bill(
    prices: &PriceTable,
    month: NaiveDate,
    usage: &[ZoneMonthUsage],
    created: &[ZoneCreated],
) -> Vec<ZoneBill> {
    let end = month_end(month);
    // Index among the zones that existed in the month, in creation order.
    let existing: Vec<&str> =
        created.iter().filter(|z| end.is_none_or(|end| z.created_at < end)).map(|z| z.id.as_str()).collect();
    let mut before = [0u64; 5];
    usage
        .iter()
        .map(|zone| {
            let mut query_costs = [0.0; 5];
            for category in UsageCategory::ALL {
                let i = category.as_index();
                let n = u64::try_from(zone.queries[i]).unwrap_or(0);
                query_costs[i] = round_usd(prices.query_cost(category, before[i], n));
                before[i] = before[i].saturating_add(n);
            }
            let hosted_zone = existing
                .iter()
                .position(|id| *id == zone.zone_id)
                .map_or(0.0, |index| prices.hosted_zone_cost(index));
            let total = round_usd(query_costs.iter().sum::<f64>() + hosted_zone);
            ZoneBill {
                zone_id: zone.zone_id.clone(),
                zone_name: zone.zone_name.clone(),
                queries: zone.queries,
                query_costs,
                hosted_zone,
                total,
            }
        })
        .collect()
}

/// The largest price a price file may set (USD), so that costs stay finite numbers.
pub const MAX_PRICE: f64 = 1_000_000_000.0;

/// Reads a price list from JSON (camelCase, `PriceTable`'s fields; missing
/// fields, nested ones too, keep Route 53's prices). Unknown fields and
/// prices outside 0 to [`MAX_PRICE`] are refused.
pub fn parse_price_table(text: &str) -> Result<PriceTable, String> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let mut merged = serde_json::to_value(PriceTable::default()).map_err(|e| e.to_string())?;
    overlay(&mut merged, &value, "")?;
    serde_json::from_value(merged).map_err(|e| e.to_string())
}

/// Writes `value` over the defaults in `base`, field by field.
fn overlay(base: &mut serde_json::Value, value: &serde_json::Value, path: &str) -> Result<(), String> {
    match (base, value) {
        (serde_json::Value::Object(known), serde_json::Value::Object(fields)) => {
            for (name, field) in fields {
                let path = if path.is_empty() { name.clone() } else { format!("{path}.{name}") };
                let Some(slot) = known.get_mut(name) else {
                    return Err(format!("unknown price {path}"));
                };
                overlay(slot, field, &path)?;
            }
            Ok(())
        }
        (slot @ serde_json::Value::Number(_), serde_json::Value::Number(n)) => match n.as_f64() {
            Some(x) if (0.0..=MAX_PRICE).contains(&x) => {
                *slot = value.clone();
                Ok(())
            }
            _ => Err(format!("{path}: a price is a number of USD from 0 to {MAX_PRICE}")),
        },
        (known, _) => {
            Err(format!("{path}: expected {}", if known.is_object() { "an object" } else { "a number" }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(id: &str, queries: [i64; 5]) -> ZoneMonthUsage {
        ZoneMonthUsage { zone_id: id.into(), zone_name: format!("{id}.test."), queries }
    }

    fn created(id: &str, day: u32) -> ZoneCreated {
        ZoneCreated {
            id: id.into(),
            created_at: NaiveDate::from_ymd_opt(2026, 1, day)
                .unwrap()
                .and_hms_opt(0, 0, 0)
                .unwrap()
                .and_utc(),
        }
    }

    #[test]
    fn months_parse_strictly() {
        assert_eq!(parse_month("2026-11"), NaiveDate::from_ymd_opt(2026, 11, 1));
        for bad in
            ["2026-13", "2026-1", "26-11", "2026/11", "2026-11-01", "", "abcd-ef", "+026-11", "0000-01"]
        {
            assert_eq!(parse_month(bad), None, "{bad}");
        }
        assert_eq!(month_text(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()), "2026-03");
    }

    #[test]
    fn tiers_run_through_zones_in_name_order() {
        let prices = PriceTable::default();
        let month = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let usage = [zone("a", [999_999_000, 0, 0, 0, 0]), zone("b", [2_000, 0, 0, 0, 3_000_000])];
        let bills = bill(&prices, month, &usage, &[created("b", 1), created("a", 2)]);
        assert!((bills[0].query_costs[0] - 399.9996).abs() < 1e-9, "{:?}", bills[0]);
        // 1,000 at $0.40/M and 1,000 at $0.20/M.
        assert!((bills[1].query_costs[0] - 0.0006).abs() < 1e-9, "{:?}", bills[1]);
        assert!((bills[1].query_costs[4] - 2.4).abs() < 1e-9);
        assert_eq!((bills[0].hosted_zone, bills[1].hosted_zone), (0.5, 0.5));
        assert!((bills[1].total - 2.9006).abs() < 1e-9);
    }

    #[test]
    fn hosted_zones_are_priced_by_creation_among_existing_zones() {
        let prices = PriceTable::default();
        let ids: Vec<String> = (0..27).map(|i| format!("z{i:02}")).collect();
        let created: Vec<ZoneCreated> = ids.iter().map(|id| created(id, 1)).collect();
        let usage: Vec<ZoneMonthUsage> = ids.iter().map(|id| zone(id, [0; 5])).collect();
        let bills = bill(&prices, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), &usage, &created);
        assert_eq!(bills[24].hosted_zone, 0.5);
        assert_eq!(bills[25].hosted_zone, 0.1);
        // A zone created after the month did not exist in it.
        let bills = bill(&prices, NaiveDate::from_ymd_opt(2025, 12, 1).unwrap(), &usage[..1], &created[..1]);
        assert_eq!(bills[0].hosted_zone, 0.0);
    }

    #[test]
    fn price_files_are_checked() {
        let table =
            parse_price_table(r#"{"standard": {"firstBillion": 1.0}, "hostedZoneFirst25": 2}"#).unwrap();
        assert_eq!(table.standard.first_billion, 1.0);
        assert_eq!(table.standard.after, 0.20, "missing fields keep the default");
        assert_eq!(table.hosted_zone_first_25, 2.0);
        assert!(parse_price_table(r#"{"standrd": {}}"#).unwrap_err().contains("standrd"));
        assert!(parse_price_table(r#"{"latency": {"firstBillion": -1}}"#).is_err());
        assert!(parse_price_table(r#"{"latency": 1}"#).is_err());
        assert!(parse_price_table(r#"{"hostedZoneAfter25": 1e300}"#).is_err());
        assert!(parse_price_table("nope").is_err());
    }
}
