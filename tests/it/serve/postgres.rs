//! PostgreSQL: several `spoke serve` instances sharing one database and its queue. Needs a
//! server at `SPOKE_TEST_POSTGRES_URL` (`.ci/run` starts a throwaway one); without one these
//! tests print a note and pass.

use super::{Serve, ADMIN};
use serde_json::json;
use spoke::service::storage::{NewRun, Storage};
use sqlx::Executor;
use std::collections::BTreeSet;

/// A fresh database on the test server, or `None` (with a note) when there is no server.
async fn fresh_database(test: &str) -> Option<String> {
    let Ok(url) = std::env::var("SPOKE_TEST_POSTGRES_URL") else {
        eprintln!("note: {test} skipped: SPOKE_TEST_POSTGRES_URL is not set (.ci/run starts a PostgreSQL for it)");
        return None;
    };
    sqlx::any::install_default_drivers();
    let admin = match sqlx::any::AnyPoolOptions::new()
        .acquire_timeout(std::time::Duration::from_secs(3))
        .connect(&url)
        .await
    {
        Ok(pool) => pool,
        Err(error) => {
            eprintln!("note: {test} skipped: no PostgreSQL at SPOKE_TEST_POSTGRES_URL ({error})");
            return None;
        }
    };
    let name = format!(
        "spoke_test_{}_{}",
        test.replace(|c: char| !c.is_ascii_alphanumeric(), "_"),
        std::process::id()
    );
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .unwrap();
    admin.close().await;
    let mut parsed = reqwest::Url::parse(&url).unwrap();
    parsed.set_path(&format!("/{name}"));
    Some(parsed.to_string())
}

#[tokio::test]
async fn instances_taking_runs_at_once_never_take_the_same_run() {
    let Some(url) = fresh_database("claims").await else {
        return;
    };
    let storage = Storage::open(&url).await.unwrap();
    spoke::service::bootstrap(&storage, Some(ADMIN))
        .await
        .unwrap();
    let partner = storage.partner("reference").await.unwrap().unwrap();
    let profile = storage.profiles(partner.id).await.unwrap()[0].id;
    let admin = storage.account_by_name("admin").await.unwrap().unwrap().id;
    let mut queued = BTreeSet::new();
    for seed in 0..60 {
        let run = NewRun {
            partner_id: partner.id,
            profile_id: profile,
            mock: true,
            faults: String::new(),
            base_url: None,
            seed,
            only: String::new(),
            secret_names: String::new(),
            held_by: None,
            created_by: admin,
        };
        queued.insert(storage.enqueue(&run).await.unwrap());
    }
    let mut takers = tokio::task::JoinSet::new();
    for taker in 0..8 {
        let storage = storage.clone();
        takers.spawn(async move {
            let mut taken = Vec::new();
            while let Some(id) = storage.claim(&format!("taker-{taker}")).await.unwrap() {
                taken.push(id);
            }
            taken
        });
    }
    let mut all = Vec::new();
    while let Some(taken) = takers.join_next().await {
        all.extend(taken.unwrap());
    }
    let distinct: BTreeSet<i64> = all.iter().copied().collect();
    assert_eq!(all.len(), distinct.len(), "a run was taken twice");
    assert_eq!(distinct, queued, "every run was taken");
    storage.close().await;
}

#[tokio::test]
async fn two_instances_share_one_queue_and_a_stopped_ones_run_is_marked_interrupted() {
    let Some(url) = fresh_database("shared").await else {
        return;
    };
    let first = Serve::start(&url, &["--workers", "2"]);
    let second = Serve::start(&url, &["--workers", "2"]);
    let mut ids = Vec::new();
    for seed in 0..12u64 {
        let serve = if seed % 2 == 0 { &first } else { &second };
        let faults = if seed % 3 == 0 {
            json!(["reject-unowned"])
        } else {
            json!([])
        };
        ids.push(
            serve
                .start_run(json!({ "partner": "reference", "seed": seed, "faults": faults }))
                .await,
        );
    }
    let mut instances = BTreeSet::new();
    for (seed, id) in ids.iter().enumerate() {
        // Either instance sees every run: the state is in the database.
        let run = second.wait_ended(*id).await;
        assert_eq!(run["state"], "finished", "{run}");
        let expected = if seed % 3 == 0 {
            "not-conformant"
        } else {
            "conformant"
        };
        assert_eq!(run["verdict"], expected, "{run}");
        instances.insert(run["instance"].as_str().unwrap().to_owned());
        let (status, _) = first.get(&format!("/api/v1/runs/{id}/reports/json")).await;
        assert_eq!(status, 200);
    }
    assert_eq!(
        instances.len(),
        2,
        "both instances took runs: {instances:?}"
    );
    drop(first);
    drop(second);
    // An instance dies in the middle of a run; another marks it interrupted once the dead
    // one's heartbeat is stale, and goes on with the queue.
    let doomed = Serve::start(&url, &["--workers", "1"]);
    let stuck = doomed
        .start_run(json!({ "partner": "reference", "faults": ["slow"], "seed": 1 }))
        .await;
    doomed.wait_state(stuck, "running").await;
    let survivor = Serve::start(&url, &["--workers", "1"]);
    doomed.kill();
    let after = survivor
        .start_run(json!({ "partner": "reference", "seed": 2 }))
        .await;
    assert_eq!(survivor.wait_ended(after).await["verdict"], "conformant");
    let run = survivor.wait_ended(stuck).await;
    assert_eq!(run["state"], "interrupted", "{run}");
    assert!(run["error"].as_str().unwrap().contains("stopped"), "{run}");
}
