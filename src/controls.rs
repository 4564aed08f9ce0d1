//! Neutralises control characters in text that came from outside (a partner's error message, a
//! posted clubID, a body): each is shown escaped, as `\u{1b}`, so it cannot clear a terminal,
//! move its cursor, ring its bell, reorder what is shown around it, or break a report's format.
//!
//! What counts: C0 controls, DEL, C1 controls (`U+0085` is a line break to some readers,
//! `U+009B` a CSI to some terminals), the bidirectional formatting characters (`U+202E` makes
//! a reason read backwards, the "trojan source" trick) and the Unicode line and paragraph
//! separators. A literal backslash is left as it is: escaping it too would change every path
//! and JSON escape a partner sends, for an ambiguity only a reader of the text can exploit.

use std::borrow::Cow;

/// Whether `c` is shown escaped.
pub fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}'
                | '\u{200e}'
                | '\u{200f}'
                | '\u{202a}'..='\u{202e}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `c` escaped: `\u{1b}`.
pub fn escaped(c: char) -> String {
    format!("\\u{{{:x}}}", u32::from(c))
}

/// Text for a one-line slot (a table cell, a reason, an attribute): every control character
/// escaped, `\n` and `\t` too, since inside a partner's text they would break the line.
pub fn one_line(text: &str) -> Cow<'_, str> {
    neutralise(text, |_| false)
}

/// Text that keeps its own lines (a body, a multi-line message): every control character
/// escaped but `\n` and `\t`, which are its layout.
pub fn multi_line(text: &str) -> Cow<'_, str> {
    neutralise(text, |c| c == '\n' || c == '\t')
}

fn neutralise(text: &str, kept: impl Fn(char) -> bool) -> Cow<'_, str> {
    if !text.chars().any(|c| is_control(c) && !kept(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_control(c) && !kept(c) {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The terminal sequences spoke writes itself, kept by [`terminal`]: the report's colours
/// (green, red, yellow, dim, reset) and the progress line's "back to the start, erase the
/// line". Only these exact ones: a partner's `ESC[8m` (conceal) would hide text, so a general
/// SGR pattern is not allowed through.
const OWN_SEQUENCES: [&str; 6] = [
    "\x1b[32m",
    "\x1b[31m",
    "\x1b[33m",
    "\x1b[2m",
    "\x1b[0m",
    "\r\x1b[2K",
];

/// Text for the terminal, as a last guard where output leaves the program: every control
/// character escaped but `\n`, `\t` and spoke's own [`OWN_SEQUENCES`]. Renderers neutralise
/// partner text before they colour it, so a partner's copy of one of those sequences inside a
/// report is escaped there already; this catches partner text on every other path (error
/// messages, the mock Connector's lines, the progress line).
pub fn terminal(text: &str) -> Cow<'_, str> {
    if !text
        .chars()
        .any(|c| is_control(c) && c != '\n' && c != '\t')
    {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if let Some(own) = OWN_SEQUENCES.iter().find(|own| rest.starts_with(**own)) {
            out.push_str(own);
            rest = &rest[own.len()..];
            continue;
        }
        if is_control(c) && c != '\n' && c != '\t' {
            out.push_str(&escaped(c));
        } else {
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOSTILE: &str = "a\x1b[2Jb\x07c\0d\u{85}e\u{202e}f\u{9b}g\x7fh\u{2028}i";

    #[test]
    fn one_line_text_shows_every_control_escaped() {
        assert_eq!(
            one_line(HOSTILE),
            r"a\u{1b}[2Jb\u{7}c\u{0}d\u{85}e\u{202e}f\u{9b}g\u{7f}h\u{2028}i"
        );
        assert_eq!(one_line("two\nlines\tand\r"), r"two\u{a}lines\u{9}and\u{d}");
        assert!(matches!(one_line("plain é ✓"), Cow::Borrowed(_)));
    }

    #[test]
    fn multi_line_text_keeps_its_newlines_and_tabs() {
        assert_eq!(
            multi_line("{\n\t\"m\": \"\x1b[2J\r\"\n}"),
            "{\n\t\"m\": \"\\u{1b}[2J\\u{d}\"\n}"
        );
    }

    #[test]
    fn the_terminal_keeps_only_spokes_own_sequences() {
        let own = "\x1b[31mfail\x1b[0m\n\r\x1b[2K[spoke] step\t.";
        assert_eq!(terminal(own), own);
        assert_eq!(
            terminal("\x1b[2J\x1b[8mhidden\x1b]0;title\x07\rover"),
            r"\u{1b}[2J\u{1b}[8mhidden\u{1b}]0;title\u{7}\u{d}over"
        );
        for c in terminal(HOSTILE).chars() {
            assert!(!is_control(c), "{c:?} left raw");
        }
    }
}
