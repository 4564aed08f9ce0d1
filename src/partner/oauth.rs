//! The mock partner's OAuth 2.0 token endpoint (client credentials grant, RFC 6749 §4.4):
//! checks the client id and secret where the profile says they travel, the scope and the
//! audience; issues opaque tokens with a short lifetime; answers errors as §5.2 says; and
//! tells the API which tokens it issued and which have expired or were revoked.

use crate::auth::{AuthCheck, OAuth2Client};
use crate::profile::{ClientAuth, Profile};
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The largest token request read.
const TOKEN_REQUEST_LIMIT: usize = 16 * 1024;

/// The token endpoint of one mock partner and the tokens it issued.
#[derive(Debug)]
pub(super) struct TokenIssuer {
    path: String,
    client: OAuth2Client,
    lifetime: Duration,
    seed: u64,
    counter: AtomicU64,
    /// Issued tokens and when each expires.
    issued: Mutex<HashMap<String, Instant>>,
}

/// An RFC 6749 §5.2 error answer.
struct TokenRefusal {
    status: StatusCode,
    code: &'static str,
    description: String,
    basic_challenge: bool,
}

impl TokenRefusal {
    fn bad(code: &'static str, description: impl Into<String>) -> Self {
        TokenRefusal {
            status: StatusCode::BAD_REQUEST,
            code,
            description: description.into(),
            basic_challenge: false,
        }
    }

    fn client(description: impl Into<String>, basic: bool) -> Self {
        TokenRefusal {
            status: StatusCode::UNAUTHORIZED,
            code: "invalid_client",
            description: description.into(),
            basic_challenge: basic,
        }
    }
}

impl IntoResponse for TokenRefusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code, "error_description": self.description});
        let mut response = (self.status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if self.basic_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"token\""),
            );
        }
        response
    }
}

impl TokenIssuer {
    /// The issuer for `profile`, accepting `client`'s id and secret; `None` for a profile
    /// whose scheme is not OAuth.
    pub(super) fn new(
        profile: &Profile,
        client: &OAuth2Client,
        lifetime: Duration,
        seed: u64,
    ) -> Option<TokenIssuer> {
        let endpoint = crate::auth::TokenEndpoint::locate(
            profile.auth.token_url.as_deref()?,
            &profile.partner.base_url,
        )
        .ok()?;
        Some(TokenIssuer {
            path: endpoint.mock_path(),
            client: client.clone(),
            lifetime,
            seed,
            counter: AtomicU64::new(0),
            issued: Mutex::new(HashMap::new()),
        })
    }

    /// The path the endpoint is served at.
    pub(super) fn path(&self) -> &str {
        &self.path
    }

    /// How long a token lives.
    pub(super) fn lifetime(&self) -> Duration {
        self.lifetime
    }

    fn issued(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.issued
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether a request's `Authorization` header carries a token issued here and still live.
    pub(super) fn check(&self, authorization: Option<&str>) -> AuthCheck {
        let Some(value) = authorization else {
            return AuthCheck::Missing;
        };
        let token = match value.split_once(' ') {
            Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => token.trim(),
            _ => return AuthCheck::Wrong,
        };
        match self.issued().get(token) {
            Some(expires) if Instant::now() < *expires => AuthCheck::Accepted,
            _ => AuthCheck::Wrong,
        }
    }

    /// Forgets every token issued; returns how many were live.
    pub(super) fn revoke_all(&self) -> usize {
        let mut issued = self.issued();
        let now = Instant::now();
        let live = issued.values().filter(|expires| now < **expires).count();
        issued.clear();
        live
    }

    /// Answers one request to the token endpoint.
    pub(super) async fn serve(&self, request: Request) -> Response {
        match self.grant(request).await {
            Ok(response) => response,
            Err(refusal) => refusal.into_response(),
        }
    }

    async fn grant(&self, request: Request) -> Result<Response, TokenRefusal> {
        let (parts, body) = request.into_parts();
        if parts.method != Method::POST {
            let mut response =
                TokenRefusal::bad("invalid_request", "the token endpoint takes POST requests")
                    .into_response();
            *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("POST"));
            return Ok(response);
        }
        let form_encoded = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|value| {
                value
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !form_encoded {
            return Err(TokenRefusal::bad(
                "invalid_request",
                "the token request must be application/x-www-form-urlencoded",
            ));
        }
        let body = axum::body::to_bytes(body, TOKEN_REQUEST_LIMIT)
            .await
            .map_err(|_| {
                TokenRefusal::bad(
                    "invalid_request",
                    format!("the token request is over {TOKEN_REQUEST_LIMIT} bytes"),
                )
            })?;
        let mut form: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in form_urlencoded::parse(&body) {
            if form.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(TokenRefusal::bad(
                    "invalid_request",
                    format!("the parameter `{name}` is given more than once"),
                ));
            }
        }
        let Some(grant_type) = form.get("grant_type") else {
            return Err(TokenRefusal::bad(
                "invalid_request",
                "the parameter `grant_type` is missing",
            ));
        };
        self.authenticate_client(&parts.headers, &form)?;
        if grant_type != "client_credentials" {
            return Err(TokenRefusal::bad(
                "unsupported_grant_type",
                format!("only the client_credentials grant is offered, not `{grant_type}`"),
            ));
        }
        let scope = self.granted_scope(form.get("scope").map(String::as_str))?;
        self.check_audience(form.get("audience").map(String::as_str))?;
        let token = self.issue();
        let mut answer = json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime.as_secs_f64().ceil().max(1.0) as u64,
        });
        if let Some(scope) = scope {
            answer["scope"] = json!(scope);
        }
        let mut response = (StatusCode::OK, axum::Json(answer)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        Ok(response)
    }

    /// The client authenticates once, as the profile declares (RFC 6749 §2.3).
    fn authenticate_client(
        &self,
        headers: &axum::http::HeaderMap,
        form: &BTreeMap<String, String>,
    ) -> Result<(), TokenRefusal> {
        let declared = self.client.client_auth;
        let basic = declared == ClientAuth::Basic;
        let in_header = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let in_body = form.contains_key("client_secret");
        if in_header.is_some() && in_body {
            return Err(TokenRefusal::bad(
                "invalid_request",
                "the client authenticated both in the Authorization header and in the body; use one",
            ));
        }
        let (id, secret) = match (declared, in_header, in_body) {
            (ClientAuth::Basic, Some(value), false) => decode_basic(&value).ok_or_else(|| {
                TokenRefusal::client(
                    "the Authorization header is not Basic with a base64 client id and secret",
                    true,
                )
            })?,
            (ClientAuth::Body, None, true) => (
                form.get("client_id").cloned().unwrap_or_default(),
                form.get("client_secret").cloned().unwrap_or_default(),
            ),
            (ClientAuth::Basic, None, true) => {
                return Err(TokenRefusal::client(
                    "this partner takes the client id and secret in the Authorization header (basic), not in the body",
                    true,
                ))
            }
            (ClientAuth::Body, Some(_), false) => {
                return Err(TokenRefusal::client(
                    "this partner takes the client id and secret in the body (client_id, client_secret), not in the Authorization header",
                    false,
                ))
            }
            _ => {
                return Err(TokenRefusal::client(
                    "the client did not authenticate",
                    basic,
                ))
            }
        };
        if id == self.client.client_id.expose() && secret == self.client.client_secret.expose() {
            Ok(())
        } else {
            Err(TokenRefusal::client(
                "unknown client, or wrong client secret",
                basic,
            ))
        }
    }

    /// The scope granted: what was asked, if the profile's scope holds all of it.
    fn granted_scope(&self, asked: Option<&str>) -> Result<Option<String>, TokenRefusal> {
        let offered: BTreeSet<&str> = self
            .client
            .scope
            .as_deref()
            .map(|scope| scope.split(' ').collect())
            .unwrap_or_default();
        match asked {
            None if offered.is_empty() => Ok(None),
            None => Err(TokenRefusal::bad("invalid_scope", "a scope is required")),
            Some(asked) => {
                let unknown: Vec<&str> = asked
                    .split(' ')
                    .filter(|token| !offered.contains(token))
                    .collect();
                if unknown.is_empty() {
                    Ok(Some(asked.to_owned()))
                } else {
                    Err(TokenRefusal::bad(
                        "invalid_scope",
                        format!("unknown scope: {}", unknown.join(" ")),
                    ))
                }
            }
        }
    }

    fn check_audience(&self, given: Option<&str>) -> Result<(), TokenRefusal> {
        match (self.client.audience.as_deref(), given) {
            (None, None) => Ok(()),
            (Some(expected), Some(given)) if expected == given => Ok(()),
            (Some(_), None) => Err(TokenRefusal::bad(
                "invalid_request",
                "the parameter `audience` is missing",
            )),
            (Some(_), Some(given)) => Err(TokenRefusal::bad(
                "invalid_target",
                format!("no API here has the audience `{given}`"),
            )),
            (None, Some(_)) => Err(TokenRefusal::bad(
                "invalid_request",
                "this partner takes no `audience` parameter",
            )),
        }
    }

    /// A new opaque token, live for the lifetime.
    fn issue(&self) -> String {
        let number = self.counter.fetch_add(1, Ordering::Relaxed);
        let digest = crate::digest::sha256(
            format!(
                "{}:{number}:{}",
                self.seed,
                self.client.client_secret.expose()
            )
            .as_bytes(),
        );
        let token = format!("mock-at-{}", &digest["sha256:".len()..][..40]);
        let now = Instant::now();
        let mut issued = self.issued();
        issued.retain(|_, expires| now < *expires);
        issued.insert(token.clone(), now + self.lifetime);
        token
    }
}

/// The client id and secret of a Basic header: base64 of the form-encoded id and secret
/// joined by `:` (RFC 6749 §2.3.1).
fn decode_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |part: &str| -> String {
        form_urlencoded::parse(format!("x={part}").as_bytes())
            .next()
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_basic_header_decodes_form_encoded_parts() {
        let header = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("my+id:s%3Acret")
        );
        assert_eq!(
            decode_basic(&header),
            Some(("my id".to_owned(), "s:cret".to_owned()))
        );
        assert_eq!(decode_basic("Bearer abc"), None);
    }
}
