//! Profile loading: fixtures load, broken profiles are reported precisely, garbage never panics.

use crate::helpers::{fixture_profiles, root, run_cli};
use proptest::prelude::*;
use spoke::profile::{Profile, ProfileError, REFERENCE_PROFILE};

#[test]
fn every_fixture_profile_loads() {
    let profiles = fixture_profiles();
    assert!(
        profiles.len() >= 4,
        "expected at least four fixture profiles"
    );
}

#[test]
fn the_reference_fixture_is_the_embedded_reference_profile() {
    let fixture = std::fs::read_to_string(root().join("fixtures/profiles/reference.toml")).unwrap();
    assert_eq!(fixture, REFERENCE_PROFILE);
}

fn problems_of(path: &std::path::Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    problems_named(path, &name)
}

fn problems_named(path: &std::path::Path, name: &str) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match Profile::parse(name, &text) {
        Ok(_) => panic!("{name} should be invalid"),
        Err(ProfileError::Invalid { problems }) => problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n"),
        Err(other) => panic!("{name}: unexpected error {other}"),
    }
}

#[test]
fn broken_profiles_name_file_line_and_key() {
    let mut paths: Vec<_> = std::fs::read_dir(root().join("tests/data/broken-profiles"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    assert!(paths.len() >= 8);
    for path in paths {
        let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("broken_profile__{stem}"), problems_of(&path));
    }
}

#[test]
fn profile_check_exits_2_and_prints_every_problem() {
    let output = run_cli(
        &[
            "profile",
            "check",
            "tests/data/broken-profiles/many-problems.toml",
        ],
        &root(),
    );
    assert_eq!(output.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        stdout.trim_end(),
        problems_named(
            &root().join("tests/data/broken-profiles/many-problems.toml"),
            "tests/data/broken-profiles/many-problems.toml"
        )
    );
    assert!(stdout.lines().count() >= 4, "{stdout}");
}

#[test]
fn profile_check_exits_0_for_a_valid_profile() {
    let output = run_cli(
        &["profile", "check", "fixtures/profiles/nested-envelope.toml"],
        &root(),
    );
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn profile_check_names_a_missing_file() {
    let output = run_cli(&["profile", "check", "no/such/profile.toml"], &root());
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no/such/profile.toml"), "{stderr}");
}

fn mutated_reference() -> impl Strategy<Value = String> {
    let lines: Vec<String> = REFERENCE_PROFILE.lines().map(str::to_owned).collect();
    let count = lines.len();
    (
        proptest::collection::vec((0..count, 0u8..4, "[a-z{}=\"\\[\\]., -]{0,12}"), 1..6),
        Just(lines),
    )
        .prop_map(|(edits, mut lines)| {
            for (index, action, text) in edits {
                let index = index % lines.len().max(1);
                match action {
                    0 => {
                        lines.remove(index);
                    }
                    1 => lines.insert(index, text),
                    2 => {
                        let line = lines[index].clone();
                        lines.insert(index, line);
                    }
                    _ => lines[index].push_str(&text),
                }
                if lines.is_empty() {
                    lines.push(String::new());
                }
            }
            lines.join("\n")
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn the_loader_never_panics_on_garbage(text in "[\\PC\n]{0,400}") {
        let _ = Profile::parse("garbage.toml", &text);
    }

    #[test]
    fn the_loader_never_panics_on_a_mutated_profile(text in mutated_reference()) {
        if let Err(ProfileError::Invalid { problems }) = Profile::parse("mutated.toml", &text) {
            prop_assert!(!problems.is_empty());
            for problem in problems {
                prop_assert!(problem.to_string().starts_with("mutated.toml"));
            }
        }
    }
}

#[test]
fn profile_init_prints_a_commented_profile_to_start_from() {
    let reference = run_cli(&["profile", "init"], &root());
    assert_eq!(reference.status.code(), Some(0));
    let text = String::from_utf8(reference.stdout).unwrap();
    assert_eq!(text, REFERENCE_PROFILE);
    assert!(Profile::parse("acme.toml", &text).is_ok());
    let hubspot = run_cli(&["profile", "init", "--from", "hubspot"], &root());
    let text = String::from_utf8(hubspot.stdout).unwrap();
    let expected = std::fs::read_to_string(root().join("fixtures/profiles/hubspot.toml")).unwrap();
    assert_eq!(text, expected);
    let unknown = run_cli(&["profile", "init", "--from", "acme"], &root());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert_eq!(unknown.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "no profile `acme`; there are reference and the fixture profiles create-only-sources"
        ),
        "{stderr}"
    );
}

#[test]
fn a_first_mistake_gets_a_hint_to_its_fix() {
    let cases: [(&[&str], &str); 3] = [
        (
            &["certify", "--profile", "acme.toml"],
            "error: cannot read profile acme.toml: No such file or directory (os error 2); `spoke profile init > acme.toml` writes a commented profile to start from",
        ),
        (
            &["certify", "--fault", "reject-unwoned"],
            "unknown fault `reject-unwoned`; did you mean `reject-unowned`?",
        ),
        (
            &["certify", "--base-url", "127.0.0.1:8080"],
            "base URL `127.0.0.1:8080` has no scheme: add it, e.g. `http://127.0.0.1:8080`",
        ),
    ];
    for (args, message) in cases {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
            .args(args)
            .current_dir(root())
            .env("SPOKE_REFERENCE_TOKEN", "a-token")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        // Said once, not once more by the error's cause.
        assert_eq!(
            stderr.matches("No such file").count(),
            usize::from(args[1] == "--profile"),
            "{stderr}"
        );
    }
}
