//! A partner that closes kept-alive connections without `Connection: close`: idempotent calls
//! are sent again on a fresh connection, a write is never sent twice, and a partner that
//! resets every connection is still reported as such.

use crate::helpers::root;
use spoke::auth::Credentials;
use spoke::connector::{ListFailure, PartnerClient};
use spoke::model::{Field, Record, RecordKind};
use spoke::partner::{self, PartnerState, RunningPartner, Sandbox};
use spoke::profile::{OperationKind, Profile};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the proxy in front of the mock partner ends its connections.
#[derive(Debug, Clone, Copy)]
enum Closing {
    /// Answers the first request of a connection and keeps it alive; a second request on it is
    /// read and met by a reset, unanswered.
    AtSecondRequest,
    /// Resets every connection at its first request, unanswered.
    AtFirstRequest,
    /// Answers every request and keeps the connection alive, but closes it once idle this long.
    WhenIdle(Duration),
}

/// A raw TCP proxy on 127.0.0.1:0 in front of a partner, closing connections as `closing`
/// says; it keeps the request line of every request it read.
struct Proxy {
    url: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr, closing: Closing) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve_connection(stream, upstream, closing, log.clone()));
            }
        });
        Proxy { url, seen }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    upstream: SocketAddr,
    closing: Closing,
    seen: Arc<Mutex<Vec<String>>>,
) {
    let mut buffer = Vec::new();
    for answered in 0usize.. {
        let request = match closing {
            Closing::WhenIdle(idle) => {
                match tokio::time::timeout(idle, read_message(&mut stream, &mut buffer)).await {
                    Ok(request) => request,
                    // Idle too long: an orderly close (FIN), with no `Connection: close` said.
                    Err(_) => return,
                }
            }
            _ => read_message(&mut stream, &mut buffer).await,
        };
        let Some(request) = request else { return };
        let line = String::from_utf8_lossy(
            &request[..request.iter().position(|b| *b == b'\r').unwrap_or(0)],
        )
        .into_owned();
        seen.lock().unwrap().push(line);
        let answer = match closing {
            Closing::AtSecondRequest => answered == 0,
            Closing::AtFirstRequest => false,
            Closing::WhenIdle(_) => true,
        };
        if !answer {
            // A reset (RST), not an orderly close: what a partner's idle reaper often sends.
            let _ = stream.set_zero_linger();
            return;
        }
        let response = forward(upstream, &request).await;
        if stream.write_all(&response).await.is_err() {
            return;
        }
    }
}

/// Reads one HTTP/1.1 request (head and `Content-Length` body) from `stream`, keeping what
/// follows it in `buffer`; `None` at the end of the stream.
async fn read_message(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(end) = find(buffer, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_ascii_lowercase();
            let length = head
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            let total = end + 4 + length;
            if buffer.len() >= total {
                return Some(buffer.drain(..total).collect());
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(read) => buffer.extend_from_slice(&chunk[..read]),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Sends `request` to the partner on a connection of its own and returns the answer as the
/// client gets it: kept alive (the partner's `Connection: close` removed) and framed by length.
async fn forward(upstream: SocketAddr, request: &[u8]) -> Vec<u8> {
    let line_end = find(request, b"\r\n").unwrap() + 2;
    let mut outgoing = request[..line_end].to_vec();
    outgoing.extend_from_slice(b"connection: close\r\n");
    outgoing.extend_from_slice(&request[line_end..]);
    let mut partner = TcpStream::connect(upstream).await.unwrap();
    partner.write_all(&outgoing).await.unwrap();
    let mut response = Vec::new();
    partner.read_to_end(&mut response).await.unwrap();
    let end = find(&response, b"\r\n\r\n").expect("the partner answers a head");
    let head = String::from_utf8_lossy(&response[..end]).into_owned();
    let body = &response[end + 4..];
    let mut lines: Vec<&str> = head
        .split("\r\n")
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    let framed = lines.iter().any(|line| {
        let line = line.to_ascii_lowercase();
        line.starts_with("content-length:") || line.starts_with("transfer-encoding:")
    });
    let length = format!("content-length: {}", body.len());
    if !framed {
        lines.push(&length);
    }
    let mut out = lines.join("\r\n").into_bytes();
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// A mock partner of the reference profile whose staff list runs over several pages.
async fn paged_partner() -> (Profile, RunningPartner, Credentials) {
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 7);
    let state = PartnerState::new(
        profile.clone(),
        Sandbox::synthetic(80, 3),
        credentials.clone(),
    );
    let running = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    (profile, running, credentials)
}

fn client_through(profile: &Profile, proxy: &Proxy, credentials: &Credentials) -> PartnerClient {
    PartnerClient::new(
        Arc::new(profile.clone()),
        &proxy.url,
        credentials.clone(),
        spoke::connector::ClientLimits::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn a_paged_list_is_read_whole_through_a_partner_that_silently_closes_reused_connections() {
    let (profile, running, credentials) = paged_partner().await;
    let proxy = Proxy::start(running.addr, Closing::AtSecondRequest).await;
    let client = client_through(&profile, &proxy, &credentials);

    let outcome = client.list_all(OperationKind::StaffList, "staff").await;

    assert_eq!(outcome.failure, None, "{:?}", client.recorder().snapshot());
    assert_eq!(outcome.records.len(), 80);
    // 25 a page: four pages, one exchange each, the ones on a reused connection sent twice.
    assert_eq!(outcome.exchanges.len(), 4);
    let gets = proxy.seen();
    assert!(gets.iter().all(|line| line.starts_with("GET ")), "{gets:?}");
    assert!(gets.len() > 4 && gets.len() <= 8, "{gets:?}");
}

#[tokio::test]
async fn a_write_on_a_reused_connection_closed_before_an_answer_is_reported_and_never_sent_twice() {
    let (profile, running, credentials) = paged_partner().await;
    let proxy = Proxy::start(running.addr, Closing::AtSecondRequest).await;
    let client = client_through(&profile, &proxy, &credentials);
    // A first call leaves the connection kept alive for the write.
    let _ = client
        .call(OperationKind::SourceList, "sources", None, None, &[], None)
        .await;
    let record = Record::from([
        (Field::FirstName, "Ada".to_owned()),
        (Field::LastName, "Closed".to_owned()),
        (Field::ExternalId, "it-closed-1".to_owned()),
    ]);

    let error = client
        .write(OperationKind::ProspectCreate, "deliver", &record, None)
        .await
        .expect_err("no answer came");

    assert!(
        error.message.contains("closed before an answer")
            && error.message.contains("not sent again"),
        "{}",
        error.message
    );
    let posts = proxy
        .seen()
        .into_iter()
        .filter(|line| line.starts_with("POST "))
        .count();
    assert_eq!(posts, 1, "{:?}", proxy.seen());
    let data = running.state.store().read();
    let held = data
        .records(RecordKind::Prospect)
        .into_iter()
        .flat_map(|records| records.values())
        .filter(|stored| stored.get(Field::ExternalId) == Some("it-closed-1"))
        .count();
    assert!(held <= 1, "held {held} times");
}

#[tokio::test]
async fn a_partner_resetting_every_connection_is_reported_as_a_reset_after_one_fresh_try() {
    let (profile, running, credentials) = paged_partner().await;
    let proxy = Proxy::start(running.addr, Closing::AtFirstRequest).await;
    let client = client_through(&profile, &proxy, &credentials);

    let outcome = client.list_all(OperationKind::StaffList, "staff").await;

    let Some(ListFailure::Unreachable { message, .. }) = &outcome.failure else {
        panic!("not unreachable: {:?}", outcome.failure);
    };
    assert!(
        message.contains("closed before an answer")
            && message.contains("a fresh connection failed too"),
        "{message}"
    );
    assert_eq!(proxy.seen().len(), 2, "{:?}", proxy.seen());
}

#[tokio::test]
async fn certify_passes_through_a_partner_that_closes_idle_kept_alive_connections() {
    // The reference profile without credentials, so the certification reaches the mock
    // partner through the proxy with nothing to pass on.
    let text = std::fs::read_to_string(root().join("fixtures/profiles/reference.toml")).unwrap();
    let text = text
        .replace("scheme = \"bearer\"", "scheme = \"none\"")
        .replace("token-env = \"SPOKE_REFERENCE_TOKEN\"", "");
    let profile = Profile::parse("reference-open.toml", &text).unwrap();
    let (running, _) = crate::helpers::spawn_partner(&profile).await;
    let proxy = Proxy::start(running.addr, Closing::WhenIdle(Duration::from_millis(50))).await;
    let mut options = crate::helpers::mock_certify(profile, Default::default(), 42);
    options.mock = false;
    options.base_url = Some(proxy.url.clone());

    let report = spoke::certify::certify_with_env(options, &(), &|_| None)
        .await
        .expect("the run is carried out");

    assert_eq!(report.exit_code, 0, "{:#?}", report.verdicts);
    assert!(proxy.seen().len() > 20, "{:?}", proxy.seen());
}

#[tokio::test]
async fn a_redirect_loop_through_a_partner_that_silently_closes_reused_connections_is_a_loop() {
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 7);
    let options = spoke::partner::PartnerOptions {
        faults: [spoke::partner::Fault::StaffListRedirectLoop]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let state = PartnerState::with_options(
        profile.clone(),
        Sandbox::default_seed(),
        credentials.clone(),
        options,
    );
    let running = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let proxy = Proxy::start(running.addr, Closing::AtSecondRequest).await;
    let client = client_through(&profile, &proxy, &credentials);

    let outcome = client.list_all(OperationKind::StaffList, "staff").await;

    let Some(ListFailure::BadPage { message, .. }) = &outcome.failure else {
        panic!("not a bad page: {:?}", outcome.failure);
    };
    assert!(message.contains("redirects did not end"), "{message}");
}

#[tokio::test]
async fn an_update_on_a_reused_connection_closed_before_an_answer_is_sent_again_being_idempotent() {
    let (profile, running, credentials) = paged_partner().await;
    let direct = crate::helpers::client_for(&profile, &running, &credentials);
    let mut record = Record::from([
        (Field::FirstName, "Ada".to_owned()),
        (Field::LastName, "Kept".to_owned()),
        (Field::ExternalId, "it-closed-2".to_owned()),
    ]);
    let created = direct
        .write(OperationKind::ProspectCreate, "deliver", &record, None)
        .await
        .unwrap();
    let id = created.id.expect("the create answers an id");
    let proxy = Proxy::start(running.addr, Closing::AtSecondRequest).await;
    let client = client_through(&profile, &proxy, &credentials);
    let _ = client
        .call(OperationKind::SourceList, "sources", None, None, &[], None)
        .await;
    record.insert(Field::LastName, "Updated".to_owned());

    let saved = client
        .write(OperationKind::ProspectUpdate, "update", &record, Some(&id))
        .await
        .expect("the fresh connection answers");

    assert!(saved.accepted(), "HTTP {}", saved.answer.status);
    let puts = proxy
        .seen()
        .into_iter()
        .filter(|line| line.starts_with("PUT "))
        .count();
    assert_eq!(puts, 2, "{:?}", proxy.seen());
    let data = running.state.store().read();
    let held: Vec<_> = data
        .records(RecordKind::Prospect)
        .into_iter()
        .flat_map(|records| records.values())
        .filter(|stored| stored.get(Field::ExternalId) == Some("it-closed-2"))
        .map(|stored| stored.get(Field::LastName).map(str::to_owned))
        .collect();
    assert_eq!(held, vec![Some("Updated".to_owned())]);
}
