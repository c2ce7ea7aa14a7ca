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

use crate::rrl::{ResponseIdentity, ResponseKind, bytes_hash, name_hash};

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
    /// The rate-limit bucket the response counts against (with the client's network).
    pub identity: ResponseIdentity,
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
    // Read from the raw bytes, so that errors to EDNS requests carry OPT
    // even when the message as a whole does not parse (RFC 6891 §7).
    let raw_opt = find_opt(packet);
    if header.metadata.op_code != OpCode::Query {
        return Some(error_reply(&header.metadata, ResponseCode::NotImp, raw_opt));
    }
    let request = match Message::from_vec(packet) {
        Ok(m) => m,
        Err(_) => return Some(error_reply(&header.metadata, ResponseCode::FormErr, raw_opt)),
    };
    if request.queries.len() != 1 {
        return Some(error_reply(&header.metadata, ResponseCode::FormErr, raw_opt));
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
        // RFC 3225 §3: the DO bit of the query MUST be copied into the response.
        edns.set_dnssec_ok(req_edns.flags().dnssec_ok);
        if req_edns.version() > 0 {
            metadata.response_code = ResponseCode::BADVERS;
            response_edns = Some(edns);
            return Some(empty(&metadata, query, response_edns.as_ref()));
        }
        if transport == Transport::Udp {
            limit = req_edns.max_payload().clamp(UDP_PLAIN_LIMIT, UDP_PAYLOAD_CAP);
        }
        if let Some(EdnsOption::Subnet(subnet)) = req_edns.option(EdnsCode::Subnet) {
            // hickory reads only the octets the prefix needs and ignores the
            // rest, so the option is checked on the raw bytes.
            if raw_opt.is_none_or(|opt| ecs_malformed(opt.rdata)) {
                return Some(error_reply(&header.metadata, ResponseCode::FormErr, raw_opt));
            }
            client.subnet = Some((subnet.addr(), subnet.source_prefix()));
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
    let identity = identity_of(&result, query);
    let zone_usage = result.zone.map(|z| z.usage.as_ref());
    let answers: Vec<&Record> = result.answers.iter().map(|r| r.as_ref()).collect();
    let authority: Vec<&Record> = result.authority.iter().map(|r| r.as_ref()).collect();
    let additional: Vec<&Record> = result.additional.iter().map(|r| r.as_ref()).collect();
    let with_identity = |mut response: Response<'s>| {
        if response.rcode == metadata.response_code {
            response.identity = identity;
        }
        response
    };
    let full = emit(&metadata, query, &answers, &authority, &additional, edns, zone_usage, result.category);
    if full.bytes.len() <= usize::from(limit) {
        return with_identity(full);
    }
    if !additional.is_empty() && !result.additional_required {
        let trimmed = emit(&metadata, query, &answers, &authority, &[], edns, zone_usage, result.category);
        if trimmed.bytes.len() <= usize::from(limit) {
            return with_identity(trimmed);
        }
    }
    metadata.truncation = true;
    with_identity(emit(&metadata, query, &[], &[], &[], edns, zone_usage, result.category))
}

/// The rate-limit bucket of an answer (BIND's classes): positive answers per
/// name and type, NODATA per name, NXDOMAIN per zone, referrals per zone cut,
/// errors all in one.
fn identity_of(result: &Answer<'_>, query: &hickory_proto::op::Query) -> ResponseIdentity {
    let (kind, detail) = match result.rcode {
        ResponseCode::NoError if !result.answers.is_empty() => {
            (ResponseKind::Positive, name_hash(query.name(), u16::from(query.query_type())))
        }
        ResponseCode::NoError if !result.authoritative && !result.authority.is_empty() => {
            (ResponseKind::Referral, name_hash(&result.authority[0].name, 0))
        }
        ResponseCode::NoError => (ResponseKind::NoData, name_hash(query.name(), 0)),
        ResponseCode::NXDomain => {
            (ResponseKind::NxDomain, bytes_hash(result.zone_id.unwrap_or_default().as_bytes()))
        }
        _ => return ResponseIdentity::ERROR,
    };
    ResponseIdentity { kind, detail }
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
        Ok(_) => Response {
            bytes,
            zone_usage,
            category,
            rcode: metadata.response_code,
            identity: ResponseIdentity::ERROR,
        },
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
    Some(error_reply(&header.metadata, ResponseCode::ServFail, find_opt(packet)).bytes)
}

/// The OPT record of a message, found in the raw bytes.
#[derive(Debug, Clone, Copy)]
struct RawOpt<'p> {
    /// The EDNS flags (DO is the top bit).
    flags: u16,
    /// The options.
    rdata: &'p [u8],
    /// The whole record.
    record: &'p [u8],
}

/// The offset after the name at `at` (a compression pointer ends it).
fn skip_name(packet: &[u8], mut at: usize) -> Option<usize> {
    loop {
        let len = *packet.get(at)?;
        match len & 0xC0 {
            0x00 if len == 0 => return Some(at + 1),
            0x00 => at += 1 + usize::from(len),
            0xC0 => {
                packet.get(at + 1)?;
                return Some(at + 2);
            }
            _ => return None,
        }
    }
}

/// The first OPT record in the additional section; None when there is none
/// or the sections before it cannot be walked.
fn find_opt(packet: &[u8]) -> Option<RawOpt<'_>> {
    let count = |at: usize| -> Option<usize> {
        Some(usize::from(u16::from_be_bytes([*packet.get(at)?, *packet.get(at + 1)?])))
    };
    let (questions, answers, authority, additional) = (count(4)?, count(6)?, count(8)?, count(10)?);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(packet, at)? + 4;
    }
    for index in 0..answers + authority + additional {
        let start = at;
        let name_end = skip_name(packet, at)?;
        let fixed = packet.get(name_end..name_end + 10)?;
        let rdata_len = usize::from(u16::from_be_bytes([fixed[8], fixed[9]]));
        let rdata = packet.get(name_end + 10..name_end + 10 + rdata_len)?;
        at = name_end + 10 + rdata_len;
        if index >= answers + authority && u16::from_be_bytes([fixed[0], fixed[1]]) == 41 {
            let flags = u16::from_be_bytes([fixed[6], fixed[7]]);
            return Some(RawOpt { flags, rdata, record: &packet[start..at] });
        }
    }
    None
}

/// RFC 7871 §6: whether an OPT's ECS option is malformed — an unknown
/// family, a source prefix longer than the family's addresses, more or fewer
/// address octets than the prefix needs, or address bits set past it.
fn ecs_malformed(options: &[u8]) -> bool {
    let mut at = 0;
    while at < options.len() {
        let Some(head) = options.get(at..at + 4) else { return true };
        let len = usize::from(u16::from_be_bytes([head[2], head[3]]));
        let Some(data) = options.get(at + 4..at + 4 + len) else { return true };
        if u16::from_be_bytes([head[0], head[1]]) == 8 && !ecs_well_formed(data) {
            return true;
        }
        at += 4 + len;
    }
    false
}

fn ecs_well_formed(data: &[u8]) -> bool {
    let [family_hi, family_lo, source, _scope, address @ ..] = data else { return false };
    let bits = match u16::from_be_bytes([*family_hi, *family_lo]) {
        1 => 32,
        2 => 128,
        _ => return false,
    };
    if *source > bits || address.len() != usize::from(source.div_ceil(8)) {
        return false;
    }
    let spare = address.len() * 8 - usize::from(*source);
    spare == 0 || address.last().is_some_and(|last| last & ((1u8 << spare) - 1) == 0)
}

/// The slipped form of a response (RRL): the header with TC=1 (NXDOMAIN
/// becomes NOERROR), the question and the OPT, no records, so that a real
/// client retries over TCP. Other errors are sent as they are (they are no
/// bigger than the query). None if the bytes are not a message.
pub fn slipped(response: &[u8]) -> Option<Vec<u8>> {
    let header = response.get(..12)?;
    let rcode = header[3] & 0x0F;
    if rcode != ResponseCode::NoError.low() && rcode != ResponseCode::NXDomain.low() {
        return Some(response.to_vec());
    }
    let questions = u16::from_be_bytes([header[4], header[5]]);
    let mut at = 12;
    for _ in 0..questions {
        at = skip_name(response, at)? + 4;
    }
    let question = response.get(12..at)?;
    let opt = find_opt(response);
    let mut out = Vec::with_capacity(at + opt.map_or(0, |o| o.record.len()));
    out.extend_from_slice(&header[..4]);
    out[2] |= 0x02; // TC
    out[3] &= 0xF0; // RCODE: NOERROR
    out.extend_from_slice(&questions.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, u8::from(opt.is_some())]);
    out.extend_from_slice(question);
    if let Some(opt) = opt {
        out.extend_from_slice(opt.record);
    }
    Some(out)
}

/// An error response: the header and, when the request carried OPT, our OPT
/// (RFC 6891 §7) with its DO bit copied (RFC 3225 §3); no question.
fn error_reply<'s>(request: &Metadata, rcode: ResponseCode, request_opt: Option<RawOpt<'_>>) -> Response<'s> {
    let Some(request_opt) = request_opt else {
        return header_only(request, rcode);
    };
    let mut metadata = Metadata::response_from_request(request);
    metadata.response_code = rcode;
    let mut edns = Edns::new();
    edns.set_max_payload(UDP_PAYLOAD_CAP);
    edns.set_dnssec_ok(request_opt.flags & 0x8000 != 0);
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
            rcode,
            identity: ResponseIdentity::ERROR,
        },
        Err(_) => header_only(request, rcode),
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
    Response {
        bytes,
        zone_usage: None,
        category: UsageCategory::Standard,
        rcode,
        identity: ResponseIdentity::ERROR,
    }
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

    /// A query for www.example.com. A whose OPT carries an ECS option of these raw bytes.
    fn ecs_query(family: u16, source: u8, address: &[u8]) -> Vec<u8> {
        let mut data = family.to_be_bytes().to_vec();
        data.extend_from_slice(&[source, 0]);
        data.extend_from_slice(address);
        let mut edns = Edns::new();
        edns.options_mut().insert(EdnsOption::Unknown(8, data));
        query("www.example.com.", RecordType::A, Some(edns))
    }

    #[test]
    fn the_do_bit_is_copied_into_every_reply_with_opt() {
        let mut with_do = Edns::new();
        with_do.set_dnssec_ok(true);
        let m =
            run(&query("www.example.com.", RecordType::A, Some(with_do.clone())), Transport::Udp).unwrap();
        assert!(m.edns.as_ref().unwrap().flags().dnssec_ok);
        let m = run(&query("www.example.com.", RecordType::A, Some(Edns::new())), Transport::Udp).unwrap();
        assert!(!m.edns.as_ref().unwrap().flags().dnssec_ok);
        // NXDOMAIN, REFUSED, BADVERS and NOTIMP keep it too.
        let m =
            run(&query("nope.example.com.", RecordType::A, Some(with_do.clone())), Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(m.edns.unwrap().flags().dnssec_ok);
        let m = run(&query("example.org.", RecordType::A, Some(with_do.clone())), Transport::Udp).unwrap();
        assert!(m.edns.unwrap().flags().dnssec_ok);
        let mut v1 = with_do.clone();
        v1.set_version(1);
        let m = run(&query("www.example.com.", RecordType::A, Some(v1)), Transport::Udp).unwrap();
        assert!(m.edns.unwrap().flags().dnssec_ok);
        let mut notify = query("www.example.com.", RecordType::A, Some(with_do));
        notify[2] = (notify[2] & 0x87) | (4 << 3);
        let m = run(&notify, Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
        assert!(m.edns.unwrap().flags().dnssec_ok);
        // In the raw bytes: the OPT's flags word has its top bit set.
        let mut edns = Edns::new();
        edns.set_dnssec_ok(true);
        let packet = query("www.example.com.", RecordType::A, Some(edns));
        let mut rng = SmallRng::seed_from_u64(1);
        let s = snapshot();
        let r = handle_request(&s, &env(), &packet, IpAddr::from([127, 0, 0, 1]), Transport::Udp, &mut rng)
            .unwrap();
        assert_eq!(find_opt(&r.bytes).unwrap().flags, 0x8000);
    }

    #[test]
    fn notimp_and_formerr_carry_opt_only_when_the_request_did() {
        let mut notify = query("www.example.com.", RecordType::A, Some(Edns::new()));
        notify[2] = (notify[2] & 0x87) | (4 << 3);
        let m = run(&notify, Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NotImp);
        assert_eq!(m.edns.unwrap().max_payload(), UDP_PAYLOAD_CAP);
        let mut plain = query("www.example.com.", RecordType::A, None);
        plain[2] = (plain[2] & 0x87) | (4 << 3);
        assert!(run(&plain, Transport::Udp).unwrap().edns.is_none());
        // A message hickory cannot parse (an ECS option cut short), but whose OPT is readable.
        let m = run(&ecs_query(1, 24, &[192, 0]), Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.edns.is_some());
        // A packet cut in its question: no OPT can be found, none is sent.
        let mut cut = query("www.example.com.", RecordType::A, Some(Edns::new()));
        cut.truncate(20);
        let m = run(&cut, Transport::Udp).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::FormErr);
        assert!(m.edns.is_none());
    }

    #[test]
    fn ecs_options_are_checked_strictly_on_the_raw_bytes() {
        let rcode = |packet: Vec<u8>| {
            let m = run(&packet, Transport::Udp).unwrap();
            assert!(m.edns.is_some(), "OPT in every reply to an EDNS query");
            m.metadata.response_code
        };
        // Well formed: /24 with three octets, /20 with its spare bits clear, /0, /56.
        assert_eq!(rcode(ecs_query(1, 24, &[192, 0, 2])), ResponseCode::NoError);
        assert_eq!(rcode(ecs_query(1, 20, &[192, 0, 0x20])), ResponseCode::NoError);
        assert_eq!(rcode(ecs_query(1, 0, &[])), ResponseCode::NoError);
        assert_eq!(rcode(ecs_query(2, 56, &[0x20, 1, 0xd, 0xb8, 0, 0, 1])), ResponseCode::NoError);
        // More address octets than the prefix needs (hickory would drop the extra one).
        assert_eq!(rcode(ecs_query(1, 24, &[192, 0, 2, 1])), ResponseCode::FormErr);
        assert_eq!(rcode(ecs_query(1, 0, &[10])), ResponseCode::FormErr);
        // Fewer.
        assert_eq!(rcode(ecs_query(1, 24, &[192, 0])), ResponseCode::FormErr);
        // Address bits past the source prefix.
        assert_eq!(rcode(ecs_query(1, 20, &[192, 0, 0x21])), ResponseCode::FormErr);
        assert_eq!(rcode(ecs_query(2, 60, &[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0x0f])), ResponseCode::FormErr);
        // A prefix longer than the family's addresses; an unknown family.
        assert_eq!(rcode(ecs_query(1, 33, &[1, 2, 3, 4, 5])), ResponseCode::FormErr);
        assert_eq!(rcode(ecs_query(7, 8, &[1])), ResponseCode::FormErr);
        // The accepted subnet is echoed with our scope.
        let m = run(&ecs_query(1, 24, &[192, 0, 2]), Transport::Udp).unwrap();
        let Some(EdnsOption::Subnet(echo)) = m.edns.unwrap().option(EdnsCode::Subnet).cloned() else {
            panic!("no ECS echoed")
        };
        assert_eq!((echo.addr(), echo.source_prefix()), (IpAddr::from([192, 0, 2, 0]), 24));
    }

    #[test]
    fn slipped_replies_are_empty_truncated_and_keep_question_and_opt() {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = snapshot();
        let peer = IpAddr::from([192, 0, 2, 9]);
        let mut edns = Edns::new();
        edns.set_dnssec_ok(true);
        let packet = query("big.example.com.", RecordType::A, Some(edns.clone()));
        let full = handle_request(&s, &env(), &packet, peer, Transport::Udp, &mut rng).unwrap();
        let slip = slipped(&full.bytes).unwrap();
        assert!(slip.len() < 100, "{} bytes", slip.len());
        let m = Message::from_vec(&slip).unwrap();
        assert_eq!(m.metadata.id, 4242);
        assert!(m.metadata.truncation && m.metadata.authoritative);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(m.queries[0].name().to_ascii(), "big.example.com.");
        assert!(m.answers.is_empty() && m.authorities.is_empty() && m.additionals.is_empty());
        assert!(m.edns.unwrap().flags().dnssec_ok);
        // NXDOMAIN slips as NOERROR+TC; without EDNS there is no OPT.
        let nx = handle_request(
            &s,
            &env(),
            &query("no.example.com.", RecordType::A, None),
            peer,
            Transport::Udp,
            &mut rng,
        )
        .unwrap();
        let m = Message::from_vec(&slipped(&nx.bytes).unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.metadata.truncation && m.edns.is_none() && m.authorities.is_empty());
        // An error is sent as it is.
        let refused = handle_request(
            &s,
            &env(),
            &query("example.org.", RecordType::A, None),
            peer,
            Transport::Udp,
            &mut rng,
        )
        .unwrap();
        assert_eq!(slipped(&refused.bytes).unwrap(), refused.bytes);
        assert!(slipped(&[1, 2, 3]).is_none());
    }

    #[test]
    fn responses_are_classified_for_rate_limiting() {
        let mut rng = SmallRng::seed_from_u64(1);
        let s = snapshot();
        let peer = IpAddr::from([192, 0, 2, 9]);
        let mut identity = |name: &str, qtype: RecordType| {
            handle_request(&s, &env(), &query(name, qtype, None), peer, Transport::Udp, &mut rng)
                .unwrap()
                .identity
        };
        let www = identity("www.example.com.", RecordType::A);
        assert_eq!(www.kind, ResponseKind::Positive);
        assert_eq!(www, identity("WWW.example.com.", RecordType::A));
        assert_ne!(www, identity("www.example.com.", RecordType::NS));
        assert_eq!(identity("www.example.com.", RecordType::MX).kind, ResponseKind::NoData);
        // Every NXDOMAIN of a zone shares one bucket (random-subdomain floods).
        let nx = identity("a1.example.com.", RecordType::A);
        assert_eq!(nx.kind, ResponseKind::NxDomain);
        assert_eq!(nx, identity("zz9.example.com.", RecordType::TXT));
        assert_eq!(identity("example.org.", RecordType::A), ResponseIdentity::ERROR);
        let formerr = handle_request(&s, &env(), &[0u8; 12][..], peer, Transport::Udp, &mut rng).unwrap();
        assert_eq!(formerr.identity, ResponseIdentity::ERROR);
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
