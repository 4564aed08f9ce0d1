//! The simulated InTouch: builds the run's world (staff, sources, prospects, members) from a
//! seed, the scenario, and what was discovered in the partner's sandbox.

mod names;
pub mod scenario;

use crate::model::{same_ignoring_case, Field, Record};
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
pub use scenario::{OwnerCase, Scenario, SourceCase};

/// How an InTouch staff member relates to the partner's staff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaffRole {
    /// Same email as a partner staff member, in other letter case.
    Matched {
        /// The partner's id of that staff member.
        partner_id: String,
        /// The partner's spelling of the email.
        partner_email: String,
    },
    /// An email the partner does not know.
    Unmatched,
    /// No email at all.
    NoEmail,
}

/// An InTouch staff member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntouchStaff {
    /// InTouch's id.
    pub id: String,
    /// Email, as InTouch spells it.
    pub email: Option<String>,
    /// Display name.
    pub name: String,
    /// What the run expects of it.
    pub role: StaffRole,
}

/// How an InTouch lead source relates to the partner's sources.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRole {
    /// A partner source's name in other letter case.
    Existing {
        /// The partner's id.
        partner_id: String,
        /// The partner's spelling.
        partner_name: String,
    },
    /// A name the partner does not have.
    New,
}

/// An InTouch lead source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntouchSource {
    /// InTouch's name.
    pub name: String,
    /// What the run expects of it.
    pub role: SourceRole,
}

/// A prospect or member to deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    /// A short label, e.g. "prospect 1 (owner matched, source new)".
    pub label: String,
    /// Contact fields, canonical (no owner or source: those are resolved by the Connector).
    pub record: Record,
    /// Index into the world's staff.
    pub owner: Option<usize>,
    /// Index into the world's sources.
    pub source: Option<usize>,
    /// The scenario cell it covers (prospects only).
    pub case: Option<(OwnerCase, SourceCase)>,
}

/// Everything InTouch holds for one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct World {
    /// The seed it was built from.
    pub seed: u64,
    /// The tag carried by generated names, emails and external ids.
    pub tag: String,
    /// InTouch staff.
    pub staff: Vec<IntouchStaff>,
    /// InTouch lead sources (for create-only partners: every one of them is created).
    pub sources: Vec<IntouchSource>,
    /// Prospects to deliver.
    pub prospects: Vec<Lead>,
    /// Members to deliver.
    pub members: Vec<Lead>,
    /// What the sandbox lacks for some cases, each a sentence saying what to add.
    pub missing: Vec<String>,
}

/// What the run found in the partner's sandbox before building the world.
#[derive(Debug, Clone, Default)]
pub struct Discovered {
    /// Partner staff: (id, email).
    pub staff: Vec<(String, Option<String>)>,
    /// Partner sources: (id, name); `None` when the partner has no list.
    pub sources: Option<Vec<(String, String)>>,
}

/// What the world must cover.
#[derive(Debug, Clone, Copy)]
pub struct Needs {
    /// Prospects are delivered.
    pub prospects: bool,
    /// Members are delivered.
    pub members: bool,
    /// Prospects carry owners.
    pub owners: bool,
    /// Prospects carry sources.
    pub sources: bool,
    /// InTouch is master of the source list (create-only partner).
    pub create_only_sources: bool,
}

/// A letter-case variant of `text` that differs from it yet still folds equal to it (so not
/// `IŞIL` for `Işıl`: default case folding keeps `ı` and `I` apart), if there is one.
pub fn other_case(text: &str) -> Option<String> {
    [text.to_uppercase(), text.to_lowercase()]
        .into_iter()
        .find(|variant| variant != text && same_ignoring_case(variant, text))
}

/// The shape of a staff id, as far as a partner's handling of ids could tell two apart: which
/// letter cases it uses, whether it has digits (or is nothing else), which punctuation, and
/// roughly how long it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IdShape {
    /// `none`, `upper`, `lower`, `mixed` or `uncased` (letters of scripts without case).
    pub letters: &'static str,
    /// `none`, `some` or `only`.
    pub digits: &'static str,
    /// The distinct characters that are neither letters nor digits, in order.
    pub punctuation: String,
    /// `short` (up to 8 characters), `medium` (up to 24) or `long`.
    pub length: &'static str,
}

impl IdShape {
    /// The shape of `id`.
    pub fn of(id: &str) -> IdShape {
        let (mut upper, mut lower, mut uncased, mut digits, mut others) = (
            false,
            false,
            false,
            0usize,
            std::collections::BTreeSet::new(),
        );
        for c in id.chars() {
            if c.is_uppercase() {
                upper = true;
            } else if c.is_lowercase() {
                lower = true;
            } else if c.is_alphabetic() {
                uncased = true;
            } else if c.is_numeric() {
                digits += 1;
            } else {
                others.insert(c);
            }
        }
        let count = id.chars().count();
        IdShape {
            letters: match (upper, lower, uncased) {
                (true, true, _) => "mixed",
                (true, false, _) => "upper",
                (false, true, _) => "lower",
                (false, false, true) => "uncased",
                (false, false, false) => "none",
            },
            digits: match digits {
                0 => "none",
                n if n == count => "only",
                _ => "some",
            },
            punctuation: others.into_iter().collect(),
            length: match count {
                0..=8 => "short",
                9..=24 => "medium",
                _ => "long",
            },
        }
    }
}

/// The most id shapes given a matched owner each; beyond it the seed picks among them.
pub const MAX_ID_SHAPES: usize = 8;

/// One partner staff member (id, email) per shape of staff id among those InTouch can match
/// (an email with another letter case), each picked by the seed; at most [`MAX_ID_SHAPES`].
fn matchable_per_shape(
    staff: &[(String, Option<String>)],
    rng: &mut ChaCha8Rng,
) -> Vec<(String, String)> {
    let mut by_shape: std::collections::BTreeMap<IdShape, Vec<(String, String)>> =
        Default::default();
    for (id, email) in staff {
        if let Some(email) = email.as_ref().filter(|email| other_case(email).is_some()) {
            by_shape
                .entry(IdShape::of(id))
                .or_default()
                .push((id.clone(), email.clone()));
        }
    }
    let mut picked: Vec<(String, String)> = by_shape
        .into_values()
        .filter_map(|members| members.choose(rng).cloned())
        .collect();
    while picked.len() > MAX_ID_SHAPES {
        let dropped = rng.random_range(0..picked.len());
        picked.remove(dropped);
    }
    picked
}

/// Builds the world. Same seed, scenario and discovery give the same world.
///
/// Matched owners cover every shape of staff id the sandbox has (see [`IdShape`]): the
/// scenario's matched cells take one shape each, in turn, and a shape left over gets a prospect
/// of its own (owner matched, source none), so a partner mishandling one shape of id is caught
/// whatever the seed.
pub fn build_world(seed: u64, scenario: &Scenario, needs: Needs, discovered: &Discovered) -> World {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let tag = format!("{seed:06x}");
    let matchable = matchable_per_shape(&discovered.staff, &mut rng);
    let mut matched_used = 0usize;
    let mut world = World {
        seed,
        tag: tag.clone(),
        staff: Vec::new(),
        sources: Vec::new(),
        prospects: Vec::new(),
        members: Vec::new(),
        missing: Vec::new(),
    };

    let mut owner_of = |world: &mut World,
                        case: OwnerCase,
                        rng: &mut ChaCha8Rng|
     -> Option<usize> {
        let role = match case {
            OwnerCase::None => return None,
            OwnerCase::Matched => {
                if matchable.is_empty() {
                    note_missing(
                        world,
                        "the sandbox has no staff member with an email: add one so a matched owner can be tested",
                    );
                    return None;
                }
                let (id, email) = matchable[matched_used % matchable.len()].clone();
                matched_used += 1;
                StaffRole::Matched {
                    partner_id: id,
                    partner_email: email,
                }
            }
            OwnerCase::Unmatched => StaffRole::Unmatched,
        };
        if let Some(index) = world.staff.iter().position(|s| s.role == role) {
            return Some(index);
        }
        let email = match &role {
            StaffRole::Matched { partner_email, .. } => other_case(partner_email),
            StaffRole::Unmatched => Some(format!("coach.{tag}@intouch-club.example")),
            StaffRole::NoEmail => None,
        };
        world.staff.push(IntouchStaff {
            id: format!("IT-STAFF-{}", world.staff.len() + 1),
            email,
            name: names::full_name(rng),
            role,
        });
        Some(world.staff.len() - 1)
    };

    let source_of = |world: &mut World, case: SourceCase, rng: &mut ChaCha8Rng| -> Option<usize> {
        let role = match case {
            SourceCase::None => return None,
            SourceCase::New => SourceRole::New,
            SourceCase::ExistingOtherCase | SourceCase::ExistingNonAscii => {
                let Some(sources) = &discovered.sources else {
                    // Create-only partners have no list to match against: the source is new.
                    return source_index(world, SourceRole::New, &tag, discovered);
                };
                let non_ascii = case == SourceCase::ExistingNonAscii;
                let mut candidates: Vec<&(String, String)> = sources
                    .iter()
                    .filter(|(_, name)| other_case(name).is_some() && name.is_ascii() != non_ascii)
                    .collect();
                if non_ascii {
                    // Prefer names whose case variant only full Unicode folding matches
                    // (CAFÉ/Café, STRASSE/Straße), so ASCII-only folding is caught.
                    let beyond_ascii: Vec<&(String, String)> = candidates
                        .iter()
                        .copied()
                        .filter(|(_, name)| {
                            other_case(name)
                                .is_some_and(|variant| !variant.eq_ignore_ascii_case(name))
                        })
                        .collect();
                    if !beyond_ascii.is_empty() {
                        candidates = beyond_ascii;
                    }
                }
                let Some((id, name)) = candidates.choose(rng).map(|c| (*c).clone()) else {
                    note_missing(
                        world,
                        if non_ascii {
                            "the sandbox has no lead source with a non-ASCII name (e.g. `Café Walk-In`): add one to test Unicode case matching"
                        } else {
                            "the sandbox has no lead source: add one so case-insensitive matching can be tested"
                        },
                    );
                    return None;
                };
                SourceRole::Existing {
                    partner_id: id,
                    partner_name: name,
                }
            }
        };
        source_index(world, role, &tag, discovered)
    };

    if needs.prospects {
        let mut cells_seen = Vec::new();
        for (index, cell) in scenario.prospects.iter().enumerate() {
            // A dimension the profile does not carry collapses to "none"; each resulting cell
            // is delivered once.
            let owner_case = if needs.owners {
                cell.owner
            } else {
                OwnerCase::None
            };
            let source_case = if needs.sources {
                cell.source
            } else {
                SourceCase::None
            };
            if cells_seen.contains(&(owner_case, source_case)) {
                continue;
            }
            cells_seen.push((owner_case, source_case));
            if source_case == SourceCase::ExistingNonAscii
                && !discovered
                    .sources
                    .as_ref()
                    .is_some_and(|s| s.iter().any(|(_, n)| !n.is_ascii()))
            {
                continue;
            }
            let owner = owner_of(&mut world, owner_case, &mut rng);
            let source = source_of(&mut world, source_case, &mut rng);
            if (owner_case != OwnerCase::None && owner.is_none())
                || (source_case != SourceCase::None && source.is_none())
            {
                continue;
            }
            let record = contact(&mut rng, &tag, "prospect", index + 1, "active");
            world.prospects.push(Lead {
                label: format!(
                    "prospect {} (owner {}, source {})",
                    index + 1,
                    owner_case.key(),
                    source_case.key()
                ),
                record,
                owner,
                source,
                case: Some((owner_case, source_case)),
            });
        }
        if needs.owners {
            cover_every_id_shape(&mut world, &matchable, scenario, &tag, &mut rng);
        }
        if needs.owners && !world.staff.iter().any(|s| s.role == StaffRole::NoEmail) {
            world.staff.push(IntouchStaff {
                id: format!("IT-STAFF-{}", world.staff.len() + 1),
                email: None,
                name: names::full_name(&mut rng),
                role: StaffRole::NoEmail,
            });
        }
    }
    if needs.create_only_sources {
        for name in names::INTOUCH_SOURCES {
            if !world
                .sources
                .iter()
                .any(|s| same_ignoring_case(&s.name, name))
            {
                world.sources.push(IntouchSource {
                    name: (*name).to_owned(),
                    role: SourceRole::New,
                });
            }
        }
    }
    if needs.members {
        for (index, cell) in scenario.members.iter().enumerate() {
            let record = contact(&mut rng, &tag, "member", index + 1, cell.status.key());
            world.members.push(Lead {
                label: format!("member {} ({})", index + 1, cell.status.key()),
                record,
                owner: None,
                source: None,
                case: None,
            });
        }
    }
    world
}

/// Adds a prospect (owner matched, source none) for each staff member of `matchable` whose id
/// shape no delivered prospect's owner has yet.
fn cover_every_id_shape(
    world: &mut World,
    matchable: &[(String, String)],
    scenario: &Scenario,
    tag: &str,
    rng: &mut ChaCha8Rng,
) {
    let owns_a_prospect = |world: &World, id: &str| {
        world.prospects.iter().any(|lead| {
            lead.owner.is_some_and(|index| {
                matches!(&world.staff[index].role, StaffRole::Matched { partner_id, .. } if partner_id == id)
            })
        })
    };
    let mut number = scenario.prospects.len();
    for (id, email) in matchable {
        if owns_a_prospect(world, id) {
            continue;
        }
        let role = StaffRole::Matched {
            partner_id: id.clone(),
            partner_email: email.clone(),
        };
        let owner = match world.staff.iter().position(|s| s.role == role) {
            Some(index) => index,
            None => {
                world.staff.push(IntouchStaff {
                    id: format!("IT-STAFF-{}", world.staff.len() + 1),
                    email: other_case(email),
                    name: names::full_name(rng),
                    role,
                });
                world.staff.len() - 1
            }
        };
        number += 1;
        let record = contact(rng, tag, "prospect", number, "active");
        world.prospects.push(Lead {
            label: format!("prospect {number} (owner matched, staff id `{id}`, source none)"),
            record,
            owner: Some(owner),
            source: None,
            case: Some((OwnerCase::Matched, SourceCase::None)),
        });
    }
}

/// The `number`th lead of a load run: the owner and source case of one of the world's prospects
/// (cycling through them) with fresh contact data and its own external id. Members have no
/// owner or source. Same seed, world and number give the same lead.
pub fn generated_lead(world: &World, kind: &str, number: usize) -> Lead {
    let mut rng = ChaCha8Rng::seed_from_u64(world.seed ^ (number as u64).wrapping_mul(0x9E37_79B9));
    let status = if kind == "member" && number % 5 == 4 {
        "inactive"
    } else {
        "active"
    };
    let record = contact(
        &mut rng,
        &world.tag,
        &format!("load-{kind}"),
        number,
        status,
    );
    let template = (kind == "prospect")
        .then(|| world.prospects.get(number % world.prospects.len().max(1)))
        .flatten();
    Lead {
        label: format!("{kind} {number}"),
        record,
        owner: template.and_then(|t| t.owner),
        source: template.and_then(|t| t.source),
        case: template.and_then(|t| t.case),
    }
}

fn note_missing(world: &mut World, message: &str) {
    if !world.missing.iter().any(|m| m == message) {
        world.missing.push(message.to_owned());
    }
}

fn source_index(
    world: &mut World,
    role: SourceRole,
    tag: &str,
    discovered: &Discovered,
) -> Option<usize> {
    if let Some(index) = world.sources.iter().position(|s| s.role == role) {
        return Some(index);
    }
    let name = match &role {
        SourceRole::Existing { partner_name, .. } => other_case(partner_name)?,
        SourceRole::New => {
            // Tagged so runs do not collide; bumped past any name the sandbox already has.
            let taken = |name: &str| {
                discovered
                    .sources
                    .iter()
                    .flatten()
                    .any(|(_, existing)| same_ignoring_case(existing, name))
            };
            (0..)
                .map(|n| match n {
                    0 => format!("Frühjahrs-Aktion {tag}"),
                    n => format!("Frühjahrs-Aktion {tag}-{n}"),
                })
                .find(|name| !taken(name))?
        }
    };
    world.sources.push(IntouchSource { name, role });
    Some(world.sources.len() - 1)
}

fn contact(rng: &mut ChaCha8Rng, tag: &str, kind: &str, number: usize, status: &str) -> Record {
    let first = *names::FIRST_NAMES.choose(rng).expect("names");
    let last = *names::LAST_NAMES.choose(rng).expect("names");
    let (city, postal, state, country) = *names::PLACES.choose(rng).expect("places");
    let street = *names::STREETS.choose(rng).expect("streets");
    let mut record = Record::new();
    let mut set = |field: Field, value: String| {
        record.insert(field, value);
    };
    set(Field::ExternalId, format!("IT-{tag}-{kind}-{number}"));
    set(Field::FirstName, first.to_owned());
    set(Field::LastName, format!("{last}-{tag}"));
    set(
        Field::Type,
        if kind == "member" {
            "member"
        } else {
            "prospect"
        }
        .to_owned(),
    );
    set(Field::Status, status.to_owned());
    set(
        Field::BirthDate,
        format!(
            "{}-{:02}-{:02}",
            rng.random_range(1960..2006),
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        ),
    );
    set(
        Field::Gender,
        if rng.random_bool(0.5) { "F" } else { "M" }.to_owned(),
    );
    set(
        Field::AddressLine1,
        format!("{street} {}", rng.random_range(1..200)),
    );
    if rng.random_bool(0.3) {
        set(
            Field::AddressLine2,
            format!("Apt {}", rng.random_range(1..40)),
        );
    }
    set(Field::City, city.to_owned());
    set(Field::PostalCode, postal.to_owned());
    set(Field::State, state.to_owned());
    set(Field::Country, country.to_owned());
    set(
        Field::Email,
        format!(
            "{}.{}.{tag}.{number}@example.org",
            names::ascii_slug(first),
            names::ascii_slug(last)
        ),
    );
    set(
        Field::MobilePhone,
        format!(
            "+49 15{} {:07}",
            rng.random_range(1..10),
            rng.random_range(0..10_000_000)
        ),
    );
    if rng.random_bool(0.5) {
        set(
            Field::HomePhone,
            format!("+49 30 {:07}", rng.random_range(0..10_000_000)),
        );
    }
    if rng.random_bool(0.4) {
        set(
            Field::WorkPhone,
            format!("+49 40 {:07}", rng.random_range(0..10_000_000)),
        );
        set(
            Field::Company,
            (*names::COMPANIES.choose(rng).expect("companies")).to_owned(),
        );
    }
    if kind.ends_with("prospect") {
        let day = rng.random_range(1..=14);
        set(Field::TrialStart, format!("2026-12-{day:02}"));
        set(Field::TrialEnd, format!("2026-12-{:02}", day + 14));
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discovered() -> Discovered {
        Discovered {
            staff: vec![
                ("S-1".into(), Some("Ana.Lopez@club.example".into())),
                ("S-2".into(), None),
            ],
            sources: Some(vec![
                ("LS-1".into(), "Walk-In".into()),
                ("LS-2".into(), "Café Walk-In".into()),
            ]),
        }
    }

    fn needs() -> Needs {
        Needs {
            prospects: true,
            members: true,
            owners: true,
            sources: true,
            create_only_sources: false,
        }
    }

    #[test]
    fn the_world_covers_every_owner_and_source_combination() {
        let world = build_world(42, &Scenario::core(), needs(), &discovered());
        assert_eq!(world.prospects.len(), 10);
        assert!(world.missing.is_empty(), "{:?}", world.missing);
        let matched = world
            .staff
            .iter()
            .find(|s| matches!(s.role, StaffRole::Matched { .. }))
            .unwrap();
        let email = matched.email.as_deref().unwrap();
        assert_ne!(email, "Ana.Lopez@club.example");
        assert!(same_ignoring_case(email, "Ana.Lopez@club.example"));
        assert!(world.staff.iter().any(|s| s.role == StaffRole::NoEmail));
        assert!(world.sources.iter().any(|s| s.name == "CAFÉ WALK-IN"));
        assert_eq!(world.members.len(), 2);
    }

    #[test]
    fn every_shape_of_staff_id_gets_a_prospect_with_that_owner() {
        let discovered = Discovered {
            staff: vec![
                ("S-0001".into(), Some("ana@club.example".into())),
                ("S-0002".into(), Some("ben@club.example".into())),
                ("40025".into(), Some("cem@club.example".into())),
                ("coach-lena".into(), Some("lena@club.example".into())),
                ("zoe_f.berlin".into(), Some("zoe@club.example".into())),
                (
                    "3f2b9c1e-8d4a-4b7f-9e21-5c6d7a8b9077".into(),
                    Some("ida@club.example".into()),
                ),
                ("OnlyNoEmail".into(), None),
            ],
            sources: discovered().sources,
        };
        for seed in 0..20 {
            let world = build_world(seed, &Scenario::core(), needs(), &discovered);
            let owners: std::collections::BTreeSet<IdShape> = world
                .prospects
                .iter()
                .filter_map(|lead| lead.owner)
                .filter_map(|index| match &world.staff[index].role {
                    StaffRole::Matched { partner_id, .. } => Some(IdShape::of(partner_id)),
                    _ => None,
                })
                .collect();
            // Five shapes with an email; the one without an email cannot be matched.
            assert_eq!(owners.len(), 5, "seed {seed}: {owners:?}");
            assert!(owners.contains(&IdShape::of("40025")));
            // A handful of prospects, not one per staff member.
            assert!(world.prospects.len() <= 11, "seed {seed}");
        }
    }

    #[test]
    fn id_shapes_tell_case_digits_punctuation_and_length_apart() {
        let shape = IdShape::of;
        assert_eq!(shape("S-0001"), shape("S-9999"));
        assert_ne!(shape("S-0001"), shape("s-0001"));
        assert_ne!(shape("40025"), shape("S40025"));
        assert_eq!(shape("40025").digits, "only");
        assert_ne!(shape("a_b"), shape("a.b"));
        assert_ne!(shape("abc"), shape("abcdefghijklmnopqrstuvwxyz"));
        assert_eq!(shape("").length, "short");
    }

    #[test]
    fn a_sandbox_without_emails_is_named_as_missing() {
        let mut discovered = discovered();
        discovered.staff.retain(|(_, email)| email.is_none());
        let world = build_world(1, &Scenario::core(), needs(), &discovered);
        assert!(world.missing[0].contains("no staff member with an email"));
        assert!(world
            .prospects
            .iter()
            .all(|p| p.case.unwrap().0 != OwnerCase::Matched));
    }

    #[test]
    fn new_sources_avoid_names_the_sandbox_has() {
        let mut discovered = discovered();
        let world = build_world(7, &Scenario::core(), needs(), &discovered);
        let new_name = world
            .sources
            .iter()
            .find(|s| s.role == SourceRole::New)
            .unwrap()
            .name
            .clone();
        discovered
            .sources
            .as_mut()
            .unwrap()
            .push(("LS-9".into(), new_name.clone()));
        let again = build_world(7, &Scenario::core(), needs(), &discovered);
        let renamed = &again
            .sources
            .iter()
            .find(|s| s.role == SourceRole::New)
            .unwrap()
            .name;
        assert_ne!(renamed, &new_name);
    }

    fn assert_matched_emails_fold_equal(world: &World) {
        for staff in &world.staff {
            if let StaffRole::Matched { partner_email, .. } = &staff.role {
                let email = staff
                    .email
                    .as_deref()
                    .expect("a matched staff member has an email");
                assert_ne!(email, partner_email);
                assert!(
                    same_ignoring_case(email, partner_email),
                    "{email} / {partner_email}"
                );
            }
        }
    }

    #[test]
    fn a_matched_email_with_a_dotless_i_still_folds_equal_to_the_partners() {
        let discovered = Discovered {
            staff: vec![("S-1".into(), Some("Işıl.Yılmaz@club.example".into()))],
            sources: Some(Vec::new()),
        };
        let world = build_world(3, &Scenario::core(), needs(), &discovered);
        assert!(world
            .staff
            .iter()
            .any(|s| matches!(s.role, StaffRole::Matched { .. })));
        assert_matched_emails_fold_equal(&world);
    }

    #[test]
    fn seeds_differing_above_the_low_24_bits_still_get_different_tags() {
        let a = build_world(1, &Scenario::core(), needs(), &discovered());
        let b = build_world(1 + (1 << 24), &Scenario::core(), needs(), &discovered());
        assert_ne!(a.tag, b.tag);
    }

    use proptest::prelude::*;

    /// Partner staff emails with mixed-case letters, including ones whose case variants change
    /// length (ß, ẞ), the dotted capital I, the dotless i and final sigma.
    fn partner_staff() -> impl Strategy<Value = Vec<(String, Option<String>)>> {
        proptest::collection::vec(
            proptest::option::weighted(
                0.8,
                "[a-zA-Z0-9.ßẞİıéÉøØſσςΣ]{1,10}@[a-zA-Z]{1,8}\\.example",
            ),
            1..4,
        )
        .prop_map(|emails| {
            emails
                .into_iter()
                .enumerate()
                .map(|(index, email)| (format!("S-{}", index + 1), email))
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn worlds_are_reproducible_tagged_and_match_staff_in_other_case(
            seed in any::<u64>(),
            staff in partner_staff(),
        ) {
            let discovered = Discovered {
                staff,
                sources: discovered().sources,
            };
            let world = build_world(seed, &Scenario::core(), needs(), &discovered);
            let again = build_world(seed, &Scenario::core(), needs(), &discovered);
            prop_assert_eq!(&world, &again);
            prop_assert_eq!(world.seed, seed);

            prop_assert!(!world.prospects.is_empty());
            for lead in world.prospects.iter().chain(&world.members) {
                let external_id = &lead.record[&Field::ExternalId];
                prop_assert!(external_id.contains(&world.tag), "{} lacks {}", external_id, world.tag);
            }

            // An email can be matched when some other spelling of it folds back to it: not
            // `ı@a.example`, whose upper case `I@A.EXAMPLE` default folding keeps apart.
            let matchable = discovered
                .staff
                .iter()
                .any(|(_, email)| email.as_deref().and_then(other_case).is_some());
            let matched = world
                .staff
                .iter()
                .filter(|s| matches!(s.role, StaffRole::Matched { .. }))
                .count();
            prop_assert_eq!(matched > 0, matchable);
            if !matchable {
                prop_assert!(world.missing.iter().any(|m| m.contains("staff member with an email")));
            }
            for staff in &world.staff {
                if let StaffRole::Matched { partner_id, partner_email } = &staff.role {
                    let email = staff.email.as_deref().expect("a matched staff member has an email");
                    prop_assert_ne!(email, partner_email.as_str());
                    prop_assert!(same_ignoring_case(email, partner_email), "{} / {}", email, partner_email);
                    prop_assert!(discovered
                        .staff
                        .contains(&(partner_id.clone(), Some(partner_email.clone()))));
                }
            }
        }

        #[test]
        fn different_seeds_give_different_tags(a in any::<u64>(), b in any::<u64>()) {
            prop_assume!(a != b);
            let first = build_world(a, &Scenario::core(), needs(), &discovered());
            let second = build_world(b, &Scenario::core(), needs(), &discovered());
            prop_assert_ne!(first.tag, second.tag);
        }
    }
}
