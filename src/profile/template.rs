//! Templates with `{placeholder}` slots for paths, query values and fixed body values.

use std::collections::BTreeSet;
use std::fmt;

/// A value the Connector fills into a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Slot {
    /// `{client_id}`: the partner's client (chain) id.
    ClientId,
    /// `{club_id}`: the partner's club id.
    ClubId,
    /// `{id}`: the partner's id of the record addressed.
    Id,
    /// `{email}`: the email looked up.
    Email,
}

impl Slot {
    fn parse(name: &str) -> Option<Slot> {
        match name {
            "client_id" => Some(Slot::ClientId),
            "club_id" => Some(Slot::ClubId),
            "id" => Some(Slot::Id),
            "email" => Some(Slot::Email),
            _ => None,
        }
    }

    /// The placeholder as written in a profile.
    pub fn placeholder(self) -> &'static str {
        match self {
            Slot::ClientId => "{client_id}",
            Slot::ClubId => "{club_id}",
            Slot::Id => "{id}",
            Slot::Email => "{email}",
        }
    }
}

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Literal text.
    Text(String),
    /// A placeholder.
    Slot(Slot),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
    source: String,
}

/// The values for a template's slots.
pub trait SlotValues {
    /// The value of `slot`, if known.
    fn value(&self, slot: Slot) -> Option<&str>;
}

impl Template {
    /// Parses `text`; `{name}` must name a known slot.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("`{text}` has an unclosed `{{`"))?;
            let name = &after[..close];
            let slot = Slot::parse(name).ok_or_else(|| {
                format!(
                    "`{{{name}}}` is not a placeholder (known: {{client_id}}, {{club_id}}, {{id}}, {{email}})"
                )
            })?;
            pieces.push(Piece::Slot(slot));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("`{text}` has a `}}` without `{{`"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template {
            pieces,
            source: text.to_owned(),
        })
    }

    /// The slots this template uses.
    pub fn slots(&self) -> BTreeSet<Slot> {
        self.pieces
            .iter()
            .filter_map(|piece| match piece {
                Piece::Slot(slot) => Some(*slot),
                Piece::Text(_) => None,
            })
            .collect()
    }

    /// The pieces in order.
    pub fn pieces(&self) -> &[Piece] {
        &self.pieces
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Fills every slot; `encode` is applied to each filled value (e.g. percent-encoding for paths).
    pub fn render(
        &self,
        values: &dyn SlotValues,
        encode: impl Fn(&str) -> String,
    ) -> Result<String, Slot> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Slot(slot) => out.push_str(&encode(values.value(*slot).ok_or(*slot)?)),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Template::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A path template split into `/`-separated segments, each literal or one whole slot, so a
/// server can match request paths against it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// A literal segment.
    Literal(String),
    /// A segment that is entirely one slot.
    Slot(Slot),
    /// A segment of one slot with text around it (`leads({id})`, as OData addresses a record).
    Framed {
        /// The text before the slot.
        prefix: String,
        /// The slot.
        slot: Slot,
        /// The text after it.
        suffix: String,
    },
}

impl PathSegment {
    /// The slot of the segment, if it has one.
    pub fn slot(&self) -> Option<Slot> {
        match self {
            PathSegment::Literal(_) => None,
            PathSegment::Slot(slot) | PathSegment::Framed { slot, .. } => Some(*slot),
        }
    }

    /// What `actual` (one segment of a request's path) holds where the slot is, if it fits;
    /// `None` for a literal or a segment that does not fit.
    pub fn capture<'a>(&self, actual: &'a str) -> Option<&'a str> {
        match self {
            PathSegment::Literal(_) => None,
            PathSegment::Slot(_) => Some(actual),
            PathSegment::Framed { prefix, suffix, .. } => {
                let inner = actual
                    .strip_prefix(prefix.as_str())?
                    .strip_suffix(suffix.as_str())?;
                (!inner.is_empty()).then_some(inner)
            }
        }
    }
}

/// Splits a path template into matchable segments; a segment holds at most one slot.
pub fn path_segments(template: &Template) -> Result<Vec<PathSegment>, String> {
    let text = template.as_str();
    if !text.starts_with('/') {
        return Err(format!("path `{text}` must start with `/`"));
    }
    text[1..]
        .split('/')
        .map(|segment| {
            let parsed = Template::parse(segment)?;
            match parsed.pieces() {
                [] => Err(format!("path `{text}` has an empty segment")),
                [Piece::Slot(slot)] => Ok(PathSegment::Slot(*slot)),
                pieces if pieces.iter().all(|p| matches!(p, Piece::Text(_))) => {
                    Ok(PathSegment::Literal(segment.to_owned()))
                }
                [Piece::Text(prefix), Piece::Slot(slot)] => Ok(PathSegment::Framed {
                    prefix: prefix.clone(),
                    slot: *slot,
                    suffix: String::new(),
                }),
                [Piece::Slot(slot), Piece::Text(suffix)] => Ok(PathSegment::Framed {
                    prefix: String::new(),
                    slot: *slot,
                    suffix: suffix.clone(),
                }),
                [Piece::Text(prefix), Piece::Slot(slot), Piece::Text(suffix)] => {
                    Ok(PathSegment::Framed {
                        prefix: prefix.clone(),
                        slot: *slot,
                        suffix: suffix.clone(),
                    })
                }
                _ => Err(format!(
                    "path `{text}`: a segment holds at most one placeholder (`{segment}`)"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Values;
    impl SlotValues for Values {
        fn value(&self, slot: Slot) -> Option<&str> {
            match slot {
                Slot::ClubId => Some("club 7"),
                Slot::Id => Some("42"),
                _ => None,
            }
        }
    }

    #[test]
    fn renders_slots_through_the_encoder() {
        let template = Template::parse("/clubs/{club_id}/prospects/{id}").unwrap();
        let rendered = template
            .render(&Values, |value| value.replace(' ', "%20"))
            .unwrap();
        assert_eq!(rendered, "/clubs/club%207/prospects/42");
    }

    #[test]
    fn rendering_reports_the_missing_slot() {
        let template = Template::parse("/{client_id}").unwrap();
        assert_eq!(template.render(&Values, str::to_owned), Err(Slot::ClientId));
    }

    #[test]
    fn unknown_placeholders_are_rejected() {
        let error = Template::parse("/clubs/{club}").unwrap_err();
        assert!(error.contains("`{club}` is not a placeholder"), "{error}");
    }

    #[test]
    fn a_path_segment_holds_one_placeholder_with_text_around_it() {
        let template = Template::parse("/prospects/{client_id}{id}").unwrap();
        assert!(path_segments(&template).is_err());
        let template = Template::parse("/leads({id})").unwrap();
        let segments = path_segments(&template).unwrap();
        assert_eq!(segments[0].capture("leads(42)"), Some("42"));
        assert_eq!(segments[0].capture("leads()"), None);
        assert_eq!(segments[0].capture("contacts(42)"), None);
        let template = Template::parse("/prospects/{id}").unwrap();
        assert_eq!(
            path_segments(&template).unwrap(),
            vec![
                PathSegment::Literal("prospects".into()),
                PathSegment::Slot(Slot::Id)
            ]
        );
    }
}
