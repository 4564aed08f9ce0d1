//! Masking of personal data in evidence: names, emails, phones, birth dates and address lines of
//! the run's records are replaced by their shape (`Zoë Ñúñez` → `Xxö Öxöxx`), so a developer
//! still sees case, length, non-ASCII letters and where a value went, but not the value.

use crate::connector::session::Observations;
use crate::connector::Exchange;
use crate::encoded::{Hit, Scan, Spelling};
use crate::model::{Field, Record};
use crate::suite::Verdict;

/// The fields whose values count as personal data.
const PERSONAL: [Field; 10] = [
    Field::FirstName,
    Field::LastName,
    Field::Email,
    Field::MobilePhone,
    Field::HomePhone,
    Field::WorkPhone,
    Field::BirthDate,
    Field::AddressLine1,
    Field::AddressLine2,
    Field::Owner,
];

/// Values shorter than this are left alone: they would mask unrelated text.
const MIN_LENGTH: usize = 3;

/// The shape of a value: ASCII letters become `x`/`X`, other letters `ö`/`Ö`, digits `9`;
/// everything else (and an email's domain) stays.
pub fn shape(value: &str) -> String {
    let (local, domain) = match value.rsplit_once('@') {
        Some((local, domain)) => (local, Some(domain)),
        None => (value, None),
    };
    let mut out: String = local
        .chars()
        .map(|c| match c {
            c if c.is_ascii_lowercase() => 'x',
            c if c.is_ascii_uppercase() => 'X',
            c if c.is_ascii_digit() => '9',
            c if c.is_lowercase() => 'ö',
            c if c.is_uppercase() => 'Ö',
            c if c.is_alphabetic() => 'ö',
            c => c,
        })
        .collect();
    if let Some(domain) = domain {
        out.push('@');
        out.push_str(domain);
    }
    out
}

/// Replaces the personal values of a run wherever they stand as words, however the text spells
/// them: as they are, JSON-escaped (`Zo\u00eb`), as XML character references (`Zo&#xEB;`) or
/// percent-encoded (`Zo%C3%AB`); the mask is written the same way. One pass over each text
/// (aho-corasick), and a map built once for the run: the cost grows with the evidence and the
/// number of values, not with their product.
#[derive(Debug)]
pub struct Masker {
    automaton: Option<aho_corasick::AhoCorasick>,
    patterns: Vec<Pattern>,
}

/// One value to find, and what replaces it.
#[derive(Debug)]
struct Pattern {
    /// The whole mask: one character for each character of the value, and the `~N` that tells
    /// it apart from other values of its shape...
    text: Box<str>,
    /// ...inserted before character `suffix_at` of the value (before an email's `@`)...
    suffix_at: u32,
    /// ...`suffix_len` bytes long.
    suffix_len: u8,
}

impl Pattern {
    /// The pattern of a value whose shape is `plain`, numbered by `suffix`.
    fn new(plain: &str, suffix: &str) -> Pattern {
        let at = plain.rfind('@').unwrap_or(plain.len());
        let mut text = String::with_capacity(plain.len() + suffix.len());
        text.push_str(&plain[..at]);
        text.push_str(suffix);
        text.push_str(&plain[at..]);
        Pattern {
            text: text.into_boxed_str(),
            suffix_at: plain[..at].chars().count() as u32,
            suffix_len: suffix.len() as u8,
        }
    }

    /// The suffix, and the mask's characters without it (one for each of the value's).
    fn parts(&self) -> (&str, Vec<char>) {
        let at = self
            .text
            .char_indices()
            .nth(self.suffix_at as usize)
            .map_or(self.text.len(), |(at, _)| at);
        let end = at + usize::from(self.suffix_len);
        let chars = self.text[..at].chars().chain(self.text[end..].chars());
        (&self.text[at..end], chars.collect())
    }
}

impl Masker {
    /// A masker for the personal values of `observations`: the records sent and read back,
    /// and the partner's staff.
    pub fn for_run(observations: &Observations) -> Masker {
        Masker::for_run_and(observations, Vec::new())
    }

    /// A masker for the personal values of `observations` and `extra` (what a two-way partner
    /// sent back).
    pub fn for_run_and(observations: &Observations, extra: Vec<String>) -> Masker {
        // Borrowed: a staff list of 100,000 is not copied to be looked at.
        let mut values: Vec<&str> = extra.iter().map(String::as_str).collect();
        fn take<'a>(values: &mut Vec<&'a str>, record: &'a Record) {
            for field in PERSONAL {
                if let Some(value) = record.get(&field) {
                    if is_personal(&field, value) {
                        values.push(value);
                    }
                }
            }
        }
        for delivery in &observations.deliveries {
            take(&mut values, &delivery.sent);
            if let Some((record, _)) = &delivery.update {
                take(&mut values, record);
            }
            if let Some(Ok((_, Some(record)))) = &delivery.read {
                take(&mut values, record);
            }
        }
        if let Some(staff) = &observations.staff {
            for record in &staff.list.records {
                take(&mut values, record);
            }
            for lookup in &staff.lookups {
                values.push(&lookup.email);
            }
        }
        for lead in observations
            .world
            .prospects
            .iter()
            .chain(&observations.world.members)
        {
            take(&mut values, &lead.record);
        }
        for staff in &observations.world.staff {
            values.extend(staff.email.as_deref());
            values.push(&staff.name);
        }
        if let Some(record) = &observations.probes.security_record {
            take(&mut values, record);
        }
        for probe in &observations.probes.variants {
            if probe.field == Field::Owner {
                for value in [&probe.sent, &probe.expected] {
                    if is_personal(&Field::Owner, value) {
                        values.push(value);
                    }
                }
            }
        }
        Masker::for_values(values)
    }

    /// A masker for these personal values (values shorter than three characters are left
    /// alone: they would mask unrelated text).
    pub fn for_values<S: AsRef<str>>(values: Vec<S>) -> Masker {
        use std::borrow::Cow;
        let mut seen: std::collections::HashSet<Cow<'_, str>> = std::collections::HashSet::new();
        let mut shapes = DistinctShapes::default();
        let mut spellings: Vec<Cow<'_, str>> = Vec::new();
        let mut patterns: Vec<Pattern> = Vec::new();
        for value in &values {
            let value = value.as_ref().trim();
            if value.chars().count() < MIN_LENGTH || !seen.insert(Cow::Borrowed(value)) {
                continue;
            }
            let (plain, number) = shapes.number(value);
            let suffix = if number == 0 {
                String::new()
            } else {
                format!("~{}", number + 1)
            };
            if plain == value && suffix.is_empty() {
                continue;
            }
            // Form encoding writes a space as `+`, which no decoding reads back.
            if value.contains(' ') {
                let plus = value.replace(' ', "+");
                if seen.insert(Cow::Owned(plus.clone())) {
                    spellings.push(Cow::Owned(plus));
                    patterns.push(Pattern::new(&plain.replace(' ', "+"), &suffix));
                }
            }
            spellings.push(Cow::Borrowed(value));
            patterns.push(Pattern::new(&plain, &suffix));
        }
        let automaton = (!spellings.is_empty())
            .then(|| {
                aho_corasick::AhoCorasick::builder()
                    .match_kind(aho_corasick::MatchKind::Standard)
                    // Thousands of staff make a large automaton: the compact kind, built once,
                    // costs far less memory (and time to build) than the faster ones.
                    .kind(Some(aho_corasick::AhoCorasickKind::NoncontiguousNFA))
                    .build(spellings.iter().map(|spelling| spelling.as_bytes()))
                    .ok()
            })
            .flatten();
        Masker {
            automaton,
            patterns,
        }
    }

    /// `text` with every personal value masked where it stands as a word (a value found inside
    /// a longer word, like `Lea` in `Lead`, is another word and stays).
    pub fn text(&self, text: &str) -> String {
        let Some(automaton) = &self.automaton else {
            return text.to_owned();
        };
        let depth = usize::from(crate::encoded::may_hold_escapes(text));
        let scan = Scan::new(text, depth);
        // The deepest layer holds every value the shallower ones do, and tells words apart
        // where an escape stands beside one (`Lea\u0064` is `Lead`).
        let layer = scan.depth();
        let hits = scan.hits(automaton, layer..=layer, |layer_text, start, end, _| {
            stands_alone(layer_text, start, end)
        });
        if hits.is_empty() {
            return text.to_owned();
        }
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for hit in hits {
            out.push_str(&text[at..hit.start]);
            let pattern = &self.patterns[hit.pattern];
            if hit.layer == 0 {
                out.push_str(&pattern.text);
            } else {
                write_like(&scan, &hit, pattern, &mut out);
            }
            at = hit.end;
        }
        out.push_str(&text[at..]);
        out
    }

    /// Masks the evidence of an exchange.
    pub fn exchange(&self, exchange: &mut Exchange) {
        exchange.url = self.text(&exchange.url);
        exchange.purpose = self.text(&exchange.purpose);
        for body in [&mut exchange.request_body, &mut exchange.response_body]
            .into_iter()
            .flatten()
        {
            *body = self.text(body);
        }
        for (_, value) in exchange
            .request_headers
            .iter_mut()
            .chain(exchange.response_headers.iter_mut())
        {
            *value = self.text(value);
        }
        if let Some(error) = &mut exchange.error {
            *error = self.text(error);
        }
    }

    /// Masks a verdict's reason.
    pub fn verdict(&self, verdict: &mut Verdict) {
        verdict.reason = self.text(&verdict.reason);
    }
}

/// Keeps distinct values of one shape distinct: the second person whose email has the shape
/// `xxx@club.example` becomes `xxx~2@club.example`, so evidence (and a replay of it) never takes
/// two staff members for one. Spellings of one value that differ only in case share the number,
/// so what matched ignoring case still does.
#[derive(Debug, Default)]
struct DistinctShapes {
    /// By folded shape: how many distinct values of that shape were seen.
    counts: std::collections::HashMap<u64, usize>,
    /// By folded shape and folded value: the value's number (from 0).
    numbers: std::collections::HashMap<(u64, u64), usize>,
}

/// A digest of `text` folded as names are compared (composed, Unicode case folding), taken
/// without building the folded text: keys for 100,000 staff cost no copies. (A collision of
/// two 64-bit digests would only give two values one number.)
fn folded(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    // Composing ASCII changes nothing: most staff lists skip the normalisation.
    if text.is_ascii() {
        unicase::UniCase::unicode(text.trim()).hash(&mut hasher);
    } else {
        unicase::UniCase::unicode(crate::model::canonical_text(text)).hash(&mut hasher);
    }
    hasher.finish()
}

impl DistinctShapes {
    /// The shape of `value` and its number among the distinct values of that shape (0 first).
    fn number(&mut self, value: &str) -> (String, usize) {
        let plain = shape(value);
        let shape_key = folded(&plain);
        let number = *self
            .numbers
            .entry((shape_key, folded(value)))
            .or_insert_with(|| {
                let count = self.counts.entry(shape_key).or_default();
                *count += 1;
                *count - 1
            });
        (plain, number)
    }

    #[cfg(test)]
    fn mask(&mut self, value: &str) -> String {
        let (plain, number) = self.number(value);
        let suffix = if number == 0 {
            String::new()
        } else {
            format!("~{}", number + 1)
        };
        Pattern::new(&plain, &suffix).text.into()
    }
}

/// Whether `start..end` of `text` is not part of a longer word: the characters on either side
/// do not continue it (a letter beside a letter, a digit beside a digit).
fn stands_alone(text: &str, start: usize, end: usize) -> bool {
    fn class(c: char) -> u8 {
        if c.is_alphabetic() || unicode_normalization::char::is_combining_mark(c) {
            1
        } else if c.is_numeric() {
            2
        } else {
            0
        }
    }
    let continues = |a: Option<char>, b: Option<char>| match (a, b) {
        (Some(a), Some(b)) => class(a) != 0 && class(a) == class(b),
        _ => false,
    };
    let (before, first) = (
        text[..start].chars().next_back(),
        text[start..].chars().next(),
    );
    let (last, after) = (text[..end].chars().next_back(), text[end..].chars().next());
    !continues(before, first) && !continues(last, after)
}

/// Writes the mask of a value found in the first decoded layer, each character spelt as the
/// one it replaces was (`\u00e9` becomes `\u00f6`, `%C3%A9` becomes `%C3%B6`); characters the
/// mask keeps (punctuation, an email's domain) are copied as they were written, and the `~` of
/// a numbered mask is percent-encoded where the value was (as a query string writes it).
fn write_like(scan: &Scan<'_>, hit: &Hit, pattern: &Pattern, out: &mut String) {
    let decoded = &scan.layer(1)[hit.layer_start..hit.layer_end];
    let written: Vec<(char, &str)> = decoded
        .char_indices()
        .map(|(offset, c)| {
            let at = hit.layer_start + offset;
            let (start, end) = scan.below(1, at, at + c.len_utf8());
            (c, &scan.raw()[start..end])
        })
        .collect();
    let percent = written
        .iter()
        .map(|(_, spelt)| Spelling::of(spelt))
        .find(|spelling| matches!(spelling, Spelling::Percent(_)));
    let (suffix_text, mask) = pattern.parts();
    let suffix_at = pattern.suffix_at as usize;
    let suffix = |out: &mut String| match percent {
        Some(spelling) => suffix_text.chars().for_each(|c| {
            if c.is_ascii_alphanumeric() {
                out.push(c);
            } else {
                spelling.write(c, out);
            }
        }),
        None => out.push_str(suffix_text),
    };
    for (index, (c, spelt)) in written.iter().enumerate() {
        if index == suffix_at {
            suffix(out);
        }
        match mask.get(index) {
            Some(mask) if mask != c => Spelling::of(spelt).write(*mask, out),
            _ => out.push_str(spelt),
        }
    }
    if written.len() == suffix_at {
        suffix(out);
    }
}

/// Whether a value of `field` is personal: an owner is when it is the staff member's email,
/// not when it is the partner's staff id (masking ids would garble the evidence, e.g. make
/// distinct staff look like duplicates, and a replay of it wrong).
fn is_personal(field: &Field, value: &str) -> bool {
    *field != Field::Owner || value.contains('@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shape_keeps_case_length_non_ascii_and_the_email_domain() {
        assert_eq!(shape("Zoë Ñúñez-00002a"), "Xxö Öööxx-99999x");
        assert_eq!(
            shape("Ana.Lopez@Partner-Club.example"),
            "Xxx.Xxxxx@Partner-Club.example"
        );
        assert_eq!(shape("+49 170 1234567"), "+99 999 9999999");
        assert_eq!(shape("1990-04-01"), "9999-99-99");
    }

    #[test]
    fn distinct_values_of_one_shape_stay_distinct_and_case_variants_agree() {
        let mut shapes = DistinctShapes::default();
        assert_eq!(shapes.mask("ana@club.example"), "xxx@club.example");
        assert_eq!(shapes.mask("bob@club.example"), "xxx~2@club.example");
        assert_eq!(shapes.mask("BOB@club.example"), "XXX~2@club.example");
        assert_eq!(shapes.mask("Ana"), "Xxx");
        assert_eq!(shapes.mask("Bob"), "Xxx~2");
    }

    fn masker(values: &[&str]) -> Masker {
        Masker::for_values(values.iter().map(|v| (*v).to_owned()).collect())
    }

    #[test]
    fn values_are_masked_however_the_text_escapes_them() {
        let masker = masker(&["Zoë Ñúñez", "Renée", "ana@club.example", "😀Ana"]);
        assert_eq!(
            masker.text(r#"{"name":"Zo\u00eb \u00d1\u00FA\u00f1ez","e":"ana@club.example"}"#),
            r#"{"name":"Xx\u00f6 \u00d6\u00F6\u00f6xx","e":"xxx@club.example"}"#
        );
        assert_eq!(
            masker.text("<n>Ren&#xE9;e</n><n>Ren&#233;e</n><e>ana&#64;club.example</e>"),
            "<n>Xxx&#xF6;x</n><n>Xxx&#246;x</n><e>xxx&#64;club.example</e>"
        );
        assert_eq!(
            masker.text(
                "/staff?email=ana%40club.example&n=Ren%C3%A9e&z=Zo%C3%AB+%C3%91%C3%BA%C3%B1ez"
            ),
            "/staff?email=xxx%40club.example&n=Xxx%C3%B6x&z=Xx%C3%B6+%C3%96%C3%B6%C3%B6xx"
        );
        assert_eq!(masker.text(r#""\ud83d\ude00Ana""#), r#""\ud83d\ude00Xxx""#);
        assert_eq!(masker.text(r"ana@club.example\/x"), r"xxx@club.example\/x");
    }

    #[test]
    fn a_value_inside_a_longer_word_is_another_word() {
        let masker = masker(&["Lea", "Bob", "Ana", "1990-04-01", "12345"]);
        assert_eq!(
            masker.text("Go struct field Lead.ownerId of type string; Lea Bobby ANA Ana."),
            "Go struct field Lead.ownerId of type string; Xxx Bobby ANA Xxx~3."
        );
        assert_eq!(masker.text(r"Lea\u0064 Lea\u0020"), r"Lea\u0064 Xxx\u0020");
        assert_eq!(
            masker.text("born 1990-04-01T00:00:00Z, id 123456, zip 12345"),
            "born 9999-99-99T00:00:00Z, id 123456, zip 99999"
        );
    }

    #[test]
    fn numbered_masks_keep_their_number_in_every_spelling() {
        let masker = masker(&["ana@club.example", "bob@club.example"]);
        assert_eq!(
            masker.text(r"bob@club.example bob%40club.example b\u006fb@club.example"),
            r"xxx~2@club.example xxx%7E2%40club.example x\u0078x~2@club.example"
        );
    }

    #[test]
    fn mangled_and_intact_names_stay_distinguishable() {
        assert_ne!(shape("Çelik"), shape("?elik"));
    }
}
