//! Realistic, international names and places for generated InTouch records.

/// First names, many with non-ASCII letters.
pub const FIRST_NAMES: &[&str] = &[
    "Zoë", "José", "Łukasz", "Øyvind", "Émilie", "Björn", "Ana", "Chloé", "Søren", "Ines",
    "Mikołaj", "Noémie", "Jürgen", "Ayşe", "Renée", "Dmitri", "Siobhán", "Yusuf", "Magnús",
    "Thomas",
];

/// Last names, many with non-ASCII letters.
pub const LAST_NAMES: &[&str] = &[
    "Ñúñez",
    "Großmann",
    "Żurawska",
    "Østergaard",
    "Lefèvre",
    "Çelik",
    "Dvořák",
    "O'Brien",
    "Müller",
    "García",
    "Kowalczyk",
    "Nakamura",
    "Sørensen",
    "Ferreira",
    "Åberg",
    "Schmidt",
];

/// (city, postal code, state, country).
pub const PLACES: &[(&str, &str, &str, &str)] = &[
    ("Köln", "50667", "Nordrhein-Westfalen", "DE"),
    ("München", "80331", "Bayern", "DE"),
    ("Zürich", "8001", "Zürich", "CH"),
    ("Kraków", "30-001", "Małopolskie", "PL"),
    ("Malmö", "211 20", "Skåne", "SE"),
    ("Montréal", "H2X 1Y4", "Québec", "CA"),
];

/// Street names.
pub const STREETS: &[&str] = &[
    "Hauptstraße",
    "Rue de l'Église",
    "Kungsgatan",
    "Bahnhofstraße",
    "ulica Długa",
];

/// Employers.
pub const COMPANIES: &[&str] = &["Straße & Söhne GmbH", "Café Noir SARL", "Nordlys AS"];

/// InTouch's lead-source list, created in full at create-only partners.
pub const INTOUCH_SOURCES: &[&str] = &[
    "Walk-In",
    "Website",
    "Referral",
    "Facebook Ads",
    "Café Walk-In",
    "Open Day",
];

/// A lower-case ASCII form of a name, for email local parts.
pub fn ascii_slug(name: &str) -> String {
    name.chars()
        .filter_map(|c| {
            let base = match c {
                'à' | 'á' | 'â' | 'ä' | 'å' | 'Å' => 'a',
                'ç' | 'Ç' | 'č' => 'c',
                'è' | 'é' | 'ê' | 'ë' | 'É' => 'e',
                'ì' | 'í' | 'î' | 'ï' => 'i',
                'ñ' | 'Ñ' => 'n',
                'ò' | 'ó' | 'ô' | 'ö' | 'ø' | 'Ø' => 'o',
                'ù' | 'ú' | 'û' | 'ü' | 'Ü' => 'u',
                'ł' | 'Ł' => 'l',
                'ß' => 's',
                'ż' | 'Ż' | 'ź' => 'z',
                'ř' => 'r',
                'ş' | 'Ş' => 's',
                'ğ' => 'g',
                'ý' => 'y',
                c if c.is_ascii_alphanumeric() => c.to_ascii_lowercase(),
                _ => return None,
            };
            Some(base)
        })
        .collect()
}

/// A random full name.
pub fn full_name(rng: &mut impl rand::Rng) -> String {
    use rand::seq::IndexedRandom;
    format!(
        "{} {}",
        FIRST_NAMES.choose(rng).expect("names"),
        LAST_NAMES.choose(rng).expect("names")
    )
}
