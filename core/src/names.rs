//! Domain names as Signpost keeps them: validated, lower-case, fully
//! qualified; their canonical presentation text (what the database stores
//! and compares); and their lower-case wire form, which the snapshot uses as
//! its lookup key (every ancestor of a name is a suffix of it).
//!
//! The presentation format is parsed here rather than by hickory, whose
//! parser reads `\DDD` as octal: `\DDD` is decimal (RFC 1035 §5.1), a label
//! may hold any octet (RFC 2181 §11), and limits are counted on the octets.

use hickory_proto::rr::Name;

use crate::ValidationError;

/// Longest name in wire form, root label included (RFC 1035 §2.3.4).
pub const MAX_WIRE_LEN: usize = 255;
/// Longest label in octets (RFC 1035).
pub const MAX_LABEL_LEN: usize = 63;

/// Presentation text split into unescaped labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameText {
    /// The labels' octets, leftmost first, as written (not lower-cased).
    pub labels: Vec<Vec<u8>>,
    /// Whether the text ended with an unescaped dot (or was `.`).
    pub absolute: bool,
}

/// Splits presentation text into labels, resolving `\DDD` (decimal, exactly
/// three digits, 0–255) and `\X` escapes. The error says what is wrong,
/// without the field.
pub fn split_name_text(text: &str) -> Result<NameText, String> {
    if text.is_empty() {
        return Err("a name must not be empty".to_string());
    }
    if text == "." {
        return Ok(NameText { labels: Vec::new(), absolute: true });
    }
    let mut labels = Vec::new();
    let mut label: Vec<u8> = Vec::new();
    let mut absolute = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if label.is_empty() {
                    return Err(format!("empty label in {text:?}"));
                }
                labels.push(std::mem::take(&mut label));
                if chars.peek().is_none() {
                    absolute = true;
                }
            }
            '\\' => label.push(unescape(&mut chars, text)?),
            c if !c.is_ascii() => {
                return Err(format!(
                    "{text:?} holds the non-ASCII character {c:?}: write an IDN as punycode (xn--…) or octets as \\DDD"
                ));
            }
            c if c.is_ascii_whitespace() || c.is_ascii_control() => {
                return Err(format!("{text:?} holds the character {c:?}: write it as \\{:03}", c as u32));
            }
            c => label.push(c as u8),
        }
    }
    if !label.is_empty() {
        labels.push(label);
    }
    Ok(NameText { labels, absolute })
}

/// Reads the rest of an escape after `\`: `\DDD` (decimal) or `\X`.
pub(crate) fn unescape(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
    text: &str,
) -> Result<u8, String> {
    match chars.next() {
        None => Err(format!("{text:?} ends with a lone backslash")),
        Some(d) if d.is_ascii_digit() => {
            let mut value = d.to_digit(10).unwrap_or(0);
            for _ in 0..2 {
                match chars.next() {
                    Some(d) if d.is_ascii_digit() => value = value * 10 + d.to_digit(10).unwrap_or(0),
                    _ => {
                        return Err(format!("{text:?}: an escape \\DDD needs exactly three decimal digits"));
                    }
                }
            }
            u8::try_from(value).map_err(|_| format!("{text:?}: escape \\{value:03} is above 255"))
        }
        Some(c) if c.is_ascii() => Ok(c as u8),
        Some(c) => {
            Err(format!("{text:?}: cannot escape the non-ASCII character {c:?}; write its octets as \\DDD"))
        }
    }
}

/// Builds a fully qualified, lower-case (A–Z only) name from raw labels,
/// checking the 63-octet label and 255-octet name limits.
pub fn name_from_labels<L: AsRef<[u8]>>(labels: &[L]) -> Result<Name, String> {
    let mut wire_len = 1;
    let mut lowered: Vec<Vec<u8>> = Vec::with_capacity(labels.len());
    for label in labels {
        let label = label.as_ref();
        if label.is_empty() {
            return Err("empty label".to_string());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!(
                "label {} is {} octets long; the limit is {MAX_LABEL_LEN}",
                label_text(label),
                label.len()
            ));
        }
        wire_len += 1 + label.len();
        lowered.push(label.to_ascii_lowercase());
    }
    if wire_len > MAX_WIRE_LEN {
        // Counted on the octets; said also in text length (dots between labels, no escapes).
        return Err(format!(
            "name is {} octets long unescaped ({wire_len} in wire form); the limit is {} ({MAX_WIRE_LEN} in wire form)",
            wire_len - 2,
            MAX_WIRE_LEN - 2
        ));
    }
    if lowered.is_empty() {
        return Ok(Name::root());
    }
    let mut name = Name::from_labels(lowered.iter().map(|l| l.as_slice()))
        .map_err(|e| format!("not a domain name: {e}"))?;
    name.set_fqdn(true);
    Ok(name)
}

/// Parses a user-supplied domain name, checks the RFC 1035 limits on its
/// octets, and returns it lower-cased and fully qualified (a name without
/// the trailing dot is taken as absolute, as Route 53 does). `field` names
/// the input in errors.
pub fn parse_name(text: &str, field: &str) -> Result<Name, ValidationError> {
    let parsed = split_name_text(text).map_err(|m| ValidationError::new(field, m))?;
    name_from_labels(&parsed.labels)
        .map_err(|m| ValidationError::new(field, format!("{}: {m}", quoted(text))))
}

/// Parses a name that may be relative to `origin` (zone files, record
/// data): `@` is the origin, a name without the trailing dot is completed
/// with it. A completed name longer than 255 octets is an error, never
/// silently left relative.
pub fn parse_relative_name(text: &str, origin: &Name, field: &str) -> Result<Name, ValidationError> {
    if text == "@" {
        return Ok(origin.to_lowercase());
    }
    let mut parsed = split_name_text(text).map_err(|m| ValidationError::new(field, m))?;
    if !parsed.absolute {
        parsed.labels.extend(origin.iter().map(<[u8]>::to_vec));
    }
    name_from_labels(&parsed.labels).map_err(|m| {
        let context = if parsed.absolute {
            quoted(text)
        } else {
            format!("{} completed with {}", quoted(text), name_text(origin))
        };
        ValidationError::new(field, format!("{context}: {m}"))
    })
}

/// Text that passed `split_name_text` (no control or non-ASCII character), in quotes.
fn quoted(text: &str) -> String {
    format!("\"{text}\"")
}

/// The canonical text of a name: lower-case, with the trailing dot.
pub fn canonical_text(text: &str, field: &str) -> Result<String, ValidationError> {
    Ok(name_text(&parse_name(text, field)?))
}

/// Prints a name in Signpost's canonical presentation form: lower-case
/// (A–Z), trailing dot, printable ASCII kept except `. \ " ( ) ; @ $` (as
/// `\X`), every other octet as decimal `\DDD`. Two spellings of one wire
/// name always print the same. Use this, never hickory's Display, for text
/// that is stored, compared or exported.
pub fn name_text(name: &Name) -> String {
    if name.is_root() {
        return ".".to_string();
    }
    let mut out = String::new();
    for label in name.iter() {
        push_label(&mut out, &label.to_ascii_lowercase());
        out.push('.');
    }
    out
}

/// One label in canonical presentation form (no dot).
pub fn label_text(label: &[u8]) -> String {
    let mut out = String::new();
    push_label(&mut out, label);
    out
}

fn push_label(out: &mut String, label: &[u8]) {
    for &b in label {
        match b {
            b'.' | b'\\' | b'"' | b'(' | b')' | b';' | b'@' | b'$' => {
                out.push('\\');
                out.push(b as char);
            }
            0x21..=0x7e => out.push(b as char),
            _ => {
                out.push('\\');
                out.push_str(&format!("{b:03}"));
            }
        }
    }
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

/// Renders wire bytes as canonical dotted text (for logs and tests).
pub fn wire_to_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < bytes.len() {
        let len = bytes[i] as usize;
        if len == 0 {
            break;
        }
        let end = (i + 1 + len).min(bytes.len());
        push_label(&mut out, &bytes[i + 1..end]);
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
        assert!(parse_name(&long_name, "n").unwrap_err().message.contains("255"));
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

    fn labels_of(name: &Name) -> Vec<Vec<u8>> {
        name.iter().map(<[u8]>::to_vec).collect()
    }

    #[test]
    fn every_octet_in_a_label_round_trips_through_text_and_wire() {
        use hickory_proto::serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder};
        for b in 0..=255u8 {
            let label = vec![b'x', b, b'y'];
            let name = name_from_labels(&[label.clone(), b"test".to_vec()]).unwrap();
            let text = name_text(&name);
            let again = parse_name(&text, "name").unwrap_or_else(|e| panic!("octet {b}: {text:?}: {e}"));
            assert_eq!(labels_of(&again)[0], label.to_ascii_lowercase(), "octet {b}: {text:?}");
            assert_eq!(name_text(&again), text, "octet {b}");
            let mut wire = Vec::new();
            name.emit(&mut BinEncoder::new(&mut wire)).unwrap();
            let decoded = Name::read(&mut BinDecoder::new(&wire)).unwrap();
            assert_eq!(name_text(&decoded), text, "octet {b} on the wire");
            assert_eq!(WireName::from_name(&again).as_bytes(), wire.as_slice(), "octet {b}");
        }
    }

    #[test]
    fn ddd_escapes_are_decimal() {
        assert_eq!(labels_of(&parse_name("\\065b.test.", "n").unwrap())[0], b"ab");
        assert_eq!(labels_of(&parse_name("\\115ub.test.", "n").unwrap())[0], b"sub");
        assert_eq!(labels_of(&parse_name("\\097.test.", "n").unwrap())[0], b"a");
        assert_eq!(labels_of(&parse_name("\\000\\255.test.", "n").unwrap())[0], [0, 255]);
        assert!(parse_name("\\256.test.", "n").unwrap_err().message.contains("255"));
        assert!(parse_name("\\25.test.", "n").unwrap_err().message.contains("three"));
        assert!(parse_name("a\\", "n").unwrap_err().message.contains("backslash"));
    }

    #[test]
    fn any_octet_names_are_accepted_and_print_canonically() {
        for (text, canonical) in [
            ("a_b.example.com", "a_b.example.com."),
            ("*x.example.com.", "*x.example.com."),
            ("sp\\032ace.example.com.", "sp\\032ace.example.com."),
            ("sp\\ ace.example.com.", "sp\\032ace.example.com."),
            ("bin\\200byte.example.com.", "bin\\200byte.example.com."),
            ("dot\\.ted.example.com.", "dot\\.ted.example.com."),
            ("dot\\046ted.example.com.", "dot\\.ted.example.com."),
            ("\\@\\$\\(\\)\\;\\\"\\\\.example.com.", "\\@\\$\\(\\)\\;\\\"\\\\.example.com."),
            ("\\065\\066c.EXAMPLE.com", "abc.example.com."),
            ("tab\\009.example.com.", "tab\\009.example.com."),
            ("\\127\\128.example.com.", "\\127\\128.example.com."),
            (".", "."),
        ] {
            assert_eq!(canonical_text(text, "name").unwrap(), canonical, "{text}");
            assert_eq!(canonical_text(canonical, "name").unwrap(), canonical, "{canonical}");
        }
        assert_eq!(labels_of(&parse_name("dot\\.ted.example.com.", "n").unwrap()).len(), 3);
        assert!(parse_name("*.example.com.", "n").unwrap().is_wildcard());
        assert!(!parse_name("*x.example.com.", "n").unwrap().is_wildcard());
        // Only A–Z are lower-cased: octets above 127 stay as they are.
        assert_eq!(labels_of(&parse_name("\\196.test.", "n").unwrap())[0], [196]);
    }

    #[test]
    fn unclear_characters_are_refused() {
        assert!(parse_name("bücher.test.", "n").unwrap_err().message.contains("punycode"));
        assert!(parse_name("sp ace.test.", "n").unwrap_err().message.contains("\\032"));
        assert!(parse_name(".a.test.", "n").is_err());
    }

    #[test]
    fn limits_count_octets_not_text() {
        let sixty_three = "\\097".repeat(63);
        assert!(parse_name(&format!("{sixty_three}.test."), "n").is_ok());
        let err = parse_name(&format!("{sixty_three}\\097.test."), "rrset.name").unwrap_err();
        assert_eq!(err.field, "rrset.name");
        assert!(err.message.contains("64 octets") && err.message.contains("63"), "{}", err.message);
        // 4 labels of 62 octets: 4 × 63 + 1 = 253 octets, under the limit.
        let long = vec!["a".repeat(62); 4].join(".");
        assert!(parse_name(&long, "n").is_ok());
        assert!(parse_name(&format!("b.{long}"), "n").is_ok());
        assert!(parse_name(&format!("bc.{long}"), "n").unwrap_err().message.contains("256 in wire form"));
    }

    #[test]
    fn relative_names_are_completed_or_refused_when_too_long() {
        let origin = parse_name("example.com.", "n").unwrap();
        assert_eq!(name_text(&parse_relative_name("www", &origin, "n").unwrap()), "www.example.com.");
        assert_eq!(name_text(&parse_relative_name("@", &origin, "n").unwrap()), "example.com.");
        assert_eq!(name_text(&parse_relative_name("x.org.", &origin, "n").unwrap()), "x.org.");
        // Fits alone (244 octets), not once completed (256).
        let relative = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(50));
        assert!(parse_name(&relative, "n").is_ok());
        let err = parse_relative_name(&relative, &origin, "records[0]").unwrap_err();
        assert_eq!(err.field, "records[0]");
        assert!(
            err.message.contains("completed with example.com.") && err.message.contains("255"),
            "{}",
            err.message
        );
    }
}
