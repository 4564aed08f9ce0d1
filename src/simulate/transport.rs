//! The delivery transport of `simulate` for plain-HTTP partners: one kept-alive HTTP/1.1
//! connection per worker (hyper, no pool), with each create's request line and headers
//! rendered once for the whole run.

use crate::auth::Credentials;
use crate::connector::ClientLimits;
use crate::model::RecordKind;
use crate::profile::{Operation, Profile, SlotValues};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use std::net::SocketAddr;
use std::time::Duration;

/// Everything invariant about the creates of one run, rendered once.
#[derive(Debug)]
pub(super) struct Target {
    address: SocketAddr,
    headers: HeaderMap,
    creates: Vec<(RecordKind, CreateLine)>,
    request_timeout: Duration,
    connect_timeout: Duration,
    max_body: usize,
}

/// The method and origin-form URI of one kind's create.
#[derive(Debug)]
struct CreateLine {
    method: Method,
    uri: Uri,
}

/// An answer as the delivery logic needs it.
pub(super) struct RawAnswer {
    /// HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The `Retry-After` header in whole seconds, if any.
    pub retry_after: Option<Duration>,
    /// The body, whole unless `cut_off`.
    pub body: Bytes,
    /// Whether the body was over the size limit (and not read to its end).
    pub cut_off: bool,
}

/// A request that got no answer.
#[derive(Debug, Clone, Copy)]
pub(super) struct NoAnswer {
    /// Whether it timed out.
    pub timed_out: bool,
}

/// The tenancy's values for the slots of a create's path and query.
struct Tenancy<'a>(&'a Profile);

impl SlotValues for Tenancy<'_> {
    fn value(&self, slot: crate::profile::Slot) -> Option<&str> {
        self.0.tenancy.value(slot)
    }
}

impl Target {
    /// The target for `base_url`, or `None` when this transport cannot serve it (not plain
    /// http, a create whose URL needs more than the tenancy, or a body that is not JSON) and
    /// the general client must.
    pub(super) async fn new(
        profile: &Profile,
        base_url: &str,
        credentials: &Credentials,
        limits: &ClientLimits,
    ) -> Option<Target> {
        let mut base = Url::parse(base_url).ok()?;
        if base.scheme() != "http" || !base.username().is_empty() || base.password().is_some() {
            return None;
        }
        // OAuth tokens are fetched and renewed by the general client.
        if credentials.oauth2().is_some() {
            return None;
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let host = base.host_str()?.to_owned();
        let port = base.port_or_known_default()?;
        let address = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .ok()?
            .next()?;
        let mut headers = HeaderMap::new();
        let authority = match base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        headers.insert(header::HOST, HeaderValue::from_str(&authority).ok()?);
        headers.insert(
            header::USER_AGENT,
            HeaderValue::from_static(concat!("spoke/", env!("CARGO_PKG_VERSION"))),
        );
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in credentials.headers() {
            let mut value = HeaderValue::from_str(&value).ok()?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_bytes(name.as_bytes()).ok()?, value);
        }
        let mut creates = Vec::new();
        for kind in [RecordKind::Prospect, RecordKind::Member] {
            let Some(operation) = profile
                .create_operation(kind)
                .and_then(|create| profile.operation(create))
            else {
                continue;
            };
            // XML and SOAP bodies, and their content types, are the general client's; so are
            // typed or asymmetric mappings, fixed headers and query parameters, and answers
            // whose id or conflict the lean reader would not find.
            let lean_shape = profile.format_of(operation) == crate::profile::BodyFormat::Json
                && profile.codec(kind).is_plain()
                && operation.body.as_ref().is_none_or(|at| at.is_plain())
                && operation.record.as_ref().is_none_or(|at| at.is_plain())
                && operation.id_at.is_none()
                && operation.id_pattern.is_none()
                && operation.id_from != Some(crate::profile::IdFrom::Header)
                && operation.conflict.is_none()
                && operation.answer.is_none()
                && operation.headers.is_empty()
                && profile.partner.headers.is_empty()
                && profile.partner.query.is_empty();
            if !lean_shape {
                return None;
            }
            creates.push((kind, create_line(profile, operation, &base, credentials)?));
        }
        Some(Target {
            address,
            headers,
            creates,
            request_timeout: limits.request_timeout,
            connect_timeout: limits.connect_timeout,
            max_body: limits.max_body,
        })
    }

    fn line(&self, kind: RecordKind) -> Option<&CreateLine> {
        self.creates
            .iter()
            .find(|(of, _)| *of == kind)
            .map(|(_, line)| line)
    }
}

/// The create's URL with its slots filled from the tenancy and the API key added where it
/// travels in the query, as the general client builds it.
fn create_line(
    profile: &Profile,
    operation: &Operation,
    base: &Url,
    credentials: &Credentials,
) -> Option<CreateLine> {
    let slots = Tenancy(profile);
    let path = operation
        .path
        .render(&slots, |value| {
            percent_encoding::utf8_percent_encode(value, PATH_SEGMENT).to_string()
        })
        .ok()?;
    let mut url = base.join(path.trim_start_matches('/')).ok()?;
    {
        let mut pairs = url.query_pairs_mut();
        for (name, template) in &operation.query {
            pairs.append_pair(name, &template.render(&slots, str::to_owned).ok()?);
        }
        if let Some((name, key)) = credentials.query() {
            pairs.append_pair(name, key);
        }
    }
    let origin_form = match url.query() {
        Some(query) if !query.is_empty() => format!("{}?{query}", url.path()),
        _ => url.path().to_owned(),
    };
    Some(CreateLine {
        method: Method::from_bytes(operation.method.as_str().as_bytes()).ok()?,
        uri: origin_form.parse().ok()?,
    })
}

/// Path segment characters kept as they are (the same set as the general client's).
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// One worker's connection to the partner, opened when first needed and again after a
/// failure.
pub(super) struct Lane<'t> {
    target: &'t Target,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl<'t> Lane<'t> {
    /// A lane with no connection yet.
    pub(super) fn new(target: &'t Target) -> Self {
        Lane {
            target,
            sender: None,
        }
    }

    /// Posts `body` to the create of `kind` and reads the answer, within the request timeout.
    pub(super) async fn create(
        &mut self,
        kind: RecordKind,
        body: Bytes,
    ) -> Result<RawAnswer, NoAnswer> {
        let Some(line) = self.target.line(kind) else {
            return Err(NoAnswer { timed_out: false });
        };
        let timeout = self.target.request_timeout;
        match tokio::time::timeout(timeout, self.exchange(line, body)).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(no_answer)) => {
                self.sender = None;
                Err(no_answer)
            }
            Err(_) => {
                // The connection may still carry the late answer: start afresh.
                self.sender = None;
                Err(NoAnswer { timed_out: true })
            }
        }
    }

    async fn exchange(&mut self, line: &CreateLine, body: Bytes) -> Result<RawAnswer, NoAnswer> {
        let broken = NoAnswer { timed_out: false };
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = line.method.clone();
        *request.uri_mut() = line.uri.clone();
        *request.headers_mut() = self.target.headers.clone();
        // A kept-alive connection the partner closed meanwhile gets the request back unsent:
        // it goes once more on a fresh connection, which is no resend.
        let mut fresh = false;
        let response = loop {
            if self.sender.as_ref().is_none_or(SendRequest::is_closed) {
                self.sender = Some(self.connect().await?);
                fresh = true;
            }
            let Some(sender) = self.sender.as_mut() else {
                return Err(broken);
            };
            if sender.ready().await.is_err() {
                self.sender = None;
                if fresh {
                    return Err(broken);
                }
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => break response,
                Err(mut error) => match error.take_message() {
                    Some(unsent) if !fresh => {
                        self.sender = None;
                        request = unsent;
                    }
                    _ => return Err(broken),
                },
            }
        };
        let status = response.status().as_u16();
        let header_text = |name: header::HeaderName| {
            response
                .headers()
                .get(name)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        };
        let location = header_text(header::LOCATION);
        let retry_after = header_text(header::RETRY_AFTER)
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let mut incoming = response.into_body();
        let mut body = Bytes::new();
        let mut more: Vec<u8> = Vec::new();
        let mut cut_off = false;
        while let Some(frame) = incoming.frame().await {
            let Ok(frame) = frame else {
                return Err(broken);
            };
            let Ok(data) = frame.into_data() else {
                continue;
            };
            if body.len() + more.len() + data.len() > self.target.max_body {
                cut_off = true;
                // The rest stays unread: this connection cannot carry another request.
                self.sender = None;
                break;
            }
            if body.is_empty() && more.is_empty() {
                body = data;
            } else {
                if more.is_empty() {
                    more.extend_from_slice(&body);
                }
                more.extend_from_slice(&data);
            }
        }
        if !more.is_empty() {
            body = Bytes::from(more);
        }
        Ok(RawAnswer {
            status,
            location,
            retry_after,
            body,
            cut_off,
        })
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, NoAnswer> {
        let broken = |_| NoAnswer { timed_out: false };
        let stream = tokio::time::timeout(
            self.target.connect_timeout,
            tokio::net::TcpStream::connect(self.target.address),
        )
        .await
        .map_err(|_| NoAnswer { timed_out: true })?
        .map_err(broken)?;
        stream.set_nodelay(true).map_err(broken)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|_| NoAnswer { timed_out: false })?;
        tokio::spawn(async move {
            // How the connection ended shows in the requests it failed.
            let _ = connection.await;
        });
        Ok(sender)
    }
}

/// The scalar at `segments` in a JSON document, as text (strings as they are, numbers and
/// booleans in their JSON spelling), read without building the document: an answer's id
/// costs one small string. `None` when the document is not JSON or holds no scalar there.
pub(super) fn scalar_at(document: &[u8], segments: &[String]) -> Option<String> {
    let mut deserializer = serde_json::Deserializer::from_slice(document);
    let found = serde::de::DeserializeSeed::deserialize(Pick { segments }, &mut deserializer);
    deserializer.end().ok()?;
    found.ok()?
}

/// Walks to the value at `segments`, skipping everything else.
struct Pick<'s> {
    segments: &'s [String],
}

impl<'de> serde::de::DeserializeSeed<'de> for Pick<'_> {
    type Value = Option<String>;

    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Pick<'_> {
    type Value = Option<String>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_str<E>(self, text: &str) -> Result<Self::Value, E> {
        Ok(self.segments.is_empty().then(|| text.to_owned()))
    }

    fn visit_bool<E>(self, flag: bool) -> Result<Self::Value, E> {
        Ok(self.segments.is_empty().then(|| flag.to_string()))
    }

    fn visit_u64<E>(self, number: u64) -> Result<Self::Value, E> {
        Ok(self.segments.is_empty().then(|| number.to_string()))
    }

    fn visit_i64<E>(self, number: i64) -> Result<Self::Value, E> {
        Ok(self.segments.is_empty().then(|| number.to_string()))
    }

    fn visit_f64<E>(self, number: f64) -> Result<Self::Value, E> {
        Ok(self
            .segments
            .is_empty()
            .then(|| {
                serde_json::Number::from_f64(number).map(|n| crate::profile::path::number_text(&n))
            })
            .flatten())
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut items: A,
    ) -> Result<Self::Value, A::Error> {
        while items.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut entries: A,
    ) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(on_path) = match self.segments.first() {
            Some(first) => entries.next_key_seed(KeyIs(first))?,
            None => entries.next_key::<serde::de::IgnoredAny>()?.map(|_| false),
        } {
            if on_path {
                // The last of duplicate keys wins, as when the document is built.
                found = entries.next_value_seed(Pick {
                    segments: &self.segments[1..],
                })?;
            } else {
                entries.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether a key is the wanted one, compared without copying it.
struct KeyIs<'s>(&'s str);

impl<'de> serde::de::DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<bool, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::scalar_at;
    use crate::profile::path::scalar_text;
    use crate::profile::JsonPath;

    /// The pick agrees with building the document and reading the path, on every shape.
    #[test]
    fn picking_a_scalar_agrees_with_reading_the_built_document() {
        let documents = [
            r#"{"id":"P-1","name":"Zoë"}"#,
            r#"{"data":{"id":17,"tags":[1,{"id":2}]},"id":"outer"}"#,
            r#"{"data":{"id":1.5e3}}"#,
            r#"{"data":{"id":true}}"#,
            r#"{"data":{"id":null}}"#,
            r#"{"data":{"id":{"nested":1}}}"#,
            r#"{"data":[{"id":1}]}"#,
            r#"{"id":"first","id":"second"}"#,
            r#"{"i\u0064":"escaped key"}"#,
            r#""just a string""#,
            r#"{"id":"P-1"} trailing"#,
            r#"{"id":"P-1""#,
            "",
        ];
        for path in ["id", "data.id", "/data/id", "."] {
            let path = JsonPath::parse(path).unwrap();
            for document in documents {
                let built = serde_json::from_slice::<serde_json::Value>(document.as_bytes())
                    .ok()
                    .and_then(|json| path.get(&json).and_then(scalar_text));
                assert_eq!(
                    scalar_at(document.as_bytes(), path.keys().unwrap()),
                    built,
                    "{path} in {document}"
                );
            }
        }
    }
}
