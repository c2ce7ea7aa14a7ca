//! The fuzz target's body, shared with the corpus replay test: arbitrary
//! bytes through `handle_request` over UDP and TCP. It must not panic, and
//! every response must parse as a DNS message within the transport's limit.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use hickory_proto::op::Message;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use signpost_core::answer::AllHealthy;
use signpost_core::geo::NoGeo;
use signpost_core::snapshot::ZoneContent;
use signpost_core::{HostedZone, RecordSet, Snapshot};

use crate::wire::{QueryEnv, Transport, UDP_PAYLOAD_CAP, handle_request};

fn snapshot() -> &'static Snapshot {
    static SNAPSHOT: OnceLock<Snapshot> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let many: Vec<String> = (1..=80).map(|i| format!("198.51.100.{i}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let mut weighted = RecordSet::simple("w.example.com.", "A", 60, &["192.0.2.1"]);
        weighted.set_identifier = Some("a".into());
        weighted.weight = Some(3);
        let rrsets = vec![
            RecordSet::simple("example.com.", "SOA", 900, &["ns1.example.com. h.example.com. 1 2 3 4 60"]),
            RecordSet::simple("example.com.", "NS", 900, &["ns1.example.com."]),
            RecordSet::simple("ns1.example.com.", "A", 60, &["192.0.2.53"]),
            RecordSet::simple("www.example.com.", "A", 60, &["192.0.2.1", "192.0.2.2"]),
            RecordSet::simple("a.example.com.", "CNAME", 60, &["b.example.com."]),
            RecordSet::simple("b.example.com.", "CNAME", 60, &["a.example.com."]),
            RecordSet::simple("*.wild.example.com.", "TXT", 60, &["\"w\""]),
            RecordSet::simple("sub.example.com.", "NS", 60, &["ns.sub.example.com."]),
            RecordSet::simple("ns.sub.example.com.", "A", 60, &["192.0.2.54"]),
            RecordSet::simple("to-sub.example.com.", "CNAME", 60, &["host.sub.example.com."]),
            RecordSet::simple("big.example.com.", "A", 60, &many),
            weighted,
        ];
        let zone =
            HostedZone { id: "Z".into(), account_id: "A".into(), name: "example.com.".into(), serial: 1 };
        match ZoneContent::build(zone, &rrsets) {
            Ok(content) => Snapshot::from_zones([Arc::new(content)]),
            Err(_) => Snapshot::empty(),
        }
    })
}

/// Runs one input through the handler over UDP and TCP; panics (which the
/// fuzzer reports) if a response is oversized or does not parse.
pub fn exercise(data: &[u8]) {
    let env = QueryEnv { health: &AllHealthy, geo: &NoGeo };
    let mut rng = SmallRng::seed_from_u64(1);
    for (transport, limit) in [(Transport::Udp, usize::from(UDP_PAYLOAD_CAP)), (Transport::Tcp, 65_535)] {
        let peer = IpAddr::from([192, 0, 2, 200]);
        if let Some(response) = handle_request(snapshot(), &env, data, peer, transport, &mut rng) {
            assert!(response.bytes.len() <= limit, "{} bytes over {transport:?}", response.bytes.len());
            assert!(Message::from_vec(&response.bytes).is_ok(), "unparsable response to {data:?}");
            // The rate limiter's slipped form of it is a message too, and no bigger.
            let slipped = crate::wire::slipped(&response.bytes).expect("a response has a header");
            assert!(slipped.len() <= response.bytes.len());
            assert!(Message::from_vec(&slipped).is_ok(), "unparsable slipped response to {data:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    /// Replays `fuzz/corpus/handle_request` (every crash found stays fixed).
    #[test]
    fn corpus_replays_without_panics() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/handle_request");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).expect("the corpus directory") {
            let path = entry.expect("a corpus entry").path();
            let data = std::fs::read(&path).expect("a corpus file");
            super::exercise(&data);
            replayed += 1;
        }
        assert!(replayed >= 10, "corpus too small: {replayed}");
    }
}
