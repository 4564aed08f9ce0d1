//! `spoke serve` tested as its users meet it: the binary started on a database, driven over
//! HTTP (reqwest for the API, headless Chromium for the pages), stopped and restarted.

mod api;
mod browser;
mod postgres;

use serde_json::Value;
use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The admin token every test instance is started with.
pub const ADMIN: &str = "admin-token-for-the-tests-0001";

/// A scratch folder of one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spoke-serve-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A running `spoke serve` process.
pub struct Serve {
    child: Child,
    /// Its base URL.
    pub url: String,
    /// What it printed (stdout and stderr), as far as read.
    pub output: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Serve {
    /// Starts `spoke serve --db DB --port 0 ARGS…` and waits until it listens.
    pub fn start(db: &str, args: &[&str]) -> Serve {
        Self::start_with_env(db, args, &[])
    }

    /// [`Serve::start`] with more environment variables.
    pub fn start_with_env(db: &str, args: &[&str], env: &[(&str, &str)]) -> Serve {
        let mut command = Command::new(env!("CARGO_BIN_EXE_spoke"));
        command
            .args(["serve", "--db", db, "--port", "0"])
            .args(args)
            .env("SPOKE_ADMIN_TOKEN", ADMIN)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("the spoke binary runs");
        let output = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel::<String>();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let output = output.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    output.lock().unwrap().push_str(&format!("{line}\n"));
                    let _ = tx.send(line);
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(url) = line.strip_prefix("spoke serve listening on ") {
                        return Serve {
                            child,
                            url: url.trim().to_owned(),
                            output,
                        };
                    }
                }
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "spoke serve did not start: {}",
                        output.lock().unwrap().as_str()
                    );
                }
            }
        }
    }

    /// Kills the process at once (SIGKILL): a crash, a power cut.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Stops it as an operator would (SIGTERM) and waits for it to exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "spoke serve did not stop");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Calls the API with `token`; returns the status and the JSON body (Null if none).
    pub async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = client()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("spoke serve answers");
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// GET as the admin.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(ADMIN, reqwest::Method::GET, path, None).await
    }

    /// POST JSON as the admin.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(ADMIN, reqwest::Method::POST, path, Some(body))
            .await
    }

    /// The raw bytes of a GET as `token`.
    pub async fn bytes(&self, token: &str, path: &str) -> (u16, Vec<u8>) {
        let response = client()
            .get(format!("{}{path}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("spoke serve answers");
        let status = response.status().as_u16();
        (status, response.bytes().await.unwrap_or_default().to_vec())
    }

    /// Queues a run as the admin; returns its id.
    pub async fn start_run(&self, request: Value) -> i64 {
        let (status, run) = self.post("/api/v1/runs", request).await;
        assert_eq!(status, 202, "{run}");
        run["id"].as_i64().unwrap()
    }

    /// Polls run `id` until it has ended; returns it.
    pub async fn wait_ended(&self, id: i64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (status, run) = self.get(&format!("/api/v1/runs/{id}")).await;
            assert_eq!(status, 200, "{run}");
            if ["finished", "failed", "interrupted"].contains(&run["state"].as_str().unwrap()) {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} did not end: {run}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls run `id` until `state`.
    pub async fn wait_state(&self, id: i64, state: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, run) = self.get(&format!("/api/v1/runs/{id}")).await;
            if run["state"] == state {
                return run;
            }
            assert!(Instant::now() < deadline, "run {id} never {state}: {run}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A client that follows no redirect (pages answer sign-in redirects).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// The outcome of every rule of a JSON report, by rule.
pub fn outcomes(report: &Value) -> Vec<(String, String)> {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["rule"].as_str().unwrap().to_owned(),
                v["outcome"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}
