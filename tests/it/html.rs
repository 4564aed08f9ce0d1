//! The HTML report: rendered by a real browser (headless Chromium), escaped against a hostile
//! partner, and stable.

use crate::certify::redact;
use crate::helpers::mock_certify;
use spoke::certify::certify;
use spoke::partner::{Fault, Faults};
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

async fn failing_run() -> RunReport {
    certify(
        mock_certify(
            Profile::reference(),
            [Fault::RejectUnowned].into_iter().collect(),
            42,
        ),
        &(),
    )
    .await
    .expect("the run starts")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spoke-html-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The DOM of `page` after headless Chromium loaded and rendered it.
fn rendered_dom(page: &Path, scratch: &Path) -> String {
    let dom_file = scratch.join("dom.html");
    let mut child = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            &format!("--user-data-dir={}", scratch.join("profile").display()),
            "--dump-dom",
            &format!("file://{}", page.display()),
        ])
        .stdout(std::fs::File::create(&dom_file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `chromium` ({error}): the HTML report test needs a real browser; \
                 install it with `apt-get install -y --no-install-recommends chromium` \
                 (.ci/run does this)"
            )
        });
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium failed: {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish rendering {}", page.display());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::read_to_string(dom_file).unwrap()
}

#[tokio::test]
async fn chromium_renders_the_summary_a_failing_rule_its_fix_and_its_evidence() {
    let report = failing_run().await;
    let dir = scratch("render");
    let page = dir.join("report.html");
    std::fs::write(&page, spoke::report::html::render(&report)).unwrap();
    let dom = rendered_dom(&page, &dir);
    assert!(dom.contains("NOT CONFORMANT (exit 1)"), "{dom}");
    assert!(dom.contains("20 pass · 2 fail · 0 warn · 3 skip"), "{dom}");
    assert!(dom.contains(&report.partner.profile_digest));
    assert!(dom.contains(&report.catalog_digest));
    assert!(dom.contains("reject-unowned"));
    let failing = report
        .verdicts
        .iter()
        .find(|v| v.rule == "LEAD-002")
        .unwrap();
    assert!(dom.contains(r#"id="rule-LEAD-002""#), "evidence section");
    assert!(dom.contains(&failing.fix), "fix hint");
    assert!(dom.contains(&failing.reproduce), "reproduce command");
    // The first cited exchange, request and response, and its curl command.
    let exchange = report
        .exchanges
        .iter()
        .find(|e| e.id == failing.evidence[0])
        .unwrap();
    assert!(dom.contains(&format!(r#"id="x-{}""#, exchange.id)));
    assert!(dom.contains("an owner is required"), "the response body");
    assert!(dom.contains(&format!("curl -X POST '{}'", exchange.url)));
    // Nothing is fetched from elsewhere: the page stands alone.
    let html = std::fs::read_to_string(&page).unwrap();
    for external in ["http-equiv", "<link", "<script", "src=", "@import", "url("] {
        assert!(
            !html.contains(external),
            "`{external}` in a self-contained page"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn a_hostile_partner_cannot_inject_markup_into_the_html_report() {
    let mut report = failing_run().await;
    let attack = r#"</pre></details><script>document.title='pwned'</script><img src=x onerror="document.title='pwned'">"#;
    report.partner.name = attack.to_owned();
    report.verdicts[0].reason = attack.to_owned();
    let cited = report
        .verdicts
        .iter()
        .find(|v| v.rule == "LEAD-002")
        .unwrap()
        .evidence[0];
    let exchange = report.exchanges.iter_mut().find(|e| e.id == cited).unwrap();
    exchange.response_body = Some(attack.to_owned());
    exchange
        .response_headers
        .push(("x-evil".into(), attack.to_owned()));
    let html = spoke::report::html::render(&report);
    assert!(!html.contains("<script"), "a script element got in");
    assert!(!html.contains("<img"), "an img element got in");
    let dir = scratch("hostile");
    let page = dir.join("report.html");
    std::fs::write(&page, &html).unwrap();
    let dom = rendered_dom(&page, &dir);
    assert!(!dom.contains("pwned</title>"), "the attack ran");
    assert!(!dom.contains("<img"), "the attack became markup");
    assert!(
        dom.contains("&lt;script&gt;document.title='pwned'&lt;/script&gt;"),
        "the attack shows as text"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn the_html_report_is_stable() {
    let report = redact(failing_run().await);
    insta::assert_snapshot!(spoke::report::html::render(&report));
}

#[tokio::test]
async fn a_clean_run_reads_conformant_with_no_fault_and_no_open_evidence() {
    let report = certify(mock_certify(Profile::reference(), Faults::none(), 3), &())
        .await
        .unwrap();
    let html = spoke::report::html::render(&report);
    assert!(html.contains("CONFORMANT (exit 0)"));
    assert!(!html.contains("NOT CONFORMANT"));
    assert!(html.contains("<tr><th>Mock faults</th><td>none</td></tr>"));
    assert!(!html.contains(r#"<details class="rule" id="rule-LEAD-002" open>"#));
}
