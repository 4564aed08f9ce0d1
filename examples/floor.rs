//! The benchmark's floor: a bare axum server answering the mock partner's exact bytes for a
//! staff page and a prospect create, with no routing, auth, parsing or store behind them.

#[path = "common/mod.rs"]
mod bench_common;

use axum::http::{header, StatusCode};
use axum::routing::{get, post};
use axum::Router;

#[tokio::main]
async fn main() {
    let (staff, created) = bench_common::captured_answers().await;
    let app = Router::new()
        .route(
            bench_common::STAFF_PAGE,
            get(move || {
                let body = staff.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], body) }
            }),
        )
        .route(
            bench_common::PROSPECTS,
            post(move |_body: axum::body::Bytes| {
                let body = created.clone();
                async move {
                    (
                        StatusCode::CREATED,
                        [(header::CONTENT_TYPE, "application/json")],
                        body,
                    )
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", bench_common::port()))
        .await
        .expect("the port is free");
    axum::serve(listener, app).await.expect("serving");
}
