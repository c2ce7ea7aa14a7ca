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
    let parsed = RData::try_from_str(rtype, trimmed)
        .map_err(|e| ValidationError::new(field, format!("invalid {rtype} data {trimmed:?}: {e}")))?;
    let rdata = absolutize(parsed, origin);
    // A record must encode, or it could never be served.
    let mut buf = Vec::with_capacity(64);
    let mut encoder = hickory_proto::serialize::binary::BinEncoder::new(&mut buf);
    hickory_proto::serialize::binary::BinEncodable::emit(&rdata, &mut encoder)
        .map_err(|e| ValidationError::new(field, format!("invalid {rtype} data {trimmed:?}: {e}")))?;
    Ok(rdata)
}

/// Makes the names inside record data fully qualified and lower-case.
fn absolutize(rdata: RData, origin: &Name) -> RData {
    use hickory_proto::rr::rdata::{CNAME, MX, NS, PTR, SRV};
    let fix = |name: &Name| -> Name {
        let full = if name.is_fqdn() {
            name.clone()
        } else {
            name.clone().append_domain(origin).unwrap_or_else(|_| name.clone())
        };
        let mut full = full.to_lowercase();
        full.set_fqdn(true);
        full
    };
    match rdata {
        RData::CNAME(CNAME(n)) => RData::CNAME(CNAME(fix(&n))),
        RData::NS(NS(n)) => RData::NS(NS(fix(&n))),
        RData::PTR(PTR(n)) => RData::PTR(PTR(fix(&n))),
        RData::MX(mx) => RData::MX(MX::new(mx.preference, fix(&mx.exchange))),
        RData::SRV(srv) => RData::SRV(SRV::new(srv.priority, srv.weight, srv.port, fix(&srv.target))),
        other => other,
    }
}

/// The canonical presentation text of record data. TXT strings are quoted
/// and escaped (hickory prints them bare, which does not parse back).
pub fn rdata_text(rdata: &RData) -> String {
    match rdata {
        RData::TXT(txt) => {
            txt.txt_data.iter().map(|s| quote_character_string(s)).collect::<Vec<_>>().join(" ")
        }
        // hickory prints value lists with a trailing comma (`alpn=h2,`),
        // which other tools reject.
        RData::SVCB(_) | RData::HTTPS(_) => rdata
            .to_string()
            .split(' ')
            .map(|token| if token.contains('=') { token.trim_end_matches(',') } else { token })
            .collect::<Vec<_>>()
            .join(" "),
        other => other.to_string(),
    }
}

/// A <character-string> in quotes, with `"` and `\` escaped and bytes
/// outside printable ASCII as `\DDD` (RFC 1035 §5.1).
fn quote_character_string(bytes: &[u8]) -> String {
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
}
