//! The JSON report: the report model as is, field names stable and documented in the README;
//! and the JSON writer it shares with the HAR report, which leaves no control character raw.

use super::model::RunReport;
use serde::Serialize;
use serde_json::ser::{Formatter, PrettyFormatter};
use std::io::{self, Write};

/// Renders the JSON report.
pub fn render(report: &RunReport) -> String {
    to_string_pretty(report)
}

/// `value` as pretty JSON in which every control character of [`crate::controls`] is a `\u`
/// escape. serde_json escapes C0 controls already; DEL, C1 controls (`U+0085`) and bidi
/// overrides (`U+202E`) are valid raw in JSON but would reach a terminal or an editor raw when
/// the report is read there. The escapes parse back to the same strings.
pub fn to_string_pretty<T: Serialize>(value: &T) -> String {
    let mut out = Vec::new();
    let mut serializer =
        serde_json::Serializer::with_formatter(&mut out, ControlEscaping(PrettyFormatter::new()));
    value
        .serialize(&mut serializer)
        .expect("the report model always serialises");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's pretty formatter, with control characters in strings `\u`-escaped.
struct ControlEscaping<'a>(PrettyFormatter<'a>);

impl Formatter for ControlEscaping<'_> {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> io::Result<()> {
        let mut rest = fragment;
        while let Some(at) = rest.find(crate::controls::is_control) {
            writer.write_all(&rest.as_bytes()[..at])?;
            let c = rest[at..].chars().next().unwrap_or_default();
            // Every such character is in the Basic Multilingual Plane: one `\uXXXX`.
            write!(writer, "\\u{:04x}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        writer.write_all(rest.as_bytes())
    }

    fn begin_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_array(writer)
    }

    fn end_array<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array(writer)
    }

    fn begin_array_value<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_array_value(writer, first)
    }

    fn end_array_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_array_value(writer)
    }

    fn begin_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object(writer)
    }

    fn end_object<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object(writer)
    }

    fn begin_object_key<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> io::Result<()> {
        self.0.begin_object_key(writer, first)
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.begin_object_value(writer)
    }

    fn end_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        self.0.end_object_value(writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_read_back_the_same() {
        let text = "a\x1b[2J\u{7}\0\u{85}\u{202e}\u{7f}é✓\"\\z";
        let json = to_string_pretty(&serde_json::json!({ "reason": text }));
        assert_eq!(
            json,
            "{\n  \"reason\": \"a\\u001b[2J\\u0007\\u0000\\u0085\\u202e\\u007fé✓\\\"\\\\z\"\n}"
        );
        assert!(!json
            .chars()
            .any(|c| crate::controls::is_control(c) && c != '\n'));
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["reason"], text);
    }
}
