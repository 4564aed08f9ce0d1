//! The mock partner's limits: header and body read timeouts, the record cap, and the store
//! dump, streamed whole or paged.

use serde_json::{json, Value};
use spoke::auth::Credentials;
use spoke::partner::{self, PartnerOptions, PartnerState, RunningPartner, Sandbox};
use spoke::profile::Profile;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PROSPECTS: &str = "/api/v1/clients/C-1001/clubs/CLUB-7/prospects";

/// The reference partner with `options`, on 127.0.0.1, and its credentials' header.
async fn reference_partner(options: PartnerOptions) -> (RunningPartner, (String, String)) {
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 3);
    let header = credentials
        .header()
        .expect("the reference profile sends a header");
    let state = PartnerState::with_options(profile, Sandbox::default_seed(), credentials, options);
    let running = partner::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds 127.0.0.1:0");
    (running, header)
}

/// Reads until the server closes the connection (or resets it), within `within`; what it
/// sent, or `None` if it kept the connection open that long.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut received = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buffer = [0u8; 4096];
        loop {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    });
    read.await.ok().map(|()| received)
}

#[tokio::test]
async fn a_client_trickling_its_headers_is_cut_off_after_the_header_timeout() {
    let (running, _) = reference_partner(PartnerOptions {
        header_timeout: Duration::from_millis(300),
        ..PartnerOptions::default()
    })
    .await;
    let stream = TcpStream::connect(running.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let started = Instant::now();
    // One header line every 50 ms: each byte is on time, the whole is not.
    let trickle = tokio::spawn(async move {
        writer
            .write_all(b"GET /__spoke/health HTTP/1.1\r\n")
            .await?;
        for line in 0..200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            writer
                .write_all(format!("x-{line}: y\r\n").as_bytes())
                .await?;
        }
        Ok::<_, std::io::Error>(())
    });
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buffer = [0u8; 1024];
        loop {
            match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    let elapsed = started.elapsed();
    trickle.abort();
    assert!(
        closed.is_ok(),
        "the connection was still open after 5 s of trickled headers"
    );
    assert!(
        elapsed >= Duration::from_millis(250),
        "closed after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_body_shorter_than_its_content_length_is_answered_408_within_the_body_timeout() {
    let (running, (name, value)) = reference_partner(PartnerOptions {
        body_timeout: Duration::from_millis(300),
        ..PartnerOptions::default()
    })
    .await;
    let mut stream = TcpStream::connect(running.addr).await.unwrap();
    let request = format!(
        "POST {PROSPECTS} HTTP/1.1\r\nhost: x\r\n{name}: {value}\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{{\"first_name\":"
    );
    let started = Instant::now();
    stream.write_all(request.as_bytes()).await.unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(5))
        .await
        .expect("the connection is closed after the 408");
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request-timeout\""), "{answer}");
    assert!(answer.contains("Content-Length"), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(250),
        "answered after {elapsed:?}"
    );
    assert!(running.state.store().read().prospects.is_empty());
}

#[tokio::test]
async fn two_hundred_trickling_connections_do_not_stop_a_normal_request() {
    let (running, _) = reference_partner(PartnerOptions::default()).await;
    let mut stalled = Vec::new();
    for _ in 0..200 {
        let mut stream = TcpStream::connect(running.addr).await.unwrap();
        stream
            .write_all(b"GET /__spoke/health HTTP/1.1\r\nx-slow: ")
            .await
            .unwrap();
        stalled.push(stream);
    }
    let health = tokio::time::timeout(
        Duration::from_secs(5),
        reqwest::get(format!("{}/__spoke/health", running.base_url())),
    )
    .await
    .expect("answered while 200 connections trickle")
    .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    // They are still open: the request was served beside them, not after they were dropped.
    let mut probe = [0u8; 1];
    let still_open = tokio::time::timeout(Duration::from_millis(50), stalled[0].read(&mut probe));
    assert!(still_open.await.is_err(), "a stalled connection was closed");
}

/// Creates a prospect named `first`; gives back the status, the answer and the new id.
async fn create(
    client: &reqwest::Client,
    running: &RunningPartner,
    header: &(String, String),
    first: &str,
) -> (u16, Value, String) {
    let response = client
        .post(format!("{}{PROSPECTS}", running.base_url()))
        .header(&header.0, &header.1)
        .json(&json!({"first_name": first, "last_name": "L", "club_id": "CLUB-7"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    // The reference partner answers the record in `data`.
    let id = answer["data"]["id"].as_str().unwrap_or_default().to_owned();
    (status, answer, id)
}

#[tokio::test]
async fn creates_past_max_records_get_507_naming_the_cap_and_updates_still_work() {
    let (running, header) = reference_partner(PartnerOptions {
        max_records: Some(3),
        ..PartnerOptions::default()
    })
    .await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, answer, id) = create(&client, &running, &header, &format!("F{n}")).await;
        assert_eq!(status, 201, "{answer}");
        ids.push(id);
    }
    let (status, answer, _) = create(&client, &running, &header, "Fourth").await;
    assert_eq!(status, 507, "{answer}");
    assert_eq!(answer["error"]["code"], "store-full");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("3") && message.contains("--max-records"),
        "{message}"
    );
    assert_eq!(running.state.store().read().prospects.len(), 3);
    // An update of a held record is no new record.
    let updated = client
        .put(format!("{}{PROSPECTS}/{}", running.base_url(), ids[1]))
        .header(&header.0, &header.1)
        .json(&json!({"first_name": "Renamed", "last_name": "L", "club_id": "CLUB-7"}))
        .send()
        .await
        .unwrap();
    assert_eq!(updated.status(), 200);
    let store = running.state.store().read();
    let renamed = store.prospects.get(&ids[1]).unwrap();
    assert_eq!(renamed.get(spoke::model::Field::FirstName), Some("Renamed"));
}

async fn get_json(url: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status().as_u16();
    let link = response
        .headers()
        .get("link")
        .map(|link| link.to_str().unwrap().to_owned());
    (status, link, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_whole_dump_is_streamed_in_chunks_and_lists_every_record_once() {
    let (running, _) = reference_partner(PartnerOptions::default()).await;
    let total = partner::store::DUMP_CHUNK * 2 + 7;
    {
        let mut data = running.state.store().write();
        for n in 0..total {
            let id = data.next_id(spoke::model::RecordKind::Prospect);
            let record = spoke::model::Record::from([
                (spoke::model::Field::Id, id),
                (spoke::model::Field::FirstName, format!("Zoë \"{n}\"")),
            ]);
            data.put(spoke::model::RecordKind::Prospect, record);
        }
    }
    let response = reqwest::get(format!("{}/__spoke/store", running.base_url()))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Streamed: no length known beforehand.
    assert!(response.headers().get("content-length").is_none());
    assert_eq!(response.headers()["content-type"], "application/json");
    let dump: Value = response.json().await.unwrap();
    let prospects = dump["prospects"].as_array().unwrap();
    assert_eq!(prospects.len(), total);
    assert_eq!(prospects[5]["first-name"], "Zoë \"5\"");
    assert_eq!(prospects[total - 1]["id"], format!("P-{total:06}"));
    assert_eq!(dump["staff"].as_array().unwrap().len(), 143);
    assert_eq!(dump["sources"].as_array().unwrap().len(), 16);
    assert_eq!(dump["members"], json!([]));
    assert!(dump["staff"][0]["email"].is_string());
}

#[tokio::test]
async fn paging_the_dump_walks_every_record_once_while_saves_go_on() {
    let (running, header) = reference_partner(PartnerOptions::default()).await;
    let client = reqwest::Client::new();
    let mut before = Vec::new();
    for n in 0..120 {
        let (status, answer, id) = create(&client, &running, &header, &format!("F{n}")).await;
        assert_eq!(status, 201, "{answer}");
        before.push(id);
    }
    // Records kept beside the numbered slots (ids the store did not hand out) are paged too.
    {
        let mut data = running.state.store().write();
        for id in ["lead-b", "lead-a", "P-999999999"] {
            let record = spoke::model::Record::from([(spoke::model::Field::Id, id.to_owned())]);
            data.put(spoke::model::RecordKind::Prospect, record);
            before.push(id.to_owned());
        }
    }
    // Creates and updates of the first records while the pages are walked.
    let saver = {
        let (client, base, header, first) = (
            client.clone(),
            running.base_url(),
            header.clone(),
            before[0].clone(),
        );
        tokio::spawn(async move {
            for n in 0..150 {
                let body =
                    json!({"first_name": format!("G{n}"), "last_name": "L", "club_id": "CLUB-7"});
                let (method, url) = match n % 2 {
                    0 => (reqwest::Method::POST, format!("{base}{PROSPECTS}")),
                    _ => (reqwest::Method::PUT, format!("{base}{PROSPECTS}/{first}")),
                };
                let response = client
                    .request(method, url)
                    .header(&header.0, &header.1)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(response.status().is_success());
            }
        })
    };
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut next = Some("/__spoke/store?kind=prospects&limit=7".to_owned());
    let mut pages = 0;
    while let Some(path) = next {
        let (status, link, page) = get_json(&format!("{}{path}", running.base_url())).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["kind"], "prospects");
        let records = page["records"].as_array().unwrap();
        assert_eq!(page["count"], records.len());
        assert!(records.len() <= 7);
        for record in records {
            *seen
                .entry(record["id"].as_str().unwrap().to_owned())
                .or_default() += 1;
        }
        next = page["next"].as_str().map(str::to_owned);
        assert_eq!(
            link,
            next.as_ref().map(|next| format!("<{next}>; rel=\"next\""))
        );
        pages += 1;
        tokio::task::yield_now().await;
    }
    saver.await.unwrap();
    assert!(pages >= 123 / 7, "{pages} pages");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "listed more than once: {twice:?}");
    let missed: Vec<_> = before.iter().filter(|id| !seen.contains_key(*id)).collect();
    assert!(missed.is_empty(), "never listed: {missed:?}");
    // The last page was the end: everything held now was seen or came after the walk.
    assert!(seen.len() <= running.state.store().read().prospects.len());
}

#[tokio::test]
async fn a_page_of_staff_goes_on_after_the_id_given_and_bad_parameters_are_named() {
    let (running, _) = reference_partner(PartnerOptions::default()).await;
    let base = running.base_url();
    let (_, _, first) = get_json(&format!("{base}/__spoke/store?kind=staff&limit=2")).await;
    let ids: Vec<&str> = first["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|staff| staff["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2);
    let (_, _, second) = get_json(&format!("{base}{}", first["next"].as_str().unwrap())).await;
    let all = running.state.store().read().staff.clone();
    assert_eq!(ids, [all[0].id.as_str(), all[1].id.as_str()]);
    assert_eq!(second["records"][0]["id"], all[2].id);
    let last = &all[all.len() - 1].id;
    let (status, _, end) = get_json(&format!(
        "{base}/__spoke/store?kind=staff&after={}",
        form_urlencoded::byte_serialize(last.as_bytes()).collect::<String>()
    ))
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        (end["count"].clone(), end["next"].clone()),
        (json!(0), Value::Null)
    );
    for (query, field) in [
        ("kind=leads", "kind"),
        ("limit=5", "kind"),
        ("kind=staff&limit=0", "limit"),
        ("kind=staff&limit=10001", "limit"),
        ("kind=staff&after=nobody", "after"),
        ("kind=prospects&after=lead-1", "after"),
        ("kind=staff&page=2", "page"),
    ] {
        let (status, _, answer) = get_json(&format!("{base}/__spoke/store?{query}")).await;
        assert_eq!(status, 400, "{query}: {answer}");
        assert_eq!(answer["error"]["field"], field, "{query}: {answer}");
    }
}

#[tokio::test]
async fn a_body_broken_off_by_the_client_is_a_400_not_a_413() {
    use tower::ServiceExt;
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 3);
    let (name, value) = credentials.header().unwrap();
    let state = PartnerState::new(profile, Sandbox::default_seed(), credentials);
    let broken = futures_util::stream::iter([
        Ok(axum::body::Bytes::from_static(b"{\"first_name\":")),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        )),
    ]);
    let request = axum::http::Request::post(PROSPECTS)
        .header(name, value)
        .header("content-type", "application/json")
        .body(axum::body::Body::from_stream(broken))
        .unwrap();
    let response = partner::router(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), 400);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let answer: Value = serde_json::from_slice(&body).unwrap();
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("ended before it was whole"),
        "{answer}"
    );
}
