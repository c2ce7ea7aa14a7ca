//! Request extractors that fail with the API's JSON errors: a JSON body
//! (415 unless sent as `application/json`; 400 unless it is one JSON
//! object; 400 naming the field for malformed JSON and wrong types, never
//! axum's plain-text 422; 413 over the bound), a text body (zone files, any
//! content type), query parameters and the `{id}` path parameter.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use crate::ApiState;
use crate::error::ApiError;

/// A JSON request body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// A UTF-8 text request body (zone files).
#[derive(Debug)]
pub struct TextBody(pub String);

/// Query parameters (unknown ones are ignored).
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

/// The `{id}` path parameter.
#[derive(Debug)]
pub struct IdPath(pub String);

/// Reads the whole body within the configured bound.
async fn read_body(req: Request, state: &ApiState) -> Result<Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    // Refuse a declared oversize body before reading it (a client that sent
    // `Expect: 100-continue` then never sends it).
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::too_large(limit));
    }
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(limit)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", rejection.body_text())
        }
    })
}

/// Parses JSON, naming the failing field and the reason.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = match serde_path_to_error::deserialize(&mut de) {
        Ok(value) => value,
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            return Err(match inner.classify() {
                serde_json::error::Category::Data => {
                    let mut field = if path == "." { String::new() } else { path };
                    // A missing field is named, not just its parent (the path of an
                    // unknown field already ends with it).
                    if let Some(name) = named_field(&inner.to_string()) {
                        field = if field.is_empty() { name } else { format!("{field}.{name}") };
                    }
                    ApiError::invalid(field, format!("wrong shape: {inner}"))
                }
                _ => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "MalformedJson",
                    format!("malformed JSON: {inner}"),
                ),
            });
        }
    };
    de.end().map_err(|e| {
        ApiError::new(StatusCode::BAD_REQUEST, "MalformedJson", format!("malformed JSON: {e}"))
    })?;
    Ok(value)
}

/// The field a "missing field `x`" message is about.
fn named_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split_once('`').map(|(name, _)| name.to_string()).filter(|name| !name.is_empty())
}

/// 415 unless the request says its body is JSON (`application/json`, any
/// parameters, any case).
fn require_json_content_type(req: &Request) -> Result<(), ApiError> {
    let Some(value) = req.headers().get(axum::http::header::CONTENT_TYPE) else {
        return Err(ApiError::unsupported_media_type("none"));
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(text))
    }
}

/// Parses a request body: one JSON object (serde would also read a struct
/// from an array, so anything else is refused first).
pub fn parse_json_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        // Malformed JSON says where; well-formed JSON that is not an object
        // says what is wanted.
        parse_json::<serde::de::IgnoredAny>(bytes)?;
        return Err(ApiError::invalid("", "the request body must be one JSON object ({...})"));
    }
    parse_json(bytes)
}

impl<T: DeserializeOwned> FromRequest<ApiState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        require_json_content_type(&req)?;
        let bytes = read_body(req, state).await?;
        parse_json_object(&bytes).map(ApiJson)
    }
}

impl FromRequest<ApiState> for TextBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &ApiState) -> Result<Self, ApiError> {
        let bytes = read_body(req, state).await?;
        String::from_utf8(bytes.to_vec())
            .map(TextBody)
            .map_err(|e| ApiError::invalid("body", format!("the body is not UTF-8 text: {e}")))
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or("");
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid("query", format!("bad query parameters: {e}")))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(id)| IdPath(id))
            .map_err(|e| ApiError::invalid("id", e.body_text()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        ttl: u32,
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse_json::<Outer>(br#"{"items": [{"ttl": 1}, {"ttl": "x"}]}"#).unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("items[1].ttl"));
        assert!(e.message.contains("invalid type"), "{}", e.message);
    }

    #[test]
    fn malformed_json_says_where() {
        let e = parse_json::<Outer>(b"{\"items\": [").unwrap_err();
        assert_eq!(e.code, "MalformedJson");
        assert!(e.message.contains("line 1"), "{}", e.message);
        assert_eq!(parse_json::<Outer>(b"{\"items\": []} x").unwrap_err().code, "MalformedJson");
        let e = parse_json::<Outer>(br#"{"items": [], "nope": 1}"#).unwrap_err();
        assert!(e.message.contains("unknown field"), "{}", e.message);
        assert_eq!(e.field.as_deref(), Some("nope"));
        let e = parse_json::<Outer>(br#"{"items": [{}]}"#).unwrap_err();
        assert!(e.message.contains("missing field"), "{}", e.message);
        assert_eq!(e.field.as_deref(), Some("items[0].ttl"));
    }

    #[test]
    fn a_body_is_one_object() {
        // serde reads a struct from an array: `[[]]` would be `{"items": []}`.
        assert!(parse_json::<Outer>(b"[[]]").is_ok());
        for body in [&b"[[]]"[..], b"null", b"1", b"\"x\"", b" true"] {
            let e = parse_json_object::<Outer>(body).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.message.contains("one JSON object"), "{}", e.message);
        }
        for malformed in [&b""[..], b"  [", b"nope"] {
            assert_eq!(parse_json_object::<Outer>(malformed).unwrap_err().code, "MalformedJson");
        }
        assert!(parse_json_object::<Outer>(b" {\"items\": []}").is_ok());
    }

    #[test]
    fn json_bodies_need_the_json_content_type() {
        let with = |value: Option<&str>| {
            let mut builder = Request::builder();
            if let Some(v) = value {
                builder = builder.header("content-type", v);
            }
            require_json_content_type(&builder.body(axum::body::Body::empty()).unwrap())
        };
        assert!(with(Some("application/json")).is_ok());
        assert!(with(Some("Application/JSON; charset=utf-8")).is_ok());
        for other in [Some("text/plain"), Some("application/x-www-form-urlencoded"), None] {
            let e = with(other).unwrap_err();
            assert_eq!((e.status, e.code), (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"));
        }
    }
}
