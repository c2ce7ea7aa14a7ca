//! `answer`: from a snapshot, a question, the client and the health verdicts
//! to the records of an authoritative answer (RFC 1034 §4.3.2 with RFC 4592
//! wildcards, RFC 2308 negative answers, RFC 8482 minimal ANY).

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::IpAddr;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use rand::RngCore;

use crate::cidr::ClientNet;
use crate::geo::{GeoLocator, Location, NoGeo};
use crate::model::UsageCategory;
use crate::names::{WireBuf, wildcard_of};
use crate::policy::{Choice, PolicyEnv, choose};
use crate::routing::AccountRouting;
use crate::snapshot::{Group, Member, Node, Snapshot, ZoneContent};

/// Longest CNAME chain (and alias nesting) followed inside a zone.
const MAX_CHAIN: usize = 12;

/// A question: name and type.
#[derive(Debug, Clone, Copy)]
pub struct Question<'q> {
    /// The name asked for, as the client spelled it.
    pub name: &'q Name,
    /// The type asked for.
    pub qtype: RecordType,
}

/// Who asked: the resolver's address, the EDNS Client Subnet if sent, and
/// the geo database that places them.
#[derive(Clone, Copy)]
pub struct Client<'g> {
    /// Source address of the query.
    pub addr: IpAddr,
    /// ECS address and source prefix length.
    pub subnet: Option<(IpAddr, u8)>,
    /// Where addresses are.
    pub geo: &'g dyn GeoLocator,
}

static NO_GEO: NoGeo = NoGeo;

impl Client<'static> {
    /// A client without ECS and without a geo database.
    pub fn from_addr(addr: IpAddr) -> Self {
        Client { addr, subnet: None, geo: &NO_GEO }
    }
}

impl Client<'_> {
    /// The network routing decides on: the ECS subnet, else the full address.
    pub fn net(&self) -> ClientNet {
        match self.subnet {
            Some((addr, source_len)) => ClientNet { addr, source_len },
            None => ClientNet { addr: self.addr, source_len: if self.addr.is_ipv4() { 32 } else { 128 } },
        }
    }
}

impl std::fmt::Debug for Client<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client").field("addr", &self.addr).field("subnet", &self.subnet).finish()
    }
}

/// Health verdicts of health checks, as the DNS server knows them.
pub trait HealthView {
    /// Whether the check is healthy; unknown checks count as healthy
    /// (Route 53: a new check is healthy until its first verdict).
    fn is_healthy(&self, check_id: &str) -> bool;
}

impl HealthView for HashMap<String, bool> {
    fn is_healthy(&self, check_id: &str) -> bool {
        self.get(check_id).copied().unwrap_or(true)
    }
}

/// Every check healthy.
pub struct AllHealthy;

impl HealthView for AllHealthy {
    fn is_healthy(&self, _check_id: &str) -> bool {
        true
    }
}

/// An authoritative answer's content, before it is put on the wire.
#[derive(Debug)]
pub struct Answer<'a> {
    /// Response code.
    pub rcode: ResponseCode,
    /// AA flag (false for referrals and REFUSED).
    pub authoritative: bool,
    /// Answer section.
    pub answers: Vec<Cow<'a, Record>>,
    /// Authority section.
    pub authority: Vec<Cow<'a, Record>>,
    /// Additional section (glue).
    pub additional: Vec<Cow<'a, Record>>,
    /// Whether the additional records are required (referral glue): if they
    /// do not fit, the answer is truncated rather than shortened.
    pub additional_required: bool,
    /// ECS scope prefix length that the decision used (0: not client-dependent).
    pub ecs_scope: u8,
    /// Billing category of the query.
    pub category: UsageCategory,
    /// The hosted zone that answered (None for REFUSED).
    pub zone_id: Option<&'a str>,
    /// That zone's content (for its usage counters).
    pub zone: Option<&'a ZoneContent>,
}

impl<'a> Answer<'a> {
    fn new(rcode: ResponseCode, zone_id: Option<&'a str>) -> Self {
        Answer {
            rcode,
            authoritative: zone_id.is_some(),
            answers: Vec::new(),
            authority: Vec::new(),
            additional: Vec::new(),
            additional_required: false,
            ecs_scope: 0,
            category: UsageCategory::Standard,
            zone_id,
            zone: None,
        }
    }

    /// REFUSED: the name is in no hosted zone.
    pub fn refused() -> Self {
        Answer::new(ResponseCode::Refused, None)
    }
}

/// What the resolver needs besides the question.
struct Ctx<'s, 'h, R: RngCore> {
    snapshot: &'s Snapshot,
    client: Client<'h>,
    health: &'h dyn HealthView,
    rng: &'h mut R,
    /// The client's location, once looked up.
    location: Option<Option<Location>>,
    /// The zone owner's routing data.
    routing: Option<&'s AccountRouting>,
    /// The account that owns the queried zone (aliases stay inside it).
    account_id: &'s str,
    /// Health of alias targets already evaluated in this query.
    target_health: Vec<(Box<[u8]>, RecordType, bool)>,
    /// Alias-target evaluations left for this query.
    health_budget: usize,
}

/// Most alias targets whose health one query evaluates (beyond: healthy).
const MAX_TARGET_EVALUATIONS: usize = 256;

impl<R: RngCore> PolicyEnv for Ctx<'_, '_, R> {
    fn healthy(&mut self, member: &Member) -> bool {
        self.member_healthy(member, 0)
    }

    fn client(&self) -> ClientNet {
        self.client.net()
    }

    fn location(&mut self) -> Option<Location> {
        if self.location.is_none() {
            let net = self.client.net();
            let found = if net.source_len == 0 {
                None
            } else {
                self.client.geo.locate(net.addr).map(|mut l| {
                    l.network_len = l.network_len.min(net.source_len);
                    l
                })
            };
            self.location = Some(found);
        }
        self.location.clone().flatten()
    }

    fn routing(&self) -> Option<&AccountRouting> {
        self.routing
    }

    fn rng(&mut self) -> &mut dyn RngCore {
        self.rng
    }
}

impl<'s, R: RngCore> Ctx<'s, '_, R> {
    /// A member is healthy when its health check is (or it has none) and,
    /// for an alias that evaluates target health, when its target is.
    fn member_healthy(&mut self, member: &Member, depth: usize) -> bool {
        if let Some(id) = member.health_check_id()
            && !self.health.is_healthy(id)
        {
            return false;
        }
        match &member.alias {
            Some((target, true)) if depth < MAX_CHAIN => self.target_healthy(target, member.rtype, depth + 1),
            _ => true,
        }
    }

    /// An alias target is healthy when at least one of its record sets is.
    /// Each target is evaluated once per query (nested policy groups of
    /// aliases would otherwise cost exponential time), within a budget.
    fn target_healthy(&mut self, target: &Name, rtype: RecordType, depth: usize) -> bool {
        let mut buf = WireBuf::new();
        buf.push_name(target);
        if let Some((_, _, known)) =
            self.target_health.iter().find(|(name, t, _)| **name == *buf.as_slice() && *t == rtype)
        {
            return *known;
        }
        if self.health_budget == 0 {
            return true;
        }
        self.health_budget -= 1;
        let snapshot = self.snapshot;
        let entry = snapshot
            .find_zone(&buf)
            .filter(|(zone, _)| zone.zone.account_id == self.account_id)
            .and_then(|(zone, _)| zone.node(buf.as_slice()))
            .and_then(|n| n.get(rtype));
        let healthy = match entry.map(|e| &e.group) {
            None => false,
            Some(Group::Simple(m)) => self.member_healthy(m, depth),
            Some(Group::Policy(g)) => {
                let mut any = false;
                for m in &g.members {
                    if self.member_healthy(m, depth) {
                        any = true;
                        break;
                    }
                }
                any
            }
        };
        self.target_health.push((buf.as_slice().into(), rtype, healthy));
        healthy
    }
}

/// Answers `question` from `snapshot` for `client`, skipping record sets
/// whose health checks `health` calls unhealthy and drawing random choices
/// (weights, multivalue order) from `rng`.
pub fn answer<'s, R: RngCore>(
    snapshot: &'s Snapshot,
    question: Question<'_>,
    client: Client<'_>,
    health: &dyn HealthView,
    rng: &mut R,
) -> Answer<'s> {
    let mut qname = WireBuf::new();
    qname.push_name(question.name);
    let Some((mut zone, mut apex_labels)) = snapshot.find_zone(&qname) else {
        return Answer::refused();
    };
    // The DS of a child zone hosted here too is the parent's (RFC 4035 §3.1.4.1).
    if question.qtype == RecordType::DS
        && apex_labels == qname.label_count()
        && let Some((parent, parent_labels)) = snapshot.find_zone_above(&qname, apex_labels)
    {
        (zone, apex_labels) = (parent, parent_labels);
    }
    let routing = snapshot.routing_for(&zone.zone.account_id);
    let mut ctx = Ctx {
        snapshot,
        client,
        health,
        rng,
        location: None,
        routing,
        account_id: zone.zone.account_id.as_str(),
        target_health: Vec::new(),
        health_budget: MAX_TARGET_EVALUATIONS,
    };
    let mut out = Answer::new(ResponseCode::NoError, Some(zone.zone.id.as_str()));
    out.zone = Some(zone);
    resolve(&mut ctx, zone, apex_labels, &qname, question.qtype, &mut out, 0);
    out
}

/// Where a name landed inside its zone.
enum Found<'z> {
    /// The name exists (possibly as an empty non-terminal).
    Exact(&'z Node),
    /// The name does not exist but a wildcard covers it.
    Wildcard(&'z Node),
    /// A zone cut at or above the name.
    Delegation(&'z Node),
    /// Nothing.
    NxDomain,
}

fn locate<'z>(zone: &'z ZoneContent, apex_labels: usize, qname: &WireBuf, qtype: RecordType) -> Found<'z> {
    let labels = qname.label_count();
    for keep in apex_labels + 1..=labels {
        let Some(node) = zone.node(qname.suffix(keep)) else {
            // The closest encloser is one label up; a wildcard there covers the name.
            let mut wild = Vec::with_capacity(qname.suffix(keep - 1).len() + 2);
            wildcard_of(qname.suffix(keep - 1), &mut wild);
            return match zone.node(&wild) {
                Some(w) => Found::Wildcard(w),
                None => Found::NxDomain,
            };
        };
        // A zone cut below the apex: refer, unless the DS at the cut itself is asked for.
        if node.get(RecordType::NS).is_some() && !(keep == labels && qtype == RecordType::DS) {
            return Found::Delegation(node);
        }
        if keep == labels {
            return Found::Exact(node);
        }
    }
    // keep == apex: the name is the apex.
    match zone.node(qname.suffix(apex_labels)) {
        Some(node) => Found::Exact(node),
        None => Found::NxDomain,
    }
}

fn resolve<'s, R: RngCore>(
    ctx: &mut Ctx<'s, '_, R>,
    zone: &'s ZoneContent,
    apex_labels: usize,
    qname: &WireBuf,
    qtype: RecordType,
    out: &mut Answer<'s>,
    depth: usize,
) {
    let (node, synthesized) = match locate(zone, apex_labels, qname, qtype) {
        Found::Exact(node) => (node, false),
        Found::Wildcard(node) => (node, true),
        Found::Delegation(node) => {
            // A direct referral, or a CNAME chain that led under a zone cut
            // (RFC 1034 §4.3.2 step 3b: the chain so far, then the referral).
            referral(zone, apex_labels, node, out, depth);
            return;
        }
        Found::NxDomain => {
            out.rcode = ResponseCode::NXDomain;
            out.authority.push(Cow::Borrowed(zone.negative_soa()));
            return;
        }
    };
    let owner = if synthesized { crate::names::name_from_wire(qname.as_slice()) } else { None };

    let wanted = if qtype == RecordType::ANY { minimal_any_type(node) } else { Some(qtype) };
    if let Some(entry) = wanted.and_then(|t| node.get(t)) {
        let before = out.answers.len();
        let chosen = select_records(ctx, &entry.group, entry.rtype, owner.as_ref(), out, depth);
        if out.rcode != ResponseCode::NoError || (chosen && out.answers.len() > before) {
            return;
        }
    } else if qtype != RecordType::CNAME
        && let Some(cname) = node.get(RecordType::CNAME)
    {
        let before = out.answers.len();
        if !select_records(ctx, &cname.group, RecordType::CNAME, owner.as_ref(), out, depth) {
            if out.rcode == ResponseCode::NoError {
                out.authority.push(Cow::Borrowed(zone.negative_soa()));
            }
            return;
        }
        let target = out.answers[before..].iter().find_map(|r| match &r.data {
            RData::CNAME(c) => Some(c.0.clone()),
            _ => None,
        });
        if let Some(target) = target
            && depth + 1 < MAX_CHAIN
            // A name already in the chain: a loop; stop here.
            && !out.answers[..before].iter().any(|r| r.record_type() == RecordType::CNAME && r.name == target)
        {
            let mut next = WireBuf::new();
            next.push_name(&target);
            // Follow the chain only while it stays in this zone (what NSD and
            // BIND do): not into a child zone hosted here, nor anywhere else.
            if ctx.snapshot.find_zone(&next).is_some_and(|(z, _)| std::ptr::eq(z, zone)) {
                resolve(ctx, zone, apex_labels, &next, qtype, out, depth + 1);
            }
        }
        return;
    }
    // NODATA: the name exists, the type does not.
    out.authority.push(Cow::Borrowed(zone.negative_soa()));
}

/// RFC 8482 §4.1: answer ANY with one record set; prefer what a client most
/// likely wants (the order hickory's in-memory store uses).
fn minimal_any_type(node: &Node) -> Option<RecordType> {
    [RecordType::CNAME, RecordType::A, RecordType::AAAA, RecordType::MX]
        .into_iter()
        .find(|t| node.get(*t).is_some())
        .or_else(|| node.entries.first().map(|e| e.rtype))
}

/// Adds the chosen records of a group to the answer. Returns false when the
/// group decided on NODATA or SERVFAIL (already written to `out`).
fn select_records<'s, R: RngCore>(
    ctx: &mut Ctx<'s, '_, R>,
    group: &'s Group,
    rtype: RecordType,
    owner: Option<&Name>,
    out: &mut Answer<'s>,
    depth: usize,
) -> bool {
    match group {
        Group::Simple(member) => {
            push_member(ctx, member, rtype, owner, out, depth, false);
            true
        }
        Group::Policy(policy_group) => {
            let decision = choose(policy_group, ctx);
            out.category = UsageCategory::of_policy(policy_group.policy);
            out.ecs_scope = out.ecs_scope.max(decision.scope);
            match decision.choice {
                Choice::Members(members) => {
                    let shuffle = members.len() > 1;
                    for member in members {
                        push_member(ctx, member, rtype, owner, out, depth, shuffle);
                    }
                    true
                }
                Choice::NoData => false,
                Choice::ServFail => {
                    out.rcode = ResponseCode::ServFail;
                    false
                }
            }
        }
    }
}

fn push_member<'s, R: RngCore>(
    ctx: &mut Ctx<'s, '_, R>,
    member: &'s Member,
    rtype: RecordType,
    owner: Option<&Name>,
    out: &mut Answer<'s>,
    depth: usize,
    multivalue: bool,
) {
    if let Some((target, _)) = &member.alias {
        if depth + 1 >= MAX_CHAIN {
            return;
        }
        let alias_owner = owner.unwrap_or(&member.owner).clone();
        let Some(sub) = alias_answer(ctx, target, rtype, depth + 1) else { return };
        // The target decided: its ECS scope, category and SERVFAIL are the alias's.
        out.ecs_scope = out.ecs_scope.max(sub.ecs_scope);
        if sub.category != UsageCategory::Standard {
            out.category = sub.category;
        }
        if sub.rcode == ResponseCode::ServFail {
            out.rcode = ResponseCode::ServFail;
        }
        for record in sub.answers.into_iter().filter(|r| r.record_type() == rtype) {
            let mut record = record.into_owned();
            record.name = alias_owner.clone();
            out.answers.push(Cow::Owned(record));
        }
        return;
    }
    let n = member.records.len();
    let start = if multivalue { 0 } else { member.next_rotation() };
    for i in 0..n {
        let record = &member.records[(start + i) % n];
        match owner {
            Some(name) => {
                let mut synthesized = record.clone();
                synthesized.name = name.clone();
                out.answers.push(Cow::Owned(synthesized));
            }
            None => out.answers.push(Cow::Borrowed(record)),
        }
    }
}

/// What an alias target answers (a hosted zone of the same account, same type).
fn alias_answer<'s, R: RngCore>(
    ctx: &mut Ctx<'s, '_, R>,
    target: &Name,
    rtype: RecordType,
    depth: usize,
) -> Option<Answer<'s>> {
    let mut buf = WireBuf::new();
    buf.push_name(target);
    let (zone, apex_labels) = ctx.snapshot.find_zone(&buf)?;
    if zone.zone.account_id != ctx.account_id {
        return None;
    }
    let mut sub = Answer::new(ResponseCode::NoError, Some(zone.zone.id.as_str()));
    resolve(ctx, zone, apex_labels, &buf, rtype, &mut sub, depth);
    Some(sub)
}

/// A referral to the child zone at `cut`: its NS in authority, glue in
/// additional. A direct referral (`depth` 0) has no AA; one that ends a CNAME
/// chain keeps it, since the CNAME records are ours (RFC 1035 §4.1.1: AA is
/// about the first owner name in the answer; NSD does the same).
fn referral<'s>(
    zone: &'s ZoneContent,
    apex_labels: usize,
    cut: &'s Node,
    out: &mut Answer<'s>,
    depth: usize,
) {
    if depth == 0 {
        out.authoritative = false;
    }
    let Some(ns) = cut.get(RecordType::NS) else { return };
    let Group::Simple(member) = &ns.group else { return };
    for record in &member.records {
        out.authority.push(Cow::Borrowed(record));
        let RData::NS(target) = &record.data else { continue };
        let mut buf = WireBuf::new();
        buf.push_name(&target.0);
        if buf.label_count() < apex_labels {
            continue;
        }
        if let Some(node) = zone.node(buf.as_slice()) {
            for glue_type in [RecordType::A, RecordType::AAAA] {
                if let Some(entry) = node.get(glue_type)
                    && let Group::Simple(glue) = &entry.group
                {
                    out.additional.extend(glue.records.iter().map(Cow::Borrowed));
                    // Glue below the cut is required (RFC 9471); sibling glue is not.
                    if record.name.zone_of(&target.0) {
                        out.additional_required = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rand::SeedableRng;
    use rand::rngs::StdRng;

    use super::*;
    use crate::model::RecordSet;
    use crate::snapshot::tests::example_zone;

    fn ask(snapshot: &Snapshot, name: &str, qtype: RecordType) -> Answer<'static> {
        let name = Name::from_ascii(name).unwrap();
        let mut rng = StdRng::seed_from_u64(1);
        let client = Client::from_addr(IpAddr::from([127, 0, 0, 1]));
        let snapshot: &'static Snapshot = Box::leak(Box::new(snapshot.clone()));
        answer(snapshot, Question { name: &name, qtype }, client, &AllHealthy, &mut rng)
    }

    fn snapshot() -> Snapshot {
        Snapshot::from_zones([Arc::new(example_zone(5))])
    }

    fn texts(records: &[Cow<'_, Record>]) -> Vec<String> {
        records.iter().map(|r| format!("{} {} {}", r.name, r.record_type(), r.data)).collect()
    }

    #[test]
    fn positive_answer_is_authoritative_and_rotates() {
        let s = snapshot();
        let first = ask(&s, "www.example.com.", RecordType::A);
        assert_eq!(first.rcode, ResponseCode::NoError);
        assert!(first.authoritative);
        assert_eq!(first.answers.len(), 3);
        let second = ask(&s, "WWW.EXAMPLE.COM.", RecordType::A);
        assert_ne!(texts(&first.answers)[0], texts(&second.answers)[0], "round robin");
    }

    #[test]
    fn nxdomain_and_nodata_carry_the_soa_with_negative_ttl() {
        let s = snapshot();
        let nx = ask(&s, "missing.example.com.", RecordType::A);
        assert_eq!(nx.rcode, ResponseCode::NXDomain);
        assert_eq!(nx.authority.len(), 1);
        assert_eq!(nx.authority[0].ttl, 60);
        assert_eq!(nx.authority[0].record_type(), RecordType::SOA);
        let nodata = ask(&s, "www.example.com.", RecordType::AAAA);
        assert_eq!(nodata.rcode, ResponseCode::NoError);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.authority[0].record_type(), RecordType::SOA);
        // An empty non-terminal is NODATA, not NXDOMAIN (RFC 8020).
        let ent = ask(&s, "ent.example.com.", RecordType::A);
        assert_eq!(ent.rcode, ResponseCode::NoError);
        assert!(ent.answers.is_empty());
    }

    #[test]
    fn cname_chains_are_followed_inside_the_zone() {
        let s = snapshot();
        let a = ask(&s, "chain.example.com.", RecordType::A);
        let t = texts(&a.answers);
        assert_eq!(t[0], "chain.example.com. CNAME alias.example.com.");
        assert_eq!(t[1], "alias.example.com. CNAME www.example.com.");
        assert_eq!(a.answers.len(), 5);
        let out = ask(&s, "out.example.com.", RecordType::A);
        assert_eq!(out.answers.len(), 1, "no chasing out of the zone");
        let cname = ask(&s, "alias.example.com.", RecordType::CNAME);
        assert_eq!(cname.answers.len(), 1);
    }

    #[test]
    fn wildcards_synthesize_the_query_name() {
        let s = snapshot();
        let a = ask(&s, "Foo.Bar.wild.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(texts(&a.answers), ["foo.bar.wild.example.com. A 192.0.2.99"]);
        let nodata = ask(&s, "x.wild.example.com.", RecordType::MX);
        assert!(nodata.answers.is_empty());
        assert_eq!(nodata.rcode, ResponseCode::NoError);
        // The wildcard does not cover names under an existing node (RFC 4592 §2.2.1).
        let ent = ask(&s, "x.ent.example.com.", RecordType::A);
        assert_eq!(ent.rcode, ResponseCode::NXDomain);
    }

    #[test]
    fn delegations_refer_with_glue_and_no_aa() {
        let s = snapshot();
        let r = ask(&s, "host.sub.example.com.", RecordType::A);
        assert_eq!(r.rcode, ResponseCode::NoError);
        assert!(!r.authoritative);
        assert!(r.answers.is_empty());
        assert_eq!(texts(&r.authority), ["sub.example.com. NS ns.sub.example.com."]);
        assert_eq!(texts(&r.additional), ["ns.sub.example.com. A 192.0.2.54"]);
        assert!(r.additional_required);
    }

    #[test]
    fn a_cname_into_a_delegation_is_followed_by_the_referral() {
        use crate::model::HostedZone;
        let rrsets = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1.example.com. h.example.com. 1 2 3 4 60"]),
            RecordSet::simple("example.com.", "NS", 3600, &["ns1.example.com."]),
            RecordSet::simple("ns1.example.com.", "A", 300, &["192.0.2.53"]),
            RecordSet::simple("sub.example.com.", "NS", 3600, &["ns.sub.example.com.", "ns1.example.com."]),
            RecordSet::simple("ns.sub.example.com.", "A", 3600, &["192.0.2.54"]),
            RecordSet::simple("to-sub.example.com.", "CNAME", 60, &["host.sub.example.com."]),
            RecordSet::simple("hop.example.com.", "CNAME", 60, &["to-sub.example.com."]),
        ];
        let zone =
            HostedZone { id: "Z".into(), account_id: "A".into(), name: "example.com.".into(), serial: 1 };
        let s = Snapshot::from_zones([Arc::new(crate::snapshot::ZoneContent::build(zone, &rrsets).unwrap())]);
        let direct = ask(&s, "host.sub.example.com.", RecordType::A);
        let a = ask(&s, "hop.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert_eq!(
            texts(&a.answers),
            ["hop.example.com. CNAME to-sub.example.com.", "to-sub.example.com. CNAME host.sub.example.com."]
        );
        // The same NS set and glue as the direct referral; AA stays (the CNAMEs are ours).
        assert_eq!(texts(&a.authority), texts(&direct.authority));
        assert_eq!(texts(&a.authority).len(), 2);
        assert_eq!(texts(&a.additional), texts(&direct.additional));
        assert!(texts(&a.additional).contains(&"ns.sub.example.com. A 192.0.2.54".to_string()));
        assert_eq!(a.additional_required, direct.additional_required);
        assert!(a.authoritative);
        assert!(!direct.authoritative);
        // Asking for the CNAME itself gives just the CNAME.
        let cname = ask(&s, "to-sub.example.com.", RecordType::CNAME);
        assert_eq!(cname.answers.len(), 1);
        assert!(cname.authority.is_empty());
    }

    #[test]
    fn a_policy_group_that_decides_nodata_answers_with_the_soa() {
        use crate::model::{GeoLocation, HostedZone};
        let mut us = RecordSet::simple("geo.example.com.", "A", 60, &["192.0.2.1"]);
        us.set_identifier = Some("us".into());
        us.geo_location = Some(GeoLocation { country: Some("US".into()), ..GeoLocation::default() });
        let rrsets = vec![RecordSet::simple("example.com.", "SOA", 900, &["ns. h. 1 2 3 4 60"]), us];
        let zone =
            HostedZone { id: "Z".into(), account_id: "A".into(), name: "example.com.".into(), serial: 1 };
        let s = Snapshot::from_zones([Arc::new(crate::snapshot::ZoneContent::build(zone, &rrsets).unwrap())]);
        // No location, no default: NODATA, with the SOA for negative caching.
        let a = ask(&s, "geo.example.com.", RecordType::A);
        assert_eq!(a.rcode, ResponseCode::NoError);
        assert!(a.answers.is_empty());
        assert_eq!(texts(&a.authority).len(), 1);
        assert_eq!(a.authority[0].record_type(), RecordType::SOA);
    }

    #[test]
    fn any_is_minimal_and_outside_is_refused() {
        let s = snapshot();
        let any = ask(&s, "www.example.com.", RecordType::ANY);
        assert!(any.answers.iter().all(|r| r.record_type() == RecordType::A));
        let refused = ask(&s, "example.org.", RecordType::A);
        assert_eq!(refused.rcode, ResponseCode::Refused);
        assert!(!refused.authoritative);
        let apex = ask(&s, "example.com.", RecordType::SOA);
        assert_eq!(apex.answers.len(), 1);
        let RData::SOA(soa) = &apex.answers[0].data else { panic!() };
        assert_eq!(soa.serial, 5);
    }
}
