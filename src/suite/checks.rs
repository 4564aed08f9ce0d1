//! Each rule's check: a pure function from the session's observations to a finding.

use super::verdict::Finding;
use crate::connector::client::{Answer, CallError, ListFailure, ListOutcome, Saved};
use crate::connector::session::{Delivery, Observations};
use crate::connector::Exchange;
use crate::intouch::{OwnerCase, SourceCase};
use crate::model::{canonical_text, same_ignoring_case, Field, Record, RecordKind};
use crate::profile::{OperationKind, OperationRole};
use crate::profile::{OwnerReference, Profile, SourceReference};
use std::collections::BTreeMap;

/// What a check sees.
pub struct Context<'a> {
    /// The profile.
    pub profile: &'a Profile,
    /// What the session observed.
    pub observations: &'a Observations,
    /// Every exchange of the session.
    pub exchanges: &'a [Exchange],
    /// The run's settings that rules depend on.
    pub settings: &'a Settings,
}

/// Settings that rules depend on.
#[derive(Debug, Clone)]
pub struct Settings {
    /// ROB-002's budget for one call.
    pub latency_budget: std::time::Duration,
    /// Rules whose check is switched off (they pass unchecked): `spoke selftest
    /// --disable-check` uses this to show that every check is needed.
    pub disabled_checks: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            latency_budget: std::time::Duration::from_millis(2_000),
            disabled_checks: Vec::new(),
        }
    }
}

/// The check of a rule id, if the engine knows it.
pub fn check_for(rule: &str) -> Option<fn(&Context<'_>) -> Finding> {
    Some(match rule {
        "STAFF-001" => staff_list_exists,
        "STAFF-002" => staff_entries_complete,
        "STAFF-003" => staff_list_complete,
        "STAFF-004" => matched_owner_kept,
        "STAFF-005" => lookup_agrees,
        "LEAD-001" => prospect_save_returns_id,
        "LEAD-002" => unowned_accepted,
        "LEAD-003" => unmatched_owner_accepted,
        "LEAD-004" => prospect_update_in_place,
        "LEAD-005" => prospect_round_trip,
        "SRC-001" => source_list_exists,
        "SRC-002" => sources_match_ignoring_case,
        "SRC-003" => created_sources_persist,
        "SRC-004" => sourceless_accepted,
        "SRC-005" => create_only_accepts_all,
        "MEM-001" => member_save_returns_id,
        "MEM-002" => member_update_in_place,
        "SEC-001" => credentials_enforced,
        "SRC-006" => source_spellings_resolved,
        "STAFF-006" => owner_spellings_resolved,
        "ROB-001" => malformed_gets_4xx,
        "ROB-002" => within_latency_budget,
        "ROB-003" => no_transient_errors,
        "RETRY-001" => resend_creates_no_duplicate,
        "PROFILE-001" => behaves_as_declared,
        _ => return None,
    })
}

/// `text` as one sentence: its first letter a capital, a full stop at its end.
pub fn sentence(text: &str) -> String {
    let text = text.trim();
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// `finding` with its reason written as one sentence.
pub fn in_sentences(finding: Finding) -> Finding {
    match finding {
        Finding::Pass { reason, evidence } => Finding::Pass {
            reason: sentence(&reason),
            evidence,
        },
        Finding::Violated {
            reason,
            evidence,
            soft,
        } => Finding::Violated {
            reason: sentence(&reason),
            evidence,
            soft,
        },
        Finding::Inconclusive { reason } => Finding::Inconclusive {
            reason: sentence(&reason),
        },
        Finding::Error { reason, evidence } => Finding::Error {
            reason: sentence(&reason),
            evidence,
        },
    }
}

/// Collects what a check finds across many cases, then decides.
#[derive(Default)]
struct Tally {
    broken: Vec<(String, Vec<usize>)>,
    soft: Vec<(String, Vec<usize>)>,
    errors: Vec<(String, Vec<usize>)>,
    examined: Vec<usize>,
    cases: usize,
}

impl Tally {
    fn broken(&mut self, reason: String, evidence: Vec<usize>) {
        self.broken.push((reason, evidence));
    }

    fn error(&mut self, reason: String, evidence: Vec<usize>) {
        self.errors.push((reason, evidence));
    }

    fn finish(
        self,
        pass: impl FnOnce(usize) -> String,
        nothing: impl FnOnce() -> Finding,
    ) -> Finding {
        let join = |items: Vec<(String, Vec<usize>)>| {
            let evidence: Vec<usize> = items.iter().flat_map(|(_, e)| e.clone()).collect();
            let mut reasons: Vec<String> = items.into_iter().map(|(r, _)| r).collect();
            reasons.dedup();
            let extra = reasons.len().saturating_sub(3);
            reasons.truncate(3);
            let mut reason = reasons.join("; ");
            if extra > 0 {
                reason.push_str(&format!("; and {extra} more"));
            }
            (reason, evidence)
        };
        if !self.broken.is_empty() {
            let (reason, evidence) = join(self.broken);
            return Finding::Violated {
                reason,
                evidence,
                soft: false,
            };
        }
        if !self.errors.is_empty() {
            let (reason, evidence) = join(self.errors);
            return Finding::Error { reason, evidence };
        }
        if !self.soft.is_empty() {
            let (reason, evidence) = join(self.soft);
            return Finding::Violated {
                reason,
                evidence,
                soft: true,
            };
        }
        if self.cases == 0 {
            return nothing();
        }
        Finding::Pass {
            reason: pass(self.cases),
            evidence: self.examined,
        }
    }
}

/// A short description of a partner's error answer.
fn answer_summary(answer: &Answer) -> String {
    let detail = answer
        .json
        .as_ref()
        .and_then(|json| {
            json.pointer("/error/message")
                .or_else(|| json.get("message"))
                .or_else(|| json.get("error"))
                .and_then(|v| v.as_str().map(str::to_owned))
        })
        .or_else(|| answer.body_problem.clone());
    match detail {
        Some(detail) => format!("HTTP {} ({})", answer.status, shorten(&detail, 100)),
        None => format!("HTTP {}", answer.status),
    }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    format!("{cut}…")
}

/// Judges a write's answer: accepted (returned), rejected (broken) or unanswered (an error).
fn judge_write<'a>(
    tally: &mut Tally,
    result: &'a Result<Saved, CallError>,
    subject: &str,
) -> Option<&'a Saved> {
    tally.cases += 1;
    match result {
        Err(error) => {
            tally.error(
                format!("{subject} got no answer: {}", error.message),
                vec![error.exchange],
            );
            None
        }
        // A declared conflict is accepted, with the id of the record already there.
        Ok(saved) if !saved.accepted() => {
            tally.broken(
                format!("{subject} was rejected: {}", answer_summary(&saved.answer)),
                vec![saved.answer.exchange],
            );
            None
        }
        Ok(saved) => {
            tally.examined.push(saved.answer.exchange);
            Some(saved)
        }
    }
}

/// Whether a delivery's create was accepted; ids are judged by [`judge_create_with_id`] alone.
fn judge_accepted(tally: &mut Tally, delivery: &Delivery) -> bool {
    judge_write(tally, &delivery.create, &delivery.label).is_some()
}

/// Judges a write that must return the partner's id.
fn judge_id(tally: &mut Tally, result: &Result<Saved, CallError>, subject: &str) -> Option<String> {
    let saved = judge_write(tally, result, subject)?;
    if saved.id.is_none() {
        tally.broken(
            format!("{subject} returned no id"),
            vec![saved.answer.exchange],
        );
    }
    saved.id.clone()
}

/// Judges a delivery's create: accepted with an id, rejected, or unanswered.
fn judge_create_with_id(tally: &mut Tally, delivery: &Delivery) -> Option<String> {
    judge_id(
        tally,
        &delivery.create,
        &format!("saving {}", delivery.label),
    )
}

/// Which dimension of a prospect a rule judges.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dimension {
    Owner,
    Source,
}

/// Whether a rejection or loss of `delivery` is explained by its *other* dimension: every other
/// lead sharing that dimension's case was rejected or lost too, whatever the judged dimension.
/// Such failures belong to the other dimension's rule, so each fault fails the rules it breaks.
fn explained_elsewhere(context: &Context<'_>, delivery: &Delivery, judged: Dimension) -> bool {
    let Some((owner, source)) = delivery.case else {
        return false;
    };
    let mut others = context
        .observations
        .deliveries
        .iter()
        .filter(|d| !std::ptr::eq(*d, delivery))
        .filter(|d| match (judged, d.case) {
            (Dimension::Owner, Some((_, other_source))) => other_source == source,
            (Dimension::Source, Some((other_owner, _))) => other_owner == owner,
            (_, None) => false,
        })
        .peekable();
    others.peek().is_some() && others.all(failed)
}

fn rejected(delivery: &Delivery) -> bool {
    matches!(&delivery.create, Ok(saved) if !saved.accepted())
}

/// Whether `delivery` was rejected, or accepted and then lost.
fn failed(delivery: &Delivery) -> bool {
    rejected(delivery) || lost(delivery).is_some()
}

/// Whether an answer says the record is not there.
fn says_gone(answer: &Answer) -> bool {
    matches!(answer.status, 404 | 410)
}

/// How a delivery accepted with an id shows it was lost, and the exchange showing it: its
/// read-back answered that the record is not there or, without a read operation, its update did.
fn lost(delivery: &Delivery) -> Option<(String, usize)> {
    delivery.id()?;
    match (&delivery.read, &delivery.update) {
        (Some(Ok((answer, None))), _) if says_gone(answer) => Some((
            format!("reading it back answered {}", answer_summary(answer)),
            answer.exchange,
        )),
        (None, Some((_, Ok(saved)))) if says_gone(&saved.answer) => Some((
            format!(
                "its update by that id answered {}",
                answer_summary(&saved.answer)
            ),
            saved.answer.exchange,
        )),
        _ => None,
    }
}

/// Whether a partner's answer holds a record rather than an acknowledgement such as
/// `{"ok": true}` or `{"id": 5, "success": true}`: it carries a record's mandatory fields.
fn is_record(record: &Record, kind: RecordKind) -> bool {
    kind.mandatory_on_save()
        .iter()
        .all(|field| record.contains_key(field))
}

/// What the reason says of a value no read-back could show.
const NOT_CHECKED: &str =
    "not checked: no read operation, and the save answered an acknowledgement, not the record";

fn deliveries<'a>(context: &Context<'a>, kind: RecordKind) -> impl Iterator<Item = &'a Delivery> {
    context
        .observations
        .deliveries
        .iter()
        .filter(move |d| d.kind == kind)
}

fn list_head_finding(list: &ListOutcome, what: &str) -> Option<Finding> {
    match &list.failure {
        Some(ListFailure::NotDeclared) => Some(Finding::Violated {
            reason: format!("the profile declares no {what} call"),
            evidence: Vec::new(),
            soft: false,
        }),
        Some(
            failure @ ListFailure::BadPage {
                page: 1, exchange, ..
            },
        ) => Some(Finding::Violated {
            reason: list_failure(failure, what),
            evidence: vec![*exchange],
            soft: false,
        }),
        Some(ListFailure::Unreachable {
            page: 1,
            exchange,
            message,
            ..
        }) => Some(Finding::Error {
            reason: format!("the {what} call got no answer: {message}"),
            evidence: vec![*exchange],
        }),
        _ => None,
    }
}

/// A list that could not be read to its end, as a clause about `what` (e.g. "staff list").
fn list_failure(failure: &ListFailure, what: &str) -> String {
    match failure {
        ListFailure::NotDeclared => format!("the profile declares no {what} call"),
        ListFailure::Unreachable { page, message, .. } => {
            format!("page {page} of the {what} got no answer: {message}")
        }
        ListFailure::BadPage { page, message, .. } if message.starts_with("answered ") => {
            format!("page {page} of the {what} {message}")
        }
        ListFailure::BadPage { page, message, .. } => {
            format!("page {page} of the {what} answered with nothing usable: {message}")
        }
        ListFailure::Loop { page, message, .. } => {
            format!("the paging of the {what} does not end: at page {page}, {message}")
        }
        ListFailure::TooManyPages { cap } => format!("the {what} did not end within {cap} pages"),
        ListFailure::TooManyRecords { .. } | ListFailure::TooManyBytes { .. } => {
            format!("the {what} did not end: {}", failure.describe())
        }
        ListFailure::Incomplete { message, .. } => {
            format!("the pages of the {what} disagree with the partner's own count: {message}")
        }
    }
}

fn staff_list_exists(context: &Context<'_>) -> Finding {
    let Some(staff) = &context.observations.staff else {
        return not_run("the staff sync did not run");
    };
    if let Some(finding) = list_head_finding(&staff.list, "staff list") {
        return finding;
    }
    Finding::Pass {
        reason: format!(
            "the staff list answered {} staff over {} page(s)",
            staff.list.records.len(),
            staff.list.exchanges.len()
        ),
        evidence: staff.list.exchanges.iter().take(1).copied().collect(),
    }
}

fn not_run(reason: &str) -> Finding {
    Finding::Error {
        reason: reason.to_owned(),
        evidence: Vec::new(),
    }
}

fn depends_on_list(list: &ListOutcome, what: &str, rule: &str) -> Option<Finding> {
    list_head_finding(list, what).map(|_| Finding::Error {
        reason: format!("the {what} could not be read, so this rule cannot be judged (see {rule})"),
        evidence: list.exchanges.iter().take(1).copied().collect(),
    })
}

fn names(ids: &[String]) -> String {
    let shown: Vec<&str> = ids.iter().take(5).map(String::as_str).collect();
    match ids.len() {
        n if n > 5 => format!("{} and {} more", shown.join(", "), n - 5),
        _ => shown.join(", "),
    }
}

fn staff_entries_complete(context: &Context<'_>) -> Finding {
    let Some(staff) = &context.observations.staff else {
        return not_run("the staff sync did not run");
    };
    if let Some(finding) = depends_on_list(&staff.list, "staff list", "STAFF-001") {
        return finding;
    }
    if let Some((exchange, problem)) = staff.list.item_problems.first() {
        return Finding::Violated {
            reason: format!("a staff entry cannot be read: {problem}"),
            evidence: vec![*exchange],
            soft: false,
        };
    }
    let without_id = staff
        .list
        .records
        .iter()
        .filter(|r| !r.contains_key(&Field::Id))
        .count();
    if without_id > 0 {
        return Finding::Violated {
            reason: format!("{without_id} staff entries have no id"),
            evidence: staff.list.exchanges.clone(),
            soft: false,
        };
    }
    let without_email: Vec<String> = staff
        .list
        .records
        .iter()
        .filter(|r| !r.contains_key(&Field::Email))
        .filter_map(|r| r.get(&Field::Id).cloned())
        .collect();
    let total = staff.list.records.len();
    if !without_email.is_empty() && without_email.len() == total {
        return Finding::Violated {
            reason: "no staff entry has an email, so no owner can ever be matched".into(),
            evidence: staff.list.exchanges.clone(),
            soft: false,
        };
    }
    if !without_email.is_empty() {
        // Each such staff member's leads arrive unowned; the others still match.
        return Finding::Violated {
            reason: format!(
                "{} of {total} staff entries have no email, so their leads always arrive without an owner: {}",
                without_email.len(),
                names(&without_email)
            ),
            evidence: staff.list.exchanges.clone(),
            soft: true,
        };
    }
    Finding::Pass {
        reason: format!("all {total} staff entries have an id and an email"),
        evidence: staff.list.exchanges.iter().take(1).copied().collect(),
    }
}

fn staff_list_complete(context: &Context<'_>) -> Finding {
    let Some(staff) = &context.observations.staff else {
        return not_run("the staff sync did not run");
    };
    if let Some(finding) = depends_on_list(&staff.list, "staff list", "STAFF-001") {
        return finding;
    }
    list_complete(&staff.list, "staff")
}

fn list_complete(list: &ListOutcome, what: &str) -> Finding {
    match &list.failure {
        Some(ListFailure::Unreachable {
            page,
            exchange,
            message,
            timed_out: true,
        }) => {
            return Finding::Error {
                reason: format!("page {page} of the {what} list got no answer: {message}"),
                evidence: vec![*exchange],
            }
        }
        Some(failure) => {
            return Finding::Violated {
                reason: list_failure(failure, &format!("{what} list")),
                evidence: failure.exchange().into_iter().collect(),
                soft: false,
            }
        }
        None => {}
    }
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for record in &list.records {
        if let Some(id) = record.get(&Field::Id) {
            *seen.entry(id.as_str()).or_default() += 1;
        }
    }
    let repeated: Vec<String> = seen
        .iter()
        .filter(|(_, count)| **count > 1)
        .map(|(id, _)| (*id).to_owned())
        .collect();
    if !repeated.is_empty() {
        return Finding::Violated {
            reason: format!(
                "{} {what} id(s) appear more than once across pages: {}",
                repeated.len(),
                names(&repeated)
            ),
            evidence: list.exchanges.clone(),
            soft: false,
        };
    }
    Finding::Pass {
        reason: format!(
            "the {what} list of {} entries over {} page(s) ended, with no id twice",
            list.records.len(),
            list.exchanges.len()
        ),
        evidence: list.exchanges.clone(),
    }
}

/// Whether the owner read back is the one sent, as the partner reads owners back: by its
/// staff id (`expected_id`, which the sent email resolves to where owners are written by
/// email) or by email (the sent one, or `expected_email`, the staff list's, where owners are
/// written by id).
fn owner_matches(
    profile: &Profile,
    read_owner: Option<&String>,
    sent_owner: &str,
    expected_id: Option<&str>,
    expected_email: Option<&str>,
) -> bool {
    let written = profile.references.owner;
    match (read_owner, profile.references.owner_as_read()) {
        (Some(read), OwnerReference::Id) if written == OwnerReference::Id => read == sent_owner,
        (Some(read), OwnerReference::Id) => Some(read.as_str()) == expected_id,
        (Some(read), OwnerReference::Email) if written == OwnerReference::Email => {
            same_ignoring_case(read, sent_owner)
        }
        (Some(read), OwnerReference::Email) => {
            expected_email.is_some_and(|email| same_ignoring_case(read, email))
        }
        (None, _) => false,
    }
}

/// The staff list's email of the partner staff member `id`.
fn staff_email<'a>(context: &Context<'a>, id: Option<&str>) -> Option<&'a str> {
    let id = id?;
    context
        .observations
        .staff
        .as_ref()?
        .list
        .records
        .iter()
        .find(|record| record.get(&Field::Id).map(String::as_str) == Some(id))?
        .get(&Field::Email)
        .map(String::as_str)
}

/// The record as the partner holds it: the read-back if made, else the last save's answer when
/// that answer is the record (an acknowledgement is not a read-back).
fn stored_view(delivery: &Delivery) -> Option<(Record, usize)> {
    if let Some(Ok((answer, Some(record)))) = &delivery.read {
        return Some((record.clone(), answer.exchange));
    }
    let saved: Option<&Saved> = match &delivery.update {
        Some((_, Ok(saved))) if saved.accepted() => Some(saved),
        _ => delivery.create.as_ref().ok(),
    };
    let saved = saved?;
    let echoed = saved.echoed.as_ref()?;
    is_record(echoed, delivery.kind).then(|| (echoed.clone(), saved.answer.exchange))
}

fn read_failure(delivery: &Delivery) -> Option<(String, Vec<usize>, bool)> {
    match &delivery.read {
        Some(Err(error)) => Some((
            format!(
                "reading back {} got no answer: {}",
                delivery.label, error.message
            ),
            vec![error.exchange],
            true,
        )),
        Some(Ok((answer, None))) if !answer.is_success() => Some((
            format!(
                "reading back {} answered {}",
                delivery.label,
                answer_summary(answer)
            ),
            vec![answer.exchange],
            false,
        )),
        Some(Ok((answer, None))) => Some((
            format!(
                "the read-back of {} holds no readable record",
                delivery.label
            ),
            vec![answer.exchange],
            false,
        )),
        _ => None,
    }
}

/// Records a failed read-back of `delivery` (an error without an answer, else broken);
/// returns whether there was one.
fn read_failed(tally: &mut Tally, delivery: &Delivery) -> bool {
    let Some((reason, evidence, is_error)) = read_failure(delivery) else {
        return false;
    };
    if is_error {
        tally.error(reason, evidence);
    } else {
        tally.broken(reason, evidence);
    }
    true
}

/// What an accepted delivery shows of the record the partner holds.
enum Held {
    /// The record as read back (or as the save's answer gave it whole), and its exchange.
    Record(Record, usize),
    /// Nothing to judge it by: no read operation, and the save answered an acknowledgement.
    NotChecked,
    /// The lead was lost or could not be read back: already recorded in the tally.
    Judged,
}

/// What an accepted `delivery` shows of the record the partner holds; a loss or a failed
/// read-back is recorded in `tally` as the rule's own failure (or error).
fn held(tally: &mut Tally, delivery: &Delivery) -> Held {
    if let Some((how, exchange)) = lost(delivery) {
        tally.broken(
            format!("{} was accepted, then lost: {how}", delivery.label),
            vec![exchange],
        );
        return Held::Judged;
    }
    if read_failed(tally, delivery) {
        return Held::Judged;
    }
    match stored_view(delivery) {
        Some((record, exchange)) => Held::Record(record, exchange),
        None => Held::NotChecked,
    }
}

fn matched_owner_kept(context: &Context<'_>) -> Finding {
    if let Some(staff) = &context.observations.staff {
        if let Some(finding) = depends_on_list(&staff.list, "staff list", "STAFF-001") {
            return finding;
        }
    }
    let mut tally = Tally::default();
    let mut unchecked = 0;
    for delivery in deliveries(context, RecordKind::Prospect)
        .filter(|d| matches!(d.case, Some((OwnerCase::Matched, _))))
    {
        if failed(delivery) && explained_elsewhere(context, delivery, Dimension::Owner) {
            continue;
        }
        let Some(sent_owner) = delivery.sent.get(&Field::Owner).cloned() else {
            tally.cases += 1;
            tally.error(
                format!(
                    "the owner of {} could not be matched in the staff list (see STAFF-001..003)",
                    delivery.label
                ),
                Vec::new(),
            );
            continue;
        };
        if !judge_accepted(&mut tally, delivery) {
            continue;
        }
        let (stored, exchange) = match held(&mut tally, delivery) {
            Held::Record(stored, exchange) => (stored, exchange),
            Held::NotChecked => {
                unchecked += 1;
                continue;
            }
            Held::Judged => continue,
        };
        tally.examined.push(exchange);
        let expected_id = delivery.expected_owner.as_deref();
        let matches = owner_matches(
            context.profile,
            stored.get(&Field::Owner),
            &sent_owner,
            expected_id,
            staff_email(context, expected_id),
        );
        if !matches {
            tally.broken(
                format!(
                    "{} was sent with owner `{sent_owner}` but reads back with {}",
                    delivery.label,
                    stored
                        .get(&Field::Owner)
                        .map(|o| format!("owner `{o}`"))
                        .unwrap_or_else(|| "no owner".into())
                ),
                vec![exchange],
            );
        }
    }
    let missing = context.observations.world.missing.clone();
    tally.finish(
        |n| match unchecked {
            0 => format!("{n} prospect(s) with a matched owner were accepted and kept their owner"),
            _ => format!(
                "{n} prospect(s) with a matched owner were accepted, and the owner of {unchecked} is {NOT_CHECKED}"
            ),
        },
        || Finding::Inconclusive {
            reason: missing
                .first()
                .cloned()
                .unwrap_or_else(|| "no prospect with a matched owner could be built".into()),
        },
    )
}

fn lookup_agrees(context: &Context<'_>) -> Finding {
    let Some(staff) = &context.observations.staff else {
        return not_run("the staff sync did not run");
    };
    // The list is what the lookup must agree with: unread, nothing can be said.
    if let Some(finding) = depends_on_list(&staff.list, "staff list", "STAFF-001") {
        return finding;
    }
    let list_whole = staff.list.failure.is_none();
    let mut tally = Tally::default();
    for lookup in &staff.lookups {
        tally.cases += 1;
        match (&lookup.result, &lookup.expected_id) {
            (Err(message), _) if lookup.no_answer => tally.error(
                format!("the lookup of `{}` got no answer: {message}", lookup.email),
                vec![lookup.exchange],
            ),
            (Err(message), _) => tally.broken(
                format!("the lookup of `{}` {message}", lookup.email),
                vec![lookup.exchange],
            ),
            (Ok(found), expected) if found == expected => tally.examined.push(lookup.exchange),
            (Ok(Some(found)), Some(expected)) => tally.broken(
                format!(
                    "the lookup of `{}` answered staff `{found}`, but the list has `{expected}`",
                    lookup.email
                ),
                vec![lookup.exchange],
            ),
            (Ok(Some(found)), None) if !list_whole => tally.error(
                format!(
                    "the lookup of `{}` answered staff `{found}`, who may be on the part of the staff list that could not be read (see STAFF-003)",
                    lookup.email
                ),
                vec![lookup.exchange],
            ),
            (Ok(Some(found)), None) => tally.broken(
                format!(
                    "the lookup of `{}` answered staff `{found}`, whom the list does not have under that email",
                    lookup.email
                ),
                vec![lookup.exchange],
            ),
            (Ok(None), Some(expected)) => tally.broken(
                format!(
                    "the lookup of `{}` answered none, but the list has staff `{expected}` (emails compare ignoring case)",
                    lookup.email
                ),
                vec![lookup.exchange],
            ),
            (Ok(None), None) => unreachable!("covered by the equal case"),
        }
    }
    tally.finish(
        |n| format!("{n} lookup(s) agreed with the list, and unknown emails were answered none"),
        || not_run("no lookup was made"),
    )
}

fn is_happy(delivery: &Delivery, profile: &Profile) -> bool {
    let Some((owner, source)) = delivery.case else {
        return false;
    };
    let owner_ok = if profile.capabilities.staff_owner {
        owner == OwnerCase::Matched
    } else {
        owner == OwnerCase::None
    };
    let source_ok = if profile.capabilities.lead_source {
        matches!(
            source,
            SourceCase::ExistingOtherCase | SourceCase::ExistingNonAscii
        )
    } else {
        source == SourceCase::None
    };
    owner_ok && source_ok
}

fn save_returns_id(context: &Context<'_>, kind: RecordKind) -> Finding {
    let mut tally = Tally::default();
    for delivery in deliveries(context, kind) {
        let required = kind == RecordKind::Member || is_happy(delivery, context.profile);
        let accepted = matches!(&delivery.create, Ok(saved) if saved.accepted());
        // Rejections of leads without owner or source are judged by their own rules.
        if accepted || required {
            judge_create_with_id(&mut tally, delivery);
        }
    }
    let unanswered: Vec<usize> = deliveries(context, kind)
        .filter_map(|d| d.create.as_ref().err().map(|e| e.exchange))
        .collect();
    tally.finish(
        |n| format!("{n} save(s) returned the partner's id"),
        || {
            if unanswered.is_empty() {
                Finding::Inconclusive {
                    reason: format!("no {kind} was accepted, so no id could be checked"),
                }
            } else {
                Finding::Error {
                    reason: format!("no {kind} save got an answer"),
                    evidence: unanswered,
                }
            }
        },
    )
}

fn prospect_save_returns_id(context: &Context<'_>) -> Finding {
    save_returns_id(context, RecordKind::Prospect)
}

fn member_save_returns_id(context: &Context<'_>) -> Finding {
    save_returns_id(context, RecordKind::Member)
}

fn absent_accepted(
    context: &Context<'_>,
    select: impl Fn(&Delivery) -> bool,
    field: Field,
    what: &str,
) -> Finding {
    let judged = if field == Field::Owner {
        Dimension::Owner
    } else {
        Dimension::Source
    };
    let mut tally = Tally::default();
    let mut unchecked = 0;
    for delivery in deliveries(context, RecordKind::Prospect).filter(|d| select(d)) {
        if failed(delivery) && explained_elsewhere(context, delivery, judged) {
            continue;
        }
        if delivery.sent.contains_key(&field) {
            tally.cases += 1;
            tally.error(
                format!(
                    "{} was sent with {} {field} the run did not intend",
                    delivery.label,
                    if field == Field::Owner { "an" } else { "a" }
                ),
                Vec::new(),
            );
            continue;
        }
        if !judge_accepted(&mut tally, delivery) {
            continue;
        }
        // Accepted without an id is LEAD-001's question, and leaves nothing to read back.
        if delivery.id().is_none() {
            continue;
        }
        // Whatever the partner assigns (a queue, a default owner, anyone) is its own choice:
        // the guide says "assign them correctly as you desire". Only keeping the lead counts.
        if let Some((how, exchange)) = lost(delivery) {
            tally.broken(
                format!("{} was accepted, then lost: {how}", delivery.label),
                vec![exchange],
            );
            continue;
        }
        if read_failed(&mut tally, delivery) {
            continue;
        }
        match (&delivery.read, &delivery.update) {
            (Some(Ok((answer, Some(_)))), _) => tally.examined.push(answer.exchange),
            (None, Some((_, Ok(saved)))) if saved.answer.is_success() => {
                tally.examined.push(saved.answer.exchange)
            }
            _ => unchecked += 1,
        }
    }
    tally.finish(
        |n| match unchecked {
            0 => format!("{n} {what} were accepted and kept"),
            _ => format!(
                "{n} {what} were accepted, and whether {unchecked} of them were kept is not checked: no read operation, and no update by their id succeeded"
            ),
        },
        || not_run("no such prospect was delivered"),
    )
}

fn unowned_accepted(context: &Context<'_>) -> Finding {
    absent_accepted(
        context,
        |d| matches!(d.case, Some((OwnerCase::None, _))),
        Field::Owner,
        "prospect(s) with no owner",
    )
}

fn unmatched_owner_accepted(context: &Context<'_>) -> Finding {
    absent_accepted(
        context,
        |d| matches!(d.case, Some((OwnerCase::Unmatched, _))),
        Field::Owner,
        "prospect(s) whose owner has no match",
    )
}

fn sourceless_accepted(context: &Context<'_>) -> Finding {
    absent_accepted(
        context,
        |d| matches!(d.case, Some((_, SourceCase::None))),
        Field::Source,
        "prospect(s) with no source",
    )
}

fn update_in_place(context: &Context<'_>, kind: RecordKind) -> Finding {
    let mut tally = Tally::default();
    for delivery in deliveries(context, kind) {
        let Some(id) = delivery.id() else { continue };
        let Some((changed, update)) = &delivery.update else {
            continue;
        };
        tally.cases += 1;
        match update {
            Err(error) => {
                tally.error(
                    format!(
                        "the update of {} got no answer: {}",
                        delivery.label, error.message
                    ),
                    vec![error.exchange],
                );
                continue;
            }
            Ok(saved) if !saved.accepted() => {
                tally.broken(
                    format!(
                        "updating {} with id `{id}` answered {}",
                        delivery.label,
                        answer_summary(&saved.answer)
                    ),
                    vec![saved.answer.exchange],
                );
                continue;
            }
            Ok(saved) => {
                tally.examined.push(saved.answer.exchange);
                if let Some(new_id) = saved.id.as_deref().filter(|new_id| *new_id != id) {
                    tally.broken(
                        format!(
                            "updating {} with id `{id}` answered another id, `{new_id}`, so it created a duplicate",
                            delivery.label
                        ),
                        vec![saved.answer.exchange],
                    );
                    continue;
                }
            }
        }
        if read_failed(&mut tally, delivery) {
            continue;
        }
        // The update changes the last name: a partner that never answers it cannot show it.
        let last_name_read = context
            .profile
            .codec(delivery.kind)
            .read_path(Field::LastName)
            .is_some();
        if let (Some(Ok((answer, Some(read)))), true) = (&delivery.read, last_name_read) {
            tally.examined.push(answer.exchange);
            let expected = changed.get(&Field::LastName);
            // Still the old value: the update went elsewhere. Any other difference is how the
            // value is stored (LEAD-005's question), not whether the update arrived.
            let before = delivery.sent.get(&Field::LastName);
            let read_value = read.get(&Field::LastName);
            // Compared as SmartMatch compares names, so a partner storing names in capitals
            // still shows whether the update arrived.
            let alike = |a: Option<&String>, b: Option<&String>| match (a, b) {
                (Some(a), Some(b)) => same_ignoring_case(a, b),
                _ => false,
            };
            if read_value.is_none() || (alike(read_value, before) && !alike(read_value, expected)) {
                tally.broken(
                    format!(
                        "after the update, {} reads back with last name {:?}, not {:?}: the update did not reach the record",
                        delivery.label,
                        read.get(&Field::LastName).map(String::as_str).unwrap_or("(none)"),
                        expected.map(String::as_str).unwrap_or("(none)")
                    ),
                    vec![answer.exchange],
                );
            }
        }
    }
    tally.finish(
        |n| format!("{n} update(s) by the partner's id changed the record in place"),
        || Finding::Error {
            reason: format!(
                "no {kind} came back with an id, so no update could be tried (see {})",
                if kind == RecordKind::Member {
                    "MEM-001"
                } else {
                    "LEAD-001"
                }
            ),
            evidence: Vec::new(),
        },
    )
}

fn prospect_update_in_place(context: &Context<'_>) -> Finding {
    update_in_place(context, RecordKind::Prospect)
}

fn member_update_in_place(context: &Context<'_>) -> Finding {
    update_in_place(context, RecordKind::Member)
}

const ROUND_TRIP_MUST: [Field; 5] = [
    Field::FirstName,
    Field::LastName,
    Field::Type,
    Field::Status,
    Field::Email,
];

/// What alone tells `got` from `sent`, when the two are the same name as SmartMatch compares
/// names: letter case, surrounding white space, composed or decomposed accents. `None` when
/// they differ otherwise (transliterated, truncated, characters lost) or not at all.
fn name_difference(sent: &str, got: &str) -> Option<String> {
    if sent == got || !same_ignoring_case(sent, got) {
        return None;
    }
    let cased = canonical_text(sent) != canonical_text(got);
    let spaced = sent.trim() != sent || got.trim() != got;
    let recomposed = !cased && sent.trim() != got.trim();
    let differences: Vec<&str> = [
        (cased, "letter case"),
        (spaced, "surrounding white space"),
        (recomposed, "the composition of accents (NFC/NFD)"),
    ]
    .into_iter()
    .filter_map(|(differs, what)| differs.then_some(what))
    .collect();
    Some(differences.join(" and "))
}

fn prospect_round_trip(context: &Context<'_>) -> Finding {
    let mut tally = Tally::default();
    for delivery in deliveries(context, RecordKind::Prospect) {
        if delivery.id().is_none() {
            continue;
        }
        if read_failed(&mut tally, delivery) {
            tally.cases += 1;
            continue;
        }
        let Some(Ok((answer, Some(read)))) = &delivery.read else {
            continue;
        };
        tally.cases += 1;
        tally.examined.push(answer.exchange);
        let sent = delivery.latest_sent();
        let codec = context.profile.codec(RecordKind::Prospect);
        for (field, value) in sent {
            // A field only written (the partner's answers do not carry it) cannot read back.
            if matches!(field, Field::Owner | Field::Source | Field::Id)
                || codec.read_path(*field).is_none()
            {
                continue;
            }
            let got = read.get(field);
            // Whether the update reached the record is LEAD-004's question.
            let before_update = delivery.sent.get(field);
            let same = match (field, got) {
                (Field::Email, Some(got)) => same_ignoring_case(got, value),
                (_, Some(got)) => got == value || Some(got) == before_update,
                (_, None) => false,
            };
            if same {
                continue;
            }
            // A name that differs only as SmartMatch ignores (letter case, surrounding white
            // space, composed or decomposed accents) still matches: a warning, not a failure.
            let ignorable = match (field, got) {
                (Field::FirstName | Field::LastName, Some(got)) => [Some(value), before_update]
                    .into_iter()
                    .flatten()
                    .find_map(|sent| name_difference(sent, got)),
                _ => None,
            };
            if let (Some(difference), Some(got)) = (ignorable, got) {
                tally.soft.push((
                    format!(
                        "{} was sent with {field} {value:?} and reads back as {got:?}, which differs only in {difference} (SmartMatch compares names ignoring it)",
                        delivery.label
                    ),
                    vec![answer.exchange],
                ));
                continue;
            }
            let message = format!(
                "{} was sent with {field} {value:?} but reads back with {}",
                delivery.label,
                got.map(|g| format!("{g:?}"))
                    .unwrap_or_else(|| "none".into())
            );
            if ROUND_TRIP_MUST.contains(field) {
                tally.broken(message, vec![answer.exchange]);
            } else {
                tally.soft.push((message, vec![answer.exchange]));
            }
        }
    }
    tally.finish(
        |n| format!("{n} prospect(s) read back with their names, type, status, email and contact fields as sent"),
        || Finding::Error {
            reason: "no prospect came back with an id, so none could be read back (see LEAD-001)"
                .into(),
            evidence: Vec::new(),
        },
    )
}

fn source_list_exists(context: &Context<'_>) -> Finding {
    let Some(list) = context
        .observations
        .sources
        .as_ref()
        .and_then(|s| s.list.as_ref())
    else {
        return not_run("the lead-source sync did not run");
    };
    if let Some(finding) = list_head_finding(list, "lead-source list") {
        return finding;
    }
    if let Some(failure) = &list.failure {
        return Finding::Violated {
            reason: list_failure(failure, "lead-source list"),
            evidence: failure.exchange().into_iter().collect(),
            soft: false,
        };
    }
    if let Some((exchange, problem)) = list.item_problems.first() {
        return Finding::Violated {
            reason: format!("a lead source cannot be read: {problem}"),
            evidence: vec![*exchange],
            soft: false,
        };
    }
    let unnamed = list
        .records
        .iter()
        .filter(|r| !r.contains_key(&Field::Name) || !r.contains_key(&Field::Id))
        .count();
    if unnamed > 0 {
        return Finding::Violated {
            reason: format!("{unnamed} lead source(s) lack a name or an id"),
            evidence: list.exchanges.clone(),
            soft: false,
        };
    }
    Finding::Pass {
        reason: format!(
            "the list has {} lead sources, each with an id and a name",
            list.records.len()
        ),
        evidence: list.exchanges.iter().take(1).copied().collect(),
    }
}

fn count_named(list: &ListOutcome, name: &str) -> usize {
    list.records
        .iter()
        .filter(|r| {
            r.get(&Field::Name)
                .is_some_and(|n| same_ignoring_case(n, name))
        })
        .count()
}

fn source_matches(profile: &Profile, read: Option<&String>, expected: &(String, String)) -> bool {
    match (read, profile.references.source_as_read()) {
        (Some(read), SourceReference::Id) => *read == expected.0,
        (Some(read), SourceReference::Name) => same_ignoring_case(read, &expected.1),
        (None, _) => false,
    }
}

fn sources_match_ignoring_case(context: &Context<'_>) -> Finding {
    let Some(sync) = &context.observations.sources else {
        return not_run("the lead-source sync did not run");
    };
    if let Some(list) = &sync.list {
        if let Some(finding) = depends_on_list(list, "lead-source list", "SRC-001") {
            return finding;
        }
    }
    let mut tally = Tally::default();
    let mut unchecked = 0;
    for delivery in deliveries(context, RecordKind::Prospect).filter(|d| {
        matches!(
            d.case,
            Some((
                _,
                SourceCase::ExistingOtherCase | SourceCase::ExistingNonAscii
            ))
        )
    }) {
        if failed(delivery) && explained_elsewhere(context, delivery, Dimension::Source) {
            continue;
        }
        let Some(expected) = &delivery.expected_source else {
            tally.cases += 1;
            tally.error(
                format!(
                    "the source of {} was not matched in the list",
                    delivery.label
                ),
                Vec::new(),
            );
            continue;
        };
        let sent = delivery
            .sent
            .get(&Field::Source)
            .cloned()
            .unwrap_or_default();
        if !judge_accepted(&mut tally, delivery) {
            continue;
        }
        match held(&mut tally, delivery) {
            Held::Judged => continue,
            Held::NotChecked => unchecked += 1,
            Held::Record(stored, exchange) => {
                tally.examined.push(exchange);
                if !source_matches(context.profile, stored.get(&Field::Source), expected) {
                    tally.broken(
                        format!(
                            "{} was sent with source `{sent}` (the partner's `{}`) but reads back with {}",
                            delivery.label,
                            expected.1,
                            stored
                                .get(&Field::Source)
                                .map(|s| format!("source `{s}`"))
                                .unwrap_or_else(|| "no source".into())
                        ),
                        vec![exchange],
                    );
                }
            }
        }
        if let Some(relist) = &sync.relist {
            let count = count_named(relist, &expected.1);
            if count > 1 {
                tally.broken(
                    format!(
                        "the list now has {count} sources named like `{}`: a duplicate was created for `{sent}`",
                        expected.1
                    ),
                    relist.exchanges.clone(),
                );
            }
        }
    }
    let missing = context.observations.world.missing.clone();
    tally.finish(
        |n| match unchecked {
            0 => format!("{n} prospect(s) with a source in other letter case kept the partner's source, and none was duplicated"),
            _ => format!("{n} prospect(s) with a source in other letter case were accepted and none was duplicated, and the source of {unchecked} is {NOT_CHECKED}"),
        },
        || Finding::Inconclusive {
            reason: missing
                .iter()
                .find(|m| m.contains("lead source"))
                .cloned()
                .unwrap_or_else(|| "no prospect with an existing source could be built".into()),
        },
    )
}

fn created_call(
    tally: &mut Tally,
    name: &str,
    created: &Result<Saved, CallError>,
) -> Option<String> {
    judge_id(tally, created, &format!("creating source `{name}`"))
}

fn created_sources_persist(context: &Context<'_>) -> Finding {
    let Some(sync) = &context.observations.sources else {
        return not_run("the lead-source sync did not run");
    };
    let mut tally = Tally::default();
    let world = &context.observations.world;
    let listed_before = |id: &str| {
        sync.list
            .iter()
            .flat_map(|list| &list.records)
            .any(|r| r.get(&Field::Id).is_some_and(|known| known == id))
    };
    let reads = match sync.relist_reads {
        0 | 1 => String::new(),
        n => format!(" (it was read {n} times over {} ms)", sync.relist_waited_ms),
    };
    let mut idempotent = 0;
    for entry in &sync.entries {
        let Some(created) = &entry.created else {
            continue;
        };
        let name = &world.sources[entry.source].name;
        let Some(id) = created_call(&mut tally, name, created) else {
            continue;
        };
        let Some(relist) = &sync.relist else { continue };
        if relist.failure.is_some() {
            tally.error(
                "the lead-source list could not be read again".into(),
                relist.exchanges.clone(),
            );
            continue;
        }
        let named = count_named(relist, name);
        let listed_as = relist
            .records
            .iter()
            .find(|r| r.get(&Field::Id) == Some(&id))
            .map(|r| r.get(&Field::Name).cloned().unwrap_or_default());
        match listed_as {
            None if named > 0 => tally.broken(
                format!(
                    "creating source `{name}` answered id `{id}`, but the list afterwards has `{name}` under another id{reads}"
                ),
                relist.exchanges.clone(),
            ),
            None => tally.broken(
                format!(
                    "the created source `{name}` (id `{id}`) is not in the list afterwards{reads}"
                ),
                relist.exchanges.clone(),
            ),
            Some(listed) if !same_ignoring_case(&listed, name) && listed_before(&id) => tally
                .broken(
                    format!(
                        "creating source `{name}` answered id `{id}`, which is the existing source `{listed}`"
                    ),
                    relist.exchanges.clone(),
                ),
            // Listed under another name, a second sync finds no `name` and creates it again:
            // fine only when the create answers the same source for the same name.
            Some(listed) if !same_ignoring_case(&listed, name) => match &entry.recreated {
                Some(Ok(again)) if again.answer.is_success() && again.id.as_deref() == Some(&id) => {
                    idempotent += 1;
                    tally.examined.push(again.answer.exchange);
                }
                Some(Err(error)) => tally.error(
                    format!(
                        "creating source `{name}` a second time got no answer: {}",
                        error.message
                    ),
                    vec![error.exchange],
                ),
                again => {
                    let answered = match again {
                        Some(Ok(again)) if again.answer.is_success() => match &again.id {
                            Some(other) => format!("id `{other}`"),
                            None => "no id".to_owned(),
                        },
                        Some(Ok(again)) => answer_summary(&again.answer),
                        _ => "nothing".to_owned(),
                    };
                    let mut evidence = relist.exchanges.clone();
                    if let Some(Ok(again)) = again {
                        evidence.push(again.answer.exchange);
                    }
                    tally.broken(
                        format!(
                            "the list names the created source `{name}` (id `{id}`) `{listed}`, so a second sync would create `{name}` again, and creating it again answered {answered}"
                        ),
                        evidence,
                    );
                }
            },
            Some(_) if named > 1 => tally.broken(
                format!("the list has {named} sources named `{name}` after one create"),
                relist.exchanges.clone(),
            ),
            Some(_) => tally.examined.extend(relist.exchanges.iter().copied()),
        }
        // The id the create answered is the one leads go out with: each must read back with it.
        for delivery in deliveries(context, RecordKind::Prospect).filter(|d| {
            matches!(d.case, Some((_, SourceCase::New)))
                && d.expected_source
                    .as_ref()
                    .is_some_and(|(sid, _)| *sid == id)
        }) {
            if failed(delivery) {
                continue;
            }
            let (Some((stored, exchange)), Some(expected)) =
                (stored_view(delivery), &delivery.expected_source)
            else {
                continue;
            };
            if !source_matches(context.profile, stored.get(&Field::Source), expected) {
                tally.broken(
                    format!(
                        "{} was sent with the created source `{name}` (id `{id}`) but reads back with {}",
                        delivery.label,
                        stored
                            .get(&Field::Source)
                            .map(|s| format!("source `{s}`"))
                            .unwrap_or_else(|| "no source".into())
                    ),
                    vec![exchange],
                );
            }
        }
    }
    let waited = match sync.relist_reads {
        0 | 1 => String::new(),
        _ => format!(" after {} ms", sync.relist_waited_ms),
    };
    tally.finish(
        |n| match idempotent {
            0 => format!(
                "{n} created source(s) got an id that the list gives their name{waited}, each listed once, so a second sync creates nothing"
            ),
            k => format!(
                "{n} created source(s) got an id that the list shows{waited}, and the {k} listed under another name were answered the same id when created again"
            ),
        },
        || Finding::Inconclusive {
            reason: "every InTouch source matched an existing one, so nothing was created".into(),
        },
    )
}

fn create_only_accepts_all(context: &Context<'_>) -> Finding {
    let Some(sync) = &context.observations.sources else {
        return not_run("the lead-source sync did not run");
    };
    let mut tally = Tally::default();
    for entry in &sync.entries {
        if let Some(created) = &entry.created {
            created_call(
                &mut tally,
                &context.observations.world.sources[entry.source].name,
                created,
            );
        }
    }
    tally.finish(
        |n| format!("all {n} InTouch source(s) were created, each with an id"),
        || not_run("no source was sent"),
    )
}

fn credentials_enforced(context: &Context<'_>) -> Finding {
    let mut tally = Tally::default();
    for probe in &context.observations.probes.security {
        tally.cases += 1;
        match &probe.result {
            Err(error) => tally.error(
                format!("{} got no answer: {}", probe.label, error.message),
                vec![error.exchange],
            ),
            Ok(answer) if matches!(answer.status, 401 | 403) => {
                tally.examined.push(answer.exchange)
            }
            Ok(answer) if answer.is_success() => tally.broken(
                format!("{} was accepted ({})", probe.label, answer_summary(answer)),
                vec![answer.exchange],
            ),
            Ok(answer) => tally.broken(
                format!(
                    "{} answered {}, not 401 or 403",
                    probe.label,
                    answer_summary(answer)
                ),
                vec![answer.exchange],
            ),
        }
    }
    // Refused must also mean unchanged: the record the refused updates named reads back as it
    // was last saved with good credentials.
    let mut unchanged = None;
    if let Some(target) = &context.observations.probes.security_target {
        let refused: Vec<usize> = context
            .observations
            .probes
            .security
            .iter()
            .filter(|probe| probe.writes)
            .filter_map(|probe| probe.result.as_ref().ok())
            .filter(|answer| !answer.is_success())
            .map(|answer| answer.exchange)
            .collect();
        match &target.read {
            None => {
                unchanged = Some(format!(
                "whether the refused updates of {} changed it is not checked: no read operation",
                target.label
            ))
            }
            Some(Err(error)) => tally.error(
                format!(
                    "reading back {} after the credential probes got no answer: {}",
                    target.label, error.message
                ),
                vec![error.exchange],
            ),
            Some(Ok((answer, None))) => tally.error(
                format!(
                    "reading back {} after the credential probes answered {}",
                    target.label,
                    answer_summary(answer)
                ),
                vec![answer.exchange],
            ),
            Some(Ok((answer, Some(record)))) => {
                let got = record.get(&target.field);
                let changed = got.is_some_and(|got| same_ignoring_case(got, &target.probed));
                // An update that was accepted is already a failure above.
                if changed && !refused.is_empty() {
                    let mut evidence = refused.clone();
                    evidence.push(answer.exchange);
                    tally.broken(
                        format!(
                            "an update of {} sent without or with wrong credentials was stored although it was refused: it reads back with {} {:?}, not {:?}",
                            target.label, target.field, target.probed, target.kept
                        ),
                        evidence,
                    );
                } else if !changed {
                    tally.examined.push(answer.exchange);
                    unchanged = Some(format!("{} read back unchanged", target.label));
                }
            }
        }
    }
    tally.finish(
        |n| match unchanged {
            Some(note) => format!(
                "{n} request(s) without or with wrong credentials were refused with 401/403, and {note}"
            ),
            None => format!(
                "{n} request(s) without or with wrong credentials were refused with 401/403"
            ),
        },
        || not_run("no request without credentials was made"),
    )
}

fn malformed_gets_4xx(context: &Context<'_>) -> Finding {
    match &context.observations.probes.malformed {
        None => not_run("no malformed body was sent"),
        Some(Err(error)) => Finding::Error {
            reason: format!("the malformed body got no answer: {}", error.message),
            evidence: vec![error.exchange],
        },
        Some(Ok(answer)) if (400..500).contains(&answer.status) => Finding::Pass {
            reason: format!("a malformed body was answered {}", answer_summary(answer)),
            evidence: vec![answer.exchange],
        },
        Some(Ok(answer)) => Finding::Violated {
            reason: format!(
                "a malformed body was answered {}, not a 4xx with a reason",
                answer_summary(answer)
            ),
            evidence: vec![answer.exchange],
            soft: false,
        },
    }
}

/// Exchanges that reached the partner as the Connector (not the probes with bad credentials).
fn partner_calls<'a>(context: &Context<'a>) -> impl Iterator<Item = &'a Exchange> {
    context.exchanges.iter().filter(|e| e.status.is_some())
}

fn within_latency_budget(context: &Context<'_>) -> Finding {
    let budget = context.settings.latency_budget.as_millis() as u64;
    let mut slow: Vec<&Exchange> = partner_calls(context)
        .filter(|e| e.duration_ms > budget)
        .collect();
    let answered = partner_calls(context).count();
    if answered == 0 {
        return not_run("no call was answered");
    }
    if slow.is_empty() {
        // No timing in the reason: verdict text must replay identically from the seed.
        return Finding::Pass {
            reason: format!("all {answered} calls answered within {budget} ms"),
            evidence: Vec::new(),
        };
    }
    slow.sort_by_key(|e| std::cmp::Reverse(e.duration_ms));
    let worst = slow[0];
    Finding::Violated {
        reason: format!(
            "{} of {answered} calls took longer than {budget} ms, and the slowest ({}, {}) took {} ms",
            slow.len(),
            worst.operation.as_deref().unwrap_or(&worst.method),
            worst.purpose,
            worst.duration_ms
        ),
        evidence: slow.iter().take(5).map(|e| e.id).collect(),
        soft: false,
    }
}

fn no_transient_errors(context: &Context<'_>) -> Finding {
    let retried: Vec<usize> = context
        .exchanges
        .iter()
        .filter_map(|e| e.retry_of)
        .collect();
    let answered = partner_calls(context).count();
    if answered == 0 {
        return not_run("no call was answered");
    }
    if retried.is_empty() {
        return Finding::Pass {
            reason: format!("none of {answered} calls was answered 503 or 429"),
            evidence: Vec::new(),
        };
    }
    Finding::Violated {
        reason: format!(
            "{} of {answered} calls were answered 503/429 and had to be retried",
            retried.len()
        ),
        evidence: retried.into_iter().take(5).collect(),
        soft: false,
    }
}

fn resend_creates_no_duplicate(context: &Context<'_>) -> Finding {
    let Some(probe) = &context.observations.probes.retry else {
        let unanswered: Vec<usize> = context
            .observations
            .deliveries
            .iter()
            .filter_map(|d| d.create.as_ref().err().map(|e| e.exchange))
            .collect();
        if !unanswered.is_empty() {
            return Finding::Error {
                reason: "no save got an answer, so no resend could be tried".into(),
                evidence: unanswered,
            };
        }
        return Finding::Inconclusive {
            reason: "no record with an external id was saved, so no resend could be tried".into(),
        };
    };
    match &probe.resend {
        Err(error) => Finding::Error {
            reason: format!("the resend got no answer: {}", error.message),
            evidence: vec![error.exchange],
        },
        // The profile's conflict answer names the record it holds: it must be the first one.
        Ok(saved) if saved.conflict => match saved.id.as_deref() {
            Some(id) if id == probe.first_id => Finding::Pass {
                reason: format!(
                    "resending {} was answered with the declared conflict, naming the first record `{id}`: no duplicate",
                    probe.label
                ),
                evidence: vec![saved.answer.exchange],
            },
            Some(id) => Finding::Violated {
                reason: format!(
                    "resending {} was answered with the declared conflict naming `{id}`, not the first record `{}`",
                    probe.label, probe.first_id
                ),
                evidence: vec![saved.answer.exchange],
                soft: false,
            },
            None => Finding::Violated {
                reason: format!(
                    "resending {} was answered with the declared conflict, but it names no record",
                    probe.label
                ),
                evidence: vec![saved.answer.exchange],
                soft: false,
            },
        },
        // Without a declared conflict, a plain 409 still says "already there".
        Ok(saved) if saved.answer.status == 409 => Finding::Pass {
            reason: "the resend was refused as a conflict (409), so no duplicate was made".into(),
            evidence: vec![saved.answer.exchange],
        },
        Ok(saved) if !saved.answer.is_success() => Finding::Violated {
            reason: format!(
                "resending {} answered {}",
                probe.label,
                answer_summary(&saved.answer)
            ),
            evidence: vec![saved.answer.exchange],
            soft: false,
        },
        Ok(saved) => match saved.id.as_deref() {
            Some(id) if id == probe.first_id => Finding::Pass {
                reason: format!(
                    "resending {} with the same external id answered the same id, `{id}`",
                    probe.label
                ),
                evidence: vec![saved.answer.exchange],
            },
            Some(id) => Finding::Violated {
                reason: format!(
                    "resending {} with the same external id created a second record, `{id}` beside `{}`",
                    probe.label, probe.first_id
                ),
                evidence: vec![saved.answer.exchange],
                soft: false,
            },
            None => Finding::Error {
                reason: "the resend was accepted without an id, so a duplicate cannot be told (see LEAD-001)".into(),
                evidence: vec![saved.answer.exchange],
            },
        },
    }
}

/// The exchanges of writes that carried the partner's id of a record: the updates.
fn writes_by_id(observations: &Observations) -> Vec<usize> {
    let exchange = |result: &Result<Saved, CallError>| match result {
        Ok(saved) => saved.answer.exchange,
        Err(error) => error.exchange,
    };
    observations
        .deliveries
        .iter()
        .filter_map(|d| d.update.as_ref().map(|(_, result)| exchange(result)))
        .collect()
}

fn behaves_as_declared(context: &Context<'_>) -> Finding {
    if partner_calls(context).next().is_none() {
        return not_run("no call was answered");
    }
    let by_id = writes_by_id(context.observations);
    let mut contradictions: Vec<&Exchange> = Vec::new();
    for exchange in context.exchanges {
        let (Some(key), Some(status)) = (&exchange.operation, exchange.status) else {
            continue;
        };
        let Some(kind) = OperationKind::from_key(key) else {
            continue;
        };
        // A 404 from a list or a create means the route is missing; from a read, an update or
        // a lookup it can mean the record is. So can a save carrying the partner's id in its
        // body: an update of a record the partner lost.
        let route_missing = match kind.role() {
            OperationRole::List => matches!(status, 404 | 405 | 501),
            OperationRole::Write
                if !kind.addresses_one_record() && !by_id.contains(&exchange.id) =>
            {
                matches!(status, 404 | 405 | 501)
            }
            _ => matches!(status, 405 | 501),
        };
        if route_missing {
            contradictions.push(exchange);
        }
    }
    if contradictions.is_empty() {
        return Finding::Pass {
            reason: "every declared operation was served where the profile says".into(),
            evidence: Vec::new(),
        };
    }
    let mut operations: Vec<String> = contradictions
        .iter()
        .map(|e| {
            format!(
                "{} ({} {} → {})",
                e.operation.as_deref().unwrap_or_default(),
                e.method,
                e.url,
                e.status.unwrap_or_default()
            )
        })
        .collect();
    operations.dedup();
    Finding::Violated {
        reason: format!(
            "these declared operations were not served: {}",
            operations
                .into_iter()
                .take(3)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        evidence: contradictions.iter().take(5).map(|e| e.id).collect(),
        soft: false,
    }
}

fn spellings_resolved(context: &Context<'_>, field: Field) -> Finding {
    let mut tally = Tally::default();
    let mut unchecked = 0;
    for probe in context
        .observations
        .probes
        .variants
        .iter()
        .filter(|p| p.field == field)
    {
        let subject = format!("{field} `{}` ({})", probe.sent, probe.what);
        let Some(saved) = judge_write(&mut tally, &probe.create, &subject) else {
            continue;
        };
        let stored = match &probe.read {
            Some(Ok((answer, Some(record)))) => Some((record.clone(), answer.exchange)),
            Some(Ok((answer, None))) => {
                tally.broken(
                    format!("reading back {subject} answered {}", answer_summary(answer)),
                    vec![answer.exchange],
                );
                continue;
            }
            Some(Err(error)) => {
                tally.error(
                    format!("reading back {subject} got no answer: {}", error.message),
                    vec![error.exchange],
                );
                continue;
            }
            None => saved
                .echoed
                .clone()
                .filter(|r| is_record(r, RecordKind::Prospect))
                .map(|r| (r, saved.answer.exchange)),
        };
        if stored.is_none() {
            unchecked += 1;
        }
        if let Some((record, exchange)) = stored {
            // No value at all is a lost owner or source (STAFF-004, SRC-002), not a spelling.
            let got = record.get(&field);
            if got.is_some_and(|got| !same_ignoring_case(got, &probe.expected_read)) {
                tally.broken(
                    format!(
                        "{subject} reads back as {}, not the partner's `{}`",
                        got.map(|g| format!("`{g}`"))
                            .unwrap_or_else(|| "nothing".into()),
                        probe.expected_read
                    ),
                    vec![exchange],
                );
            }
        }
    }
    if let Some(relist) = context
        .observations
        .sources
        .as_ref()
        .and_then(|s| s.relist.as_ref())
        .filter(|_| field == Field::Source)
    {
        if let Some(probe) = context
            .observations
            .probes
            .variants
            .iter()
            .find(|p| p.field == field)
        {
            let count = count_named(relist, &probe.expected);
            if count > 1 {
                tally.broken(
                    format!(
                        "the list now has {count} sources named like `{}`: spellings created duplicates",
                        probe.expected
                    ),
                    relist.exchanges.clone(),
                );
            }
        }
    }
    tally.finish(
        |n| match unchecked {
            0 => format!("{n} spelling(s) of the same {field} resolved to the partner's own"),
            _ => format!("{n} spelling(s) of the same {field} were accepted, and what {unchecked} resolved to is {NOT_CHECKED}"),
        },
        || Finding::Inconclusive {
            reason: format!("no {field} was available to spell differently"),
        },
    )
}

fn source_spellings_resolved(context: &Context<'_>) -> Finding {
    spellings_resolved(context, Field::Source)
}

fn owner_spellings_resolved(context: &Context<'_>) -> Finding {
    spellings_resolved(context, Field::Owner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_differing_only_as_smartmatch_ignores_are_told_apart_from_mangled_ones() {
        assert_eq!(
            name_difference("Zoë", "ZOË").as_deref(),
            Some("letter case")
        );
        assert_eq!(
            name_difference("Zoë", " Zoë ").as_deref(),
            Some("surrounding white space")
        );
        assert_eq!(
            name_difference("Zoë", "Zoe\u{308}").as_deref(),
            Some("the composition of accents (NFC/NFD)")
        );
        assert_eq!(
            name_difference("Straße", " STRASSE").as_deref(),
            Some("letter case and surrounding white space")
        );
        for mangled in ["Zoe", "Zo?", "Zo", "Zoë-X"] {
            assert_eq!(name_difference("Zoë", mangled), None, "{mangled}");
        }
        assert_eq!(name_difference("Zoë", "Zoë"), None);
    }

    #[test]
    fn a_reason_becomes_one_sentence() {
        assert_eq!(sentence("the list answered"), "The list answered.");
        assert_eq!(sentence("`x` is gone."), "`x` is gone.");
        assert_eq!(sentence("  ü "), "Ü.");
        assert_eq!(sentence(""), "");
    }
}
