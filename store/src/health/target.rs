//! Which addresses a health check may probe. The checker is a request
//! forgery vector (it connects wherever a check points), so the
//! installation has one target policy, stored in the database
//! (`health_target_policy`) and enforced identically by the API at creation
//! and by every checker before every connection (after resolving a host
//! name, against DNS rebinding). By default private networks are allowed
//! (users probe their own containers), link-local and cloud-metadata
//! addresses are refused, and loopback is allowed only in local mode
//! (`signpost serve`, or `--allow-private-targets`) unless the policy
//! decides it. Addresses that can never be an endpoint (unspecified,
//! multicast, broadcast, documentation, reserved) are refused always.
//! IPv4 carried inside IPv6 (mapped, compatible, SIIT, NAT64, 6to4,
//! Teredo) is judged as the IPv4 address. Pure.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP network (`10.0.0.0/8`), as the policy lists them.
pub use ipnet::IpNet;

/// What kind of address a target is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    /// A public unicast address: always allowed.
    Public,
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// RFC 1918, RFC 6598 shared space, RFC 2544 benchmarking, IPv6 unique local.
    Private,
    /// 169.254.0.0/16, fe80::/10.
    LinkLocal,
    /// A cloud instance-metadata endpoint (169.254.169.254, fd00:ec2::254, ...).
    Metadata,
    /// 0.0.0.0/8, ::.
    Unspecified,
    /// 224.0.0.0/4, ff00::/8, 255.255.255.255.
    Multicast,
    /// 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32.
    Documentation,
    /// Other special-purpose space (240.0.0.0/4, 192.0.0.0/24, 100::/64, ...).
    Reserved,
}

impl AddressClass {
    /// Whether the operator may allow this class (`--allow-private-targets`);
    /// the others are never probed.
    pub fn allowable(self) -> bool {
        matches!(
            self,
            AddressClass::Loopback | AddressClass::Private | AddressClass::LinkLocal | AddressClass::Metadata
        )
    }

    /// A phrase for messages ("a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Public => "a public address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::Metadata => "a cloud metadata address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Multicast => "a multicast or broadcast address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Reserved => "a reserved address",
        }
    }
}

/// Why a target was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct TargetRefused {
    /// The class that caused the refusal.
    pub class: AddressClass,
    /// For people: what was refused and how to allow it, if it can be.
    pub message: String,
}

/// The installation's target policy (one row of `health_target_policy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetPolicy {
    /// Loopback targets: `None` allows them only in local mode
    /// ([`TargetPolicy::in_mode`]); `Some` decides for every process.
    pub allow_loopback: Option<bool>,
    /// RFC 1918, RFC 6598, RFC 2544 and IPv6 unique-local targets.
    pub allow_private: bool,
    /// Link-local targets (169.254.0.0/16, fe80::/10).
    pub allow_link_local: bool,
    /// Cloud instance-metadata endpoints.
    pub allow_metadata: bool,
    /// Networks allowed whatever their class (not the never-probed classes).
    pub allowed_networks: Vec<IpNet>,
    /// Networks refused always; they win over everything else.
    pub refused_networks: Vec<IpNet>,
}

impl Default for TargetPolicy {
    /// The stored default: private allowed, loopback in local mode only,
    /// link-local and metadata refused.
    fn default() -> Self {
        TargetPolicy::DEFAULT
    }
}

impl TargetPolicy {
    /// The stored default (see the migration): private networks allowed,
    /// loopback in local mode only, link-local and metadata refused.
    pub const DEFAULT: TargetPolicy = TargetPolicy {
        allow_loopback: None,
        allow_private: true,
        allow_link_local: false,
        allow_metadata: false,
        allowed_networks: Vec::new(),
        refused_networks: Vec::new(),
    };
    /// Refuses everything but public addresses.
    pub const STRICT: TargetPolicy = TargetPolicy {
        allow_loopback: Some(false),
        allow_private: false,
        allow_link_local: false,
        allow_metadata: false,
        allowed_networks: Vec::new(),
        refused_networks: Vec::new(),
    };
    /// Allows loopback, private, link-local and metadata addresses (a lab).
    pub const ALLOW_PRIVATE: TargetPolicy = TargetPolicy {
        allow_loopback: Some(true),
        allow_private: true,
        allow_link_local: true,
        allow_metadata: true,
        allowed_networks: Vec::new(),
        refused_networks: Vec::new(),
    };

    /// The policy as a process applies it: an undecided loopback setting
    /// becomes allowed in local mode (`serve`, `--allow-private-targets`);
    /// otherwise it stays undecided, which refuses loopback.
    pub fn in_mode(mut self, local: bool) -> TargetPolicy {
        if local && self.allow_loopback.is_none() {
            self.allow_loopback = Some(true);
        }
        self
    }

    fn allows_class(&self, class: AddressClass) -> bool {
        match class {
            AddressClass::Public => true,
            AddressClass::Loopback => self.allow_loopback == Some(true),
            AddressClass::Private => self.allow_private,
            AddressClass::LinkLocal => self.allow_link_local,
            AddressClass::Metadata => self.allow_metadata,
            _ => false,
        }
    }

    /// Whether a check may probe `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), TargetRefused> {
        let class = classify(ip);
        let canonical = ip.to_canonical();
        if let Some(net) = self.refused_networks.iter().find(|n| n.contains(&ip) || n.contains(&canonical)) {
            return Err(TargetRefused {
                class,
                message: format!(
                    "{ip} is in {net}, which the installation's health-check target policy refuses"
                ),
            });
        }
        if !class.allowable() && class != AddressClass::Public {
            return Err(TargetRefused {
                class,
                message: format!("{ip} is {} and cannot be health checked", class.describe()),
            });
        }
        if self.allows_class(class)
            || self.allowed_networks.iter().any(|n| n.contains(&ip) || n.contains(&canonical))
        {
            return Ok(());
        }
        Err(TargetRefused { class, message: self.refusal_text(&ip.to_string(), "is", class) })
    }

    fn refusal_text(&self, what: &str, verb: &str, class: AddressClass) -> String {
        let how = if class == AddressClass::Loopback && self.allow_loopback.is_none() {
            "loopback targets are allowed only to `signpost serve` and processes started with \
             --allow-private-targets, unless the installation's policy allows them"
        } else {
            "the installation's health-check target policy refuses them; the operator may change it \
             (`signpost target-policy`)"
        };
        format!("{what} {verb} {}: {how}", class.describe())
    }

    /// Whether a check may probe the host name `host` (before resolution:
    /// names that always mean a loopback or metadata address, like `localhost`).
    pub fn check_host(&self, host: &str) -> Result<(), TargetRefused> {
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        let class = if lower == "localhost" || lower.ends_with(".localhost") {
            AddressClass::Loopback
        } else if METADATA_NAMES.contains(&lower.as_str()) {
            AddressClass::Metadata
        } else {
            return Ok(());
        };
        if self.allows_class(class) {
            return Ok(());
        }
        Err(TargetRefused { class, message: self.refusal_text(host, "names", class) })
    }
}

/// Host names of cloud metadata services.
const METADATA_NAMES: &[&str] =
    &["metadata", "metadata.google.internal", "instance-data", "instance-data.ec2.internal"];

/// The class of an address. IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is
/// classified as the IPv4 address it leads to.
pub fn classify(ip: IpAddr) -> AddressClass {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn classify_v4(ip: Ipv4Addr) -> AddressClass {
    const METADATA: [[u8; 4]; 4] =
        [[169, 254, 169, 254], [169, 254, 170, 2], [169, 254, 170, 23], [100, 100, 100, 200]];
    if METADATA.iter().any(|m| ip.octets() == *m) {
        return AddressClass::Metadata;
    }
    let table: &[([u8; 4], u32, AddressClass)] = &[
        ([0, 0, 0, 0], 8, AddressClass::Unspecified),
        ([10, 0, 0, 0], 8, AddressClass::Private),
        ([100, 64, 0, 0], 10, AddressClass::Private),
        ([127, 0, 0, 0], 8, AddressClass::Loopback),
        ([169, 254, 0, 0], 16, AddressClass::LinkLocal),
        ([172, 16, 0, 0], 12, AddressClass::Private),
        ([192, 0, 0, 0], 24, AddressClass::Reserved),
        ([192, 0, 2, 0], 24, AddressClass::Documentation),
        ([192, 88, 99, 0], 24, AddressClass::Reserved),
        ([192, 168, 0, 0], 16, AddressClass::Private),
        ([198, 18, 0, 0], 15, AddressClass::Private),
        ([198, 51, 100, 0], 24, AddressClass::Documentation),
        ([203, 0, 113, 0], 24, AddressClass::Documentation),
        ([224, 0, 0, 0], 4, AddressClass::Multicast),
        ([255, 255, 255, 255], 32, AddressClass::Multicast),
        ([240, 0, 0, 0], 4, AddressClass::Reserved),
    ];
    table.iter().find(|(net, len, _)| in_v4(ip, *net, *len)).map_or(AddressClass::Public, |(_, _, c)| *c)
}

fn in_v6(ip: Ipv6Addr, net: Ipv6Addr, len: u32) -> bool {
    let mask = if len == 0 { 0 } else { u128::MAX << (128 - len) };
    (u128::from(ip) & mask) == (u128::from(net) & mask)
}

/// The class of the embedding that matters most: the first that is
/// neither public nor unspecified (zero padding), else public if any is,
/// else unspecified.
fn strictest(classes: impl IntoIterator<Item = AddressClass>) -> AddressClass {
    let classes: Vec<AddressClass> = classes.into_iter().collect();
    let meaningful = classes.iter().find(|c| !matches!(c, AddressClass::Public | AddressClass::Unspecified));
    match meaningful {
        Some(class) => *class,
        None if classes.contains(&AddressClass::Public) => AddressClass::Public,
        None => AddressClass::Unspecified,
    }
}

fn v4_at(bits: u128, shift: u32) -> Ipv4Addr {
    Ipv4Addr::from(((bits >> shift) & 0xffff_ffff) as u32)
}

/// The IPv4 address of an RFC 6052 address with a `prefix`-bit prefix
/// (bits 64..72 are the reserved `u` octet).
fn rfc6052_v4(bits: u128, prefix: u32) -> Ipv4Addr {
    let octet = |i: u32| -> u8 {
        // Bit position (from the top) of the i-th octet of the IPv4 address.
        let mut pos = prefix + 8 * i;
        if pos >= 64 {
            pos += 8;
        }
        ((bits >> (120 - pos)) & 0xff) as u8
    };
    Ipv4Addr::new(octet(0), octet(1), octet(2), octet(3))
}

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let bits = u128::from(ip);
    let low_v4 = v4_at(bits, 0);
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible), ::ffff:0:a.b.c.d
    // (SIIT) and 64:ff9b::a.b.c.d (NAT64) lead to the IPv4 address.
    if in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
        || in_v6(ip, Ipv6Addr::UNSPECIFIED, 96)
        || in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, 0, 0), 96)
        || in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return classify_v4(low_v4);
    }
    // 64:ff9b:1::/48 (RFC 8215, local-use NAT64): the operator picks the
    // prefix length, so every RFC 6052 position inside the /48 is judged.
    if in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0), 48) {
        return strictest(
            [classify_v4(low_v4)].into_iter().chain([48, 56, 64].map(|p| classify_v4(rfc6052_v4(bits, p)))),
        );
    }
    // 6to4: 2002:AABB:CCDD::/48 leads to AA.BB.CC.DD.
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return classify_v4(v4_at(bits, 80));
    }
    // Teredo 2001:0:SSSS:SSSS:flags:port:CCCC:CCCC: the server's address,
    // the client's address (inverted in the low 32 bits), and those bits
    // as they stand (a translator that ignores the inversion).
    if in_v6(ip, Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0), 32) {
        let client = Ipv4Addr::from(!((bits & 0xffff_ffff) as u32));
        return strictest([classify_v4(v4_at(bits, 64)), classify_v4(client), classify_v4(low_v4)]);
    }
    let metadata = [
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    ];
    if metadata.contains(&ip) {
        return AddressClass::Metadata;
    }
    let table: &[(Ipv6Addr, u32, AddressClass)] = &[
        (Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0), 64, AddressClass::Reserved),
        (Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0), 32, AddressClass::Documentation),
        (Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0), 20, AddressClass::Documentation),
        (Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0), 7, AddressClass::Private),
        (Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), 10, AddressClass::LinkLocal),
        (Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0), 10, AddressClass::Reserved),
        (Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0), 8, AddressClass::Multicast),
    ];
    table.iter().find(|(net, len, _)| in_v6(ip, *net, *len)).map_or(AddressClass::Public, |(_, _, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(s: &str) -> AddressClass {
        classify(s.parse().unwrap())
    }

    #[test]
    fn classes() {
        let cases = [
            ("8.8.8.8", AddressClass::Public),
            ("1.1.1.1", AddressClass::Public),
            ("127.0.0.1", AddressClass::Loopback),
            ("127.0.0.17", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.255", AddressClass::Private),
            ("172.32.0.1", AddressClass::Public),
            ("192.168.1.1", AddressClass::Private),
            ("100.64.0.1", AddressClass::Private),
            ("198.18.0.1", AddressClass::Private),
            ("169.254.1.1", AddressClass::LinkLocal),
            ("169.254.169.254", AddressClass::Metadata),
            ("169.254.170.2", AddressClass::Metadata),
            ("100.100.100.200", AddressClass::Metadata),
            ("0.0.0.0", AddressClass::Unspecified),
            ("224.0.0.1", AddressClass::Multicast),
            ("255.255.255.255", AddressClass::Multicast),
            ("240.0.0.1", AddressClass::Reserved),
            ("192.0.2.1", AddressClass::Documentation),
            ("198.51.100.7", AddressClass::Documentation),
            ("203.0.113.9", AddressClass::Documentation),
            ("2606:4700::1111", AddressClass::Public),
            ("::1", AddressClass::Loopback),
            ("::", AddressClass::Unspecified),
            ("fe80::1", AddressClass::LinkLocal),
            ("fd12:3456::1", AddressClass::Private),
            ("fd00:ec2::254", AddressClass::Metadata),
            ("ff02::1", AddressClass::Multicast),
            ("2001:db8::1", AddressClass::Documentation),
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::Metadata),
            ("::ffff:8.8.8.8", AddressClass::Public),
            ("64:ff9b::a00:1", AddressClass::Private),
            ("2002:7f00:1::", AddressClass::Loopback),
            ("2002:808:808::", AddressClass::Public),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_inside_ipv6_is_judged_as_the_ipv4_address() {
        let cases = [
            // NAT64 well-known and local-use prefixes.
            ("64:ff9b::7f00:1", AddressClass::Loopback),
            ("64:ff9b::a9fe:a9fe", AddressClass::Metadata),
            ("64:ff9b:1::7f00:1", AddressClass::Loopback),
            ("64:ff9b:1:7f00:1::", AddressClass::Loopback),
            ("64:ff9b:1::808:808", AddressClass::Public),
            // SIIT, compatible, mapped.
            ("::ffff:0:127.0.0.1", AddressClass::Loopback),
            ("::ffff:0:169.254.169.254", AddressClass::Metadata),
            ("::127.0.0.1", AddressClass::Loopback),
            ("::169.254.169.254", AddressClass::Metadata),
            ("::ffff:7f00:1", AddressClass::Loopback),
            // Teredo: server 65.54.227.120, client 127.0.0.1 / 169.254.169.254 inverted.
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", AddressClass::Loopback),
            ("2001:0:4136:e378:8000:63bf:5601:5601", AddressClass::Metadata),
            ("2001:0:4136:e378:8000:63bf:a247:27dd", AddressClass::Public),
            ("2001:0:7f00:1:8000:63bf:a247:27dd", AddressClass::Loopback),
            ("2001::7f00:1", AddressClass::Loopback),
            ("2001::a9fe:a9fe", AddressClass::Metadata),
        ];
        for (ip, want) in cases {
            assert_eq!(class(ip), want, "{ip}");
        }
    }

    #[test]
    fn the_default_policy_allows_private_and_loopback_only_in_local_mode() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let api = TargetPolicy::DEFAULT.in_mode(false);
        let serve = TargetPolicy::DEFAULT.in_mode(true);
        let e = api.check_ip(ip("127.0.0.1")).unwrap_err();
        assert_eq!(e.class, AddressClass::Loopback);
        assert!(e.message.contains("signpost serve"), "{e}");
        assert!(serve.check_ip(ip("127.0.0.1")).is_ok());
        assert!(serve.check_ip(ip("::1")).is_ok());
        for private in ["10.1.2.3", "192.168.0.10", "fd12::1"] {
            assert!(api.check_ip(ip(private)).is_ok(), "{private}");
        }
        for refused in ["169.254.169.254", "169.254.1.1", "fe80::1", "fd00:ec2::254", "64:ff9b::a9fe:a9fe"] {
            assert!(serve.check_ip(ip(refused)).is_err(), "{refused}");
            assert!(api.check_ip(ip(refused)).is_err(), "{refused}");
        }
        for never in ["0.0.0.0", "224.0.0.1", "192.0.2.1", "::ffff:0:0.0.0.0"] {
            let e = TargetPolicy::ALLOW_PRIVATE.check_ip(ip(never)).unwrap_err();
            assert!(e.message.contains("cannot be health checked"), "{e}");
        }
        assert!(api.check_ip(ip("8.8.8.8")).is_ok());
    }

    #[test]
    fn a_decided_loopback_setting_holds_in_every_mode() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let strict = TargetPolicy { allow_loopback: Some(false), ..TargetPolicy::DEFAULT };
        let e = strict.clone().in_mode(true).check_ip(ip).unwrap_err();
        assert!(e.message.contains("target policy refuses"), "{e}");
        let open = TargetPolicy { allow_loopback: Some(true), ..TargetPolicy::DEFAULT };
        assert!(open.in_mode(false).check_ip(ip).is_ok());
        assert!(TargetPolicy::STRICT.in_mode(true).check_host("LOCALHOST.").is_err());
        assert!(TargetPolicy::STRICT.check_host("api.localhost").is_err());
        assert!(TargetPolicy::STRICT.check_host("metadata.google.internal").is_err());
        assert!(TargetPolicy::STRICT.check_host("example.com").is_ok());
        assert!(TargetPolicy::DEFAULT.in_mode(true).check_host("localhost").is_ok());
        assert!(TargetPolicy::DEFAULT.in_mode(true).check_host("metadata").is_err());
    }

    #[test]
    fn networks_refine_the_classes() {
        let ip = |s: &str| -> IpAddr { s.parse().unwrap() };
        let policy = TargetPolicy {
            allowed_networks: vec!["169.254.10.0/24".parse().unwrap(), "192.0.2.0/24".parse().unwrap()],
            refused_networks: vec!["10.9.0.0/16".parse().unwrap(), "8.8.8.8/32".parse().unwrap()],
            ..TargetPolicy::DEFAULT
        }
        .in_mode(false);
        assert!(policy.check_ip(ip("169.254.10.7")).is_ok(), "allowed network beats the class");
        assert!(policy.check_ip(ip("169.254.11.7")).is_err());
        assert!(policy.check_ip(ip("192.0.2.1")).is_err(), "documentation space is never probed");
        let e = policy.check_ip(ip("10.9.1.1")).unwrap_err();
        assert!(e.message.contains("10.9.0.0/16"), "{e}");
        assert!(policy.check_ip(ip("::ffff:8.8.8.8")).is_err(), "mapped forms are refused too");
        assert!(policy.check_ip(ip("10.8.1.1")).is_ok());
    }
}
