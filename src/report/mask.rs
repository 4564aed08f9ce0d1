//! Masking of personal data in evidence: names, emails, phones, birth dates and address lines of
//! the run's records are replaced by their shape (`Zoë Ñúñez` → `Xxö Öxöxx`), so a developer
//! still sees case, length, non-ASCII letters and where a value went, but not the value.

use crate::connector::session::Observations;
use crate::connector::Exchange;
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

/// Replaces the personal values of a run, in every spelling they travel in, in one pass over
/// each text (aho-corasick: hundreds of values times every piece of evidence would otherwise
/// cost a scan each).
#[derive(Debug)]
pub struct Masker {
    values: Option<aho_corasick::AhoCorasick>,
    masks: Vec<String>,
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
        let mut values: Vec<String> = extra;
        let take = |values: &mut Vec<String>, record: &Record| {
            for field in PERSONAL {
                if let Some(value) = record.get(&field) {
                    if is_personal(&field, value) {
                        values.push(value.clone());
                    }
                }
            }
        };
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
                values.push(lookup.email.clone());
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
            values.extend(staff.email.clone());
            values.push(staff.name.clone());
        }
        if let Some(record) = &observations.probes.security_record {
            take(&mut values, record);
        }
        for probe in &observations.probes.variants {
            if probe.field == Field::Owner {
                for value in [&probe.sent, &probe.expected] {
                    if is_personal(&Field::Owner, value) {
                        values.push(value.clone());
                    }
                }
            }
        }
        Masker::for_values(values)
    }

    /// A masker for these personal values (and their URL-encoded spellings).
    pub fn for_values(values: Vec<String>) -> Masker {
        let mut replacements: Vec<(String, String)> = Vec::new();
        let mut shapes = DistinctShapes::default();
        for value in values {
            let value = value.trim().to_owned();
            if value.chars().count() < MIN_LENGTH {
                continue;
            }
            let mask = shapes.mask(&value);
            for spelling in spellings(&value) {
                if spelling != mask && !replacements.iter().any(|(seen, _)| *seen == spelling) {
                    let masked = if spelling == value {
                        mask.clone()
                    } else {
                        form_urlencoded::byte_serialize(mask.as_bytes()).collect()
                    };
                    replacements.push((spelling, masked));
                }
            }
        }
        let (values, masks): (Vec<String>, Vec<String>) = replacements.into_iter().unzip();
        let values = aho_corasick::AhoCorasick::builder()
            .match_kind(aho_corasick::MatchKind::LeftmostLongest)
            .build(&values)
            .ok();
        Masker { values, masks }
    }

    /// `text` with every personal value masked.
    pub fn text(&self, text: &str) -> String {
        match &self.values {
            Some(values) => values.replace_all(text, &self.masks),
            None => text.to_owned(),
        }
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
    seen: std::collections::HashMap<unicase::UniCase<String>, Vec<unicase::UniCase<String>>>,
}

impl DistinctShapes {
    fn mask(&mut self, value: &str) -> String {
        let plain = shape(value);
        let folded = |text: &str| unicase::UniCase::unicode(crate::model::canonical_text(text));
        let values = self.seen.entry(folded(&plain)).or_default();
        let this = folded(value);
        let number = match values.iter().position(|seen| *seen == this) {
            Some(position) => position,
            None => {
                values.push(this);
                values.len() - 1
            }
        };
        if number == 0 {
            return plain;
        }
        let suffix = format!("~{}", number + 1);
        match plain.rfind('@') {
            Some(at) => format!("{}{suffix}{}", &plain[..at], &plain[at..]),
            None => plain + &suffix,
        }
    }
}

/// Whether a value of `field` is personal: an owner is when it is the staff member's email,
/// not when it is the partner's staff id (masking ids would garble the evidence, e.g. make
/// distinct staff look like duplicates, and a replay of it wrong).
fn is_personal(field: &Field, value: &str) -> bool {
    *field != Field::Owner || value.contains('@')
}

/// The spellings a value travels in: as is, and URL-encoded (emails in a lookup's query).
fn spellings(value: &str) -> Vec<String> {
    let encoded: String = form_urlencoded::byte_serialize(value.as_bytes()).collect();
    let percent = percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC)
        .to_string();
    vec![value.to_owned(), encoded, percent]
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

    #[test]
    fn mangled_and_intact_names_stay_distinguishable() {
        assert_ne!(shape("Çelik"), shape("?elik"));
    }
}
