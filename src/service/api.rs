//! The JSON API for CI, under `/api/v1`: partners, profiles, waivers, accounts, runs (start,
//! poll, stream, reports) and diffs. Reads take a token or a page session; writes take a token
//! (`Authorization: Bearer …`) only. Every route is added through [`ApiRoutes`], which records
//! it, so the OpenAPI document can be checked against what is served.

use super::auth::{self, Viewer};
use super::error::ServiceError;
use super::runs::{self, RunRequest};
use super::storage::{state, RunRow, StoredProfile, StoredWaiver};
use super::AppState;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, MethodRouter};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};

/// The API's prefix.
pub const PREFIX: &str = "/api/v1";

/// The API router and the `(method, path)` of every route it serves.
pub struct ApiRoutes {
    /// The router.
    pub router: Router<AppState>,
    /// Every route as `(METHOD, path)`, paths in OpenAPI's `{param}` form.
    pub routes: Vec<(&'static str, String)>,
}

impl ApiRoutes {
    fn add(mut self, method: &'static str, path: &str, handler: MethodRouter<AppState>) -> Self {
        let path = format!("{PREFIX}{path}");
        self.router = self.router.route(&path, handler);
        self.routes.push((method, path));
        self
    }
}

/// Every API route.
pub fn routes() -> ApiRoutes {
    ApiRoutes {
        router: Router::new(),
        routes: Vec::new(),
    }
    .add("GET", "/openapi.json", get(openapi))
    .add("GET", "/whoami", get(whoami))
    .add("GET", "/partners", get(list_partners))
    .add("POST", "/partners", post(create_partner))
    .add("GET", "/partners/{partner}", get(get_partner))
    .add("GET", "/partners/{partner}/profiles", get(list_profiles))
    .add("POST", "/partners/{partner}/profiles", post(upload_profile))
    .add("GET", "/partners/{partner}/waivers", get(list_waivers))
    .add("POST", "/partners/{partner}/waivers", post(create_waiver))
    .add(
        "DELETE",
        "/partners/{partner}/waivers/{waiver}",
        delete(remove_waiver),
    )
    .add("POST", "/accounts", post(create_account))
    .add("GET", "/runs", get(list_runs))
    .add("POST", "/runs", post(start_run))
    .add("GET", "/runs/{run}", get(get_run))
    .add("GET", "/runs/{run}/events", get(run_events))
    .add("GET", "/runs/{run}/reports/{format}", get(run_report))
    .add("GET", "/diff", get(diff))
}

/// A run as the API shows it (never a secret: only the names of the variables given).
pub fn run_json(run: &RunRow) -> Value {
    let time = |ms: Option<i64>| ms.map(rfc3339);
    let list = |text: &str| -> Vec<String> {
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let base = format!("{PREFIX}/runs/{}", run.id);
    json!({
        "id": run.id,
        "partner": run.partner,
        "profile_id": run.profile_id,
        "profile": run.profile,
        "state": run.state,
        "target": if run.mock { "mock" } else { "sandbox" },
        "faults": list(&run.faults),
        "base_url": run.base_url,
        "seed": run.seed,
        "only": list(&run.only),
        "secrets_given": list(&run.secret_names),
        "created_by": run.created_by,
        "created_at": rfc3339(run.created_at),
        "started_at": time(run.started_at),
        "finished_at": time(run.finished_at),
        "step": run.step,
        "exit_code": run.exit_code,
        "verdict": verdict(run),
        "totals": run.totals.as_deref().and_then(|t| serde_json::from_str::<Value>(t).ok()),
        "error": run.error,
        "instance": run.worker,
        "links": {
            "self": base,
            "page": format!("/runs/{}", run.id),
            "events": format!("{base}/events"),
            "reports": (run.state == state::FINISHED).then(|| json!({
                "json": format!("{base}/reports/json"),
                "junit": format!("{base}/reports/junit"),
                "har": format!("{base}/reports/har"),
                "html": format!("{base}/reports/html"),
                "bundle": format!("{base}/reports/bundle"),
            })),
        },
    })
}

/// A finished run's verdict in words: conformant, not-conformant, could-not-run.
pub fn verdict(run: &RunRow) -> Option<&'static str> {
    let word = match run.exit_code {
        Some(0) => "conformant",
        Some(1) => "not-conformant",
        _ => "could-not-run",
    };
    (run.state == state::FINISHED).then_some(word)
}

/// RFC 3339 (UTC, milliseconds) of ms since the epoch.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn body<T>(extracted: Result<Json<T>, JsonRejection>) -> Result<T, ServiceError> {
    extracted
        .map(|Json(value)| value)
        .map_err(|rejection| ServiceError::Invalid(rejection.body_text()))
}

fn query<T>(extracted: Result<Query<T>, QueryRejection>) -> Result<T, ServiceError> {
    extracted
        .map(|Query(value)| value)
        .map_err(|rejection| ServiceError::Invalid(rejection.body_text()))
}

async fn openapi() -> Json<Value> {
    Json(super::openapi::document())
}

async fn whoami(viewer: Viewer) -> Json<Value> {
    Json(json!({
        "name": viewer.account.name,
        "role": viewer.account.role,
        "partners": viewer.partners,
    }))
}

async fn list_partners(
    State(app): State<AppState>,
    viewer: Viewer,
) -> Result<Json<Value>, ServiceError> {
    let partners: Vec<_> = app
        .storage
        .partners()
        .await?
        .into_iter()
        .filter(|p| viewer.can_see(p.id))
        .collect();
    Ok(Json(json!({ "partners": partners })))
}

/// A new partner.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPartner {
    /// The name in URLs: lower-case letters, digits and dashes.
    pub slug: String,
    /// The name shown.
    pub name: String,
}

/// Checks and creates a partner (admin).
pub async fn add_partner(
    app: &AppState,
    viewer: &Viewer,
    new: NewPartner,
) -> Result<i64, ServiceError> {
    viewer.require_admin()?;
    let slug = new.slug.trim();
    let valid = !slug.is_empty()
        && slug.len() <= 40
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if !valid {
        return Err(ServiceError::Invalid(format!(
            "slug: `{slug}` must be 1 to 40 lower-case letters, digits or dashes"
        )));
    }
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 120 {
        return Err(ServiceError::Invalid(
            "name: 1 to 120 characters".to_owned(),
        ));
    }
    Ok(app.storage.create_partner(slug, name).await?)
}

async fn create_partner(
    State(app): State<AppState>,
    viewer: Viewer,
    new: Result<Json<NewPartner>, JsonRejection>,
) -> Result<Response, ServiceError> {
    viewer.require_token()?;
    let new = body(new)?;
    let slug = new.slug.trim().to_owned();
    add_partner(&app, &viewer, new).await?;
    let partner = app.storage.partner(&slug).await?;
    Ok((StatusCode::CREATED, Json(json!(partner))).into_response())
}

async fn get_partner(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let partner = viewer.partner(&app.storage, &slug).await?;
    let latest = app.storage.latest_finished(partner.id).await?;
    Ok(Json(json!({
        "id": partner.id,
        "slug": partner.slug,
        "name": partner.name,
        "latest": latest.as_ref().map(run_json),
    })))
}

fn profile_json(partner: &str, profile: &StoredProfile) -> Value {
    json!({
        "id": profile.id,
        "partner": partner,
        "name": profile.name,
        "digest": profile.digest,
        "uploaded_at": rfc3339(profile.uploaded_at),
    })
}

async fn list_profiles(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let partner = viewer.partner(&app.storage, &slug).await?;
    let profiles: Vec<Value> = app
        .storage
        .profiles(partner.id)
        .await?
        .iter()
        .map(|p| profile_json(&partner.slug, p))
        .collect();
    Ok(Json(json!({ "profiles": profiles })))
}

/// A file name fit to show and to put in a reproduce command.
pub fn profile_name(given: &str) -> String {
    let base = given.rsplit(['/', '\\']).next().unwrap_or_default();
    let name: String = base
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .take(80)
        .collect();
    if name.trim_matches('.').is_empty() {
        "profile.toml".to_owned()
    } else {
        name
    }
}

/// Checks an uploaded profile as `spoke profile check` does and stores it; the problems, each
/// with its line, when it is refused.
pub async fn add_profile(
    app: &AppState,
    viewer: &Viewer,
    slug: &str,
    name: &str,
    bytes: &[u8],
) -> Result<(i64, String), ServiceError> {
    let partner = viewer.partner(&app.storage, slug).await?;
    if bytes.len() > super::MAX_PROFILE {
        return Err(ServiceError::TooLarge(format!(
            "the profile has {} bytes; at most {} are accepted",
            bytes.len(),
            super::MAX_PROFILE
        )));
    }
    let text = std::str::from_utf8(bytes).map_err(|error| {
        ServiceError::Invalid(format!("the profile is not UTF-8 text: {error}"))
    })?;
    let name = profile_name(name);
    match crate::profile::Profile::parse(&name, text) {
        Ok(_) => {}
        Err(crate::profile::ProfileError::Invalid { problems }) => {
            return Err(ServiceError::Profile(problems))
        }
        Err(other) => return Err(ServiceError::Invalid(other.to_string())),
    }
    let digest = crate::digest::sha256(text.as_bytes());
    let id = app
        .storage
        .add_profile(partner.id, &name, text, &digest, viewer.account.id)
        .await?;
    Ok((id, partner.slug))
}

/// `?name=` of a profile upload.
#[derive(Debug, Deserialize)]
struct UploadQuery {
    name: Option<String>,
}

async fn upload_profile(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    params: Result<Query<UploadQuery>, QueryRejection>,
    bytes: axum::body::Bytes,
) -> Result<Response, ServiceError> {
    viewer.require_token()?;
    let params = query(params)?;
    let name = params.name.unwrap_or_else(|| "profile.toml".into());
    let (id, slug) = add_profile(&app, &viewer, &slug, &name, &bytes).await?;
    let stored = app
        .storage
        .profile(id)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("no profile {id}")))?;
    Ok((StatusCode::CREATED, Json(profile_json(&slug, &stored))).into_response())
}

async fn list_waivers(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
) -> Result<Json<Value>, ServiceError> {
    let partner = viewer.partner(&app.storage, &slug).await?;
    let waivers = app.storage.waivers(partner.id).await?;
    Ok(Json(json!({ "waivers": waivers })))
}

/// A new waiver.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewWaiver {
    /// The rule id.
    pub rule: String,
    /// Why the failure is accepted for now.
    pub reason: String,
    /// Who answers for it (an email).
    pub owner: String,
    /// The last day it holds, YYYY-MM-DD.
    pub expires: String,
}

/// Checks a waiver by the waivers file's rules and stores it (admin: a waiver is agreed with
/// the Connector team).
pub async fn add_waiver(
    app: &AppState,
    viewer: &Viewer,
    slug: &str,
    new: NewWaiver,
) -> Result<StoredWaiver, ServiceError> {
    let partner = viewer.partner(&app.storage, slug).await?;
    viewer.require_admin()?;
    let too_long = |field: &str, value: &str| {
        (value.chars().count() > 500)
            .then(|| ServiceError::Invalid(format!("{field}: at most 500 characters")))
    };
    for (field, value) in [("reason", &new.reason), ("owner", &new.owner)] {
        if let Some(error) = too_long(field, value) {
            return Err(error);
        }
    }
    let mut waiver = StoredWaiver {
        id: 0,
        rule: new.rule.trim().to_owned(),
        reason: new.reason.trim().to_owned(),
        owner: new.owner.trim().to_owned(),
        expires: new.expires.trim().to_owned(),
    };
    runs::waivers_of(&partner.slug, std::slice::from_ref(&waiver))?;
    if waiver.reason.is_empty() || waiver.owner.is_empty() {
        return Err(ServiceError::Invalid(
            "reason and owner: both are needed".into(),
        ));
    }
    waiver.id = app
        .storage
        .add_waiver(partner.id, &waiver, viewer.account.id)
        .await?;
    Ok(waiver)
}

async fn create_waiver(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(slug): Path<String>,
    new: Result<Json<NewWaiver>, JsonRejection>,
) -> Result<Response, ServiceError> {
    viewer.require_token()?;
    let waiver = add_waiver(&app, &viewer, &slug, body(new)?).await?;
    Ok((StatusCode::CREATED, Json(json!(waiver))).into_response())
}

async fn remove_waiver(
    State(app): State<AppState>,
    viewer: Viewer,
    Path((slug, id)): Path<(String, i64)>,
) -> Result<StatusCode, ServiceError> {
    viewer.require_token()?;
    let partner = viewer.partner(&app.storage, &slug).await?;
    viewer.require_admin()?;
    if app.storage.delete_waiver(partner.id, id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ServiceError::NotFound(format!("{slug} has no waiver {id}")))
    }
}

/// A new account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// Unique name.
    pub name: String,
    /// admin or partner.
    pub role: String,
    /// The partners a partner account sees, by slug.
    #[serde(default)]
    pub partners: Vec<String>,
}

/// Checks and creates an account (admin); returns its token, shown this once.
pub async fn add_account(
    app: &AppState,
    viewer: &Viewer,
    new: NewAccount,
) -> Result<String, ServiceError> {
    viewer.require_admin()?;
    let name = new.name.trim();
    if name.is_empty()
        || name.len() > 80
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'))
    {
        return Err(ServiceError::Invalid(
            "name: 1 to 80 letters, digits, dots, dashes, underscores or @".into(),
        ));
    }
    if new.role != auth::ADMIN && new.role != auth::PARTNER {
        return Err(ServiceError::Invalid(format!(
            "role: `{}` is neither admin nor partner",
            new.role
        )));
    }
    let mut partners = Vec::new();
    for slug in &new.partners {
        let partner = app
            .storage
            .partner(slug.trim())
            .await?
            .ok_or_else(|| ServiceError::Invalid(format!("partners: no partner `{slug}`")))?;
        partners.push(partner.id);
    }
    let token = auth::random_token();
    let id = app
        .storage
        .create_account(name, &new.role, &auth::token_hash(&token))
        .await?;
    for partner in partners {
        app.storage.grant(id, partner).await?;
    }
    Ok(token)
}

async fn create_account(
    State(app): State<AppState>,
    viewer: Viewer,
    new: Result<Json<NewAccount>, JsonRejection>,
) -> Result<Response, ServiceError> {
    viewer.require_token()?;
    let new = body(new)?;
    let (name, role) = (new.name.trim().to_owned(), new.role.clone());
    let token = add_account(&app, &viewer, new).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "name": name, "role": role, "token": token })),
    )
        .into_response())
}

/// `?partner=&before=&limit=` of the run list.
#[derive(Debug, Deserialize)]
pub struct RunsQuery {
    /// Only this partner's runs.
    pub partner: Option<String>,
    /// Only runs with a smaller id (the next page).
    pub before: Option<i64>,
    /// At most this many (1–200, default 50).
    pub limit: Option<i64>,
}

async fn list_runs(
    State(app): State<AppState>,
    viewer: Viewer,
    params: Result<Query<RunsQuery>, QueryRejection>,
) -> Result<Json<Value>, ServiceError> {
    let params = query(params)?;
    let limit = params.limit.unwrap_or(50).clamp(1, 200);
    let only_partner;
    let filter = match &params.partner {
        Some(slug) => {
            only_partner = [viewer.partner(&app.storage, slug).await?.id];
            Some(&only_partner[..])
        }
        None => viewer.partner_filter(),
    };
    let runs = app.storage.runs(filter, params.before, limit).await?;
    Ok(Json(json!({
        "runs": runs.iter().map(run_json).collect::<Vec<_>>(),
        "next": (runs.len() as i64 == limit).then(|| runs.last().map(|r| r.id)).flatten(),
    })))
}

async fn start_run(
    State(app): State<AppState>,
    viewer: Viewer,
    request: Result<Json<RunRequest>, JsonRejection>,
) -> Result<Response, ServiceError> {
    viewer.require_token()?;
    let id = runs::start(&app, &viewer, body(request)?).await?;
    let run = visible_run(&app, &viewer, id).await?;
    let location = format!("{PREFIX}/runs/{id}");
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        Json(run_json(&run)),
    )
        .into_response())
}

/// Run `id`, when the viewer may see it.
pub async fn visible_run(app: &AppState, viewer: &Viewer, id: i64) -> Result<RunRow, ServiceError> {
    match app.storage.run(id).await? {
        Some(run) if viewer.can_see(run.partner_id) => Ok(run),
        _ => Err(ServiceError::NotFound(format!("no run {id}"))),
    }
}

async fn get_run(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ServiceError> {
    Ok(Json(run_json(&visible_run(&app, &viewer, id).await?)))
}

async fn run_events(
    State(app): State<AppState>,
    viewer: Viewer,
    Path(id): Path<i64>,
) -> Result<Response, ServiceError> {
    let run = visible_run(&app, &viewer, id).await?;
    Ok(super::events::stream(app, run).into_response())
}

/// The report formats a finished run has: `(name, content type, file name suffix)`.
pub const REPORT_FORMATS: &[(&str, &str, &str)] = &[
    ("json", "application/json", ".json"),
    ("junit", "application/xml", ".junit.xml"),
    ("har", "application/json", ".har"),
    ("html", "text/html; charset=utf-8", ".html"),
    ("bundle", "application/zip", "-bundle.zip"),
];

async fn run_report(
    State(app): State<AppState>,
    viewer: Viewer,
    Path((id, format)): Path<(i64, String)>,
) -> Result<Response, ServiceError> {
    let run = visible_run(&app, &viewer, id).await?;
    let (name, content_type, suffix) = REPORT_FORMATS
        .iter()
        .find(|(name, ..)| *name == format)
        .ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no report format `{format}` (json, junit, har, html, bundle)"
            ))
        })?;
    if run.state != state::FINISHED {
        return Err(ServiceError::NotFound(format!(
            "run {id} is {}: reports come when it has finished",
            run.state
        )));
    }
    let bytes = app
        .storage
        .report(id, name)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("run {id} has no {name} report")))?;
    Ok((
        [
            (header::CONTENT_TYPE, (*content_type).to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"spoke-run-{id}{suffix}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}

/// `?old=&new=` of a diff.
#[derive(Debug, Deserialize)]
pub struct DiffQuery {
    /// The earlier run.
    pub old: i64,
    /// The later run.
    pub new: i64,
}

/// Two finished runs compared rule by rule, with both JSON reports.
pub struct RunDiff {
    /// The comparison `spoke diff` makes.
    pub diff: crate::report::diff::ReportDiff,
    /// The earlier run and its JSON report.
    pub old: (RunRow, Value),
    /// The later run and its JSON report.
    pub new: (RunRow, Value),
}

/// Compares two runs the viewer may see, as `spoke diff` compares two JSON reports.
pub async fn diff_runs(
    app: &AppState,
    viewer: &Viewer,
    old: i64,
    new: i64,
) -> Result<RunDiff, ServiceError> {
    let mut sides = Vec::new();
    for id in [old, new] {
        let run = visible_run(app, viewer, id).await?;
        if run.state != state::FINISHED {
            return Err(ServiceError::Invalid(format!(
                "run {id} is {}: only finished runs have verdicts to compare",
                run.state
            )));
        }
        let bytes = app
            .storage
            .report(id, "json")
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("run {id} has no JSON report")))?;
        sides.push((run, bytes));
    }
    let dir = std::env::temp_dir().join(format!("spoke-serve-diff-{}", auth::random_token()));
    std::fs::create_dir_all(&dir)
        .map_err(|error| ServiceError::Invalid(format!("cannot compare: {error}")))?;
    let paths: Vec<std::path::PathBuf> = sides
        .iter()
        .map(|(run, _)| dir.join(format!("run-{}.json", run.id)))
        .collect();
    let written = sides
        .iter()
        .zip(&paths)
        .try_for_each(|((_, bytes), path)| std::fs::write(path, bytes));
    let diff = written
        .map_err(|error| ServiceError::Invalid(format!("cannot compare: {error}")))
        .and_then(|()| {
            crate::report::diff::diff_files(&paths[0], &paths[1])
                .map_err(|error| ServiceError::Invalid(error.to_string()))
        });
    let _ = std::fs::remove_dir_all(&dir);
    let diff = diff?;
    let mut sides = sides.into_iter().map(|(run, bytes)| {
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (run, json)
    });
    let (old, new) = (
        sides.next().expect("two sides"),
        sides.next().expect("two sides"),
    );
    Ok(RunDiff { diff, old, new })
}

async fn diff(
    State(app): State<AppState>,
    viewer: Viewer,
    params: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Json<Value>, ServiceError> {
    let params = query(params)?;
    let compared = diff_runs(&app, &viewer, params.old, params.new).await?;
    let mut value: Value = serde_json::from_str(&crate::report::diff::render_json(&compared.diff))
        .unwrap_or(Value::Null);
    value["old"]["run"] = json!(params.old);
    value["new"]["run"] = json!(params.new);
    Ok(Json(value))
}
