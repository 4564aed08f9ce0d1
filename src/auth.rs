//! Credentials named by a profile's `[auth]`: resolved from the environment, applied by the
//! Connector client, checked by the mock partner, and never printed.

use crate::profile::{AuthScheme, AuthSection, ClientAuth};
use base64::Engine;
use reqwest::Url;
use std::fmt;

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that sends or compares it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Where an API key travels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPlace {
    /// In the named header.
    Header(String),
    /// In the named query parameter.
    Query(String),
}

/// Resolved credentials for one partner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No authentication.
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// An API key.
    ApiKey {
        /// Where it goes.
        place: KeyPlace,
        /// The key.
        key: Secret,
    },
    /// HTTP basic.
    Basic {
        /// User name.
        username: Secret,
        /// Password.
        password: Secret,
    },
    /// OAuth 2.0 client credentials: the client fetches a bearer token with these.
    OAuth2(Box<OAuth2Client>),
    /// A scheme's credentials with more secret headers sent beside them (`[auth]
    /// more-headers`).
    Combined {
        /// The scheme's own credentials.
        primary: Box<Credentials>,
        /// The further headers (lower-case names) and their secret values.
        more: Vec<(String, Secret)>,
    },
}

/// What an OAuth 2.0 client-credentials client needs to fetch tokens (RFC 6749 §4.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2Client {
    /// The profile's `token-url`.
    pub token_url: String,
    /// Where a token endpoint outside the partner's base URL was moved to: an in-process mock
    /// partner or a replay serves it at its own address.
    pub moved_to: Option<Url>,
    /// The client id.
    pub client_id: Secret,
    /// The client secret.
    pub client_secret: Secret,
    /// The scope asked for, if any.
    pub scope: Option<String>,
    /// The `audience` parameter, if any.
    pub audience: Option<String>,
    /// How the client authenticates at the token endpoint.
    pub client_auth: ClientAuth,
    /// The variables the client id and secret came from (for messages).
    pub variables: (String, String),
}

impl OAuth2Client {
    /// The token endpoint's URL for a partner whose profile says `profile_base` and which is
    /// called at `base` (ending in `/`).
    pub fn endpoint_url(&self, profile_base: &str, base: &Url) -> Result<Url, String> {
        if let Some(moved) = &self.moved_to {
            return Ok(moved.clone());
        }
        TokenEndpoint::locate(&self.token_url, profile_base)?.url(base)
    }

    /// The form parameters of a token request, in order, with the client's own credentials
    /// when they travel in the body; and the `Authorization` value when they travel in the
    /// header (RFC 6749 §2.3.1: each form-encoded, joined by `:`, base64).
    pub fn token_request(&self) -> (Vec<(&'static str, String)>, Option<String>) {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if let Some(scope) = &self.scope {
            form.push(("scope", scope.clone()));
        }
        if let Some(audience) = &self.audience {
            form.push(("audience", audience.clone()));
        }
        match self.client_auth {
            ClientAuth::Body => {
                form.push(("client_id", self.client_id.expose().to_owned()));
                form.push(("client_secret", self.client_secret.expose().to_owned()));
                (form, None)
            }
            ClientAuth::Basic => {
                let encode = |value: &str| -> String {
                    form_urlencoded::byte_serialize(value.as_bytes()).collect()
                };
                let pair = format!(
                    "{}:{}",
                    encode(self.client_id.expose()),
                    encode(self.client_secret.expose())
                );
                let header = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(pair)
                );
                (form, Some(header))
            }
        }
    }
}

/// Where a token endpoint is relative to the partner's API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenEndpoint {
    /// Under the partner's base URL, at this path relative to it (no leading `/`): it moves
    /// with `--base-url` and is served by the mock partner.
    UnderBase(String),
    /// Elsewhere (another host, or outside the base path): called as it is.
    Elsewhere(Url),
}

impl TokenEndpoint {
    /// Locates a profile's `token-url` (a path starting with `/`, under base-url as operation
    /// paths are, or an absolute http(s) URL) against the profile's `base-url`.
    pub fn locate(token_url: &str, profile_base: &str) -> Result<TokenEndpoint, String> {
        if token_url.contains(['?', '#']) {
            return Err(format!(
                "`{token_url}` must not carry a query or fragment; the token request sends its parameters in the body"
            ));
        }
        if token_url.contains(['{', '}']) {
            return Err(format!(
                "`{token_url}` holds a placeholder; it is not a template"
            ));
        }
        if token_url.chars().any(char::is_whitespace) {
            return Err(format!("`{token_url}` holds white space"));
        }
        if let Some(path) = token_url.strip_prefix('/') {
            if path.starts_with('/') || path.is_empty() {
                return Err(format!(
                    "`{token_url}` is not a path under base-url (one leading `/`, then the path)"
                ));
            }
            return Ok(TokenEndpoint::UnderBase(path.to_owned()));
        }
        let url = Url::parse(token_url).map_err(|error| {
            format!(
                "`{token_url}` is neither an absolute URL nor a path starting with `/`: {error}"
            )
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(format!("`{token_url}` is not an http or https URL"));
        }
        if let Ok(base) = Url::parse(profile_base) {
            let base = with_trailing_slash(base);
            if base.origin() == url.origin() {
                if let Some(rest) = url.path().strip_prefix(base.path()) {
                    if !rest.is_empty() {
                        return Ok(TokenEndpoint::UnderBase(rest.to_owned()));
                    }
                }
            }
        }
        Ok(TokenEndpoint::Elsewhere(url))
    }

    /// The URL to call, for a partner whose base URL is `base` (ending in `/`).
    pub fn url(&self, base: &Url) -> Result<Url, String> {
        match self {
            TokenEndpoint::UnderBase(path) => base.join(path).map_err(|error| {
                format!("cannot build the token URL from {base} and {path}: {error}")
            }),
            TokenEndpoint::Elsewhere(url) => Ok(url.clone()),
        }
    }

    /// The path the mock partner serves the endpoint at: under its own root as the operations
    /// are, or the foreign endpoint's own path.
    pub fn mock_path(&self) -> String {
        match self {
            TokenEndpoint::UnderBase(path) => format!("/{path}"),
            TokenEndpoint::Elsewhere(url) => url.path().to_owned(),
        }
    }
}

/// `url` with a path ending in `/`, so relative paths join under it.
pub fn with_trailing_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// Whether `url` names a loopback host (`localhost`, 127.0.0.0/8, `::1`).
pub fn is_loopback(url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The scope tokens of an OAuth `scope` value (RFC 6749 §3.3: tokens of printable ASCII but
/// `"` and `\\`, separated by single spaces).
pub fn scope_tokens(scope: &str) -> Result<Vec<&str>, String> {
    let tokens: Vec<&str> = scope.split(' ').collect();
    let valid = |token: &str| {
        !token.is_empty()
            && token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
    };
    if tokens.iter().all(|token| valid(token)) {
        Ok(tokens)
    } else {
        Err(format!(
            "`{scope}` is not a scope: scope tokens (printable ASCII, no `\"` or `\\`) separated by single spaces"
        ))
    }
}

/// A secret's environment variable is not set.
#[derive(Debug, thiserror::Error)]
#[error(
    "auth.{key}: environment variable {variable} is not set (it must hold the partner's {what})"
)]
pub struct MissingSecret {
    /// The profile key naming the variable.
    pub key: &'static str,
    /// The variable.
    pub variable: String,
    /// What it holds.
    pub what: &'static str,
}

/// The result of checking a request's credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthCheck {
    /// The request carries the right credentials.
    Accepted,
    /// The request carries none.
    Missing,
    /// The request carries wrong ones.
    Wrong,
}

impl Credentials {
    /// Resolves the secrets named by `auth` with `lookup` (normally the process environment).
    pub fn resolve(
        auth: &AuthSection,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, MissingSecret> {
        let mut more = Vec::new();
        for (header, variable) in &auth.more_headers {
            let value =
                lookup(variable)
                    .filter(|value| !value.is_empty())
                    .ok_or(MissingSecret {
                        key: "more-headers",
                        variable: variable.clone(),
                        what: "header value",
                    })?;
            more.push((header.to_ascii_lowercase(), Secret::new(value)));
        }
        let primary = Self::resolve_scheme(auth, &lookup)?;
        Ok(match more.is_empty() {
            true => primary,
            false => Credentials::Combined {
                primary: Box::new(primary),
                more,
            },
        })
    }

    fn resolve_scheme(
        auth: &AuthSection,
        lookup: &impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, MissingSecret> {
        let fetch = |key: &'static str, variable: &Option<String>, what: &'static str| {
            let variable = variable.clone().unwrap_or_default();
            lookup(&variable)
                .filter(|value| !value.is_empty())
                .map(Secret::new)
                .ok_or(MissingSecret {
                    key,
                    variable,
                    what,
                })
        };
        Ok(match auth.scheme {
            AuthScheme::None => Credentials::None,
            AuthScheme::Bearer => {
                Credentials::Bearer(fetch("token-env", &auth.token_env, "token")?)
            }
            AuthScheme::ApiKey => Credentials::ApiKey {
                place: match (&auth.header, &auth.query) {
                    (Some(header), _) => KeyPlace::Header(header.clone()),
                    (None, query) => KeyPlace::Query(query.clone().unwrap_or_default()),
                },
                key: fetch("key-env", &auth.key_env, "API key")?,
            },
            AuthScheme::Basic => Credentials::Basic {
                username: fetch("username-env", &auth.username_env, "user name")?,
                password: fetch("password-env", &auth.password_env, "password")?,
            },
            AuthScheme::OAuth2ClientCredentials => Credentials::OAuth2(Box::new(OAuth2Client {
                token_url: auth.token_url.clone().unwrap_or_default(),
                moved_to: None,
                client_id: fetch("client-id-env", &auth.client_id_env, "OAuth client id")?,
                client_secret: fetch(
                    "client-secret-env",
                    &auth.client_secret_env,
                    "OAuth client secret",
                )?,
                scope: auth.scope.clone(),
                audience: auth.audience.clone(),
                client_auth: auth.client_auth.unwrap_or_default(),
                variables: (
                    auth.client_id_env.clone().unwrap_or_default(),
                    auth.client_secret_env.clone().unwrap_or_default(),
                ),
            })),
        })
    }

    /// Credentials of the same scheme with made-up secrets, for an in-process mock partner.
    pub fn generated(auth: &AuthSection, seed: u64) -> Credentials {
        let made_up = |what: &str| Some(format!("spoke-{what}-{seed:016x}"));
        Credentials::resolve(auth, |variable| made_up(variable))
            .expect("every variable resolves to a generated value")
    }

    /// Every secret value, for redaction.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::None => Vec::new(),
            Credentials::Bearer(token) => vec![token.expose()],
            Credentials::ApiKey { key, .. } => vec![key.expose()],
            Credentials::Basic { username, password } => vec![username.expose(), password.expose()],
            Credentials::OAuth2(client) => {
                vec![client.client_id.expose(), client.client_secret.expose()]
            }
            Credentials::Combined { primary, more } => {
                let mut secrets = primary.secrets();
                secrets.extend(more.iter().map(|(_, value)| value.expose()));
                secrets
            }
        }
    }

    /// The OAuth client, when these credentials are exchanged for tokens.
    pub fn oauth2(&self) -> Option<&OAuth2Client> {
        match self {
            Credentials::OAuth2(client) => Some(client),
            Credentials::Combined { primary, .. } => primary.oauth2(),
            _ => None,
        }
    }

    /// These credentials with a token endpoint outside `profile_base` moved to the same path
    /// at `origin`: an in-process mock partner or a replay serves it there.
    pub fn with_token_endpoint_at(mut self, profile_base: &str, origin: &Url) -> Credentials {
        if let Credentials::Combined { primary, more } = self {
            return Credentials::Combined {
                primary: Box::new(primary.with_token_endpoint_at(profile_base, origin)),
                more,
            };
        }
        if let Credentials::OAuth2(client) = &mut self {
            if let Ok(TokenEndpoint::Elsewhere(url)) =
                TokenEndpoint::locate(&client.token_url, profile_base)
            {
                client.moved_to = origin.join(url.path()).ok();
            }
        }
        self
    }

    /// The credentials as a request to the API presents them. OAuth client credentials are
    /// never sent to the API but exchanged for a token, so a token made up from them stands in
    /// (what a probe with wrong credentials sends); other schemes are presented as they are.
    pub fn as_presented(self) -> Credentials {
        match self {
            Credentials::OAuth2(client) => Credentials::Bearer(Secret::new(format!(
                "{}-made-up-token",
                client.client_secret.expose()
            ))),
            Credentials::Combined { primary, more } => Credentials::Combined {
                primary: Box::new(primary.as_presented()),
                more,
            },
            other => other,
        }
    }

    /// Every header to send: the scheme's, then any more (name, value).
    pub fn headers(&self) -> Vec<(String, String)> {
        match self {
            Credentials::Combined { primary, more } => primary
                .header()
                .into_iter()
                .chain(
                    more.iter()
                        .map(|(name, value)| (name.clone(), value.expose().to_owned())),
                )
                .collect(),
            other => other.header().into_iter().collect(),
        }
    }

    /// The scheme's header to send, if it uses one: (name, value).
    pub fn header(&self) -> Option<(String, String)> {
        match self {
            Credentials::Combined { primary, .. } => primary.header(),
            Credentials::None => None,
            Credentials::Bearer(token) => {
                Some(("authorization".into(), format!("Bearer {}", token.expose())))
            }
            Credentials::ApiKey {
                place: KeyPlace::Header(name),
                key,
            } => Some((name.to_ascii_lowercase(), key.expose().to_owned())),
            Credentials::ApiKey { .. } | Credentials::OAuth2(_) => None,
            Credentials::Basic { username, password } => Some((
                "authorization".into(),
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        username.expose(),
                        password.expose()
                    ))
                ),
            )),
        }
    }

    /// The query parameter to send, if the scheme uses one: (name, value).
    pub fn query(&self) -> Option<(&str, &str)> {
        match self {
            Credentials::Combined { primary, .. } => primary.query(),
            Credentials::ApiKey {
                place: KeyPlace::Query(name),
                key,
            } => Some((name, key.expose())),
            _ => None,
        }
    }

    /// Checks a request's credentials: `header` looks a header up by lower-case name, `query`
    /// looks a query parameter up.
    pub fn check<'r>(
        &self,
        header: impl Fn(&str) -> Option<&'r str>,
        query: impl Fn(&str) -> Option<&'r str>,
    ) -> AuthCheck {
        self.expected().check(header, query)
    }

    /// What a request must carry, worked out once for a server that checks many.
    pub fn expected(&self) -> ExpectedCredentials {
        ExpectedCredentials {
            headers: self.headers(),
            query: self
                .query()
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
            issued_tokens: self.oauth2().is_some(),
        }
    }
}

/// The header or query parameter a request must carry, and its value (a secret: never shown).
#[derive(Clone)]
pub struct ExpectedCredentials {
    headers: Vec<(String, String)>,
    query: Option<(String, String)>,
    /// OAuth: only tokens the partner issued are accepted, which the issuer checks; this
    /// check alone lets nothing in.
    issued_tokens: bool,
}

impl fmt::Debug for ExpectedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedCredentials")
            .field(
                "headers",
                &self
                    .headers
                    .iter()
                    .map(|(name, _)| name)
                    .collect::<Vec<_>>(),
            )
            .field("query", &self.query.as_ref().map(|(name, _)| name))
            .finish_non_exhaustive()
    }
}

impl ExpectedCredentials {
    /// Whether a request carrying these headers and query parameters is let in.
    pub fn check<'r>(
        &self,
        header: impl Fn(&str) -> Option<&'r str>,
        query: impl Fn(&str) -> Option<&'r str>,
    ) -> AuthCheck {
        if self.issued_tokens {
            return match header("authorization") {
                None => AuthCheck::Missing,
                Some(_) => AuthCheck::Wrong,
            };
        }
        // Every header and the query parameter must hold its value: none given is
        // "missing", anything else short of all of them right is "wrong".
        let mut given = 0;
        let mut right = 0;
        let expected: Vec<(Option<&str>, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| (header(name), value.as_str()))
            .chain(
                self.query
                    .iter()
                    .map(|(name, value)| (query(name), value.as_str())),
            )
            .collect();
        if expected.is_empty() {
            return AuthCheck::Accepted;
        }
        for (presented, value) in &expected {
            if let Some(presented) = presented {
                given += 1;
                right += usize::from(presented == value);
            }
        }
        match (given, right) {
            (0, _) => AuthCheck::Missing,
            (_, right) if right == expected.len() => AuthCheck::Accepted,
            _ => AuthCheck::Wrong,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::Profile;

    #[test]
    fn secrets_never_show_in_debug_output() {
        let credentials = Credentials::Bearer(Secret::new("s3cr3t-token"));
        assert!(!format!("{credentials:?}").contains("s3cr3t"));
    }

    #[test]
    fn a_missing_variable_is_named() {
        let profile = Profile::reference();
        let error = Credentials::resolve(&profile.auth, |_| None).unwrap_err();
        assert_eq!(
            error.to_string(),
            "auth.token-env: environment variable SPOKE_REFERENCE_TOKEN is not set (it must hold the partner's token)"
        );
    }

    #[test]
    fn token_urls_are_located_under_the_base_or_elsewhere() {
        let base = "https://api.acme.example/v2";
        let locate = |url: &str| TokenEndpoint::locate(url, base);
        assert_eq!(
            locate("/oauth/token"),
            Ok(TokenEndpoint::UnderBase("oauth/token".into()))
        );
        assert_eq!(
            locate("https://api.acme.example/v2/oauth/token"),
            Ok(TokenEndpoint::UnderBase("oauth/token".into()))
        );
        let elsewhere = locate("https://login.acme.example/oauth2/token").unwrap();
        assert_eq!(elsewhere.mock_path(), "/oauth2/token");
        assert!(matches!(
            locate("https://api.acme.example/oauth/token"),
            Ok(TokenEndpoint::Elsewhere(_))
        ));
        for bad in [
            "oauth/token",
            "//login.acme.example/token",
            "/token?x=1",
            "/{club_id}/token",
            "ftp://login.acme.example/token",
            "/",
        ] {
            assert!(locate(bad).is_err(), "{bad}");
        }
        let under = locate("/oauth/token").unwrap();
        let called_at = Url::parse("http://127.0.0.1:9/v2/").unwrap();
        assert_eq!(
            under.url(&called_at).unwrap().as_str(),
            "http://127.0.0.1:9/v2/oauth/token"
        );
    }

    #[test]
    fn scopes_are_tokens_separated_by_single_spaces() {
        assert_eq!(scope_tokens("a b:c"), Ok(vec!["a", "b:c"]));
        for bad in ["", "a  b", " a", "a\"b", "é"] {
            assert!(scope_tokens(bad).is_err(), "{bad}");
        }
    }

    fn oauth_profile(client_auth: &str) -> Profile {
        let text = crate::profile::REFERENCE_PROFILE.replace(
            "scheme = \"bearer\"\n",
            &format!(
                "scheme = \"oauth2-client-credentials\"\ntoken-url = \"https://login.acme.example/token\"\nclient-id-env = \"ID\"\nclient-secret-env = \"SECRET\"\nclient-auth = \"{client_auth}\"\nscope = \"a b\"\n"
            ),
        ).replace("token-env = \"SPOKE_REFERENCE_TOKEN\"\n", "");
        Profile::parse("oauth.toml", &text).unwrap_or_else(|error| panic!("{error}"))
    }

    #[test]
    fn oauth_credentials_resolve_and_travel_as_the_profile_says() {
        let profile = oauth_profile("basic");
        let missing = Credentials::resolve(&profile.auth, |name| {
            (name == "ID").then(|| "the-id".to_owned())
        })
        .unwrap_err();
        assert_eq!(missing.key, "client-secret-env");
        let credentials =
            Credentials::resolve(&profile.auth, |name| Some(format!("{name} 1&"))).unwrap();
        let client = credentials.oauth2().unwrap();
        assert_eq!(credentials.header(), None);
        assert_eq!(credentials.secrets(), vec!["ID 1&", "SECRET 1&"]);
        let (form, authorization) = client.token_request();
        assert_eq!(
            form,
            vec![
                ("grant_type", "client_credentials".to_owned()),
                ("scope", "a b".to_owned())
            ]
        );
        // Each part form-encoded before base64 (RFC 6749 §2.3.1).
        let expected = base64::engine::general_purpose::STANDARD.encode("ID+1%26:SECRET+1%26");
        assert_eq!(authorization, Some(format!("Basic {expected}")));
        let body = oauth_profile("body");
        let credentials = Credentials::generated(&body.auth, 1);
        let (form, authorization) = credentials.oauth2().unwrap().token_request();
        assert_eq!(authorization, None);
        assert_eq!(form[2].0, "client_id");
        assert_eq!(form[3].0, "client_secret");
    }

    #[test]
    fn a_foreign_token_endpoint_moves_to_a_mock_and_a_probe_presents_a_made_up_token() {
        let profile = oauth_profile("basic");
        let origin = Url::parse("http://127.0.0.1:4000/").unwrap();
        let credentials = Credentials::generated(&profile.auth, 1)
            .with_token_endpoint_at(&profile.partner.base_url, &origin);
        let client = credentials.oauth2().unwrap();
        let base = Url::parse("http://127.0.0.1:4000/").unwrap();
        assert_eq!(
            client
                .endpoint_url(&profile.partner.base_url, &base)
                .unwrap()
                .as_str(),
            "http://127.0.0.1:4000/token"
        );
        let presented = credentials.clone().as_presented();
        let Credentials::Bearer(token) = &presented else {
            panic!("{presented:?}");
        };
        assert!(!token.expose().is_empty());
        assert_ne!(Some(token.expose()), credentials.secrets().first().copied());
        // The mock's plain check lets no OAuth request in: only its issuer does.
        assert_eq!(
            credentials.check(|_| Some("Bearer anything"), |_| None),
            AuthCheck::Wrong
        );
    }

    #[test]
    fn bearer_checks_tell_missing_from_wrong() {
        let credentials = Credentials::Bearer(Secret::new("t"));
        assert_eq!(credentials.check(|_| None, |_| None), AuthCheck::Missing);
        assert_eq!(
            credentials.check(|_| Some("Bearer x"), |_| None),
            AuthCheck::Wrong
        );
        assert_eq!(
            credentials.check(|_| Some("Bearer t"), |_| None),
            AuthCheck::Accepted
        );
    }
}
