//! The in-memory snapshot of every hosted zone: built once per change from
//! the stored record sets, then read by every query without locks.
//!
//! Names are keyed by their lower-case wire form, so the ancestors of a
//! query name are suffixes of its buffer and a lookup allocates nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hickory_proto::rr::rdata::SOA;
use hickory_proto::rr::{Name, RData, Record, RecordType};

use crate::ValidationError;
use crate::model::{AllUnhealthy, HostedZone, PolicyKind, RecordSet};
use crate::names::{WireBuf, WireName};
use crate::routing::AccountRouting;
use crate::usage::ZoneUsage;
use crate::validate::{ParsedRecordSet, validate_record_set};

/// Every hosted zone, ready to answer from.
#[derive(Clone, Default)]
pub struct Snapshot {
    zones: HashMap<WireName, Arc<ZoneContent>>,
    ids: HashMap<String, WireName>,
    routing: HashMap<String, Arc<AccountRouting>>,
}

impl Snapshot {
    /// A snapshot without zones.
    pub fn empty() -> Self {
        Self::default()
    }

    /// A snapshot of these zones.
    pub fn from_zones(zones: impl IntoIterator<Item = Arc<ZoneContent>>) -> Self {
        let mut snapshot = Snapshot::empty();
        for zone in zones {
            snapshot.insert(zone);
        }
        snapshot
    }

    /// Adds or replaces a zone (matched by id).
    pub fn insert(&mut self, zone: Arc<ZoneContent>) {
        self.remove(&zone.zone.id);
        let key = zone.apex_key.clone();
        self.ids.insert(zone.zone.id.clone(), key.clone());
        self.zones.insert(key, zone);
    }

    /// Removes a zone by id; returns whether it was there.
    pub fn remove(&mut self, zone_id: &str) -> bool {
        match self.ids.remove(zone_id) {
            Some(key) => self.zones.remove(&key).is_some(),
            None => false,
        }
    }

    /// The most specific zone strictly above the apex of `below_labels`
    /// labels that contains the name in `qname`.
    pub fn find_zone_above(&self, qname: &WireBuf, below_labels: usize) -> Option<(&ZoneContent, usize)> {
        (0..below_labels)
            .rev()
            .find_map(|keep| self.zones.get(qname.suffix(keep)).map(|z| (z.as_ref(), keep)))
    }

    /// Sets an account's routing data (CIDR collections, latency table, regions).
    pub fn insert_routing(&mut self, account_id: &str, routing: Arc<AccountRouting>) {
        self.routing.insert(account_id.to_string(), routing);
    }

    /// An account's routing data.
    pub fn routing_for(&self, account_id: &str) -> Option<&AccountRouting> {
        self.routing.get(account_id).map(Arc::as_ref)
    }

    /// Every account's routing data.
    pub fn routing(&self) -> impl Iterator<Item = (&str, &Arc<AccountRouting>)> {
        self.routing.iter().map(|(account, routing)| (account.as_str(), routing))
    }

    /// The zone with this id.
    pub fn zone_by_id(&self, zone_id: &str) -> Option<&Arc<ZoneContent>> {
        self.ids.get(zone_id).and_then(|key| self.zones.get(key))
    }

    /// Number of zones.
    pub fn zone_count(&self) -> usize {
        self.zones.len()
    }

    /// Every zone.
    pub fn zones(&self) -> impl Iterator<Item = &Arc<ZoneContent>> {
        self.zones.values()
    }

    /// The most specific zone containing the name in `qname`, with the
    /// number of labels of its apex.
    pub fn find_zone(&self, qname: &WireBuf) -> Option<(&ZoneContent, usize)> {
        self.find_zone_above(qname, qname.label_count() + 1)
    }
}

/// One hosted zone's content, indexed for lookup.
pub struct ZoneContent {
    /// The zone row.
    pub zone: HostedZone,
    /// Apex name.
    pub apex: Name,
    apex_key: WireName,
    nodes: HashMap<WireName, Node>,
    /// The SOA as served in answers (serial from the zone row).
    soa: Record,
    /// The SOA as served in negative answers (TTL per RFC 2308).
    negative_soa: Record,
    /// The SOA's record set as stored (canonical form), for `record_sets`.
    soa_rrset: RecordSet,
    /// Stored record sets that failed validation and are not served.
    pub skipped: Vec<ValidationError>,
    /// Query counters of the zone (shared with the zone's earlier builds).
    pub usage: Arc<ZoneUsage>,
}

/// A name in a zone: its record sets by type; none for an empty non-terminal.
#[derive(Default)]
pub(crate) struct Node {
    pub(crate) entries: Vec<TypeEntry>,
}

impl Node {
    pub(crate) fn get(&self, rtype: RecordType) -> Option<&TypeEntry> {
        self.entries.iter().find(|e| e.rtype == rtype)
    }
}

/// The record sets of one name and type.
pub(crate) struct TypeEntry {
    pub(crate) rtype: RecordType,
    pub(crate) group: Group,
}

/// A plain record set, or a policy group of record sets with set identifiers.
pub(crate) enum Group {
    Simple(Box<Member>),
    Policy(PolicyGroup),
}

/// The members of a policy group, sharing one policy.
pub struct PolicyGroup {
    /// Which policy the members use.
    pub policy: Option<PolicyKind>,
    /// What to answer when every member is unhealthy.
    pub all_unhealthy: AllUnhealthy,
    /// The members, in stored order.
    pub members: Vec<Member>,
}

/// One record set as served: its routing fields and its records or alias.
pub struct Member {
    /// Owner name of the record set.
    pub owner: Name,
    /// Record type.
    pub rtype: RecordType,
    /// Routing fields (set identifier, weight, health check, ...).
    pub routing: RecordSet,
    /// Records, owner = the record set's name.
    pub records: Vec<Record>,
    /// Alias target, when this is an alias record set.
    pub alias: Option<(Name, bool)>,
    rotation: AtomicUsize,
}

impl Member {
    fn new(parsed: ParsedRecordSet) -> Self {
        let records = parsed
            .rdatas
            .into_iter()
            .map(|rdata| Record::from_rdata(parsed.name.clone(), parsed.ttl, rdata))
            .collect();
        // The target was validated by the same parser (decimal escapes, any
        // octet), so it parses again here.
        let alias = parsed.canonical.alias_target.as_ref().and_then(|a| {
            let name = crate::names::parse_name(&a.name, "aliasTarget.name").ok()?;
            Some((name, a.evaluate_target_health))
        });
        Member {
            owner: parsed.name,
            rtype: parsed.rtype,
            routing: parsed.canonical,
            records,
            alias,
            rotation: AtomicUsize::new(0),
        }
    }

    /// The next rotation offset (round-robin order of a multi-record set).
    pub fn next_rotation(&self) -> usize {
        if self.records.len() < 2 {
            return 0;
        }
        self.rotation.fetch_add(1, Ordering::Relaxed) % self.records.len()
    }

    /// Health check gating this member.
    pub fn health_check_id(&self) -> Option<&str> {
        self.routing.health_check_id.as_deref()
    }
}

impl std::fmt::Debug for ZoneContent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZoneContent").field("zone", &self.zone).field("names", &self.nodes.len()).finish()
    }
}

impl ZoneContent {
    /// Builds a zone's content from its stored record sets. Record sets that
    /// fail validation are skipped and listed in `skipped`, never served.
    /// The zone must have an SOA at its apex.
    pub fn build(zone: HostedZone, rrsets: &[RecordSet]) -> Result<ZoneContent, ValidationError> {
        let apex = crate::names::parse_name(&zone.name, "zone.name")?;
        let apex_key = WireName::from_name(&apex);
        let mut skipped = Vec::new();
        let mut nodes: HashMap<WireName, Node> = HashMap::new();
        let mut soa: Option<(Record, RecordSet)> = None;
        // Group the parsed record sets by (name, type), keeping policy members together.
        let mut grouped: Vec<(WireName, Name, RecordType, Vec<ParsedRecordSet>)> = Vec::new();
        let mut index: HashMap<(WireName, RecordType), usize> = HashMap::new();
        for rrset in rrsets {
            let parsed = match validate_record_set(&apex, rrset) {
                Ok(p) => p,
                Err(e) => {
                    skipped.push(e.within(&format!("{} {}", rrset.name, rrset.rtype)));
                    continue;
                }
            };
            if parsed.rtype == RecordType::SOA {
                if let Some(RData::SOA(s)) = parsed.rdatas.first() {
                    let serial = (zone.serial.rem_euclid(1 << 32)) as u32;
                    let mut rdata: SOA = s.clone();
                    rdata.serial = serial;
                    let record = Record::from_rdata(apex.clone(), parsed.ttl, RData::SOA(rdata));
                    soa = Some((record, parsed.canonical));
                }
                continue;
            }
            let key = WireName::from_name(&parsed.name);
            let slot = *index.entry((key.clone(), parsed.rtype)).or_insert_with(|| {
                grouped.push((key, parsed.name.clone(), parsed.rtype, Vec::new()));
                grouped.len() - 1
            });
            grouped[slot].3.push(parsed);
        }
        let (soa, soa_rrset) = soa.ok_or_else(|| {
            ValidationError::new("rrsets", format!("zone {} has no SOA record set", zone.name))
        })?;
        let negative_ttl = match &soa.data {
            RData::SOA(s) => soa.ttl.min(s.minimum),
            _ => soa.ttl,
        };
        let mut negative_soa = soa.clone();
        negative_soa.ttl = negative_ttl;
        nodes.entry(apex_key.clone()).or_default().entries.push(TypeEntry {
            rtype: RecordType::SOA,
            group: Group::Simple(Box::new(Member {
                owner: apex.clone(),
                rtype: RecordType::SOA,
                routing: RecordSet::default(),
                records: vec![soa.clone()],
                alias: None,
                rotation: AtomicUsize::new(0),
            })),
        });

        for (key, name, rtype, members) in grouped {
            let is_group = members.iter().any(|m| m.canonical.set_identifier.is_some());
            let group = if is_group {
                let policy = members.iter().find_map(|m| m.canonical.policy());
                let all_unhealthy =
                    members.iter().find_map(|m| m.canonical.all_unhealthy).unwrap_or_default();
                Group::Policy(PolicyGroup {
                    policy,
                    all_unhealthy,
                    members: members.into_iter().map(Member::new).collect(),
                })
            } else {
                match members.into_iter().next() {
                    Some(only) => Group::Simple(Box::new(Member::new(only))),
                    None => continue,
                }
            };
            nodes.entry(key).or_default().entries.push(TypeEntry { rtype, group });
            // Empty non-terminals: every ancestor between the name and the apex exists.
            let mut buf = WireBuf::new();
            buf.push_name(&name);
            let apex_labels = apex.num_labels() as usize;
            for keep in apex_labels + 1..buf.label_count() {
                let ancestor = buf.suffix(keep);
                if !nodes.contains_key(ancestor) {
                    nodes.insert(WireName::from_bytes(ancestor), Node::default());
                }
            }
        }
        Ok(ZoneContent {
            zone,
            apex,
            apex_key,
            nodes,
            soa,
            negative_soa,
            soa_rrset,
            skipped,
            usage: Arc::default(),
        })
    }

    /// Uses `usage` as the zone's counters (keeps counts across rebuilds).
    pub fn with_usage(mut self, usage: Arc<ZoneUsage>) -> Self {
        self.usage = usage;
        self
    }

    pub(crate) fn node(&self, key: &[u8]) -> Option<&Node> {
        self.nodes.get(key)
    }

    /// The SOA record as answered.
    pub fn soa(&self) -> &Record {
        &self.soa
    }

    /// The SOA record for negative answers.
    pub fn negative_soa(&self) -> &Record {
        &self.negative_soa
    }

    /// The SOA serial.
    pub fn serial(&self) -> u32 {
        match &self.soa.data {
            RData::SOA(s) => s.serial,
            _ => 0,
        }
    }

    /// The policy group at `name`/`rtype` (tests of the policy module).
    #[cfg(test)]
    pub(crate) fn policy_group_for_tests(&self, name: &str, rtype: RecordType) -> &PolicyGroup {
        let key = WireName::from_name(&Name::from_ascii(name).expect("test name"));
        match self.node(key.as_bytes()).and_then(|n| n.get(rtype)).map(|e| &e.group) {
            Some(Group::Policy(g)) => g,
            _ => panic!("no policy group at {name} {rtype}"),
        }
    }

    /// Every record set served, in canonical form (the SOA as stored, policy
    /// members in their stored order): `build` of these gives this zone
    /// again. Skipped record sets are not included.
    pub fn record_sets(&self) -> impl Iterator<Item = &RecordSet> {
        let members = self.nodes.values().flat_map(|node| node.entries.iter()).flat_map(|entry| {
            let members: &[Member] = match &entry.group {
                Group::Simple(member) if member.rtype == RecordType::SOA => &[],
                Group::Simple(member) => std::slice::from_ref(member.as_ref()),
                Group::Policy(group) => &group.members,
            };
            members.iter().map(|m| &m.routing)
        });
        std::iter::once(&self.soa_rrset).chain(members)
    }

    /// Number of names (including empty non-terminals).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A zone for the tests of this crate.
    pub(crate) fn example_zone(serial: i64) -> ZoneContent {
        let rrsets = vec![
            RecordSet::simple(
                "example.com.",
                "SOA",
                900,
                &["ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 60"],
            ),
            RecordSet::simple("example.com.", "NS", 3600, &["ns1.example.com.", "ns2.example.com."]),
            RecordSet::simple("example.com.", "MX", 300, &["10 mail.example.com."]),
            RecordSet::simple("ns1.example.com.", "A", 300, &["192.0.2.53"]),
            RecordSet::simple("www.example.com.", "A", 60, &["192.0.2.1", "192.0.2.2", "192.0.2.3"]),
            RecordSet::simple("www.example.com.", "TXT", 60, &["\"hello\""]),
            RecordSet::simple("alias.example.com.", "CNAME", 60, &["www.example.com."]),
            RecordSet::simple("chain.example.com.", "CNAME", 60, &["alias.example.com."]),
            RecordSet::simple("out.example.com.", "CNAME", 60, &["www.example.net."]),
            RecordSet::simple("*.wild.example.com.", "A", 60, &["192.0.2.99"]),
            RecordSet::simple("deep.ent.example.com.", "A", 60, &["192.0.2.7"]),
            RecordSet::simple("sub.example.com.", "NS", 3600, &["ns.sub.example.com."]),
            RecordSet::simple("ns.sub.example.com.", "A", 3600, &["192.0.2.54"]),
        ];
        let zone =
            HostedZone { id: "Z1".into(), account_id: "A1".into(), name: "example.com.".into(), serial };
        ZoneContent::build(zone, &rrsets).unwrap()
    }

    #[test]
    fn serial_comes_from_the_zone_row_and_ents_exist() {
        let zone = example_zone(7);
        assert_eq!(zone.serial(), 7);
        assert_eq!(zone.negative_soa().ttl, 60);
        assert!(zone.skipped.is_empty());
        let ent = WireName::from_name(&Name::from_ascii("ent.example.com.").unwrap());
        assert!(zone.node(ent.as_bytes()).is_some_and(|n| n.entries.is_empty()));
    }

    #[test]
    fn record_sets_rebuild_the_same_zone() {
        let zone = example_zone(7);
        let mut sets: Vec<RecordSet> = zone.record_sets().cloned().collect();
        assert_eq!(sets.len(), 13);
        let again = ZoneContent::build(zone.zone.clone(), &sets).unwrap();
        assert_eq!(again.serial(), 7);
        assert_eq!(again.node_count(), zone.node_count());
        let mut again_sets: Vec<RecordSet> = again.record_sets().cloned().collect();
        let key = |r: &RecordSet| format!("{} {} {:?}", r.name, r.rtype, r.set_identifier);
        sets.sort_by_key(key);
        again_sets.sort_by_key(key);
        assert_eq!(sets, again_sets);
    }

    #[test]
    fn bad_stored_rows_are_skipped_not_fatal() {
        let rrsets = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1.example.com. h.example.com. 1 2 3 4 5"]),
            RecordSet::simple("bad.example.com.", "A", 60, &["not-an-ip"]),
        ];
        let zone =
            HostedZone { id: "Z1".into(), account_id: "A".into(), name: "example.com.".into(), serial: 1 };
        let content = ZoneContent::build(zone, &rrsets).unwrap();
        assert_eq!(content.skipped.len(), 1);
    }

    #[test]
    fn snapshot_finds_the_most_specific_zone() {
        let mut snapshot = Snapshot::from_zones([Arc::new(example_zone(1))]);
        let child = ZoneContent::build(
            HostedZone {
                id: "Z2".into(),
                account_id: "A".into(),
                name: "sub.example.com.".into(),
                serial: 1,
            },
            &[RecordSet::simple("sub.example.com.", "SOA", 60, &["ns. h. 1 2 3 4 5"])],
        )
        .unwrap();
        snapshot.insert(Arc::new(child));
        let mut buf = WireBuf::new();
        buf.push_name(&Name::from_ascii("a.SUB.example.com.").unwrap());
        assert_eq!(snapshot.find_zone(&buf).unwrap().0.zone.id, "Z2");
        buf.push_name(&Name::from_ascii("www.example.com.").unwrap());
        assert_eq!(snapshot.find_zone(&buf).unwrap().0.zone.id, "Z1");
        buf.push_name(&Name::from_ascii("example.org.").unwrap());
        assert!(snapshot.find_zone(&buf).is_none());
        assert!(snapshot.remove("Z2"));
        assert_eq!(snapshot.zone_count(), 1);
    }
}
