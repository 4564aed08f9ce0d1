//! Credentials named by a profile's `[auth]`: resolved from the environment, applied by the
//! Connector client, checked by the mock partner, and never printed.

use crate::profile::{AuthScheme, AuthSection};
use base64::Engine;
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
        }
    }

    /// The header to send, if the scheme uses one: (name, value).
    pub fn header(&self) -> Option<(String, String)> {
        match self {
            Credentials::None => None,
            Credentials::Bearer(token) => {
                Some(("authorization".into(), format!("Bearer {}", token.expose())))
            }
            Credentials::ApiKey {
                place: KeyPlace::Header(name),
                key,
            } => Some((name.to_ascii_lowercase(), key.expose().to_owned())),
            Credentials::ApiKey { .. } => None,
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
            header: self.header(),
            query: self
                .query()
                .map(|(name, value)| (name.to_owned(), value.to_owned())),
        }
    }
}

/// The header or query parameter a request must carry, and its value (a secret: never shown).
#[derive(Clone)]
pub struct ExpectedCredentials {
    header: Option<(String, String)>,
    query: Option<(String, String)>,
}

impl fmt::Debug for ExpectedCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExpectedCredentials")
            .field("header", &self.header.as_ref().map(|(name, _)| name))
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
        let (presented, expected) = match (&self.header, &self.query) {
            (Some((name, expected)), _) => (header(name), expected),
            (None, Some((name, expected))) => (query(name), expected),
            (None, None) => return AuthCheck::Accepted,
        };
        match presented {
            None => AuthCheck::Missing,
            Some(value) if value == expected => AuthCheck::Accepted,
            Some(_) => AuthCheck::Wrong,
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
