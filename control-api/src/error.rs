//! The API's errors: one type for every failure a handler can report, and
//! its JSON form `{"error": {"code", "message", "field"?}}`.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use signpost_core::ValidationError;
use signpost_store::StoreError;
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong, for programs (`code`) and people (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable error code (`InvalidInput`, `NoSuchHostedZone`, `Throttling`, ...).
    pub code: String,
    /// What went wrong, for a person.
    pub message: String,
    /// Path of the offending input field (`changes[0].rrset.records[1]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An error a handler answers with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable error code.
    pub code: &'static str,
    /// Message for a person.
    pub message: String,
    /// Offending field, if one.
    pub field: Option<String>,
    /// Seconds after which to retry (429, 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }

    /// The same error about `field`.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400 for input that fails validation.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "InvalidInput", message).with_field(field)
    }

    /// 401: no key, or one that is not valid.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "Unauthorized", message)
    }

    /// 403: the key may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    /// 404 with a specific code (`NoSuchHostedZone`, ...).
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    /// 409 with a specific code.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, code, message)
    }

    /// 413: the body is over the bound.
    pub fn too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "PayloadTooLarge",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    /// 400 `LimitExceeded`: the command would exceed an installation quota
    /// (Route 53 answers its `TooMany…` errors with 400 too).
    pub fn limit_exceeded(e: &signpost_store::tenancy::LimitExceeded) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "LimitExceeded", e.to_string())
    }

    /// 415: a JSON body sent with another content type.
    pub fn unsupported_media_type(got: &str) -> Self {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "UnsupportedMediaType",
            format!("send JSON bodies as Content-Type: application/json (got {got:?})"),
        )
    }

    /// 429 with the time until the key may send again.
    pub fn throttled(wait: Duration) -> Self {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ApiError {
            retry_after: Some(secs.max(1)),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Throttling", "Rate exceeded")
        }
    }

    /// 503: the database cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError {
            retry_after: Some(1),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "ServiceUnavailable", message)
        }
    }

    /// 500, for failures that are the server's own.
    pub fn internal() -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "internal error; see the server log",
        )
    }

    /// A store error, where `not_found` is the code of a missing object.
    pub fn from_store(e: StoreError, not_found: &'static str) -> Self {
        match e {
            StoreError::Invalid(v) => v.into(),
            StoreError::Conflict { field, message } => {
                ApiError::conflict("Conflict", message).with_field(field)
            }
            StoreError::NotFound(what) => ApiError::not_found(not_found, format!("no such {what}")),
            StoreError::LimitExceeded(e) => ApiError::limit_exceeded(&e),
            other if other.is_unavailable() => {
                tracing::warn!(error = %other, "database unavailable");
                ApiError::unavailable("the database is unavailable; retry later")
            }
            other => match other.sqlstate() {
                Some(state) => database_error(&state, &other),
                None => {
                    tracing::error!(error = %other, "store error");
                    ApiError::internal()
                }
            },
        }
    }
}

/// Maps a database error's SQLSTATE to what the client should hear.
fn database_error(state: &str, error: &StoreError) -> ApiError {
    match state {
        // Connection exceptions, too many connections, shutdown in progress.
        s if s.starts_with("08") || s.starts_with("53") || s.starts_with("57P") => {
            tracing::warn!(%error, "database unavailable");
            ApiError::unavailable("the database is unavailable; retry later")
        }
        // Serialization failure, deadlock: a concurrent request won.
        "40001" | "40P01" => ApiError::conflict(
            "PriorRequestNotComplete",
            "a concurrent request changed the same objects; retry",
        ),
        // A referenced object vanished, or a duplicate raced in.
        "23503" | "23505" => {
            ApiError::conflict("Conflict", "a concurrent request changed a referenced object; retry")
        }
        // Data the database refuses (NUL bytes, out-of-range values, checks).
        s if s.starts_with("22") || s == "23514" => {
            ApiError::invalid("", format!("the database refused a value: {error}"))
        }
        _ => {
            tracing::error!(%error, "database error");
            ApiError::internal()
        }
    }
}

impl From<ValidationError> for ApiError {
    fn from(e: ValidationError) -> Self {
        ApiError::invalid(e.field, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let field = self.field.filter(|f| !f.is_empty());
        let body =
            ErrorBody { error: ErrorDetail { code: self.code.to_string(), message: self.message, field } };
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            headers.insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_rounds_retry_after_up() {
        assert_eq!(ApiError::throttled(Duration::from_millis(100)).retry_after, Some(1));
        assert_eq!(ApiError::throttled(Duration::from_millis(1500)).retry_after, Some(2));
    }

    #[test]
    fn store_errors_map_to_statuses() {
        let e = ApiError::from_store(StoreError::NotFound("hosted zone Z1".into()), "NoSuchHostedZone");
        assert_eq!((e.status, e.code), (StatusCode::NOT_FOUND, "NoSuchHostedZone"));
        let e = ApiError::from_store(ValidationError::new("ttl", "bad").into(), "x");
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::BAD_REQUEST, Some("ttl")));
        let e = ApiError::from_store(
            StoreError::Conflict { field: "name".into(), message: "exists".into() },
            "x",
        );
        assert_eq!((e.status, e.field.as_deref()), (StatusCode::CONFLICT, Some("name")));
        let quota = signpost_store::tenancy::LimitExceeded {
            quota: signpost_store::tenancy::Quota::ZonesPerAccount,
            limit: 2,
        };
        let e = ApiError::from_store(quota.into(), "x");
        assert_eq!((e.status, e.code), (StatusCode::BAD_REQUEST, "LimitExceeded"));
        assert!(e.message.contains("max-zones-per-account"), "{}", e.message);
    }
}
