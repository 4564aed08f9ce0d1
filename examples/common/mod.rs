//! Shared by the benchmark servers: the mock partner's exact answers, captured once.

use axum::body::Body;
use axum::http::Request;
use spoke::auth::Credentials;
use spoke::partner::{self, PartnerState, Sandbox};
use spoke::profile::Profile;
use tower::ServiceExt;

// The same allocator as the `spoke` binary, so the servers compared differ only in their work.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The staff page the benchmarks fetch.
pub const STAFF_PAGE: &str = "/api/v1/clients/C-1001/clubs/CLUB-7/staff";
/// The prospects collection the benchmarks post to.
pub const PROSPECTS: &str = "/api/v1/clients/C-1001/clubs/CLUB-7/prospects";
/// The prospect the benchmarks post.
pub const PROSPECT_BODY: &str = r#"{"first_name":"Zoë","last_name":"Ñúñez","club_id":"CLUB-7","email":"zoe@example.org","owner_id":"S-0002","source_id":"LS-01","status":"active","type":"prospect"}"#;

/// The mock partner's bytes for page 1 of the staff list and for one prospect create.
pub async fn captured_answers() -> (Vec<u8>, Vec<u8>) {
    let profile = Profile::reference();
    let credentials = Credentials::generated(&profile.auth, 1);
    let (name, value) = credentials.header().expect("bearer auth");
    let app = partner::router(PartnerState::new(
        profile,
        Sandbox::default_seed(),
        credentials,
    ));
    let get = Request::get(format!("{STAFF_PAGE}?page=1&per_page=25"))
        .header(&name, &value)
        .body(Body::empty())
        .expect("a request");
    let post = Request::post(PROSPECTS)
        .header(&name, &value)
        .header("content-type", "application/json")
        .body(Body::from(PROSPECT_BODY))
        .expect("a request");
    let mut answers = Vec::new();
    for request in [get, post] {
        let response = app.clone().oneshot(request).await.expect("an answer");
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .expect("a body");
        answers.push(bytes.to_vec());
    }
    let created = answers.pop().expect("two answers");
    let staff = answers.pop().expect("two answers");
    (staff, created)
}

/// The port from the first argument.
pub fn port() -> u16 {
    std::env::args()
        .nth(1)
        .and_then(|arg| arg.parse().ok())
        .expect("usage: <server> PORT")
}
