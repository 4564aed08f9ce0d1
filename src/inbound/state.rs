//! The `--state` file: InTouch written atomically after every change (temp file, fsync, rename,
//! fsync of the folder), so a crash mid-write leaves the last acknowledged state whole.

use super::store::{Intouch, Tenant, STATE_FORMAT};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Why the state file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// It could not be read.
    #[error("cannot read the state file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It is not a state file of this version.
    #[error("{path}: not a spoke connector state file: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// It belongs to another tenant.
    #[error(
        "{path} holds provider `{}`, client `{}`, club `{}`; this server was started for provider `{}`, client `{}`, club `{}` (use another --state file)",
        found.provider, found.client, found.club, wanted.provider, wanted.client, wanted.club
    )]
    OtherTenant {
        /// The file.
        path: PathBuf,
        /// The file's tenant.
        found: Box<Tenant>,
        /// The server's tenant.
        wanted: Box<Tenant>,
    },
}

/// Reads the state file; `Ok(None)` when it does not exist yet.
pub fn load(path: &Path, tenant: &Tenant) -> Result<Option<Intouch>, StateError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    let intouch: Intouch = serde_json::from_str(&text).map_err(|error| StateError::Invalid {
        path: path.to_owned(),
        message: error.to_string(),
    })?;
    if intouch.format != STATE_FORMAT {
        return Err(StateError::Invalid {
            path: path.to_owned(),
            message: format!(
                "format {} (this spoke reads format {STATE_FORMAT})",
                intouch.format
            ),
        });
    }
    if intouch.tenant != *tenant {
        return Err(StateError::OtherTenant {
            path: path.to_owned(),
            found: Box::new(intouch.tenant),
            wanted: Box::new(tenant.clone()),
        });
    }
    Ok(Some(intouch))
}

/// The state as written to the file.
pub fn encode(intouch: &Intouch) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(intouch).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

/// Writes `bytes` to `path` atomically and durably: a temp file beside it is written and
/// synced, then renamed over `path`, then the folder is synced so the rename survives a crash.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let folder = match path.parent() {
        Some(folder) if !folder.as_os_str().is_empty() => folder.to_owned(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "state".to_owned());
    let temp = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    let written = (|| {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(error);
    }
    // Syncing a folder is how POSIX makes a rename durable; elsewhere opening it may fail.
    #[cfg(unix)]
    std::fs::File::open(&folder)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant() -> Tenant {
        Tenant {
            provider: "P".into(),
            client: "C".into(),
            club: "K".into(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("spoke-state-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn round_trips_and_refuses_another_tenant() {
        let dir = temp_dir("round-trip");
        let path = dir.join("intouch.json");
        assert!(load(&path, &tenant()).unwrap().is_none());
        let mut intouch = Intouch::new(tenant());
        intouch.save_user("R-1", [("firstname".to_owned(), "Ana".to_owned())].into());
        write_atomic(&path, &encode(&intouch)).unwrap();
        assert_eq!(load(&path, &tenant()).unwrap(), Some(intouch));
        let other = Tenant {
            club: "other".into(),
            ..tenant()
        };
        let error = load(&path, &other).unwrap_err().to_string();
        assert!(
            error.contains("club `K`") && error.contains("club `other`"),
            "{error}"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_torn_temp_file_leaves_the_last_state_whole() {
        let dir = temp_dir("torn");
        let path = dir.join("intouch.json");
        let intouch = Intouch::new(tenant());
        write_atomic(&path, &encode(&intouch)).unwrap();
        // A crash after the temp file was half written and before the rename.
        let torn = dir.join(format!(".intouch.json.{}.tmp", std::process::id()));
        std::fs::write(&torn, b"{\"format\": 1, \"ten").unwrap();
        assert_eq!(load(&path, &tenant()).unwrap(), Some(intouch.clone()));
        // The next write replaces the torn temp file.
        write_atomic(&path, &encode(&intouch)).unwrap();
        assert!(!torn.exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_damaged_state_file_is_refused_with_its_path() {
        let dir = temp_dir("damaged");
        let path = dir.join("intouch.json");
        std::fs::write(&path, b"{ not json").unwrap();
        let error = load(&path, &tenant()).unwrap_err().to_string();
        assert!(error.contains("intouch.json"), "{error}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
