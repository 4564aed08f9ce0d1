//! The service's errors: one enum, answered as JSON by the API (`{"error": {…}}`) and as an
//! escaped HTML page by the pages.

use super::storage::StorageError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// Why a request could not be served.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// No such thing, or not one the viewer may see.
    #[error("{0}")]
    NotFound(String),
    /// No valid token or session.
    #[error("{0}")]
    Unauthorized(String),
    /// Signed in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// The request is invalid; the message says what and where.
    #[error("{0}")]
    Invalid(String),
    /// A profile that `spoke profile check` refuses: every problem with its line.
    #[error("the profile has {} problem(s)", .0.len())]
    Profile(Vec<crate::profile::Problem>),
    /// A name already taken.
    #[error("{0}")]
    Conflict(String),
    /// The body is over the limit.
    #[error("{0}")]
    TooLarge(String),
    /// The database failed.
    #[error("{0}")]
    Storage(#[source] StorageError),
}

impl From<StorageError> for ServiceError {
    fn from(error: StorageError) -> Self {
        match error {
            StorageError::Conflict(message) => ServiceError::Conflict(message),
            other => ServiceError::Storage(other),
        }
    }
}

impl ServiceError {
    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ServiceError::NotFound(_) => StatusCode::NOT_FOUND,
            ServiceError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ServiceError::Forbidden(_) => StatusCode::FORBIDDEN,
            ServiceError::Invalid(_) | ServiceError::Profile(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ServiceError::Conflict(_) => StatusCode::CONFLICT,
            ServiceError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ServiceError::Storage(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The message shown: a database error is logged, not shown.
    pub fn message(&self) -> String {
        match self {
            ServiceError::Storage(error) => {
                eprintln!("spoke serve: {error}");
                "the database could not be reached; try again".to_owned()
            }
            other => other.to_string(),
        }
    }
}

/// The API's answer: `{"error": {"status": 422, "message": "…", "problems": [...]}}`.
impl IntoResponse for ServiceError {
    fn into_response(self) -> Response {
        let status = self.status();
        let mut body = serde_json::json!({
            "error": { "status": status.as_u16(), "message": self.message() }
        });
        if let ServiceError::Profile(problems) = &self {
            body["error"]["problems"] = problems
                .iter()
                .map(|p| serde_json::json!({ "line": p.line, "key": p.key, "message": p.message }))
                .collect();
        }
        (status, axum::Json(body)).into_response()
    }
}

/// A page's error: the same error as an HTML page.
#[derive(Debug)]
pub struct PageError(pub ServiceError);

impl<E: Into<ServiceError>> From<E> for PageError {
    fn from(error: E) -> Self {
        PageError(error.into())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        if status == StatusCode::UNAUTHORIZED {
            return axum::response::Redirect::to("/login").into_response();
        }
        let body = super::pages::error_page(status, &self.0.message());
        (status, axum::response::Html(body)).into_response()
    }
}
