//! The `SEND-` rules' checks: pure functions from the calls a partner made (and InTouch before
//! them) to a finding, and the report of a `spoke connector` run.

use super::store::{smart_match, Intouch, Matched, Tenant, User, UserType};
use super::wire::{Reason, Resource};
use super::{Call, CallKind, ConnectorState};
use crate::model::same_ignoring_case;
use crate::report::model::{entries, exit_code, PartnerInfo, RunReport, Totals};
use crate::suite::{Applies, Catalog, Finding, Verdict};

/// What a check sees.
pub struct SendContext<'a> {
    /// The tenant the server accepts.
    pub tenant: &'a Tenant,
    /// InTouch when the server started.
    pub initial: &'a Intouch,
    /// Every call, in arrival order.
    pub calls: &'a [Call],
}

/// The check of a `SEND-` rule id, if there is one.
pub fn check_for(rule: &str) -> Option<fn(&SendContext<'_>) -> Finding> {
    Some(match rule {
        "SEND-001" => provider_info_on_every_call,
        "SEND-002" => record_id_is_the_partners_own,
        "SEND-003" => record_id_stable_across_updates,
        "SEND-004" => mandatory_fields_and_allowed_values,
        "SEND-005" => converted_member_keeps_record_id,
        "SEND-006" => inactivation_is_a_status_change,
        "SEND-007" => sources_before_leads,
        "SEND-008" => tls_off_loopback,
        "SEND-009" => round_trip_converts_the_prospect,
        _ => return None,
    })
}

fn pass(reason: impl Into<String>, calls: &[&Call]) -> Finding {
    Finding::Pass {
        reason: reason.into(),
        evidence: calls.iter().map(|c| c.exchange.id).collect(),
    }
}

/// A violation: the first problems named, every call cited.
fn violated(problems: Vec<(String, usize)>) -> Finding {
    let count = problems.len();
    let mut reason: Vec<String> = problems.iter().take(3).map(|(p, _)| p.clone()).collect();
    if count > 3 {
        reason.push(format!("and {} more", count - 3));
    }
    Finding::Violated {
        reason: reason.join("; "),
        evidence: problems.into_iter().map(|(_, id)| id).collect(),
        soft: false,
    }
}

fn api_calls<'a>(context: &'a SendContext<'_>) -> Vec<&'a Call> {
    context
        .calls
        .iter()
        .filter(|c| c.resource.is_some() && c.kind != CallKind::Other)
        .collect()
}

fn saves<'a>(context: &'a SendContext<'_>) -> impl Iterator<Item = &'a Call> {
    context.calls.iter().filter(|c| c.kind == CallKind::Save)
}

fn record_id(call: &Call) -> Option<&str> {
    call.provider.as_ref()?.record_id.as_deref()
}

fn field<'a>(call: &'a Call, name: &str) -> Option<&'a str> {
    call.fields.get(name).map(String::as_str)
}

fn no_calls() -> Finding {
    Finding::Inconclusive {
        reason: "no call reached the API: point your sandbox at spoke connector and send records"
            .into(),
    }
}

fn provider_info_on_every_call(context: &SendContext<'_>) -> Finding {
    let calls = api_calls(context);
    if calls.is_empty() {
        return no_calls();
    }
    let mut problems = Vec::new();
    for call in &calls {
        let id = call.exchange.id;
        let Some(provider) = &call.provider else {
            continue;
        };
        if let Some(missing) = provider.missing() {
            problems.push((format!("call #{id} carries no {missing}"), id));
        } else if let Some((name, got, want)) = context.tenant.mismatch(provider) {
            problems.push((format!("call #{id} sends {name} `{got}`, not `{want}`"), id));
        }
    }
    if problems.is_empty() {
        pass(
            format!(
                "all {} calls carry identifier, clientID, clubID and recordID of this tenant",
                calls.len()
            ),
            &calls,
        )
    } else {
        violated(problems)
    }
}

fn record_id_is_the_partners_own(context: &SendContext<'_>) -> Finding {
    let mut uuids: Vec<&str> = context.initial.uuids().collect();
    uuids.extend(
        context
            .calls
            .iter()
            .filter_map(|c| c.saved.as_ref().map(|s| s.uuid.as_str())),
    );
    let calls: Vec<&Call> = api_calls(context)
        .into_iter()
        .filter(|c| record_id(c).is_some())
        .collect();
    if calls.is_empty() {
        return no_calls();
    }
    let problems: Vec<(String, usize)> = calls
        .iter()
        .filter(|c| record_id(c).is_some_and(|r| uuids.iter().any(|u| u.eq_ignore_ascii_case(r))))
        .map(|c| {
            (
                format!(
                    "call #{} sends the Connector's uuid `{}` as recordID",
                    c.exchange.id,
                    record_id(c).unwrap_or_default()
                ),
                c.exchange.id,
            )
        })
        .collect();
    if problems.is_empty() {
        pass(
            format!(
                "none of the {} calls sends a Connector uuid as recordID",
                calls.len()
            ),
            &calls,
        )
    } else {
        violated(problems)
    }
}

/// Whether two saves of the same resource (and user type) describe the same person or source.
fn same_subject(a: &Call, b: &Call) -> bool {
    let same = |name: &str| match (field(a, name), field(b, name)) {
        (Some(x), Some(y)) => same_ignoring_case(x, y),
        _ => false,
    };
    match a.resource {
        Some(Resource::LeadSource) => same("name"),
        Some(Resource::Staff) => same("firstname") && same("lastname") && same("email"),
        _ => {
            field(a, "userType") == field(b, "userType")
                && same("firstname")
                && same("lastname")
                && (same("email") || same("mobile"))
        }
    }
}

fn record_id_stable_across_updates(context: &SendContext<'_>) -> Finding {
    let accepted: Vec<&Call> = saves(context).filter(|c| c.saved.is_some()).collect();
    if accepted.is_empty() {
        return no_calls();
    }
    let mut problems = Vec::new();
    for (index, later) in accepted.iter().enumerate() {
        let earlier = accepted[..index].iter().find(|earlier| {
            earlier.resource == later.resource
                && record_id(earlier) != record_id(later)
                && same_subject(earlier, later)
        });
        if let Some(earlier) = earlier {
            problems.push((
                format!(
                    "call #{} sends the {} of call #{} under recordID `{}` instead of `{}`",
                    later.exchange.id,
                    later.resource.map_or("record", |r| r.segment()),
                    earlier.exchange.id,
                    record_id(later).unwrap_or_default(),
                    record_id(earlier).unwrap_or_default()
                ),
                later.exchange.id,
            ));
        }
    }
    if problems.is_empty() {
        pass(
            format!(
                "no record of {} save(s) was sent under a second recordID",
                accepted.len()
            ),
            &accepted,
        )
    } else {
        violated(problems)
    }
}

fn mandatory_fields_and_allowed_values(context: &SendContext<'_>) -> Finding {
    let all: Vec<&Call> = saves(context).collect();
    if all.is_empty() {
        return no_calls();
    }
    let problems: Vec<(String, usize)> = all
        .iter()
        .filter_map(|call| {
            let refusal = call.refusal.as_ref()?;
            let about_document = refusal.status == 400
                && refusal.reason == Reason::Validation
                && !refusal
                    .field
                    .as_deref()
                    .is_some_and(|f| f.starts_with("providerInfo"));
            about_document.then(|| {
                (
                    format!(
                        "call #{} refused: {}{}",
                        call.exchange.id,
                        refusal
                            .field
                            .as_deref()
                            .map(|f| format!("{f}: "))
                            .unwrap_or_default(),
                        refusal.message
                    ),
                    call.exchange.id,
                )
            })
        })
        .collect();
    if problems.is_empty() {
        pass(
            format!(
                "all {} saves carry the mandatory fields with allowed values",
                all.len()
            ),
            &all,
        )
    } else {
        violated(problems)
    }
}

fn converted_member_keeps_record_id(context: &SendContext<'_>) -> Finding {
    // Prospects whose partner id is known: from InTouch's start, then as the partner sends them.
    let mut prospects: Vec<User> = context
        .initial
        .users
        .iter()
        .filter(|u| u.user_type == UserType::Prospect && u.record_id.is_some())
        .cloned()
        .collect();
    let mut kept = Vec::new();
    let mut problems = Vec::new();
    for call in saves(context).filter(|c| c.saved.is_some()) {
        let Some(record) = record_id(call) else {
            continue;
        };
        if call.resource != Some(Resource::User) {
            continue;
        }
        match field(call, "userType") {
            Some("PROSPECT") => {
                prospects.retain(|p| p.record_id.as_deref() != Some(record));
                prospects.push(User {
                    uuid: String::new(),
                    user_type: UserType::Prospect,
                    active: true,
                    record_id: Some(record.to_owned()),
                    origin: super::store::Origin::Partner,
                    converted_by: None,
                    fields: call.fields.clone(),
                });
            }
            Some("MEMBER") => {
                if prospects
                    .iter()
                    .any(|p| p.record_id.as_deref() == Some(record))
                {
                    kept.push(call);
                    prospects.retain(|p| p.record_id.as_deref() != Some(record));
                    continue;
                }
                if let Matched::One(index, rule) = smart_match(&prospects, None, &call.fields) {
                    problems.push((
                        format!(
                            "call #{} sends a member as `{record}` who was prospect `{}` (same {}): send it with `{}`",
                            call.exchange.id,
                            prospects[index].record_id.as_deref().unwrap_or_default(),
                            rule.describe(),
                            prospects[index].record_id.as_deref().unwrap_or_default()
                        ),
                        call.exchange.id,
                    ));
                    prospects.remove(index);
                }
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        return violated(problems);
    }
    if kept.is_empty() {
        return Finding::Inconclusive {
            reason: "no member was sent that had been a prospect: convert a prospect (e.g. LEAD-1001 of the built-in InTouch) into a member in your system".into(),
        };
    }
    pass(
        format!(
            "{} member(s) that were prospects kept their recordID",
            kept.len()
        ),
        &kept,
    )
}

fn inactivation_is_a_status_change(context: &SendContext<'_>) -> Finding {
    let deletes: Vec<(String, usize)> = context
        .calls
        .iter()
        .filter(|c| c.exchange.method.eq_ignore_ascii_case("DELETE"))
        .map(|c| {
            (
                format!(
                    "call #{} is a DELETE of {}; inactivation is a save with userStatus INACTIVE",
                    c.exchange.id, c.exchange.url
                ),
                c.exchange.id,
            )
        })
        .collect();
    if !deletes.is_empty() {
        return violated(deletes);
    }
    let mut active: Vec<String> = context
        .initial
        .users
        .iter()
        .filter(|u| u.active)
        .filter_map(|u| u.record_id.clone())
        .collect();
    let mut inactivations = Vec::new();
    for call in saves(context).filter(|c| c.saved.is_some()) {
        let Some(record) = record_id(call) else {
            continue;
        };
        match field(call, "userStatus") {
            Some("INACTIVE") if active.iter().any(|r| r == record) => {
                inactivations.push(call);
                active.retain(|r| r != record);
            }
            Some("ACTIVE") => active.push(record.to_owned()),
            _ => {}
        }
    }
    if inactivations.is_empty() {
        return Finding::Inconclusive {
            reason:
                "no active record was made inactive: deactivate a prospect or member in your system"
                    .into(),
        };
    }
    pass(
        format!(
            "{} record(s) were made inactive by a save with userStatus INACTIVE",
            inactivations.len()
        ),
        &inactivations,
    )
}

fn sources_before_leads(context: &SendContext<'_>) -> Finding {
    let mut known: Vec<(String, Option<String>)> = context
        .initial
        .lead_sources
        .iter()
        .map(|e| (e.record_id.clone(), e.fields.get("name").cloned()))
        .collect();
    let mut using = Vec::new();
    let mut problems = Vec::new();
    for call in saves(context).filter(|c| c.saved.is_some()) {
        match call.resource {
            Some(Resource::LeadSource) => {
                if let Some(record) = record_id(call) {
                    known.push((record.to_owned(), field(call, "name").map(str::to_owned)));
                }
            }
            Some(Resource::User) => {
                let Some(source) = field(call, "leadSource") else {
                    continue;
                };
                using.push(call);
                let sent = known.iter().any(|(record, name)| {
                    record == source
                        || name
                            .as_deref()
                            .is_some_and(|n| same_ignoring_case(n, source))
                });
                if !sent {
                    let later = context.calls.iter().find(|c| {
                        c.exchange.id > call.exchange.id
                            && c.resource == Some(Resource::LeadSource)
                            && c.saved.is_some()
                            && (record_id(c) == Some(source)
                                || field(c, "name").is_some_and(|n| same_ignoring_case(n, source)))
                    });
                    let when = match later {
                        Some(later) => format!("it came later, in call #{}", later.exchange.id),
                        None => "it was never sent".to_owned(),
                    };
                    problems.push((
                        format!(
                            "call #{} names lead source `{source}` before it was sent ({when})",
                            call.exchange.id
                        ),
                        call.exchange.id,
                    ));
                }
            }
            _ => {}
        }
    }
    if !problems.is_empty() {
        return violated(problems);
    }
    if using.is_empty() {
        return pass(
            "no lead named a lead source, so there was nothing to order",
            &[],
        );
    }
    pass(
        format!("all {} lead(s) naming a source came after it", using.len()),
        &using,
    )
}

fn tls_off_loopback(context: &SendContext<'_>) -> Finding {
    if context.calls.is_empty() {
        return no_calls();
    }
    let problems: Vec<(String, usize)> = context
        .calls
        .iter()
        .filter(|c| {
            let loopback = c.transport.peer_loopback && c.transport.host_loopback;
            !loopback && !c.transport.forwarded_https
        })
        .map(|c| {
            (
                format!(
                    "call #{} reached `{}` over plain http (no TLS) from outside this machine",
                    c.exchange.id, c.transport.host
                ),
                c.exchange.id,
            )
        })
        .collect();
    if problems.is_empty() {
        let all: Vec<&Call> = context.calls.iter().collect();
        pass(
            format!("all {} calls used loopback or TLS", all.len()),
            &all,
        )
    } else {
        violated(problems)
    }
}

/// Whether two sets of user fields name the same person by first and last name.
fn same_name(a: &std::collections::BTreeMap<String, String>, call: &Call) -> bool {
    ["firstname", "lastname"]
        .iter()
        .all(|name| match (a.get(*name), field(call, name)) {
            (Some(x), Some(y)) => same_ignoring_case(x, y),
            _ => false,
        })
}

fn round_trip_converts_the_prospect(context: &SendContext<'_>) -> Finding {
    // The prospects the Connector delivered: in InTouch from the start, with the partner's id.
    let mut waiting: Vec<&User> = context
        .initial
        .users
        .iter()
        .filter(|u| u.user_type == UserType::Prospect && u.record_id.is_some())
        .collect();
    let mut converted = Vec::new();
    let mut problems = Vec::new();
    let members = saves(context).filter(|c| {
        c.saved.is_some()
            && c.resource == Some(Resource::User)
            && field(c, "userType") == Some("MEMBER")
    });
    for call in members {
        let Some(saved) = &call.saved else { continue };
        let id = call.exchange.id;
        let by_record = waiting
            .iter()
            .position(|p| p.record_id.as_deref() == record_id(call));
        if let Some(index) = by_record {
            let prospect = waiting.remove(index);
            if saved.uuid == prospect.uuid && saved.action == "converted" {
                converted.push(call);
            } else {
                problems.push((
                    format!(
                        "call #{id} sends prospect `{}` as a member but InTouch {} it instead of converting it",
                        record_id(call).unwrap_or_default(),
                        saved.action
                    ),
                    id,
                ));
            }
            continue;
        }
        let by_name = waiting.iter().position(|p| same_name(&p.fields, call));
        if let Some(index) = by_name {
            let prospect = waiting.remove(index);
            let what = if saved.uuid == prospect.uuid {
                format!(
                    "InTouch converted prospect `{}` only by matching {}",
                    prospect.record_id.as_deref().unwrap_or_default(),
                    saved.matched_by.map_or("details", |rule| rule.describe())
                )
            } else {
                format!(
                    "InTouch inserted a second person beside prospect `{}`",
                    prospect.record_id.as_deref().unwrap_or_default()
                )
            };
            problems.push((
                format!(
                    "call #{id} sends the member under recordID `{}`, not the prospect's `{}`: {what}",
                    record_id(call).unwrap_or_default(),
                    prospect.record_id.as_deref().unwrap_or_default()
                ),
                id,
            ));
        }
    }
    if !problems.is_empty() {
        return violated(problems);
    }
    if converted.is_empty() {
        return Finding::Inconclusive {
            reason: "no prospect the Connector delivered came back as a member: convert one (e.g. LEAD-1001 of the built-in InTouch) into a member in your system".into(),
        };
    }
    pass(
        format!(
            "{} delivered prospect(s) came back under their recordID and were converted in InTouch",
            converted.len()
        ),
        &converted,
    )
}

/// Judges the `SEND-` rules of `catalog` on what the server saw.
pub fn judge(catalog: &Catalog, context: &SendContext<'_>) -> Vec<Verdict> {
    catalog
        .rules
        .iter()
        .filter(|rule| rule.applies.contains(&Applies::Sends))
        .map(|rule| match check_for(&rule.id) {
            Some(check) => {
                Verdict::from_finding(rule, crate::suite::checks::in_sentences(check(context)))
            }
            None => Verdict::without_check(rule),
        })
        .collect()
}

/// The `<userInfo>` fields that hold personal data, masked in reports by default.
pub const PERSONAL_FIELDS: [&str; 10] = [
    "firstname",
    "lastname",
    "email",
    "mobile",
    "homePhone",
    "workPhone",
    "birthdate",
    "address1",
    "address2",
    "zipcode",
];

/// The report of a `spoke connector` run, in the same model as certify's. Personal data in
/// the evidence is masked to its shape unless `show_personal_data`.
pub fn report(
    state: &ConnectorState,
    base_url: &str,
    started_at: String,
    show_personal_data: bool,
) -> RunReport {
    let catalog = Catalog::builtin();
    let calls = state.calls();
    let context = SendContext {
        tenant: state.tenant(),
        initial: state.initial(),
        calls: &calls,
    };
    let mut verdicts = judge(&catalog, &context);
    let mut exchanges: Vec<_> = calls.iter().map(|c| c.exchange.clone()).collect();
    // Masked after judging: the verdicts are drawn from the real values.
    if !show_personal_data {
        let values: Vec<String> = calls
            .iter()
            .map(|c| &c.fields)
            .chain(state.initial().users.iter().map(|u| &u.fields))
            .flat_map(|fields| {
                PERSONAL_FIELDS
                    .iter()
                    .filter_map(|name| fields.get(*name).cloned())
            })
            .collect();
        let masker = crate::report::mask::Masker::for_values(values);
        exchanges.iter_mut().for_each(|e| masker.exchange(e));
        verdicts.iter_mut().for_each(|v| masker.verdict(v));
    }
    let tenant = state.tenant();
    let reproduce = format!(
        "spoke connector --provider {} --client {} --club {}, then resend the calls cited",
        tenant.provider, tenant.client, tenant.club
    );
    let verdict_entries = entries(
        &catalog,
        &verdicts,
        |id| {
            exchanges
                .iter()
                .find(|e| e.id == id)
                .map(crate::report::curl::curl_command)
        },
        |_| reproduce.clone(),
    );
    RunReport {
        format_version: crate::report::model::REPORT_FORMAT_VERSION,
        tool: format!("spoke {}", env!("CARGO_PKG_VERSION")),
        catalog_version: catalog.catalog_version.clone(),
        catalog_digest: crate::digest::sha256(crate::suite::catalog::RULES_TOML.as_bytes()),
        partner: PartnerInfo {
            name: format!("provider {}", tenant.provider),
            profile: String::new(),
            profile_digest: String::new(),
            base_url: base_url.to_owned(),
            mock: false,
            faults: Vec::new(),
            insecure: false,
        },
        seed: 0,
        scenario: "connector".to_owned(),
        only: Vec::new(),
        started_at,
        duration_ms: state.shared.started.elapsed().as_millis() as u64,
        totals: Totals::of(&verdicts),
        exit_code: exit_code(&verdicts),
        verdicts: verdict_entries,
        coverage: Vec::new(),
        missing_in_sandbox: Vec::new(),
        unreachable: None,
        credentials_refused: None,
        waivers: Vec::new(),
        exchanges,
    }
}

/// The verdicts of a `spoke connector` run, for a terminal or a log. What the partner sent (a
/// clubID quoted in a reason, a URL) has its control characters shown escaped, `\n` included:
/// each row is one line.
pub fn render_summary(report: &RunReport) -> String {
    use crate::controls::one_line;
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nspoke connector: {} calls from {} · catalog {}",
        report.exchanges.len(),
        one_line(&report.partner.name),
        report.catalog_version
    );
    let _ = writeln!(out, "{:<8}  LEVEL   VERDICT       REASON", "RULE");
    for entry in &report.verdicts {
        let _ = writeln!(
            out,
            "{:<8}  {:<6}  {:<12}  {}",
            entry.rule,
            entry.level.as_str(),
            entry.outcome.as_str(),
            one_line(&entry.reason)
        );
        if matches!(
            entry.outcome,
            crate::suite::Outcome::Fail | crate::suite::Outcome::Warn
        ) {
            let _ = writeln!(out, "{:<10}fix: {}", "", one_line(&entry.fix));
            for id in entry.evidence.iter().take(3) {
                if let Some(exchange) = report.exchanges.iter().find(|e| e.id == *id) {
                    let _ = writeln!(
                        out,
                        "{:<10}evidence #{id}: {} {} → HTTP {}",
                        "",
                        one_line(&exchange.method),
                        one_line(&exchange.url),
                        exchange.status.unwrap_or_default()
                    );
                }
            }
        }
    }
    let totals = &report.totals;
    let _ = writeln!(
        out,
        "\n{} pass, {} fail, {} warn, {} inconclusive, {} error · exit {}",
        totals.pass, totals.fail, totals.warn, totals.inconclusive, totals.error, report.exit_code
    );
    out
}
