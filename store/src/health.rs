//! Health checks in the database: what the control API needs (create with
//! validation, list, get, delete, override, per-checker status, history)
//! and what the health checker needs (the checks to probe, found again by
//! the `HEALTH` changes that name them in the change log, heartbeats,
//! batched observation writes that announce verdict changes to the DNS
//! servers), the verdicts the DNS servers load, and the installation's
//! stored target policy. The rules themselves
//! are pure: `spec` (validation),
//! `target` (which addresses may be probed), `verdict` (quorum, override,
//! calculated checks).

pub mod spec;
pub mod target;
pub mod verdict;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signpost_core::ValidationError;
use sqlx::Row;
use sqlx::postgres::PgRow;

pub use crate::routing::{DEFAULT_CHECKER_LIVENESS, DEFAULT_HEALTHY_SHARE};
pub use spec::{CheckType, HealthCheckConfig, HealthCheckSpec};
pub use target::{AddressClass, TargetPolicy, TargetRefused};
pub use verdict::{CheckFacts, verdicts};

use crate::api::Page;
use crate::feed::{NewChange, append};
use crate::{Result, Store, StoreError};

/// The operator's maintenance override of a check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum OverrideState {
    /// Forced healthy.
    Healthy,
    /// Forced unhealthy.
    Unhealthy,
}

impl OverrideState {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OverrideState::Healthy => "HEALTHY",
            OverrideState::Unhealthy => "UNHEALTHY",
        }
    }

    fn parse(text: &str) -> Option<OverrideState> {
        match text {
            "HEALTHY" => Some(OverrideState::Healthy),
            "UNHEALTHY" => Some(OverrideState::Unhealthy),
            _ => None,
        }
    }
}

/// A stored health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Public id (`H…`).
    pub id: String,
    /// Owning account.
    #[serde(skip)]
    pub account_id: String,
    /// Its settings.
    #[serde(flatten)]
    pub config: HealthCheckConfig,
    /// The client's idempotency key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub caller_reference: Option<String>,
    /// The operator's override, if any.
    #[serde(rename = "override")]
    pub override_state: Option<OverrideState>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// The result of a create: the check, and whether it is new (201) or an
/// earlier one with the same caller reference and settings (200).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedHealthCheck {
    /// The check.
    pub check: HealthCheck,
    /// False when the caller reference named an existing identical check.
    pub created: bool,
}

/// What one live checker holds for a check.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckerStatus {
    /// The checker's region.
    pub region: String,
    /// Its current state (after threshold and inversion).
    pub healthy: bool,
    /// When it last probed.
    pub last_checked_at: DateTime<Utc>,
    /// How long the last probe took to answer, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Why the last probe failed, if it did.
    pub last_error: Option<String>,
    /// The checker's id.
    #[serde(skip)]
    pub checker_id: String,
    /// Whether its state counts yet (it has seen `failureThreshold` results).
    #[serde(skip)]
    pub settled: bool,
}

/// `GET /v1/health-checks/{id}/status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Check id.
    pub id: String,
    /// The verdict DNS uses.
    pub healthy: bool,
    /// The operator's override, if any.
    #[serde(rename = "override")]
    pub override_state: Option<OverrideState>,
    /// One entry per live checker (none for CALCULATED checks).
    pub checkers: Vec<CheckerStatus>,
}

/// One flip of one checker's state, as kept in the history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StateChange {
    /// The checker that flipped.
    pub checker_id: String,
    /// Its new state.
    pub healthy: bool,
    /// Why (`timeout`, `connection refused`, `status 503`, `string not found`, ...).
    pub reason: Option<String>,
    /// When.
    pub changed_at: DateTime<Utc>,
}

/// A checker's latest state for a check (one per check in a batch).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    /// Check id.
    pub check_id: String,
    /// The checker's state, after threshold and inversion.
    pub healthy: bool,
    /// Whether the state counts toward the verdict yet.
    pub settled: bool,
    /// When the probe ran.
    pub checked_at: DateTime<Utc>,
    /// Time to the answer (HTTP) or connection (TCP), in milliseconds.
    pub latency_ms: Option<f32>,
    /// Why the last probe failed.
    pub last_error: Option<String>,
}

/// A flip of a checker's state, for the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateFlip {
    /// Check id.
    pub check_id: String,
    /// The new state.
    pub healthy: bool,
    /// Why it flipped.
    pub reason: Option<String>,
}

/// One write of a checker: its heartbeat, its latest states, the flips
/// since the last write, and whether verdicts may have changed (then the
/// DNS servers are told through the change log).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservationBatch {
    /// Latest state per check (at most one per check).
    pub observations: Vec<Observation>,
    /// Flips, in order.
    pub flips: Vec<StateFlip>,
    /// Append a `HEALTH` change and notify.
    pub announce: bool,
}

/// `SELECT <every column of a check> FROM health_checks <tail>`.
macro_rules! select_check {
    ($tail:literal) => {
        concat!(
            "SELECT id, account_id, type, host(ip) AS ip, host, port, path, search_string,
                request_interval, failure_threshold, inverted, disabled, child_health_checks,
                health_threshold, override_state, caller_reference, created_at
             FROM health_checks ",
            $tail
        )
    };
}

fn decode_error(what: String) -> StoreError {
    StoreError::Database(sqlx::Error::Decode(what.into()))
}

fn check_from_row(row: &PgRow) -> Result<HealthCheck> {
    let id: String = row.try_get("id")?;
    let type_text: String = row.try_get("type")?;
    let check_type =
        CheckType::parse(&type_text).ok_or_else(|| decode_error(format!("check {id}: type {type_text}")))?;
    let ip: Option<String> = row.try_get("ip")?;
    let ip = ip
        .map(|t| t.parse::<IpAddr>().map_err(|_| decode_error(format!("check {id}: ip {t}"))))
        .transpose()?;
    let port: Option<i32> = row.try_get("port")?;
    let interval: i32 = row.try_get("request_interval")?;
    let threshold: i32 = row.try_get("failure_threshold")?;
    let health_threshold: Option<i32> = row.try_get("health_threshold")?;
    let override_state: Option<String> = row.try_get("override_state")?;
    Ok(HealthCheck {
        account_id: row.try_get("account_id")?,
        config: HealthCheckConfig {
            check_type,
            ip,
            host: row.try_get("host")?,
            port: port.and_then(|p| u16::try_from(p).ok()),
            path: row.try_get("path")?,
            search_string: row.try_get("search_string")?,
            request_interval: u32::try_from(interval).unwrap_or(30).max(1),
            failure_threshold: u32::try_from(threshold).unwrap_or(3).max(1),
            inverted: row.try_get("inverted")?,
            disabled: row.try_get("disabled")?,
            child_health_checks: row.try_get("child_health_checks")?,
            health_threshold: health_threshold.and_then(|t| u32::try_from(t).ok()),
        },
        caller_reference: row.try_get("caller_reference")?,
        override_state: override_state.as_deref().and_then(OverrideState::parse),
        created_at: row.try_get("created_at")?,
        id,
    })
}

fn facts_from_row(row: &PgRow) -> Result<CheckFacts> {
    let id: String = row.try_get("id")?;
    let type_text: String = row.try_get("type")?;
    let override_state: Option<String> = row.try_get("override_state")?;
    let health_threshold: Option<i32> = row.try_get("health_threshold")?;
    let live: i64 = row.try_get("live")?;
    let healthy: i64 = row.try_get("healthy")?;
    Ok(CheckFacts {
        check_type: CheckType::parse(&type_text)
            .ok_or_else(|| decode_error(format!("check {id}: type {type_text}")))?,
        override_state: override_state.as_deref().and_then(OverrideState::parse),
        disabled: row.try_get("disabled")?,
        inverted: row.try_get("inverted")?,
        children: row.try_get("child_health_checks")?,
        health_threshold: health_threshold.and_then(|t| u32::try_from(t).ok()),
        live: u32::try_from(live).unwrap_or(u32::MAX),
        healthy: u32::try_from(healthy).unwrap_or(u32::MAX),
        id,
    })
}

fn limit_param(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX - 1).saturating_add(1)
}

impl Store {
    /// The verdict of every health check (see [`verdicts`]): what the DNS
    /// servers answer by. A checker counts while its heartbeat is younger
    /// than `liveness`, and only with settled states.
    pub async fn health_verdicts(
        &self,
        healthy_share: f64,
        liveness: Duration,
    ) -> Result<HashMap<String, bool>> {
        let facts = self.check_facts(None, liveness).await?;
        Ok(verdicts(&facts, healthy_share))
    }

    /// What the verdicts of `ids` (all checks: `None`) depend on.
    async fn check_facts(&self, ids: Option<&[String]>, liveness: Duration) -> Result<Vec<CheckFacts>> {
        let rows = sqlx::query(
            "SELECT hc.id, hc.type, hc.override_state, hc.disabled, hc.inverted, hc.child_health_checks,
                    hc.health_threshold,
                    count(c.id) AS live,
                    count(c.id) FILTER (WHERE o.healthy) AS healthy
             FROM health_checks hc
             LEFT JOIN health_observations o ON o.check_id = hc.id AND o.settled
             LEFT JOIN health_checkers c ON c.id = o.checker_id
                  AND c.heartbeat_at > now() - make_interval(secs => $1)
             WHERE ($2::text[] IS NULL OR hc.id = ANY($2))
             GROUP BY hc.id",
        )
        .bind(liveness.as_secs_f64())
        .bind(ids)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(facts_from_row).collect()
    }

    /// Creates a health check for the account. The spec is validated
    /// against `policy` ([`StoreError::Invalid`] with the field: 400); the
    /// children of a CALCULATED check must be the account's own non-calculated
    /// checks (`Invalid`, field `childHealthChecks[i]`). With a caller
    /// reference already used: the same settings give back the existing
    /// check (`created: false`), other settings are a [`StoreError::Conflict`]
    /// (409). Past the account's health-check quota:
    /// [`StoreError::LimitExceeded`]. Checkers are notified and probe the new
    /// check at once.
    pub async fn create_health_check(
        &self,
        account_id: &str,
        spec: &HealthCheckSpec,
        policy: &TargetPolicy,
    ) -> Result<CreatedHealthCheck> {
        let config = spec.validate(policy)?;
        let mut tx = self.pool().begin().await?;
        let quota = crate::tenancy::Quota::HealthChecksPerAccount;
        crate::api::lock_account_quota(&mut tx, quota, account_id).await?;
        if let Some(reference) = &spec.caller_reference {
            let sql = select_check!("WHERE account_id = $1 AND caller_reference = $2");
            let row = sqlx::query(sql).bind(account_id).bind(reference).fetch_optional(&mut *tx).await?;
            if let Some(row) = row {
                let existing = check_from_row(&row)?;
                if existing.config == config {
                    return Ok(CreatedHealthCheck { check: existing, created: false });
                }
                return Err(caller_reference_conflict(reference));
            }
        }
        if !config.child_health_checks.is_empty() {
            let rows = sqlx::query(
                "SELECT id, type FROM health_checks WHERE account_id = $1 AND id = ANY($2) FOR KEY SHARE",
            )
            .bind(account_id)
            .bind(&config.child_health_checks)
            .fetch_all(&mut *tx)
            .await?;
            let found: HashMap<String, String> =
                rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("type")?))).collect::<Result<_>>()?;
            for (i, child) in config.child_health_checks.iter().enumerate() {
                let field = format!("childHealthChecks[{i}]");
                match found.get(child).map(String::as_str) {
                    None => {
                        return Err(ValidationError::new(field, format!("no health check {child}")).into());
                    }
                    Some("CALCULATED") => {
                        return Err(
                            ValidationError::new(field, "a CALCULATED check cannot be a child").into()
                        );
                    }
                    Some(_) => {}
                }
            }
        }
        let checks: i64 = sqlx::query("SELECT count(*) AS n FROM health_checks WHERE account_id = $1")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?
            .try_get("n")?;
        crate::tenancy::check_quota(quota, &self.rules().quotas, checks, 1)?;
        let inserted = sqlx::query(
            "INSERT INTO health_checks (account_id, type, ip, host, port, path, search_string, request_interval,
                 failure_threshold, inverted, disabled, child_health_checks, health_threshold, caller_reference)
             VALUES ($1, $2, $3::inet, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
             RETURNING id",
        )
        .bind(account_id)
        .bind(config.check_type.as_str())
        .bind(config.ip.map(|ip| ip.to_string()))
        .bind(&config.host)
        .bind(config.port.map(i32::from))
        .bind(&config.path)
        .bind(&config.search_string)
        .bind(config.request_interval as i32)
        .bind(config.failure_threshold as i32)
        .bind(config.inverted)
        .bind(config.disabled)
        .bind(&config.child_health_checks)
        .bind(config.health_threshold.map(|t| t as i32))
        .bind(&spec.caller_reference)
        .fetch_one(&mut *tx)
        .await;
        let id: String = match inserted {
            Ok(row) => row.try_get("id")?,
            Err(e) => {
                let e = StoreError::from(e);
                if let (Some("23505"), Some(reference)) = (e.sqlstate().as_deref(), &spec.caller_reference) {
                    return Err(caller_reference_conflict(reference));
                }
                return Err(e);
            }
        };
        let sql = select_check!("WHERE id = $1");
        let check = check_from_row(&sqlx::query(sql).bind(&id).fetch_one(&mut *tx).await?)?;
        // Last before COMMIT: checkers load the new check from this change.
        append(&mut tx, NewChange::health_check(account_id, &id).comment(Some("health check created")))
            .await?;
        tx.commit().await?;
        Ok(CreatedHealthCheck { check, created: true })
    }

    /// One of the account's checks ([`StoreError::NotFound`]: 404).
    pub async fn health_check(&self, account_id: &str, check_id: &str) -> Result<HealthCheck> {
        let sql = select_check!("WHERE id = $1 AND account_id = $2");
        let row = sqlx::query(sql).bind(check_id).bind(account_id).fetch_optional(self.pool()).await?;
        match row {
            Some(row) => check_from_row(&row),
            None => Err(StoreError::NotFound(format!("health check {check_id}"))),
        }
    }

    /// The account's checks ordered by id, after the id `after` (the
    /// cursor: the last id of the previous page), at most `limit`;
    /// `more` says whether a next page exists (`nextCursor` = last item's id).
    pub async fn list_health_checks(
        &self,
        account_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Page<HealthCheck>> {
        let sql = select_check!(
            "WHERE account_id = $1 AND ($2::text IS NULL OR id COLLATE \"C\" > $2)
             ORDER BY id COLLATE \"C\" LIMIT $3"
        );
        let rows = sqlx::query(sql)
            .bind(account_id)
            .bind(after)
            .bind(limit_param(limit))
            .fetch_all(self.pool())
            .await?;
        let mut items = rows.iter().map(check_from_row).collect::<Result<Vec<_>>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, more })
    }

    /// Deletes one of the account's checks. Refused with
    /// [`StoreError::Conflict`] (409) while a record set or a CALCULATED
    /// check uses it; [`StoreError::NotFound`] (404) when missing.
    pub async fn delete_health_check(&self, account_id: &str, check_id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let found = sqlx::query("SELECT id FROM health_checks WHERE id = $1 AND account_id = $2 FOR UPDATE")
            .bind(check_id)
            .bind(account_id)
            .fetch_optional(&mut *tx)
            .await?;
        if found.is_none() {
            return Err(StoreError::NotFound(format!("health check {check_id}")));
        }
        let user = sqlx::query(
            "SELECT r.name || ' ' || r.type || coalesce(' (' || r.set_identifier || ')', '') AS what
             FROM record_sets r WHERE r.health_check_id = $1
             UNION ALL SELECT 'CALCULATED health check ' || id FROM health_checks WHERE $1 = ANY(child_health_checks)
             LIMIT 1",
        )
        .bind(check_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(user) = user {
            let what: String = user.try_get("what")?;
            return Err(in_use(check_id, &what));
        }
        let deleted =
            sqlx::query("DELETE FROM health_checks WHERE id = $1").bind(check_id).execute(&mut *tx).await;
        if let Err(e) = deleted {
            let e = StoreError::from(e);
            if e.sqlstate().as_deref() == Some("23503") {
                return Err(in_use(check_id, "a record set"));
            }
            return Err(e);
        }
        append(&mut tx, NewChange::health_check(account_id, check_id).comment(Some("health check deleted")))
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets or clears (`None`) the operator's override of one of the
    /// account's checks and tells the DNS servers at once.
    /// [`StoreError::NotFound`] (404) when missing.
    pub async fn set_health_check_override(
        &self,
        account_id: &str,
        check_id: &str,
        state: Option<OverrideState>,
    ) -> Result<HealthCheck> {
        let mut tx = self.pool().begin().await?;
        let updated =
            sqlx::query("UPDATE health_checks SET override_state = $3 WHERE id = $1 AND account_id = $2")
                .bind(check_id)
                .bind(account_id)
                .bind(state.map(OverrideState::as_str))
                .execute(&mut *tx)
                .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("health check {check_id}")));
        }
        let sql = select_check!("WHERE id = $1");
        let check = check_from_row(&sqlx::query(sql).bind(check_id).fetch_one(&mut *tx).await?)?;
        let comment = format!("override of {check_id}: {}", state.map_or("none", OverrideState::as_str));
        append(&mut tx, NewChange::health_check(account_id, check_id).comment(Some(&comment))).await?;
        tx.commit().await?;
        Ok(check)
    }

    /// The verdict of one of the account's checks and what each live checker
    /// holds for it ([`StoreError::NotFound`]: 404). Pass
    /// [`DEFAULT_HEALTHY_SHARE`] and [`DEFAULT_CHECKER_LIVENESS`] to agree
    /// with the DNS servers.
    pub async fn health_check_status(
        &self,
        account_id: &str,
        check_id: &str,
        healthy_share: f64,
        liveness: Duration,
    ) -> Result<HealthStatus> {
        let check = self.health_check(account_id, check_id).await?;
        let mut ids = vec![check.id.clone()];
        ids.extend(check.config.child_health_checks.iter().cloned());
        let facts = self.check_facts(Some(&ids), liveness).await?;
        let healthy = verdicts(&facts, healthy_share).get(&check.id).copied().unwrap_or(true);
        let rows = sqlx::query(
            "SELECT c.id, c.region, o.healthy, o.settled, o.last_checked_at, o.latency_ms, o.last_error
             FROM health_observations o JOIN health_checkers c ON c.id = o.checker_id
             WHERE o.check_id = $1 AND c.heartbeat_at > now() - make_interval(secs => $2)
             ORDER BY c.region, c.id",
        )
        .bind(&check.id)
        .bind(liveness.as_secs_f64())
        .fetch_all(self.pool())
        .await?;
        let checkers = rows
            .iter()
            .map(|r| {
                let latency: Option<f32> = r.try_get("latency_ms")?;
                Ok(CheckerStatus {
                    region: r.try_get("region")?,
                    healthy: r.try_get("healthy")?,
                    last_checked_at: r.try_get("last_checked_at")?,
                    latency_ms: latency.map(f64::from),
                    last_error: r.try_get("last_error")?,
                    checker_id: r.try_get("id")?,
                    settled: r.try_get("settled")?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(HealthStatus { id: check.id, healthy, override_state: check.override_state, checkers })
    }

    /// The newest `limit` state flips of one of the account's checks, newest
    /// first, with their reasons ([`StoreError::NotFound`]: 404).
    pub async fn health_check_history(
        &self,
        account_id: &str,
        check_id: &str,
        limit: usize,
    ) -> Result<Vec<StateChange>> {
        self.health_check(account_id, check_id).await?;
        let rows = sqlx::query(
            "SELECT checker_id, healthy, reason, changed_at FROM health_state_changes
             WHERE check_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(check_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(StateChange {
                    checker_id: r.try_get("checker_id")?,
                    healthy: r.try_get("healthy")?,
                    reason: r.try_get("reason")?,
                    changed_at: r.try_get("changed_at")?,
                })
            })
            .collect()
    }

    // ---- the installation's target policy ----

    /// The stored target policy (the built-in default if the row is missing).
    pub async fn target_policy(&self) -> Result<TargetPolicy> {
        let row = sqlx::query(
            "SELECT allow_loopback, allow_private, allow_link_local, allow_metadata,
                    allowed_networks::text[] AS allowed, refused_networks::text[] AS refused
             FROM health_target_policy WHERE id",
        )
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(TargetPolicy::DEFAULT) };
        let networks = |column: &str| -> Result<Vec<ipnet::IpNet>> {
            let texts: Vec<String> = row.try_get(column)?;
            Ok(texts.iter().filter_map(|t| t.parse().ok()).collect())
        };
        Ok(TargetPolicy {
            allow_loopback: row.try_get("allow_loopback")?,
            allow_private: row.try_get("allow_private")?,
            allow_link_local: row.try_get("allow_link_local")?,
            allow_metadata: row.try_get("allow_metadata")?,
            allowed_networks: networks("allowed")?,
            refused_networks: networks("refused")?,
        })
    }

    /// Replaces the stored target policy and tells every checker, which
    /// reloads it and stops probing the checks it now refuses.
    pub async fn set_target_policy(&self, policy: &TargetPolicy) -> Result<()> {
        let texts = |nets: &[ipnet::IpNet]| nets.iter().map(|n| n.trunc().to_string()).collect::<Vec<_>>();
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO health_target_policy (id, allow_loopback, allow_private, allow_link_local,
                 allow_metadata, allowed_networks, refused_networks)
             VALUES (true, $1, $2, $3, $4, $5::cidr[], $6::cidr[])
             ON CONFLICT (id) DO UPDATE SET allow_loopback = excluded.allow_loopback,
                 allow_private = excluded.allow_private, allow_link_local = excluded.allow_link_local,
                 allow_metadata = excluded.allow_metadata, allowed_networks = excluded.allowed_networks,
                 refused_networks = excluded.refused_networks, updated_at = now()",
        )
        .bind(policy.allow_loopback)
        .bind(policy.allow_private)
        .bind(policy.allow_link_local)
        .bind(policy.allow_metadata)
        .bind(texts(&policy.allowed_networks))
        .bind(texts(&policy.refused_networks))
        .execute(&mut *tx)
        .await?;
        // Checkers follow the change log: a TARGET_POLICY row makes each
        // reload the policy and judge every check again.
        append(&mut tx, NewChange::target_policy().comment(Some("target policy changed"))).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- for the health checker ----

    /// Every check a checker probes (every account's HTTP, HTTPS and TCP
    /// checks, disabled ones included so that they can be dropped).
    pub async fn probe_targets(&self) -> Result<Vec<HealthCheck>> {
        let sql = select_check!("WHERE type <> 'CALCULATED' ORDER BY id");
        let rows = sqlx::query(sql).fetch_all(self.pool()).await?;
        rows.iter().map(check_from_row).collect()
    }

    /// Any account's check by id (`None` when deleted).
    pub async fn health_check_by_id(&self, check_id: &str) -> Result<Option<HealthCheck>> {
        let sql = select_check!("WHERE id = $1");
        let row = sqlx::query(sql).bind(check_id).fetch_optional(self.pool()).await?;
        row.map(|r| check_from_row(&r)).transpose()
    }

    /// Records (or refreshes) a checker's heartbeat.
    pub async fn checker_heartbeat(&self, checker_id: &str, region: &str) -> Result<()> {
        sqlx::query(
            "INSERT INTO health_checkers (id, region) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now(), region = excluded.region",
        )
        .bind(checker_id)
        .bind(region)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Removes a checker and its states (graceful shutdown): it stops
    /// counting at once, and the DNS servers are told.
    pub async fn checker_gone(&self, checker_id: &str) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        let gone = sqlx::query("DELETE FROM health_checkers WHERE id = $1")
            .bind(checker_id)
            .execute(&mut *tx)
            .await?;
        if gone.rows_affected() > 0 {
            let comment = format!("health checker {checker_id} stopped");
            append(&mut tx, NewChange::health(None).comment(Some(&comment))).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Writes a checker's batch in one transaction: heartbeat, latest
    /// states (rows of deleted checks are skipped), history rows for the
    /// flips, and when `announce` a `HEALTH` change + NOTIFY for the DNS servers.
    pub async fn record_observations(
        &self,
        checker_id: &str,
        region: &str,
        batch: &ObservationBatch,
    ) -> Result<()> {
        let mut tx = self.pool().begin().await?;
        sqlx::query(
            "INSERT INTO health_checkers (id, region) VALUES ($1, $2)
             ON CONFLICT (id) DO UPDATE SET heartbeat_at = now()",
        )
        .bind(checker_id)
        .bind(region)
        .execute(&mut *tx)
        .await?;
        if !batch.observations.is_empty() {
            let obs = &batch.observations;
            sqlx::query(
                "INSERT INTO health_observations
                     (check_id, checker_id, healthy, settled, last_checked_at, latency_ms, last_error)
                 SELECT u.check_id, $1, u.healthy, u.settled, u.checked_at, u.latency_ms, u.last_error
                 FROM UNNEST($2::text[], $3::bool[], $4::bool[], $5::timestamptz[], $6::real[], $7::text[])
                      AS u(check_id, healthy, settled, checked_at, latency_ms, last_error)
                 JOIN health_checks hc ON hc.id = u.check_id
                 ON CONFLICT (check_id, checker_id) DO UPDATE SET healthy = excluded.healthy,
                     settled = excluded.settled, last_checked_at = excluded.last_checked_at,
                     latency_ms = excluded.latency_ms, last_error = excluded.last_error",
            )
            .bind(checker_id)
            .bind(obs.iter().map(|o| o.check_id.clone()).collect::<Vec<_>>())
            .bind(obs.iter().map(|o| o.healthy).collect::<Vec<_>>())
            .bind(obs.iter().map(|o| o.settled).collect::<Vec<_>>())
            .bind(obs.iter().map(|o| o.checked_at).collect::<Vec<_>>())
            .bind(obs.iter().map(|o| o.latency_ms).collect::<Vec<_>>())
            .bind(obs.iter().map(|o| o.last_error.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if !batch.flips.is_empty() {
            let flips = &batch.flips;
            sqlx::query(
                "INSERT INTO health_state_changes (check_id, checker_id, healthy, reason)
                 SELECT u.check_id, $1, u.healthy, u.reason
                 FROM UNNEST($2::text[], $3::bool[], $4::text[]) WITH ORDINALITY AS u(check_id, healthy, reason, n)
                 JOIN health_checks hc ON hc.id = u.check_id ORDER BY u.n",
            )
            .bind(checker_id)
            .bind(flips.iter().map(|f| f.check_id.clone()).collect::<Vec<_>>())
            .bind(flips.iter().map(|f| f.healthy).collect::<Vec<_>>())
            .bind(flips.iter().map(|f| f.reason.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        }
        if batch.announce {
            let comment = format!("{} health state changes from checker {checker_id}", batch.flips.len());
            append(&mut tx, NewChange::health(None).comment(Some(&comment))).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn caller_reference_conflict(reference: &str) -> StoreError {
    StoreError::Conflict {
        field: "callerReference".into(),
        message: format!("caller reference {reference:?} was used for a health check with other settings"),
    }
}

fn in_use(check_id: &str, user: &str) -> StoreError {
    StoreError::Conflict {
        field: "id".into(),
        message: format!("health check {check_id} is in use by {user}; remove that first"),
    }
}
