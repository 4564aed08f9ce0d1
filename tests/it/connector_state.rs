//! `spoke connector --state`: the real binary killed with SIGKILL mid-run loses no acknowledged
//! save and leaves a sound database; a foreign file is refused with exit 2; a JSON state file of
//! an earlier version is moved into SQLite once.

use spoke::inbound::store::{Intouch, Seed, Tenant};
use spoke::inbound::{self, ConnectorOptions, ConnectorState};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

const TENANT: [&str; 6] = ["--provider", "ACME", "--client", "C-7", "--club", "K-3"];

fn tenant() -> Tenant {
    Tenant {
        provider: "ACME".into(),
        client: "C-7".into(),
        club: "K-3".into(),
    }
}

/// `spoke connector --state path` on a free port; its API URL once it listens.
fn start(path: &Path) -> (std::process::Child, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["connector", "--port", "0", "--state"])
        .arg(path)
        .args(TENANT)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spoke runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let api = crate::helpers::connector_url(&mut stdout);
    // Keep reading so the server never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
    (child, api)
}

fn prospect(record: &str) -> String {
    format!(
        "<user><providerInfo><identifier>ACME</identifier><clientID>C-7</clientID><clubID>K-3</clubID><recordID>{record}</recordID></providerInfo>\
         <userInfo><firstname>Ana</firstname><lastname>Silva {record}</lastname><userType>PROSPECT</userType><userStatus>ACTIVE</userStatus></userInfo></user>"
    )
}

/// InTouch as `spoke connector --dump` reads it from the file.
fn dump(path: &Path) -> Intouch {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["connector", "--dump", "--state"])
        .arg(path)
        .args(TENANT)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the dump is InTouch as JSON")
}

async fn integrity(path: &Path) -> String {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
    verdict
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_run_loses_no_acknowledged_save_and_its_database_is_sound() {
    const SENDERS: usize = 8;
    const PLANNED: usize = 4_000;
    const KILL_AFTER: usize = 1_000;
    let dir = crate::helpers::scratch("connector-state", "kill");
    let path = dir.join("intouch.db");
    let (mut child, api) = start(&path);
    let acknowledged: Arc<Mutex<BTreeMap<String, String>>> = Default::default();
    let http = reqwest::Client::new();
    let mut senders = Vec::new();
    for sender in 0..SENDERS {
        let (http, api, acknowledged) = (http.clone(), api.clone(), acknowledged.clone());
        senders.push(tokio::spawn(async move {
            for n in 0..PLANNED / SENDERS {
                let record = format!("S{sender}-{n}");
                let Ok(response) = http
                    .post(format!("{api}/user"))
                    .body(prospect(&record))
                    .send()
                    .await
                else {
                    return;
                };
                let status = response.status().as_u16();
                let Ok(body) = response.text().await else {
                    return;
                };
                assert_eq!(status, 200, "{body}");
                let uuid = spoke::xml::parse(&body)
                    .unwrap()
                    .child("uuid")
                    .unwrap()
                    .text();
                acknowledged.lock().unwrap().insert(record, uuid);
            }
        }));
    }
    while acknowledged.lock().unwrap().len() < KILL_AFTER {
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    child.kill().expect("SIGKILL"); // kill(2) with SIGKILL on Unix: no chance to clean up.
    child.wait().unwrap();
    for sender in senders {
        sender
            .await
            .expect("a sender only stops when the server is gone");
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() < PLANNED,
        "the server was killed before the run ended"
    );

    assert_eq!(integrity(&path).await, "ok");
    let stored: BTreeMap<String, String> = dump(&path)
        .users
        .into_iter()
        .filter_map(|u| Some((u.record_id?, u.uuid)))
        .collect();
    for (record, uuid) in &acknowledged {
        assert_eq!(
            stored.get(record),
            Some(uuid),
            "acknowledged save {record} is kept"
        );
    }
    // The file serves again, with the documented read names.
    let (mut restarted, api) = start(&path);
    let (record, uuid) = acknowledged.iter().next().unwrap();
    let read = http
        .get(format!(
            "{api}/user?provider=ACME&client_id=C-7&club_id=K-3&recordID={record}"
        ))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(read.contains(uuid.as_str()), "{read}");
    restarted.kill().unwrap();
    restarted.wait().unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_foreign_state_file_is_refused_with_exit_2_and_left_alone() {
    let dir = crate::helpers::scratch("connector-state", "foreign");
    let path = dir.join("notes.txt");
    std::fs::write(&path, "shopping list\n").unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["connector", "--port", "0", "--duration", "5s", "--state"])
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("notes.txt") && stderr.contains("neither an SQLite database"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(std::fs::read(&path).unwrap(), b"shopping list\n");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn a_json_state_file_is_moved_into_sqlite_once_and_kept_as_a_backup() {
    let dir = crate::helpers::scratch("connector-state", "migrate");
    let path = dir.join("intouch.json");
    let mut before = Seed::builtin().into_intouch(tenant());
    before.save_user(
        "OLD-1",
        [
            ("firstname".to_owned(), "Olga".to_owned()),
            ("lastname".to_owned(), "Velha".to_owned()),
        ]
        .into(),
    );
    let json = serde_json::to_vec_pretty(&before).unwrap();
    std::fs::write(&path, &json).unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args(["connector", "--port", "0", "--duration", "1s", "--state"])
        .arg(&path)
        .args(TENANT)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_ne!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.contains("intouch.json: moved the JSON state (")
            && stdout.contains("kept as")
            && stdout.contains("intouch.json.bak"),
        "{stdout}"
    );
    assert_eq!(&std::fs::read(&path).unwrap()[..16], b"SQLite format 3\0");
    let backup = dir.join("intouch.json.bak");
    assert_eq!(
        std::fs::read(&backup).unwrap(),
        json,
        "the JSON is kept as it was"
    );
    assert_eq!(dump(&path), before);

    // Moved once: the next start opens the database as it is.
    let options = ConnectorOptions {
        tenant: tenant(),
        state_file: Some(path.clone()),
        body_limit: inbound::DEFAULT_BODY_LIMIT,
    };
    let (state, migrated) = ConnectorState::open(options, Seed::default())
        .await
        .unwrap();
    assert_eq!(migrated, None);
    assert_eq!(state.initial(), &before);
    state.close().await;
    let _ = std::fs::remove_dir_all(dir);
}
