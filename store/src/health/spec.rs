//! A health check as a client sends it (`HealthCheckSpec`) and as it is
//! stored once validated (`HealthCheckConfig`): defaults applied, the path
//! normalised, the target checked against the operator's target policy.
//! Pure: the API's 400s come from here with the offending field.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use signpost_core::ValidationError;

use super::target::TargetPolicy;

/// Route 53's default interval between probes, in seconds.
pub const DEFAULT_REQUEST_INTERVAL: u32 = 30;
/// Route 53's default number of consecutive results that flip a state.
pub const DEFAULT_FAILURE_THRESHOLD: u32 = 3;
/// Most children of a CALCULATED check.
pub const MAX_CHILDREN: usize = 256;
/// Longest `path` and `searchString` (Route 53's bound).
pub const MAX_PATH_LEN: usize = 255;

/// What a check probes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckType {
    /// HTTP GET; healthy on 2xx/3xx.
    Http,
    /// HTTPS GET without certificate validation; healthy on 2xx/3xx.
    Https,
    /// TCP connect.
    Tcp,
    /// Combines the verdicts of child checks.
    Calculated,
}

impl CheckType {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckType::Http => "HTTP",
            CheckType::Https => "HTTPS",
            CheckType::Tcp => "TCP",
            CheckType::Calculated => "CALCULATED",
        }
    }

    /// Parses the stored spelling.
    pub fn parse(text: &str) -> Option<CheckType> {
        match text {
            "HTTP" => Some(CheckType::Http),
            "HTTPS" => Some(CheckType::Https),
            "TCP" => Some(CheckType::Tcp),
            "CALCULATED" => Some(CheckType::Calculated),
            _ => None,
        }
    }
}

/// A health check as a client sends it. Numbers are wide so that an out of
/// range value gets a message naming its field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct HealthCheckSpec {
    /// HTTP, HTTPS, TCP or CALCULATED.
    #[serde(rename = "type")]
    pub check_type: CheckType,
    /// Address to probe (IPv4 or IPv6).
    #[serde(default)]
    pub ip: Option<String>,
    /// Host name: the Host header, and the address (resolved, A only) when `ip` is absent.
    #[serde(default)]
    pub host: Option<String>,
    /// Port (default 80 for HTTP, 443 for HTTPS; required for TCP).
    #[serde(default)]
    pub port: Option<i64>,
    /// Request path for HTTP(S) (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    /// Text that must appear in the first 5,120 bytes of the body (HTTP(S)).
    #[serde(default)]
    pub search_string: Option<String>,
    /// Seconds between probes, 1..=300 (default 30).
    #[serde(default)]
    pub request_interval: Option<i64>,
    /// Consecutive results that flip the state, 1..=10 (default 3).
    #[serde(default)]
    pub failure_threshold: Option<i64>,
    /// Report the opposite state.
    #[serde(default)]
    pub inverted: Option<bool>,
    /// Stop probing; reported healthy (unhealthy if inverted).
    #[serde(default)]
    pub disabled: Option<bool>,
    /// Children of a CALCULATED check.
    #[serde(default)]
    pub child_health_checks: Option<Vec<String>>,
    /// How many children must be healthy, 0..=256 (default: all).
    #[serde(default)]
    pub health_threshold: Option<i64>,
    /// Idempotency key: the same key and settings give back the existing check.
    #[serde(default)]
    pub caller_reference: Option<String>,
}

impl HealthCheckSpec {
    /// A spec of this type with nothing else set.
    pub fn new(check_type: CheckType) -> Self {
        HealthCheckSpec {
            check_type,
            ip: None,
            host: None,
            port: None,
            path: None,
            search_string: None,
            request_interval: None,
            failure_threshold: None,
            inverted: None,
            disabled: None,
            child_health_checks: None,
            health_threshold: None,
            caller_reference: None,
        }
    }
}

/// A validated health check's settings, defaults applied.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthCheckConfig {
    /// What it probes.
    #[serde(rename = "type")]
    pub check_type: CheckType,
    /// Address to probe.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip: Option<IpAddr>,
    /// Host name (lower case, no trailing dot).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Port (absent for CALCULATED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// Request path, starting with `/` (HTTP(S) only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Text required in the first 5,120 bytes of the body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search_string: Option<String>,
    /// Seconds between probes.
    pub request_interval: u32,
    /// Consecutive results that flip the state.
    pub failure_threshold: u32,
    /// Report the opposite state.
    pub inverted: bool,
    /// Not probed; reported healthy (unhealthy if inverted).
    pub disabled: bool,
    /// Children of a CALCULATED check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub child_health_checks: Vec<String>,
    /// How many children must be healthy (absent: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health_threshold: Option<u32>,
}

fn ranged(
    value: Option<i64>,
    default: u32,
    min: i64,
    max: i64,
    field: &str,
    what: &str,
) -> Result<u32, ValidationError> {
    match value {
        None => Ok(default),
        Some(v) if (min..=max).contains(&v) => Ok(v as u32),
        Some(_) => Err(ValidationError::new(field, format!("{what} is {min} to {max}"))),
    }
}

fn absent<T>(value: &Option<T>, field: &str, message: &str) -> Result<(), ValidationError> {
    match value {
        Some(_) => Err(ValidationError::new(field, message)),
        None => Ok(()),
    }
}

/// A host name: letters, digits, hyphens and underscores in dot-separated
/// labels of 1 to 63 characters, 253 characters in all; lower-cased, without
/// the trailing dot.
fn host_name(host: &str) -> Result<String, ValidationError> {
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if name.parse::<IpAddr>().is_ok() {
        return Err(ValidationError::new("host", "an IP address goes in ip"));
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(label_ok) {
        return Err(ValidationError::new("host", "not a valid host name"));
    }
    Ok(name)
}

/// The request path: visible ASCII, at most 255 characters, `/` added in front.
fn request_path(path: &str) -> Result<String, ValidationError> {
    if path.len() > MAX_PATH_LEN || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ValidationError::new("path", "a path is at most 255 visible ASCII characters"));
    }
    Ok(if path.starts_with('/') { path.to_string() } else { format!("/{path}") })
}

impl HealthCheckSpec {
    /// Checks the spec and applies defaults. The target must pass `policy`
    /// (children of a CALCULATED check are checked against the database by
    /// the store).
    pub fn validate(&self, policy: &TargetPolicy) -> Result<HealthCheckConfig, ValidationError> {
        let request_interval = ranged(
            self.request_interval,
            DEFAULT_REQUEST_INTERVAL,
            1,
            300,
            "requestInterval",
            "an interval in seconds",
        )?;
        let failure_threshold = ranged(
            self.failure_threshold,
            DEFAULT_FAILURE_THRESHOLD,
            1,
            10,
            "failureThreshold",
            "a failure threshold",
        )?;
        if let Some(reference) = &self.caller_reference
            && !(1..=64).contains(&reference.chars().count())
        {
            return Err(ValidationError::new("callerReference", "a caller reference is 1 to 64 characters"));
        }
        let mut config = HealthCheckConfig {
            check_type: self.check_type,
            ip: None,
            host: None,
            port: None,
            path: None,
            search_string: None,
            request_interval,
            failure_threshold,
            inverted: self.inverted.unwrap_or(false),
            disabled: self.disabled.unwrap_or(false),
            child_health_checks: Vec::new(),
            health_threshold: None,
        };
        if self.check_type == CheckType::Calculated {
            let no_target = "a CALCULATED check has children, not a target";
            absent(&self.ip, "ip", no_target)?;
            absent(&self.host, "host", no_target)?;
            absent(&self.port, "port", no_target)?;
            absent(&self.path, "path", no_target)?;
            absent(&self.search_string, "searchString", no_target)?;
            let children = self.child_health_checks.clone().unwrap_or_default();
            if children.is_empty() || children.len() > MAX_CHILDREN {
                return Err(ValidationError::new(
                    "childHealthChecks",
                    format!("a CALCULATED check has 1 to {MAX_CHILDREN} children"),
                ));
            }
            for (i, child) in children.iter().enumerate() {
                if child.is_empty() || child.len() > 64 || children[..i].contains(child) {
                    return Err(ValidationError::new(
                        format!("childHealthChecks[{i}]"),
                        "not a health check id, or a repeated one",
                    ));
                }
            }
            config.health_threshold = self
                .health_threshold
                .map(|t| ranged(Some(t), 0, 0, 256, "healthThreshold", "a health threshold"))
                .transpose()?;
            config.child_health_checks = children;
            return Ok(config);
        }
        let only_calculated = "only CALCULATED checks have children";
        absent(&self.child_health_checks, "childHealthChecks", only_calculated)?;
        absent(&self.health_threshold, "healthThreshold", only_calculated)?;
        let http = matches!(self.check_type, CheckType::Http | CheckType::Https);
        if !http {
            absent(&self.path, "path", "only HTTP and HTTPS checks have a path")?;
            absent(&self.search_string, "searchString", "only HTTP and HTTPS checks have a search string")?;
        }
        if self.ip.is_none() && self.host.is_none() {
            return Err(ValidationError::new("ip", "a check needs an ip or a host to probe"));
        }
        if let Some(ip) = &self.ip {
            let ip: IpAddr =
                ip.trim().parse().map_err(|_| ValidationError::new("ip", "not an IPv4 or IPv6 address"))?;
            policy.check_ip(ip).map_err(|e| ValidationError::new("ip", e.message))?;
            config.ip = Some(ip);
        }
        if let Some(host) = &self.host {
            let host = host_name(host)?;
            if config.ip.is_none() {
                policy.check_host(&host).map_err(|e| ValidationError::new("host", e.message))?;
            }
            config.host = Some(host);
        }
        let default_port = match self.check_type {
            CheckType::Http => Some(80),
            CheckType::Https => Some(443),
            _ => None,
        };
        config.port = Some(match (self.port, default_port) {
            (Some(p), _) if (1..=65535).contains(&p) => p as u16,
            (Some(_), _) => return Err(ValidationError::new("port", "a port is 1 to 65535")),
            (None, Some(p)) => p,
            (None, None) => return Err(ValidationError::new("port", "a TCP check needs a port")),
        });
        if let Some(path) = &self.path {
            config.path = Some(request_path(path)?);
        }
        if let Some(search) = &self.search_string {
            if search.is_empty() || search.len() > MAX_PATH_LEN {
                return Err(ValidationError::new("searchString", "a search string is 1 to 255 bytes"));
            }
            config.search_string = Some(search.clone());
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(ip: &str) -> HealthCheckSpec {
        HealthCheckSpec { ip: Some(ip.into()), ..HealthCheckSpec::new(CheckType::Http) }
    }

    fn field(spec: &HealthCheckSpec, policy: &TargetPolicy) -> String {
        spec.validate(policy).unwrap_err().field
    }

    #[test]
    fn defaults() {
        let c = http("8.8.8.8").validate(&TargetPolicy::STRICT).unwrap();
        assert_eq!((c.port, c.request_interval, c.failure_threshold), (Some(80), 30, 3));
        assert!(!c.inverted && !c.disabled && c.path.is_none());
        let https = HealthCheckSpec { path: Some("health?full=1".into()), ..http("8.8.8.8") };
        let https = HealthCheckSpec { check_type: CheckType::Https, ..https };
        let c = https.validate(&TargetPolicy::STRICT).unwrap();
        assert_eq!((c.port, c.path.as_deref()), (Some(443), Some("/health?full=1")));
    }

    #[test]
    fn errors_name_their_field() {
        let strict = TargetPolicy::STRICT;
        assert_eq!(field(&http("127.0.0.1"), &strict), "ip");
        assert!(http("127.0.0.1").validate(&TargetPolicy::ALLOW_PRIVATE).is_ok());
        assert_eq!(field(&http("192.0.2.1"), &TargetPolicy::ALLOW_PRIVATE), "ip");
        assert_eq!(field(&http("not-an-ip"), &strict), "ip");
        assert_eq!(field(&HealthCheckSpec::new(CheckType::Http), &strict), "ip");
        let tcp = HealthCheckSpec { ip: Some("8.8.8.8".into()), ..HealthCheckSpec::new(CheckType::Tcp) };
        assert_eq!(field(&tcp, &strict), "port");
        assert_eq!(field(&HealthCheckSpec { port: Some(70000), ..http("8.8.8.8") }, &strict), "port");
        assert_eq!(
            field(&HealthCheckSpec { request_interval: Some(0), ..http("8.8.8.8") }, &strict),
            "requestInterval"
        );
        assert_eq!(
            field(&HealthCheckSpec { failure_threshold: Some(11), ..http("8.8.8.8") }, &strict),
            "failureThreshold"
        );
        assert_eq!(field(&HealthCheckSpec { path: Some("a b".into()), ..http("8.8.8.8") }, &strict), "path");
        assert_eq!(
            field(&HealthCheckSpec { search_string: Some(String::new()), ..http("8.8.8.8") }, &strict),
            "searchString"
        );
        let tcp_path = HealthCheckSpec { port: Some(22), path: Some("/".into()), ..tcp.clone() };
        assert_eq!(field(&tcp_path, &strict), "path");
        let host =
            HealthCheckSpec { host: Some("localhost".into()), ..HealthCheckSpec::new(CheckType::Http) };
        assert_eq!(field(&host, &strict), "host");
        let host =
            HealthCheckSpec { host: Some("bad_host!".into()), ..HealthCheckSpec::new(CheckType::Http) };
        assert_eq!(field(&host, &strict), "host");
        let host = HealthCheckSpec {
            host: Some("WWW.Example.com.".into()),
            ..HealthCheckSpec::new(CheckType::Http)
        };
        assert_eq!(host.validate(&strict).unwrap().host.as_deref(), Some("www.example.com"));
        let children = HealthCheckSpec { child_health_checks: Some(vec!["H1".into()]), ..http("8.8.8.8") };
        assert_eq!(field(&children, &strict), "childHealthChecks");
    }

    #[test]
    fn calculated() {
        let calc = |children: Vec<&str>, threshold: Option<i64>| HealthCheckSpec {
            child_health_checks: Some(children.into_iter().map(String::from).collect()),
            health_threshold: threshold,
            ..HealthCheckSpec::new(CheckType::Calculated)
        };
        let c = calc(vec!["H1", "H2"], Some(1)).validate(&TargetPolicy::STRICT).unwrap();
        assert_eq!((c.child_health_checks.len(), c.health_threshold, c.port), (2, Some(1), None));
        assert_eq!(field(&calc(vec![], None), &TargetPolicy::STRICT), "childHealthChecks");
        assert_eq!(field(&calc(vec!["H1", "H1"], None), &TargetPolicy::STRICT), "childHealthChecks[1]");
        assert_eq!(field(&calc(vec!["H1"], Some(257)), &TargetPolicy::STRICT), "healthThreshold");
        let with_ip = HealthCheckSpec { ip: Some("8.8.8.8".into()), ..calc(vec!["H1"], None) };
        assert_eq!(field(&with_ip, &TargetPolicy::STRICT), "ip");
    }

    #[test]
    fn json_shape() {
        let spec: HealthCheckSpec = serde_json::from_str(
            r#"{"type":"HTTPS","ip":"8.8.8.8","port":8443,"searchString":"ok","requestInterval":10,"inverted":true}"#,
        )
        .unwrap();
        let c = spec.validate(&TargetPolicy::STRICT).unwrap();
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["type"], "HTTPS");
        assert_eq!(json["searchString"], "ok");
        assert_eq!(json["requestInterval"], 10);
        assert!(serde_json::from_str::<HealthCheckSpec>(r#"{"type":"HTTP","bogus":1}"#).is_err());
    }
}
