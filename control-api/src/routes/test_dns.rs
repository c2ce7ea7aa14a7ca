//! TestDNSAnswer: what the DNS server would answer a client, computed with
//! the same function the DNS servers run (`signpost_core::answer`) over a
//! snapshot of the account's zones, its routing data and the current
//! health verdicts, with the configured geo database.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::extract::State;
use hickory_proto::rr::{Name, RecordType};
use serde::Deserialize;
use signpost_core::cidr::Prefix;
use signpost_core::geo::{GeoLocator, NoGeo};
use signpost_core::rdata::rdata_text;
use signpost_core::routing::AccountRouting;
use signpost_core::{Client, HostedZone, Question, RecordSet, Snapshot, ZoneContent};
use signpost_store::health::{DEFAULT_CHECKER_LIVENESS, DEFAULT_HEALTHY_SHARE};
use utoipa::IntoParams;

use super::caller_zone;
use crate::ApiState;
use crate::auth::Caller;
use crate::checks::inside_zone;
use crate::dto::DnsAnswer;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{ApiQuery, IdPath};

/// The question and the client of a TestDNSAnswer.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(rename_all = "camelCase")]
#[into_params(parameter_in = Query, rename_all = "camelCase")]
pub struct TestDnsParams {
    /// The name to ask for, inside the zone.
    #[param(required, example = "www.example.com.")]
    pub name: Option<String>,
    /// The type to ask for (a supported record type, or ANY).
    #[serde(rename = "type")]
    #[param(rename = "type", required, example = "A")]
    pub rtype: Option<String>,
    /// The EDNS Client Subnet, `address/length` (an address alone: /24 for
    /// IPv4, /64 for IPv6, as Route 53); host bits are cleared.
    #[param(example = "198.51.100.0/24")]
    pub client_subnet: Option<String>,
    /// The resolver's address (default 127.0.0.1).
    pub resolver_ip: Option<String>,
}

/// A checked TestDNSAnswer question.
#[derive(Debug, Clone, PartialEq)]
pub struct TestQuestion {
    /// The name, as parsed.
    pub name: Name,
    /// Its canonical text.
    pub name_text: String,
    /// The type.
    pub qtype: RecordType,
    /// The resolver.
    pub resolver: IpAddr,
    /// The client subnet, host bits cleared.
    pub subnet: Option<(IpAddr, u8)>,
}

fn required<'a>(value: &'a Option<String>, field: &str) -> Result<&'a str, ApiError> {
    value.as_deref().ok_or_else(|| ApiError::invalid(field, format!("{field} is required")))
}

/// Parses `address/length` or an address (default /24 for IPv4, /64 for IPv6).
pub fn parse_subnet(text: &str) -> Result<(IpAddr, u8), ApiError> {
    let bad = |why: &str| ApiError::invalid("clientSubnet", format!("{text:?} {why}"));
    let (addr_text, len_text) = match text.trim().split_once('/') {
        Some((addr, len)) => (addr, Some(len)),
        None => (text.trim(), None),
    };
    let addr: IpAddr = addr_text.parse().map_err(|_| bad("is not an address/length like 198.51.100.0/24"))?;
    let (max, default) = if addr.is_ipv4() { (32, 24) } else { (128, 64) };
    let len = match len_text {
        None => default,
        Some(l) => l
            .parse::<u8>()
            .ok()
            .filter(|l| *l <= max)
            .ok_or_else(|| bad(&format!("has a prefix length that is not 0 to {max}")))?,
    };
    Ok((Prefix::new(addr, len).addr(), len))
}

impl TestQuestion {
    /// Checks the parameters against the zone `zone_name` (400 naming the parameter).
    pub fn parse(params: &TestDnsParams, zone_name: &str) -> Result<TestQuestion, ApiError> {
        let name_text = required(&params.name, "name")?;
        let name = signpost_core::names::parse_name(name_text, "name")?;
        let canonical = signpost_core::names::name_text(&name);
        if !inside_zone(&canonical, zone_name) {
            return Err(ApiError::invalid("name", format!("{canonical} is not inside the zone {zone_name}")));
        }
        let type_text = required(&params.rtype, "type")?;
        let qtype = if type_text.eq_ignore_ascii_case("ANY") {
            RecordType::ANY
        } else {
            signpost_core::rdata::parse_type(type_text, "type")?
        };
        let resolver = match params.resolver_ip.as_deref() {
            None => IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(text) => text.trim().parse().map_err(|_| {
                ApiError::invalid("resolverIp", format!("{text:?} is not an IPv4 or IPv6 address"))
            })?,
        };
        let subnet = params.client_subnet.as_deref().map(parse_subnet).transpose()?;
        Ok(TestQuestion { name, name_text: canonical, qtype, resolver, subnet })
    }
}

/// The DNS name of a response code (NOERROR, NXDOMAIN, ...).
pub fn rcode_text(code: u16) -> String {
    match code {
        0 => "NOERROR".into(),
        1 => "FORMERR".into(),
        2 => "SERVFAIL".into(),
        3 => "NXDOMAIN".into(),
        4 => "NOTIMP".into(),
        5 => "REFUSED".into(),
        n => format!("RCODE{n}"),
    }
}

/// A snapshot of an account's zones with its routing data (zones that do
/// not build are left out, as the DNS servers leave them out).
pub fn account_snapshot(
    account_id: &str,
    zones: Vec<(HostedZone, Vec<RecordSet>)>,
    routing: AccountRouting,
) -> Snapshot {
    let mut snapshot = Snapshot::empty();
    for (zone, rrsets) in zones {
        let id = zone.id.clone();
        match ZoneContent::build(zone, &rrsets) {
            Ok(content) => snapshot.insert(Arc::new(content)),
            Err(e) => tracing::warn!(zone = %id, error = %e, "zone left out of TestDNSAnswer"),
        }
    }
    snapshot.insert_routing(account_id, Arc::new(routing));
    snapshot
}

/// Answers `question` from `snapshot` as a DNS server would.
pub fn evaluate(
    snapshot: &Snapshot,
    question: &TestQuestion,
    geo: &dyn GeoLocator,
    health: &dyn signpost_core::HealthView,
) -> DnsAnswer {
    let client = Client { addr: question.resolver, subnet: question.subnet, geo };
    let mut rng = rand::rng();
    let answer = signpost_core::answer(
        snapshot,
        Question { name: &question.name, qtype: question.qtype },
        client,
        health,
        &mut rng,
    );
    DnsAnswer {
        name: question.name_text.clone(),
        rtype: question.qtype.to_string(),
        rcode: rcode_text(u16::from(answer.rcode)),
        records: answer.answers.iter().map(|r| rdata_text(&r.data)).collect(),
        ecs_scope: question.subnet.map(|(_, source)| answer.ecs_scope.min(source)),
    }
}

/// What the DNS server would answer a client (Route 53's TestDNSAnswer).
#[utoipa::path(
    get, path = "/v1/zones/{id}/test-dns-answer", tag = "zones",
    params(("id" = String, Path, description = "Zone id"), TestDnsParams),
    responses(
        (status = 200, description = "The response code, the answer's record data and the ECS scope", body = DnsAnswer),
        (status = 404, description = "No such zone in this account", body = ErrorBody),
    ),
)]
pub async fn test_dns_answer(
    State(state): State<ApiState>,
    caller: Caller,
    IdPath(id): IdPath,
    ApiQuery(params): ApiQuery<TestDnsParams>,
) -> Result<axum::Json<DnsAnswer>, ApiError> {
    let zone = caller_zone(&state, &caller, &id).await?;
    let question = TestQuestion::parse(&params, &zone.name)?;
    let store = &state.store;
    let map = |e| ApiError::from_store(e, "NoSuchHostedZone");
    let zones = store.load_account_zones(&caller.account_id).await.map_err(map)?;
    let routing = store.account_routing(&caller.account_id).await.map_err(map)?;
    let verdicts =
        store.health_verdicts(DEFAULT_HEALTHY_SHARE, DEFAULT_CHECKER_LIVENESS).await.map_err(map)?;
    let snapshot = account_snapshot(&caller.account_id, zones, routing);
    let geo: &dyn GeoLocator = match &state.config.geo {
        Some(geo) => geo.as_ref(),
        None => &NoGeo,
    };
    Ok(axum::Json(evaluate(&snapshot, &question, geo, &verdicts)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(name: &str, rtype: &str) -> TestDnsParams {
        TestDnsParams { name: Some(name.into()), rtype: Some(rtype.into()), ..TestDnsParams::default() }
    }

    fn zone() -> (HostedZone, Vec<RecordSet>) {
        let zone =
            HostedZone { id: "Z1".into(), account_id: "A1".into(), name: "example.test.".into(), serial: 7 };
        let soa = RecordSet::simple(
            "example.test.",
            "SOA",
            900,
            &["ns1.example.test. hostmaster.example.test. 1 7200 900 1209600 86400"],
        );
        let www = RecordSet::simple("www.example.test.", "A", 60, &["192.0.2.1"]);
        (zone, vec![soa, www])
    }

    #[test]
    fn questions_are_checked_with_the_parameter_named() {
        let field = |p: &TestDnsParams| TestQuestion::parse(p, "example.test.").unwrap_err().field;
        assert_eq!(field(&TestDnsParams::default()).as_deref(), Some("name"));
        assert_eq!(field(&params("www.other.test.", "A")).as_deref(), Some("name"));
        assert_eq!(field(&params("www.example.test.", "NOPE")).as_deref(), Some("type"));
        assert_eq!(
            field(&TestDnsParams { rtype: None, ..params("www.example.test.", "A") }).as_deref(),
            Some("type")
        );
        let bad_subnet =
            TestDnsParams { client_subnet: Some("10.0.0.0/33".into()), ..params("example.test", "a") };
        assert_eq!(field(&bad_subnet).as_deref(), Some("clientSubnet"));
        let bad_resolver = TestDnsParams { resolver_ip: Some("x".into()), ..params("example.test", "a") };
        assert_eq!(field(&bad_resolver).as_deref(), Some("resolverIp"));
        let q = TestQuestion::parse(&params("WWW.Example.Test", "any"), "example.test.").unwrap();
        assert_eq!((q.name_text.as_str(), q.qtype), ("www.example.test.", RecordType::ANY));
        assert_eq!(parse_subnet("10.1.2.3").unwrap(), ("10.1.2.0".parse().unwrap(), 24));
        assert_eq!(parse_subnet("2001:db8::1").unwrap(), ("2001:db8::".parse().unwrap(), 64));
        assert_eq!(parse_subnet("10.1.2.3/16").unwrap(), ("10.1.0.0".parse().unwrap(), 16));
    }

    #[test]
    fn answers_like_the_dns_server() {
        let snapshot = account_snapshot("A1", vec![zone()], AccountRouting::default());
        let ask = |name: &str, subnet: Option<&str>| {
            let p = TestDnsParams { client_subnet: subnet.map(str::to_string), ..params(name, "A") };
            let q = TestQuestion::parse(&p, "example.test.").unwrap();
            evaluate(&snapshot, &q, &NoGeo, &signpost_core::answer::AllHealthy)
        };
        let found = ask("www.example.test.", None);
        assert_eq!(
            (found.rcode.as_str(), found.records.clone(), found.ecs_scope),
            ("NOERROR", vec!["192.0.2.1".to_string()], None)
        );
        let missing = ask("nope.example.test.", Some("198.51.100.0/24"));
        assert_eq!(
            (missing.rcode.as_str(), missing.records.len(), missing.ecs_scope),
            ("NXDOMAIN", 0, Some(0))
        );
        assert_eq!(rcode_text(2), "SERVFAIL");
    }
}
