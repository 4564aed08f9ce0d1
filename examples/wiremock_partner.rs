//! The benchmark's comparison: a wiremock MockServer configured with the mock partner's exact
//! answers for a staff page and a prospect create.

#[path = "common/mod.rs"]
mod bench_common;

use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

#[tokio::main]
async fn main() {
    let (staff, created) = bench_common::captured_answers().await;
    let listener =
        std::net::TcpListener::bind(("127.0.0.1", bench_common::port())).expect("the port is free");
    let server = MockServer::builder().listener(listener).start().await;
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
