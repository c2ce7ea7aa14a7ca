//! Which addresses a health check may probe. The checker is a request
//! forgery vector (it connects wherever a check points), so loopback,
//! private, link-local and cloud-metadata targets are refused unless the
//! operator allows private targets (`serve` does, for local use). Addresses
//! that can never be an endpoint (unspecified, multicast, broadcast,
//! documentation, reserved) are refused always. Pure: the API calls it to
//! answer 400, the checker calls it again before every connection (after
//! resolving a host name, against DNS rebinding).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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

/// The operator's target policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TargetPolicy {
    /// Allow loopback, private, link-local and metadata targets.
    pub allow_private: bool,
}

impl TargetPolicy {
    /// Refuses everything but public addresses.
    pub const STRICT: TargetPolicy = TargetPolicy { allow_private: false };
    /// Also allows loopback, private, link-local and metadata addresses (local use).
    pub const ALLOW_PRIVATE: TargetPolicy = TargetPolicy { allow_private: true };

    /// Whether a check may probe `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), TargetRefused> {
        let class = classify(ip);
        if class == AddressClass::Public || (self.allow_private && class.allowable()) {
            return Ok(());
        }
        let message = if class.allowable() {
            format!(
                "{ip} is {}: health checks may not target loopback, private, link-local or metadata \
                 addresses unless the operator allows private targets",
                class.describe()
            )
        } else {
            format!("{ip} is {} and cannot be health checked", class.describe())
        };
        Err(TargetRefused { class, message })
    }

    /// Whether a check may probe the host name `host` (before resolution:
    /// names that always mean a refused address, like `localhost`).
    pub fn check_host(&self, host: &str) -> Result<(), TargetRefused> {
        let lower = host.trim_end_matches('.').to_ascii_lowercase();
        let class = if lower == "localhost" || lower.ends_with(".localhost") {
            AddressClass::Loopback
        } else if METADATA_NAMES.contains(&lower.as_str()) {
            AddressClass::Metadata
        } else {
            return Ok(());
        };
        if self.allow_private {
            return Ok(());
        }
        Err(TargetRefused {
            class,
            message: format!(
                "{host} names {}: health checks may not target loopback, private, link-local or metadata \
                 addresses unless the operator allows private targets",
                class.describe()
            ),
        })
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

fn classify_v6(ip: Ipv6Addr) -> AddressClass {
    let bits = u128::from(ip);
    let low_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if ip.is_unspecified() {
        return AddressClass::Unspecified;
    }
    if ip.is_loopback() {
        return AddressClass::Loopback;
    }
    // ::ffff:a.b.c.d (mapped) and 64:ff9b::a.b.c.d (NAT64) lead to the IPv4 address.
    if in_v6(ip, Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0, 0), 96)
        || in_v6(ip, Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96)
    {
        return classify_v4(low_v4);
    }
    // 6to4: 2002:AABB:CCDD::/48 leads to AA.BB.CC.DD.
    if in_v6(ip, Ipv6Addr::new(0x2002, 0, 0, 0, 0, 0, 0, 0), 16) {
        return classify_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32));
    }
    let metadata = [
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
        Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
    ];
    if metadata.contains(&ip) {
        return AddressClass::Metadata;
    }
    let table: &[(Ipv6Addr, u32, AddressClass)] = &[
        (Ipv6Addr::UNSPECIFIED, 96, AddressClass::Reserved), // IPv4-compatible (deprecated)
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
    fn policy() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        let err = TargetPolicy::STRICT.check_ip(loopback).unwrap_err();
        assert_eq!(err.class, AddressClass::Loopback);
        assert!(err.message.contains("loopback") && err.message.contains("allows private targets"), "{err}");
        assert!(TargetPolicy::ALLOW_PRIVATE.check_ip(loopback).is_ok());
        assert!(TargetPolicy::ALLOW_PRIVATE.check_ip("169.254.169.254".parse().unwrap()).is_ok());
        assert!(TargetPolicy::STRICT.check_ip("8.8.8.8".parse().unwrap()).is_ok());
        let doc = TargetPolicy::ALLOW_PRIVATE.check_ip("192.0.2.1".parse().unwrap()).unwrap_err();
        assert!(doc.message.contains("cannot be health checked"), "{doc}");
        assert!(TargetPolicy::ALLOW_PRIVATE.check_ip("224.0.0.1".parse().unwrap()).is_err());
        assert!(TargetPolicy::STRICT.check_host("LOCALHOST.").is_err());
        assert!(TargetPolicy::STRICT.check_host("api.localhost").is_err());
        assert!(TargetPolicy::STRICT.check_host("metadata.google.internal").is_err());
        assert!(TargetPolicy::STRICT.check_host("example.com").is_ok());
        assert!(TargetPolicy::ALLOW_PRIVATE.check_host("localhost").is_ok());
    }
}
