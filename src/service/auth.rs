//! Who is asking: API tokens (`Authorization: Bearer …`) and page sessions (a cookie, with a
//! CSRF token in every form), both resolved to a [`Viewer`] with a role and the partners it may
//! see. Tokens and session ids are random, shown once, and stored as SHA-256 digests only.

use super::error::ServiceError;
use super::storage::{Account, Partner, Storage};
use super::AppState;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "spoke_session";

/// How long a page session lives.
pub const SESSION_LIFETIME_MS: i64 = 12 * 3600 * 1000;

/// The admin role: sees and manages everything.
pub const ADMIN: &str = "admin";

/// The partner role: sees its own partners' profiles, runs and waivers.
pub const PARTNER: &str = "partner";

/// A random token of 32 bytes, hex: an API token, a session id or a CSRF token.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system gives random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The digest a token is stored as.
pub fn token_hash(token: &str) -> String {
    crate::digest::sha256(token.as_bytes())
}

/// How a request proved who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proof {
    /// An API token.
    Token,
    /// A page session, whose forms must carry this CSRF token.
    Session {
        /// The session's CSRF token.
        csrf: String,
    },
}

/// The account behind a request, with what it may see.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The account.
    pub account: Account,
    /// The partners it may see (every one, for an admin).
    pub partners: Vec<i64>,
    /// How it proved it.
    pub proof: Proof,
}

impl Viewer {
    /// Whether the account is an admin.
    pub fn is_admin(&self) -> bool {
        self.account.role == ADMIN
    }

    /// Whether it may see `partner`'s profiles and runs.
    pub fn can_see(&self, partner: i64) -> bool {
        self.is_admin() || self.partners.contains(&partner)
    }

    /// The partners to list: `None` means all (admin).
    pub fn partner_filter(&self) -> Option<&[i64]> {
        (!self.is_admin()).then_some(self.partners.as_slice())
    }

    /// Refuses non-admins.
    pub fn require_admin(&self) -> Result<(), ServiceError> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden("only an admin may do this".into()))
        }
    }

    /// The CSRF token forms must carry (sessions only).
    pub fn csrf(&self) -> &str {
        match &self.proof {
            Proof::Session { csrf } => csrf,
            Proof::Token => "",
        }
    }

    /// Checks a form's CSRF token against the session's.
    pub fn check_csrf(&self, given: &str) -> Result<(), ServiceError> {
        match &self.proof {
            Proof::Session { csrf } if constant_time_eq(csrf, given) => Ok(()),
            Proof::Session { .. } => Err(ServiceError::Forbidden(
                "the form is stale or came from another site: reload the page and try again".into(),
            )),
            Proof::Token => Ok(()),
        }
    }

    /// Refuses anything but an API token (API writes: a cookie alone must not suffice).
    pub fn require_token(&self) -> Result<(), ServiceError> {
        match self.proof {
            Proof::Token => Ok(()),
            Proof::Session { .. } => Err(ServiceError::Unauthorized(
                "API writes need `Authorization: Bearer TOKEN`".into(),
            )),
        }
    }

    /// The partner `slug`, when the viewer may see it; "not found" otherwise, so that other
    /// partners' names do not leak.
    pub async fn partner(&self, storage: &Storage, slug: &str) -> Result<Partner, ServiceError> {
        match storage.partner(slug).await? {
            Some(partner) if self.can_see(partner.id) => Ok(partner),
            _ => Err(ServiceError::NotFound(format!("no partner `{slug}`"))),
        }
    }
}

fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The session id in a request's cookies.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// Resolves a request's token or session; `None` when it carries neither (or a dead one).
pub async fn viewer(state: &AppState, headers: &HeaderMap) -> Result<Option<Viewer>, ServiceError> {
    let storage = &state.storage;
    let (account, proof) = if let Some(token) = bearer(headers) {
        match storage.account_by_token(&token_hash(token)).await? {
            Some(account) => (account, Proof::Token),
            None => return Ok(None),
        }
    } else if let Some(session) = session_cookie(headers) {
        match storage.session(&token_hash(&session)).await? {
            Some((account, csrf)) => (account, Proof::Session { csrf }),
            None => return Ok(None),
        }
    } else {
        return Ok(None);
    };
    let partners = storage.memberships(account.id).await?;
    Ok(Some(Viewer {
        account,
        partners,
        proof,
    }))
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = ServiceError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        viewer(state, &parts.headers).await?.ok_or_else(|| {
            ServiceError::Unauthorized("sign in, or send `Authorization: Bearer TOKEN`".into())
        })
    }
}

/// Opens a session for `account`; returns the `Set-Cookie` value.
pub async fn open_session(storage: &Storage, account: i64) -> Result<String, ServiceError> {
    let id = random_token();
    storage
        .create_session(
            &token_hash(&id),
            account,
            &random_token(),
            super::storage::now_ms() + SESSION_LIFETIME_MS,
        )
        .await?;
    Ok(format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}",
        SESSION_LIFETIME_MS / 1000
    ))
}

/// The `Set-Cookie` value that ends a session in the browser.
pub fn cleared_cookie() -> String {
    format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_as_digests() {
        let a = random_token();
        let b = random_token();
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(token_hash(&a).starts_with("sha256:"));
        assert!(!token_hash(&a).contains(&a));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            "theme=dark; spoke_session=abc123; other=1".parse().unwrap(),
        );
        assert_eq!(session_cookie(&headers).as_deref(), Some("abc123"));
    }

    #[test]
    fn csrf_tokens_compare_whole() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
