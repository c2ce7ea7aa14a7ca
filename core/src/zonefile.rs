//! RFC 1035 zone-file text: parsing a file into record sets, and rendering a
//! zone's record sets back into a file that `named-checkzone` accepts.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use hickory_proto::rr::{Name, RecordType};

use crate::ValidationError;
use crate::model::RecordSet;
use crate::names::{name_text, parse_relative_name};
use crate::rdata::{Token, parse_rdata_tokens, parse_ttl, parse_type, rdata_text};
use crate::validate::validate_record_set;

/// A zone file read into record sets.
#[derive(Debug, Clone)]
pub struct ParsedZoneFile {
    /// The zone's origin.
    pub origin: Name,
    /// Its record sets, canonical, one per name and type.
    pub rrsets: Vec<RecordSet>,
}

/// A token of a zone file and where it starts (1-based line and column).
#[derive(Debug, Clone)]
struct Placed {
    token: Token,
    line: usize,
    column: usize,
}

/// One logical entry: a line, or several joined by parentheses.
#[derive(Debug)]
struct Entry {
    /// The line began with blank space: the owner is the previous one.
    indented: bool,
    tokens: Vec<Placed>,
}

fn at(line: usize, message: impl std::fmt::Display) -> ValidationError {
    ValidationError::new("zonefile", format!("line {line}: {message}"))
}

/// Splits zone-file text into entries (RFC 1035 §5.1): `;` comments,
/// parentheses joining lines, quoted strings, backslash escapes.
fn entries(text: &str) -> Result<Vec<Entry>, ValidationError> {
    let mut out = Vec::new();
    let mut current: Option<Entry> = None;
    let mut depth = 0usize;
    let mut open_paren_line = 0;
    for (index, raw_line) in text.split('\n').enumerate() {
        let line_no = index + 1;
        let line = raw_line.strip_suffix('\r').unwrap_or(raw_line);
        if depth == 0 {
            if let Some(entry) = current.take()
                && !entry.tokens.is_empty()
            {
                out.push(entry);
            }
            current = Some(Entry { indented: line.starts_with([' ', '\t']), tokens: Vec::new() });
        }
        let entry = current.as_mut().expect("an entry is open");
        let chars: Vec<(usize, char)> = line.char_indices().collect();
        let mut i = 0;
        let mut glued = false;
        while i < chars.len() {
            let (byte_at, c) = chars[i];
            let column = line[..byte_at].chars().count() + 1;
            match c {
                ' ' | '\t' => {
                    glued = false;
                    i += 1;
                }
                ';' => break,
                '(' => {
                    if depth == 0 {
                        open_paren_line = line_no;
                    }
                    depth += 1;
                    glued = false;
                    i += 1;
                }
                ')' => {
                    if depth == 0 {
                        return Err(at(line_no, format!("column {column}: ')' without '('")));
                    }
                    depth -= 1;
                    glued = false;
                    i += 1;
                }
                '"' => {
                    let mut token = String::new();
                    i += 1;
                    let mut closed = false;
                    while i < chars.len() {
                        let c = chars[i].1;
                        i += 1;
                        match c {
                            '"' => {
                                closed = true;
                                break;
                            }
                            '\\' if i < chars.len() => {
                                token.push('\\');
                                token.push(chars[i].1);
                                i += 1;
                            }
                            c => token.push(c),
                        }
                    }
                    if !closed {
                        return Err(at(line_no, format!("column {column}: unterminated quoted string")));
                    }
                    entry.tokens.push(Placed {
                        token: Token { text: token, quoted: true, glued },
                        line: line_no,
                        column,
                    });
                    glued = true;
                }
                c if c.is_control() => {
                    return Err(at(
                        line_no,
                        format!("column {column}: control character {c:?}; write it as \\{:03}", c as u32),
                    ));
                }
                _ => {
                    let mut token = String::new();
                    while i < chars.len() {
                        let c = chars[i].1;
                        if matches!(c, ' ' | '\t' | ';' | '(' | ')' | '"') {
                            break;
                        }
                        token.push(c);
                        i += 1;
                        if c == '\\' {
                            let Some(&(_, next)) = chars.get(i) else {
                                return Err(at(
                                    line_no,
                                    format!("column {column}: a lone backslash ends the line"),
                                ));
                            };
                            token.push(next);
                            i += 1;
                        }
                    }
                    entry.tokens.push(Placed {
                        token: Token { text: token, quoted: false, glued },
                        line: line_no,
                        column,
                    });
                    glued = true;
                }
            }
        }
    }
    if depth > 0 {
        return Err(at(open_paren_line, "'(' is never closed"));
    }
    if let Some(entry) = current
        && !entry.tokens.is_empty()
    {
        out.push(entry);
    }
    Ok(out)
}

/// A record set being gathered, with the line of its first record.
struct Gathered {
    line: usize,
    rrset: RecordSet,
}

/// Parses zone-file text. `origin` is used when the file has no `$ORIGIN`
/// (the zone's origin is the first `$ORIGIN`, else `origin`); names and
/// data follow RFC 1035 §5.1 with decimal `\DDD`. Errors name the line
/// (and column). `$INCLUDE` is refused: a zone file must stand alone.
pub fn parse_zone_file(text: &str, origin: Option<&Name>) -> Result<ParsedZoneFile, ValidationError> {
    let entries = entries(text)?;
    let mut zone_origin: Option<Name> = None;
    let mut current_origin: Option<Name> = origin.map(Name::to_lowercase);
    let mut default_ttl: Option<u32> = None;
    let mut last_ttl: Option<u32> = None;
    let mut soa_minimum: Option<u32> = None;
    let mut owner: Option<Name> = None;
    let mut by_key: BTreeMap<(String, String), Gathered> = BTreeMap::new();
    let mut seen_record = false;
    for entry in &entries {
        let first = &entry.tokens[0];
        let line = first.line;
        if !entry.indented && !first.token.quoted && first.token.text.starts_with('$') {
            let directive = first.token.text.to_ascii_uppercase();
            let arg = entry.tokens.get(1);
            match directive.as_str() {
                "$INCLUDE" => {
                    return Err(at(line, "$INCLUDE is not supported; inline the included file"));
                }
                "$ORIGIN" => {
                    let arg = arg.ok_or_else(|| at(line, "$ORIGIN needs a name"))?;
                    let name = match &current_origin {
                        Some(o) => parse_relative_name(&arg.token.text, o, "$ORIGIN"),
                        None => crate::names::parse_name(&arg.token.text, "$ORIGIN"),
                    }
                    .map_err(|e| at(line, e.message))?;
                    if zone_origin.is_none() && !seen_record {
                        zone_origin = Some(name.clone());
                    }
                    current_origin = Some(name);
                }
                "$TTL" => {
                    let arg = arg.ok_or_else(|| at(line, "$TTL needs a value"))?;
                    default_ttl = Some(parse_ttl(&arg.token.text).map_err(|m| at(line, m))?);
                }
                other => return Err(at(line, format!("the directive {other} is not supported"))),
            }
            if let Some(extra) = entry.tokens.get(2) {
                return Err(at(
                    extra.line,
                    format!("column {}: unexpected {:?}", extra.column, extra.token.text),
                ));
            }
            continue;
        }
        seen_record = true;
        let mut tokens = entry.tokens.iter().peekable();
        let record_owner = if entry.indented {
            owner.clone().ok_or_else(|| at(line, "the first record needs an owner name"))?
        } else {
            let t = tokens.next().expect("an entry has a token");
            if t.token.quoted {
                return Err(at(line, format!("column {}: an owner name cannot be quoted", t.column)));
            }
            let origin = current_origin
                .as_ref()
                .ok_or_else(|| at(line, "relative name with no origin: add $ORIGIN or give the zone name"))?;
            parse_relative_name(&t.token.text, origin, "name")
                .map_err(|e| at(line, format!("column {}: {}", t.column, e.message)))?
        };
        owner = Some(record_owner.clone());
        let mut ttl: Option<u32> = None;
        let mut class_seen = false;
        let rtype = loop {
            let t = tokens.next().ok_or_else(|| at(line, "a record type is missing"))?;
            let text = t.token.text.as_str();
            if !t.token.quoted && ttl.is_none() && text.starts_with(|c: char| c.is_ascii_digit()) {
                ttl = Some(parse_ttl(text).map_err(|m| at(t.line, format!("column {}: {m}", t.column)))?);
                continue;
            }
            if !t.token.quoted
                && !class_seen
                && ["IN", "CH", "HS", "CS", "ANY"].iter().any(|c| c.eq_ignore_ascii_case(text))
            {
                if !text.eq_ignore_ascii_case("IN") {
                    return Err(at(t.line, format!("column {}: only class IN is supported", t.column)));
                }
                class_seen = true;
                continue;
            }
            break parse_type(text, "type")
                .map_err(|e| at(t.line, format!("column {}: {}", t.column, e.message)))?;
        };
        let placed: Vec<&Placed> = tokens.collect();
        let data: Vec<Token> = placed.iter().map(|p| p.token.clone()).collect();
        let origin = current_origin.clone().unwrap_or_else(|| record_owner.clone());
        let rdata = parse_rdata_tokens(rtype, &data, &origin, "data").map_err(|e| match placed.first() {
            // The data's first token: where the record data begins.
            Some(first) => at(first.line, format!("column {}: {}", first.column, e.message)),
            None => at(line, e.message),
        })?;
        if let hickory_proto::rr::RData::SOA(soa) = &rdata {
            soa_minimum = Some(soa.minimum);
        }
        let ttl = match ttl.or(default_ttl).or(last_ttl).or(soa_minimum) {
            Some(ttl) => ttl,
            None => return Err(at(line, "no TTL: give the record one or add $TTL")),
        };
        last_ttl = Some(ttl);
        let name = name_text(&record_owner);
        let entry = by_key.entry((name.clone(), rtype.to_string())).or_insert_with(|| Gathered {
            line,
            rrset: RecordSet { name, rtype: rtype.to_string(), ttl: Some(ttl), ..RecordSet::default() },
        });
        entry.rrset.ttl = Some(entry.rrset.ttl.unwrap_or(ttl).min(ttl));
        entry.rrset.records.push(rdata_text(&rdata));
    }
    let origin = zone_origin
        .or(current_origin)
        .ok_or_else(|| ValidationError::new("zonefile", "the file has no $ORIGIN; give the zone name"))?;
    let mut gathered: Vec<Gathered> = by_key.into_values().collect();
    gathered.sort_by_key(|g| g.line);
    let mut rrsets = Vec::with_capacity(gathered.len());
    for g in gathered {
        let parsed = validate_record_set(&origin, &g.rrset).map_err(|e| {
            at(g.line, format!("{} {}: {}: {}", g.rrset.name, g.rrset.rtype, e.field, e.message))
        })?;
        rrsets.push(parsed.canonical);
    }
    rrsets.sort_by(|a, b| (&a.name, &a.rtype).cmp(&(&b.name, &b.rtype)));
    Ok(ParsedZoneFile { origin, rrsets })
}

/// Orders record sets the way Route 53 lists them: by name with its labels
/// reversed (so a zone's apex comes first and children follow their
/// parents), then SOA and NS first, then by type, then by set identifier.
pub fn route53_order(a: &RecordSet, b: &RecordSet) -> std::cmp::Ordering {
    /// The labels of canonical text, last first (dots escaped as `\.` do
    /// not split).
    fn reversed(name: &str) -> Vec<&str> {
        let mut labels = Vec::new();
        let mut start = 0;
        let mut escaped = false;
        for (i, b) in name.bytes().enumerate() {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'.' => {
                    labels.push(&name[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        if start < name.len() {
            labels.push(&name[start..]);
        }
        labels.reverse();
        labels
    }
    fn type_rank(t: &str) -> (u8, &str) {
        match t {
            "SOA" => (0, t),
            "NS" => (1, t),
            _ => (2, t),
        }
    }
    reversed(&a.name)
        .cmp(&reversed(&b.name))
        .then_with(|| type_rank(&a.rtype).cmp(&type_rank(&b.rtype)))
        .then_with(|| a.set_identifier.cmp(&b.set_identifier))
}

/// Renders a zone as RFC 1035 text. The SOA carries `serial`. Record sets a
/// zone file cannot express (alias and routing-policy sets) are written as
/// comments so the file stays loadable elsewhere.
pub fn render_zone_file(origin: &Name, serial: u32, rrsets: &[RecordSet]) -> String {
    let mut sorted: Vec<&RecordSet> = rrsets.iter().collect();
    sorted.sort_by(|a, b| route53_order(a, b));
    let mut out = String::new();
    let _ = writeln!(out, "$ORIGIN {}", name_text(origin));
    for rrset in sorted {
        let plain = rrset.alias_target.is_none() && rrset.set_identifier.is_none();
        let prefix = if plain { "" } else { "; " };
        if let Some(alias) = &rrset.alias_target {
            let _ = writeln!(
                out,
                "; {} ALIAS {} -> {} (evaluateTargetHealth={})",
                rrset.name, rrset.rtype, alias.name, alias.evaluate_target_health
            );
            continue;
        }
        if let Some(id) = &rrset.set_identifier {
            let _ = writeln!(out, "; routing policy set {id:?}: {}", serde_like_policy(rrset));
        }
        let ttl = rrset.ttl.unwrap_or(0);
        for record in &rrset.records {
            let data = if rrset.rtype == RecordType::SOA.to_string() {
                with_serial(record, serial)
            } else {
                record.clone()
            };
            let _ = writeln!(out, "{prefix}{}\t{}\tIN\t{}\t{}", rrset.name, ttl, rrset.rtype, data);
        }
    }
    out
}

fn serde_like_policy(rrset: &RecordSet) -> String {
    match rrset.policy() {
        Some(kind) => format!("{kind:?}"),
        None => "none".to_string(),
    }
}

/// Replaces the serial (third field) of SOA presentation text.
pub fn with_serial(soa_text: &str, serial: u32) -> String {
    let mut fields: Vec<String> = soa_text.split_whitespace().map(str::to_string).collect();
    if fields.len() == 7 {
        fields[2] = serial.to_string();
    }
    fields.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZONE: &str = "$ORIGIN example.com.\n$TTL 300\n\
@ IN SOA ns1 hostmaster 1 7200 900 1209600 60\n\
@ IN NS ns1\n\
ns1 IN A 192.0.2.53\n\
www 60 IN A 192.0.2.1\n\
www 60 IN A 192.0.2.2\n\
mail IN MX 10 mx.example.net.\n\
txt IN TXT \"hello world\"\n";

    #[test]
    fn parses_and_renders_round_trip() {
        let parsed = parse_zone_file(ZONE, None).unwrap();
        assert_eq!(parsed.origin.to_ascii(), "example.com.");
        let www = parsed.rrsets.iter().find(|r| r.name == "www.example.com.").unwrap();
        assert_eq!(www.ttl, Some(60));
        assert_eq!(www.records.len(), 2);
        let text = render_zone_file(&parsed.origin, 42, &parsed.rrsets);
        assert!(text.contains("ns1.example.com. hostmaster.example.com. 42 7200"), "{text}");
        let again = parse_zone_file(&text, None).unwrap();
        let mut a = parsed.rrsets.clone();
        let mut b = again.rrsets.clone();
        for r in a.iter_mut().chain(b.iter_mut()) {
            if r.rtype == "SOA" {
                r.records = vec![with_serial(&r.records[0], 0)];
            }
        }
        assert_eq!(a, b);
    }

    #[test]
    fn include_is_refused_and_garbage_is_an_error() {
        assert!(parse_zone_file("$INCLUDE /etc/passwd\n", None).unwrap_err().message.contains("$INCLUDE"));
        assert!(parse_zone_file("@ IN A not-an-address\n", Some(&Name::from_ascii("x.").unwrap())).is_err());
    }

    #[test]
    fn route53_order_puts_apex_and_parents_first() {
        let mut sets = [
            RecordSet::simple("b.example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("a.b.example.com.", "A", 1, &["192.0.2.1"]),
            RecordSet::simple("example.com.", "NS", 1, &["ns."]),
            RecordSet::simple("example.com.", "SOA", 1, &["x"]),
            RecordSet::simple("a.example.com.", "TXT", 1, &["x"]),
            RecordSet::simple("a.example.com.", "A", 1, &["192.0.2.1"]),
        ];
        sets.sort_by(route53_order);
        let keys: Vec<String> = sets.iter().map(|s| format!("{} {}", s.name, s.rtype)).collect();
        assert_eq!(
            keys,
            [
                "example.com. SOA",
                "example.com. NS",
                "a.example.com. A",
                "a.example.com. TXT",
                "b.example.com. A",
                "a.b.example.com. A"
            ]
        );
    }

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    #[test]
    fn errors_name_the_line_and_column() {
        let text =
            "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n\nbad IN A 300.1.1.1\n";
        let err = parse_zone_file(text, None).unwrap_err();
        assert_eq!(err.field, "zonefile");
        assert!(err.message.starts_with("line 6: column 10: invalid A data"), "{}", err.message);
        let err =
            parse_zone_file("$ORIGIN example.com.\n$TTL 1\nok A 192.0.2.1\nx IN NOPE 1\n", None).unwrap_err();
        assert!(err.message.starts_with("line 4: column 6: "), "{}", err.message);
        let err = parse_zone_file("$ORIGIN example.com.\n$TTL 1\nt TXT \"open\n", None).unwrap_err();
        assert!(err.message.starts_with("line 3: column 7: unterminated"), "{}", err.message);
        let err = parse_zone_file("$ORIGIN example.com.\n$TTL 1\n\nt TXT \"\\256\"\n", None).unwrap_err();
        assert!(err.message.starts_with("line 4: ") && err.message.contains("255"), "{}", err.message);
        let err = parse_zone_file("$ORIGIN example.com.\n@ 1 SOA a b 1 2 3 4 5\na 1 CH A 192.0.2.1\n", None)
            .unwrap_err();
        assert!(err.message.contains("line 3") && err.message.contains("class IN"), "{}", err.message);
        let long = format!("{}.{}", vec!["a".repeat(63); 3].join("."), "b".repeat(50));
        let err = parse_zone_file(&format!("$ORIGIN example.com.\n$TTL 1\n{long} A 192.0.2.1\n"), None)
            .unwrap_err();
        assert!(
            err.message.starts_with("line 3: column 1: ") && err.message.contains("255"),
            "{}",
            err.message
        );
        let err = parse_zone_file("$TTL 1\n$INCLUDE other.zone\n", Some(&origin())).unwrap_err();
        assert!(err.message.starts_with("line 2: $INCLUDE"), "{}", err.message);
    }

    #[test]
    fn parentheses_comments_owners_and_escapes() {
        let text = "$ORIGIN Example.COM.\n$TTL 1h\n\
@ IN SOA ns1 hostmaster ( 1 ; serial\n  7200 900\n  1209600 60 )\n  IN NS ns1 ; same owner\n\
a_b 60 IN TXT \"semi;colon (paren)\" \\065\n\
*x IN A 192.0.2.1\n\
* IN A 192.0.2.2\n\
sp\\032ace IN A 192.0.2.3\n\
bin\\200byte IN TXT \"\\200\\255\"\n\
svc IN HTTPS 1 . alpn=\"h2,h3\" no-default-alpn\n\
$ORIGIN sub\n\
www IN CNAME @\n";
        let parsed = parse_zone_file(text, None).unwrap();
        assert_eq!(name_text(&parsed.origin), "example.com.");
        let find = |n: &str, t: &str| parsed.rrsets.iter().find(|r| r.name == n && r.rtype == t).cloned();
        assert_eq!(
            find("example.com.", "NS").unwrap_or_else(|| panic!("{:?}", parsed.rrsets)).records,
            ["ns1.example.com."]
        );
        assert_eq!(find("example.com.", "SOA").unwrap().ttl, Some(3600));
        assert_eq!(find("a_b.example.com.", "TXT").unwrap().records, ["\"semi;colon (paren)\" \"A\""]);
        assert!(find("*x.example.com.", "A").is_some() && find("*.example.com.", "A").is_some());
        assert!(find("sp\\032ace.example.com.", "A").is_some());
        assert_eq!(find("bin\\200byte.example.com.", "TXT").unwrap().records, ["\"\\200\\255\""]);
        assert_eq!(find("svc.example.com.", "HTTPS").unwrap().records, ["1 . alpn=h2,h3 no-default-alpn"]);
        assert_eq!(find("www.sub.example.com.", "CNAME").unwrap().records, ["sub.example.com."]);
        let rendered = render_zone_file(&parsed.origin, 1, &parsed.rrsets);
        let again = parse_zone_file(&rendered, None).unwrap();
        assert_eq!(again.rrsets, parsed.rrsets);
        assert_eq!(render_zone_file(&again.origin, 1, &again.rrsets), rendered);
    }

    #[test]
    fn every_octet_in_owner_names_and_txt_round_trips() {
        use crate::names::{label_text, parse_name};
        use crate::rdata::quote_character_string;
        let mut text = String::from("$ORIGIN example.com.\n$TTL 60\n@ IN SOA ns1 h 1 2 3 4 5\n@ IN NS ns1\n");
        let mut expected = Vec::new();
        for chunk in 0..8u8 {
            let label: Vec<u8> = (chunk * 32..=chunk * 32 + 31).collect();
            let owner = format!("{}.o{chunk}", label_text(&label));
            let strings: Vec<u8> = (0..=255u8).collect();
            let txt = format!(
                "{} {}",
                quote_character_string(&strings[..200]),
                quote_character_string(&strings[200..])
            );
            text.push_str(&format!("{owner} IN TXT {txt}\n"));
            expected.push((label.to_ascii_lowercase(), chunk, txt));
        }
        let parsed = parse_zone_file(&text, None).unwrap();
        for (label, chunk, txt) in &expected {
            let name = crate::names::name_from_labels(&[
                label.clone(),
                format!("o{chunk}").into_bytes(),
                b"example".to_vec(),
                b"com".to_vec(),
            ])
            .unwrap();
            let key = name_text(&name);
            let set = parsed.rrsets.iter().find(|r| r.name == key).unwrap_or_else(|| panic!("{key} missing"));
            assert_eq!(&set.records, std::slice::from_ref(txt));
            assert_eq!(parse_name(&set.name, "n").unwrap().iter().next().unwrap(), label.as_slice());
        }
        let rendered = render_zone_file(&parsed.origin, 1, &parsed.rrsets);
        let again = parse_zone_file(&rendered, None).unwrap();
        assert_eq!(again.rrsets, parsed.rrsets);
        assert_eq!(render_zone_file(&again.origin, 1, &again.rrsets), rendered);
    }
}
