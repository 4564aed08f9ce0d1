//! The canonical records on the InTouch side and the field names shared by every profile.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// The kinds of record a profile maps between our canonical fields and the partner's JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    /// A partner staff member (a possible lead owner).
    Staff,
    /// A lead source.
    Source,
    /// A prospect (lead).
    Prospect,
    /// A member.
    Member,
}

impl RecordKind {
    /// Every kind, in the order profiles list them.
    pub const ALL: [RecordKind; 4] = [
        RecordKind::Staff,
        RecordKind::Source,
        RecordKind::Prospect,
        RecordKind::Member,
    ];

    /// The key of this kind under `[records]` in a profile.
    pub fn key(self) -> &'static str {
        match self {
            RecordKind::Staff => "staff",
            RecordKind::Source => "source",
            RecordKind::Prospect => "prospect",
            RecordKind::Member => "member",
        }
    }

    /// The canonical fields this kind of record can carry.
    pub fn allowed_fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            RecordKind::Staff => &[Id, Email, FirstName, LastName],
            RecordKind::Source => &[Id, Name],
            RecordKind::Prospect => &[
                Id,
                ExternalId,
                FirstName,
                LastName,
                Type,
                Status,
                BirthDate,
                Gender,
                AddressLine1,
                AddressLine2,
                City,
                PostalCode,
                State,
                Country,
                Email,
                MobilePhone,
                HomePhone,
                WorkPhone,
                Company,
                TrialStart,
                TrialEnd,
                Owner,
                Source,
            ],
            RecordKind::Member => &[
                Id,
                ExternalId,
                FirstName,
                LastName,
                Type,
                Status,
                BirthDate,
                Gender,
                AddressLine1,
                AddressLine2,
                City,
                PostalCode,
                State,
                Country,
                Email,
                MobilePhone,
                HomePhone,
                WorkPhone,
                Company,
            ],
        }
    }

    /// The fields a profile must map for this kind of record.
    pub fn required_fields(self) -> &'static [Field] {
        use Field::*;
        match self {
            RecordKind::Staff => &[Id, Email],
            RecordKind::Source => &[Id, Name],
            RecordKind::Prospect | RecordKind::Member => &[Id, FirstName, LastName],
        }
    }

    /// The fields a save must carry for this kind (the Connector's mandatory fields).
    pub fn mandatory_on_save(self) -> &'static [Field] {
        use Field::*;
        match self {
            RecordKind::Staff => &[Email],
            RecordKind::Source => &[Name],
            RecordKind::Prospect | RecordKind::Member => &[FirstName, LastName],
        }
    }
}

impl fmt::Display for RecordKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

macro_rules! fields {
    ($($variant:ident => $key:literal),* $(,)?) => {
        /// A canonical field: the Connector's name for a piece of a record.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum Field { $($variant),* }

        impl Field {
            /// Every canonical field.
            pub const ALL: &'static [Field] = &[$(Field::$variant),*];

            /// The field's key in profiles and reports.
            pub fn key(self) -> &'static str {
                match self { $(Field::$variant => $key),* }
            }
        }

        impl FromStr for Field {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($key => Ok(Field::$variant),)*
                    other => Err(format!("unknown canonical field `{other}`")),
                }
            }
        }
    };
}

fields! {
    Id => "id",
    ExternalId => "external-id",
    FirstName => "first-name",
    LastName => "last-name",
    Type => "type",
    Status => "status",
    BirthDate => "birth-date",
    Gender => "gender",
    AddressLine1 => "address-line1",
    AddressLine2 => "address-line2",
    City => "city",
    PostalCode => "postal-code",
    State => "state",
    Country => "country",
    Email => "email",
    MobilePhone => "mobile-phone",
    HomePhone => "home-phone",
    WorkPhone => "work-phone",
    Company => "company",
    TrialStart => "trial-start",
    TrialEnd => "trial-end",
    Owner => "owner",
    Source => "source",
    Name => "name",
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// A record as canonical field values. Absent fields are simply not in the map.
pub type Record = BTreeMap<Field, String>;

/// The Connector's user type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum UserType {
    /// A lead.
    Prospect,
    /// A paying member.
    Member,
    /// A member whose membership expired.
    ExMember,
}

impl UserType {
    /// The canonical value written in the `type` field.
    pub fn key(self) -> &'static str {
        match self {
            UserType::Prospect => "prospect",
            UserType::Member => "member",
            UserType::ExMember => "ex-member",
        }
    }
}

/// The Connector's user status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Active.
    Active,
    /// Inactive.
    Inactive,
}

impl Status {
    /// The canonical value written in the `status` field.
    pub fn key(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
        }
    }
}

/// The canonical values a field may take where the Connector fixes them; `None` for free text.
pub fn canonical_values(field: Field) -> Option<&'static [&'static str]> {
    match field {
        Field::Type => Some(&["prospect", "member", "ex-member"]),
        Field::Status => Some(&["active", "inactive"]),
        Field::Gender => Some(&["M", "F"]),
        _ => None,
    }
}

/// A staff member as InTouch (or a partner sandbox) knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    /// The owning system's id.
    pub id: String,
    /// Email address; the Connector matches staff by it, case-insensitively.
    pub email: Option<String>,
    /// First name.
    pub first_name: String,
    /// Last name.
    pub last_name: String,
}

/// A lead source as InTouch (or a partner sandbox) knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeadSource {
    /// The owning system's id.
    pub id: String,
    /// Display name; the Connector matches sources by it, case-insensitively.
    pub name: String,
}

/// Compares two names or emails the way the Connector does: surrounding white space ignored,
/// canonically equivalent forms (NFC and NFD) equal, then full Unicode case folding
/// (`STRASSE` = `Straße`), not ASCII lower-casing. Inner white space and accents still count.
pub fn same_ignoring_case(a: &str, b: &str) -> bool {
    let plain = |text: &str| text.is_ascii() && text.trim() == text;
    if plain(a) && plain(b) {
        // ASCII folds to ASCII: no normalisation or full folding can change the answer.
        return a.eq_ignore_ascii_case(b);
    }
    let a = canonical_text(a);
    let b = canonical_text(b);
    unicase::UniCase::unicode(a.as_str()) == unicase::UniCase::unicode(b.as_str())
}

/// A name or email in the form the Connector compares: trimmed and NFC-normalised.
pub fn canonical_text(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.trim().nfc().collect()
}

/// Spellings of `text` that the Connector treats as the same name or email, each with what
/// makes it different: letter case, decomposed accents, surrounding spaces, ẞ for ß, σ for ς.
pub fn same_name_variants(text: &str) -> Vec<(&'static str, String)> {
    use unicode_normalization::UnicodeNormalization;
    let candidates = [
        ("upper case", text.to_uppercase()),
        ("lower case", text.to_lowercase()),
        ("decomposed accents (NFD)", text.nfd().collect::<String>()),
        ("surrounding spaces", format!("  {text} ")),
        ("capital sharp s", text.replace('ß', "\u{1E9E}")),
        ("final sigma as medial", text.replace('ς', "σ")),
    ];
    let mut variants: Vec<(&'static str, String)> = Vec::new();
    for (what, variant) in candidates {
        if variant != text
            && same_ignoring_case(&variant, text)
            && !variants.iter().any(|(_, seen)| *seen == variant)
        {
            variants.push((what, variant));
        }
    }
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_keys_round_trip() {
        for field in Field::ALL {
            assert_eq!(field.key().parse::<Field>(), Ok(*field));
        }
    }

    #[test]
    fn white_space_around_and_normal_forms_do_not_matter_but_inner_spaces_do() {
        assert!(same_ignoring_case("  Café Walk-In ", "CAFÉ WALK-IN"));
        assert!(same_ignoring_case("Cafe\u{301}", "Café"));
        assert!(!same_ignoring_case("Walk In", "Walk  In"));
        assert!(!same_ignoring_case("Café", "Cafe"));
    }

    #[test]
    fn every_variant_is_the_same_name_and_differs_in_spelling() {
        let variants = same_name_variants("Straße Café");
        let kinds: Vec<&str> = variants.iter().map(|(what, _)| *what).collect();
        assert_eq!(
            kinds,
            [
                "upper case",
                "lower case",
                "decomposed accents (NFD)",
                "surrounding spaces",
                "capital sharp s"
            ]
        );
        for (_, variant) in variants {
            assert!(same_ignoring_case(&variant, "Straße Café"));
            assert_ne!(variant, "Straße Café");
        }
    }

    #[test]
    fn case_folding_is_unicode_not_ascii() {
        assert!(same_ignoring_case("STRASSE", "Straße"));
        assert!(same_ignoring_case("Café Walk-In", "CAFÉ WALK-IN"));
        assert!(!same_ignoring_case("Café", "Cafe"));
    }

    #[test]
    fn known_unicode_case_pairs_compare_equal() {
        for (a, b) in [
            ("STRASSE", "straße"),
            ("STRASSE", "STRAẞE"),
            ("ſtraße", "STRASSE"),
            ("İSTANBUL", "İstanbul"),
            ("CAFÉ", "café"),
            ("ØRESUND", "øresund"),
            ("ΣΟΦΟΣ", "σοφος"),
            ("ΣΟΦΟΣ", "σοφοσ"),
        ] {
            assert!(same_ignoring_case(a, b), "{a} / {b}");
            assert!(same_ignoring_case(b, a), "{b} / {a}");
        }
        for (a, b) in [
            ("İstanbul", "Istanbul"),
            ("Straße", "Strase"),
            ("Øre", "Ore"),
        ] {
            assert!(!same_ignoring_case(a, b), "{a} / {b}");
        }
    }

    #[test]
    fn dotless_i_folds_only_under_turkic_rules() {
        // Default (non-Turkic) case folding keeps `ı` apart from `I`/`i`, although `ı` uppercases
        // to `I`: the one letter of the generator below whose uppercase is not its case variant.
        assert_eq!("ı".to_uppercase(), "I");
        assert!(!same_ignoring_case("ı", "I"));
        assert!(!same_ignoring_case("ı", "i"));
        assert!(same_ignoring_case("ı", "ı"));
    }

    use proptest::prelude::*;

    /// Letters with case subtleties (expanding folds, a capital sharp s, a dotted capital I, the
    /// long s, final sigma), plain ASCII, digits and spaces. `ı` (dotless i) is left out: its
    /// uppercase `I` folds to `i`, which is a different letter under default case folding (see
    /// `dotless_i_folds_only_under_turkic_rules`), so "s equals its uppercase" does not hold for
    /// it — correctly.
    const MIXED: &str = "[a-zA-ZßẞİéÉøØſσςΣ0-9 ]{0,24}";

    /// The same letters plus `ı`, for properties that hold whatever the letters.
    const MIXED_WITH_DOTLESS_I: &str = "[a-zA-ZßẞİıéÉøØſσςΣ0-9 ]{0,24}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn a_string_equals_its_uppercase_under_folding(s in MIXED) {
            prop_assert!(same_ignoring_case(&s, &s.to_uppercase()), "{s:?} / {:?}", s.to_uppercase());
            prop_assert!(same_ignoring_case(&s.to_uppercase(), &s));
        }

        #[test]
        fn a_string_equals_its_lowercase_under_folding(s in MIXED_WITH_DOTLESS_I) {
            prop_assert!(same_ignoring_case(&s, &s.to_lowercase()), "{s:?} / {:?}", s.to_lowercase());
            prop_assert!(same_ignoring_case(&s.to_lowercase(), &s));
        }

        #[test]
        fn comparison_is_reflexive_and_symmetric(a in MIXED_WITH_DOTLESS_I, b in MIXED_WITH_DOTLESS_I) {
            prop_assert!(same_ignoring_case(&a, &a));
            prop_assert_eq!(same_ignoring_case(&a, &b), same_ignoring_case(&b, &a));
        }

        #[test]
        fn strings_differing_by_a_digit_are_never_equal(
            s in MIXED_WITH_DOTLESS_I,
            at in any::<prop::sample::Index>(),
            digits in (0u8..10, 1u8..10),
        ) {
            let chars: Vec<char> = s.chars().collect();
            let split = at.index(chars.len() + 1);
            let prefix: String = chars[..split].iter().collect();
            let suffix: String = chars[split..].iter().collect();
            let (first, offset) = digits;
            let second = (first + offset) % 10;
            let a = format!("{prefix}{first}{suffix}");
            let b = format!("{}{second}{}", prefix.to_uppercase(), suffix.to_uppercase());
            prop_assert!(!same_ignoring_case(&a, &b), "{a:?} / {b:?}");
            let c = format!("{}{second}{}", prefix.to_lowercase(), suffix.to_lowercase());
            prop_assert!(!same_ignoring_case(&a, &c), "{a:?} / {c:?}");
            // Nor is a string equal to itself with one more character.
            let longer = format!("{s}{first}");
            prop_assert!(!same_ignoring_case(&s, &longer));
        }
    }
}
