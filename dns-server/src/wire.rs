//! From request bytes to response bytes: header checks, EDNS (RFC 6891),
//! the UDP size limit and truncation, and error responses. A plain function,
//! so it is unit-tested and fuzzed without sockets.

use std::net::IpAddr;

use hickory_proto::op::{
    Edns, Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode, emit_message_parts,
};
use hickory_proto::rr::rdata::opt::{ClientSubnet, EdnsCode, EdnsOption};
use hickory_proto::rr::{DNSClass, Record, RecordType};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncoder};
use rand::RngCore;
use signpost_core::answer::{Answer, Client, HealthView, Question, answer};
use signpost_core::geo::GeoLocator;
use signpost_core::usage::ZoneUsage;
use signpost_core::{Snapshot, UsageCategory};

/// Largest UDP answer we send, whatever the client advertises (DNS Flag Day 2020).
pub const UDP_PAYLOAD_CAP: u16 = 1232;
/// UDP answer limit for clients without EDNS (RFC 1035).
pub const UDP_PLAIN_LIMIT: u16 = 512;

/// How the query arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// UDP: size-limited, truncated answers.
    Udp,
    /// TCP: answers up to 65,535 bytes.
    Tcp,
}

/// A response ready to send, with what the usage counters need.
pub struct Response<'s> {
    /// The wire bytes.
    pub bytes: Vec<u8>,
    /// The counters of the hosted zone that answered (None for errors and REFUSED).
    pub zone_usage: Option<&'s ZoneUsage>,
    /// Billing category.
    pub category: UsageCategory,
    /// Response code sent.
    pub rcode: ResponseCode,
}

/// What answering needs besides the snapshot and the packet.
pub struct QueryEnv<'e> {
    /// Health verdicts.
    pub health: &'e dyn HealthView,
    /// Client locations.
    pub geo: &'e dyn GeoLocator,
}

/// Handles one request. Returns None when the packet must be dropped
/// (shorter than a header, or itself a response).
pub fn handle_request<'s, R: RngCore>(
    snapshot: &'s Snapshot,
    env: &QueryEnv<'_>,
    packet: &[u8],
    peer: IpAddr,
    transport: Transport,
    rng: &mut R,
) -> Option<Response<'s>> {
    if packet.len() < 12 {
        return None;
    }
    let header = Header::read(&mut BinDecoder::new(&packet[..12])).ok()?;
    if header.metadata.message_type == MessageType::Response {
        // Never answer answers: that is how reflection loops start.
        return None;
    }
    if header.metadata.op_code != OpCode::Query {
        return Some(header_only(&header.metadata, ResponseCode::NotImp));
    }
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => return Some(header_only(&header.metadata, ResponseCode::FormErr)),
    };
    if request.queries.len() != 1 {
        return Some(formerr_with_opt(&header.metadata, request.edns.is_some()));
    }
    let query = &request.queries[0];

    let mut metadata = Metadata::response_from_request(&request.metadata);
    let mut response_edns = None;
    let mut limit = match transport {
        Transport::Tcp => u16::MAX,
        Transport::Udp => UDP_PLAIN_LIMIT,
    };
    let mut client = Client { addr: peer, subnet: None, geo: env.geo };
    if let Some(req_edns) = &request.edns {
        let mut edns = Edns::new();
        edns.set_max_payload(UDP_PAYLOAD_CAP);
        edns.set_version(0);
        if req_edns.version() > 0 {
            metadata.response_code = ResponseCode::BADVERS;
            response_edns = Some(edns);
            return Some(empty(&metadata, query, response_edns.as_ref()));
        }
        if transport == Transport::Udp {
            limit = req_edns.max_payload().clamp(UDP_PLAIN_LIMIT, UDP_PAYLOAD_CAP);
        }
        if let Some(EdnsOption::Subnet(subnet)) = req_edns.option(EdnsCode::Subnet) {
            // RFC 7871 §7.1.2: a source prefix longer than the address, or
            // address bits past it, is malformed.
            let (addr, source) = (subnet.addr(), subnet.source_prefix());
            let bits = if addr.is_ipv4() { 32 } else { 128 };
            if source > bits || signpost_core::cidr::Prefix::new(addr, source).addr() != addr {
                return Some(formerr_with_opt(&header.metadata, true));
            }
            client.subnet = Some((addr, source));
        }
        response_edns = Some(edns);
    }

    // Other classes are not served; zone transfers are not offered (zones
    // are replicated through PostgreSQL).
    if query.query_class() != DNSClass::IN
        || matches!(query.query_type(), RecordType::AXFR | RecordType::IXFR)
    {
        metadata.response_code = ResponseCode::Refused;
        return Some(empty(&metadata, query, response_edns.as_ref()));
    }

    let result =
        answer(snapshot, Question { name: query.name(), qtype: query.query_type() }, client, env.health, rng);
    if let (Some(edns), Some((addr, source))) = (response_edns.as_mut(), client.subnet) {
        // RFC 7871 §7.2.1: echo family, source prefix and address; add our scope.
        let mut ecs = ClientSubnet::new(addr, source, result.ecs_scope.min(source));
        ecs.set_scope_prefix(result.ecs_scope.min(source));
        edns.options_mut().insert(EdnsOption::Subnet(ecs));
    }
    Some(render(metadata, query, result, response_edns.as_ref(), limit))
}

/// Puts an answer on the wire within `limit` bytes: first whole; then, when
/// the additional records are optional, without them; else truncated (TC=1,
/// question and OPT kept, AA as usual).
fn render<'s>(
    mut metadata: Metadata,
    query: &hickory_proto::op::Query,
    result: Answer<'s>,
    edns: Option<&Edns>,
    limit: u16,
) -> Response<'s> {
    metadata.response_code = result.rcode;
    metadata.authoritative = result.authoritative;
    let zone_usage = result.zone.map(|z| z.usage.as_ref());
    let answers: Vec<&Record> = result.answers.iter().map(|r| r.as_ref()).collect();
    let authority: Vec<&Record> = result.authority.iter().map(|r| r.as_ref()).collect();
    let additional: Vec<&Record> = result.additional.iter().map(|r| r.as_ref()).collect();
    let full = emit(&metadata, query, &answers, &authority, &additional, edns, zone_usage, result.category);
    if full.bytes.len() <= usize::from(limit) {
        return full;
    }
    if !additional.is_empty() && !result.additional_required {
        let trimmed = emit(&metadata, query, &answers, &authority, &[], edns, zone_usage, result.category);
        if trimmed.bytes.len() <= usize::from(limit) {
            return trimmed;
        }
    }
    metadata.truncation = true;
    emit(&metadata, query, &[], &[], &[], edns, zone_usage, result.category)
}

/// A response with the question (and OPT) but no records.
fn empty<'s>(metadata: &Metadata, query: &hickory_proto::op::Query, edns: Option<&Edns>) -> Response<'s> {
    emit(metadata, query, &[], &[], &[], edns, None, UsageCategory::Standard)
}

#[allow(clippy::too_many_arguments)]
fn emit<'s>(
    metadata: &Metadata,
    query: &hickory_proto::op::Query,
    answers: &[&Record],
    authority: &[&Record],
    additional: &[&Record],
    edns: Option<&Edns>,
    zone_usage: Option<&'s ZoneUsage>,
    category: UsageCategory,
) -> Response<'s> {
    let mut bytes = Vec::with_capacity(512);
    let mut encoder = BinEncoder::new(&mut bytes);
    let result = emit_message_parts(
        metadata,
        &mut std::iter::once(query),
        &mut answers.iter().copied(),
        &mut authority.iter().copied(),
        &mut additional.iter().copied(),
        edns,
        None,
        &mut encoder,
    );
    match result {
        Ok(_) => Response { bytes, zone_usage, category, rcode: metadata.response_code },
        // Stored data that cannot be encoded must not crash anything: SERVFAIL.
        Err(_) => header_only(metadata, ResponseCode::ServFail),
    }
}

/// SERVFAIL for a query that arrives before the first snapshot is loaded.
pub fn not_ready(packet: &[u8]) -> Option<Vec<u8>> {
    let header = Header::read(&mut BinDecoder::new(packet.get(..12)?)).ok()?;
    if header.metadata.message_type == MessageType::Response {
        return None;
    }
    Some(header_only(&header.metadata, ResponseCode::ServFail).bytes)
}

/// FORMERR to a request whose OPT parsed: header and our OPT (RFC 6891 §7:
/// a response to an EDNS request carries OPT), no question.
fn formerr_with_opt<'s>(request: &Metadata, had_edns: bool) -> Response<'s> {
    if !had_edns {
        return header_only(request, ResponseCode::FormErr);
    }
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = ResponseCode::FormErr;
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD_CAP);
    let mut bytes = Vec::with_capacity(23);
    let mut encoder = BinEncoder::new(&mut bytes);
    let none: [&Record; 0] = [];
    let emitted = emit_message_parts(
        &metadata,
        &mut std::iter::empty::<&hickory_proto::op::Query>(),
        &mut none.iter().copied(),
        &mut none.iter().copied(),
        &mut none.iter().copied(),
        Some(&edns),
        None,
        &mut encoder,
    );
    match emitted {
        Ok(_) => Response {
            bytes,
            zone_usage: None,
            category: UsageCategory::Standard,
            rcode: ResponseCode::FormErr,
        },
        Err(_) => header_only(request, ResponseCode::FormErr),
    }
}

/// A response of just a header (FORMERR, NOTIMP, SERVFAIL).
fn header_only<'s>(request: &Metadata, rcode: ResponseCode) -> Response<'s> {
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = rcode;
    let header = Header { metadata, counts: HeaderCounts::default() };
    let mut bytes = Vec::with_capacity(12);
    let mut encoder = BinEncoder::new(&mut bytes);
    // A header always encodes into a Vec.
    let _ = hickory_proto::serialize::binary::BinEncodable::emit(&header, &mut encoder);
    Response { bytes, zone_usage: None, category: UsageCategory::Standard, rcode }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use hickory_proto::op::Query;
    use hickory_proto::rr::Name;
    use rand::rngs::SmallRng;
    use rand::{Rng, SeedableRng};
    use signpost_core::answer::AllHealthy;
    use signpost_core::snapshot::ZoneContent;
    use signpost_core::{HostedZone, RecordSet};

    use super::*;

    fn snapshot() -> Snapshot {
        let many: Vec<String> = (1..=60).map(|i| format!("192.0.2.{i}")).collect();
        let many_refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let rrsets = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1.example.com. h.example.com. 1 2 3 4 60"]),
            RecordSet::simple("example.com.", "NS", 900, &["ns1.example.com."]),
            RecordSet::simple("www.example.com.", "A", 60, &["192.0.2.1"]),
            RecordSet::simple("big.example.com.", "A", 60, &many_refs),
        ];
        let zone =
            HostedZone { id: "Z".into(), account_id: "A".into(), name: "example.com.".into(), serial: 3 };
        Snapshot::from_zones([Arc::new(ZoneContent::build(zone, &rrsets).unwrap())])
    }

    fn env() -> QueryEnv<'static> {
        QueryEnv { health: &AllHealthy, geo: &signpost_core::geo::NoGeo }
    }

    fn query(name: &str, qtype: RecordType, edns: Option<Edns>) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.id = 4242;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        if let Some(e) = edns {
            m.set_edns(e);
        }
        m.to_vec().unwrap()
    }

    fn run(packet: &[u8], transport: Transport) -> Option<Message> {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = snapshot();
        handle_request(&s, &env(), packet, IpAddr::from([127, 0, 0, 1]), transport, &mut rng)
            .map(|r| Message::from_vec(&r.bytes).unwrap())
    }

    #[test]
    fn answers_with_aa_and_echoes_the_question_case() {
        let m = run(&query("WwW.ExAmple.com.", RecordType::A, None), Transport::Udp).unwrap();
        assert_eq!(m.metadata.id, 4242);
        assert!(m.metadata.authoritative);
        assert_eq!(m.answers.len(), 1);
        assert_eq!(m.queries[0].name().to_ascii(), "WwW.ExAmple.com.");
        assert!(m.edns.is_none(), "no OPT for a non-EDNS query");
    }

    #[test]
    fn plain_udp_is_capped_at_512_and_truncated() {
        let packet = query("big.example.com.", RecordType::A, None);
        let mut rng = SmallRng::seed_from_u64(1);
        let s = snapshot();
        let r = handle_request(&s, &env(), &packet, IpAddr::from([127, 0, 0, 1]), Transport::Udp, &mut rng)
            .unwrap();
        assert!(r.bytes.len() <= 512);
        let m = Message::from_vec(&r.bytes).unwrap();
        assert!(m.metadata.truncation);
        assert!(m.metadata.authoritative);
        assert_eq!(m.queries.len(), 1);
        let tcp = run(&packet, Transport::Tcp).unwrap();
        assert!(!tcp.metadata.truncation);
        assert_eq!(tcp.answers.len(), 60);
    }

    #[test]
    fn edns_payload_is_capped_and_echoed() {
        let mut edns = Edns::new();
        edns.set_max_payload(4096);
        let m = run(&query("big.example.com.", RecordType::A, Some(edns)), Transport::Udp).unwrap();
        // 60 A records need ~1,000 bytes: fits under 1232.
        assert!(!m.metadata.truncation);
        assert_eq!(m.edns.as_ref().unwrap().max_payload(), UDP_PAYLOAD_CAP);
        let mut small = Edns::new();
        small.set_max_payload(600);
        let m = run(&query("big.example.com.", RecordType::A, Some(small)), Transport::Udp).unwrap();
        assert!(m.metadata.truncation, "a smaller client size is honoured");
        assert!(m.edns.is_some(), "OPT kept on truncation");
    }

    #[test]
    fn badvers_for_edns_version_one() {
        let mut edns = Edns::new();
        edns.set_version(1);
        let m = run(&query("www.example.com.", RecordType::A, Some(edns)), Transport::Udp).unwrap();
        // BADVERS and BADSIG share the code 16; hickory decodes it as BADSIG.
        assert_eq!(u16::from(m.metadata.response_code), 16);
        assert!(m.answers.is_empty());
        assert_eq!(m.edns.unwrap().version(), 0);
    }

    #[test]
    fn garbage_gets_formerr_or_is_dropped() {
        assert!(run(&[0u8; 5], Transport::Udp).is_none());
        let mut bad = query("www.example.com.", RecordType::A, None);
        bad.truncate(bad.len() - 3);
        let m = run(&bad, Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert_eq!(m.metadata.id, 4242);
        let mut response = query("www.example.com.", RecordType::A, None);
        response[2] |= 0x80;
        assert!(run(&response, Transport::Udp).is_none(), "responses are dropped");
        let mut notify = query("www.example.com.", RecordType::A, None);
        notify[2] = (notify[2] & 0x87) | (4 << 3);
        assert_eq!(run(&notify, Transport::Udp).unwrap().metadata.response_code, ResponseCode::NotImp);
        let mut rng = SmallRng::seed_from_u64(9);
        let s = snapshot();
        for len in 0..200 {
            let mut junk = vec![0u8; len];
            rng.fill(&mut junk[..]);
            let _ = handle_request(&s, &env(), &junk, IpAddr::from([127, 0, 0, 1]), Transport::Udp, &mut rng);
        }
    }

    #[test]
    fn formerr_to_an_edns_request_carries_opt() {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii("a.example.com.").unwrap(), RecordType::A));
        m.add_query(Query::query(Name::from_ascii("b.example.com.").unwrap(), RecordType::A));
        m.set_edns(Edns::new());
        let reply = run(&m.to_vec().unwrap(), Transport::Udp).unwrap();
        assert_eq!(reply.metadata.response_code, ResponseCode::FormErr);
        assert!(reply.edns.is_some());
        assert!(reply.queries.is_empty());
    }

    #[test]
    fn refused_outside_hosted_zones_and_for_transfers() {
        let m = run(&query("example.org.", RecordType::A, None), Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
        assert!(!m.metadata.authoritative);
        let m = run(&query("example.com.", RecordType::AXFR, None), Transport::Tcp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    }
}
