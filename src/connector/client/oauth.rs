//! The Connector's side of OAuth 2.0 client credentials (RFC 6749 §4.4): a token fetched from
//! the token endpoint, cached, refreshed before it expires and once after a 401. The token
//! request is recorded like any exchange, but its answer body never is, and the token is
//! given to the redactor before anything that could hold it is recorded.

use super::{CallError, PartnerClient};
use crate::auth::{OAuth2Client, Secret};
use crate::connector::exchange::{Exchange, REDACTED};
use crate::profile::ClientAuth;
use serde_json::Value;
use std::fmt;
use std::time::{Duration, Instant};

/// The purpose of every token request, first words of its exchange's `purpose`.
pub const TOKEN_PURPOSE: &str = "oauth token request";

/// The longest a token is refreshed before its `expires_in` runs out.
const MAX_REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// The token of one client and its clones, fetched once and shared.
#[derive(Debug, Default)]
pub(super) struct TokenCache {
    slot: tokio::sync::Mutex<Option<Cached>>,
}

#[derive(Debug)]
struct Cached {
    token: Secret,
    /// When it must be refreshed (a little before `expires_in` runs out); never, when the
    /// endpoint gave no lifetime.
    refresh_at: Option<Instant>,
}

/// Why no token could be had from the token endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenError {
    /// The endpoint (secrets redacted).
    pub endpoint: String,
    /// The exchange recording the request; 0 when none was sent.
    pub exchange: usize,
    /// The status of the answer, if one came.
    pub status: Option<u16>,
    /// The RFC 6749 §5.2 `error` code of the answer, if it gave one.
    pub code: Option<String>,
    /// What went wrong, beginning with a verb ("answered HTTP 401 ...").
    pub problem: String,
    /// Whether the request timed out.
    pub timed_out: bool,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the token endpoint {} {}", self.endpoint, self.problem)
    }
}

impl std::error::Error for TokenError {}

impl TokenError {
    /// Whether the endpoint refused what the profile or the secrets say (wrong client id or
    /// secret, scope, audience, grant): the invocation is at fault, not the run.
    pub fn is_refusal(&self) -> bool {
        matches!(self.status, Some(400 | 401))
    }
}

impl From<TokenError> for CallError {
    fn from(error: TokenError) -> Self {
        CallError {
            exchange: error.exchange,
            timed_out: error.timed_out,
            message: error.to_string(),
        }
    }
}

/// Why a request is made, after the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Why {
    First,
    Expiring,
    Refused,
}

impl PartnerClient {
    /// Fetches a token now when the credentials are OAuth client credentials (a run checks
    /// the client id and secret before it starts); nothing for other schemes.
    pub async fn authenticate(&self) -> Result<(), TokenError> {
        match self.credentials.oauth2() {
            Some(client) => self.token(client, None).await.map(|_| ()),
            None => Ok(()),
        }
    }

    /// The token to send: the cached one while fresh, else a new one. `refused` is the token
    /// the partner just answered 401 to: unless another request already replaced it, a new
    /// one is fetched.
    pub(super) async fn token(
        &self,
        client: &OAuth2Client,
        refused: Option<&Secret>,
    ) -> Result<Secret, TokenError> {
        let mut slot = self.tokens.slot.lock().await;
        let why = match &*slot {
            None => Why::First,
            Some(cached) if refused == Some(&cached.token) => Why::Refused,
            Some(cached) if cached.refresh_at.is_some_and(|at| Instant::now() >= at) => {
                Why::Expiring
            }
            Some(cached) => return Ok(cached.token.clone()),
        };
        let sent = Instant::now();
        let (token, expires_in) = self.fetch_token(client, why).await?;
        let refresh_at = expires_in.map(|lifetime| {
            let margin = (lifetime / 10).min(MAX_REFRESH_MARGIN);
            sent + lifetime - margin
        });
        *slot = Some(Cached {
            token: token.clone(),
            refresh_at,
        });
        Ok(token)
    }

    /// One token request, recorded with its answer body redacted.
    async fn fetch_token(
        &self,
        client: &OAuth2Client,
        why: Why,
    ) -> Result<(Secret, Option<Duration>), TokenError> {
        let unsent = |endpoint: String, problem: String| TokenError {
            endpoint,
            exchange: 0,
            status: None,
            code: None,
            problem,
            timed_out: false,
        };
        let url = client
            .endpoint_url(&self.profile.partner.base_url, &self.base_url)
            .map_err(|problem| {
                unsent(client.token_url.clone(), format!("is unusable: {problem}"))
            })?;
        let endpoint = self.redactor.url(&url);
        let (form, authorization) = client.token_request();
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form.iter().map(|(name, value)| (*name, value.as_str())))
            .finish();
        // The recorded body names every parameter but holds no credential, however short.
        let recorded_body = form
            .iter()
            .map(|(name, value)| {
                let value = if matches!(*name, "client_id" | "client_secret") {
                    REDACTED.to_owned()
                } else {
                    form_urlencoded::byte_serialize(value.as_bytes()).collect()
                };
                format!("{name}={value}")
            })
            .collect::<Vec<_>>()
            .join("&");
        let content_type = "application/x-www-form-urlencoded";
        let mut request_headers = vec![
            ("accept".to_owned(), "application/json".to_owned()),
            ("content-type".to_owned(), content_type.to_owned()),
        ];
        let mut request = self
            .http
            .post(url.clone())
            .header("accept", "application/json")
            .header("content-type", content_type)
            .body(body);
        if let Some(value) = &authorization {
            request_headers.push(("authorization".to_owned(), REDACTED.to_owned()));
            request = request.header("authorization", value);
        }
        debug_assert!(authorization.is_some() == (client.client_auth == ClientAuth::Basic));
        let remaining = self.time_left();
        if let Some(remaining) = remaining {
            request = request.timeout(remaining.min(self.limits.request_timeout));
        }
        let started = Instant::now();
        let purpose = match why {
            Why::First => format!("{TOKEN_PURPOSE} (client credentials)"),
            Why::Expiring => format!("{TOKEN_PURPOSE}: the last token is about to expire"),
            Why::Refused => format!("{TOKEN_PURPOSE}: the partner answered 401 to the last token"),
        };
        let mut exchange = Exchange {
            id: 0,
            operation: None,
            purpose,
            method: "POST".to_owned(),
            url: endpoint.clone(),
            request_headers,
            request_body: Some(recorded_body),
            status: None,
            response_headers: Vec::new(),
            response_body: None,
            error: None,
            started_ms: started.duration_since(self.started).as_millis() as u64,
            duration_ms: 0,
            duration_us: 0,
            // Not kept: the sizes would tell the client secret's and the token's lengths.
            request_body_bytes: None,
            response_body_bytes: None,
            retry_of: None,
        };
        let outcome = match remaining {
            Some(remaining) if remaining.is_zero() => Err((
                format!(
                    "was not asked: the run's deadline of {} ms had passed",
                    self.limits.deadline.unwrap_or_default().as_millis()
                ),
                true,
            )),
            _ => {
                let waited = remaining.map_or(self.limits.request_timeout, |remaining| {
                    remaining.min(self.limits.request_timeout)
                });
                self.receive(request, waited).await
            }
        };
        exchange.set_duration(started.elapsed());
        let (status, headers, bytes, cut_off) = match outcome {
            Ok(answer) => answer,
            Err((message, timed_out)) => {
                exchange.error = Some(message.clone());
                let id = self.recorder.push(exchange);
                return Err(TokenError {
                    endpoint,
                    exchange: id,
                    status: None,
                    code: None,
                    problem: format!("could not be reached: {message}"),
                    timed_out,
                });
            }
        };
        let parsed = read_token_answer(status, &bytes, cut_off, self.limits.max_body, client);
        // Learnt before anything of the answer is recorded.
        if let Ok((token, _)) = &parsed {
            self.redactor.learn(token.expose());
        }
        exchange.status = Some(status);
        exchange.response_headers = headers
            .iter()
            .map(|(name, value)| (name.clone(), self.redactor.header(name, value)))
            .collect();
        exchange.response_body = (!bytes.is_empty()).then(|| REDACTED.to_owned());
        let id = self.recorder.push(exchange);
        parsed.map_err(|(code, problem)| TokenError {
            endpoint,
            exchange: id,
            status: Some(status),
            code,
            problem: self.redactor.text(&problem),
            timed_out: false,
        })
    }
}

/// The token and its lifetime from a token endpoint's answer, or its `error` code and what is
/// wrong. Nothing of the body but a well-formed error code is quoted.
fn read_token_answer(
    status: u16,
    bytes: &[u8],
    cut_off: bool,
    max_body: usize,
    client: &OAuth2Client,
) -> Result<(Secret, Option<Duration>), (Option<String>, String)> {
    if cut_off {
        return Err((
            None,
            format!("answered HTTP {status} with a body over the {max_body}-byte limit"),
        ));
    }
    let json: Option<Value> = serde_json::from_slice(bytes).ok();
    if !(200..300).contains(&status) {
        let code = json
            .as_ref()
            .and_then(|json| json.get("error"))
            .and_then(Value::as_str)
            .filter(|code| {
                !code.is_empty()
                    && code.len() <= 64
                    && code
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit())
            })
            .map(str::to_owned);
        let (id_variable, secret_variable) = &client.variables;
        let refused_client = || {
            format!(": the client id and secret (from {id_variable} and {secret_variable}) were refused")
        };
        let hint = match code.as_deref() {
            Some("invalid_client") => refused_client(),
            None if status == 401 => refused_client(),
            Some("invalid_scope") => format!(
                ": the scope {} was refused",
                client
                    .scope
                    .as_deref()
                    .map_or("(none asked for)".to_owned(), |scope| format!("`{scope}`"))
            ),
            Some("unsupported_grant_type") => {
                ": it does not offer the client credentials grant".to_owned()
            }
            Some("unauthorized_client") => {
                ": this client may not use the client credentials grant".to_owned()
            }
            Some("invalid_target") => format!(
                ": the audience {} was refused",
                client
                    .audience
                    .as_deref()
                    .map_or("(none given)".to_owned(), |audience| format!(
                        "`{audience}`"
                    ))
            ),
            _ => String::new(),
        };
        let shown = code
            .as_deref()
            .map(|code| format!(" ({code})"))
            .unwrap_or_default();
        return Err((code, format!("answered HTTP {status}{shown}{hint}")));
    }
    let Some(Value::Object(answer)) = json else {
        return Err((
            None,
            format!("answered HTTP {status} with a body that is not a JSON object"),
        ));
    };
    let token = match answer.get("access_token") {
        Some(Value::String(token)) if !token.trim().is_empty() => token.clone(),
        _ => {
            return Err((
                None,
                format!("answered HTTP {status} without an access_token"),
            ))
        }
    };
    match answer.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(kind)) if kind.eq_ignore_ascii_case("bearer") => {}
        Some(_) => {
            return Err((
                None,
                format!(
                    "answered HTTP {status} with a token_type other than Bearer, which is the only one supported"
                ),
            ))
        }
    }
    // A number of seconds, sometimes sent as a string; anything else gives no lifetime.
    let expires_in = match answer.get("expires_in") {
        Some(Value::Number(seconds)) => seconds.as_f64(),
        Some(Value::String(seconds)) => seconds.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|seconds| seconds.is_finite() && *seconds > 0.0)
    .map(|seconds| Duration::from_secs_f64(seconds.min(365.0 * 86_400.0)));
    Ok((Secret::new(token), expires_in))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> OAuth2Client {
        OAuth2Client {
            token_url: "/oauth/token".into(),
            moved_to: None,
            client_id: Secret::new("id"),
            client_secret: Secret::new("secret"),
            scope: Some("leads.write".into()),
            audience: None,
            client_auth: ClientAuth::Basic,
            variables: ("ACME_ID".into(), "ACME_SECRET".into()),
        }
    }

    fn read(
        status: u16,
        body: &str,
    ) -> Result<(Secret, Option<Duration>), (Option<String>, String)> {
        read_token_answer(status, body.as_bytes(), false, 1024, &client())
    }

    #[test]
    fn a_token_answer_gives_the_token_and_its_lifetime() {
        let (token, lifetime) = read(
            200,
            r#"{"access_token":"at-1","token_type":"bearer","expires_in":"60"}"#,
        )
        .unwrap();
        assert_eq!(token.expose(), "at-1");
        assert_eq!(lifetime, Some(Duration::from_secs(60)));
        let (_, lifetime) = read(200, r#"{"access_token":"at-1","expires_in":-5}"#).unwrap();
        assert_eq!(lifetime, None);
    }

    #[test]
    fn a_refusal_names_its_code_and_the_variables_but_quotes_nothing_else() {
        let (code, problem) = read(
            401,
            r#"{"error":"invalid_client","error_description":"secret s3cr3t is wrong"}"#,
        )
        .unwrap_err();
        assert_eq!(code.as_deref(), Some("invalid_client"));
        assert_eq!(
            problem,
            "answered HTTP 401 (invalid_client): the client id and secret (from ACME_ID and ACME_SECRET) were refused"
        );
        let (_, problem) = read(400, r#"{"error":"invalid_scope"}"#).unwrap_err();
        assert!(
            problem.ends_with("the scope `leads.write` was refused"),
            "{problem}"
        );
        let (code, problem) = read(400, r#"{"error":"<script>"}"#).unwrap_err();
        assert_eq!((code, problem.as_str()), (None, "answered HTTP 400"));
    }

    #[test]
    fn garbage_or_no_token_is_a_clear_problem() {
        assert_eq!(
            read(200, "<html>").unwrap_err().1,
            "answered HTTP 200 with a body that is not a JSON object"
        );
        assert_eq!(
            read(200, r#"{"token":"x"}"#).unwrap_err().1,
            "answered HTTP 200 without an access_token"
        );
        assert!(read(200, r#"{"access_token":"x","token_type":"mac"}"#)
            .unwrap_err()
            .1
            .contains("other than Bearer"));
        assert_eq!(read(503, "").unwrap_err().1, "answered HTTP 503");
    }
}
