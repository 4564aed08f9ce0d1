//! The fixture profiles, embedded in the binary: the selftest's matrix, and the profiles a
//! mock fault can be shown on.

use crate::profile::Profile;

/// The fixture profiles, embedded so `spoke selftest` runs from any directory.
pub const FIXTURE_PROFILES: [(&str, &str); 16] = [
    (
        "fixtures/profiles/create-only-sources.toml",
        include_str!("../fixtures/profiles/create-only-sources.toml"),
    ),
    (
        "fixtures/profiles/dynamics.toml",
        include_str!("../fixtures/profiles/dynamics.toml"),
    ),
    (
        "fixtures/profiles/glofox.toml",
        include_str!("../fixtures/profiles/glofox.toml"),
    ),
    (
        "fixtures/profiles/hubspot.toml",
        include_str!("../fixtures/profiles/hubspot.toml"),
    ),
    (
        "fixtures/profiles/keap.toml",
        include_str!("../fixtures/profiles/keap.toml"),
    ),
    (
        "fixtures/profiles/members-only.toml",
        include_str!("../fixtures/profiles/members-only.toml"),
    ),
    (
        "fixtures/profiles/mindbody.toml",
        include_str!("../fixtures/profiles/mindbody.toml"),
    ),
    (
        "fixtures/profiles/nested-envelope.toml",
        include_str!("../fixtures/profiles/nested-envelope.toml"),
    ),
    (
        "fixtures/profiles/pipedrive.toml",
        include_str!("../fixtures/profiles/pipedrive.toml"),
    ),
    (
        "fixtures/profiles/reference.toml",
        include_str!("../fixtures/profiles/reference.toml"),
    ),
    (
        "fixtures/profiles/salesforce.toml",
        include_str!("../fixtures/profiles/salesforce.toml"),
    ),
    (
        "fixtures/profiles/soap.toml",
        include_str!("../fixtures/profiles/soap.toml"),
    ),
    (
        "fixtures/profiles/two-way.toml",
        include_str!("../fixtures/profiles/two-way.toml"),
    ),
    (
        "fixtures/profiles/xml-rest.toml",
        include_str!("../fixtures/profiles/xml-rest.toml"),
    ),
    (
        "fixtures/profiles/zendesk-sell.toml",
        include_str!("../fixtures/profiles/zendesk-sell.toml"),
    ),
    (
        "fixtures/profiles/zoho.toml",
        include_str!("../fixtures/profiles/zoho.toml"),
    ),
];

/// The embedded fixture profiles, parsed.
pub fn fixture_profiles() -> Vec<Profile> {
    FIXTURE_PROFILES
        .iter()
        .map(|(name, text)| {
            Profile::parse(name, text).expect("the embedded fixture profiles are valid")
        })
        .collect()
}
