//! The benchmark's comparison: a wiremock MockServer configured with the mock partner's exact
//! answers for a staff page and a prospect create; `PORT --no-journal` turns off the journal of
//! received requests that wiremock keeps by default.

#[path = "common/mod.rs"]
mod bench_common;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() {
    let (staff, created) = bench_common::captured_answers().await;
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", bench_common::port())).expect("the port is free");
    let mut builder = MockServer::builder().listener(listener);
    if std::env::args().nth(2).as_deref() == Some("--no-journal") {
        builder = builder.disable_request_recording();
    }
    let server = builder.start().await;
    Mock::given(method("GET"))
        .and(path(bench_common::STAFF_PAGE))
        .respond_with(ResponseTemplate::new(200).set_body_raw(staff, "application/json"))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(bench_common::PROSPECTS))
        .respond_with(ResponseTemplate::new(201).set_body_raw(created, "application/json"))
        .mount(&server)
        .await;
    tokio::signal::ctrl_c().await.ok();
}
