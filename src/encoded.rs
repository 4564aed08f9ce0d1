//! Finding values in text whatever escaping they travel in. A partner may send `Zoë` as
//! `Zo\u00eb` (JSON escapes, surrogate pairs included, and `\/`), `Zo&#xEB;` or `Zo&#235;`
//! (XML and HTML character references and entities) or `Zo%C3%AB` (percent-encoding), and the
//! reports wrap what the partner sent in escapes of their own (the JSON report's string
//! escaping, the HTML page's entities). A [`Scan`] reads a text as it is and, where it holds
//! escapes, decoded layer by layer; a match in any layer is mapped back to the span of the
//! original text it came from, so it can be replaced there.

use aho_corasick::AhoCorasick;

/// One decoded layer of a text: the text with one level of escapes read, and for each of its
/// bytes where, in the layer below, the character it belongs to starts (plus one last entry:
/// the length of the layer below).
#[derive(Debug)]
struct Layer {
    text: String,
    starts: Vec<u32>,
}

/// A text and its decoded layers.
#[derive(Debug)]
pub struct Scan<'t> {
    raw: &'t str,
    layers: Vec<Layer>,
}

/// A match, as a span of the original text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// Where it starts in the original text (bytes).
    pub start: usize,
    /// Where it ends in the original text (bytes).
    pub end: usize,
    /// The pattern matched (its index in the automaton).
    pub pattern: usize,
    /// The layer it was found in: 0 the text as it is, 1 with one level of escapes read, ...
    pub layer: usize,
    /// Where it starts in that layer.
    pub layer_start: usize,
    /// Where it ends in that layer.
    pub layer_end: usize,
}

/// Whether `text` may hold an escape: the bytes every escape starts with.
pub fn may_hold_escapes(text: &str) -> bool {
    text.bytes().any(|b| matches!(b, b'\\' | b'&' | b'%'))
}

impl<'t> Scan<'t> {
    /// `raw` and up to `depth` decoded layers of it (fewer when a layer holds no escape).
    pub fn new(raw: &'t str, depth: usize) -> Scan<'t> {
        let mut layers: Vec<Layer> = Vec::new();
        while layers.len() < depth {
            let below = layers.last().map_or(raw, |layer| layer.text.as_str());
            match decode(below) {
                Some(layer) => layers.push(layer),
                None => break,
            }
        }
        Scan { raw, layers }
    }

    /// The text as it is.
    pub fn raw(&self) -> &'t str {
        self.raw
    }

    /// How many decoded layers there are.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// Layer `layer`: 0 is the text as it is.
    pub fn layer(&self, layer: usize) -> &str {
        match layer {
            0 => self.raw,
            n => &self.layers[n - 1].text,
        }
    }

    /// The span of layer `layer - 1` that bytes `start..end` of layer `layer` were decoded from.
    pub fn below(&self, layer: usize, start: usize, end: usize) -> (usize, usize) {
        let starts = &self.layers[layer - 1].starts;
        (starts[start] as usize, starts[end] as usize)
    }

    /// The span of the original text that bytes `start..end` of layer `layer` came from.
    pub fn to_raw(&self, layer: usize, start: usize, end: usize) -> (usize, usize) {
        let (mut start, mut end) = (start, end);
        for layer in (1..=layer).rev() {
            (start, end) = self.below(layer, start, end);
        }
        (start, end)
    }

    /// Every match of `automaton` in the layers `layers` that `accept` lets through (it gets the
    /// layer's text, the span in it and the pattern), as spans of the original text that do not
    /// overlap: leftmost first, then longest. The automaton must be built with the standard
    /// match kind (matches are searched overlapping, so a rejected long match hides no short one).
    pub fn hits(
        &self,
        automaton: &AhoCorasick,
        layers: std::ops::RangeInclusive<usize>,
        accept: impl Fn(&str, usize, usize, usize) -> bool,
    ) -> Vec<Hit> {
        let mut hits = self.all_hits(automaton, layers, accept);
        hits.sort_by_key(|hit| (hit.start, std::cmp::Reverse(hit.end), hit.layer));
        let mut chosen: Vec<Hit> = Vec::with_capacity(hits.len());
        for hit in hits {
            if chosen.last().is_none_or(|last| hit.start >= last.end) {
                chosen.push(hit);
            }
        }
        chosen
    }

    /// Every match of `automaton` in the layers `layers` that `accept` lets through, overlapping
    /// or not, in no particular order.
    pub fn all_hits(
        &self,
        automaton: &AhoCorasick,
        layers: std::ops::RangeInclusive<usize>,
        accept: impl Fn(&str, usize, usize, usize) -> bool,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        for layer in layers {
            if layer > self.depth() {
                break;
            }
            let text = self.layer(layer);
            for found in automaton.find_overlapping_iter(text) {
                let (start, end, pattern) =
                    (found.start(), found.end(), found.pattern().as_usize());
                if !accept(text, start, end, pattern) {
                    continue;
                }
                let (raw_start, raw_end) = self.to_raw(layer, start, end);
                hits.push(Hit {
                    start: raw_start,
                    end: raw_end,
                    pattern,
                    layer,
                    layer_start: start,
                    layer_end: end,
                });
            }
        }
        hits
    }
}

/// `text` with one level of escapes read, or `None` when it holds none.
fn decode(text: &str) -> Option<Layer> {
    if !may_hold_escapes(text) {
        return None;
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut starts: Vec<u32> = Vec::with_capacity(text.len() + 1);
    let mut decoded_any = false;
    let mut at = 0;
    while at < bytes.len() {
        // Copy the run up to the next byte an escape can start with.
        let run_end = bytes[at..]
            .iter()
            .position(|b| matches!(b, b'\\' | b'&' | b'%'))
            .map_or(bytes.len(), |offset| at + offset);
        if run_end > at {
            out.push_str(&text[at..run_end]);
            starts.extend((at..run_end).map(|i| i as u32));
            at = run_end;
            continue;
        }
        match escape_at(text, at) {
            Some((c, len)) => {
                let mut buffer = [0u8; 4];
                let encoded = c.encode_utf8(&mut buffer);
                out.push_str(encoded);
                starts.extend(std::iter::repeat_n(at as u32, encoded.len()));
                decoded_any = true;
                at += len;
            }
            None => {
                out.push(bytes[at] as char);
                starts.push(at as u32);
                at += 1;
            }
        }
    }
    starts.push(bytes.len() as u32);
    decoded_any.then_some(Layer { text: out, starts })
}

/// The character an escape at byte `at` of `text` stands for, and the escape's length.
fn escape_at(text: &str, at: usize) -> Option<(char, usize)> {
    let rest = &text.as_bytes()[at..];
    match rest.first()? {
        b'\\' => json_escape(rest),
        b'&' => character_reference(rest),
        b'%' => percent_escape(rest),
        _ => None,
    }
}

fn hex_value(digits: &[u8]) -> Option<u32> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// `\uXXXX` (a surrogate pair as two), `\/`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`.
fn json_escape(rest: &[u8]) -> Option<(char, usize)> {
    let simple = match rest.get(1)? {
        b'/' => '/',
        b'"' => '"',
        b'\\' => '\\',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'u' => {
            let unit = hex_value(rest.get(2..6)?)?;
            if (0xD800..0xDC00).contains(&unit) {
                let low = rest
                    .get(6..8)
                    .filter(|marker| *marker == b"\\u")
                    .and_then(|_| hex_value(rest.get(8..12)?))
                    .filter(|low| (0xDC00..0xE000).contains(low))?;
                let c = char::from_u32(0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00))?;
                return Some((c, 12));
            }
            return char::from_u32(unit).map(|c| (c, 6));
        }
        _ => return None,
    };
    Some((simple, 2))
}

/// `&#xE9;`, `&#233;`, and the entities `&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`.
fn character_reference(rest: &[u8]) -> Option<(char, usize)> {
    let end = rest.iter().take(12).position(|b| *b == b';')?;
    let body = &rest[1..end];
    let c = match body {
        b"amp" => '&',
        b"lt" => '<',
        b"gt" => '>',
        b"quot" => '"',
        b"apos" => '\'',
        [b'#', b'x' | b'X', digits @ ..] => char::from_u32(hex_value(digits)?)?,
        [b'#', digits @ ..] if !digits.is_empty() && digits.iter().all(u8::is_ascii_digit) => {
            char::from_u32(std::str::from_utf8(digits).ok()?.parse().ok()?)?
        }
        _ => return None,
    };
    Some((c, end + 1))
}

/// `%XX`, and the `%XX` sequence of one UTF-8 character.
fn percent_escape(rest: &[u8]) -> Option<(char, usize)> {
    let byte = |index: usize| -> Option<u8> {
        let at = index * 3;
        if *rest.get(at)? != b'%' {
            return None;
        }
        hex_value(rest.get(at + 1..at + 3)?).map(|value| value as u8)
    };
    let lead = byte(0)?;
    let length = match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    let mut encoded = [0u8; 4];
    for (index, slot) in encoded.iter_mut().enumerate().take(length) {
        *slot = byte(index)?;
    }
    let c = std::str::from_utf8(&encoded[..length])
        .ok()?
        .chars()
        .next()?;
    Some((c, length * 3))
}

/// How the character at a span of a text was written there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spelling {
    /// As itself.
    Plain,
    /// A JSON `\u` escape (or a surrogate pair), with upper-case hex letters if `true`.
    JsonUnicode(bool),
    /// A hexadecimal character reference, `&#xE9;`.
    HexReference,
    /// A decimal character reference, `&#233;`.
    DecimalReference,
    /// Percent-encoded UTF-8, with upper-case hex letters if `true`.
    Percent(bool),
    /// Any other escape (`\/`, `&amp;`...).
    Other,
}

impl Spelling {
    /// How `written` (one character's escape, or the character) spells it.
    pub fn of(written: &str) -> Spelling {
        let hex_letters = |case: fn(&u8) -> bool| {
            written
                .bytes()
                .skip(1)
                .any(|b| b.is_ascii_hexdigit() && case(&b))
        };
        // With digits only, the usual case: lower in JSON, upper in URLs.
        if written.starts_with("\\u") {
            Spelling::JsonUnicode(hex_letters(u8::is_ascii_uppercase))
        } else if written.starts_with("&#x") || written.starts_with("&#X") {
            Spelling::HexReference
        } else if written.starts_with("&#") {
            Spelling::DecimalReference
        } else if written.starts_with('%') && written.len() >= 3 {
            Spelling::Percent(!hex_letters(u8::is_ascii_lowercase))
        } else if written.chars().count() == 1 {
            Spelling::Plain
        } else {
            Spelling::Other
        }
    }

    /// `c` written the same way, where that way can write it.
    pub fn write(self, c: char, out: &mut String) {
        use std::fmt::Write;
        let hex = |upper: bool, value: u32, width: usize| {
            if upper {
                format!("{value:0width$X}")
            } else {
                format!("{value:0width$x}")
            }
        };
        match self {
            Spelling::JsonUnicode(upper) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str("\\u");
                    out.push_str(&hex(upper, u32::from(*unit), 4));
                }
            }
            Spelling::HexReference => {
                let _ = write!(out, "&#x{:X};", c as u32);
            }
            Spelling::DecimalReference => {
                let _ = write!(out, "&#{};", c as u32);
            }
            Spelling::Percent(upper) => {
                let mut buffer = [0u8; 4];
                for byte in c.encode_utf8(&mut buffer).bytes() {
                    out.push('%');
                    out.push_str(&hex(upper, u32::from(byte), 2));
                }
            }
            Spelling::Plain | Spelling::Other => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decoded(text: &str) -> String {
        decode(text).map(|layer| layer.text).unwrap_or_default()
    }

    #[test]
    fn every_escape_is_read() {
        assert_eq!(decoded(r"Zo\u00eb \u00D1\u00fa\u00f1ez"), "Zoë Ñúñez");
        assert_eq!(decoded(r#"\ud83d\ude00 a\/b \"q\" \\"#), "😀 a/b \"q\" \\");
        assert_eq!(
            decoded("Ren&#xE9;e Ren&#233;e &amp; &lt;&apos;"),
            "Renée Renée & <'"
        );
        assert_eq!(
            decoded("ana%40club.example Ren%C3%A9e %f0%9f%98%80"),
            "ana@club.example Renée 😀"
        );
    }

    #[test]
    fn broken_escapes_stay_as_they_are() {
        for text in [
            r"\ud83d alone",
            r"\u12",
            "&#xZZ; &nbsp; & x",
            "%C3 %zz 100%",
            "%ED%A0%80",
        ] {
            let layer = decode(text);
            assert!(layer.is_none_or(|layer| layer.text == text), "{text}");
        }
    }

    #[test]
    fn a_match_in_a_decoded_layer_maps_back_to_the_escaped_span() {
        let automaton = AhoCorasick::new(["Zoë", "token/1"]).unwrap();
        // The JSON report's own escaping around a partner's escapes: two layers.
        let raw = r#"{"body":"{\"name\":\"Zo\\u00eb\",\"t\":\"token\\\/1\"}"}"#;
        let scan = Scan::new(raw, 3);
        assert_eq!(scan.depth(), 2);
        let hits = scan.hits(&automaton, 0..=2, |_, _, _, _| true);
        let spans: Vec<&str> = hits.iter().map(|hit| &raw[hit.start..hit.end]).collect();
        assert_eq!(spans, [r"Zo\\u00eb", r"token\\\/1"]);
    }

    #[test]
    fn a_spelling_writes_another_character_the_same_way() {
        let mut out = String::new();
        for (written, c) in [
            ("\\u00E9", 'ö'),
            ("&#xE9;", 'ö'),
            ("&#233;", 'x'),
            ("%c3%a9", 'ö'),
        ] {
            Spelling::of(written).write(c, &mut out);
        }
        assert_eq!(out, "\\u00F6&#xF6;&#120;%c3%b6");
    }
}
