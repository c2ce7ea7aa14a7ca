//! One probe of one endpoint, with Route 53's pass criteria: HTTP(S)
//! connects within 4 s and answers 2xx/3xx within 2 s more, with the
//! search string (if any) in the first 5,120 bytes of the body; TCP
//! connects within 10 s. No probe waits longer than the check's interval.
//! Every connection is new (no keep-alive: a health check tests the
//! connect), goes to an address the target policy allows (host names are
//! resolved at each probe, A records only, and checked again), and fails
//! with a reason a person can read.

use std::error::Error as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use signpost_store::health::{CheckType, HealthCheckConfig, TargetPolicy};
use tokio::net::TcpSocket;
use tokio::time::{Instant, timeout};

/// Route 53's bound on an HTTP(S) connect.
pub const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(4);
/// Route 53's bound on an HTTP(S) answer after the connect.
pub const HTTP_ANSWER_TIMEOUT: Duration = Duration::from_secs(2);
/// Route 53's bound on a TCP connect.
pub const TCP_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How much of the body the search string is looked for in.
pub const SEARCH_WINDOW: usize = 5_120;

/// What a probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeOutcome {
    /// The endpoint passed.
    pub ok: bool,
    /// Time to the response head (HTTP) or the connection (TCP).
    pub latency: Option<Duration>,
    /// Why it failed (`connection refused`, `timeout …`, `status 503`, ...).
    pub error: Option<String>,
}

impl ProbeOutcome {
    fn pass(latency: Duration) -> Self {
        ProbeOutcome { ok: true, latency: Some(latency), error: None }
    }

    fn fail(latency: Option<Duration>, error: impl Into<String>) -> Self {
        ProbeOutcome { ok: false, latency, error: Some(error.into()) }
    }
}

/// Errors setting a prober up.
#[derive(Debug, thiserror::Error)]
pub enum ProberError {
    /// The TLS configuration was refused.
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    /// The HTTP client could not be built.
    #[error("HTTP client setup: {0}")]
    Http(#[from] reqwest::Error),
}

/// Runs probes; cheap to share (`Arc`). The target policy can be replaced
/// while probes run (the installation's policy changed).
#[derive(Debug, Clone)]
pub struct Prober {
    client: reqwest::Client,
    policy: Arc<RwLock<Arc<TargetPolicy>>>,
    source: Option<IpAddr>,
}

/// Time left before a deadline (zero when passed).
fn left(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

fn millis(d: Duration) -> u128 {
    d.as_millis()
}

impl Prober {
    /// A prober refusing what `policy` refuses, connecting from `source`
    /// when given (one address of a multi-homed host).
    pub fn new(policy: TargetPolicy, source: Option<IpAddr>) -> Result<Prober, ProberError> {
        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(crate::tls::probe_tls_config()?)
            .http1_only()
            .connect_timeout(HTTP_CONNECT_TIMEOUT)
            .pool_max_idle_per_host(0)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .no_proxy()
            .user_agent(concat!("Signpost-Health-Check/", env!("CARGO_PKG_VERSION")))
            .local_address(source)
            .build()?;
        Ok(Prober { client, policy: Arc::new(RwLock::new(Arc::new(policy))), source })
    }

    /// The target policy in force.
    pub fn policy(&self) -> Arc<TargetPolicy> {
        self.policy.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Replaces the target policy (for the probes that start from now on).
    pub fn set_policy(&self, policy: TargetPolicy) {
        *self.policy.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(policy);
    }

    /// Whether the check's IP (if it has one) may be probed; `None`: yes.
    pub fn refusal(&self, check: &HealthCheckConfig) -> Option<String> {
        let ip = check.ip?;
        self.policy().check_ip(ip).err().map(|e| format!("target refused: {}", e.message))
    }

    /// Probes the check's endpoint once.
    pub async fn probe(&self, check: &HealthCheckConfig) -> ProbeOutcome {
        let interval = Duration::from_secs(u64::from(check.request_interval.max(1)));
        let start = Instant::now();
        match check.check_type {
            CheckType::Http | CheckType::Https => {
                let deadline = start + (HTTP_CONNECT_TIMEOUT + HTTP_ANSWER_TIMEOUT).min(interval);
                self.probe_http(check, start, deadline).await
            }
            CheckType::Tcp => self.probe_tcp(check, start, start + TCP_CONNECT_TIMEOUT.min(interval)).await,
            CheckType::Calculated => ProbeOutcome::fail(None, "a CALCULATED check is not probed"),
        }
    }

    /// The address to connect to: the check's IP, or its host resolved now
    /// (first IPv4 address); either must pass the policy.
    async fn address(&self, check: &HealthCheckConfig, deadline: Instant) -> Result<IpAddr, String> {
        let policy = self.policy();
        let ip = match (check.ip, &check.host) {
            (Some(ip), _) => ip,
            (None, Some(host)) => {
                policy.check_host(host).map_err(|e| format!("target refused: {}", e.message))?;
                let lookup = tokio::net::lookup_host((host.as_str(), check.port.unwrap_or(80)));
                let addrs = match timeout(left(deadline), lookup).await {
                    Err(_) => return Err(format!("timeout resolving {host}")),
                    Ok(Err(e)) => return Err(format!("DNS resolution failed: {e}")),
                    Ok(Ok(addrs)) => addrs,
                };
                addrs
                    .map(|a| a.ip())
                    .find(IpAddr::is_ipv4)
                    .ok_or_else(|| format!("DNS resolution failed: {host} has no A record"))?
            }
            (None, None) => return Err("the check has no ip or host".into()),
        };
        policy.check_ip(ip).map_err(|e| format!("target refused: {}", e.message))?;
        Ok(ip)
    }

    async fn probe_tcp(&self, check: &HealthCheckConfig, start: Instant, deadline: Instant) -> ProbeOutcome {
        let ip = match self.address(check, deadline).await {
            Ok(ip) => ip,
            Err(e) => return ProbeOutcome::fail(None, e),
        };
        let addr = SocketAddr::new(ip, check.port.unwrap_or(0));
        let connect = async {
            let socket = if ip.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
            if let Some(source) = self.source.filter(|s| s.is_ipv4() == ip.is_ipv4()) {
                socket.bind(SocketAddr::new(source, 0))?;
            }
            socket.connect(addr).await
        };
        match timeout(left(deadline), connect).await {
            Ok(Ok(_stream)) => ProbeOutcome::pass(start.elapsed()),
            Ok(Err(e)) => ProbeOutcome::fail(None, io_reason(&e)),
            Err(_) => ProbeOutcome::fail(
                None,
                format!("timeout: no connection within {} ms", millis(deadline.duration_since(start))),
            ),
        }
    }

    async fn probe_http(&self, check: &HealthCheckConfig, start: Instant, deadline: Instant) -> ProbeOutcome {
        let ip = match self.address(check, deadline).await {
            Ok(ip) => ip,
            Err(e) => return ProbeOutcome::fail(None, e),
        };
        let https = check.check_type == CheckType::Https;
        let port = check.port.unwrap_or(if https { 443 } else { 80 });
        let scheme = if https { "https" } else { "http" };
        let literal = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
        let url = format!("{scheme}://{literal}:{port}{}", check.path.as_deref().unwrap_or("/"));
        let mut request = self.client.get(&url);
        if let Some(host) = &check.host {
            // Route 53's Host header: the name alone on the scheme's port, else name:port.
            let default_port = if https { 443 } else { 80 };
            let value = if port == default_port { host.clone() } else { format!("{host}:{port}") };
            request = request.header(reqwest::header::HOST, value);
        }
        let exchange = async {
            let response = request.send().await?;
            let latency = start.elapsed();
            let status = response.status().as_u16();
            if !(200..400).contains(&status) {
                return Ok(ProbeOutcome::fail(Some(latency), format!("status {status}")));
            }
            let Some(needle) = &check.search_string else { return Ok(ProbeOutcome::pass(latency)) };
            let mut response = response;
            let mut body = Vec::with_capacity(SEARCH_WINDOW);
            while body.len() < SEARCH_WINDOW {
                match response.chunk().await? {
                    Some(chunk) => body.extend_from_slice(&chunk),
                    None => break,
                }
            }
            body.truncate(SEARCH_WINDOW);
            if contains(&body, needle.as_bytes()) {
                Ok(ProbeOutcome::pass(latency))
            } else {
                Ok(ProbeOutcome::fail(Some(latency), "string not found in the first 5,120 bytes of the body"))
            }
        };
        match timeout(left(deadline), exchange).await {
            Ok(Ok(outcome)) => outcome,
            Ok(Err(e)) => ProbeOutcome::fail(None, http_reason(&e)),
            Err(_) => ProbeOutcome::fail(
                None,
                format!("timeout: no answer within {} ms", millis(deadline.duration_since(start))),
            ),
        }
    }
}

/// Whether `needle` occurs in `haystack` (case-sensitive, like Route 53).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || haystack.windows(needle.len()).any(|w| w == needle)
}

fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::ConnectionRefused => "connection refused".into(),
        ErrorKind::ConnectionReset => "connection reset".into(),
        ErrorKind::ConnectionAborted => "connection aborted".into(),
        ErrorKind::TimedOut => "timeout".into(),
        ErrorKind::HostUnreachable => "host unreachable".into(),
        ErrorKind::NetworkUnreachable => "network unreachable".into(),
        ErrorKind::AddrNotAvailable => "source address not available".into(),
        ErrorKind::UnexpectedEof => "connection closed before an answer".into(),
        _ => e.to_string(),
    }
}

/// A reason for a failed HTTP exchange: the innermost IO or TLS cause.
fn http_reason(e: &reqwest::Error) -> String {
    let mut source = e.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            if let Some(tls) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return format!("TLS handshake failed: {tls}");
            }
            return io_reason(io);
        }
        if let Some(tls) = cause.downcast_ref::<rustls::Error>() {
            return format!("TLS handshake failed: {tls}");
        }
        source = cause.source();
    }
    if e.is_timeout() {
        return if e.is_connect() { "timeout: no connection".into() } else { "timeout".into() };
    }
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn search_is_exact_and_case_sensitive() {
        assert!(contains(b"status: ok", b"ok"));
        assert!(!contains(b"status: OK", b"ok"));
        assert!(!contains(b"o", b"ok"));
        assert!(contains(b"", b""));
    }

    #[test]
    fn refusal_needs_no_network() {
        let strict = Prober::new(TargetPolicy::STRICT, None).unwrap();
        let check = HealthCheckConfig {
            check_type: CheckType::Tcp,
            ip: Some("10.0.0.1".parse().unwrap()),
            host: None,
            port: Some(80),
            path: None,
            search_string: None,
            request_interval: 1,
            failure_threshold: 1,
            inverted: false,
            disabled: false,
            child_health_checks: vec![],
            health_threshold: None,
        };
        assert!(strict.refusal(&check).unwrap().contains("private address"));
        assert!(Prober::new(TargetPolicy::ALLOW_PRIVATE, None).unwrap().refusal(&check).is_none());
        // A policy change applies to what is judged from then on.
        strict.set_policy(TargetPolicy::DEFAULT);
        assert!(strict.refusal(&check).is_none());
        let loopback = HealthCheckConfig { ip: Some("127.0.0.1".parse().unwrap()), ..check };
        assert!(strict.refusal(&loopback).unwrap().contains("signpost serve"));
    }
}
