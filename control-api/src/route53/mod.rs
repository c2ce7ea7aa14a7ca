//! Route 53's REST/XML API under `/2013-04-01/`, on the same address as
//! /v1. For now only its front door: every request is authenticated with
//! SigV4 ([`crate::sigv4`]) against the account's AWS access key pairs, and
//! errors use Route 53's XML envelope with an `x-amzn-RequestId` header. No
//! operation is offered yet: an authenticated request gets 400
//! `InvalidAction` saying so.

use std::net::{IpAddr, SocketAddr};

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{Next, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::Utc;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::sigv4::{self, RequestParts, SigV4Error};

/// Route 53's XML namespace.
pub const XMLNS: &str = "https://route53.amazonaws.com/doc/2013-04-01/";

/// A Route 53 error: HTTP status, code and message, answered as
/// `<ErrorResponse>` XML.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route53Error {
    /// HTTP status.
    pub status: StatusCode,
    /// Route 53's error code (`SignatureDoesNotMatch`, `InvalidAction`, …).
    pub code: &'static str,
    /// What went wrong, for a person.
    pub message: String,
}

impl Route53Error {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Route53Error { status, code, message: message.into() }
    }

    /// The XML body, with `request_id`. The type is `Sender` for the
    /// client's errors, `Receiver` for the server's (5xx).
    pub fn to_xml(&self, request_id: &str) -> String {
        let kind = if self.status.is_server_error() { "Receiver" } else { "Sender" };
        format!(
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"{XMLNS}\"><Error><Type>{kind}</Type><Code>{}</Code>\
             <Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            xml_escape(self.code),
            xml_escape(&self.message),
            xml_escape(request_id)
        )
    }
}

impl From<SigV4Error> for Route53Error {
    fn from(e: SigV4Error) -> Self {
        Route53Error::new(StatusCode::FORBIDDEN, e.code(), e.to_string())
    }
}

impl From<ApiError> for Route53Error {
    /// The /v1 errors the shared machinery gives (throttling, database down).
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            StatusCode::TOO_MANY_REQUESTS => "Throttling",
            StatusCode::SERVICE_UNAVAILABLE => "ServiceUnavailable",
            StatusCode::PAYLOAD_TOO_LARGE => "RequestEntityTooLarge",
            s if s.is_server_error() => "InternalFailure",
            _ => e.code,
        };
        Route53Error::new(e.status, code, e.message)
    }
}

impl IntoResponse for Route53Error {
    fn into_response(self) -> Response {
        let request_id = new_request_id();
        let mut response = (self.status, self.to_xml(&request_id)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/xml"));
        if let Ok(value) = HeaderValue::from_str(&request_id) {
            headers.insert("x-amzn-requestid", value);
        }
        response
    }
}

/// Escapes text for XML content and attribute values.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A request id in Route 53's form (a random UUID, version 4).
pub fn new_request_id() -> String {
    let mut b: [u8; 16] = rand::random();
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h = hex::encode(b);
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions().get::<axum::extract::ConnectInfo<SocketAddr>>().map(|info| info.0.ip())
}

/// Middleware of every `/2013-04-01` route: SigV4 authentication with the
/// account's AWS access key pairs (403 with Route 53's codes), the per-key,
/// per-account and per-address rate limits of /v1, read-only keys refused
/// on writes (403 `AccessDenied`); hands the [`Caller`] to the handler.
pub async fn authenticate(State(state): State<ApiState>, req: Request, next: Next) -> Response {
    let addresses = state.limiter.as_ref().map(|l| &l.addresses).zip(client_ip(&req));
    if let Some((limiter, ip)) = addresses
        && let Err(e) = limiter.ensure(ip)
    {
        return Route53Error::from(e).into_response();
    }
    let (parts, body) = req.into_parts();
    let body = match axum::body::to_bytes(body, state.config.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return Route53Error::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                format!("the request body is larger than {} bytes", state.config.max_body_bytes),
            )
            .into_response();
        }
    };
    match caller(&state, &parts, &body).await {
        Ok(caller) => {
            let mut req = Request::from_parts(parts, Body::from(body));
            req.extensions_mut().insert(caller);
            next.run(req).await
        }
        Err(e) => {
            if e.status == StatusCode::FORBIDDEN
                && e.code != "AccessDenied"
                && let Some((limiter, ip)) = addresses
            {
                limiter.take(ip);
            }
            e.into_response()
        }
    }
}

async fn caller(
    state: &ApiState,
    parts: &axum::http::request::Parts,
    body: &[u8],
) -> Result<Caller, Route53Error> {
    let auth = sigv4::parse(&parts.headers, Utc::now())?;
    let found = state.store.aws_access_key(&auth.access_key_id).await.map_err(|e| {
        tracing::warn!(error = %e, "looking up an AWS access key");
        Route53Error::from(ApiError::from_store(e, "InvalidClientTokenId"))
    })?;
    let Some(found) = found else { return Err(SigV4Error::InvalidClientTokenId.into()) };
    let request = RequestParts {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body,
    };
    sigv4::verify(&auth, &request, found.secret.expose())?;
    let key = found.key;
    if let Some(limiter) = &state.limiter {
        limiter.keys.check(&key.id)?;
        limiter.accounts.check(&key.account_id)?;
    }
    if key.read_only && !matches!(parts.method, Method::GET | Method::HEAD) {
        return Err(Route53Error::new(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: this change (the access key is read-only)",
                auth.access_key_id
            ),
        ));
    }
    Ok(Caller {
        key_id: key.id,
        account_id: key.account_id,
        read_only: key.read_only,
        zone_ids: key.zone_ids,
    })
}

/// Every Route 53 operation for now: 400 `InvalidAction`, not offered yet.
async fn not_offered_yet(_caller: Caller, req: Request) -> Route53Error {
    Route53Error::new(
        StatusCode::BAD_REQUEST,
        "InvalidAction",
        format!(
            "The action {} {} is not offered by this Route 53 endpoint yet (Signpost serves its /v1 API meanwhile).",
            req.method(),
            req.uri().path()
        ),
    )
}

/// The routes under `/2013-04-01`, authenticated with SigV4.
pub fn router(state: ApiState) -> Router<ApiState> {
    Router::new()
        .route("/2013-04-01", any(not_offered_yet))
        .route("/2013-04-01/", any(not_offered_yet))
        .route("/2013-04-01/{*operation}", any(not_offered_yet))
        .route_layer(from_fn_with_state(state.clone(), authenticate))
        .route_layer(from_fn_with_state(state, crate::routes::system::require_migrated))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_envelope_is_route53s() {
        let e = Route53Error::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", "a < b & \"c\"");
        assert_eq!(
            e.to_xml("abc"),
            "<?xml version=\"1.0\"?>\n<ErrorResponse xmlns=\"https://route53.amazonaws.com/doc/2013-04-01/\">\
             <Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>a &lt; b &amp; &quot;c&quot;</Message>\
             </Error><RequestId>abc</RequestId></ErrorResponse>"
        );
        let down = Route53Error::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", "later");
        assert!(down.to_xml("x").contains("<Type>Receiver</Type>"));
    }

    #[test]
    fn request_ids_are_uuids() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.as_bytes()[14], b'4');
        assert_ne!(id, new_request_id());
    }
}
