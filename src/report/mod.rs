//! Renders one run: the report model and one renderer per format (terminal, JSON, JUnit XML,
//! HAR, HTML).

pub mod curl;
pub mod diff;
pub mod har;
pub mod html;
pub mod json;
pub mod junit;
pub mod mask;
pub mod model;
pub mod terminal;
pub mod waivers;

pub use model::RunReport;

/// A report to write, from `--report FORMAT:PATH`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportTarget {
    /// JSON to a path.
    Json(std::path::PathBuf),
    /// JUnit XML to a path.
    Junit(std::path::PathBuf),
    /// HAR 1.2 (every exchange) to a path.
    Har(std::path::PathBuf),
    /// One self-contained HTML page to a path.
    Html(std::path::PathBuf),
}

impl std::str::FromStr for ReportTarget {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (format, path) = text
            .split_once(':')
            .ok_or_else(|| format!("`{text}`: expected FORMAT:PATH, e.g. json:report.json"))?;
        if path.is_empty() {
            return Err(format!("`{text}`: the path is empty"));
        }
        match format {
            "json" => Ok(ReportTarget::Json(path.into())),
            "junit" => Ok(ReportTarget::Junit(path.into())),
            "har" => Ok(ReportTarget::Har(path.into())),
            "html" => Ok(ReportTarget::Html(path.into())),
            other => Err(format!(
                "`{other}` is not a report format (json, junit, har, html)"
            )),
        }
    }
}

impl ReportTarget {
    /// Renders the report and writes it through the run's output (and so its redactor).
    pub fn write(&self, output: &crate::output::Output, report: &RunReport) -> std::io::Result<()> {
        let (path, text) = match self {
            ReportTarget::Json(path) => (path, json::render(report)),
            ReportTarget::Junit(path) => (path, junit::render(report)),
            ReportTarget::Har(path) => (path, har::render(report)),
            ReportTarget::Html(path) => (path, html::render(report)),
        };
        output.write(path, &text)
    }

    /// Refuses a path the report could not be written to, before the run rather than after
    /// it: a missing or unwritable folder, or a folder where the file should be.
    pub fn check_writable(&self) -> Result<(), String> {
        let path = self.path();
        if path.is_dir() {
            return Err(format!("{}: is a folder, not a file", path.display()));
        }
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => std::path::Path::new("."),
        };
        if !folder.is_dir() {
            return Err(format!(
                "{}: the folder {} does not exist",
                path.display(),
                folder.display()
            ));
        }
        // Writability is only known by writing: a probe file, removed at once.
        let probe = folder.join(format!(".spoke-write-check-{}", std::process::id()));
        std::fs::write(&probe, b"").map_err(|error| {
            format!(
                "{}: cannot write into {}: {error}",
                path.display(),
                folder.display()
            )
        })?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }

    /// Where it goes.
    pub fn path(&self) -> &std::path::Path {
        match self {
            ReportTarget::Json(path)
            | ReportTarget::Junit(path)
            | ReportTarget::Har(path)
            | ReportTarget::Html(path) => path,
        }
    }
}
