//! The mock partner's starting data: staff and lead sources, loaded from a sandbox seed file.

use crate::model::{same_ignoring_case, LeadSource, Staff};
use serde::Deserialize;
use std::path::Path;

/// The embedded default sandbox.
pub const DEFAULT_SANDBOX: &str = include_str!("../../fixtures/sandbox/default.toml");

/// The partner's pre-existing staff and lead sources.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sandbox {
    /// Staff, in list order.
    pub staff: Vec<Staff>,
    /// Lead sources, in list order.
    pub sources: Vec<LeadSource>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SandboxFile {
    #[serde(default)]
    staff: Vec<StaffEntry>,
    #[serde(default)]
    sources: Vec<SourceEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct StaffEntry {
    id: String,
    email: Option<String>,
    #[serde(default)]
    first_name: String,
    #[serde(default)]
    last_name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct SourceEntry {
    id: String,
    name: String,
}

/// A sandbox file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The file could not be read.
    #[error("cannot read sandbox {path}: {source}")]
    Read {
        /// The path given.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML of the sandbox's shape.
    #[error("{file}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// The data contradicts itself.
    #[error("{file}: {message}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl Sandbox {
    /// The embedded default sandbox.
    pub fn default_seed() -> Sandbox {
        static PARSED: std::sync::OnceLock<Sandbox> = std::sync::OnceLock::new();
        PARSED
            .get_or_init(|| {
                Sandbox::parse("default.toml", DEFAULT_SANDBOX)
                    .expect("the embedded sandbox is valid (checked by tests)")
            })
            .clone()
    }

    /// A generated sandbox of `staff` staff members (every tenth without email) and `sources`
    /// lead sources, for scale runs.
    pub fn synthetic(staff: usize, sources: usize) -> Sandbox {
        Sandbox {
            staff: (1..=staff)
                .map(|n| Staff {
                    id: format!("S-{n:07}"),
                    email: (n % 10 != 0).then(|| format!("coach{n}@scale.partner-club.example")),
                    first_name: format!("Coach{n}"),
                    last_name: "Scale".into(),
                })
                .collect(),
            sources: (1..=sources)
                .map(|n| LeadSource {
                    id: format!("LS-{n:06}"),
                    name: format!("Campaign {n}"),
                })
                .collect(),
        }
    }

    /// Loads a sandbox file.
    pub fn load(path: &Path) -> Result<Sandbox, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Sandbox::parse(&path.display().to_string(), &text)
    }

    /// Parses sandbox text; `file` is used in messages.
    pub fn parse(file: &str, text: &str) -> Result<Sandbox, SandboxError> {
        let parsed: SandboxFile = toml::from_str(text).map_err(|error| SandboxError::Syntax {
            file: file.to_owned(),
            message: error.to_string().trim_end().replace('\n', " "),
        })?;
        let invalid = |message: String| SandboxError::Invalid {
            file: file.to_owned(),
            message,
        };
        let mut sandbox = Sandbox::default();
        for entry in parsed.staff {
            if entry.id.trim().is_empty() {
                return Err(invalid("a staff entry has an empty id".into()));
            }
            if sandbox.staff.iter().any(|s| s.id == entry.id) {
                return Err(invalid(format!("staff id `{}` appears twice", entry.id)));
            }
            if let Some(email) = &entry.email {
                if sandbox
                    .staff
                    .iter()
                    .filter_map(|s| s.email.as_deref())
                    .any(|other| same_ignoring_case(other, email))
                {
                    return Err(invalid(format!("staff email `{email}` appears twice")));
                }
            }
            sandbox.staff.push(Staff {
                id: entry.id,
                email: entry.email.filter(|email| !email.is_empty()),
                first_name: entry.first_name,
                last_name: entry.last_name,
            });
        }
        for entry in parsed.sources {
            if entry.id.trim().is_empty() || entry.name.trim().is_empty() {
                return Err(invalid("a source has an empty id or name".into()));
            }
            if sandbox.sources.iter().any(|s| s.id == entry.id) {
                return Err(invalid(format!("source id `{}` appears twice", entry.id)));
            }
            if sandbox
                .sources
                .iter()
                .any(|s| same_ignoring_case(&s.name, &entry.name))
            {
                return Err(invalid(format!(
                    "source name `{}` appears twice (names are compared ignoring case)",
                    entry.name
                )));
            }
            sandbox.sources.push(LeadSource {
                id: entry.id,
                name: entry.name,
            });
        }
        Ok(sandbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_sandbox_spans_several_pages_and_has_edge_cases() {
        let sandbox = Sandbox::default_seed();
        assert!(sandbox.staff.len() >= 120);
        // Every staff member has an email: a clean run warns about none (the
        // `staff-some-without-email` fault hides some).
        assert!(sandbox.staff.iter().all(|s| s.email.is_some()));
        let digits_only = |id: &str| id.chars().all(|c| c.is_ascii_digit());
        assert!(sandbox.staff.iter().any(|s| digits_only(&s.id)));
        assert!(sandbox.staff.iter().any(|s| s.id.contains('_')));
        assert!(sandbox.staff.iter().any(|s| s.id.len() > 30));
        assert!(sandbox
            .staff
            .iter()
            .filter_map(|s| s.email.as_deref())
            .any(|e| e.chars().any(char::is_uppercase)));
        assert!(sandbox.sources.len() >= 12);
        assert!(sandbox.sources.iter().any(|s| !s.name.is_ascii()));
    }

    #[test]
    fn duplicate_names_under_case_folding_are_rejected() {
        let text = "[[sources]]\nid = \"a\"\nname = \"Straße\"\n[[sources]]\nid = \"b\"\nname = \"STRASSE\"\n";
        let error = Sandbox::parse("s.toml", text).unwrap_err();
        assert!(error.to_string().contains("appears twice"), "{error}");
    }
}
