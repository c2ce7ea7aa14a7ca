//! IP prefixes and longest-prefix tables, with the ECS scope rule: a scope
//! never claims an answer for addresses that would get another one.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::ValidationError;

/// Address family of a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4 (32 bits).
    V4,
    /// IPv6 (128 bits).
    V6,
}

impl Family {
    /// Bits in an address.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

/// An address as a left-aligned 128-bit number and its family.
fn bits_of(addr: IpAddr) -> (Family, u128) {
    match addr {
        IpAddr::V4(v4) => (Family::V4, u128::from(u32::from(v4)) << 96),
        IpAddr::V6(v6) => (Family::V6, u128::from(v6)),
    }
}

fn mask(len: u8) -> u128 {
    if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) }
}

/// Common leading bits of two left-aligned addresses.
fn common_prefix(a: u128, b: u128) -> u8 {
    (a ^ b).leading_zeros().min(128) as u8
}

/// A network: address bits (host part zero) and prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Prefix {
    family: Family,
    bits: u128,
    len: u8,
}

impl Prefix {
    /// The network of `addr` with `len` leading bits (clamped to the family).
    pub fn new(addr: IpAddr, len: u8) -> Self {
        let (family, bits) = bits_of(addr);
        let len = len.min(family.bits());
        Prefix { family, bits: bits & mask(len), len }
    }

    /// Parses `a.b.c.d/len` or `x::/len`; the host part must be zero.
    pub fn parse(text: &str, field: &str) -> Result<Self, ValidationError> {
        let (addr, len) = text.split_once('/').ok_or_else(|| {
            ValidationError::new(field, format!("{text:?} is not a CIDR block (address/length)"))
        })?;
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| ValidationError::new(field, format!("{addr:?} is not an IP address")))?;
        let len: u8 = len
            .parse()
            .map_err(|_| ValidationError::new(field, format!("{len:?} is not a prefix length")))?;
        let (family, bits) = bits_of(addr);
        if len > family.bits() {
            return Err(ValidationError::new(
                field,
                format!("prefix length {len} is longer than the address"),
            ));
        }
        if bits & !mask(len) != 0 {
            return Err(ValidationError::new(field, format!("{text} has host bits set")));
        }
        Ok(Prefix { family, bits, len })
    }

    /// The network address (host bits zero).
    pub fn addr(&self) -> IpAddr {
        match self.family {
            Family::V4 => IpAddr::from(((self.bits >> 96) as u32).to_be_bytes()),
            Family::V6 => IpAddr::from(self.bits.to_be_bytes()),
        }
    }

    /// Prefix length.
    pub fn len(&self) -> u8 {
        self.len
    }

    /// Whether the length is zero.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Address family.
    pub fn family(&self) -> Family {
        self.family
    }

    /// Whether `addr` is inside.
    pub fn contains(&self, addr: IpAddr) -> bool {
        let (family, bits) = bits_of(addr);
        family == self.family && bits & mask(self.len) == self.bits
    }
}

impl std::fmt::Display for Prefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr(), self.len)
    }
}

/// The client as the routing sees it: an address and how many of its bits
/// are known (the ECS source prefix, or the full address).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientNet {
    /// The (possibly truncated) address.
    pub addr: IpAddr,
    /// Known leading bits.
    pub source_len: u8,
}

/// A longest-prefix-match table. A block longer than the client's source
/// prefix does not match (the client may be outside it).
#[derive(Debug, Clone)]
pub struct PrefixMap<T> {
    entries: Vec<(Prefix, T)>,
    by_len: HashMap<(Family, u8), HashMap<u128, usize>>,
    lengths: Vec<(Family, u8)>,
    children: Vec<Vec<usize>>,
    top_level: Vec<usize>,
}

impl<T> Default for PrefixMap<T> {
    fn default() -> Self {
        PrefixMap {
            entries: Vec::new(),
            by_len: HashMap::new(),
            lengths: Vec::new(),
            children: Vec::new(),
            top_level: Vec::new(),
        }
    }
}

/// A match and the ECS scope it justifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'a, T> {
    /// The value of the longest matching block; None when no block matched.
    pub value: Option<&'a T>,
    /// The matched block's length (0 when none matched).
    pub matched_len: u8,
    /// The scope: long enough that no other block's address shares it.
    pub scope: u8,
}

impl<T> PrefixMap<T> {
    /// The blocks and their values, in insertion order (duplicates dropped):
    /// `PrefixMap::new` of these gives the same table.
    pub fn entries(&self) -> &[(Prefix, T)] {
        &self.entries
    }

    /// A table of these blocks (a duplicate block keeps its first value).
    pub fn new(blocks: impl IntoIterator<Item = (Prefix, T)>) -> Self {
        let mut map = PrefixMap::default();
        for (prefix, value) in blocks {
            let slot = map.by_len.entry((prefix.family, prefix.len)).or_default();
            if slot.contains_key(&prefix.bits) {
                continue;
            }
            slot.insert(prefix.bits, map.entries.len());
            map.entries.push((prefix, value));
        }
        map.lengths = map.by_len.keys().copied().collect();
        map.lengths.sort_by_key(|l| std::cmp::Reverse(l.1));
        // Direct children (maximal blocks strictly inside) and top-level
        // blocks: a block's parent is its longest shorter block, found by
        // masking to each shorter length present (no pairwise scan).
        let n = map.entries.len();
        map.children = vec![Vec::new(); n];
        for i in 0..n {
            let (prefix, _) = &map.entries[i];
            let parent = map
                .lengths
                .iter()
                .filter(|(f, len)| *f == prefix.family && *len < prefix.len)
                .find_map(|&(f, len)| {
                    map.by_len.get(&(f, len)).and_then(|m| m.get(&(prefix.bits & mask(len))))
                })
                .copied();
            match parent {
                Some(p) => map.children[p].push(i),
                None => map.top_level.push(i),
            }
        }
        map
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The longest block containing the client (no longer than its source
    /// prefix), and the scope for the answer it decides.
    pub fn lookup(&self, client: ClientNet) -> Match<'_, T> {
        let (family, bits) = bits_of(client.addr);
        let source = client.source_len.min(family.bits());
        let found =
            self.lengths.iter().filter(|(f, len)| *f == family && *len <= source).find_map(|&(f, len)| {
                self.by_len.get(&(f, len)).and_then(|m| m.get(&(bits & mask(len)))).copied()
            });
        let (value, matched_len, others) = match found {
            Some(i) => (Some(&self.entries[i].1), self.entries[i].0.len, &self.children[i]),
            None => (None, 0, &self.top_level),
        };
        // Leave out every other block that does not contain the client: one
        // bit past the common prefix with each is enough (a block nested in
        // another shares the outer block's common prefix, so the direct
        // children, or the top-level blocks, cover them all).
        let mut scope = matched_len;
        for &i in others {
            let (p, _) = &self.entries[i];
            if p.family == family {
                scope = scope.max(common_prefix(bits, p.bits).min(p.len).saturating_add(1));
            }
        }
        Match { value, matched_len, scope: scope.min(source) }
    }

    /// The blocks and values.
    pub fn iter(&self) -> impl Iterator<Item = &(Prefix, T)> {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s, "cidr").unwrap()
    }

    fn client(s: &str, len: u8) -> ClientNet {
        ClientNet { addr: s.parse().unwrap(), source_len: len }
    }

    #[test]
    fn parses_and_rejects_host_bits() {
        assert_eq!(p("10.1.0.0/16").to_string(), "10.1.0.0/16");
        assert_eq!(p("2001:db8::/32").len(), 32);
        assert!(Prefix::parse("10.1.0.1/16", "c").unwrap_err().message.contains("host bits"));
        assert!(Prefix::parse("10.1.0.0/33", "c").is_err());
        assert!(Prefix::parse("10.1.0.0", "c").is_err());
    }

    #[test]
    fn longest_match_wins_and_scope_excludes_inner_blocks() {
        let map = PrefixMap::new([
            (p("10.0.0.0/8"), "wide"),
            (p("10.1.0.0/16"), "mid"),
            (p("10.1.2.0/24"), "narrow"),
        ]);
        let m = map.lookup(client("10.1.2.3", 32));
        assert_eq!((m.value, m.matched_len, m.scope), (Some(&"narrow"), 24, 24));
        // In the /16 but not the /24: the scope must leave 10.1.2.0/24 out.
        let m = map.lookup(client("10.1.7.1", 32));
        assert_eq!(m.value, Some(&"mid"));
        assert_eq!(m.scope, 22, "10.1.7.x and 10.1.2.x share 21 bits");
        // In the /8 only.
        let m = map.lookup(client("10.200.0.1", 32));
        assert_eq!((m.value, m.scope), (Some(&"wide"), 9));
        // Nowhere: scope excludes the /8.
        let m = map.lookup(client("192.0.2.1", 32));
        assert_eq!((m.value, m.scope), (None, 1));
        // Capped at the source prefix; blocks longer than the source do not match.
        let m = map.lookup(client("10.1.2.0", 20));
        assert_eq!((m.value, m.matched_len, m.scope), (Some(&"mid"), 16, 20));
    }

    #[test]
    fn families_do_not_mix() {
        let map = PrefixMap::new([(p("2001:db8::/32"), 6), (p("0.0.0.0/1"), 4)]);
        assert_eq!(map.lookup(client("2001:db8::1", 128)).value, Some(&6));
        assert_eq!(map.lookup(client("1.2.3.4", 32)).value, Some(&4));
        assert_eq!(map.lookup(client("2001:db9::1", 128)).value, None);
    }
}
