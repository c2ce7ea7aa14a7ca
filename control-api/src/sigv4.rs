//! AWS Signature Version 4 verification for Route 53's REST API, as pure
//! functions (no IO). [`parse`] reads the `Authorization` header and the
//! request date, checks the credential scope (any region, service
//! `route53`) and the clock skew (±15 minutes); the caller then looks the
//! access key id up and calls [`verify`] with the secret, which rebuilds the
//! canonical request exactly as botocore does (URI-encoded path with dot
//! segments and empty segments removed, sorted and re-encoded query, the
//! signed headers lower-cased, trimmed and sorted, the hex SHA-256 of the
//! body) and compares signatures in constant time.
//!
//! Errors carry Route 53's codes ([`SigV4Error::code`]), all answered 403.

use std::fmt::Write as _;

use axum::http::HeaderMap;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service a credential scope must name.
pub const SERVICE: &str = "route53";
/// Largest difference between the request's date and the server's clock.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

const ISO_BASIC: &str = "%Y%m%dT%H%M%SZ";

type HmacSha256 = Hmac<Sha256>;

/// Why a request's signature was refused; [`SigV4Error::code`] gives Route
/// 53's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    /// A malformed `Authorization` header or missing parts of it.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not known.
    #[error("The security token included in the request is invalid.")]
    InvalidClientTokenId,
    /// The signature, scope or date does not match the request.
    #[error("{0}")]
    SignatureDoesNotMatch(String),
}

impl SigV4Error {
    /// Route 53's error code.
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::MissingAuthenticationToken => "MissingAuthenticationToken",
            SigV4Error::IncompleteSignature(_) => "IncompleteSignature",
            SigV4Error::InvalidClientTokenId => "InvalidClientTokenId",
            SigV4Error::SignatureDoesNotMatch(_) => "SignatureDoesNotMatch",
        }
    }

    fn mismatch() -> Self {
        SigV4Error::SignatureDoesNotMatch(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
                .into(),
        )
    }
}

/// The parts of a request that its signature covers.
#[derive(Debug, Clone, Copy)]
pub struct RequestParts<'a> {
    /// HTTP method (`GET`).
    pub method: &'a str,
    /// The path as sent on the wire (still percent-encoded).
    pub path: &'a str,
    /// The query string as sent, without `?` (empty: none).
    pub query: &'a str,
    /// The request's headers.
    pub headers: &'a HeaderMap,
    /// The request body.
    pub body: &'a [u8],
}

/// A parsed `Authorization: AWS4-HMAC-SHA256 …` header with the request's
/// date, checked for scope and skew but not yet for its signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedAuth {
    /// The access key id (`AKIA…`).
    pub access_key_id: String,
    /// `YYYYMMDD` of the credential scope.
    pub scope_date: String,
    /// The region the client signed for (any is accepted).
    pub region: String,
    /// The signed header names, lower-case, in the order given.
    pub signed_headers: Vec<String>,
    /// The signature, lower-case hex.
    pub signature: String,
    /// The request time, `YYYYMMDDTHHMMSSZ`.
    pub amz_date: String,
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, SigV4Error> {
    match headers.get(name) {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(Some)
            .map_err(|_| SigV4Error::IncompleteSignature(format!("the {name} header is not visible ASCII"))),
    }
}

/// Reads the `Authorization` header and the date of `headers` and checks the
/// credential scope and that the date is within [`MAX_SKEW`] of `now`.
pub fn parse(headers: &HeaderMap, now: DateTime<Utc>) -> Result<ParsedAuth, SigV4Error> {
    let Some(value) = header_str(headers, "authorization")? else {
        return Err(SigV4Error::MissingAuthenticationToken);
    };
    let value = value.trim();
    let Some(params) = value.strip_prefix(ALGORITHM).filter(|rest| rest.starts_with(' ')) else {
        let scheme = value.split_whitespace().next().unwrap_or("");
        return Err(SigV4Error::IncompleteSignature(format!(
            "Unsupported Authorization Type: {scheme:?}; use {ALGORITHM}"
        )));
    };
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in params.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((key, val)) = part.split_once('=') else {
            return Err(SigV4Error::IncompleteSignature(format!(
                "Authorization header requires each component to be of the form key=value; got {part:?}"
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(SigV4Error::IncompleteSignature(format!(
                    "Authorization header has an unknown component {other:?}"
                )));
            }
        };
        *slot = Some(val.trim());
    }
    let mut missing = Vec::new();
    for (name, present) in [
        ("Credential", credential.is_some()),
        ("SignedHeaders", signed_headers.is_some()),
        ("Signature", signature.is_some()),
    ] {
        if !present {
            missing.push(format!("Authorization header requires '{name}' parameter."));
        }
    }
    let amz_date = match header_str(headers, "x-amz-date")? {
        Some(d) => Some(d.trim().to_owned()),
        None => match header_str(headers, "date")? {
            Some(d) => Some(
                DateTime::parse_from_rfc2822(d.trim())
                    .map_err(|_| {
                        SigV4Error::IncompleteSignature(format!("Date header {d:?} is not an HTTP date"))
                    })?
                    .with_timezone(&Utc)
                    .format(ISO_BASIC)
                    .to_string(),
            ),
            None => None,
        },
    };
    if amz_date.is_none() {
        missing.push(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.".into(),
        );
    }
    let (Some(credential), Some(signed_headers), Some(signature), Some(amz_date)) =
        (credential, signed_headers, signature, amz_date)
    else {
        return Err(SigV4Error::IncompleteSignature(missing.join(" ")));
    };

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, scope_date, region, service, terminator] = scope[..] else {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential should be of the form AccessKeyId/YYYYMMDD/region/{SERVICE}/aws4_request; got {credential:?}"
        )));
    };
    if access_key_id.is_empty() || region.is_empty() {
        return Err(SigV4Error::IncompleteSignature(format!(
            "Credential should name an access key id and a region; got {credential:?}"
        )));
    }
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(SigV4Error::IncompleteSignature("Signature should be 64 hexadecimal digits.".into()));
    }
    let signed_headers: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
    if signed_headers.iter().any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase())) {
        return Err(SigV4Error::IncompleteSignature(
            "SignedHeaders should be lower-case header names separated by ';'.".into(),
        ));
    }
    if !signed_headers.iter().any(|h| h == "host") {
        return Err(SigV4Error::IncompleteSignature(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    let when = NaiveDateTime::parse_from_str(&amz_date, ISO_BASIC)
        .map_err(|_| {
            SigV4Error::IncompleteSignature(format!("X-Amz-Date {amz_date:?} is not YYYYMMDDTHHMMSSZ"))
        })?
        .and_utc();
    if service != SERVICE {
        return Err(SigV4Error::SignatureDoesNotMatch(format!(
            "Credential should be scoped to correct service: '{SERVICE}'."
        )));
    }
    if terminator != "aws4_request" {
        return Err(SigV4Error::SignatureDoesNotMatch(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    if scope_date != &amz_date[..8] {
        return Err(SigV4Error::SignatureDoesNotMatch(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: \
             '{scope_date}' != '{}', from '{amz_date}'.",
            &amz_date[..8]
        )));
    }
    let fmt = |t: DateTime<Utc>| t.format(ISO_BASIC).to_string();
    if when < now - MAX_SKEW {
        return Err(SigV4Error::SignatureDoesNotMatch(format!(
            "Signature expired: {amz_date} is now earlier than {} ({} - 15 min.)",
            fmt(now - MAX_SKEW),
            fmt(now)
        )));
    }
    if when > now + MAX_SKEW {
        return Err(SigV4Error::SignatureDoesNotMatch(format!(
            "Signature not yet current: {amz_date} is still later than {} ({} + 15 min.)",
            fmt(now + MAX_SKEW),
            fmt(now)
        )));
    }
    Ok(ParsedAuth {
        access_key_id: access_key_id.to_owned(),
        scope_date: scope_date.to_owned(),
        region: region.to_owned(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
        amz_date,
    })
}

/// Checks the signature of `request` against `secret` (the access key's
/// secret): [`SigV4Error::SignatureDoesNotMatch`] unless it is the one the
/// client must have computed.
pub fn verify(auth: &ParsedAuth, request: &RequestParts<'_>, secret: &str) -> Result<(), SigV4Error> {
    let body_hash = hex::encode(Sha256::digest(request.body));
    if let Some(claimed) = header_str(request.headers, "x-amz-content-sha256")?
        && !claimed.trim().eq_ignore_ascii_case(&body_hash)
    {
        return Err(SigV4Error::SignatureDoesNotMatch(
            "The provided 'x-amz-content-sha256' header does not match what was computed.".into(),
        ));
    }
    let canonical = canonical_request(request, &auth.signed_headers, &body_hash)?;
    let key = signing_key(secret, &auth.scope_date, &auth.region, SERVICE);
    let to_sign = string_to_sign(&auth.amz_date, &auth.scope_date, &auth.region, SERVICE, &canonical);
    let expected = hex::decode(&auth.signature).map_err(|_| SigV4Error::mismatch())?;
    let mut mac = HmacSha256::new_from_slice(&key).map_err(|_| SigV4Error::mismatch())?;
    mac.update(to_sign.as_bytes());
    mac.verify_slice(&expected).map_err(|_| SigV4Error::mismatch())
}

/// The signature (lower-case hex) a client computes for `request`, signing
/// `signed_headers` (lower-case, sorted) at `amz_date` for `region` and
/// `service`: the signer of tests and tools.
pub fn sign(
    request: &RequestParts<'_>,
    signed_headers: &[&str],
    secret: &str,
    amz_date: &str,
    region: &str,
    service: &str,
) -> Result<String, SigV4Error> {
    let names: Vec<String> = signed_headers.iter().map(|h| (*h).to_owned()).collect();
    let body_hash = hex::encode(Sha256::digest(request.body));
    let canonical = canonical_request(request, &names, &body_hash)?;
    let date = amz_date.get(..8).unwrap_or(amz_date);
    let key = signing_key(secret, date, region, service);
    Ok(hex::encode(hmac(&key, string_to_sign(amz_date, date, region, service, &canonical).as_bytes())))
}

/// The canonical request: method, canonical URI, canonical query, the
/// canonical headers, the signed header list and the payload hash, one a line.
pub fn canonical_request(
    request: &RequestParts<'_>,
    signed_headers: &[String],
    body_hash: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::new();
    out.push_str(request.method);
    out.push('\n');
    out.push_str(&canonical_uri(request.path));
    out.push('\n');
    out.push_str(&canonical_query(request.query));
    out.push('\n');
    let mut names: Vec<&String> = signed_headers.iter().collect();
    names.sort();
    for name in &names {
        let values: Vec<String> = request
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().map(collapse_spaces))
            .collect::<Result<_, _>>()
            .map_err(|_| SigV4Error::mismatch())?;
        if values.is_empty() {
            return Err(SigV4Error::SignatureDoesNotMatch(format!(
                "The signed header {name:?} is not in the request."
            )));
        }
        let _ = writeln!(out, "{name}:{}", values.join(","));
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(body_hash);
    Ok(out)
}

/// Trims a header value and collapses runs of spaces inside it to one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The path with dot segments and empty segments removed, URI-encoded once
/// more (every byte but unreserved characters and `/`), as botocore and AWS
/// do for every service but S3.
pub fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = String::from("/");
    normalized.push_str(&segments.join("/"));
    if path.len() > 1 && path.ends_with('/') && !segments.is_empty() {
        normalized.push('/');
    }
    uri_encode(&normalized, true)
}

/// The query parameters decoded, re-encoded (unreserved characters kept) and
/// sorted by name, then value, joined with `&`.
pub fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (uri_encode(percent_decode(k), false), uri_encode(percent_decode(v), false))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = bytes.get(i + 1..i + 3)
            && let Ok(text) = std::str::from_utf8(hex)
            && let Ok(byte) = u8::from_str_radix(text, 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

fn uri_encode(input: impl AsRef<[u8]>, keep_slash: bool) -> String {
    let mut out = String::new();
    for &b in input.as_ref() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

fn string_to_sign(amz_date: &str, date: &str, region: &str, service: &str, canonical: &str) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length, so new_from_slice cannot fail.
    let mut mac =
        HmacSha256::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request").
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

#[cfg(test)]
mod tests {
    //! Fixed vectors made with botocore 1.44.8 (`SigV4Auth(creds, "route53",
    //! region).add_auth(AWSRequest(...))` with the clock fixed at
    //! 2026-12-02T12:00:00Z); see notes/sigv4.md for the script.

    use axum::http::HeaderValue;
    use chrono::TimeZone;

    use super::*;

    const AKID: &str = "AKIAIOSFODNN7EXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    struct Vector {
        method: &'static str,
        path: &'static str,
        query: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: &'static [u8],
    }

    const CREATE_BODY: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CreateHostedZoneRequest xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\"><Name>example.com.</Name><CallerReference>ref-1</CallerReference></CreateHostedZoneRequest>";

    const LIST_ZONES: Vector = Vector {
        method: "GET",
        path: "/2013-04-01/hostedzone",
        query: "maxitems=10&marker=Z1%2FX&dnsname=example.com.",
        headers: &[
            ("host", "127.0.0.1:8080"),
            ("x-amz-date", "20261202T120000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261202/us-east-1/route53/aws4_request, SignedHeaders=host;x-amz-date, Signature=13607d66659150c76d13d8bcbe876e3e264c98f9d37dc27f1553d6aae82c1aba",
            ),
        ],
        body: b"",
    };

    const CREATE_ZONE: Vector = Vector {
        method: "POST",
        path: "/2013-04-01/hostedzone",
        query: "",
        headers: &[
            ("host", "127.0.0.1:8080"),
            ("content-type", "text/xml"),
            ("x-amz-date", "20261202T120000Z"),
            ("content-length", "209"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261202/eu-central-1/route53/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=8b581730acbe63a64ebce98e5cd5e80bcde846670c9f158374a56a344f56081c",
            ),
        ],
        body: CREATE_BODY,
    };

    const LIST_RRSETS: Vector = Vector {
        method: "GET",
        path: "/2013-04-01/hostedzone/Z123/rrset",
        query: "name=%2A.example.com.&type=A&identifier=a%20b",
        headers: &[
            ("host", "127.0.0.1:8080"),
            ("x-amz-date", "20261202T120000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261202/us-east-1/route53/aws4_request, SignedHeaders=host;x-amz-date, Signature=5e6aa83f364cfdf5f50c471ef8682c0afd7ff4738acc3259e659bc1524afda17",
            ),
        ],
        body: b"",
    };

    const ESCAPED_PATH: Vector = Vector {
        method: "GET",
        path: "/2013-04-01/healthcheck/a%3Ab%20c~d",
        query: "",
        headers: &[
            ("host", "127.0.0.1:8080"),
            ("x-amz-date", "20261202T120000Z"),
            (
                "authorization",
                "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261202/us-west-2/route53/aws4_request, SignedHeaders=host;x-amz-date, Signature=649ce287cac067568fe16c4af01e8dedf4b873b72727d51faee15f93f4096895",
            ),
        ],
        body: b"",
    };

    fn signing_time() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 2, 12, 3, 0).single().expect("a valid time")
    }

    fn headers_of(v: &Vector) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in v.headers {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn check(
        v: &Vector,
        headers: &HeaderMap,
        body: &[u8],
        query: &str,
        secret: &str,
    ) -> Result<(), SigV4Error> {
        let auth = parse(headers, signing_time())?;
        let parts = RequestParts { method: v.method, path: v.path, query, headers, body };
        verify(&auth, &parts, secret)
    }

    fn check_vector(v: &Vector) -> Result<(), SigV4Error> {
        check(v, &headers_of(v), v.body, v.query, SECRET)
    }

    #[test]
    fn botocore_vectors_verify() {
        for v in [&LIST_ZONES, &CREATE_ZONE, &LIST_RRSETS, &ESCAPED_PATH] {
            assert_eq!(check_vector(v), Ok(()), "{} {}?{}", v.method, v.path, v.query);
        }
    }

    #[test]
    fn parse_reads_the_scope() {
        let auth = parse(&headers_of(&CREATE_ZONE), signing_time()).expect("parses");
        assert_eq!(auth.access_key_id, AKID);
        assert_eq!(auth.region, "eu-central-1");
        assert_eq!(auth.scope_date, "20261202");
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-amz-date"]);
    }

    #[test]
    fn canonical_forms_match_botocore() {
        assert_eq!(
            canonical_uri("/2013-04-01/healthcheck/a%3Ab%20c~d"),
            "/2013-04-01/healthcheck/a%253Ab%2520c~d"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/a//b/./c/../d/"), "/a/b/d/");
        assert_eq!(
            canonical_query("maxitems=10&marker=Z1%2FX&dnsname=example.com."),
            "dnsname=example.com.&marker=Z1%2FX&maxitems=10"
        );
        assert_eq!(canonical_query("b=2&a&a=1"), "a=&a=1&b=2");
        assert_eq!(canonical_query("x=a b+c"), "x=a%20b%2Bc");
    }

    #[test]
    fn the_signer_reproduces_botocore() {
        let headers = headers_of(&CREATE_ZONE);
        let parts = RequestParts {
            method: CREATE_ZONE.method,
            path: CREATE_ZONE.path,
            query: CREATE_ZONE.query,
            headers: &headers,
            body: CREATE_ZONE.body,
        };
        let sig = sign(
            &parts,
            &["content-type", "host", "x-amz-date"],
            SECRET,
            "20261202T120000Z",
            "eu-central-1",
            SERVICE,
        )
        .expect("signs");
        assert_eq!(sig, "8b581730acbe63a64ebce98e5cd5e80bcde846670c9f158374a56a344f56081c");
    }

    #[test]
    fn a_changed_body_query_or_header_does_not_match() {
        let v = &CREATE_ZONE;
        let mut body = v.body.to_vec();
        let at = body.len() - 10;
        body[at] = b'X';
        assert_eq!(
            check(v, &headers_of(v), &body, v.query, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );

        let l = &LIST_ZONES;
        let changed = l.query.replace("maxitems=10", "maxitems=11");
        assert_eq!(
            check(l, &headers_of(l), l.body, &changed, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );
        let added = format!("{}&extra=1", l.query);
        assert_eq!(
            check(l, &headers_of(l), l.body, &added, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );

        let mut headers = headers_of(v);
        headers.insert("content-type", HeaderValue::from_static("application/xml"));
        assert_eq!(
            check(v, &headers, v.body, v.query, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );

        let mut headers = headers_of(v);
        headers.insert("host", HeaderValue::from_static("127.0.0.2:8080"));
        assert_eq!(
            check(v, &headers, v.body, v.query, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );
    }

    #[test]
    fn a_changed_date_or_secret_does_not_match() {
        let v = &LIST_RRSETS;
        let mut headers = headers_of(v);
        headers.insert("x-amz-date", HeaderValue::from_static("20261202T120001Z"));
        assert_eq!(
            check(v, &headers, v.body, v.query, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );
        let wrong = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEz";
        assert_eq!(
            check(v, &headers_of(v), v.body, v.query, wrong).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );
        // Unsigned content-sha256 that disagrees with the body.
        let mut headers = headers_of(v);
        headers.insert("x-amz-content-sha256", HeaderValue::from_static("00"));
        assert_eq!(
            check(v, &headers, v.body, v.query, SECRET).map_err(|e| e.code()),
            Err("SignatureDoesNotMatch")
        );
    }

    #[test]
    fn the_wrong_service_is_refused() {
        let v = &LIST_ZONES;
        let mut headers = headers_of(v);
        let auth = v.headers[2].1.replace("/route53/", "/ec2/");
        headers.insert("authorization", HeaderValue::from_str(&auth).expect("ascii"));
        let err = check(v, &headers, v.body, v.query, SECRET).expect_err("refused");
        assert_eq!(err.code(), "SignatureDoesNotMatch");
        assert_eq!(err.to_string(), "Credential should be scoped to correct service: 'route53'.");
    }

    #[test]
    fn skew_beyond_fifteen_minutes_is_refused() {
        let headers = headers_of(&LIST_ZONES);
        let signed = Utc.with_ymd_and_hms(2026, 12, 2, 12, 0, 0).single().expect("time");
        assert!(parse(&headers, signed + TimeDelta::minutes(15)).is_ok());
        assert!(parse(&headers, signed - TimeDelta::minutes(15)).is_ok());
        let late =
            parse(&headers, signed + TimeDelta::minutes(15) + TimeDelta::seconds(1)).expect_err("stale");
        assert_eq!(late.code(), "SignatureDoesNotMatch");
        assert_eq!(
            late.to_string(),
            "Signature expired: 20261202T120000Z is now earlier than 20261202T120001Z (20261202T121501Z - 15 min.)"
        );
        let early = parse(&headers, signed - TimeDelta::minutes(16)).expect_err("future");
        assert_eq!(early.code(), "SignatureDoesNotMatch");
        assert!(
            early.to_string().starts_with("Signature not yet current: 20261202T120000Z is still later than")
        );
    }

    #[test]
    fn missing_and_malformed_headers() {
        let now = signing_time();
        assert_eq!(parse(&HeaderMap::new(), now), Err(SigV4Error::MissingAuthenticationToken));
        let cases = [
            "Bearer sp_abc",
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/route53/aws4_request, SignedHeaders=host;x-amz-date",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/route53/aws4_request, SignedHeaders=host, Signature=13607d66659150c76d13d8bcbe876e3e264c98f9d37dc27f1553d6aae82c1aba",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/route53/aws4_request, SignedHeaders=x-amz-date, Signature=13607d66659150c76d13d8bcbe876e3e264c98f9d37dc27f1553d6aae82c1aba",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/route53/aws4_request, SignedHeaders=host, Signature=xyz",
            "AWS4-HMAC-SHA256 Credential=AKID/20261202/us-east-1/route53/aws4_request SignedHeaders=host",
        ];
        for case in cases {
            let mut headers = HeaderMap::new();
            headers.insert("x-amz-date", HeaderValue::from_static("20261202T120000Z"));
            headers.insert("authorization", HeaderValue::from_str(case).expect("ascii"));
            assert_eq!(parse(&headers, now).map_err(|e| e.code()), Err("IncompleteSignature"), "{case}");
        }
        // No date header at all.
        let mut headers = headers_of(&LIST_ZONES);
        headers.remove("x-amz-date");
        assert_eq!(parse(&headers, now).map_err(|e| e.code()), Err("IncompleteSignature"));
    }

    #[test]
    fn a_date_header_may_stand_in_for_x_amz_date() {
        let mut headers = headers_of(&LIST_ZONES);
        headers.remove("x-amz-date");
        headers.insert("date", HeaderValue::from_static("Wed, 02 Dec 2026 12:00:00 GMT"));
        let auth = parse(&headers, signing_time()).expect("parses");
        assert_eq!(auth.amz_date, "20261202T120000Z");
    }
}
