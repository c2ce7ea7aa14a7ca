//! Domain names as Signpost keeps them: validated, lower-case, fully
//! qualified; and their lower-case wire form, which the snapshot uses as its
//! lookup key (every ancestor of a name is a suffix of it).

use hickory_proto::rr::Name;

use crate::ValidationError;

/// Longest name in presentation form without the trailing dot (RFC 1035).
pub const MAX_NAME_LEN: usize = 253;
/// Longest label (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Parses a user-supplied domain name, checks RFC 1035 limits, and returns it
/// lower-cased and fully qualified. `field` names the input in errors.
pub fn parse_name(text: &str, field: &str) -> Result<Name, ValidationError> {
    let trimmed = text.strip_suffix('.').unwrap_or(text);
    if trimmed.is_empty() && text != "." {
        return Err(ValidationError::new(field, "a name must not be empty"));
    }
    if trimmed.len() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("name is {} characters long; the limit is {MAX_NAME_LEN}", trimmed.len()),
        ));
    }
    for label in trimmed.split('.') {
        if trimmed.is_empty() {
            break;
        }
        if label.is_empty() {
            return Err(ValidationError::new(field, format!("empty label in {text:?}")));
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(ValidationError::new(
                field,
                format!("label {label:?} is {} characters long; the limit is {MAX_LABEL_LEN}", label.len()),
            ));
        }
    }
    let mut name = Name::from_ascii(text)
        .map_err(|e| ValidationError::new(field, format!("{text:?} is not a domain name: {e}")))?;
    name.set_fqdn(true);
    Ok(name.to_lowercase())
}

/// The canonical text of a name: lower-case, with the trailing dot.
pub fn canonical_text(text: &str, field: &str) -> Result<String, ValidationError> {
    Ok(parse_name(text, field)?.to_ascii())
}

/// A name in lower-case, uncompressed wire form, the snapshot's key.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WireName {
    bytes: Box<[u8]>,
}

impl WireName {
    /// Encodes `name` lower-cased.
    pub fn from_name(name: &Name) -> Self {
        let mut buf = WireBuf::new();
        buf.push_name(name);
        WireName { bytes: buf.as_slice().into() }
    }

    /// Wraps bytes that are already a lower-case wire name.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Self {
        WireName { bytes: bytes.into() }
    }

    /// The raw bytes (length-prefixed labels, ending with the root's 0).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }
}

impl std::fmt::Debug for WireName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WireName({})", wire_to_text(&self.bytes))
    }
}

impl std::borrow::Borrow<[u8]> for WireName {
    fn borrow(&self) -> &[u8] {
        &self.bytes
    }
}

/// Renders wire bytes as dotted text (for logs and tests).
pub fn wire_to_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = bytes[i] as usize;
        if len == 0 {
            break;
        }
        let end = (i + 1 + len).min(bytes.len());
        out.push_str(&String::from_utf8_lossy(&bytes[i + 1..end]));
        out.push('.');
        i = end;
    }
    if out.is_empty() {
        out.push('.');
    }
    out
}

/// A stack buffer holding one lower-case wire name and its label offsets,
/// so that the lookup of a query allocates nothing.
pub struct WireBuf {
    bytes: [u8; 256],
    len: usize,
    starts: [u8; 128],
    labels: usize,
}

impl Default for WireBuf {
    fn default() -> Self {
        Self::new()
    }
}

impl WireBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        WireBuf { bytes: [0; 256], len: 0, starts: [0; 128], labels: 0 }
    }

    /// Fills the buffer with `name`, lower-cased. Names are at most 255
    /// bytes in wire form, which hickory guarantees for parsed names.
    pub fn push_name(&mut self, name: &Name) {
        self.len = 0;
        self.labels = 0;
        for label in name.iter() {
            if self.len + 1 + label.len() >= self.bytes.len() || self.labels >= self.starts.len() {
                break;
            }
            self.starts[self.labels] = self.len as u8;
            self.labels += 1;
            self.bytes[self.len] = label.len() as u8;
            self.len += 1;
            for &b in label {
                self.bytes[self.len] = b.to_ascii_lowercase();
                self.len += 1;
            }
        }
        self.bytes[self.len] = 0;
        self.len += 1;
    }

    /// The whole name.
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Number of labels (not counting the root).
    pub fn label_count(&self) -> usize {
        self.labels
    }

    /// The ancestor keeping the last `keep` labels (`keep == label_count()` is the name itself).
    pub fn suffix(&self, keep: usize) -> &[u8] {
        if keep >= self.labels {
            return self.as_slice();
        }
        if keep == 0 {
            return &self.bytes[self.len - 1..self.len];
        }
        let start = self.starts[self.labels - keep] as usize;
        &self.bytes[start..self.len]
    }
}

/// Prepends the wildcard label `*` to an ancestor's wire form.
pub fn wildcard_of(ancestor: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(&[1, b'*']);
    out.extend_from_slice(ancestor);
}

/// Converts wire bytes back to a hickory name (slow path: synthesis only).
pub fn name_from_wire(bytes: &[u8]) -> Option<Name> {
    let mut labels: Vec<&[u8]> = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = bytes[i] as usize;
        if len == 0 {
            break;
        }
        labels.push(bytes.get(i + 1..i + 1 + len)?);
        i += 1 + len;
    }
    let mut name = Name::from_labels(labels).ok()?;
    name.set_fqdn(true);
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_lowercased_and_fully_qualified() {
        assert_eq!(parse_name("WWW.Example.COM", "name").unwrap().to_ascii(), "www.example.com.");
        assert_eq!(canonical_text("a.b.", "name").unwrap(), "a.b.");
    }

    #[test]
    fn limits_name_the_field() {
        let long_label = "a".repeat(64);
        let err = parse_name(&format!("{long_label}.com"), "rrset.name").unwrap_err();
        assert_eq!(err.field, "rrset.name");
        assert!(err.message.contains("63"), "{}", err.message);
        let long_name = vec!["abcdefghi"; 26].join(".");
        assert!(parse_name(&long_name, "n").unwrap_err().message.contains("253"));
        assert!(parse_name("a..b", "n").is_err());
        assert!(parse_name("", "n").is_err());
    }

    #[test]
    fn wire_suffixes_are_the_ancestors() {
        let name = Name::from_ascii("WwW.Example.com.").unwrap();
        let mut buf = WireBuf::new();
        buf.push_name(&name);
        assert_eq!(buf.label_count(), 3);
        assert_eq!(wire_to_text(buf.suffix(3)), "www.example.com.");
        assert_eq!(wire_to_text(buf.suffix(2)), "example.com.");
        assert_eq!(wire_to_text(buf.suffix(1)), "com.");
        assert_eq!(wire_to_text(buf.suffix(0)), ".");
        assert_eq!(WireName::from_name(&name).as_bytes(), buf.as_slice());
        let mut wild = Vec::new();
        wildcard_of(buf.suffix(2), &mut wild);
        assert_eq!(wire_to_text(&wild), "*.example.com.");
        assert_eq!(name_from_wire(&wild).unwrap().to_ascii(), "*.example.com.");
    }
}
