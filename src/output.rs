//! Where everything spoke writes leaves the program: the terminal (stdout, stderr, the progress
//! line, error messages), report files and bundles. Each passes through the run's one
//! [`Redactor`] here, so no renderer, message or file can carry a secret out, in any form it
//! takes (see [`Redactor::text`]), including secrets learned while the run went on.
//!
//! Evidence is also redacted when it is captured, so the report model itself holds no secret;
//! this is the guarantee behind that: whatever a renderer does with the model, and whatever a
//! partner echoes in a reason, what is written has been through the redactor.
//!
//! The terminal (stdout, stderr) also gets every control character escaped here but spoke's own
//! layout and colours (see [`crate::controls::terminal`]): a partner's `ESC[2J` in an error
//! message shows as `\u{1b}[2J` instead of clearing the screen. Files are left to their
//! renderers, whose formats escape in their own ways (JSON `\u` escapes, HTML text).

use crate::connector::Redactor;
use std::io::Write;
use std::path::Path;

/// The run's way out: stdout, stderr and files, through one redactor. Clones share it.
#[derive(Debug, Clone, Default)]
pub struct Output {
    redactor: Redactor,
}

/// Text that has been through the run's redactor: what [`Output`] writes, and what a
/// certification bundle is made of (its digests are of these bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The text.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl Output {
    /// An output redacting through `redactor` (a handle: secrets it learns later count too).
    pub fn new(redactor: Redactor) -> Output {
        Output { redactor }
    }

    /// The redactor: give a clone to whatever learns secrets during the run (the partner
    /// client), and teach it the run's credentials as soon as they are known.
    pub fn redactor(&self) -> &Redactor {
        &self.redactor
    }

    /// `text` with every secret redacted.
    pub fn redact(&self, text: &str) -> Redacted {
        Redacted(self.redactor.text(text))
    }

    /// `text` as the terminal gets it: secrets redacted, control characters escaped but
    /// spoke's own layout and colours.
    pub fn for_terminal(&self, text: &str) -> String {
        crate::controls::terminal(self.redact(text).as_str()).into_owned()
    }

    /// Writes `text` to stdout. A closed stdout (`spoke ... | head`) is not an error.
    pub fn print(&self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(self.for_terminal(text).as_bytes());
        let _ = stdout.flush();
    }

    /// Writes `text` to stderr.
    pub fn eprint(&self, text: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(self.for_terminal(text).as_bytes());
        let _ = stderr.flush();
    }

    /// Writes `text` to the file at `path`.
    pub fn write(&self, path: &Path, text: &str) -> std::io::Result<()> {
        self.write_redacted(path, &self.redact(text))
    }

    /// Writes text already redacted (a bundle's files, whose digests are taken first).
    pub fn write_redacted(&self, path: &Path, text: &Redacted) -> std::io::Result<()> {
        std::fs::write(path, text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_terminal_gets_partner_controls_escaped_and_spokes_colours_kept() {
        let redactor = Redactor::new();
        redactor.learn("secret-token-42");
        let output = Output::new(redactor);
        let text = "\x1b[31mfail\x1b[0m  partner said \x1b[2Jsecret-token-42\x07\u{202e}\n";
        assert_eq!(
            output.for_terminal(text),
            "\x1b[31mfail\x1b[0m  partner said \\u{1b}[2J***\\u{7}\\u{202e}\n"
        );
    }
}
