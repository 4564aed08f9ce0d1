//! The certification bundle: one run's manifest, reports, HAR and profile, as a folder or a
//! `.zip`, with the SHA-256 of every file; and its offline verification, which re-checks the
//! digests and re-derives the verdicts by replaying the recorded evidence.

use crate::output::{Output, Redacted};
use crate::replay::{self, Recording};
use crate::report::model::RunReport;
use crate::report::terminal::{self, Style};
use crate::report::{har, html, json, junit};
use crate::suite::{Catalog, Outcome};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The version of the bundle's layout; bumped when a file or manifest field changes meaning.
pub const BUNDLE_FORMAT_VERSION: u32 = 1;

/// The manifest's file name; every other file is listed in it.
pub const MANIFEST: &str = "manifest.json";

/// The profile's file name in a bundle.
pub const PROFILE_FILE: &str = "profile.toml";

/// The JSON report's file name: the recorded evidence and verdicts verification starts from.
pub const JSON_REPORT: &str = "report.json";

/// The HAR's file name: the same exchanges as the JSON report, for HAR viewers.
pub const HAR_FILE: &str = "evidence.har";

/// A renderer of one report format.
type Render = fn(&RunReport) -> String;

/// The reports a bundle holds. A new format is one line here.
const REPORTS: &[(&str, Render)] = &[
    (JSON_REPORT, json::render),
    ("report.junit.xml", junit::render),
    ("report.txt", plain_terminal),
    (HAR_FILE, har::render),
    ("report.html", html::render),
];

fn plain_terminal(report: &RunReport) -> String {
    terminal::render(report, Style { color: false })
}

/// The largest bundle file read, and the largest bundle in all (a zip may claim anything).
const MAX_BUNDLE_BYTES: u64 = 1024 * 1024 * 1024;

/// `manifest.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The layout's version.
    pub bundle_format_version: u32,
    /// `spoke <version>` that wrote it.
    pub tool: String,
    /// The rule catalog's version.
    pub catalog_version: String,
    /// SHA-256 of the rule catalog.
    pub catalog_digest: String,
    /// The profile run.
    pub profile: ManifestProfile,
    /// The partner's name.
    pub partner: String,
    /// The base URL called, secrets redacted.
    pub base_url: String,
    /// Whether the in-process mock partner was certified.
    pub mock: bool,
    /// Mock faults switched on.
    pub faults: Vec<String>,
    /// The run's seed.
    pub seed: u64,
    /// `--only` rules, if any.
    pub only: Vec<String>,
    /// ROB-002's latency budget.
    pub latency_budget_ms: u64,
    /// The per-request timeout.
    pub timeout_ms: u64,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// When it ended.
    pub finished_at: String,
    /// The run's exit code.
    pub exit_code: i32,
    /// Every other file: name, SHA-256 and size.
    pub files: Vec<ManifestFile>,
}

/// The profile in a manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestProfile {
    /// The profile's file name as run.
    pub name: String,
    /// SHA-256 of the profile as run (the reports' `profile_digest`).
    pub digest: String,
    /// Its copy in the bundle, secrets removed.
    pub file: String,
    /// Whether removing secrets changed the copy (then its digest differs from `digest`).
    pub redacted: bool,
}

/// One file of a bundle.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    /// Its name in the bundle.
    pub path: String,
    /// `sha256:<hex>`.
    pub sha256: String,
    /// Bytes.
    pub size: u64,
}

/// What a bundle records beyond the report.
#[derive(Debug, Clone)]
pub struct RunContext {
    /// The profile's text as run (its copy in the bundle goes through the run's redactor).
    pub profile_text: String,
    /// The profile's text as run, for its digest.
    pub profile_digest: String,
    /// ROB-002's budget.
    pub latency_budget: Duration,
    /// The per-request timeout.
    pub request_timeout: Duration,
    /// When the run ended (RFC 3339, UTC).
    pub finished_at: String,
}

/// Why a bundle could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The path is unusable.
    #[error("{path}: {message}")]
    Path {
        /// The bundle path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Not a bundle, or not one this version understands.
    #[error("{path}: {message}")]
    Invalid {
        /// The bundle path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> BundleError + '_ {
    move |source| BundleError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` names a zip bundle rather than a folder.
pub fn is_zip(path: &Path) -> bool {
    path.extension()
        .is_some_and(|ext| ext.eq_ignore_ascii_case("zip"))
}

/// The bundle's files, manifest last, as `(name, text)`: each through the run's redactor
/// before its digest is taken, so the manifest lists the bytes written.
pub fn contents(
    output: &Output,
    report: &RunReport,
    context: &RunContext,
) -> Vec<(String, Redacted)> {
    let mut files: Vec<(String, Redacted)> = REPORTS
        .iter()
        .map(|(name, render)| ((*name).to_owned(), output.redact(&render(report))))
        .collect();
    let profile = output.redact(&context.profile_text);
    let manifest = Manifest {
        bundle_format_version: BUNDLE_FORMAT_VERSION,
        tool: report.tool.clone(),
        catalog_version: report.catalog_version.clone(),
        catalog_digest: report.catalog_digest.clone(),
        profile: ManifestProfile {
            name: report.partner.profile.clone(),
            digest: context.profile_digest.clone(),
            file: PROFILE_FILE.to_owned(),
            redacted: crate::digest::sha256(profile.as_bytes()) != context.profile_digest,
        },
        partner: report.partner.name.clone(),
        base_url: report.partner.base_url.clone(),
        mock: report.partner.mock,
        faults: report.partner.faults.clone(),
        seed: report.seed,
        only: report.only.clone(),
        latency_budget_ms: context.latency_budget.as_millis() as u64,
        timeout_ms: context.request_timeout.as_millis() as u64,
        started_at: report.started_at.clone(),
        finished_at: context.finished_at.clone(),
        exit_code: report.exit_code,
        files: files
            .iter()
            .chain([&(PROFILE_FILE.to_owned(), profile.clone())])
            .map(|(path, text)| ManifestFile {
                path: path.clone(),
                sha256: crate::digest::sha256(text.as_bytes()),
                size: text.len() as u64,
            })
            .collect(),
    };
    files.push((PROFILE_FILE.to_owned(), profile));
    let mut manifest_text =
        serde_json::to_string_pretty(&manifest).expect("a manifest always serialises");
    manifest_text.push('\n');
    files.push((MANIFEST.to_owned(), output.redact(&manifest_text)));
    files
}

/// Whether a bundle can be written to `path`: a folder that does not exist yet, or a `.zip`
/// that is not a folder.
pub fn check_target(path: &Path) -> Result<(), BundleError> {
    let refuse = |message: &str| {
        Err(BundleError::Path {
            path: path.to_owned(),
            message: message.to_owned(),
        })
    };
    if path.file_name().is_none() {
        return refuse("not a file or folder name");
    }
    match (is_zip(path), path.exists()) {
        (true, true) if path.is_dir() => refuse("is a folder; a .zip bundle needs a file name"),
        (false, true) => refuse("already exists; remove it or name a new folder"),
        _ => Ok(()),
    }
}

/// Writes the bundle to `path` (a folder, or a `.zip`): first under a temporary name beside
/// it, then renamed, so an interrupted run never leaves a bundle that looks complete. An
/// existing folder is never overwritten; an existing zip is replaced whole.
pub fn write(
    output: &Output,
    path: &Path,
    report: &RunReport,
    context: &RunContext,
) -> Result<(), BundleError> {
    check_target(path)?;
    let files = contents(output, report, context);
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_owned(),
        _ => PathBuf::from("."),
    };
    let partial = parent.join(format!(".{name}.partial-{}", std::process::id()));
    if is_zip(path) {
        let result = write_zip(&partial, &files).and_then(|()| {
            std::fs::rename(&partial, path).map_err(io(path))?;
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result
    } else {
        let result = write_folder(output, &partial, &files).and_then(|()| {
            std::fs::rename(&partial, path).map_err(io(path))?;
            Ok(())
        });
        if result.is_err() {
            let _ = std::fs::remove_dir_all(&partial);
        }
        result
    }
}

fn write_folder(
    output: &Output,
    folder: &Path,
    files: &[(String, Redacted)],
) -> Result<(), BundleError> {
    std::fs::create_dir_all(folder).map_err(io(folder))?;
    for (name, text) in files {
        let file = folder.join(name);
        output.write_redacted(&file, text).map_err(io(&file))?;
    }
    Ok(())
}

/// Zips files that went through the run's redactor (a zip's compressed bytes could not be).
fn write_zip(zip_path: &Path, files: &[(String, Redacted)]) -> Result<(), BundleError> {
    let file = std::fs::File::create(zip_path).map_err(io(zip_path))?;
    let mut zip = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let to_io = |error: zip::result::ZipError| std::io::Error::other(error.to_string());
    for (name, text) in files {
        zip.start_file(name.as_str(), options)
            .map_err(to_io)
            .map_err(io(zip_path))?;
        zip.write_all(text.as_bytes()).map_err(io(zip_path))?;
    }
    let mut writer = zip.finish().map_err(to_io).map_err(io(zip_path))?;
    writer.flush().map_err(io(zip_path))?;
    writer
        .into_inner()
        .map_err(|error| error.into_error())
        .and_then(|file| file.sync_all())
        .map_err(io(zip_path))
}

/// A bundle read back: its manifest and every file's bytes.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// Where it was read from.
    pub path: PathBuf,
    /// The manifest.
    pub manifest: Manifest,
    /// Every file but the manifest, by name (folders inside it as `name/`).
    pub files: BTreeMap<String, Vec<u8>>,
}

/// Reads a bundle folder or zip.
pub fn read(path: &Path) -> Result<Bundle, BundleError> {
    let invalid = |message: String| BundleError::Invalid {
        path: path.to_owned(),
        message,
    };
    let mut files = if path.is_dir() {
        read_folder(path)?
    } else if path.is_file() {
        read_zip(path)?
    } else {
        return Err(BundleError::Path {
            path: path.to_owned(),
            message: "no such bundle (a folder or a .zip)".into(),
        });
    };
    let manifest_bytes = files
        .remove(MANIFEST)
        .ok_or_else(|| invalid(format!("no {MANIFEST}: not a bundle, or an unfinished one")))?;
    let manifest: Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|error| invalid(format!("{MANIFEST}: {error}")))?;
    if manifest.bundle_format_version != BUNDLE_FORMAT_VERSION {
        return Err(invalid(format!(
            "{MANIFEST}: bundle format {} (this spoke reads {BUNDLE_FORMAT_VERSION})",
            manifest.bundle_format_version
        )));
    }
    Ok(Bundle {
        path: path.to_owned(),
        manifest,
        files,
    })
}

fn read_folder(folder: &Path) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let mut files = BTreeMap::new();
    let mut total = 0u64;
    for entry in std::fs::read_dir(folder).map_err(io(folder))? {
        let entry = entry.map_err(io(folder))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let kind = entry.file_type().map_err(io(&entry.path()))?;
        if kind.is_dir() {
            files.insert(format!("{name}/"), Vec::new());
            continue;
        }
        let file = entry.path();
        let size = entry.metadata().map_err(io(&file))?.len();
        total += size;
        if total > MAX_BUNDLE_BYTES {
            return Err(BundleError::Invalid {
                path: folder.to_owned(),
                message: format!("over {MAX_BUNDLE_BYTES} bytes: not a bundle"),
            });
        }
        files.insert(name, std::fs::read(&file).map_err(io(&file))?);
    }
    Ok(files)
}

fn read_zip(zip_path: &Path) -> Result<BTreeMap<String, Vec<u8>>, BundleError> {
    let invalid = |message: String| BundleError::Invalid {
        path: zip_path.to_owned(),
        message,
    };
    let file = std::fs::File::open(zip_path).map_err(io(zip_path))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file))
        .map_err(|error| invalid(format!("not a readable zip: {error}")))?;
    let mut files = BTreeMap::new();
    let mut budget = MAX_BUNDLE_BYTES;
    for index in 0..archive.len() {
        let mut entry = archive
            .by_index(index)
            .map_err(|error| invalid(format!("entry {index}: {error}")))?;
        let name = entry
            .name()
            .map_err(|error| invalid(format!("entry {index}: {error}")))?
            .into_owned();
        let mut bytes = Vec::new();
        // Read past the claimed size by one byte at most: a lying header cannot exhaust memory.
        (&mut entry)
            .take(budget + 1)
            .read_to_end(&mut bytes)
            .map_err(|error| invalid(format!("{name}: {error}")))?;
        budget = budget
            .checked_sub(bytes.len() as u64)
            .ok_or_else(|| invalid(format!("over {MAX_BUNDLE_BYTES} bytes unpacked")))?;
        if files.insert(name.clone(), bytes).is_some() {
            return Err(invalid(format!("`{name}` is in the zip twice")));
        }
    }
    Ok(files)
}

/// A file that is not as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// Listed, but its digest or size differs.
    Altered {
        /// The file.
        path: String,
        /// The manifest's digest.
        expected: String,
        /// The file's digest.
        actual: String,
    },
    /// Listed, but missing.
    Removed(String),
    /// Present, but not listed.
    Added(String),
}

impl std::fmt::Display for FileProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileProblem::Altered {
                path,
                expected,
                actual,
            } => write!(f, "altered: {path} (manifest {expected}, file {actual})"),
            FileProblem::Removed(path) => write!(f, "removed: {path} (listed in the manifest)"),
            FileProblem::Added(path) => write!(f, "added: {path} (not in the manifest)"),
        }
    }
}

/// What verification found.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Files not as the manifest lists them.
    pub files: Vec<FileProblem>,
    /// Files checked against the manifest.
    pub files_checked: usize,
    /// Facts the manifest, the JSON report, the HAR and the profile disagree on.
    pub inconsistencies: Vec<String>,
    /// Why the verdicts could not be re-derived, if so.
    pub not_rederived: Option<String>,
    /// Verdicts re-derived.
    pub verdicts_checked: usize,
    /// Verdicts that do not follow from the evidence.
    pub verdicts: Vec<replay::Difference>,
    /// Requests of the re-derivation the recording holds no answer for.
    pub unmatched: Vec<String>,
    /// Recorded exchanges the re-derivation asked for with another body: a note, not an
    /// alteration (another spoke version may send other requests).
    pub diverged: Vec<usize>,
    /// The spoke verifying, when it is not the one that wrote the bundle.
    pub other_tool: Option<String>,
    /// SEND- verdicts of a two-way run, taken as recorded: they judge the partner's own calls,
    /// which cannot be made again offline (the digests still cover them).
    pub carried: Vec<String>,
}

impl Verification {
    /// Whether nothing was found altered.
    pub fn intact(&self) -> bool {
        self.files.is_empty()
            && self.inconsistencies.is_empty()
            && self.not_rederived.is_none()
            && self.verdicts.is_empty()
    }

    /// The verification as text, one finding a line.
    pub fn render(&self, bundle: &Bundle) -> String {
        let manifest = &bundle.manifest;
        let mut lines = vec![format!(
            "bundle {}: {} run of {} ({}), seed {}, exit code {}",
            bundle.path.display(),
            manifest.tool,
            manifest.partner,
            manifest.profile.name,
            manifest.seed,
            manifest.exit_code
        )];
        if let Some(tool) = &self.other_tool {
            lines.push(format!(
                "note: verified by {tool}; a session of another version may differ"
            ));
        }
        lines.push(format!(
            "files: {} checked against {MANIFEST}, {}",
            self.files_checked,
            match self.files.len() {
                0 => "all intact".to_owned(),
                n => format!("{n} not as listed"),
            }
        ));
        lines.extend(self.files.iter().map(|problem| format!("  {problem}")));
        if !self.inconsistencies.is_empty() {
            lines.push(format!(
                "cross-checks of {MANIFEST}, {JSON_REPORT}, {HAR_FILE} and the profile: {} disagreement(s)",
                self.inconsistencies.len()
            ));
            lines.extend(self.inconsistencies.iter().map(|line| format!("  {line}")));
        }
        match &self.not_rederived {
            Some(why) => lines.push(format!("verdicts: not re-derived: {why}")),
            None => {
                lines.push(format!(
                    "verdicts: {} re-derived offline from the recorded evidence and catalog {}, {}",
                    self.verdicts_checked,
                    manifest.catalog_version,
                    match self.verdicts.len() {
                        0 => "all follow".to_owned(),
                        n => format!("{n} do not follow"),
                    }
                ));
                if !self.carried.is_empty() {
                    lines.push(format!(
                        "  taken as recorded, covered by the digests only: {} (the partner's own calls to the Connector API cannot be made again offline)",
                        self.carried.join(", ")
                    ));
                }
                for difference in &self.verdicts {
                    lines.push(format!(
                        "  {}: recorded {}, re-derived {}",
                        difference.rule,
                        outcome_word(difference.recorded),
                        outcome_word(difference.replayed)
                    ));
                }
                for request in &self.unmatched {
                    lines.push(format!("  no recorded answer for {request}"));
                }
                if !self.diverged.is_empty() {
                    lines.push(format!(
                        "  note: exchanges {} were asked for with another body than recorded; their verdicts rest on the recorded answers",
                        self.diverged
                            .iter()
                            .map(usize::to_string)
                            .collect::<Vec<_>>()
                            .join(", ")
                    ));
                }
            }
        }
        lines.push(if self.intact() {
            "result: intact".to_owned()
        } else {
            "result: ALTERED".to_owned()
        });
        lines.join("\n") + "\n"
    }
}

fn outcome_word(outcome: Option<Outcome>) -> &'static str {
    outcome.map_or("(none)", Outcome::as_str)
}

/// The outcome a report word names.
pub fn parse_outcome(word: &str) -> Option<Outcome> {
    [
        Outcome::Pass,
        Outcome::Fail,
        Outcome::Warn,
        Outcome::Skip,
        Outcome::Inconclusive,
        Outcome::Error,
    ]
    .into_iter()
    .find(|outcome| outcome.as_str() == word)
}

/// The parts of a JSON report a replay needs.
#[derive(Debug, Deserialize)]
struct RecordedReport {
    catalog_digest: String,
    partner: RecordedPartner,
    seed: u64,
    only: Vec<String>,
    exit_code: i32,
    verdicts: Vec<RecordedVerdict>,
    exchanges: Vec<crate::connector::Exchange>,
    /// When the run started: waivers are judged as of that day.
    started_at: String,
    #[serde(default)]
    waivers: Vec<crate::report::waivers::WaiverOutcome>,
}

#[derive(Debug, Deserialize)]
struct RecordedPartner {
    profile: String,
    profile_digest: String,
    base_url: String,
    faults: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct RecordedVerdict {
    rule: String,
    outcome: String,
}

/// The recording a bundle holds: its profile and its JSON report's evidence and verdicts.
pub fn recording(bundle: &Bundle) -> Result<Recording, String> {
    let (recording, _) = recording_and_report(bundle)?;
    Ok(recording)
}

fn recording_and_report(bundle: &Bundle) -> Result<(Recording, RecordedReport), String> {
    let manifest = &bundle.manifest;
    let report_bytes = bundle
        .files
        .get(JSON_REPORT)
        .ok_or_else(|| format!("{JSON_REPORT} is missing"))?;
    let report: RecordedReport =
        serde_json::from_slice(report_bytes).map_err(|error| format!("{JSON_REPORT}: {error}"))?;
    let profile_bytes = bundle
        .files
        .get(&manifest.profile.file)
        .ok_or_else(|| format!("{} is missing", manifest.profile.file))?;
    let profile_text = String::from_utf8(profile_bytes.clone())
        .map_err(|_| format!("{}: not UTF-8", manifest.profile.file))?;
    let profile = crate::profile::Profile::parse(&manifest.profile.name, &profile_text)
        .map_err(|error| format!("{}: {error}", manifest.profile.file))?;
    let mut verdicts = Vec::new();
    for verdict in &report.verdicts {
        let outcome = parse_outcome(&verdict.outcome).ok_or_else(|| {
            format!(
                "{JSON_REPORT}: rule {} has no outcome `{}`",
                verdict.rule, verdict.outcome
            )
        })?;
        verdicts.push((verdict.rule.clone(), outcome));
    }
    let recording = Recording {
        profile,
        base_url: report.partner.base_url.clone(),
        seed: report.seed,
        only: report.only.clone(),
        latency_budget: Duration::from_millis(manifest.latency_budget_ms),
        exchanges: report.exchanges.clone(),
        verdicts,
    };
    Ok((recording, report))
}

/// The files not as the manifest lists them.
pub fn check_files(bundle: &Bundle) -> Vec<FileProblem> {
    let mut problems = Vec::new();
    for listed in &bundle.manifest.files {
        match bundle.files.get(&listed.path) {
            None => problems.push(FileProblem::Removed(listed.path.clone())),
            Some(bytes) => {
                let actual = crate::digest::sha256(bytes);
                if actual != listed.sha256 || bytes.len() as u64 != listed.size {
                    problems.push(FileProblem::Altered {
                        path: listed.path.clone(),
                        expected: listed.sha256.clone(),
                        actual,
                    });
                }
            }
        }
    }
    for name in bundle.files.keys() {
        if !bundle.manifest.files.iter().any(|f| &f.path == name) {
            problems.push(FileProblem::Added(name.clone()));
        }
    }
    problems
}

/// Verifies a bundle offline: the files against the manifest, the manifest against the JSON
/// report, and the recorded verdicts against those re-derived from the recorded evidence.
pub async fn verify(bundle: &Bundle) -> Verification {
    let files = check_files(bundle);
    let mut verification = Verification {
        files_checked: bundle.manifest.files.len(),
        files,
        inconsistencies: Vec::new(),
        not_rederived: None,
        verdicts_checked: 0,
        verdicts: Vec::new(),
        unmatched: Vec::new(),
        diverged: Vec::new(),
        other_tool: None,
        carried: Vec::new(),
    };
    let this_tool = concat!("spoke ", env!("CARGO_PKG_VERSION"));
    if bundle.manifest.tool != this_tool {
        verification.other_tool = Some(this_tool.to_owned());
    }
    let catalog = Catalog::builtin();
    let our_catalog = crate::digest::sha256(crate::suite::catalog::RULES_TOML.as_bytes());
    if bundle.manifest.catalog_digest != our_catalog {
        verification.not_rederived = Some(format!(
            "the bundle was judged by catalog {} ({}); this spoke has catalog {} ({})",
            bundle.manifest.catalog_version,
            bundle.manifest.catalog_digest,
            catalog.catalog_version,
            our_catalog
        ));
        return verification;
    }
    let (recording, report) = match recording_and_report(bundle) {
        Ok(both) => both,
        Err(why) => {
            verification.not_rederived = Some(why);
            return verification;
        }
    };
    verification.inconsistencies = inconsistencies(&bundle.manifest, &report);
    if let Some(har) = bundle.files.get(HAR_FILE) {
        verification
            .inconsistencies
            .extend(har_disagreements(har, &report.exchanges));
    }
    let manifest_profile = &bundle.manifest.profile;
    if !manifest_profile.redacted {
        if let Some(text) = bundle.files.get(&manifest_profile.file) {
            let actual = crate::digest::sha256(text);
            if actual != manifest_profile.digest {
                verification.inconsistencies.push(format!(
                    "profile digest: {MANIFEST} says {}, {} has {actual}",
                    manifest_profile.digest, manifest_profile.file
                ));
            }
        }
    }
    match replay::replay(&recording, &[]).await {
        Ok(outcome) => {
            verification.verdicts_checked = outcome.verdicts.len();
            verification.carried = outcome
                .carried
                .iter()
                .map(|(rule, _)| rule.clone())
                .collect();
            verification.verdicts = outcome.differences;
            verification.unmatched = outcome.unmatched;
            verification.diverged = outcome.diverged;
            // A two-way run's SEND- verdicts count as recorded (a replay cannot make the
            // partner's own calls again); the rest as re-derived.
            let catalog = Catalog::builtin();
            let mut judged = outcome.verdicts.clone();
            for (rule, recorded) in &outcome.carried {
                if let Some(entry) = catalog.rule(rule) {
                    judged.push(crate::suite::Verdict {
                        rule: rule.clone(),
                        level: entry.level,
                        title: entry.title.clone(),
                        outcome: *recorded,
                        reason: "as recorded".into(),
                        evidence: Vec::new(),
                    });
                }
            }
            let exit_code = if report.waivers.is_empty() {
                crate::report::model::exit_code(&judged)
            } else {
                let waivers: Vec<_> = report.waivers.iter().map(|w| w.waiver.clone()).collect();
                let day = chrono::DateTime::parse_from_rfc3339(&report.started_at)
                    .map(|at| at.with_timezone(&chrono::Utc).date_naive())
                    .unwrap_or_else(|_| chrono::Utc::now().date_naive());
                crate::report::waivers::rederived_exit_code(&judged, &waivers, day)
            };
            // An unreachable partner exits 3 whatever its verdicts; the replay cannot tell.
            if exit_code != bundle.manifest.exit_code
                && bundle.manifest.exit_code != crate::exit_codes::RUN_FAILED
            {
                verification.inconsistencies.push(format!(
                    "exit code: {MANIFEST} says {}, the re-derived verdicts give {exit_code}",
                    bundle.manifest.exit_code
                ));
            }
        }
        Err(why) => verification.not_rederived = Some(why),
    }
    verification
}

fn inconsistencies(manifest: &Manifest, report: &RecordedReport) -> Vec<String> {
    let mut found = Vec::new();
    let mut check = |what: &str, in_manifest: String, in_report: String| {
        if in_manifest != in_report {
            found.push(format!(
                "{what}: {MANIFEST} says {in_manifest}, {JSON_REPORT} says {in_report}"
            ));
        }
    };
    check(
        "catalog digest",
        manifest.catalog_digest.clone(),
        report.catalog_digest.clone(),
    );
    check(
        "profile",
        manifest.profile.name.clone(),
        report.partner.profile.clone(),
    );
    check(
        "profile digest",
        manifest.profile.digest.clone(),
        report.partner.profile_digest.clone(),
    );
    check(
        "base URL",
        manifest.base_url.clone(),
        report.partner.base_url.clone(),
    );
    check(
        "faults",
        manifest.faults.join(","),
        report.partner.faults.join(","),
    );
    check("seed", manifest.seed.to_string(), report.seed.to_string());
    check("only", manifest.only.join(","), report.only.join(","));
    check(
        "exit code",
        manifest.exit_code.to_string(),
        report.exit_code.to_string(),
    );
    found
}

/// Where the HAR's entries say other than the JSON report's exchanges: method, URL, status,
/// request and response bodies.
fn har_disagreements(har: &[u8], exchanges: &[crate::connector::Exchange]) -> Vec<String> {
    let Ok(har) = serde_json::from_slice::<serde_json::Value>(har) else {
        return vec![format!("{HAR_FILE}: not JSON")];
    };
    let Some(entries) = har.pointer("/log/entries").and_then(|e| e.as_array()) else {
        return vec![format!("{HAR_FILE}: no log.entries")];
    };
    let mut found = Vec::new();
    if entries.len() != exchanges.len() {
        found.push(format!(
            "{HAR_FILE} has {} entries, {JSON_REPORT} {} exchanges",
            entries.len(),
            exchanges.len()
        ));
    }
    for (number, (entry, exchange)) in entries.iter().zip(exchanges).enumerate() {
        let text = |pointer: &str| entry.pointer(pointer).and_then(|v| v.as_str());
        let checks = [
            (
                "method",
                text("/request/method") == Some(exchange.method.as_str()),
            ),
            ("URL", text("/request/url") == Some(exchange.url.as_str())),
            (
                "status",
                entry.pointer("/response/status").and_then(|v| v.as_u64())
                    == Some(u64::from(exchange.status.unwrap_or(0))),
            ),
            (
                "request body",
                text("/request/postData/text") == exchange.request_body.as_deref(),
            ),
            (
                "response body",
                text("/response/content/text")
                    == Some(exchange.response_body.as_deref().unwrap_or_default()),
            ),
        ];
        for (what, agrees) in checks {
            if !agrees {
                found.push(format!(
                    "{HAR_FILE} entry {} ({} {}): its {what} is not that of exchange {} in {JSON_REPORT}",
                    number + 1,
                    exchange.method,
                    exchange.url,
                    exchange.id
                ));
            }
        }
    }
    found
}
