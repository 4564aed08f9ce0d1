//! The JSON API against SQLite: runs, reports, bundles, concurrency, restarts, access,
//! uploads, escaping, secrets, waivers, diffs, and the OpenAPI document.

use super::{outcomes, scratch, Serve, ADMIN};
use crate::helpers::{mock_certify, run_cli, spawn_partner};
use reqwest::Method;
use serde_json::{json, Value};
use spoke::certify::certify;
use spoke::partner::Fault;
use spoke::profile::Profile;

fn db(dir: &std::path::Path) -> String {
    dir.join("spoke.db").display().to_string()
}

async fn direct_outcomes(faults: &[Fault], seed: u64) -> Vec<(String, String)> {
    let report = certify(
        mock_certify(Profile::reference(), faults.iter().copied().collect(), seed),
        &(),
    )
    .await
    .expect("the run starts");
    outcomes(&serde_json::to_value(&report).unwrap())
}

#[tokio::test]
async fn a_run_started_by_the_api_gives_certify_verdicts_and_a_bundle_that_verifies() {
    let dir = scratch("api-run");
    let serve = Serve::start(&db(&dir), &[]);
    let id = serve
        .start_run(json!({ "partner": "reference", "faults": ["reject-unowned"], "seed": 42 }))
        .await;
    let run = serve.wait_ended(id).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(run["verdict"], "not-conformant");
    assert_eq!(run["exit_code"], 1);
    assert_eq!(run["totals"]["fail"], 2);
    let (status, report) = serve.get(&format!("/api/v1/runs/{id}/reports/json")).await;
    assert_eq!(status, 200);
    assert_eq!(
        outcomes(&report),
        direct_outcomes(&[Fault::RejectUnowned], 42).await
    );
    for (format, starts) in [
        ("junit", "<?xml"),
        ("har", "{"),
        ("html", "<!DOCTYPE html>"),
    ] {
        let (status, bytes) = serve
            .bytes(ADMIN, &format!("/api/v1/runs/{id}/reports/{format}"))
            .await;
        assert_eq!(status, 200, "{format}");
        assert!(
            String::from_utf8_lossy(&bytes)
                .trim_start()
                .starts_with(starts),
            "{format}"
        );
    }
    let (status, bundle) = serve
        .bytes(ADMIN, &format!("/api/v1/runs/{id}/reports/bundle"))
        .await;
    assert_eq!(status, 200);
    let path = dir.join("bundle.zip");
    std::fs::write(&path, bundle).unwrap();
    let verified = run_cli(&["bundle", "verify", path.to_str().unwrap()], &dir);
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{text}");
    assert!(text.contains("result: intact"), "{text}");
    // The event stream of an ended run says so at once.
    let events = super::client()
        .get(format!("{}/api/v1/runs/{id}/events", serve.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(events.starts_with("event: done\n"), "{events}");
    assert!(events.contains("\"verdict\":\"not-conformant\""));
}

#[tokio::test]
async fn eight_concurrent_runs_keep_their_own_verdicts() {
    let dir = scratch("concurrent");
    let serve = Serve::start(&db(&dir), &["--workers", "8"]);
    let cases: Vec<(Vec<Fault>, u64)> = vec![
        (vec![], 1),
        (vec![Fault::RejectUnowned], 2),
        (vec![Fault::DropOwner], 3),
        (vec![Fault::RejectSourceless], 4),
        (vec![Fault::SourceCreateDuplicates], 5),
        (vec![Fault::UpdateCreatesDuplicate], 6),
        (vec![Fault::MangleUnicode], 7),
        (vec![Fault::AuthNotEnforced], 8),
        (vec![Fault::RejectMember], 9),
        (vec![], 10),
    ];
    let mut ids = Vec::new();
    for (faults, seed) in &cases {
        let names: Vec<&str> = faults.iter().map(|f| f.name()).collect();
        ids.push(
            serve
                .start_run(json!({ "partner": "reference", "faults": names, "seed": seed }))
                .await,
        );
    }
    // At least eight at once: the workers take them together.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut most = 0;
    while std::time::Instant::now() < deadline && most < 8 {
        let (_, list) = serve.get("/api/v1/runs?limit=50").await;
        let running = list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["state"] == "running")
            .count();
        most = most.max(running);
        if list["runs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["state"] == "finished")
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for ((faults, seed), id) in cases.iter().zip(&ids) {
        let run = serve.wait_ended(*id).await;
        assert_eq!(run["state"], "finished", "{run}");
        let (_, report) = serve.get(&format!("/api/v1/runs/{id}/reports/json")).await;
        assert_eq!(report["seed"], *seed);
        assert_eq!(
            outcomes(&report),
            direct_outcomes(faults, *seed).await,
            "run {id} ({faults:?}, seed {seed})"
        );
    }
    assert!(most >= 2, "runs never overlapped (at most {most} running)");
}

#[tokio::test]
async fn a_run_cut_by_a_crash_is_marked_interrupted_and_the_queue_loses_nothing() {
    let dir = scratch("restart");
    let db = db(&dir);
    let serve = Serve::start(&db, &["--workers", "1"]);
    // `slow` answers after the client's timeout: the run stays running for a while.
    let stuck = serve
        .start_run(json!({ "partner": "reference", "faults": ["slow"], "seed": 1 }))
        .await;
    let queued = serve
        .start_run(json!({ "partner": "reference", "seed": 2 }))
        .await;
    serve.wait_state(stuck, "running").await;
    assert_eq!(
        serve.get(&format!("/api/v1/runs/{queued}")).await.1["state"],
        "queued"
    );
    serve.kill();
    let serve = Serve::start(&db, &["--workers", "1"]);
    assert!(
        serve.output.lock().unwrap().contains(&format!("[{stuck}]")),
        "the start names the runs it marked"
    );
    let run = serve.get(&format!("/api/v1/runs/{stuck}")).await.1;
    assert_eq!(run["state"], "interrupted", "{run}");
    assert!(run["error"].as_str().unwrap().contains("stopped"), "{run}");
    let run = serve.wait_ended(queued).await;
    assert_eq!(run["state"], "finished", "the queued run survived: {run}");
    assert_eq!(run["verdict"], "conformant");
    // A stop by the operator (SIGTERM) marks what it was running too.
    let again = serve
        .start_run(json!({ "partner": "reference", "faults": ["slow"], "seed": 3 }))
        .await;
    serve.wait_state(again, "running").await;
    let url = serve.url.clone();
    assert!(serve.terminate().success());
    let serve = Serve::start(&db, &[]);
    assert_ne!(serve.url, "", "{url}");
    let run = serve.get(&format!("/api/v1/runs/{again}")).await.1;
    assert_eq!(run["state"], "interrupted", "{run}");
}

#[tokio::test]
async fn a_second_instance_on_the_same_sqlite_file_is_refused() {
    let dir = scratch("sqlite-twice");
    let db = db(&dir);
    let _first = Serve::start(&db, &[]);
    let second = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["serve", "--db", &db, "--port", "0"])
        .env("SPOKE_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&second.stderr).contains("PostgreSQL"));
}

/// An admin sets up two partners and an account that sees one of them.
async fn two_partners(serve: &Serve) -> String {
    for (slug, name) in [("acme", "Acme CRM"), ("globex", "Globex")] {
        let (status, body) = serve
            .post("/api/v1/partners", json!({ "slug": slug, "name": name }))
            .await;
        assert_eq!(status, 201, "{body}");
        let (status, body) = upload(
            serve,
            ADMIN,
            slug,
            "acme.toml",
            spoke::profile::REFERENCE_PROFILE.as_bytes(),
        )
        .await;
        assert_eq!(status, 201, "{body}");
    }
    let (status, account) = serve
        .post(
            "/api/v1/accounts",
            json!({ "name": "acme-ci", "role": "partner", "partners": ["acme"] }),
        )
        .await;
    assert_eq!(status, 201, "{account}");
    account["token"].as_str().unwrap().to_owned()
}

async fn upload(serve: &Serve, token: &str, slug: &str, name: &str, text: &[u8]) -> (u16, Value) {
    let response = super::client()
        .post(format!(
            "{}/api/v1/partners/{slug}/profiles?name={name}",
            serve.url
        ))
        .bearer_auth(token)
        .header("content-type", "application/toml")
        .body(text.to_vec())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn partners_see_only_their_own_partners_and_an_admin_sees_all() {
    let dir = scratch("access");
    let serve = Serve::start(&db(&dir), &[]);
    let acme = two_partners(&serve).await;
    let theirs = serve
        .start_run(json!({ "partner": "globex", "seed": 1 }))
        .await;
    let (status, own) = serve
        .call(
            &acme,
            Method::POST,
            "/api/v1/runs",
            Some(json!({ "partner": "acme", "seed": 1 })),
        )
        .await;
    assert_eq!(status, 202, "{own}");
    let own = own["id"].as_i64().unwrap();
    serve.wait_ended(own).await;
    serve.wait_ended(theirs).await;

    let (_, partners) = serve
        .call(&acme, Method::GET, "/api/v1/partners", None)
        .await;
    let slugs: Vec<&str> = partners["partners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["slug"].as_str().unwrap())
        .collect();
    assert_eq!(slugs, ["acme"]);
    let (_, all) = serve.get("/api/v1/partners").await;
    assert_eq!(all["partners"].as_array().unwrap().len(), 3, "{all}");

    let (_, runs) = serve.call(&acme, Method::GET, "/api/v1/runs", None).await;
    let ids: Vec<i64> = runs["runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [own]);
    for path in [
        format!("/api/v1/runs/{theirs}"),
        format!("/api/v1/runs/{theirs}/reports/json"),
        format!("/api/v1/runs/{theirs}/events"),
        "/api/v1/partners/globex".to_owned(),
        "/api/v1/partners/globex/profiles".to_owned(),
        format!("/api/v1/diff?old={own}&new={theirs}"),
        format!("/runs/{theirs}"),
        "/partners/globex".to_owned(),
    ] {
        let (status, _) = serve.bytes(&acme, &path).await;
        assert_eq!(status, 404, "{path}: another partner's is not even named");
    }
    let (status, _) = serve
        .call(
            &acme,
            Method::POST,
            "/api/v1/runs",
            Some(json!({ "partner": "globex" })),
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = serve
        .call(
            &acme,
            Method::POST,
            "/api/v1/partners/acme/waivers",
            Some(
                json!({ "rule": "LEAD-002", "reason": "r", "owner": "o", "expires": "2099-01-01" }),
            ),
        )
        .await;
    assert_eq!(status, 403, "waivers are granted by an admin");
    let (status, _) = serve
        .call(
            &acme,
            Method::POST,
            "/api/v1/partners",
            Some(json!({ "slug": "x", "name": "x" })),
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = serve.bytes("not-a-token", "/api/v1/runs").await;
    assert_eq!(status, 401);
    let (status, _) = serve.bytes("", "/api/v1/runs").await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn uploads_are_size_limited_and_checked_with_line_numbers() {
    let dir = scratch("uploads");
    let serve = Serve::start(&db(&dir), &[]);
    let big = vec![b'#'; 300 * 1024];
    let (status, body) = upload(&serve, ADMIN, "reference", "big.toml", &big).await;
    assert_eq!(status, 413, "{body}");
    let huge = vec![b'#'; 2 * 1024 * 1024];
    let (status, _) = upload(&serve, ADMIN, "reference", "huge.toml", &huge).await;
    assert_eq!(status, 413);
    let (status, body) = upload(&serve, ADMIN, "reference", "bin.toml", &[0xff, 0xfe, 0x00]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("UTF-8"));
    let broken =
        spoke::profile::REFERENCE_PROFILE.replace("scheme = \"bearer\"", "scheme = \"telepathy\"");
    let line = broken
        .lines()
        .position(|l| l.contains("telepathy"))
        .unwrap()
        + 1;
    let (status, body) = upload(&serve, ADMIN, "reference", "broken.toml", broken.as_bytes()).await;
    assert_eq!(status, 422, "{body}");
    let problems = body["error"]["problems"].as_array().unwrap();
    assert!(
        problems
            .iter()
            .any(|p| p["line"] == line && p["key"].as_str().unwrap().contains("scheme")),
        "{body}"
    );
    let (_, profiles) = serve.get("/api/v1/partners/reference/profiles").await;
    assert_eq!(
        profiles["profiles"].as_array().unwrap().len(),
        1,
        "nothing refused was stored"
    );
    // Bad run requests name the field.
    for (request, word) in [
        (
            json!({ "partner": "reference", "faults": ["no-such-fault"] }),
            "faults",
        ),
        (
            json!({ "partner": "reference", "only": ["NOPE-1"] }),
            "only",
        ),
        (json!({ "partner": "reference", "colour": "red" }), "colour"),
        (
            json!({ "partner": "reference", "target": "sandbox", "base_url": "ftp://x" }),
            "base_url",
        ),
        (
            json!({ "partner": "reference", "target": "sandbox" }),
            "SPOKE_REFERENCE_TOKEN",
        ),
    ] {
        let (status, body) = serve.post("/api/v1/runs", request).await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(word),
            "{body}"
        );
    }
}

#[tokio::test]
async fn every_page_escapes_partner_supplied_text() {
    let dir = scratch("escape");
    let serve = Serve::start(&db(&dir), &[]);
    let attack = r#"<script>alert(1)</script><img src=x onerror=alert(2)>"#;
    let (status, body) = serve
        .post(
            "/api/v1/partners",
            json!({ "slug": "evil", "name": attack }),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let profile = spoke::profile::REFERENCE_PROFILE.replacen(
        "name = \"Reference Partner\"",
        &format!("name = {}", toml_string(attack)),
        1,
    );
    assert_ne!(profile, spoke::profile::REFERENCE_PROFILE);
    let (status, body) = upload(&serve, ADMIN, "evil", "evil.toml", profile.as_bytes()).await;
    assert_eq!(status, 201, "{body}");
    let first = serve
        .start_run(json!({ "partner": "evil", "seed": 5 }))
        .await;
    let second = serve
        .start_run(json!({ "partner": "evil", "seed": 5, "faults": ["reject-unowned"] }))
        .await;
    serve.wait_ended(first).await;
    serve.wait_ended(second).await;
    let (status, _) = serve
        .post(
            "/api/v1/partners/evil/waivers",
            json!({ "rule": "LEAD-003", "reason": attack, "owner": attack, "expires": "2099-12-31" }),
        )
        .await;
    assert_eq!(status, 201);
    let profile_id =
        serve.get("/api/v1/partners/evil/profiles").await.1["profiles"][0]["id"].clone();
    for path in [
        "/".to_owned(),
        "/partners/evil".to_owned(),
        format!("/partners/evil/profiles/{profile_id}"),
        format!("/runs/{first}"),
        format!("/runs/{second}"),
        format!("/diff?old={first}&new={second}"),
    ] {
        let (status, bytes) = serve.bytes(ADMIN, &path).await;
        let page = String::from_utf8_lossy(&bytes);
        assert_eq!(status, 200, "{path}: {page}");
        assert!(!page.contains("<script>alert"), "{path}");
        assert!(!page.contains("<img src=x"), "{path}");
        assert!(
            page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path} shows it as text"
        );
    }
    let (status, page) = serve.bytes(ADMIN, "/admin").await;
    assert_eq!(status, 200);
    assert!(!String::from_utf8_lossy(&page).contains("<script>alert"));
}

fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[tokio::test]
async fn secrets_given_with_a_run_reach_the_sandbox_and_nothing_else() {
    let dir = scratch("secrets");
    let db = db(&dir);
    let profile = Profile::reference();
    let (partner, credentials) = spawn_partner(&profile).await;
    let secret = credentials.secrets()[0].to_owned();
    let serve = Serve::start(&db, &[]);
    let id = serve
        .start_run(json!({
            "partner": "reference", "target": "sandbox", "base_url": partner.base_url(),
            "seed": 9, "secrets": { "SPOKE_REFERENCE_TOKEN": secret }
        }))
        .await;
    let run = serve.wait_ended(id).await;
    assert_eq!(run["state"], "finished", "{run}");
    assert_eq!(
        run["verdict"], "conformant",
        "the sandbox took the secret: {run}"
    );
    assert_eq!(run["secrets_given"], json!(["SPOKE_REFERENCE_TOKEN"]));
    let mut seen = vec![run.to_string()];
    for format in ["json", "junit", "har", "html"] {
        seen.push(
            String::from_utf8_lossy(
                &serve
                    .bytes(ADMIN, &format!("/api/v1/runs/{id}/reports/{format}"))
                    .await
                    .1,
            )
            .into_owned(),
        );
    }
    seen.push(
        String::from_utf8_lossy(&serve.bytes(ADMIN, &format!("/runs/{id}")).await.1).into_owned(),
    );
    seen.push(
        String::from_utf8_lossy(&serve.bytes(ADMIN, "/partners/reference").await.1).into_owned(),
    );
    let bundle = dir.join("bundle.zip");
    std::fs::write(
        &bundle,
        serve
            .bytes(ADMIN, &format!("/api/v1/runs/{id}/reports/bundle"))
            .await
            .1,
    )
    .unwrap();
    let verified = run_cli(&["bundle", "verify", bundle.to_str().unwrap()], &dir);
    assert!(verified.status.success());
    drop(serve);
    seen.push(String::from_utf8_lossy(&verified.stdout).into_owned());
    for file in std::fs::read_dir(&dir).unwrap() {
        let path = file.unwrap().path();
        if path.extension().is_some_and(|e| e != "zip") {
            seen.push(String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned());
        }
    }
    for text in &seen {
        assert!(
            !text.contains(&secret),
            "the secret leaked: {}",
            &text[..text.len().min(300)]
        );
    }
    // Without the secret, the run is refused before it is queued.
    let serve = Serve::start(&db, &[]);
    let (status, body) = serve
        .post(
            "/api/v1/runs",
            json!({ "partner": "reference", "target": "sandbox", "base_url": partner.base_url() }),
        )
        .await;
    assert_eq!(status, 422, "{body}");
    // From the server's environment only where the operator allowed the variable.
    drop(serve);
    let serve = Serve::start_with_env(
        &db,
        &["--secret-env", "SPOKE_REFERENCE_TOKEN"],
        &[("SPOKE_REFERENCE_TOKEN", &secret)],
    );
    let id = serve
        .start_run(json!({ "partner": "reference", "target": "sandbox", "base_url": partner.base_url(), "seed": 9 }))
        .await;
    let run = serve.wait_ended(id).await;
    assert_eq!(run["verdict"], "conformant", "{run}");
    assert!(
        !serve.output.lock().unwrap().contains(&secret),
        "the log holds no secret"
    );
    partner.stop().await.unwrap();
}

#[tokio::test]
async fn waivers_of_a_partner_apply_to_its_runs_and_a_diff_names_what_changed() {
    let dir = scratch("waivers");
    let serve = Serve::start(&db(&dir), &[]);
    let clean = serve
        .start_run(json!({ "partner": "reference", "seed": 4 }))
        .await;
    let failing = serve
        .start_run(json!({ "partner": "reference", "seed": 4, "faults": ["reject-unowned"] }))
        .await;
    serve.wait_ended(clean).await;
    assert_eq!(serve.wait_ended(failing).await["verdict"], "not-conformant");
    let (status, diff) = serve
        .get(&format!("/api/v1/diff?old={clean}&new={failing}"))
        .await;
    assert_eq!(status, 200, "{diff}");
    let changed: Vec<(&str, &str)> = diff["changed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["rule"].as_str().unwrap(),
                c["direction"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(changed, [("LEAD-002", "worse"), ("LEAD-003", "worse")]);
    assert_eq!(diff["regressions"], 2);
    let (status, page) = serve
        .bytes(ADMIN, &format!("/diff?old={clean}&new={failing}"))
        .await;
    assert_eq!(status, 200);
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains(r#"<tr id="rule-LEAD-002" class="worse">"#),
        "{page}"
    );

    let mut waiver_ids = Vec::new();
    for rule in ["LEAD-002", "LEAD-003"] {
        let (status, waiver) = serve
            .post(
                "/api/v1/partners/reference/waivers",
                json!({ "rule": rule, "reason": "owners come in release 5", "owner": "jane.doe@partner.example", "expires": "2099-12-31" }),
            )
            .await;
        assert_eq!(status, 201, "{waiver}");
        waiver_ids.push(waiver["id"].as_i64().unwrap());
    }
    let (status, body) = serve
        .post(
            "/api/v1/partners/reference/waivers",
            json!({ "rule": "LEAD-002", "reason": "again", "owner": "x", "expires": "2099-12-31" }),
        )
        .await;
    assert_eq!(status, 409, "one waiver per rule: {body}");
    for (bad, word) in [
        (
            json!({ "rule": "NOPE-9", "reason": "r", "owner": "o", "expires": "2099-12-31" }),
            "NOPE-9",
        ),
        (
            json!({ "rule": "SRC-001", "reason": "r", "owner": "o", "expires": "31/12/2099" }),
            "expires",
        ),
    ] {
        let (status, body) = serve.post("/api/v1/partners/reference/waivers", bad).await;
        assert_eq!(status, 422, "{body}");
        assert!(body.to_string().contains(word), "{body}");
    }
    let waived = serve
        .start_run(json!({ "partner": "reference", "seed": 4, "faults": ["reject-unowned"] }))
        .await;
    let run = serve.wait_ended(waived).await;
    assert_eq!(
        run["verdict"], "conformant",
        "both failures are waived: {run}"
    );
    let (_, report) = serve
        .get(&format!("/api/v1/runs/{waived}/reports/json"))
        .await;
    assert_eq!(report["waivers"].as_array().unwrap().len(), 2);
    let bundle = dir.join("waived.zip");
    std::fs::write(
        &bundle,
        serve
            .bytes(ADMIN, &format!("/api/v1/runs/{waived}/reports/bundle"))
            .await
            .1,
    )
    .unwrap();
    let verified = run_cli(&["bundle", "verify", bundle.to_str().unwrap()], &dir);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
    for id in waiver_ids {
        let (status, _) = serve
            .call(
                ADMIN,
                Method::DELETE,
                &format!("/api/v1/partners/reference/waivers/{id}"),
                None,
            )
            .await;
        assert_eq!(status, 204);
    }
    assert_eq!(
        serve.get("/api/v1/partners/reference/waivers").await.1["waivers"],
        json!([])
    );
    let (status, badge) = serve.bytes(ADMIN, "/partners/reference/badge.svg").await;
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&badge).contains("spoke: conformant"));
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_served() {
    let documented: std::collections::BTreeSet<(String, String)> = {
        let document = spoke::service::openapi::document();
        assert_eq!(document["openapi"], "3.1.0");
        document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .keys()
                    .map(|method| (method.to_uppercase(), path.clone()))
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let served: std::collections::BTreeSet<(String, String)> = spoke::service::api::routes()
        .routes
        .into_iter()
        .map(|(method, path)| (method.to_owned(), path))
        .collect();
    assert_eq!(documented, served);
    // Every documented operation is answered by its handler, not by "no such route".
    let dir = scratch("openapi");
    let serve = Serve::start(&db(&dir), &[]);
    let run = serve
        .start_run(json!({ "partner": "reference", "seed": 1 }))
        .await;
    serve.wait_ended(run).await;
    let (_, served_doc) = serve.get("/api/v1/openapi.json").await;
    assert_eq!(served_doc, spoke::service::openapi::document());
    for (method, path) in &documented {
        let concrete = path
            .replace("{partner}", "reference")
            .replace("{run}", &run.to_string())
            .replace("{waiver}", "999")
            .replace("{format}", "json");
        let concrete = if concrete.ends_with("/diff") {
            format!("{concrete}?old={run}&new={run}")
        } else {
            concrete
        };
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = super::client()
            .request(method.clone(), format!("{}{concrete}", serve.url))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        assert_ne!(status, 405, "{method} {concrete}");
        assert!(
            status != 404 || body.contains("\"error\""),
            "{method} {concrete}: no such route"
        );
    }
    // The API's own errors are JSON too.
    let (status, body) = serve.post("/api/v1/runs", json!("not an object")).await;
    assert_eq!(status, 422);
    assert!(body["error"]["message"].is_string());
}
