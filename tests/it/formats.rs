//! The machine formats checked against published schemas: JUnit XML against the Jenkins xUnit
//! JUnit schema (with `xmllint`), HAR against the HAR 1.2 JSON schemas. Each check is also shown
//! rejecting a broken document, so a pass means something.

use crate::helpers::{mock_certify, root};
use spoke::certify::certify;
use spoke::partner::Fault;
use spoke::profile::Profile;
use spoke::report::model::RunReport;
use std::path::Path;
use std::process::Command;

/// A run with fail, pass, skip and warn verdicts and an insecure-TLS property.
async fn varied_run() -> RunReport {
    let mut options = mock_certify(
        Profile::reference(),
        [Fault::RejectUnowned, Fault::SlowStaffList]
            .into_iter()
            .collect(),
        5,
    );
    options.latency_budget = std::time::Duration::from_millis(20);
    let mut report = certify(options, &()).await.expect("the run starts");
    report.partner.insecure = true;
    report
}

/// `xmllint --schema` on `xml`: Ok, or the validator's complaint.
pub(crate) fn validate_junit(xml: &str, name: &str) -> Result<(), String> {
    let file = std::env::temp_dir().join(format!("spoke-junit-{name}-{}.xml", std::process::id()));
    std::fs::write(&file, xml).unwrap();
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(root().join("tests/data/junit/junit-10.xsd"))
        .arg(&file)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "cannot run `xmllint` ({error}): install it with \
                 `apt-get install -y --no-install-recommends libxml2-utils` (.ci/run does this)"
            )
        });
    std::fs::remove_file(&file).ok();
    if output.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

/// The HAR 1.2 schemas, `har.json` first, each under an absolute id so `$ref`s resolve offline.
fn har_validator() -> jsonschema::Validator {
    let dir = root().join("tests/data/har-schema");
    let base = "https://har-schema.invalid/";
    let load = |name: &str| -> serde_json::Value {
        let mut schema: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap();
        schema["$id"] = format!("{base}{name}#").into();
        schema
    };
    let mut options = jsonschema::options().with_draft(jsonschema::Draft::Draft6);
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".json") && name != "har.json" {
            let resource = jsonschema::Resource::from_contents(load(&name)).unwrap();
            options = options.with_resource(format!("{base}{name}"), resource);
        }
    }
    options
        .should_validate_formats(true)
        .build(&load("har.json"))
        .expect("the HAR schemas compile")
}

pub(crate) fn validate_har(har: &serde_json::Value) -> Result<(), String> {
    let problems: Vec<String> = har_validator()
        .iter_errors(har)
        .map(|error| format!("{}: {error}", error.instance_path))
        .collect();
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("\n"))
    }
}

#[tokio::test]
async fn the_junit_report_is_valid_against_the_jenkins_junit_schema() {
    let report = varied_run().await;
    let xml = spoke::report::junit::render(&report);
    for element in ["<failure", "<skipped", "<system-err", "<property"] {
        assert!(xml.contains(element), "the run shows no {element}: {xml}");
    }
    if let Err(problems) = validate_junit(&xml, "real") {
        panic!("the JUnit report does not validate:\n{problems}\n{xml}");
    }
}

#[tokio::test]
async fn the_junit_report_with_waivers_is_valid_too() {
    let mut report = varied_run().await;
    let waivers = spoke::report::waivers::Waivers::parse(
        "waivers.toml",
        "[[waiver]]\nrule = \"LEAD-002\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n\n\
         [[waiver]]\nrule = \"STAFF-001\"\nreason = \"r\"\nowner = \"o\"\nexpires = 2027-01-01\n",
        &spoke::suite::Catalog::builtin(),
    )
    .unwrap();
    spoke::report::waivers::apply(&mut report, &waivers, "2026-06-01".parse().unwrap());
    let xml = spoke::report::junit::render(&report);
    assert!(xml.contains("waived fail"), "{xml}");
    assert!(xml.contains("waiver STAFF-001 stale"), "{xml}");
    if let Err(problems) = validate_junit(&xml, "waivers") {
        panic!("the JUnit report with waivers does not validate:\n{problems}\n{xml}");
    }
}

#[tokio::test]
async fn the_junit_check_rejects_a_broken_document() {
    let xml = spoke::report::junit::render(&varied_run().await);
    // A testcase without its required name, and an element the schema does not know.
    let broken = xml
        .replacen("<testcase name=", "<testcase label=", 1)
        .replacen("</testsuite>", "<verdict/></testsuite>", 1);
    let problems = validate_junit(&broken, "broken").expect_err("a broken document validates");
    assert!(problems.contains("name"), "{problems}");
}

#[tokio::test]
async fn the_har_report_is_valid_against_the_har_1_2_schemas() {
    let report = varied_run().await;
    let har: serde_json::Value =
        serde_json::from_str(&spoke::report::har::render(&report)).unwrap();
    assert!(har["log"]["entries"].as_array().unwrap().len() > 10);
    if let Err(problems) = validate_har(&har) {
        panic!("the HAR report does not validate:\n{problems}");
    }
}

#[tokio::test]
async fn the_har_check_rejects_a_broken_document() {
    let report = varied_run().await;
    let mut har: serde_json::Value =
        serde_json::from_str(&spoke::report::har::render(&report)).unwrap();
    let entry = &mut har["log"]["entries"][0];
    entry.as_object_mut().unwrap().remove("timings");
    entry["response"]["status"] = "two hundred".into();
    let problems = validate_har(&har).expect_err("a broken HAR validates");
    assert!(problems.contains("timings"), "{problems}");
    assert!(
        problems.contains("/log/entries/0/response/status"),
        "{problems}"
    );
}

#[test]
fn the_vendored_schemas_say_where_they_come_from() {
    for dir in ["tests/data/junit", "tests/data/har-schema"] {
        let readme = std::fs::read_to_string(root().join(dir).join("README.md")).unwrap();
        assert!(readme.contains("licence"), "{dir}: no licence noted");
    }
    assert!(Path::new(&root().join("tests/data/har-schema/LICENSE")).exists());
}

#[tokio::test]
async fn the_junit_report_is_stable() {
    let report = crate::certify::redact(
        certify(
            mock_certify(
                Profile::reference(),
                [Fault::RejectUnowned].into_iter().collect(),
                42,
            ),
            &(),
        )
        .await
        .unwrap(),
    );
    insta::assert_snapshot!(spoke::report::junit::render(&report));
}

/// The `<testcase ...>` start tag of the case whose name contains `name`.
fn testcase_tag<'a>(xml: &'a str, name: &str) -> &'a str {
    xml.split("<testcase ")
        .skip(1)
        .find(|case| case.split('>').next().unwrap_or_default().contains(name))
        .and_then(|case| case.split('>').next())
        .unwrap_or_else(|| panic!("no testcase named {name}: {xml}"))
}

#[tokio::test]
async fn a_warning_shows_in_the_case_name_and_system_err_and_every_case_has_its_time() {
    let report = varied_run().await;
    let warned = report
        .verdicts
        .iter()
        .find(|v| v.outcome == spoke::suite::Outcome::Warn && v.waiver.is_none())
        .expect("the run warns");
    let xml = spoke::report::junit::render(&report);
    let name = format!("[warn] {} {}", warned.rule, warned.title);
    let tag = testcase_tag(&xml, &name);
    let case = &xml[xml.find(tag).unwrap()..];
    let case = &case[..case.find("</testcase>").unwrap()];
    assert!(case.contains("<system-err>warning: "), "{case}");
    assert!(
        !case.contains("<failure"),
        "a warning does not fail: {case}"
    );
    // Its time: the sum of its evidence exchanges' durations, to the microsecond.
    let took: std::time::Duration = report
        .exchanges
        .iter()
        .filter(|e| warned.evidence.contains(&e.id))
        .map(|e| e.duration())
        .sum();
    assert!(took > std::time::Duration::ZERO);
    assert!(
        tag.contains(&format!("time=\"{:.3}\"", took.as_secs_f64())),
        "{tag}: want {took:?}"
    );
    assert_eq!(
        xml.matches("<testcase ").count(),
        xml.matches("<testcase name=").count()
    );
    for case in xml.split("<testcase ").skip(1) {
        let tag = case.split('>').next().unwrap();
        assert!(tag.contains(" time=\""), "a case without its time: {tag}");
    }
}

#[tokio::test]
async fn partner_control_characters_in_the_junit_report_are_shown_escaped_and_it_validates() {
    let mut report = varied_run().await;
    let hostile = "x\x1b[2J\x07\0\n\u{85}\u{202e}\x7fy";
    for verdict in &mut report.verdicts {
        if matches!(
            verdict.outcome,
            spoke::suite::Outcome::Fail | spoke::suite::Outcome::Warn
        ) {
            verdict.reason = format!("the partner said {hostile}");
        }
    }
    let xml = spoke::report::junit::render(&report);
    let raw: Vec<char> = xml
        .chars()
        .filter(|c| spoke::controls::is_control(*c) && !matches!(c, '\n' | '\t'))
        .collect();
    assert_eq!(raw, Vec::<char>::new(), "{xml}");
    let shown = r"x\u{1b}[2J\u{7}\u{0}\u{a}\u{85}\u{202e}\u{7f}y";
    assert!(
        xml.contains(&format!("message=\"fail: the partner said {shown}\"")),
        "{xml}"
    );
    assert!(
        xml.contains(&format!("<system-err>warning: the partner said {shown}")),
        "{xml}"
    );
    if let Err(problems) = validate_junit(&xml, "controls") {
        panic!("the JUnit report does not validate:\n{problems}\n{xml}");
    }
}

/// junit2html (`pip install junit2html`), when it is on the PATH or in `SPOKE_JUNIT2HTML`.
fn junit2html() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("SPOKE_JUNIT2HTML") {
        return Some(path.into());
    }
    Command::new("junit2html")
        .arg("--help")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|_| "junit2html".into())
}

#[tokio::test]
async fn junit2html_reads_the_junit_report_into_a_report_matrix() {
    let Some(tool) = junit2html() else {
        eprintln!(
            "junit2html not found: `pip install junit2html` (or set SPOKE_JUNIT2HTML) to run this check"
        );
        return;
    };
    let mut report = varied_run().await;
    report.verdicts[0].reason = "control characters \x1b[2J\u{202e}".into();
    let dir = std::env::temp_dir().join(format!("spoke-junit2html-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let xml = dir.join("spoke.xml");
    std::fs::write(&xml, spoke::report::junit::render(&report)).unwrap();
    let matrix = dir.join("matrix.html");
    let output = Command::new(&tool)
        .arg("--report-matrix")
        .arg(&matrix)
        .arg(&xml)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let page = std::fs::read_to_string(&matrix).unwrap();
    assert!(page.contains(&report.verdicts[1].rule), "{page}");
    let single = Command::new(&tool)
        .arg(&xml)
        .arg(dir.join("one.html"))
        .output()
        .unwrap();
    assert!(
        single.status.success(),
        "{}",
        String::from_utf8_lossy(&single.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn har_body_sizes_are_the_bytes_that_travelled_and_times_have_fractions() {
    let report = varied_run().await;
    let har: serde_json::Value =
        serde_json::from_str(&spoke::report::har::render(&report)).unwrap();
    let entries = har["log"]["entries"].as_array().unwrap();
    let (mut differs_from_the_text, mut fractional) = (false, false);
    for (entry, exchange) in entries.iter().zip(&report.exchanges) {
        let response = &entry["response"];
        if let Some(received) = exchange.response_body_bytes {
            assert_eq!(response["bodySize"], received as u64, "#{}", exchange.id);
            assert_eq!(
                response["content"]["size"], received as u64,
                "#{}",
                exchange.id
            );
            let shown = exchange.response_body.as_deref().unwrap_or_default().len();
            differs_from_the_text |= shown != received;
        }
        if let (Some(sent), Some(text)) = (exchange.request_body_bytes, &exchange.request_body) {
            assert_eq!(
                entry["request"]["bodySize"], sent as u64,
                "#{}",
                exchange.id
            );
            differs_from_the_text |= text.len() != sent;
        }
        let time = entry["time"].as_f64().unwrap();
        assert!(
            (time - exchange.duration_us as f64 / 1000.0).abs() < 1e-9,
            "#{}: {time} ms for {} µs",
            exchange.id,
            exchange.duration_us
        );
        assert_eq!(entry["timings"]["wait"].as_f64(), Some(time));
        fractional |= time.fract() != 0.0;
    }
    assert!(
        differs_from_the_text,
        "no body whose masked text is another length than what travelled"
    );
    assert!(fractional, "no time with a fraction of a millisecond");
}
