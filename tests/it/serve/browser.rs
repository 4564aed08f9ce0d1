//! The pages in headless Chromium, driven over the DevTools protocol on a pipe (no extra
//! crate): sign in, certify the built-in mock partner from the start page, watch it finish,
//! start a failing run from the partner's form, open the diff, download the bundle and
//! verify it with `spoke bundle verify`.

use super::{scratch, Serve, ADMIN};
use crate::helpers::run_cli;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Browser {
    child: Child,
    input: ChildStdin,
    messages: mpsc::Receiver<Value>,
    next: u64,
    session: Option<String>,
}

impl Browser {
    /// Chromium reads the protocol from fd 3 and writes to fd 4: the shell hands it our pipes.
    fn launch(profile: &std::path::Path) -> Browser {
        let script = format!(
            "exec chromium --headless --no-sandbox --disable-gpu --no-first-run \
             --remote-debugging-pipe --user-data-dir='{}' about:blank \
             3<&0 4>&1 0</dev/null 1>/dev/null 2>/dev/null",
            profile.display()
        );
        let mut child = Command::new("sh")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|error| {
                panic!("cannot run chromium ({error}): install it with `apt-get install -y chromium` (.ci/run does this)")
            });
        let input = child.stdin.take().unwrap();
        let mut output = child.stdout.take().unwrap();
        let (tx, messages) = mpsc::channel();
        std::thread::spawn(move || {
            let mut pending = Vec::new();
            let mut buffer = [0u8; 65536];
            while let Ok(read) = output.read(&mut buffer) {
                if read == 0 {
                    break;
                }
                pending.extend_from_slice(&buffer[..read]);
                while let Some(end) = pending.iter().position(|b| *b == 0) {
                    let message: Vec<u8> = pending.drain(..=end).collect();
                    if let Ok(value) = serde_json::from_slice(&message[..message.len() - 1]) {
                        if tx.send(value).is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Browser {
            child,
            input,
            messages,
            next: 0,
            session: None,
        }
    }

    fn send(&mut self, method: &str, params: Value, in_page: bool) -> Value {
        self.next += 1;
        let id = self.next;
        let mut message = json!({ "id": id, "method": method, "params": params });
        if in_page {
            message["sessionId"] = json!(self.session.clone().expect("a page is attached"));
        }
        let mut bytes = serde_json::to_vec(&message).unwrap();
        bytes.push(0);
        self.input.write_all(&bytes).unwrap();
        self.input.flush().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let message = self
                .messages
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("chromium did not answer {method}"));
            if message["id"] == id {
                assert!(message["error"].is_null(), "{method}: {message}");
                return message["result"].clone();
            }
        }
    }

    fn open_page(&mut self, downloads: &std::path::Path) {
        self.send(
            "Browser.setDownloadBehavior",
            json!({ "behavior": "allow", "downloadPath": downloads.display().to_string() }),
            false,
        );
        let target = self.send(
            "Target.createTarget",
            json!({ "url": "about:blank" }),
            false,
        );
        let attached = self.send(
            "Target.attachToTarget",
            json!({ "targetId": target["targetId"], "flatten": true }),
            false,
        );
        self.session = Some(attached["sessionId"].as_str().unwrap().to_owned());
    }

    fn eval(&mut self, expression: &str) -> Value {
        let result = self.send(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
            true,
        );
        result["result"]["value"].clone()
    }

    fn goto(&mut self, url: &str) {
        self.send("Page.navigate", json!({ "url": url }), true);
        self.wait_for("document.readyState === 'complete'");
    }

    /// Waits until `condition` (JavaScript) holds in the page, across page loads.
    fn wait_for(&mut self, condition: &str) {
        let deadline = Instant::now() + Duration::from_secs(90);
        let probe = format!(
            "(function () {{ try {{ return !!({condition}); }} catch (e) {{ return false; }} }})()"
        );
        while Instant::now() < deadline {
            if self.eval(&probe) == json!(true) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let page = self.eval("document.documentElement.outerHTML");
        panic!(
            "never true: {condition}\n{}",
            page.as_str().unwrap_or_default()
        );
    }

    fn text(&mut self, selector: &str) -> String {
        self.eval(&format!(
            "(document.querySelector({}) || {{ textContent: '' }}).textContent",
            json!(selector)
        ))
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_person_certifies_the_mock_partner_compares_two_runs_and_verifies_a_bundle() {
    let dir = scratch("browser");
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).unwrap();
    let serve = Serve::start(&dir.join("spoke.db").display().to_string(), &[]);
    let mut browser = Browser::launch(&dir.join("chromium"));
    browser.open_page(&downloads);

    browser.goto(&format!("{}/login?token={ADMIN}", serve.url));
    browser.wait_for("location.pathname === '/' && document.querySelector('#quick-start')");
    let started = Instant::now();
    browser.eval("document.querySelector('#quick-start button').click()");
    browser.wait_for("location.pathname.startsWith('/runs/')");
    browser.wait_for("document.querySelector('#report #verdicts')");
    let first_took = started.elapsed();
    assert_eq!(browser.text("#status .state"), "finished");
    assert_eq!(browser.text("#status .verdict"), "conformant");
    assert!(browser.text("#report #coverage").contains("matched"));
    assert!(browser.text("#report").contains("CONFORMANT (exit 0)"));
    assert!(first_took < Duration::from_secs(60), "{first_took:?}");

    // A second run from the partner's form, with a fault.
    browser.goto(&format!("{}/partners/reference", serve.url));
    browser.eval(
        "document.querySelector('#start-run input[value=\"reject-unowned\"]').click(); \
         document.querySelector('#start-run input[name=seed]').value = '7'; \
         document.querySelector('#start-run button').click()",
    );
    browser
        .wait_for("location.pathname === '/runs/2' && document.querySelector('#report #verdicts')");
    assert_eq!(browser.text("#status .verdict"), "not conformant");
    assert!(browser.text("#report #rule-LEAD-002").contains("LEAD-002"));

    // The diff, from the run page's compare form.
    browser.eval("document.querySelector('#compare button').click()");
    browser.wait_for("location.pathname === '/diff' && document.querySelector('#rules')");
    assert!(browser.text("#diff-summary").contains("2 rule(s) worse"));
    assert_eq!(
        browser.eval("document.querySelector('#rule-LEAD-002').className"),
        json!("worse")
    );

    // The history with its badge, and the bundle downloaded and verified.
    browser.goto(&format!("{}/partners/reference", serve.url));
    assert_eq!(
        browser.eval("document.querySelectorAll('#runs tr').length"),
        json!(3),
        "two runs in the history"
    );
    assert_eq!(
        browser.eval("document.querySelector('#badge').complete && document.querySelector('#badge').naturalWidth > 0"),
        json!(true)
    );
    browser.goto(&format!("{}/runs/2", serve.url));
    browser.eval("document.querySelector('#download-bundle').click()");
    let bundle = downloads.join("spoke-run-2-bundle.zip");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !bundle.exists() {
        assert!(Instant::now() < deadline, "the bundle was not downloaded");
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    let verified = run_cli(&["bundle", "verify", bundle.to_str().unwrap()], &dir);
    let text = String::from_utf8_lossy(&verified.stdout);
    assert!(verified.status.success(), "{text}");
    assert!(text.contains("result: intact"), "{text}");
    drop(browser);
    let _ = std::fs::remove_dir_all(&dir);
}
