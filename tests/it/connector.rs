//! `spoke connector`: the mock Connector API driven over HTTP with XML bodies like a partner's,
//! SmartMatch through the API, the state file across restarts, and every SEND- rule failing
//! against a misbehaving sender.

use spoke::inbound::store::{Intouch, Seed, Tenant, UserType};
use spoke::inbound::{self, checks, ConnectorOptions, ConnectorState, RunningConnector};
use spoke::suite::{Catalog, Outcome};
use spoke::xml;
use std::path::PathBuf;

fn tenant() -> Tenant {
    Tenant {
        provider: "ACME".into(),
        client: "C-7".into(),
        club: "K-3".into(),
    }
}

fn options(state_file: Option<PathBuf>) -> ConnectorOptions {
    ConnectorOptions {
        tenant: tenant(),
        state_file,
        body_limit: inbound::DEFAULT_BODY_LIMIT,
    }
}

async fn spawn_with(options: ConnectorOptions) -> RunningConnector {
    let (state, _) = ConnectorState::open(options, Seed::builtin())
        .await
        .expect("a usable state");
    inbound::spawn(state, "127.0.0.1:0".parse().unwrap())
        .await
        .expect("binds 127.0.0.1:0")
}

async fn spawn() -> RunningConnector {
    spawn_with(options(None)).await
}

/// A partner's sandbox talking to the Connector.
struct Sender {
    http: reqwest::Client,
    api: String,
}

/// An answer: status and the parsed XML document.
struct Reply {
    status: u16,
    document: xml::Element,
}

impl Reply {
    fn get(&self, name: &str) -> String {
        self.document
            .child(name)
            .map(|e| e.text())
            .unwrap_or_else(|| panic!("no <{name}> in <{}>", self.document.name))
    }
}

fn provider(record: &str) -> String {
    format!(
        "<providerInfo><identifier>ACME</identifier><clientID>C-7</clientID><clubID>K-3</clubID><recordID>{record}</recordID></providerInfo>"
    )
}

/// A `<user>` document with `info` inside `<userInfo>`.
fn user(record: &str, info: &str) -> String {
    format!(
        "<?xml version=\"1.0\"?>\n<user>{}<userInfo>{info}</userInfo></user>",
        provider(record)
    )
}

fn person(first: &str, last: &str, email: &str, kind: &str, status: &str) -> String {
    format!(
        "<firstname>{first}</firstname><lastname>{last}</lastname><email>{email}</email><userType>{kind}</userType><userStatus>{status}</userStatus>"
    )
}

fn lead_source(record: &str, name: &str) -> String {
    format!(
        "<leadSource>{}<leadInfo><name>{name}</name><active>true</active></leadInfo></leadSource>",
        provider(record)
    )
}

impl Sender {
    fn to(running: &RunningConnector) -> Sender {
        Sender {
            http: reqwest::Client::new(),
            api: running.api_url(),
        }
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Reply {
        let response = request.send().await.expect("the Connector answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let document =
            xml::parse(&text).unwrap_or_else(|e| panic!("answer is not XML ({e}): {text}"));
        Reply { status, document }
    }

    async fn post(&self, resource: &str, body: impl Into<reqwest::Body>) -> Reply {
        self.send(
            self.http
                .post(format!("{}/{resource}", self.api))
                .header("content-type", "application/xml")
                .body(body),
        )
        .await
    }

    async fn read(&self, resource: &str, query: &str) -> Reply {
        self.send(self.http.get(format!("{}/{resource}?{query}", self.api)))
            .await
    }

    async fn read_record(&self, resource: &str, record: &str) -> Reply {
        self.read(
            resource,
            &format!("identifier=ACME&clientID=C-7&clubID=K-3&recordID={record}"),
        )
        .await
    }
}

fn assert_refused(reply: &Reply, status: u16, reason: &str, mentions: &str) {
    assert_eq!(reply.status, status, "{:?}", reply.document);
    assert_eq!(reply.document.name, "error");
    assert_eq!(reply.get("reason"), reason);
    assert_eq!(reply.get("status"), status.to_string());
    assert_eq!(reply.get("errorUUID").len(), 36);
    let message = reply.get("message");
    assert!(
        message.contains(mentions),
        "`{message}` does not mention `{mentions}`"
    );
}

#[tokio::test]
async fn a_saved_user_reads_back_with_its_uuid_and_an_update_keeps_it() {
    let running = spawn().await;
    let sender = Sender::to(&running);
    let saved = sender
        .post(
            "user",
            user(
                "P-1",
                &format!(
                    "{}<gender>F</gender><birthdate>1991-04-30</birthdate><mobile>+1 555 0100</mobile>",
                    person("Zoë", "Ândrade", "zoe@example.com", "PROSPECT", "ACTIVE")
                ),
            ),
        )
        .await;
    assert_eq!(saved.status, 200);
    assert_eq!(saved.document.name, "response");
    let uuid = saved.get("uuid");
    let read = sender.read_record("user", "P-1").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.get("uuid"), uuid);
    let info = read.document.child("userInfo").unwrap();
    assert_eq!(info.child("firstname").unwrap().text(), "Zoë");
    assert_eq!(info.child("lastname").unwrap().text(), "Ândrade");
    assert_eq!(info.child("birthdate").unwrap().text(), "1991-04-30");
    let updated = sender
        .post(
            "user",
            user(
                "P-1",
                &person(
                    "Zoë",
                    "Ândrade",
                    "zoe@new.example.com",
                    "PROSPECT",
                    "ACTIVE",
                ),
            ),
        )
        .await;
    assert_eq!(updated.get("uuid"), uuid);
    let intouch = running.state.intouch().await;
    let with_id: Vec<_> = intouch
        .users
        .iter()
        .filter(|u| u.record_id.as_deref() == Some("P-1"))
        .collect();
    assert_eq!(with_id.len(), 1);
    assert_eq!(with_id[0].fields["email"], "zoe@new.example.com");
}

#[tokio::test]
async fn staff_and_lead_sources_save_and_read_back() {
    let running = spawn().await;
    let sender = Sender::to(&running);
    let staff = format!(
        "<staff>{}<userInfo><firstname>Rita</firstname><lastname>Lobo</lastname><email>rita@club.example</email></userInfo></staff>",
        provider("S-1")
    );
    let saved = sender.post("staff", staff).await;
    assert_eq!(saved.status, 200);
    let read = sender.read_record("staff", "S-1").await;
    assert_eq!(read.get("uuid"), saved.get("uuid"));
    assert_eq!(read.document.name, "staff");
    let source = sender
        .post("leadsource", lead_source("SRC-1", "Flyer"))
        .await;
    assert_eq!(source.status, 200);
    let read = sender.read_record("leadsource", "SRC-1").await;
    assert_eq!(read.document.name, "leadSource");
    assert_eq!(
        read.document
            .descendant(&["leadInfo", "name"])
            .unwrap()
            .text(),
        "Flyer"
    );
    assert_eq!(read.get("uuid"), source.get("uuid"));
}

#[tokio::test]
async fn reads_accept_the_documented_query_names_and_the_element_names() {
    let running = spawn().await;
    let sender = Sender::to(&running);
    let staff = format!(
        "<staff>{}<userInfo><firstname>Rita</firstname><lastname>Lobo</lastname></userInfo></staff>",
        provider("R-1")
    );
    let saves = [
        (
            "user",
            user(
                "R-1",
                &person("Ana", "Reis", "ana@example.com", "PROSPECT", "ACTIVE"),
            ),
        ),
        ("staff", staff),
        ("leadsource", lead_source("R-1", "Radio")),
    ];
    for (resource, body) in saves {
        let uuid = sender.post(resource, body).await.get("uuid");
        for query in [
            "provider=ACME&client_id=C-7&club_id=K-3&recordID=R-1",
            "identifier=ACME&clientID=C-7&clubID=K-3&recordID=R-1",
            // Both spellings agreeing, and the two mixed.
            "provider=ACME&identifier=ACME&client_id=C-7&clubID=K-3&recordID=R-1",
        ] {
            let read = sender.read(resource, query).await;
            assert_eq!(read.status, 200, "{resource}?{query}: {:?}", read.document);
            assert_eq!(read.get("uuid"), uuid, "{resource}?{query}");
        }
        let refused = [
            (
                "provider=ACME&client_id=C-7&recordID=R-1",
                400,
                "`club_id` (or `clubID`) is missing",
            ),
            (
                "provider=ACME&client_id=C-7&club_id=K-3",
                400,
                "`recordID` is missing",
            ),
            (
                "provider=ACME&client_id=C-7&club_id=K-9&recordID=R-1",
                403,
                "K-9",
            ),
            (
                "provider=ACME&clientID=C-7&client_id=C-8&club_id=K-3&recordID=R-1",
                400,
                "`client_id=C-8` and `clientID=C-7`",
            ),
        ];
        for (query, status, mentions) in refused {
            let read = sender.read(resource, query).await;
            assert_refused(&read, status, "VALIDATION", mentions);
        }
    }
}

#[tokio::test]
async fn every_error_case_is_answered_with_reason_error_uuid_and_message() {
    let running = spawn().await;
    let sender = Sender::to(&running);
    let good = person("Ana", "Lopes", "ana@example.com", "PROSPECT", "ACTIVE");
    // (case, resource, body, status, reason, the message mentions)
    let posts: Vec<(&str, &str, String, u16, &str, &str)> = vec![
        (
            "malformed XML",
            "user",
            "<user><providerInfo>".into(),
            400,
            "VALIDATION",
            "not XML",
        ),
        (
            "empty body",
            "user",
            String::new(),
            400,
            "VALIDATION",
            "not XML",
        ),
        (
            "a DOCTYPE (entity expansion)",
            "user",
            "<?xml version=\"1.0\"?><!DOCTYPE user [<!ENTITY a \"aaaa\">]><user>&a;</user>".into(),
            400,
            "VALIDATION",
            "not XML",
        ),
        (
            "the wrong root",
            "user",
            lead_source("X", "Flyer"),
            400,
            "VALIDATION",
            "<leadSource>",
        ),
        (
            "no first name",
            "user",
            user("P-2", &good.replace("<firstname>Ana</firstname>", "")),
            400,
            "VALIDATION",
            "<firstname>",
        ),
        (
            "no last name",
            "user",
            user("P-2", &good.replace("<lastname>Lopes</lastname>", "")),
            400,
            "VALIDATION",
            "<lastname>",
        ),
        (
            "no user type",
            "user",
            user("P-2", &good.replace("<userType>PROSPECT</userType>", "")),
            400,
            "VALIDATION",
            "<userType>",
        ),
        (
            "a user type outside PROSPECT/MEMBER",
            "user",
            user("P-2", &good.replace("PROSPECT", "LEAD")),
            400,
            "VALIDATION",
            "`LEAD`",
        ),
        (
            "a user status outside ACTIVE/INACTIVE",
            "user",
            user("P-2", &good.replace(">ACTIVE<", ">PAUSED<")),
            400,
            "VALIDATION",
            "`PAUSED`",
        ),
        (
            "a gender outside M/F",
            "user",
            user("P-2", &format!("{good}<gender>female</gender>")),
            400,
            "VALIDATION",
            "`female`",
        ),
        (
            "a birth date not yyyy-mm-dd",
            "user",
            user("P-2", &format!("{good}<birthdate>30/04/1991</birthdate>")),
            400,
            "VALIDATION",
            "yyyy-mm-dd",
        ),
        (
            "an impossible birth date",
            "user",
            user("P-2", &format!("{good}<birthdate>1991-02-30</birthdate>")),
            400,
            "VALIDATION",
            "1991-02-30",
        ),
        (
            "an unknown field",
            "user",
            user("P-2", &format!("{good}<shoeSize>42</shoeSize>")),
            400,
            "VALIDATION",
            "<shoeSize>",
        ),
        (
            "no provider info",
            "user",
            format!("<user><userInfo>{good}</userInfo></user>"),
            400,
            "VALIDATION",
            "<identifier>",
        ),
        (
            "no record id",
            "user",
            user("", &good),
            400,
            "VALIDATION",
            "<recordID>",
        ),
        (
            "an unknown provider",
            "user",
            user("P-2", &good).replace(">ACME<", ">OTHER<"),
            403,
            "VALIDATION",
            "provider identifier `OTHER`",
        ),
        (
            "an unknown client",
            "user",
            user("P-2", &good).replace(">C-7<", ">C-8<"),
            403,
            "VALIDATION",
            "client id `C-8`",
        ),
        (
            "an unknown club",
            "user",
            user("P-2", &good).replace(">K-3<", ">K-4<"),
            403,
            "VALIDATION",
            "club id `K-4`",
        ),
        (
            "a lead source without a name",
            "leadsource",
            lead_source("SRC-9", ""),
            400,
            "VALIDATION",
            "<name>",
        ),
        (
            "an unknown resource",
            "member",
            user("P-2", &good),
            404,
            "UNKNOWN",
            "no resource",
        ),
    ];
    for (case, resource, body, status, reason, mentions) in posts {
        let reply = sender.post(resource, body).await;
        assert_eq!(reply.status, status, "{case}");
        assert_refused(&reply, status, reason, mentions);
    }
    let not_utf8 = sender.post("user", vec![0xff_u8, 0xfe, 0x3c]).await;
    assert_refused(&not_utf8, 400, "VALIDATION", "UTF-8");
    let huge = user("P-3", &"<company>x</company>".repeat(10_000));
    assert_refused(&sender.post("user", huge).await, 413, "VALIDATION", "bytes");
    let reads = [
        (
            "identifier=ACME&clientID=C-7&clubID=K-3",
            400,
            "VALIDATION",
            "recordID",
        ),
        (
            "clientID=C-7&clubID=K-3&recordID=P-1",
            400,
            "VALIDATION",
            "identifier",
        ),
        (
            "identifier=ACME&clientID=C-7&clubID=K-9&recordID=P-1",
            403,
            "VALIDATION",
            "K-9",
        ),
        (
            "identifier=ACME&clientID=C-7&clubID=K-3&recordID=NOPE",
            404,
            "DATABASE",
            "NOPE",
        ),
    ];
    for (query, status, reason, mentions) in reads {
        assert_refused(&sender.read("user", query).await, status, reason, mentions);
    }
    let delete = sender
        .send(sender.http.delete(format!("{}/user", sender.api)))
        .await;
    assert_refused(&delete, 405, "UNKNOWN", "INACTIVE");
    // Nothing refused reached InTouch.
    let intouch = running.state.intouch().await;
    assert!(intouch
        .users
        .iter()
        .all(|u| u.record_id.as_deref() != Some("P-2")));
}

#[tokio::test]
async fn hostile_bodies_never_get_a_5xx() {
    let running = spawn().await;
    let sender = Sender::to(&running);
    let deep = format!("{}{}", "<a>".repeat(5_000), "</a>".repeat(5_000));
    let bodies = [
        deep,
        "<user>\u{0}</user>".to_owned(),
        "<user><providerInfo><recordID><x/></recordID></providerInfo></user>".to_owned(),
        "<user><userInfo><firstname>a</firstname><firstname>b</firstname></userInfo></user>"
            .to_owned(),
        "<user xmlns:x=\"urn:x\"><x:providerInfo/></user>".to_owned(),
        "]]>".to_owned(),
        "<user>&unknown;</user>".to_owned(),
    ];
    for body in bodies {
        let reply = sender.post("user", body.clone()).await;
        assert!(
            (400..500).contains(&reply.status),
            "{} for {body:.60}",
            reply.status
        );
    }
}

#[tokio::test]
async fn smart_match_converts_a_prospect_through_the_api() {
    let running = spawn().await;
    let sender = Sender::to(&running);
    let before = running.state.intouch().await;
    let carla = before
        .users
        .iter()
        .find(|u| u.fields["firstname"] == "Carla")
        .expect("the built-in InTouch has Carla Dias")
        .clone();
    // Another spelling of the name and email: SmartMatch folds case.
    let reply = sender
        .post(
            "user",
            user(
                "M-77",
                &person(
                    "CARLA",
                    "dias",
                    "Carla.Dias@Example.com",
                    "MEMBER",
                    "ACTIVE",
                ),
            ),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.get("uuid"), carla.uuid, "the prospect is converted");
    // A member nobody fits is inserted.
    let reply = sender
        .post(
            "user",
            user(
                "M-78",
                &person("Nuno", "Sá", "nuno@example.com", "MEMBER", "ACTIVE"),
            ),
        )
        .await;
    assert_eq!(reply.status, 200);
    let after: Intouch = running.state.intouch().await;
    assert_eq!(after.users.len(), before.users.len() + 1);
    let converted = after.users.iter().find(|u| u.uuid == carla.uuid).unwrap();
    assert_eq!(converted.user_type, UserType::Member);
    assert_eq!(converted.record_id.as_deref(), Some("M-77"));
    // The admin endpoint shows the same state.
    let dump: serde_json::Value = reqwest::get(format!(
        "{}{}/intouch",
        running.base_url(),
        inbound::ADMIN_PREFIX
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let shown = dump["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["uuid"] == carla.uuid.as_str())
        .unwrap();
    assert_eq!(shown["user-type"], "member");
    assert_eq!(shown["converted-by"], "name-email");
}

fn temp_state(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("spoke-connector-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("intouch.db")
}

#[tokio::test]
async fn records_survive_a_restart_and_are_on_disk_before_the_answer() {
    let path = temp_state("restart");
    let running = spawn_with(options(Some(path.clone()))).await;
    let sender = Sender::to(&running);
    let saved = sender
        .post(
            "user",
            user(
                "P-9",
                &person("Ines", "Mota", "ines@example.com", "PROSPECT", "ACTIVE"),
            ),
        )
        .await;
    assert_eq!(saved.status, 200);
    // Acknowledged means committed: the file holds it while the server still runs.
    let on_disk = inbound::state::read(&path, &tenant())
        .await
        .unwrap()
        .unwrap();
    let stored = on_disk
        .users
        .iter()
        .find(|u| u.record_id.as_deref() == Some("P-9"))
        .expect("P-9 is in the file");
    assert_eq!(stored.uuid, saved.get("uuid"));
    running.stop().await.unwrap();

    let restarted = spawn_with(options(Some(path.clone()))).await;
    let sender = Sender::to(&restarted);
    let read = sender.read_record("user", "P-9").await;
    assert_eq!(read.status, 200);
    assert_eq!(read.get("uuid"), saved.get("uuid"));
    // New uuids do not repeat old ones after the restart.
    let next = sender
        .post(
            "user",
            user(
                "P-10",
                &person("Rui", "Mota", "rui@example.com", "PROSPECT", "ACTIVE"),
            ),
        )
        .await;
    assert_ne!(next.get("uuid"), saved.get("uuid"));
    restarted.stop().await.unwrap();

    // The file belongs to its tenant.
    let other = ConnectorOptions {
        tenant: Tenant {
            club: "K-99".into(),
            ..tenant()
        },
        ..options(Some(path.clone()))
    };
    let error = ConnectorState::open(other, Seed::builtin())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("K-99") && error.contains("intouch.db"),
        "{error}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[tokio::test]
async fn a_save_that_cannot_be_stored_is_refused_and_not_kept() {
    let path = temp_state("unwritable");
    let folder = path.parent().unwrap().to_owned();
    let running = spawn_with(options(Some(path.clone()))).await;
    let sender = Sender::to(&running);
    // The database refuses every write from now on, as a full disk would.
    let refuse = "CREATE TRIGGER refuse BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'no space left (test)'); END";
    sql(&path, refuse).await;
    let reply = sender
        .post(
            "user",
            user(
                "P-11",
                &person("Ana", "Reis", "ana.reis@example.com", "PROSPECT", "ACTIVE"),
            ),
        )
        .await;
    assert_refused(&reply, 500, "DATABASE", "no space left");
    let read = sender.read_record("user", "P-11").await;
    assert_eq!(read.status, 404, "an unacknowledged save is not kept");
    // Once the database accepts writes again, so does the server, and it gives no uuid twice.
    sql(&path, "DROP TRIGGER refuse").await;
    let again = sender
        .post(
            "user",
            user(
                "P-12",
                &person("Rui", "Reis", "rui.reis@example.com", "PROSPECT", "ACTIVE"),
            ),
        )
        .await;
    assert_eq!(again.status, 200);
    running.stop().await.unwrap();
    let stored = inbound::state::read(&path, &tenant())
        .await
        .unwrap()
        .unwrap();
    let records: Vec<_> = stored
        .users
        .iter()
        .filter_map(|u| u.record_id.as_deref())
        .collect();
    assert!(
        records.contains(&"P-12") && !records.contains(&"P-11"),
        "{records:?}"
    );
    let _ = std::fs::remove_dir_all(folder);
}

/// Runs one statement on a state database beside the server, as another program would.
async fn sql(path: &std::path::Path, statement: &'static str) {
    use sqlx::Connection as _;
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    let mut connection = sqlx::SqliteConnection::connect_with(&options)
        .await
        .unwrap();
    sqlx::query(statement)
        .execute(&mut connection)
        .await
        .unwrap();
    connection.close().await.unwrap();
}

/// Calls a sender makes: method, resource, and the body (POST) or query (GET).
type Calls = Vec<(&'static str, &'static str, String)>;

/// The calls a sender makes, then the verdict of one rule.
async fn verdict_after(rule: &str, calls: Calls) -> (Outcome, String) {
    verdict_with_headers(rule, calls, &[]).await
}

async fn verdict_with_headers(
    rule: &str,
    calls: Vec<(&str, &str, String)>,
    headers: &[(&str, &str)],
) -> (Outcome, String) {
    let running = spawn().await;
    let sender = Sender::to(&running);
    for (method, resource, body) in calls {
        let url = format!("{}/{resource}", sender.api);
        let mut request = match method {
            "POST" => sender.http.post(url).body(body),
            "GET" => sender.http.get(format!("{url}?{body}")),
            _ => sender.http.delete(url),
        };
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("an answer");
    }
    let calls = running.state.calls();
    let context = checks::SendContext {
        tenant: running.state.tenant(),
        initial: running.state.initial(),
        calls: &calls,
    };
    let verdict = checks::judge(&Catalog::builtin(), &context)
        .into_iter()
        .find(|v| v.rule == rule)
        .expect("the rule is in the catalog");
    (verdict.outcome, verdict.reason)
}

/// A well-behaved sender: a source, a lead naming it, its update, its conversion to member
/// with the same record id, the conversion of an InTouch prospect it was given, inactivation.
fn good_calls() -> Vec<(&'static str, &'static str, String)> {
    let lead = |status: &str, kind: &str| {
        user(
            "P-1",
            &format!(
                "{}<leadSource>SRC-1</leadSource>",
                person("Lia", "Paz", "lia@example.com", kind, status)
            ),
        )
    };
    vec![
        ("POST", "leadsource", lead_source("SRC-1", "Flyer")),
        ("POST", "user", lead("ACTIVE", "PROSPECT")),
        (
            "GET",
            "user",
            "identifier=ACME&clientID=C-7&clubID=K-3&recordID=P-1".into(),
        ),
        ("POST", "user", lead("ACTIVE", "MEMBER")),
        (
            "POST",
            "user",
            user(
                "LEAD-1001",
                &person("Ana", "Silva", "ana.silva@example.com", "MEMBER", "ACTIVE"),
            ),
        ),
        ("POST", "user", lead("INACTIVE", "MEMBER")),
    ]
}

#[tokio::test]
async fn a_well_behaved_sender_passes_every_send_rule() {
    for rule in [
        "SEND-001", "SEND-002", "SEND-003", "SEND-004", "SEND-005", "SEND-006", "SEND-007",
        "SEND-008",
    ] {
        let (outcome, reason) = verdict_after(rule, good_calls()).await;
        assert_eq!(outcome, Outcome::Pass, "{rule}: {reason}");
    }
}

#[tokio::test]
async fn each_send_rule_fails_against_its_misbehaving_sender() {
    let lia = |record: &str, kind: &str, status: &str| {
        user(
            record,
            &person("Lia", "Paz", "lia@example.com", kind, status),
        )
    };
    let uuid_of_seed = Seed::builtin().into_intouch(tenant()).users[0].uuid.clone();
    // (rule, what the sender does wrong, its calls, the reason mentions)
    let cases: Vec<(&str, &str, Calls, &str)> = vec![
        (
            "SEND-001",
            "a save for another club",
            vec![(
                "POST",
                "user",
                lia("P-1", "PROSPECT", "ACTIVE").replace(">K-3<", ">K-4<"),
            )],
            "clubID `K-4`",
        ),
        (
            "SEND-001",
            "a read without the client id",
            vec![(
                "GET",
                "user",
                "identifier=ACME&clubID=K-3&recordID=P-1".into(),
            )],
            "clientID",
        ),
        (
            "SEND-002",
            "the Connector's uuid sent as the record id",
            vec![("POST", "user", lia(&uuid_of_seed, "PROSPECT", "ACTIVE"))],
            "Connector's uuid",
        ),
        (
            "SEND-003",
            "an update under a new record id",
            vec![
                ("POST", "user", lia("P-1", "PROSPECT", "ACTIVE")),
                ("POST", "user", lia("P-1-v2", "PROSPECT", "ACTIVE")),
            ],
            "`P-1-v2` instead of `P-1`",
        ),
        (
            "SEND-004",
            "a lower-case user type",
            vec![("POST", "user", lia("P-1", "prospect", "ACTIVE"))],
            "userInfo/userType",
        ),
        (
            "SEND-005",
            "the member sent under a new record id",
            vec![
                ("POST", "user", lia("P-1", "PROSPECT", "ACTIVE")),
                ("POST", "user", lia("M-1", "MEMBER", "ACTIVE")),
            ],
            "was prospect `P-1`",
        ),
        (
            "SEND-006",
            "inactivation sent as a DELETE",
            vec![
                ("POST", "user", lia("P-1", "PROSPECT", "ACTIVE")),
                ("DELETE", "user", String::new()),
            ],
            "DELETE",
        ),
        (
            "SEND-007",
            "the lead sent before its source",
            vec![
                (
                    "POST",
                    "user",
                    user(
                        "P-1",
                        &format!(
                            "{}<leadSource>SRC-1</leadSource>",
                            person("Lia", "Paz", "lia@example.com", "PROSPECT", "ACTIVE")
                        ),
                    ),
                ),
                ("POST", "leadsource", lead_source("SRC-1", "Flyer")),
            ],
            "it came later, in call #2",
        ),
    ];
    for (rule, wrong, calls, mentions) in cases {
        let (outcome, reason) = verdict_after(rule, calls).await;
        assert_eq!(outcome, Outcome::Fail, "{rule} ({wrong}): {reason}");
        assert!(reason.contains(mentions), "{rule} ({wrong}): {reason}");
    }
}

#[tokio::test]
async fn plain_http_to_a_non_loopback_base_url_fails_send_008_and_tls_passes() {
    let calls = || {
        vec![(
            "GET",
            "user",
            "identifier=ACME&clientID=C-7&clubID=K-3&recordID=P-1".to_owned(),
        )]
    };
    let (outcome, reason) =
        verdict_with_headers("SEND-008", calls(), &[("host", "connector.example.com")]).await;
    assert_eq!(outcome, Outcome::Fail, "{reason}");
    assert!(reason.contains("connector.example.com"), "{reason}");
    let behind_tls = [
        ("host", "connector.example.com"),
        ("x-forwarded-proto", "https"),
    ];
    let (outcome, reason) = verdict_with_headers("SEND-008", calls(), &behind_tls).await;
    assert_eq!(outcome, Outcome::Pass, "{reason}");
    let forwarded = [
        ("host", "connector.example.com"),
        ("forwarded", "for=10.0.0.1;proto=https"),
    ];
    let (outcome, _) = verdict_with_headers("SEND-008", calls(), &forwarded).await;
    assert_eq!(outcome, Outcome::Pass);
}

#[tokio::test]
async fn rules_not_exercised_are_inconclusive_not_passed() {
    let (outcome, reason) = verdict_after("SEND-005", vec![]).await;
    assert_eq!(outcome, Outcome::Inconclusive, "{reason}");
    let only_prospects = vec![(
        "POST",
        "user",
        user(
            "P-1",
            &person("Lia", "Paz", "lia@example.com", "PROSPECT", "ACTIVE"),
        ),
    )];
    let (outcome, reason) = verdict_after("SEND-006", only_prospects).await;
    assert_eq!(outcome, Outcome::Inconclusive, "{reason}");
}

#[test]
fn the_dump_shows_intouch_and_certify_refuses_send_rules() {
    let dir = crate::helpers::root();
    let output = crate::helpers::run_cli(&["connector", "--dump", "--club", "K-1"], &dir);
    assert_eq!(output.status.code(), Some(0));
    let dump: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(dump["tenant"]["club"], "K-1");
    assert_eq!(dump["users"][0]["record-id"], "LEAD-1001");
    let output = crate::helpers::run_cli(&["certify", "--only", "SEND-001"], &dir);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("spoke connector"));
    let broken = std::env::temp_dir().join(format!("spoke-bad-seed-{}.toml", std::process::id()));
    std::fs::write(&broken, "[[prospect]]\nfirst-name = \"Ana\"\n").unwrap();
    let output = crate::helpers::run_cli(
        &["connector", "--dump", "--sandbox", broken.to_str().unwrap()],
        &dir,
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("last-name") && stderr.contains("spoke-bad-seed"),
        "{stderr}"
    );
    std::fs::remove_file(broken).ok();
}

#[tokio::test]
async fn the_server_stops_after_n_calls_and_writes_its_reports() {
    let dir = std::env::temp_dir().join(format!("spoke-connector-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let json = dir.join("send.json");
    let junit = dir.join("send.xml");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_spoke"))
        .args([
            "connector",
            "--port",
            "0",
            "--provider",
            "ACME",
            "--client",
            "C-7",
            "--club",
            "K-3",
            "--until",
            "2-calls",
            "--duration",
            "60s",
            "--report",
            &format!("json:{}", json.display()),
            "--report",
            &format!("junit:{}", junit.display()),
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spoke runs");
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let api = crate::helpers::connector_url(&mut stdout);
    let http = reqwest::Client::new();
    let saved = http
        .post(format!("{api}/user"))
        .body(user(
            "P-1",
            &person("Lia", "Paz", "lia@example.com", "PROSPECT", "ACTIVE"),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(saved.status().as_u16(), 200);
    let refused = http
        .post(format!("{api}/user"))
        .body("<user>")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status().as_u16(), 400);
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(status.code(), Some(1), "{rest}");
    assert!(rest.contains("SEND-004  MUST    fail"), "{rest}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(report["verdicts"].as_array().unwrap().len(), 9);
    assert_eq!(report["exchanges"].as_array().unwrap().len(), 2);
    let send_004 = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["rule"] == "SEND-004")
        .unwrap();
    assert_eq!(send_004["outcome"], "fail");
    assert_eq!(send_004["evidence"], serde_json::json!([2]));
    assert!(send_004["curl"][0].as_str().unwrap().contains("<user>"));
    // Personal data is masked to its shape in the evidence.
    let evidence = report["exchanges"].to_string();
    assert!(!evidence.contains("lia@example.com"), "{evidence}");
    assert!(evidence.contains("xxx@example.com"), "{evidence}");
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert_eq!(xml.matches("<testcase").count(), 9);
    std::fs::remove_dir_all(&dir).ok();
}

/// Bodies made of fragments of valid documents, shuffled and cut: mostly near-valid XML.
fn fragments() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let pieces = prop::sample::select(vec![
        "<user>",
        "</user>",
        "<providerInfo>",
        "</providerInfo>",
        "<identifier>ACME</identifier>",
        "<clientID>C-7</clientID>",
        "<clubID>K-3</clubID>",
        "<recordID>P-1</recordID>",
        "<userInfo>",
        "</userInfo>",
        "<firstname>Zoë</firstname>",
        "<lastname>&amp;</lastname>",
        "<userType>MEMBER</userType>",
        "<userStatus>ACTIVE</userStatus>",
        "<birthdate>2000-13-01</birthdate>",
        "<gender>M</gender>",
        "<![CDATA[x]]>",
        "&bogus;",
        "<!DOCTYPE x>",
        "<?pi x?>",
        "<a b='1' b='2'/>",
        "\u{0}",
        "é",
    ]);
    (prop::collection::vec(pieces, 0..24), any::<usize>()).prop_map(|(pieces, cut)| {
        let text: String = pieces.concat();
        let cut = if text.is_empty() {
            0
        } else {
            cut % (text.len() + 1)
        };
        let cut = (0..=cut)
            .rev()
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(0);
        text[..cut].to_owned()
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 96, failure_persistence: None, ..Default::default() })]

    #[test]
    fn no_body_gets_a_5xx_or_an_answer_that_is_not_xml(body in fragments(), resource in 0usize..3) {
        use tower::ServiceExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let options = options(None);
        let state = ConnectorState::new(Seed::builtin().into_intouch(options.tenant.clone()), options);
        let resource = ["user", "staff", "leadsource"][resource];
        let request = axum::http::Request::post(format!("{}/{resource}", inbound::wire::API_BASE))
            .body(axum::body::Body::from(body.clone()))
            .unwrap();
        let (status, text) = runtime.block_on(async {
            let response = inbound::router(state).oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, String::from_utf8(bytes.to_vec()).unwrap())
        });
        proptest::prop_assert!(status < 500, "{status} for {body:?}");
        let answer = xml::parse(&text).unwrap();
        proptest::prop_assert!(
            (status == 200) == (answer.name == "response"),
            "{status}: {text}"
        );
    }
}

#[tokio::test]
async fn a_streamed_body_over_the_cap_gets_413_without_a_length_header() {
    use tower::ServiceExt as _;
    let options = ConnectorOptions {
        body_limit: 4 * 1024,
        ..options(None)
    };
    let state = ConnectorState::new(Seed::builtin().into_intouch(tenant()), options);
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(vec![b'x'; 1024]));
    let request = axum::http::Request::post(format!("{}/user", inbound::wire::API_BASE))
        .body(axum::body::Body::from_stream(futures_util::stream::iter(
            chunks,
        )))
        .unwrap();
    assert!(request.headers().get("content-length").is_none());
    let response = inbound::router(state.clone())
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let calls = state.calls();
    assert_eq!(calls.len(), 1, "the refused call is recorded");
    assert_eq!(calls[0].exchange.status, Some(413));
}

#[tokio::test]
async fn send_009_follows_a_delivered_prospect_back_into_intouch() {
    let ana = |record: &str, email: &str| {
        user(record, &person("Ana", "Silva", email, "MEMBER", "ACTIVE"))
    };
    // LEAD-1001 is the built-in InTouch's prospect the Connector delivered.
    let (outcome, reason) = verdict_after(
        "SEND-009",
        vec![("POST", "user", ana("LEAD-1001", "ana.silva@example.com"))],
    )
    .await;
    assert_eq!(outcome, Outcome::Pass, "{reason}");
    let (outcome, reason) = verdict_after(
        "SEND-009",
        vec![("POST", "user", ana("M-9", "ana.silva@example.com"))],
    )
    .await;
    assert_eq!(outcome, Outcome::Fail);
    assert!(
        reason.contains("converted prospect `LEAD-1001` only by matching full name + email"),
        "{reason}"
    );
    let (outcome, reason) = verdict_after(
        "SEND-009",
        vec![("POST", "user", ana("M-9", "ana@new-mail.example"))],
    )
    .await;
    assert_eq!(outcome, Outcome::Fail);
    assert!(
        reason.contains("inserted a second person beside prospect `LEAD-1001`"),
        "{reason}"
    );
    let (outcome, _) = verdict_after("SEND-009", vec![]).await;
    assert_eq!(outcome, Outcome::Inconclusive);
}

#[tokio::test]
async fn a_method_outside_the_api_gets_405_with_allow() {
    use tower::ServiceExt as _;
    let options = options(None);
    let state = ConnectorState::new(
        Seed::builtin().into_intouch(options.tenant.clone()),
        options,
    );
    for method in ["DELETE", "PUT", "PATCH"] {
        let request = axum::http::Request::builder()
            .method(method)
            .uri(format!("{}/user", inbound::wire::API_BASE))
            .body(axum::body::Body::empty())
            .unwrap();
        let response = inbound::router(state.clone())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(
            response.headers().get("allow").unwrap(),
            "GET, POST",
            "{method}"
        );
    }
}
