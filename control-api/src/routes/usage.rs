//! Usage and cost: a zone's queries by category in a month and what they
//! cost, and the account's month zone by zone (see [`crate::pricing`] for
//! how account-wide tiers are attributed).

use axum::extract::State;
use chrono::NaiveDate;
use serde::Deserialize;
use utoipa::IntoParams;

use super::caller_zone;
use crate::ApiState;
use crate::auth::Caller;
use crate::dto::{AccountCost, AccountUsage, QueryCosts, QueryCounts, ZoneCost, ZoneUsage};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, IdPath};
use crate::pricing::{ZoneBill, bill, month_text, parse_month};

/// The month of a usage report.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MonthParams {
    /// `YYYY-MM` (UTC); default: the current month.
    #[param(example = "2026-11")]
    pub month: Option<String>,
}

impl MonthParams {
    fn month(&self) -> Result<NaiveDate, ApiError> {
        match &self.month {
            None => Ok(signpost_store::usage::month_of(chrono::Utc::now().date_naive())),
            Some(text) => parse_month(text.trim())
                .ok_or_else(|| ApiError::invalid("month", format!("{text:?} is not a month like 2026-11"))),
        }
    }
}

fn zone_usage(bill: ZoneBill, month: &str) -> ZoneUsage {
    ZoneUsage {
        zone_id: bill.zone_id,
        zone_name: bill.zone_name,
        month: month.to_string(),
        queries: QueryCounts::from(bill.queries),
        cost: ZoneCost {
            currency: "USD".into(),
            queries: QueryCosts::from(bill.query_costs),
            hosted_zone: bill.hosted_zone,
            total: bill.total,
        },
    }
}

/// Every zone of the account billed for `month`.
async fn account_bills(
    state: &ApiState,
    caller: &Caller,
    month: NaiveDate,
) -> Result<Vec<ZoneBill>, ApiError> {
    let map = |e| ApiError::from_store(e, "NoSuchHostedZone");
    let usage = state.store.account_usage(&caller.account_id, month).await.map_err(map)?;
    let created = state.store.zones_by_creation(&caller.account_id).await.map_err(map)?;
    Ok(bill(&state.config.prices, month, &usage, &created))
}

/// A zone's queries and cost in a month.
#[utoipa::path(
    get, path = "/v1/zones/{id}/usage", tag = "usage",
    params(("id" = String, Path, description = "Zone id"), MonthParams),
    responses(
        (status = 200, description = "Queries by category and their cost", body = ZoneUsage),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
    ),
)]
pub async fn get_zone_usage(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<MonthParams>,
) -> Result<axum::Json<ZoneUsage>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let month = params.month()?;
    let bills = account_bills(&state, &caller, month).await?;
    let bill = bills.into_iter().find(|b| b.zone_id == zone.id).ok_or_else(|| super::no_such_zone(&id))?;
    Ok(axum::Json(zone_usage(bill, &month_text(month))))
}

/// The account's queries and cost in a month, zone by zone.
#[utoipa::path(
    get, path = "/v1/usage", tag = "usage",
    params(MonthParams),
    responses((status = 200, description = "Every zone's usage and the total", body = AccountUsage)),
)]
pub async fn get_account_usage(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(params): ApiQuery<MonthParams>,
) -> Result<axum::Json<AccountUsage>, ApiError> {
    let month = params.month()?;
    let text = month_text(month);
    let bills = account_bills(&state, &caller, month).await?;
    // A key limited to some zones sees those (each billed as in the whole account).
    let zones: Vec<ZoneUsage> = bills
        .into_iter()
        .filter(|b| caller.zone_ids.as_ref().is_none_or(|ids| ids.contains(&b.zone_id)))
        .map(|b| zone_usage(b, &text))
        .collect();
    let total = signpost_core::usage::round_usd(zones.iter().map(|z| z.cost.total).sum());
    Ok(axum::Json(AccountUsage { month: text, zones, cost: AccountCost { currency: "USD".into(), total } }))
}
