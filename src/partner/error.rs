//! The mock partner's HTTP errors: one shape, `{"error": {"code", "message", "field"}}` in
//! JSON, `<error>` in XML, a SOAP fault's detail in SOAP.

use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the mock partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// A stable machine-readable code.
    pub code: &'static str,
    /// What is wrong, for a developer.
    pub message: String,
    /// The field or parameter concerned, if any.
    pub field: Option<String>,
    /// Headers the answer carries besides its content type (`Allow`, `WWW-Authenticate`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            headers: Vec::new(),
        }
    }

    /// Adds a header to the answer; a value that is not a header value is left out.
    fn with_header(mut self, name: HeaderName, value: &str) -> Self {
        if let Ok(value) = HeaderValue::from_str(value) {
            self.headers.push((name, value));
        }
        self
    }

    /// Names the field concerned.
    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    /// 400: the request cannot be read.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad-request", message)
    }

    /// 401: no credentials; `challenge` is the `WWW-Authenticate` value naming the scheme
    /// (RFC 9110 §11.6.1: every 401 carries one).
    pub fn unauthenticated(challenge: &str) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "this API needs credentials",
        )
        .with_header(header::WWW_AUTHENTICATE, challenge)
    }

    /// 403: wrong credentials.
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "the credentials given are not valid",
        )
    }

    /// 401: an OAuth token that is not (or no longer) valid (RFC 6750 §3.1).
    pub fn invalid_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "the access token is not valid (unknown, expired or revoked): fetch another",
        )
        .with_header(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")
    }

    /// 404: no such route or record.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", message)
    }

    /// 404: no operation of the profile at this path.
    pub fn no_route(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "no-such-route", message)
    }

    /// 405: the path exists with other methods, listed in `Allow` (RFC 9110 §15.5.6).
    pub fn method_not_allowed(allowed: &str) -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            format!("this path answers {allowed}"),
        )
        .with_header(header::ALLOW, allowed)
    }

    /// 406: the request does not accept what this API answers.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_ACCEPTABLE, "not-acceptable", message)
    }

    /// 413: the body is over the limit.
    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("the body is over the limit of {limit} bytes"),
        )
    }

    /// 408: the body did not arrive in time (the connection is closed after the answer).
    pub fn body_timeout(timeout: std::time::Duration) -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            format!(
                "the request body did not arrive within {} ms (shorter than its Content-Length?)",
                timeout.as_millis()
            ),
        )
    }

    /// 400: the body ended before it was whole (the client closed the connection early).
    pub fn body_cut_short() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "the request body ended before it was whole",
        )
    }

    /// 507: the store holds as many records as it may.
    pub fn store_full(cap: usize) -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "store-full",
            format!(
                "the store holds its cap of {cap} prospects and members (--max-records): \
                 nothing new is kept, updates of held records still are"
            ),
        )
    }

    /// 422: the body is readable but its content is not acceptable.
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid-field", message)
    }

    /// 503: try again later (only ever on purpose, by a fault).
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the service is busy, try again",
        )
    }

    /// 500: a failure of the partner itself (only ever on purpose, by a fault).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl ApiError {
    /// The answer in `format`: a JSON or XML error document, or a SOAP fault (Client/Sender
    /// for a 4xx, Server/Receiver otherwise) keeping the status of the error's class.
    pub fn into_response_as(self, format: crate::profile::BodyFormat) -> Response {
        if format == crate::profile::BodyFormat::Json {
            return self.into_response();
        }
        let body = crate::profile::body::error_body(
            format,
            self.status.as_u16(),
            self.code,
            &self.message,
            self.field.as_deref(),
        );
        let content_type = format.content_type(None);
        let mut response =
            (self.status, [(header::CONTENT_TYPE, content_type)], body).into_response();
        response.headers_mut().extend(self.headers);
        close_after_timeout(&mut response);
        response
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = self.field {
            error["field"] = json!(field);
        }
        let mut response = (self.status, axum::Json(json!({ "error": error }))).into_response();
        response.headers_mut().extend(self.headers);
        close_after_timeout(&mut response);
        response
    }
}

/// A 408 closes the connection: what is left of the late body would be read as the next request.
fn close_after_timeout(response: &mut Response) {
    if response.status() == StatusCode::REQUEST_TIMEOUT {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
}
