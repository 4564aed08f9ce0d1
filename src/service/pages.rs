//! The pages: server-rendered HTML that works without JavaScript (a finished run needs no
//! script; a running one refreshes itself, and with JavaScript follows the run's event stream
//! instead). Every text that a partner or a run supplied is escaped; forms carry the session's
//! CSRF token.

use super::api::{self, rfc3339, verdict, NewAccount, NewPartner, NewWaiver, REPORT_FORMATS};
use super::auth::{self, Viewer};
use super::error::{PageError, ServiceError};
use super::runs::{self, RunRequest, RunSecrets, Target};
use super::storage::{state, Partner, RunRow, StoredProfile};
use super::AppState;
use crate::report::html::escape;
use axum::extract::{FromRequestParts, Multipart, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use std::fmt::Write;

/// The built-in partner's slug: the reference profile against the mock partner.
pub const REFERENCE_SLUG: &str = "reference";

const STYLE: &str = r#"
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:#1f2328;
  margin: 0 auto; padding: 0 24px 24px; max-width: 1200px; }
nav { display:flex; gap:16px; align-items:center; padding:10px 0; border-bottom:1px solid #d0d7de; margin-bottom:16px; }
nav .who { margin-left:auto; color:#57606a; }
nav form { display:inline; }
h1 { font-size: 22px; margin: 8px 0 12px; } h2 { font-size: 17px; margin: 24px 0 8px; }
table { border-collapse: collapse; width: 100%; margin: 6px 0; }
th, td { border: 1px solid #d0d7de; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
code, pre, textarea { font: 12px/1.4 ui-monospace, Menlo, Consolas, monospace; }
fieldset { border:1px solid #d0d7de; border-radius:6px; margin:8px 0; }
label { display:inline-block; margin: 2px 10px 2px 0; }
input[type=text], input[type=url], input[type=password], input[type=number], input[type=date], select { padding:3px 6px; }
button { padding: 4px 12px; cursor: pointer; }
.state, .verdict { display:inline-block; border-radius:10px; padding:0 8px; color:#fff; font-weight:600; font-size:12px; }
.v-conformant { background:#1a7f37; } .v-not-conformant { background:#cf222e; } .v-could-not-run { background:#a40e26; }
.s-queued { background:#6e7781; } .s-running { background:#0969da; } .s-finished { background:#1a7f37; }
.s-failed { background:#a40e26; } .s-interrupted { background:#9a6700; }
.notice { border-left:4px solid #0969da; background:#ddf4ff; padding:6px 10px; margin:8px 0; }
.problem { border-left:4px solid #cf222e; background:#ffebe9; padding:6px 10px; margin:8px 0; }
.lines { border:1px solid #d0d7de; border-radius:6px; overflow:auto; max-height:600px; }
.lines div { white-space: pre; font: 12px/1.5 ui-monospace, Menlo, monospace; }
.lines .n { display:inline-block; width:4em; color:#6e7781; text-align:right; padding-right:8px; user-select:none; }
.lines .bad { background:#ffebe9; }
.lines .msg { background:#fff8c5; color:#6a4700; white-space: pre-wrap; padding-left:4.5em; }
.worse { background:#ffebe9; } .better { background:#dafbe1; }
.muted { color:#6e7781; }
"#;

/// A page's viewer: signed in by session (or token); otherwise the page sends to sign-in.
pub struct PageViewer(pub Viewer);

impl FromRequestParts<AppState> for PageViewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        match auth::viewer(state, &parts.headers).await? {
            Some(viewer) => Ok(PageViewer(viewer)),
            None => Err(PageError(ServiceError::Unauthorized("sign in".into()))),
        }
    }
}

/// Every page route.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/partners", post(create_partner))
        .route("/partners/{partner}", get(partner_page))
        .route("/partners/{partner}/profiles", post(upload_profile))
        .route("/partners/{partner}/profiles/{profile}", get(profile_page))
        .route("/partners/{partner}/runs", post(start_run))
        .route("/partners/{partner}/badge.svg", get(badge))
        .route("/partners/{partner}/waivers", post(create_waiver))
        .route(
            "/partners/{partner}/waivers/{waiver}/delete",
            post(delete_waiver),
        )
        .route("/runs/{run}", get(run_page))
        .route("/diff", get(diff_page))
        .route("/admin", get(admin_page))
        .route("/admin/accounts", post(create_account))
        .route("/static/app.js", get(script))
}

fn layout(title: &str, viewer: Option<&Viewer>, head: &str, body: &str) -> Html<String> {
    let nav = match viewer {
        Some(viewer) => format!(
            r#"<nav><a href="/"><strong>spoke</strong></a><a href="/">partners</a>{}<span class="who">{} ({})</span><form method="post" action="/logout"><input type="hidden" name="csrf" value="{}"><button>sign out</button></form></nav>"#,
            if viewer.is_admin() {
                r#"<a href="/admin">accounts</a>"#
            } else {
                ""
            },
            escape(&viewer.account.name),
            escape(&viewer.account.role),
            escape(viewer.csrf())
        ),
        None => r#"<nav><strong>spoke</strong></nav>"#.to_owned(),
    };
    Html(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · spoke</title>
<style>{STYLE}</style>
{head}
</head>
<body>
{nav}
{body}
</body>
</html>
"#,
        escape(title)
    ))
}

/// An error as a page.
pub fn error_page(status: StatusCode, message: &str) -> String {
    layout(
        status.canonical_reason().unwrap_or("error"),
        None,
        "",
        &format!(
            r#"<h1>{} {}</h1><p class="problem">{}</p><p><a href="/">back to the start page</a></p>"#,
            status.as_u16(),
            escape(status.canonical_reason().unwrap_or_default()),
            escape(message)
        ),
    )
    .0
}

fn csrf_field(viewer: &Viewer) -> String {
    format!(
        r#"<input type="hidden" name="csrf" value="{}">"#,
        escape(viewer.csrf())
    )
}

fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

fn state_badge(run: &RunRow) -> String {
    format!(
        r#"<span class="state s-{0}">{0}</span>"#,
        escape(&run.state)
    )
}

fn verdict_badge(run: &RunRow) -> String {
    match verdict(run) {
        Some(word) => format!(
            r#"<span class="verdict v-{word}">{}</span>"#,
            word.replace('-', " ")
        ),
        None => String::new(),
    }
}

fn target_text(run: &RunRow) -> String {
    if run.mock {
        if run.faults.is_empty() {
            "mock partner".to_owned()
        } else {
            format!("mock partner, faults {}", escape(&run.faults))
        }
    } else {
        format!(
            "sandbox <code>{}</code>",
            escape(run.base_url.as_deref().unwrap_or_default())
        )
    }
}

fn totals_text(run: &RunRow) -> String {
    let Some(totals) = run
        .totals
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return String::new();
    };
    ["pass", "fail", "warn", "skip", "inconclusive", "error"]
        .iter()
        .map(|k| format!("{} {k}", totals[*k].as_u64().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(" · ")
}

fn time(ms: Option<i64>) -> String {
    ms.map(|ms| rfc3339(ms).replace('T', " ").replace('Z', " UTC"))
        .unwrap_or_default()
}

fn runs_table(runs: &[RunRow], compare: bool) -> String {
    if runs.is_empty() {
        return r#"<p class="muted">No runs yet.</p>"#.to_owned();
    }
    let mut out = String::from("<table id=\"runs\"><tr>");
    if compare {
        out.push_str("<th>old</th><th>new</th>");
    }
    out.push_str("<th>run</th><th>partner</th><th>queued</th><th>profile</th><th>against</th><th>state</th><th>verdict</th><th>totals</th><th>by</th></tr>");
    for (index, run) in runs.iter().enumerate() {
        out.push_str("<tr>");
        if compare {
            let finished = run.state == state::FINISHED;
            let disabled = if finished { "" } else { " disabled" };
            let _ = write!(
                out,
                r#"<td><input type="radio" name="old" value="{0}"{1}{2}></td><td><input type="radio" name="new" value="{0}"{1}{3}></td>"#,
                run.id,
                disabled,
                if index == 1 && finished {
                    " checked"
                } else {
                    ""
                },
                if index == 0 && finished {
                    " checked"
                } else {
                    ""
                },
            );
        }
        let _ = write!(
            out,
            r#"<td><a href="/runs/{0}">#{0}</a></td><td><a href="/partners/{1}">{1}</a></td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td><td>{7}</td><td>{8}</td></tr>"#,
            run.id,
            escape(&run.partner),
            time(Some(run.created_at)),
            escape(&run.profile),
            target_text(run),
            state_badge(run),
            verdict_badge(run),
            totals_text(run),
            escape(&run.created_by),
        );
    }
    out.push_str("</table>");
    out
}

async fn dashboard(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
) -> Result<Html<String>, PageError> {
    let storage = &app.storage;
    let partners: Vec<Partner> = storage
        .partners()
        .await?
        .into_iter()
        .filter(|p| viewer.can_see(p.id))
        .collect();
    let mut body = String::from("<h1>Partners</h1>");
    if partners.iter().any(|p| p.slug == REFERENCE_SLUG) {
        let _ = write!(
            body,
            r#"<form method="post" action="/partners/{REFERENCE_SLUG}/runs" id="quick-start">{}<input type="hidden" name="target" value="mock"><button>Certify the built-in mock partner</button> <span class="muted">the reference profile against the mock partner: a conformant run in a few seconds</span></form>"#,
            csrf_field(&viewer)
        );
    }
    body.push_str(
        "<table id=\"partners\"><tr><th>partner</th><th>name</th><th>latest verdict</th></tr>",
    );
    for partner in &partners {
        let latest = storage.latest_finished(partner.id).await?;
        let _ = write!(
            body,
            r#"<tr><td><a href="/partners/{0}">{0}</a></td><td>{1}</td><td>{2}</td></tr>"#,
            escape(&partner.slug),
            escape(&partner.name),
            latest
                .as_ref()
                .map(|run| format!(
                    r##"{} <a href="/runs/{}">#{}</a>"##,
                    verdict_badge(run),
                    run.id,
                    run.id
                ))
                .unwrap_or_else(|| r#"<span class="muted">no run yet</span>"#.to_owned())
        );
    }
    body.push_str("</table>");
    if viewer.is_admin() {
        let _ = write!(
            body,
            r#"<h2>New partner</h2><form method="post" action="/partners">{}<label>slug <input type="text" name="slug" pattern="[a-z0-9-]{{1,40}}" required></label><label>name <input type="text" name="name" required maxlength="120"></label><button>Create</button></form>"#,
            csrf_field(&viewer)
        );
    }
    let recent = storage.runs(viewer.partner_filter(), None, 20).await?;
    body.push_str("<h2>Recent runs</h2>");
    body.push_str(&runs_table(&recent, false));
    Ok(layout("Partners", Some(&viewer), "", &body))
}

#[derive(Debug, Deserialize)]
struct LoginQuery {
    token: Option<String>,
}

async fn login_page(
    State(app): State<AppState>,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    if let Some(token) = query.token {
        return sign_in(&app, &token).await;
    }
    Ok(login_form(None).into_response())
}

fn login_form(problem: Option<&str>) -> Html<String> {
    layout(
        "Sign in",
        None,
        "",
        &format!(
            r#"<h1>Sign in</h1>{}<form method="post" action="/login"><label>API token <input type="password" name="token" size="70" required autofocus></label><button>Sign in</button></form><p class="muted">The first start of <code>spoke serve</code> prints the admin's sign-in link; an admin gives every other account its token.</p>"#,
            problem
                .map(|p| format!(r#"<p class="problem">{}</p>"#, escape(p)))
                .unwrap_or_default()
        ),
    )
}

async fn sign_in(app: &AppState, token: &str) -> Result<Response, PageError> {
    match app
        .storage
        .account_by_token(&auth::token_hash(token.trim()))
        .await?
    {
        Some(account) => {
            let cookie = auth::open_session(&app.storage, account.id).await?;
            Ok(([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response())
        }
        None => Ok((
            StatusCode::UNAUTHORIZED,
            login_form(Some("That token belongs to no account.")),
        )
            .into_response()),
    }
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    token: String,
}

async fn login(
    State(app): State<AppState>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    sign_in(&app, &form.token).await
}

#[derive(Debug, Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    headers: axum::http::HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    if let Some(session) = auth::session_cookie(&headers) {
        app.storage
            .delete_session(&auth::token_hash(&session))
            .await?;
    }
    Ok((
        [(header::SET_COOKIE, auth::cleared_cookie())],
        Redirect::to("/login"),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct PartnerForm {
    #[serde(default)]
    csrf: String,
    slug: String,
    name: String,
}

async fn create_partner(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Form(form): Form<PartnerForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let slug = form.slug.trim().to_owned();
    api::add_partner(
        &app,
        &viewer,
        NewPartner {
            slug: slug.clone(),
            name: form.name,
        },
    )
    .await?;
    Ok(Redirect::to(&format!("/partners/{slug}")).into_response())
}

fn run_form(
    viewer: &Viewer,
    partner: &Partner,
    profiles: &[StoredProfile],
    chosen: Option<&StoredProfile>,
) -> String {
    let Some(profile) = chosen.or(profiles.first()) else {
        return r#"<p class="muted">Upload a profile to start a run.</p>"#.to_owned();
    };
    let parsed = crate::profile::Profile::parse(&profile.name, &profile.text).ok();
    let mut out = format!(
        r#"<form method="post" action="/partners/{}/runs" id="start-run">{}<fieldset><legend>profile</legend><select name="profile">"#,
        escape(&partner.slug),
        csrf_field(viewer)
    );
    for p in profiles {
        let _ = write!(
            out,
            r#"<option value="{}"{}>#{} {} ({})</option>"#,
            p.id,
            if p.id == profile.id { " selected" } else { "" },
            p.id,
            escape(&p.name),
            time(Some(p.uploaded_at))
        );
    }
    out.push_str("</select></fieldset>");
    out.push_str(r#"<fieldset><legend>against</legend><label><input type="radio" name="target" value="mock" checked> the mock partner serving the profile</label>"#);
    if let Some(parsed) = &parsed {
        out.push_str(r#"<div>faults: "#);
        for fault in runs::offered_faults(parsed) {
            let _ = write!(
                out,
                r#"<label title="{}"><input type="checkbox" name="fault" value="{1}"> {1}</label>"#,
                escape(fault.behaviour()),
                escape(fault.name())
            );
        }
        out.push_str("</div>");
        let _ = write!(
            out,
            r#"<label><input type="radio" name="target" value="sandbox"> the sandbox at <input type="url" name="base_url" size="50" placeholder="{}"></label>"#,
            escape(&parsed.partner.base_url)
        );
        let variables = runs::secret_variables(&parsed.auth);
        if !variables.is_empty() {
            out.push_str(
                r#"<div>secrets for this run only (kept in memory, never stored or shown): "#,
            );
            for name in variables {
                let _ = write!(
                    out,
                    r#"<label>{0} <input type="password" name="secret:{0}" autocomplete="off"></label>"#,
                    escape(&name)
                );
            }
            out.push_str("</div>");
        }
    }
    out.push_str(r#"</fieldset><fieldset><legend>options</legend><label>seed <input type="number" name="seed" min="0" placeholder="random"></label><label>only rules <input type="text" name="only" placeholder="LEAD-002,SRC-002"></label></fieldset><button>Start run</button></form>"#);
    out
}

async fn partner_page(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path(slug): Path<String>,
) -> Result<Html<String>, PageError> {
    let storage = &app.storage;
    let partner = viewer.partner(storage, &slug).await?;
    let profiles = storage.profiles(partner.id).await?;
    let runs = storage.runs(Some(&[partner.id]), None, 100).await?;
    let waivers = storage.waivers(partner.id).await?;
    let latest = storage.latest_finished(partner.id).await?;
    let mut body = format!(
        r#"<h1>{} <img src="/partners/{}/badge.svg" alt="{}" id="badge"></h1><p class="muted">partner <code>{}</code>{}</p>"#,
        escape(&partner.name),
        escape(&partner.slug),
        latest
            .as_ref()
            .and_then(verdict)
            .unwrap_or("no verdict yet"),
        escape(&partner.slug),
        latest
            .as_ref()
            .map(|run| format!(
                r#"; latest verdict from <a href="/runs/{0}">run #{0}</a>"#,
                run.id
            ))
            .unwrap_or_default()
    );
    body.push_str("<h2>Start a run</h2>");
    body.push_str(&run_form(&viewer, &partner, &profiles, None));
    body.push_str("<h2>History</h2>");
    if runs.iter().filter(|r| r.state == state::FINISHED).count() >= 2 {
        body.push_str(r#"<form method="get" action="/diff" id="compare">"#);
        body.push_str(&runs_table(&runs, true));
        body.push_str("<button>Compare the two runs chosen</button></form>");
    } else {
        body.push_str(&runs_table(&runs, false));
    }
    body.push_str("<h2>Profiles</h2><table id=\"profiles\"><tr><th>profile</th><th>name</th><th>digest</th><th>uploaded</th></tr>");
    for profile in &profiles {
        let _ = write!(
            body,
            r#"<tr><td><a href="/partners/{0}/profiles/{1}">#{1}</a></td><td>{2}</td><td><code>{3}</code></td><td>{4}</td></tr>"#,
            escape(&partner.slug),
            profile.id,
            escape(&profile.name),
            escape(&profile.digest),
            time(Some(profile.uploaded_at))
        );
    }
    let _ = write!(
        body,
        r#"</table><form method="post" action="/partners/{}/profiles" enctype="multipart/form-data" id="upload">{}<fieldset><legend>upload a profile (TOML, at most {} KiB)</legend><label>file <input type="file" name="file" accept=".toml,text/plain"></label> <span class="muted">or paste it:</span><br><textarea name="text" rows="6" cols="100"></textarea><br><label>file name <input type="text" name="name" placeholder="acme.toml"></label><button>Check and upload</button></fieldset></form>"#,
        escape(&partner.slug),
        csrf_field(&viewer),
        super::MAX_PROFILE / 1024
    );
    body.push_str(r#"<h2>Waivers</h2><table id="waivers"><tr><th>rule</th><th>reason</th><th>owner</th><th>expires</th><th></th></tr>"#);
    let today = chrono::Utc::now()
        .date_naive()
        .format("%Y-%m-%d")
        .to_string();
    for waiver in &waivers {
        let expired = waiver.expires < today;
        let _ = write!(
            body,
            r#"<tr><td>{}</td><td>{}</td><td>{}</td><td>{}{}</td><td>{}</td></tr>"#,
            escape(&waiver.rule),
            escape(&waiver.reason),
            escape(&waiver.owner),
            escape(&waiver.expires),
            if expired {
                r#" <span class="state s-failed">expired</span>"#
            } else {
                ""
            },
            if viewer.is_admin() {
                format!(
                    r#"<form method="post" action="/partners/{}/waivers/{}/delete">{}<button>remove</button></form>"#,
                    escape(&partner.slug),
                    waiver.id,
                    csrf_field(&viewer)
                )
            } else {
                String::new()
            }
        );
    }
    body.push_str("</table>");
    if viewer.is_admin() {
        let mut rules = String::new();
        for rule in &crate::suite::Catalog::builtin().rules {
            let _ = write!(
                rules,
                r#"<option value="{0}">{0} {1}</option>"#,
                escape(&rule.id),
                escape(&rule.title)
            );
        }
        let _ = write!(
            body,
            r#"<form method="post" action="/partners/{}/waivers" id="add-waiver">{}<fieldset><legend>add a waiver (an agreed exception: a waived failure no longer fails the run until it expires)</legend><label>rule <select name="rule">{rules}</select></label><label>reason <input type="text" name="reason" size="50" required maxlength="500"></label><label>owner <input type="text" name="owner" placeholder="jane.doe@partner.example" required maxlength="500"></label><label>expires <input type="date" name="expires" required></label><button>Add</button></fieldset></form>"#,
            escape(&partner.slug),
            csrf_field(&viewer)
        );
    }
    Ok(layout(&partner.name, Some(&viewer), "", &body))
}

/// The profile's lines, numbered, each problem under its line.
fn numbered(text: &str, problems: &[crate::profile::Problem]) -> String {
    let mut out = String::from(r#"<div class="lines" id="profile-text">"#);
    let unplaced: Vec<_> = problems.iter().filter(|p| p.line.is_none()).collect();
    for problem in &unplaced {
        let _ = write!(
            out,
            r#"<div class="msg">{}: {}</div>"#,
            escape(&problem.key),
            escape(&problem.message)
        );
    }
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let here: Vec<_> = problems.iter().filter(|p| p.line == Some(number)).collect();
        let _ = write!(
            out,
            r#"<div id="L{number}"{}><span class="n">{number}</span>{}</div>"#,
            if here.is_empty() {
                ""
            } else {
                r#" class="bad""#
            },
            escape(line)
        );
        for problem in here {
            let _ = write!(
                out,
                r#"<div class="msg">line {number}: {}: {}</div>"#,
                escape(&problem.key),
                escape(&problem.message)
            );
        }
    }
    out.push_str("</div>");
    out
}

async fn upload_profile(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path(slug): Path<String>,
    mut multipart: Multipart,
) -> Result<Response, PageError> {
    let (mut csrf, mut name, mut file, mut file_name, mut text) = (
        String::new(),
        String::new(),
        Vec::new(),
        String::new(),
        String::new(),
    );
    loop {
        let next = multipart.next_field().await.map_err(|error| {
            ServiceError::Invalid(format!(
                "the upload could not be read: {}",
                error.body_text()
            ))
        });
        let Some(field) = next? else { break };
        let field_name = field.name().unwrap_or_default().to_owned();
        if field_name == "file" {
            file_name = field.file_name().unwrap_or_default().to_owned();
        }
        let bytes = field.bytes().await.map_err(|error| {
            if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ServiceError::TooLarge(format!("the upload is over {} KiB", super::MAX_BODY / 1024))
            } else {
                ServiceError::Invalid(format!(
                    "the upload could not be read: {}",
                    error.body_text()
                ))
            }
        })?;
        let as_text = || String::from_utf8_lossy(&bytes).into_owned();
        match field_name.as_str() {
            "csrf" => csrf = as_text(),
            "name" => name = as_text(),
            "text" => text = as_text(),
            "file" => file = bytes.to_vec(),
            _ => {}
        }
    }
    viewer.check_csrf(&csrf)?;
    let bytes = if file.is_empty() {
        text.into_bytes()
    } else {
        file
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ServiceError::Invalid("choose a file or paste a profile".into()).into());
    }
    let name = [name.trim(), file_name.trim()]
        .into_iter()
        .find(|n| !n.is_empty())
        .unwrap_or("profile.toml")
        .to_owned();
    match api::add_profile(&app, &viewer, &slug, &name, &bytes).await {
        Ok((id, slug)) => {
            Ok(Redirect::to(&format!("/partners/{slug}/profiles/{id}")).into_response())
        }
        Err(ServiceError::Profile(problems)) => {
            let text = String::from_utf8_lossy(&bytes);
            let mut body = format!(
                r#"<h1>Profile refused</h1><p class="problem" id="problem-count">{} has {} problem(s), shown under their lines as <code>spoke profile check</code> finds them; nothing was stored.</p>"#,
                escape(&api::profile_name(&name)),
                problems.len()
            );
            body.push_str("<ul id=\"problems\">");
            for problem in &problems {
                let _ = write!(
                    body,
                    "<li>{}</li>",
                    match problem.line {
                        Some(line) => format!(
                            r##"<a href="#L{line}">line {line}</a>: {}: {}"##,
                            escape(&problem.key),
                            escape(&problem.message)
                        ),
                        None => format!("{}: {}", escape(&problem.key), escape(&problem.message)),
                    }
                );
            }
            body.push_str("</ul>");
            body.push_str(&numbered(&text, &problems));
            let _ = write!(
                body,
                r#"<p><a href="/partners/{}">back to the partner</a></p>"#,
                escape(&slug)
            );
            Ok((
                StatusCode::UNPROCESSABLE_ENTITY,
                layout("Profile refused", Some(&viewer), "", &body),
            )
                .into_response())
        }
        Err(other) => Err(other.into()),
    }
}

async fn profile_page(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<Html<String>, PageError> {
    let partner = viewer.partner(&app.storage, &slug).await?;
    let profiles = app.storage.profiles(partner.id).await?;
    let profile = profiles
        .iter()
        .find(|p| p.id == id)
        .ok_or_else(|| ServiceError::NotFound(format!("{slug} has no profile {id}")))?;
    let mut body = format!(
        r#"<h1>{} <span class="muted">profile #{}</span></h1><p>partner <a href="/partners/{}">{}</a> · digest <code>{}</code> · uploaded {}</p><p class="notice">valid: <code>spoke profile check</code> finds no problem.</p>"#,
        escape(&profile.name),
        profile.id,
        escape(&partner.slug),
        escape(&partner.name),
        escape(&profile.digest),
        time(Some(profile.uploaded_at))
    );
    body.push_str("<h2>Start a run with it</h2>");
    body.push_str(&run_form(&viewer, &partner, &profiles, Some(profile)));
    body.push_str("<h2>Text</h2>");
    body.push_str(&numbered(&profile.text, &[]));
    Ok(layout(&profile.name, Some(&viewer), "", &body))
}

async fn start_run(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path(slug): Path<String>,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    viewer.check_csrf(field(&form, "csrf").unwrap_or_default())?;
    let list = |name: &str| -> Vec<String> {
        form.iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
            .collect()
    };
    let target = match field(&form, "target").unwrap_or("mock") {
        "sandbox" => Target::Sandbox,
        _ => Target::Mock,
    };
    let seed =
        match field(&form, "seed")
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(seed) => Some(seed.parse::<u64>().map_err(|_| {
                ServiceError::Invalid(format!("seed: `{seed}` is not a whole number"))
            })?),
            None => None,
        };
    let profile = match field(&form, "profile")
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(id) => Some(
            id.parse::<i64>()
                .map_err(|_| ServiceError::Invalid(format!("profile: `{id}` is not an id")))?,
        ),
        None => None,
    };
    let secrets = form
        .iter()
        .filter_map(|(key, value)| {
            key.strip_prefix("secret:")
                .map(|name| (name.to_owned(), value.clone()))
        })
        .filter(|(_, value)| !value.is_empty())
        .collect();
    let request = RunRequest {
        partner: slug,
        profile,
        target,
        faults: if target == Target::Mock {
            list("fault")
        } else {
            Vec::new()
        },
        base_url: if target == Target::Sandbox {
            field(&form, "base_url").map(str::to_owned)
        } else {
            None
        },
        seed,
        only: list("only"),
        secrets: RunSecrets(secrets),
    };
    let id = runs::start(&app, &viewer, request).await?;
    Ok(Redirect::to(&format!("/runs/{id}")).into_response())
}

/// The SVG badge of a partner's latest verdict.
pub fn badge_svg(word: &str) -> String {
    let (text, colour) = match word {
        "conformant" => ("conformant", "#1a7f37"),
        "not-conformant" => ("not conformant", "#cf222e"),
        "could-not-run" => ("could not run", "#a40e26"),
        _ => ("no verdict", "#6e7781"),
    };
    let right = 12 + text.len() as u32 * 7;
    let left = 48;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="spoke: {text}"><title>spoke: {text}</title><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{colour}"/><g fill="#fff" font-family="Verdana,sans-serif" font-size="11"><text x="8" y="14">spoke</text><text x="{tx}" y="14">{text}</text></g></svg>"##,
        w = left + right,
        tx = left + 6,
    )
}

async fn badge(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path(slug): Path<String>,
) -> Result<Response, PageError> {
    let partner = viewer.partner(&app.storage, &slug).await?;
    let latest = app.storage.latest_finished(partner.id).await?;
    let word = latest.as_ref().and_then(verdict).unwrap_or("none");
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        badge_svg(word),
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
struct WaiverForm {
    #[serde(default)]
    csrf: String,
    rule: String,
    reason: String,
    owner: String,
    expires: String,
}

async fn create_waiver(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path(slug): Path<String>,
    Form(form): Form<WaiverForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    api::add_waiver(
        &app,
        &viewer,
        &slug,
        NewWaiver {
            rule: form.rule,
            reason: form.reason,
            owner: form.owner,
            expires: form.expires,
        },
    )
    .await?;
    Ok(Redirect::to(&format!("/partners/{slug}")).into_response())
}

async fn delete_waiver(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path((slug, id)): Path<(String, i64)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    viewer.check_csrf(&form.csrf)?;
    let partner = viewer.partner(&app.storage, &slug).await?;
    viewer.require_admin()?;
    app.storage.delete_waiver(partner.id, id).await?;
    Ok(Redirect::to(&format!("/partners/{slug}")).into_response())
}

/// The parts of a stored HTML report a run page shows: its style and its body.
fn report_parts(html: &str) -> (String, String) {
    let between = |open: &str, close: &str| -> String {
        html.find(open)
            .and_then(|start| {
                let from = start + open.len();
                html[from..]
                    .find(close)
                    .map(|end| html[from..from + end].to_owned())
            })
            .unwrap_or_default()
    };
    (between("<style>", "</style>"), between("<body>", "</body>"))
}

async fn run_page(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Path(id): Path<i64>,
) -> Result<Html<String>, PageError> {
    let run = api::visible_run(&app, &viewer, id).await?;
    let ended = state::is_final(&run.state);
    let mut head = String::new();
    if !ended {
        // Without JavaScript the page reloads itself; with it, the script follows the events.
        let _ = write!(
            head,
            r#"<noscript><meta http-equiv="refresh" content="2"></noscript><script src="/static/app.js" defer></script>"#
        );
    }
    let mut body = format!(
        r#"<h1>Run #{} <span class="muted">of</span> <a href="/partners/{}">{}</a></h1><p id="status" data-events="/api/v1/runs/{}/events">{} {} <span id="step">{}</span></p>"#,
        run.id,
        escape(&run.partner),
        escape(&run.partner),
        run.id,
        state_badge(&run),
        verdict_badge(&run),
        escape(run.step.as_deref().unwrap_or_default())
    );
    let _ = write!(
        body,
        r#"<table class="facts"><tr><th>profile</th><td><a href="/partners/{}/profiles/{}">#{} {}</a></td></tr><tr><th>against</th><td>{}</td></tr><tr><th>seed</th><td>{}</td></tr><tr><th>only</th><td>{}</td></tr><tr><th>secrets given</th><td>{}</td></tr><tr><th>queued</th><td>{} by {}</td></tr><tr><th>started</th><td>{}</td></tr><tr><th>ended</th><td>{}</td></tr></table>"#,
        escape(&run.partner),
        run.profile_id,
        run.profile_id,
        escape(&run.profile),
        target_text(&run),
        run.seed,
        if run.only.is_empty() {
            "all rules".to_owned()
        } else {
            escape(&run.only)
        },
        if run.secret_names.is_empty() {
            "none".to_owned()
        } else {
            format!("{} (names only)", escape(&run.secret_names))
        },
        time(Some(run.created_at)),
        escape(&run.created_by),
        time(run.started_at),
        time(run.finished_at),
    );
    if let Some(error) = &run.error {
        let _ = write!(
            body,
            r#"<p class="problem" id="error">{}</p>"#,
            escape(error)
        );
    }
    if run.state == state::FINISHED {
        body.push_str(r#"<h2>Downloads</h2><ul id="downloads">"#);
        for (format, _, suffix) in REPORT_FORMATS {
            let label = match *format {
                "json" => "JSON report",
                "junit" => "JUnit XML",
                "har" => "HAR evidence",
                "html" => "HTML report",
                _ => "certification bundle (zip, for spoke bundle verify)",
            };
            let _ = write!(
                body,
                r#"<li><a href="/api/v1/runs/{}/reports/{format}" download id="download-{format}">{label}</a> <span class="muted">spoke-run-{}{suffix}</span></li>"#,
                run.id, run.id
            );
        }
        body.push_str("</ul>");
        let others: Vec<RunRow> = app
            .storage
            .runs(Some(&[run.partner_id]), None, 50)
            .await?
            .into_iter()
            .filter(|r| r.id != run.id && r.state == state::FINISHED)
            .collect();
        if !others.is_empty() {
            let _ = write!(
                body,
                r#"<form method="get" action="/diff" id="compare"><input type="hidden" name="new" value="{}">compare with <select name="old">"#,
                run.id
            );
            for other in &others {
                let _ = write!(
                    body,
                    r#"<option value="{0}">#{0} ({1}, {2})</option>"#,
                    other.id,
                    verdict(other).unwrap_or_default(),
                    time(Some(other.created_at))
                );
            }
            body.push_str("</select> <button>Compare</button></form>");
        }
        if let Some(html) = app.storage.report(run.id, "html").await? {
            let (style, report) = report_parts(&String::from_utf8_lossy(&html));
            let _ = write!(head, "<style>{style}</style>");
            let _ = write!(body, r#"<section id="report">{report}</section>"#);
        }
    }
    Ok(layout(
        &format!("Run #{} of {}", run.id, run.partner),
        Some(&viewer),
        &head,
        &body,
    ))
}

#[derive(Debug, Deserialize)]
struct DiffParams {
    old: Option<String>,
    new: Option<String>,
}

async fn diff_page(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Query(params): Query<DiffParams>,
) -> Result<Html<String>, PageError> {
    let id = |value: &Option<String>, which: &str| {
        value
            .as_deref()
            .and_then(|v| v.trim().parse::<i64>().ok())
            .ok_or_else(|| ServiceError::Invalid(format!("{which}: choose a run to compare")))
    };
    let (old, new) = (id(&params.old, "old")?, id(&params.new, "new")?);
    let compared = api::diff_runs(&app, &viewer, old, new).await?;
    let diff = &compared.diff;
    let mut body = format!(
        r#"<h1>Run <a href="/runs/{old}">#{old}</a> → run <a href="/runs/{new}">#{new}</a></h1><p id="diff-summary">{} rule(s) worse, {} better, {} unchanged{}</p>"#,
        diff.changed
            .iter()
            .filter(|c| c.direction == crate::report::diff::Direction::Worse)
            .count()
            + diff.added.iter().filter(|a| a.outcome != "pass").count(),
        diff.changed
            .iter()
            .filter(|c| c.direction == crate::report::diff::Direction::Better)
            .count(),
        diff.unchanged,
        if diff.regressed() {
            " — regressed"
        } else {
            ""
        }
    );
    let _ = write!(
        body,
        r#"<table class="facts"><tr><th></th><th>old (#{old})</th><th>new (#{new})</th></tr><tr><th>partner</th><td>{}</td><td>{}</td></tr><tr><th>profile digest</th><td><code>{}</code></td><td><code>{}</code></td></tr><tr><th>seed</th><td>{}</td><td>{}</td></tr><tr><th>against</th><td>{}</td><td>{}</td></tr><tr><th>exit code</th><td>{}</td><td>{}</td></tr></table>"#,
        escape(&diff.old.partner),
        escape(&diff.new.partner),
        escape(&diff.old.profile_digest),
        escape(&diff.new.profile_digest),
        diff.old.seed,
        diff.new.seed,
        target_text(&compared.old.0),
        target_text(&compared.new.0),
        diff.old.exit_code,
        diff.new.exit_code
    );
    if diff.old.seed != diff.new.seed {
        body.push_str(r#"<p class="notice">The runs have different seeds, so their requests carry different data; start both with the same seed to compare the same requests.</p>"#);
    }
    body.push_str(r#"<h2>Rule by rule</h2><table id="rules"><tr><th>rule</th><th>old</th><th>new</th><th>change</th><th>why (new)</th></tr>"#);
    let outcomes = |report: &serde_json::Value| -> Vec<(String, String, String)> {
        report["verdicts"]
            .as_array()
            .map(|verdicts| {
                verdicts
                    .iter()
                    .map(|v| {
                        let mut outcome = v["outcome"].as_str().unwrap_or_default().to_owned();
                        if !v["waiver"].is_null() {
                            outcome.push_str(" (waived)");
                        }
                        (
                            v["rule"].as_str().unwrap_or_default().to_owned(),
                            outcome,
                            v["reason"].as_str().unwrap_or_default().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let old_outcomes = outcomes(&compared.old.1);
    let new_outcomes = outcomes(&compared.new.1);
    let mut rules: Vec<&str> = new_outcomes.iter().map(|(r, ..)| r.as_str()).collect();
    for (rule, ..) in &old_outcomes {
        if !rules.contains(&rule.as_str()) {
            rules.push(rule);
        }
    }
    for rule in rules {
        let old = old_outcomes.iter().find(|(r, ..)| r == rule);
        let new = new_outcomes.iter().find(|(r, ..)| r == rule);
        let change = diff.changed.iter().find(|c| c.rule == rule);
        let (class, word) = match (change.map(|c| c.direction), old, new) {
            (Some(crate::report::diff::Direction::Worse), ..) => ("worse", "worse"),
            (Some(crate::report::diff::Direction::Better), ..) => ("better", "better"),
            (Some(crate::report::diff::Direction::Sideways), ..) => ("", "changed"),
            (None, None, Some(_)) => ("", "added"),
            (None, Some(_), None) => ("", "removed"),
            _ => ("", ""),
        };
        let _ = write!(
            body,
            r#"<tr id="rule-{0}" class="{class}"><td>{0}</td><td>{1}</td><td>{2}</td><td>{word}</td><td>{3}</td></tr>"#,
            escape(rule),
            escape(old.map(|o| o.1.as_str()).unwrap_or("—")),
            escape(new.map(|n| n.1.as_str()).unwrap_or("—")),
            escape(new.map(|n| n.2.as_str()).unwrap_or_default())
        );
    }
    body.push_str("</table>");
    if !diff.changed.is_empty() {
        body.push_str("<h2>What changed, with the evidence</h2>");
        for change in &diff.changed {
            let _ = write!(
                body,
                r#"<h3>{} {} <span class="muted">{}</span>: {} → {}</h3><p>was: {}<br>now: {}</p>"#,
                escape(&change.rule),
                escape(&change.level),
                escape(&change.title),
                escape(&change.old_outcome),
                escape(&change.new_outcome),
                escape(&change.old_reason),
                escape(&change.new_reason)
            );
            if !change.evidence.is_empty() {
                body.push_str(
                    "<table><tr><th>request</th><th>old answer</th><th>new answer</th></tr>",
                );
                for evidence in &change.evidence {
                    let side = |side: &Option<crate::report::diff::ExchangeSide>| match side {
                        Some(side) => format!(
                            "#{} {}<br><code>{}</code>",
                            side.id,
                            side.status
                                .map(|s| format!("HTTP {s}"))
                                .or_else(|| side.error.clone())
                                .map(|s| escape(&s))
                                .unwrap_or_default(),
                            escape(side.body.as_deref().unwrap_or_default())
                        ),
                        None => r#"<span class="muted">not cited</span>"#.to_owned(),
                    };
                    let _ = write!(
                        body,
                        "<tr><td>{}<br><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                        escape(&evidence.purpose),
                        escape(&evidence.request),
                        side(&evidence.old),
                        side(&evidence.new)
                    );
                }
                body.push_str("</table>");
            }
        }
    }
    Ok(layout(
        &format!("Run #{old} → #{new}"),
        Some(&viewer),
        "",
        &body,
    ))
}

async fn admin_page(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
) -> Result<Html<String>, PageError> {
    viewer.require_admin()?;
    let partners = app.storage.partners().await?;
    let mut body = String::from("<h1>Accounts</h1><table id=\"accounts\"><tr><th>name</th><th>role</th><th>partners</th></tr>");
    for account in app.storage.accounts().await? {
        let member_of = app.storage.memberships(account.id).await?;
        let names: Vec<String> = partners
            .iter()
            .filter(|p| member_of.contains(&p.id))
            .map(|p| escape(&p.slug))
            .collect();
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&account.name),
            escape(&account.role),
            if account.role == auth::ADMIN {
                "all".to_owned()
            } else {
                names.join(", ")
            }
        );
    }
    let _ = write!(
        body,
        r#"</table><h2>New account</h2><form method="post" action="/admin/accounts" id="new-account">{}<label>name <input type="text" name="name" required maxlength="80"></label><label>role <select name="role"><option value="partner">partner</option><option value="admin">admin</option></select></label><div>sees: "#,
        csrf_field(&viewer)
    );
    for partner in &partners {
        let _ = write!(
            body,
            r#"<label><input type="checkbox" name="partner" value="{0}"> {0}</label>"#,
            escape(&partner.slug)
        );
    }
    body.push_str("</div><button>Create and show its token</button></form>");
    Ok(layout("Accounts", Some(&viewer), "", &body))
}

async fn create_account(
    State(app): State<AppState>,
    PageViewer(viewer): PageViewer,
    Form(form): Form<Vec<(String, String)>>,
) -> Result<Html<String>, PageError> {
    viewer.check_csrf(field(&form, "csrf").unwrap_or_default())?;
    let name = field(&form, "name").unwrap_or_default().trim().to_owned();
    let token = api::add_account(
        &app,
        &viewer,
        NewAccount {
            name: name.clone(),
            role: field(&form, "role").unwrap_or(auth::PARTNER).to_owned(),
            partners: form
                .iter()
                .filter(|(key, _)| key == "partner")
                .map(|(_, value)| value.clone())
                .collect(),
        },
    )
    .await?;
    let body = format!(
        r#"<h1>Account {}</h1><p class="notice">Its token, shown this once (it is stored only as a digest): give it to its owner for the API (<code>Authorization: Bearer …</code>) and for signing in.</p><p><code id="token">{}</code></p><p><a href="/admin">back to the accounts</a></p>"#,
        escape(&name),
        escape(&token)
    );
    Ok(layout("New account", Some(&viewer), "", &body))
}

/// The pages' one script: a running run's page follows its event stream and reloads when the
/// run has ended (without it, the page refreshes itself every two seconds).
const SCRIPT: &str = r#"(function () {
  var status = document.getElementById("status");
  if (!status || !window.EventSource) { return; }
  var step = document.getElementById("step");
  var events = new EventSource(status.getAttribute("data-events"));
  events.addEventListener("status", function (event) {
    var run = JSON.parse(event.data);
    if (step) { step.textContent = run.step || ""; }
    var badge = status.querySelector(".state");
    if (badge) { badge.textContent = run.state; badge.className = "state s-" + run.state; }
  });
  events.addEventListener("done", function () { events.close(); window.location.reload(); });
})();
"#;

async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}
