//! Record data in presentation format: which types Signpost serves, parsing
//! each record's text into wire data, and the canonical text back.

use hickory_proto::rr::{Name, RData, RecordType};

use crate::ValidationError;

/// The record types a record set may have.
pub const SUPPORTED_TYPES: &[RecordType] = &[
    RecordType::A,
    RecordType::AAAA,
    RecordType::CAA,
    RecordType::CNAME,
    RecordType::DS,
    RecordType::HTTPS,
    RecordType::MX,
    RecordType::NAPTR,
    RecordType::NS,
    RecordType::PTR,
    RecordType::SOA,
    RecordType::SRV,
    RecordType::SSHFP,
    RecordType::SVCB,
    RecordType::TLSA,
    RecordType::TXT,
];

/// Parses a type mnemonic and checks that Signpost serves it.
pub fn parse_type(text: &str, field: &str) -> Result<RecordType, ValidationError> {
    let upper = text.to_ascii_uppercase();
    let rtype: RecordType =
        upper.parse().map_err(|_| ValidationError::new(field, format!("{text:?} is not a record type")))?;
    if !SUPPORTED_TYPES.contains(&rtype) {
        let names: Vec<String> = SUPPORTED_TYPES.iter().map(|t| t.to_string()).collect();
        return Err(ValidationError::new(
            field,
            format!("record type {upper} is not supported; supported: {}", names.join(" ")),
        ));
    }
    Ok(rtype)
}

/// One token of record data in presentation form: the text between
/// whitespace (escapes still in it), or the inside of a quoted string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// The raw text, escapes unresolved, quotes removed.
    pub text: String,
    /// Whether it was written in double quotes.
    pub quoted: bool,
    /// Whether it touches the previous token (no whitespace between), as
    /// the quoted value in `alpn="h2,h3"` does.
    pub glued: bool,
}

/// Splits one line of record data into tokens. A backslash escapes the
/// next character (so `\"` and `\ ` do not end a token); a double quote
/// starts a quoted token, which ends at the next unescaped quote.
pub fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    let mut glued = false;
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            glued = false;
            continue;
        }
        let mut token = String::new();
        if c == '"' {
            chars.next();
            let mut closed = false;
            while let Some(c) = chars.next() {
                match c {
                    '"' => {
                        closed = true;
                        break;
                    }
                    '\\' => {
                        token.push('\\');
                        match chars.next() {
                            Some(next) => token.push(next),
                            None => return Err(format!("{text:?} ends with a lone backslash")),
                        }
                    }
                    c => token.push(c),
                }
            }
            if !closed {
                return Err(format!("unterminated quoted string in {text:?}"));
            }
            tokens.push(Token { text: token, quoted: true, glued });
        } else {
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '"' {
                    break;
                }
                chars.next();
                token.push(c);
                if c == '\\' {
                    match chars.next() {
                        Some(next) => token.push(next),
                        None => return Err(format!("{text:?} ends with a lone backslash")),
                    }
                }
            }
            tokens.push(Token { text: token, quoted: false, glued });
        }
        glued = true;
    }
    Ok(tokens)
}

/// Longest <character-string> in octets (RFC 1035 §3.3).
pub const MAX_CHARACTER_STRING_LEN: usize = 255;

/// Resolves the escapes of a <character-string>'s text: `\DDD` decimal
/// (0–255), `\X` the character X; other characters are their UTF-8 octets.
pub fn character_string_bytes(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.peek() {
                Some(&n) if !n.is_ascii() => {
                    chars.next();
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(n.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(crate::names::unescape(&mut chars, text)?),
            }
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
    Ok(out)
}

/// Parses one record's presentation text for `rtype`. Relative names inside
/// the data are completed with `origin`.
pub fn parse_rdata(
    rtype: RecordType,
    text: &str,
    origin: &Name,
    field: &str,
) -> Result<RData, ValidationError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ValidationError::new(field, "record data must not be empty"));
    }
    if trimmed.contains(['\n', '\r']) {
        return Err(ValidationError::new(field, "record data must be one line"));
    }
    let tokens = tokenize(trimmed).map_err(|m| ValidationError::new(field, m))?;
    parse_rdata_tokens(rtype, &tokens, origin, field)
}

/// Parses record data already split into tokens (zone files tokenize
/// across lines and parentheses themselves).
pub fn parse_rdata_tokens(
    rtype: RecordType,
    tokens: &[Token],
    origin: &Name,
    field: &str,
) -> Result<RData, ValidationError> {
    if tokens.is_empty() {
        return Err(ValidationError::new(field, "record data must not be empty"));
    }
    let mut reader = TokenReader { tokens, next: 0, rtype, origin, field };
    let mut wire = Vec::with_capacity(64);
    match rtype {
        RecordType::CNAME | RecordType::NS | RecordType::PTR => {
            reader.name(&mut wire, "target")?;
        }
        RecordType::MX => {
            reader.u16(&mut wire, "preference")?;
            reader.name(&mut wire, "exchange")?;
        }
        RecordType::SRV => {
            reader.u16(&mut wire, "priority")?;
            reader.u16(&mut wire, "weight")?;
            reader.u16(&mut wire, "port")?;
            reader.name(&mut wire, "target")?;
        }
        RecordType::SOA => {
            reader.name(&mut wire, "mname")?;
            reader.name(&mut wire, "rname")?;
            reader.u32(&mut wire, "serial")?;
            for part in ["refresh", "retry", "expire", "minimum"] {
                let token = reader.bare(part)?;
                let value = parse_ttl(&token.text).map_err(|m| reader.error(format!("{part}: {m}")))?;
                wire.extend_from_slice(&value.to_be_bytes());
            }
        }
        RecordType::TXT => {
            while !reader.done() {
                reader.character_string(&mut wire, "string")?;
            }
        }
        RecordType::NAPTR => {
            reader.u16(&mut wire, "order")?;
            reader.u16(&mut wire, "preference")?;
            reader.character_string(&mut wire, "flags")?;
            reader.character_string(&mut wire, "services")?;
            reader.character_string(&mut wire, "regexp")?;
            reader.name(&mut wire, "replacement")?;
        }
        RecordType::CAA => {
            let flags = reader.bare("flags")?;
            let flags: u8 = flags.text.parse().map_err(|_| reader.error("flags must be 0 to 255"))?;
            let tag = reader.bare("tag")?.text.clone();
            if tag.is_empty() || tag.len() > 15 || !tag.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(reader.error(format!("CAA tag {tag:?} must be 1 to 15 letters or digits")));
            }
            let token = reader.take("value")?;
            let value = character_string_bytes(&token.text).map_err(|m| reader.error(m))?;
            wire.push(flags);
            wire.push(tag.len() as u8);
            wire.extend_from_slice(tag.as_bytes());
            wire.extend_from_slice(&value);
        }
        RecordType::SVCB | RecordType::HTTPS => reader.svcb(&mut wire)?,
        other => {
            // No names and no character-strings: hex, numbers and addresses,
            // which hickory's parser reads exactly.
            if let Some(t) = tokens.iter().find(|t| t.quoted || t.text.contains('\\')) {
                return Err(ValidationError::new(
                    field,
                    format!("invalid {other} data: unexpected {:?}", t.text),
                ));
            }
            if matches!(other, RecordType::A | RecordType::AAAA) && tokens.len() > 1 {
                return Err(ValidationError::new(
                    field,
                    format!("invalid {other} data: unexpected {:?} after the address", tokens[1].text),
                ));
            }
            let joined = tokens.iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ");
            let rdata = RData::try_from_str(other, &joined)
                .map_err(|e| ValidationError::new(field, format!("invalid {other} data {joined:?}: {e}")))?;
            let wire = emit_uncompressed(&rdata)
                .map_err(|e| ValidationError::new(field, format!("invalid {other} data {joined:?}: {e}")))?;
            return decode_exact(other, &wire, field);
        }
    }
    if !reader.done() {
        return Err(reader.error(format!("unexpected {:?} after the record data", tokens[reader.next].text)));
    }
    decode_exact(rtype, &wire, field)
}

/// Walks the tokens of one record, writing wire data.
struct TokenReader<'a> {
    tokens: &'a [Token],
    next: usize,
    rtype: RecordType,
    origin: &'a Name,
    field: &'a str,
}

impl<'a> TokenReader<'a> {
    fn error(&self, message: impl std::fmt::Display) -> ValidationError {
        ValidationError::new(self.field, format!("invalid {} data: {message}", self.rtype))
    }

    fn done(&self) -> bool {
        self.next >= self.tokens.len()
    }

    fn take(&mut self, what: &str) -> Result<&'a Token, ValidationError> {
        let token = self.tokens.get(self.next).ok_or_else(|| self.error(format!("{what} is missing")))?;
        self.next += 1;
        Ok(token)
    }

    fn bare(&mut self, what: &str) -> Result<&'a Token, ValidationError> {
        let token = self.take(what)?;
        if token.quoted {
            return Err(self.error(format!("{what} must not be quoted")));
        }
        Ok(token)
    }

    fn u16(&mut self, wire: &mut Vec<u8>, what: &str) -> Result<(), ValidationError> {
        let token = self.bare(what)?;
        let value: u16 = token
            .text
            .parse()
            .map_err(|_| self.error(format!("{what} {:?} must be 0 to 65535", token.text)))?;
        wire.extend_from_slice(&value.to_be_bytes());
        Ok(())
    }

    fn u32(&mut self, wire: &mut Vec<u8>, what: &str) -> Result<(), ValidationError> {
        let token = self.bare(what)?;
        let value: u32 = token
            .text
            .parse()
            .map_err(|_| self.error(format!("{what} {:?} must be 0 to 4294967295", token.text)))?;
        wire.extend_from_slice(&value.to_be_bytes());
        Ok(())
    }

    fn name(&mut self, wire: &mut Vec<u8>, what: &str) -> Result<Name, ValidationError> {
        let token = self.bare(what)?;
        let name = crate::names::parse_relative_name(&token.text, self.origin, self.field)
            .map_err(|e| self.error(format!("{what}: {}", e.message)))?;
        push_wire_name(wire, &name);
        Ok(name)
    }

    fn character_string(&mut self, wire: &mut Vec<u8>, what: &str) -> Result<(), ValidationError> {
        let index = self.next;
        let token = self.take(what)?;
        let bytes = character_string_bytes(&token.text).map_err(|m| self.error(m))?;
        if bytes.len() > MAX_CHARACTER_STRING_LEN {
            return Err(self.error(format!(
                "{what} {} is {} octets long; the limit is {MAX_CHARACTER_STRING_LEN} (split it into several strings)",
                index + 1,
                bytes.len()
            )));
        }
        wire.push(bytes.len() as u8);
        wire.extend_from_slice(&bytes);
        Ok(())
    }

    /// SVCB/HTTPS (RFC 9460): priority, target, then `key[=value]`s.
    fn svcb(&mut self, wire: &mut Vec<u8>) -> Result<(), ValidationError> {
        self.u16(wire, "priority")?;
        self.name(wire, "target")?;
        let mut params: Vec<(u16, Vec<u8>)> = Vec::new();
        while !self.done() {
            let token = self.bare("parameter")?;
            let (key_text, inline) = match token.text.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (token.text.as_str(), None),
            };
            let key =
                svc_key(key_text).ok_or_else(|| self.error(format!("unknown parameter key {key_text:?}")))?;
            let value_text: Option<String> = match inline {
                Some("") if self.tokens.get(self.next).is_some_and(|t| t.quoted && t.glued) => {
                    self.next += 1;
                    Some(self.tokens[self.next - 1].text.clone())
                }
                Some(v) => Some(v.to_string()),
                None => None,
            };
            let value =
                svc_value(key, value_text.as_deref()).map_err(|m| self.error(format!("{key_text}: {m}")))?;
            if params.iter().any(|(k, _)| *k == key) {
                return Err(self.error(format!("parameter {key_text} appears twice")));
            }
            params.push((key, value));
        }
        // Keys go on the wire in increasing order (RFC 9460 §2.2).
        params.sort_by_key(|(k, _)| *k);
        for (key, value) in params {
            let len = u16::try_from(value.len()).map_err(|_| self.error("parameter value too long"))?;
            wire.extend_from_slice(&key.to_be_bytes());
            wire.extend_from_slice(&len.to_be_bytes());
            wire.extend_from_slice(&value);
        }
        Ok(())
    }
}

const SVC_KEY_NAMES: [&str; 7] =
    ["mandatory", "alpn", "no-default-alpn", "port", "ipv4hint", "ech", "ipv6hint"];

fn svc_key(text: &str) -> Option<u16> {
    let lower = text.to_ascii_lowercase();
    if let Some(i) = SVC_KEY_NAMES.iter().position(|k| *k == lower) {
        return Some(i as u16);
    }
    let digits = lower.strip_prefix("key")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

fn svc_key_text(key: u16) -> String {
    match SVC_KEY_NAMES.get(key as usize) {
        Some(name) => name.to_string(),
        None => format!("key{key}"),
    }
}

/// Splits a value list on unescaped commas, resolving escapes in each item
/// (`\,` is a comma inside an item).
fn value_list(text: &str) -> Result<Vec<Vec<u8>>, String> {
    let mut items = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ',' => items.push(character_string_bytes(&std::mem::take(&mut current))?),
            '\\' => {
                current.push('\\');
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            c => current.push(c),
        }
    }
    items.push(character_string_bytes(&current)?);
    if items.iter().any(Vec::is_empty) {
        return Err("empty item in a value list".to_string());
    }
    Ok(items)
}

fn needs(value: Option<&str>) -> Result<&str, String> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| "a value is required".to_string())
}

fn svc_value(key: u16, value: Option<&str>) -> Result<Vec<u8>, String> {
    let text_items = |v: &str| -> Result<Vec<String>, String> {
        value_list(v)?
            .into_iter()
            .map(|item| String::from_utf8(item).map_err(|_| "not ASCII".to_string()))
            .collect()
    };
    let mut out = Vec::new();
    match key {
        0 => {
            for item in text_items(needs(value)?)? {
                let k = svc_key(&item).ok_or_else(|| format!("unknown key {item:?}"))?;
                out.extend_from_slice(&k.to_be_bytes());
            }
        }
        1 => {
            for item in value_list(needs(value)?)? {
                if std::str::from_utf8(&item).is_err() {
                    return Err("an ALPN id that is not UTF-8 cannot be stored exactly".to_string());
                }
                if item.len() > 255 {
                    return Err("an ALPN id is at most 255 octets".to_string());
                }
                out.push(item.len() as u8);
                out.extend_from_slice(&item);
            }
        }
        2 => {
            if value.is_some() {
                return Err("no-default-alpn takes no value".to_string());
            }
        }
        3 => {
            let port: u16 = needs(value)?.parse().map_err(|_| "port must be 0 to 65535".to_string())?;
            out.extend_from_slice(&port.to_be_bytes());
        }
        4 => {
            for item in text_items(needs(value)?)? {
                let ip: std::net::Ipv4Addr =
                    item.parse().map_err(|_| format!("{item:?} is not an IPv4 address"))?;
                out.extend_from_slice(&ip.octets());
            }
        }
        5 => {
            let bytes = character_string_bytes(needs(value)?)?;
            out = data_encoding::BASE64.decode(&bytes).map_err(|e| format!("ech must be base64: {e}"))?;
        }
        6 => {
            for item in text_items(needs(value)?)? {
                let ip: std::net::Ipv6Addr =
                    item.parse().map_err(|_| format!("{item:?} is not an IPv6 address"))?;
                out.extend_from_slice(&ip.octets());
            }
        }
        _ => {
            if let Some(v) = value {
                out = character_string_bytes(v)?;
            }
        }
    }
    Ok(out)
}

/// Parses a TTL or SOA timer: seconds, or BIND units (`1h30m`, `2d`, `1w`).
pub fn parse_ttl(text: &str) -> Result<u32, String> {
    if let Ok(n) = text.parse::<u32>() {
        return Ok(n);
    }
    let mut total: u64 = 0;
    let mut number: Option<u64> = None;
    for c in text.chars() {
        if let Some(d) = c.to_digit(10) {
            number = Some(number.unwrap_or(0).saturating_mul(10).saturating_add(u64::from(d)));
            continue;
        }
        let unit = match c.to_ascii_lowercase() {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 604_800,
            _ => return Err(format!("{text:?} is not a number of seconds")),
        };
        let n = number.take().ok_or_else(|| format!("{text:?} is not a number of seconds"))?;
        total = total.saturating_add(n.saturating_mul(unit));
    }
    if number.is_some() || text.is_empty() {
        return Err(format!("{text:?} is not a number of seconds"));
    }
    u32::try_from(total).map_err(|_| format!("{text:?} is above 4294967295 seconds"))
}

fn push_wire_name(wire: &mut Vec<u8>, name: &Name) {
    for label in name.iter() {
        wire.push(label.len() as u8);
        wire.extend_from_slice(label);
    }
    wire.push(0);
}

/// Encodes record data without name compression.
fn emit_uncompressed(rdata: &RData) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    use hickory_proto::serialize::binary::{BinEncodable, BinEncoder, NameEncoding};
    let mut buf = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut buf);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    rdata.emit(&mut encoder)?;
    Ok(buf)
}

/// Decodes wire data with hickory and checks that it encodes back to the
/// same octets, so that what is stored is exactly what is served.
fn decode_exact(rtype: RecordType, wire: &[u8], field: &str) -> Result<RData, ValidationError> {
    use hickory_proto::serialize::binary::{BinDecoder, Restrict};
    let len = u16::try_from(wire.len())
        .map_err(|_| ValidationError::new(field, format!("{rtype} data is longer than 65535 octets")))?;
    let mut decoder = BinDecoder::new(wire);
    let rdata = RData::read(&mut decoder, rtype, Restrict::new(len))
        .map_err(|e| ValidationError::new(field, format!("invalid {rtype} data: {e}")))?;
    let again = emit_uncompressed(&rdata)
        .map_err(|e| ValidationError::new(field, format!("invalid {rtype} data: {e}")))?;
    if decoder.index() != wire.len() || again != wire {
        return Err(ValidationError::new(
            field,
            format!("this {rtype} data cannot be stored exactly by Signpost"),
        ));
    }
    Ok(rdata)
}

/// The canonical presentation text of record data, printed from its wire
/// octets: names through [`crate::names::name_text`], character-strings
/// quoted with decimal `\DDD`. [`parse_rdata`] reads it back to the same
/// octets.
pub fn rdata_text(rdata: &RData) -> String {
    let rtype = rdata.record_type();
    let printed = emit_uncompressed(rdata).ok().and_then(|wire| {
        let mut r = WireReader { bytes: &wire, at: 0 };
        let text = print_wire(rtype, &mut r)?;
        (r.at == wire.len()).then_some(text)
    });
    printed.unwrap_or_else(|| rdata.to_string())
}

struct WireReader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl WireReader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn rest(&mut self) -> &[u8] {
        let rest = &self.bytes[self.at..];
        self.at = self.bytes.len();
        rest
    }
    fn done(&self) -> bool {
        self.at >= self.bytes.len()
    }
    fn name(&mut self) -> Option<String> {
        let mut labels: Vec<Vec<u8>> = Vec::new();
        loop {
            let len = self.u8()? as usize;
            if len == 0 {
                break;
            }
            if len > 63 {
                return None;
            }
            labels.push(self.take(len)?.to_vec());
        }
        crate::names::name_from_labels(&labels).ok().map(|n| crate::names::name_text(&n))
    }
    fn character_string(&mut self) -> Option<String> {
        let len = self.u8()? as usize;
        Some(quote_character_string(self.take(len)?))
    }
}

fn print_wire(rtype: RecordType, r: &mut WireReader<'_>) -> Option<String> {
    Some(match rtype {
        RecordType::CNAME | RecordType::NS | RecordType::PTR => r.name()?,
        RecordType::MX => format!("{} {}", r.u16()?, r.name()?),
        RecordType::SRV => format!("{} {} {} {}", r.u16()?, r.u16()?, r.u16()?, r.name()?),
        RecordType::SOA => {
            let (m, n) = (r.name()?, r.name()?);
            format!("{m} {n} {} {} {} {} {}", r.u32()?, r.u32()?, r.u32()?, r.u32()?, r.u32()?)
        }
        RecordType::TXT => {
            let mut parts = Vec::new();
            while !r.done() {
                parts.push(r.character_string()?);
            }
            parts.join(" ")
        }
        RecordType::NAPTR => {
            let (order, pref) = (r.u16()?, r.u16()?);
            let (f, s, re) = (r.character_string()?, r.character_string()?, r.character_string()?);
            format!("{order} {pref} {f} {s} {re} {}", r.name()?)
        }
        RecordType::CAA => {
            let flags = r.u8()?;
            let len = r.u8()? as usize;
            let tag = String::from_utf8(r.take(len)?.to_vec()).ok()?;
            format!("{flags} {tag} {}", quote_character_string(r.rest()))
        }
        RecordType::SVCB | RecordType::HTTPS => {
            let mut out = format!("{} {}", r.u16()?, r.name()?);
            while !r.done() {
                let key = r.u16()?;
                let len = r.u16()? as usize;
                let value = r.take(len)?;
                out.push(' ');
                out.push_str(&svc_param_text(key, value)?);
            }
            out
        }
        _ => return None,
    })
}

/// One SvcParam as `key[=value]`.
fn svc_param_text(key: u16, value: &[u8]) -> Option<String> {
    let name = svc_key_text(key);
    let list = |items: Vec<String>| format!("{name}={}", items.join(","));
    Some(match key {
        0 => list(
            value
                .chunks(2)
                .map(|c| (c.len() == 2).then(|| svc_key_text(u16::from_be_bytes([c[0], c[1]]))))
                .collect::<Option<_>>()?,
        ),
        1 => {
            let mut r = WireReader { bytes: value, at: 0 };
            let mut items = Vec::new();
            while !r.done() {
                let len = r.u8()? as usize;
                items.push(list_item_text(r.take(len)?));
            }
            list(items)
        }
        2 if value.is_empty() => name,
        3 if value.len() == 2 => format!("{name}={}", u16::from_be_bytes([value[0], value[1]])),
        4 if value.len().is_multiple_of(4) => list(
            value.chunks(4).map(|c| std::net::Ipv4Addr::new(c[0], c[1], c[2], c[3]).to_string()).collect(),
        ),
        5 => format!("{name}={}", data_encoding::BASE64.encode(value)),
        6 if value.len().is_multiple_of(16) => list(
            value
                .chunks(16)
                .map(|c| {
                    let mut octets = [0u8; 16];
                    octets.copy_from_slice(c);
                    std::net::Ipv6Addr::from(octets).to_string()
                })
                .collect(),
        ),
        _ if key <= 6 => return None,
        _ if value.is_empty() => name,
        _ => format!("{name}={}", quote_character_string(value)),
    })
}

/// An item of a value list: printable ASCII kept except the characters that
/// separate, quote or escape; every other octet as `\DDD`.
fn list_item_text(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        match b {
            b',' | b'\\' | b'"' | b';' | b'(' | b')' => out.push_str(&format!("\\{b:03}")),
            0x21..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out
}

/// A <character-string> in quotes, with `"` and `\` escaped and octets
/// outside printable ASCII as decimal `\DDD` (RFC 1035 §5.1).
pub fn quote_character_string(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + 2);
    out.push('"');
    for &b in bytes {
        match b {
            b'"' | b'\\' => {
                out.push('\\');
                out.push(b as char);
            }
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\{b:03}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn every_supported_type_parses_and_prints_back() {
        let cases = [
            (RecordType::A, "192.0.2.1"),
            (RecordType::AAAA, "2001:db8::1"),
            (RecordType::CAA, "0 issue \"letsencrypt.org\""),
            (RecordType::CNAME, "target.example.com."),
            (RecordType::DS, "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"),
            (RecordType::HTTPS, "1 . alpn=h2,h3"),
            (RecordType::MX, "10 mail.example.com."),
            (RecordType::NAPTR, "100 10 \"U\" \"E2U+sip\" \"!^.*$!sip:info@example.com!\" ."),
            (RecordType::NS, "ns1.example.com."),
            (RecordType::PTR, "host.example.com."),
            (RecordType::SOA, "ns1.example.com. hostmaster.example.com. 1 7200 900 1209600 300"),
            (RecordType::SRV, "10 5 5060 sip.example.com."),
            (RecordType::SSHFP, "1 1 0123456789abcdef0123456789abcdef01234567"),
            (RecordType::SVCB, "1 svc.example.com. port=8443"),
            (RecordType::TLSA, "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
            (RecordType::TXT, "\"v=spf1 -all\""),
            (RecordType::TXT, "\"two\" \"strings with \\\"quotes\\\" and \\\\ ok\""),
        ];
        for (rtype, text) in cases {
            let rdata =
                parse_rdata(rtype, text, &origin(), "records[0]").unwrap_or_else(|e| panic!("{rtype}: {e}"));
            let printed = rdata_text(&rdata);
            let again = parse_rdata(rtype, &printed, &origin(), "records[0]")
                .unwrap_or_else(|e| panic!("{rtype} reprint {printed:?}: {e}"));
            assert_eq!(rdata, again, "{rtype}: {text} -> {printed}");
        }
    }

    #[test]
    fn svcb_value_lists_print_without_a_trailing_comma() {
        let rdata = parse_rdata(RecordType::HTTPS, "1 . alpn=h2,h3 port=443", &origin(), "r").unwrap();
        assert_eq!(rdata_text(&rdata), "1 . alpn=h2,h3 port=443");
    }

    #[test]
    fn relative_names_are_completed_and_lowercased() {
        let rdata = parse_rdata(RecordType::MX, "10 Mail", &origin(), "r").unwrap();
        assert_eq!(rdata_text(&rdata), "10 mail.example.com.");
    }

    #[test]
    fn bad_data_names_the_field() {
        let err = parse_rdata(RecordType::A, "300.1.1.1", &origin(), "records[2]").unwrap_err();
        assert_eq!(err.field, "records[2]");
        assert!(parse_rdata(RecordType::MX, "mail.example.com.", &origin(), "r").is_err());
        assert!(parse_rdata(RecordType::A, "", &origin(), "r").is_err());
        assert!(parse_type("NOPE", "type").is_err());
        assert!(parse_type("DNAME", "type").unwrap_err().message.contains("not supported"));
        assert_eq!(parse_type("aaaa", "type").unwrap(), RecordType::AAAA);
    }

    fn round_trips(rtype: RecordType, text: &str) -> String {
        let rdata = parse_rdata(rtype, text, &origin(), "records[0]")
            .unwrap_or_else(|e| panic!("{rtype} {text:?}: {e}"));
        let printed = rdata_text(&rdata);
        let again = parse_rdata(rtype, &printed, &origin(), "records[0]")
            .unwrap_or_else(|e| panic!("{rtype} reprint {printed:?}: {e}"));
        assert_eq!(rdata, again, "{rtype}: {text} -> {printed}");
        assert_eq!(rdata_text(&again), printed, "{rtype}: printing is stable");
        let wire = emit_uncompressed(&rdata).unwrap();
        assert_eq!(decode_exact(rtype, &wire, "r").unwrap(), rdata);
        printed
    }

    fn txt_strings(rdata: &RData) -> Vec<Vec<u8>> {
        match rdata {
            RData::TXT(txt) => txt.txt_data.iter().map(|s| s.to_vec()).collect(),
            other => panic!("not TXT: {other:?}"),
        }
    }

    #[test]
    fn every_octet_in_a_txt_string_round_trips() {
        let all: Vec<u8> = (0..=255u8).collect();
        let (first, second) = all.split_at(128);
        let text = format!("{} {}", quote_character_string(first), quote_character_string(second));
        let printed = round_trips(RecordType::TXT, &text);
        assert_eq!(printed, text);
        let rdata = parse_rdata(RecordType::TXT, &printed, &origin(), "r").unwrap();
        assert_eq!(txt_strings(&rdata), [first.to_vec(), second.to_vec()]);
        for b in 0..=255u8 {
            let one = quote_character_string(&[b]);
            let rdata = parse_rdata(RecordType::TXT, &one, &origin(), "r").unwrap();
            assert_eq!(txt_strings(&rdata), [vec![b]], "octet {b}: {one}");
        }
    }

    #[test]
    fn character_strings_read_decimal_escapes_and_any_spelling() {
        let parse = |t: &str| txt_strings(&parse_rdata(RecordType::TXT, t, &origin(), "r").unwrap());
        assert_eq!(parse("\"\\065\""), [b"A".to_vec()]);
        assert_eq!(parse("\\065BC"), [b"ABC".to_vec()]);
        assert_eq!(parse("\"\\200\\255\\000\""), [vec![200, 255, 0]]);
        assert_eq!(parse("\"caf\u{e9}\""), [vec![b'c', b'a', b'f', 0xc3, 0xa9]]);
        assert_eq!(parse("two words"), [b"two".to_vec(), b"words".to_vec()]);
        assert_eq!(parse("\"a\\\"b\" \"\""), [b"a\"b".to_vec(), Vec::new()]);
        assert_eq!(parse("a\\ b"), [b"a b".to_vec()]);
        assert_eq!(
            rdata_text(&parse_rdata(RecordType::TXT, "\"caf\u{e9}\"", &origin(), "r").unwrap()),
            "\"caf\\195\\169\""
        );
        assert!(parse_rdata(RecordType::TXT, "\"\\256\"", &origin(), "r").is_err());
        assert!(parse_rdata(RecordType::TXT, "\"open", &origin(), "r").is_err());
    }

    #[test]
    fn long_strings_are_refused_naming_the_record() {
        let ok = format!("\"{}\"", "x".repeat(255));
        round_trips(RecordType::TXT, &ok);
        let long = format!("\"short\" \"{}\"", "\\200".repeat(256));
        let err = parse_rdata(RecordType::TXT, &long, &origin(), "records[3]").unwrap_err();
        assert_eq!(err.field, "records[3]");
        assert!(
            err.message.contains("string 2 is 256 octets") && err.message.contains("255"),
            "{}",
            err.message
        );
    }

    #[test]
    fn names_in_data_use_the_decimal_parser() {
        assert_eq!(round_trips(RecordType::MX, "10 \\065"), "10 a.example.com.");
        assert_eq!(round_trips(RecordType::CNAME, "bin\\200byte.example.net."), "bin\\200byte.example.net.");
        assert_eq!(round_trips(RecordType::NS, "a_b"), "a_b.example.com.");
        assert_eq!(round_trips(RecordType::SRV, "0 0 0 sp\\032ace.x."), "0 0 0 sp\\032ace.x.");
        assert_eq!(round_trips(RecordType::PTR, "@"), "example.com.");
        assert_eq!(
            round_trips(RecordType::SOA, "ns1 Host\\.Master 1 1h 15m 2w 300"),
            "ns1.example.com. host\\.master.example.com. 1 3600 900 1209600 300"
        );
        assert_eq!(
            round_trips(RecordType::NAPTR, "1 2 \"U\" \"E2U+sip\" \"!^.*$!sip:\\200@x!\" ."),
            "1 2 \"U\" \"E2U+sip\" \"!^.*$!sip:\\200@x!\" ."
        );
        let relative = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(50));
        let err = parse_rdata(RecordType::CNAME, &relative, &origin(), "records[0]").unwrap_err();
        assert_eq!(err.field, "records[0]");
        assert!(err.message.contains("255"), "{}", err.message);
        let label64 = format!("{}.example.com.", "\\097".repeat(64));
        assert!(parse_rdata(RecordType::CNAME, &label64, &origin(), "r").unwrap_err().message.contains("63"));
    }

    #[test]
    fn caa_values_keep_every_octet() {
        assert_eq!(round_trips(RecordType::CAA, "0 issue letsencrypt.org"), "0 issue \"letsencrypt.org\"");
        assert_eq!(
            round_trips(RecordType::CAA, "128 tbs \"\\200\\000\\\"x\""),
            "128 tbs \"\\200\\000\\\"x\""
        );
        assert!(parse_rdata(RecordType::CAA, "0 is-sue \"x\"", &origin(), "r").is_err());
    }

    #[test]
    fn svcb_keys_without_values_round_trip() {
        assert_eq!(
            round_trips(RecordType::HTTPS, "1 . alpn=h2,h3 no-default-alpn"),
            "1 . alpn=h2,h3 no-default-alpn"
        );
        assert_eq!(
            round_trips(RecordType::SVCB, "1 svc key65333 port=53"),
            "1 svc.example.com. port=53 key65333"
        );
        assert_eq!(
            round_trips(RecordType::SVCB, "2 . mandatory=alpn key7=\"a b\\200\" alpn=\"h2\""),
            "2 . mandatory=alpn alpn=h2 key7=\"a b\\200\""
        );
        assert_eq!(
            round_trips(RecordType::HTTPS, "1 . ipv4hint=192.0.2.1,192.0.2.2 ech=AAEC ipv6hint=2001:db8::1"),
            "1 . ipv4hint=192.0.2.1,192.0.2.2 ech=AAEC ipv6hint=2001:db8::1"
        );
        assert_eq!(round_trips(RecordType::HTTPS, "1 . alpn=h\\,2,h3"), "1 . alpn=h\\0442,h3");
        assert!(parse_rdata(RecordType::HTTPS, "1 . no-default-alpn=x", &origin(), "r").is_err());
        assert!(parse_rdata(RecordType::HTTPS, "1 . port=1 port=2", &origin(), "r").is_err());
        assert!(parse_rdata(RecordType::HTTPS, "1 . bogus=1", &origin(), "r").is_err());
    }

    #[test]
    fn printing_is_idempotent_for_every_type() {
        for (rtype, text) in [
            (RecordType::A, "192.0.2.1"),
            (RecordType::AAAA, "2001:db8::1"),
            (RecordType::DS, "60485 5 1 2BB183AF5F22588179A53B0A98631FAD1A292118"),
            (RecordType::SSHFP, "1 1 0123456789abcdef0123456789abcdef01234567"),
            (RecordType::TLSA, "3 1 1 0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"),
        ] {
            round_trips(rtype, text);
        }
        assert!(parse_rdata(RecordType::A, "\"192.0.2.1\"", &origin(), "r").is_err());
        assert!(parse_rdata(RecordType::A, "192.0.2.1 extra", &origin(), "r").is_err());
        assert!(parse_rdata(RecordType::MX, "10 a.example. extra", &origin(), "r").is_err());
    }
}
