//! Health checks: the body of a create (the OpenAPI schema of the store's
//! `HealthCheckSpec`, which the handler parses), a stored check, its status
//! and the override.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use signpost_store::health as store;
use utoipa::ToSchema;

/// What a health check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HealthCheckType {
    /// HTTP GET; healthy on 2xx and 3xx.
    Http,
    /// HTTPS GET without certificate validation; healthy on 2xx and 3xx.
    Https,
    /// TCP connect.
    Tcp,
    /// Combines the verdicts of child checks.
    Calculated,
}

impl From<store::CheckType> for HealthCheckType {
    fn from(t: store::CheckType) -> Self {
        match t {
            store::CheckType::Http => HealthCheckType::Http,
            store::CheckType::Https => HealthCheckType::Https,
            store::CheckType::Tcp => HealthCheckType::Tcp,
            store::CheckType::Calculated => HealthCheckType::Calculated,
        }
    }
}

/// A health check to create. The same caller reference with the same
/// settings gives back the existing check (200); with other settings, 409.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"type": "HTTPS", "host": "www.example.com", "path": "/health", "requestInterval": 10,
    "failureThreshold": 3, "callerReference": "web-1"}))]
pub struct CreateHealthCheck {
    /// HTTP, HTTPS, TCP or CALCULATED.
    #[serde(rename = "type")]
    pub check_type: HealthCheckType,
    /// Address to probe (IPv4 or IPv6). Loopback, private, link-local and
    /// metadata addresses are refused unless the operator allows private targets.
    #[serde(default)]
    pub ip: Option<String>,
    /// Host name: the Host header, and the address (resolved at each probe) when `ip` is absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Port, 1 to 65535 (default 80 for HTTP, 443 for HTTPS; required for TCP).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 65535)]
    pub port: Option<i64>,
    /// Request path for HTTP(S) (default `/`), at most 255 visible ASCII characters.
    #[serde(default)]
    #[schema(max_length = 255)]
    pub path: Option<String>,
    /// Text that must appear in the first 5,120 bytes of the body (HTTP(S)), 1 to 255 bytes.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 255)]
    pub search_string: Option<String>,
    /// Seconds between probes, 1 to 300 (default 30).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 300)]
    pub request_interval: Option<i64>,
    /// Consecutive results that flip the state, 1 to 10 (default 3).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 10)]
    pub failure_threshold: Option<i64>,
    /// Report the opposite state.
    #[serde(default)]
    pub inverted: Option<bool>,
    /// Stop probing; reported healthy (unhealthy if inverted).
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Children of a CALCULATED check: other checks of the account.
    #[serde(default)]
    pub child_health_checks: Option<Vec<String>>,
    /// How many children must be healthy, 0 to 256 (default: all).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 256)]
    pub health_threshold: Option<i64>,
    /// Idempotency key (1 to 64 characters).
    #[serde(default)]
    #[schema(min_length = 1, max_length = 64)]
    pub caller_reference: Option<String>,
}

/// The operator's override of a check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum OverrideState {
    /// Forced healthy.
    Healthy,
    /// Forced unhealthy.
    Unhealthy,
}

impl From<store::OverrideState> for OverrideState {
    fn from(s: store::OverrideState) -> Self {
        match s {
            store::OverrideState::Healthy => OverrideState::Healthy,
            store::OverrideState::Unhealthy => OverrideState::Unhealthy,
        }
    }
}

impl From<OverrideState> for store::OverrideState {
    fn from(s: OverrideState) -> Self {
        match s {
            OverrideState::Healthy => store::OverrideState::Healthy,
            OverrideState::Unhealthy => store::OverrideState::Unhealthy,
        }
    }
}

/// Sets (`HEALTHY`, `UNHEALTHY`) or clears (`null`) the override.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"state": "UNHEALTHY"}))]
pub struct SetOverride {
    /// The forced verdict; null (or absent) clears it.
    #[serde(default)]
    pub state: Option<OverrideState>,
}

/// A health check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheck {
    /// Check id (`H…`).
    pub id: String,
    /// What it probes.
    #[serde(rename = "type")]
    pub check_type: HealthCheckType,
    /// Address probed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<String>,
    /// Host name (lower case, no trailing dot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port (absent for CALCULATED).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<i64>,
    /// Request path (HTTP(S)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Text required in the body (HTTP(S)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    /// Seconds between probes.
    pub request_interval: i64,
    /// Consecutive results that flip the state.
    pub failure_threshold: i64,
    /// Reports the opposite state.
    pub inverted: bool,
    /// Not probed; reported healthy (unhealthy if inverted).
    pub disabled: bool,
    /// Children of a CALCULATED check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub child_health_checks: Vec<String>,
    /// How many children must be healthy (absent: all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_threshold: Option<i64>,
    /// The idempotency key it was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_reference: Option<String>,
    /// The operator's override, if any.
    #[serde(rename = "override")]
    pub override_state: Option<OverrideState>,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

impl From<store::HealthCheck> for HealthCheck {
    fn from(c: store::HealthCheck) -> Self {
        let config = c.config;
        HealthCheck {
            id: c.id,
            check_type: config.check_type.into(),
            ip: config.ip.map(|ip| ip.to_string()),
            host: config.host,
            port: config.port.map(i64::from),
            path: config.path,
            search_string: config.search_string,
            request_interval: i64::from(config.request_interval),
            failure_threshold: i64::from(config.failure_threshold),
            inverted: config.inverted,
            disabled: config.disabled,
            child_health_checks: config.child_health_checks,
            health_threshold: config.health_threshold.map(i64::from),
            caller_reference: c.caller_reference,
            override_state: c.override_state.map(OverrideState::from),
            created_at: c.created_at,
        }
    }
}

/// A page of health checks.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckList {
    /// The checks, by id.
    pub items: Vec<HealthCheck>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

/// What one live checker holds for a check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CheckerStatus {
    /// The checker's region.
    pub region: String,
    /// Its state (after its failure threshold and inversion).
    pub healthy: bool,
    /// When it last probed.
    pub last_checked_at: DateTime<Utc>,
    /// How long the last probe took to answer, in milliseconds.
    pub latency_ms: Option<f64>,
    /// Why the last probe failed, if it did.
    pub last_error: Option<String>,
}

/// A check's verdict and each live checker's state.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthStatus {
    /// Check id.
    pub id: String,
    /// The verdict the DNS servers use: the override, else healthy when more
    /// than 18% of the live checkers say so (no data yet: healthy).
    pub healthy: bool,
    /// The operator's override, if any.
    #[serde(rename = "override")]
    pub override_state: Option<OverrideState>,
    /// One entry per live checker (none for CALCULATED checks).
    pub checkers: Vec<CheckerStatus>,
}

impl From<store::HealthStatus> for HealthStatus {
    fn from(s: store::HealthStatus) -> Self {
        HealthStatus {
            id: s.id,
            healthy: s.healthy,
            override_state: s.override_state.map(OverrideState::from),
            checkers: s
                .checkers
                .into_iter()
                .map(|c| CheckerStatus {
                    region: c.region,
                    healthy: c.healthy,
                    last_checked_at: c.last_checked_at,
                    latency_ms: c.latency_ms,
                    last_error: c.last_error,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_body_is_the_parsed_one() {
        // Every field of the schema is one the store's spec takes, and back.
        let full = serde_json::json!({"type": "CALCULATED", "ip": "8.8.8.8", "host": "a.example", "port": 80,
            "path": "/", "searchString": "ok", "requestInterval": 10, "failureThreshold": 2, "inverted": true,
            "disabled": false, "childHealthChecks": ["H1"], "healthThreshold": 1, "callerReference": "r"});
        let spec: store::HealthCheckSpec = serde_json::from_value(full.clone()).unwrap();
        let documented: CreateHealthCheck = serde_json::from_value(full.clone()).unwrap();
        assert_eq!(serde_json::to_value(&documented).unwrap(), full);
        assert_eq!(serde_json::to_value(&spec).unwrap(), full);
        let bogus = serde_json::json!({"type": "HTTP", "bogus": 1});
        assert!(serde_json::from_value::<store::HealthCheckSpec>(bogus.clone()).is_err());
        assert!(serde_json::from_value::<CreateHealthCheck>(bogus).is_err());
    }
}
