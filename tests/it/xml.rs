//! XML and SOAP partners: the mock partner and the client refuse hostile XML on both sides, answer
//! and read errors as XML documents or SOAP faults, and the profile checks name file and line.

use crate::helpers::{client_for, root};
use axum::body::Body;
use axum::http::Request;
use spoke::auth::Credentials;
use spoke::connector::{ClientLimits, ListFailure, PartnerClient};
use spoke::model::{Field, Record, RecordKind};
use spoke::partner::{self, PartnerState, Sandbox};
use spoke::profile::{OperationKind, Profile};
use std::sync::Arc;
use tower::ServiceExt;

fn fixture(name: &str) -> Profile {
    Profile::load(&root().join("fixtures/profiles").join(name))
        .unwrap_or_else(|error| panic!("{error}"))
}

fn app_for(profile: &Profile) -> (axum::Router, PartnerState, Credentials) {
    let credentials = Credentials::generated(&profile.auth, 1);
    let state = PartnerState::new(
        profile.clone(),
        Sandbox::default_seed(),
        credentials.clone(),
    );
    (partner::router(state.clone()), state, credentials)
}

/// Sends `body` with `headers` (credentials added) and returns the status, content type and body.
async fn send(
    app: &axum::Router,
    credentials: &Credentials,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some((name, value)) = credentials.header() {
        request = request.header(name, value);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::from(body.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        content_type,
        String::from_utf8_lossy(&bytes).into_owned(),
    )
}

const XML_PROSPECTS: &str = "/clubdesk/CD-204/clubs/LYON-01/prospects";
const SOAP_ENDPOINT: &str = "/MemberHub/Service.asmx";
const XML_TYPE: (&str, &str) = ("content-type", "application/xml");

const BILLION_LAUGHS: &str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<c:prospect xmlns:c="urn:example:clubdesk:v3" club="LYON-01"><c:person><c:firstName>&lol3;</c:firstName><c:lastName>L</c:lastName></c:person></c:prospect>"#;

const EXTERNAL_ENTITY: &str = r#"<?xml version="1.0"?>
<!DOCTYPE p [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<c:prospect xmlns:c="urn:example:clubdesk:v3" club="LYON-01"><c:person><c:firstName>&secret;</c:firstName><c:lastName>L</c:lastName></c:person></c:prospect>"#;

#[tokio::test]
async fn the_mock_partner_refuses_entity_bombs_external_entities_and_broken_xml() {
    let profile = fixture("xml-rest.toml");
    let (app, state, credentials) = app_for(&profile);
    for (what, body, mentions) in [
        ("an entity bomb", BILLION_LAUGHS, "DOCTYPE"),
        ("an external entity", EXTERNAL_ENTITY, "DOCTYPE"),
        (
            "an undeclared entity",
            "<c:prospect xmlns:c=\"urn:example:clubdesk:v3\">&passwd;</c:prospect>",
            "passwd;` is not one of the five predefined",
        ),
        ("broken XML", "<c:prospect><c:person>", "line 1"),
    ] {
        let (status, content_type, text) =
            send(&app, &credentials, "POST", XML_PROSPECTS, &[XML_TYPE], body).await;
        assert_eq!(status, 400, "{what}: {text}");
        assert!(content_type.starts_with("application/xml"), "{what}");
        assert!(text.contains(mentions), "{what}: {text}");
        assert!(
            !text.contains("lollol") && !text.contains("root:"),
            "{what}"
        );
        let error = spoke::xml::parse(&text).expect("the error is XML");
        assert_eq!(error.name, "error", "{what}");
    }
    assert!(state.store().read().prospects.is_empty());
}

#[tokio::test]
async fn xml_validation_errors_name_the_element_path_of_the_field() {
    let profile = fixture("xml-rest.toml");
    let (app, state, credentials) = app_for(&profile);
    let cases = [
        (
            "a missing last name",
            r#"<c:prospect xmlns:c="urn:example:clubdesk:v3" club="LYON-01"><c:person><c:firstName>Ana</c:firstName></c:person></c:prospect>"#,
            "c:person.c:lastName",
        ),
        (
            "a wrong club attribute",
            r#"<c:prospect xmlns:c="urn:example:clubdesk:v3" club="PARIS"><c:person><c:firstName>A</c:firstName><c:lastName>L</c:lastName></c:person></c:prospect>"#,
            "@club",
        ),
        (
            "an invalid coded attribute",
            r#"<c:prospect xmlns:c="urn:example:clubdesk:v3" club="LYON-01" status="asleep"><c:person><c:firstName>A</c:firstName><c:lastName>L</c:lastName></c:person></c:prospect>"#,
            "@status",
        ),
        (
            "fields in another namespace",
            r#"<c:prospect xmlns:c="urn:other" club="LYON-01"><c:person><c:firstName>A</c:firstName><c:lastName>L</c:lastName></c:person></c:prospect>"#,
            "c:prospect",
        ),
    ];
    for (what, body, field) in cases {
        let (status, _, text) =
            send(&app, &credentials, "POST", XML_PROSPECTS, &[XML_TYPE], body).await;
        assert!(matches!(status, 400 | 422), "{what}: {status} {text}");
        let error = spoke::xml::parse(&text).unwrap();
        assert_eq!(
            error.child("field").map(|f| f.text()).as_deref(),
            Some(field),
            "{what}: {text}"
        );
    }
    assert!(state.store().read().prospects.is_empty());
}

fn soap11(action: &str) -> [(&str, String); 2] {
    [
        ("content-type", "text/xml; charset=utf-8".to_owned()),
        (
            "soapaction",
            format!("\"urn:example:memberhub:2019/{action}\""),
        ),
    ]
}

fn envelope(namespace: &str, payload: &str) -> String {
    format!("<s:Envelope xmlns:s=\"{namespace}\"><s:Body>{payload}</s:Body></s:Envelope>")
}

#[tokio::test]
async fn the_soap_mock_answers_errors_as_faults_with_the_status_of_their_class() {
    let profile = fixture("soap.toml");
    let (app, state, credentials) = app_for(&profile);
    let headers = soap11("SaveProspect");
    let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let invalid = envelope(
        spoke::xml::SOAP11_NAMESPACE,
        r#"<m:SaveProspect xmlns:m="urn:example:memberhub:2019"><m:ClubId>GLASGOW-3</m:ClubId><m:Prospect><m:FirstName>Ana</m:FirstName></m:Prospect></m:SaveProspect>"#,
    );
    let (status, content_type, text) = send(
        &app,
        &credentials,
        "POST",
        SOAP_ENDPOINT,
        &headers,
        &invalid,
    )
    .await;
    assert_eq!(status, 422, "{text}");
    assert!(content_type.starts_with("text/xml"), "{content_type}");
    let fault = spoke::xml::parse(&text).unwrap();
    let fault = fault.descendant(&["Body", "Fault"]).expect("a SOAP fault");
    assert_eq!(fault.child("faultcode").unwrap().text(), "soap:Client");
    assert_eq!(
        fault
            .descendant(&["detail", "error", "field"])
            .unwrap()
            .text(),
        "m:LastName"
    );

    for (what, body, mentions) in [
        (
            "an entity bomb",
            BILLION_LAUGHS.replace("c:prospect", "s:Envelope"),
            "DOCTYPE",
        ),
        ("an external entity", EXTERNAL_ENTITY.to_owned(), "DOCTYPE"),
        (
            "a SOAP 1.2 envelope for a SOAP 1.1 operation",
            envelope(
                spoke::xml::SOAP12_NAMESPACE,
                "<m:SaveProspect xmlns:m=\"urn:example:memberhub:2019\"/>",
            ),
            "SOAP 1.1",
        ),
    ] {
        let (status, _, text) =
            send(&app, &credentials, "POST", SOAP_ENDPOINT, &headers, &body).await;
        assert_eq!(status, 400, "{what}: {text}");
        assert!(
            text.contains(mentions) && text.contains("soap:Client"),
            "{what}: {text}"
        );
    }

    let unknown = soap11("DeleteEverything");
    let unknown: Vec<(&str, &str)> = unknown.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (status, _, text) = send(
        &app,
        &credentials,
        "POST",
        SOAP_ENDPOINT,
        &unknown,
        &invalid,
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("DeleteEverything"), "{text}");

    // SOAP 1.2 faults carry Sender/Receiver codes; the action travels in the content type.
    let missing_id = envelope(
        spoke::xml::SOAP12_NAMESPACE,
        r#"<m:GetMember xmlns:m="urn:example:memberhub:2019"><m:ClubId>GLASGOW-3</m:ClubId><m:MemberId>M-404</m:MemberId></m:GetMember>"#,
    );
    let (status, content_type, text) = send(
        &app,
        &credentials,
        "POST",
        SOAP_ENDPOINT,
        &[(
            "content-type",
            "application/soap+xml; charset=utf-8; action=\"urn:example:memberhub:2019/GetMember\"",
        )],
        &missing_id,
    )
    .await;
    assert_eq!(status, 404, "{text}");
    assert!(content_type.starts_with("application/soap+xml"));
    let root = spoke::xml::parse(&text).unwrap();
    let value = root
        .descendant(&["Body", "Fault", "Code", "Value"])
        .unwrap()
        .text();
    assert_eq!(value, "soap:Sender");
    assert!(state.store().read().prospects.is_empty());
}

/// A partner that answers every request with `body` as `content_type`.
async fn canned_partner(content_type: &'static str, body: &'static str) -> std::net::SocketAddr {
    let app = axum::Router::new()
        .fallback(move || async move { ([("content-type", content_type)], body) });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

fn client_at(profile: &Profile, addr: std::net::SocketAddr) -> PartnerClient {
    PartnerClient::new(
        Arc::new(profile.clone()),
        &format!("http://{addr}"),
        Credentials::generated(&profile.auth, 1),
        ClientLimits::default(),
    )
    .unwrap()
}

#[tokio::test]
async fn the_client_refuses_entity_bombs_external_entities_and_broken_xml_from_a_partner() {
    let profile = fixture("xml-rest.toml");
    let bomb: &'static str = r#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<c:staffPage xmlns:c="urn:example:clubdesk:v3" total="1"><c:items><c:staff id="S-1"><c:email>&lol2;</c:email></c:staff></c:items></c:staffPage>"#;
    let external: &'static str = r#"<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/steal">]>
<c:staffPage xmlns:c="urn:example:clubdesk:v3" total="1"><c:items><c:staff id="S-1"><c:email>&e;</c:email></c:staff></c:items></c:staffPage>"#;
    let broken: &'static str = "<c:staffPage xmlns:c=\"urn:example:clubdesk:v3\"><c:items>";
    for (what, body, mentions) in [
        ("an entity bomb", bomb, "DOCTYPE"),
        ("an external entity", external, "DOCTYPE"),
        ("broken XML", broken, "never closed"),
    ] {
        let addr = canned_partner("application/xml", body).await;
        let outcome = client_at(&profile, addr)
            .list_all(OperationKind::StaffList, "staff")
            .await;
        assert!(outcome.records.is_empty(), "{what}");
        match outcome.failure {
            Some(ListFailure::BadPage { message, .. }) => {
                assert!(message.contains(mentions), "{what}: {message}")
            }
            other => panic!("{what}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn the_client_reads_a_soap_fault_as_an_error_even_under_200() {
    let profile = fixture("soap.toml");
    let fault: &'static str = r#"<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault><faultcode>soap:Client</faultcode><faultstring>LastName is required</faultstring><detail><error><field>m:LastName</field></error></detail></soap:Fault></soap:Body></soap:Envelope>"#;
    let addr = canned_partner("text/xml; charset=utf-8", fault).await;
    let client = client_at(&profile, addr);
    let record = Record::from([(Field::FirstName, "Ana".to_owned())]);
    let saved = client
        .write(OperationKind::ProspectSave, "save", &record, None)
        .await
        .unwrap();
    assert_eq!(saved.answer.status, 400);
    assert!(!saved.answer.is_success());
    assert_eq!(saved.id, None);
    let error = saved.answer.json.unwrap();
    assert_eq!(error["error"]["message"], "LastName is required");
    assert_eq!(error["error"]["field"], "m:LastName");
}

#[tokio::test]
async fn a_soap_1_1_client_fault_answered_500_counts_as_a_4xx_and_a_server_fault_as_a_5xx() {
    let profile = fixture("soap.toml");
    for (code, expected) in [("soap:Client", 400), ("soap:Server", 500)] {
        let body = spoke::profile::body::error_body(
            spoke::profile::BodyFormat::Soap11,
            if expected == 400 { 422 } else { 500 },
            "x",
            "refused",
            None,
        );
        assert!(body.contains(code), "{body}");
        let body: &'static str = Box::leak(body.into_boxed_str());
        let app = axum::Router::new().fallback(move || async move {
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                [("content-type", "text/xml")],
                body,
            )
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let record = Record::from([(Field::FirstName, "Ana".to_owned())]);
        let saved = client_at(&profile, addr)
            .write(OperationKind::ProspectSave, "save", &record, None)
            .await
            .unwrap();
        assert_eq!(saved.answer.status, expected, "{code}");
    }
}

#[tokio::test]
async fn xml_and_soap_fixtures_round_trip_records_through_their_mocks() {
    for name in ["xml-rest.toml", "soap.toml"] {
        let profile = fixture(name);
        let (running, credentials) = crate::helpers::spawn_partner(&profile).await;
        let client = client_for(&profile, &running, &credentials);
        let kind = RecordKind::Member;
        let create = profile.create_operation(kind).unwrap();
        let record = Record::from([
            (Field::FirstName, "Zoë & <Ana>".to_owned()),
            (Field::LastName, "O'Brien \"Jr\"".to_owned()),
            (Field::Type, "member".to_owned()),
            (Field::Status, "active".to_owned()),
        ]);
        let saved = client.write(create, "save", &record, None).await.unwrap();
        assert_eq!(saved.answer.status, 201, "{name}");
        let id = saved.id.unwrap_or_else(|| panic!("{name}: no id"));
        let (_, read) = client.read(kind, &id, "read").await.unwrap();
        let read = read.unwrap_or_else(|| panic!("{name}: not read back"));
        for field in [
            Field::FirstName,
            Field::LastName,
            Field::Type,
            Field::Status,
        ] {
            assert_eq!(read.get(&field), record.get(&field), "{name}: {field}");
        }
        let (answer, missing) = client.read(kind, "M-404", "read").await.unwrap();
        assert_eq!((answer.status, missing), (404, None), "{name}");
    }
}

#[test]
fn xml_profile_problems_name_file_line_and_key() {
    let base = std::fs::read_to_string(root().join("fixtures/profiles/soap.toml")).unwrap();
    let cases = [
        (
            "soap-action = \"urn:example:memberhub:2019/GetStaff\"\n",
            "",
            "a SOAP operation needs `soap-action`",
        ),
        ("item = \"m:StaffMember\"\n", "", "an XML list needs `item`"),
        (
            "item = \"m:StaffMember\"\n",
            "item = \"q:StaffMember\"\n",
            "the prefix `q` in `q:StaffMember` is not declared",
        ),
        (
            "email = \"m:Email\"\n",
            "email = \"x:Email\"\n",
            "the prefix `x` in `x:Email` is not declared",
        ),
        (
            "id = \"m:StaffId\"\n",
            "id = \"@m:StaffId.m:Inner\"\n",
            "is an attribute and must end the path",
        ),
        (
            "record = \"m:GetProspectResponse.m:Prospect\"\n",
            "record = \"\"\n",
            "an XML answer needs `record`",
        ),
        (
            "params = { \"m:SaveProspect.m:ClubId\" = \"{club_id}\" }\n",
            "params = { \"m:SaveProspect.m:Prospect.m:Club\" = \"{club_id}\" }\n",
            "overlaps `body`",
        ),
    ];
    for (from, to, message) in cases {
        let text = base.replacen(from, to, 1);
        assert_ne!(text, base, "{from}");
        let error = Profile::parse("soap.toml", &text).unwrap_err().to_string();
        let line = error
            .lines()
            .find(|line| line.contains(message))
            .unwrap_or_else(|| panic!("{message}: {error}"));
        assert!(line.starts_with("soap.toml:"), "{line}");
        let number: usize = line.split(':').nth(1).unwrap().parse().unwrap();
        assert!(number > 1, "{line}");
    }
    let json_with_xml_keys =
        std::fs::read_to_string(root().join("fixtures/profiles/reference.toml"))
            .unwrap()
            .replacen(
                "list = \"data\"\n",
                "list = \"data\"\nitem = \"staff\"\n",
                1,
            );
    let error = Profile::parse("reference.toml", &json_with_xml_keys)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("item: belongs to XML/SOAP operations"),
        "{error}"
    );
    let soap_get = base.replacen("method = \"POST\"", "method = \"GET\"", 1);
    let error = Profile::parse("soap.toml", &soap_get)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("speaks SOAP, which is always POST"),
        "{error}"
    );
}

/// A prospect of the xml-rest shape whose first name is `first`, already escaped or referenced.
fn clubdesk_prospect(first: &str) -> String {
    format!(
        r#"<c:prospect xmlns:c="urn:example:clubdesk:v3" club="LYON-01"><c:person><c:firstName>{first}</c:firstName><c:lastName>L</c:lastName></c:person></c:prospect>"#
    )
}

#[tokio::test]
async fn characters_xml_forbids_are_refused_with_400_naming_the_element() {
    let profile = fixture("xml-rest.toml");
    let (app, state, credentials) = app_for(&profile);
    for (what, first) in [
        ("a character reference to U+0001", "A&#1;"),
        ("a raw U+001B", "A\u{1b}B"),
        ("a reference to U+FFFE", "A&#xFFFE;"),
        ("a reference to a surrogate", "A&#xD800;"),
    ] {
        let body = clubdesk_prospect(first);
        let (status, _, text) = send(
            &app,
            &credentials,
            "POST",
            XML_PROSPECTS,
            &[XML_TYPE],
            &body,
        )
        .await;
        assert_eq!(status, 400, "{what}: {text}");
        roxmltree::Document::parse(&text).unwrap_or_else(|error| {
            panic!("{what}: the error is not well-formed ({error}): {text}")
        });
        let message = spoke::xml::parse(&text)
            .unwrap()
            .child("message")
            .unwrap()
            .text();
        assert!(message.contains("`<firstName>`"), "{what}: {message}");
    }
    assert!(state.store().read().prospects.is_empty());
    // Tab, line feed and carriage return are XML characters, written plainly or referenced.
    let body = clubdesk_prospect("A&#9;B&#xD;C");
    let (status, _, text) = send(
        &app,
        &credentials,
        "POST",
        XML_PROSPECTS,
        &[XML_TYPE],
        &body,
    )
    .await;
    assert_eq!(status, 201, "{text}");
}

/// Text from every class of character: markup, the controls XML forbids and allows,
/// surrogates' neighbours, U+FFFE/U+FFFF and beyond the BMP.
fn any_text() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let character = prop_oneof![
        proptest::char::range('a', 'z'),
        Just('<'),
        Just('&'),
        Just('"'),
        Just(']'),
        Just('>'),
        proptest::char::range('\u{0}', '\u{1f}'),
        proptest::char::range('\u{d7f0}', '\u{d7ff}'),
        proptest::char::range('\u{fff0}', '\u{ffff}'),
        proptest::char::range('\u{1f600}', '\u{1f64f}'),
    ];
    proptest::collection::vec(character, 1..12).prop_map(|chars| chars.into_iter().collect())
}

/// `text` in a document: markup escaped, the rest as characters (`raw`) or as references.
fn in_document(text: &str, raw: bool) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '&' => "&amp;".to_owned(),
            c if !raw && (c.is_control() || c > '\u{7e}') => format!("&#x{:X};", u32::from(c)),
            c => c.to_string(),
        })
        .collect()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]

    /// Whatever a value holds, every answer of the XML mock partner and of the mock Connector
    /// API parses with a conforming parser (roxmltree), refusals included.
    #[test]
    fn every_xml_answer_is_well_formed_whatever_the_values_hold(text in any_text(), raw: bool) {
        use tower::ServiceExt as _;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let written = in_document(&text, raw);
        let answers = runtime.block_on(async {
            let profile = fixture("xml-rest.toml");
            let (app, _, credentials) = app_for(&profile);
            let mut answers = Vec::new();
            let created = send(&app, &credentials, "POST", XML_PROSPECTS, &[XML_TYPE], &clubdesk_prospect(&written)).await;
            if let Ok(document) = spoke::xml::parse(&created.2) {
                if let Some(id) = document.descendant(&["id"]).or_else(|| document.child("id")).map(|e| e.text()).or_else(|| document.attribute("id").map(str::to_owned)) {
                    answers.push(send(&app, &credentials, "GET", &format!("{XML_PROSPECTS}/{id}"), &[], "").await);
                }
            }
            answers.push(created);
            let options = spoke::inbound::ConnectorOptions {
                tenant: spoke::inbound::store::Tenant { provider: "ACME".into(), client: "C-7".into(), club: "K-3".into() },
                state_file: None,
                body_limit: spoke::inbound::DEFAULT_BODY_LIMIT,
            };
            let state = spoke::inbound::ConnectorState::new(
                spoke::inbound::store::Seed::builtin().into_intouch(options.tenant.clone()),
                options,
            );
            let user = format!(
                "<?xml version=\"1.0\"?><user><providerInfo><identifier>ACME</identifier><clientID>C-7</clientID><clubID>K-3</clubID><recordID>R-{written}</recordID></providerInfo><userInfo><firstname>{written}</firstname><lastname>L</lastname><userType>prospect</userType><userStatus>active</userStatus></userInfo></user>"
            );
            let request = Request::post(format!("{}/user", spoke::inbound::wire::API_BASE))
                .body(Body::from(user))
                .unwrap();
            let app = spoke::inbound::router(state);
            let query = format!(
                "identifier=ACME&clientID=C-7&clubID=K-3&recordID={}",
                percent_encoding::utf8_percent_encode(&format!("R-{text}"), percent_encoding::NON_ALPHANUMERIC)
            );
            let read = Request::get(format!("{}/user?{query}", spoke::inbound::wire::API_BASE))
                .body(Body::empty())
                .unwrap();
            for request in [request, read] {
                let response = app.clone().oneshot(request).await.unwrap();
                let status = response.status().as_u16();
                let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
                answers.push((status, String::new(), String::from_utf8(bytes.to_vec()).unwrap()));
            }
            answers
        });
        let forbidden = text.chars().any(|c| !spoke::xml::is_xml_char(c));
        for (status, _, body) in &answers {
            proptest::prop_assert!(*status < 500, "{status}: {body}");
            if let Err(error) = roxmltree::Document::parse(body) {
                proptest::prop_assert!(false, "{status}: not well-formed ({error}): {body:?}");
            }
            // Refused, or (a read of what was refused) not found.
            if forbidden {
                proptest::prop_assert!(matches!(*status, 400 | 404), "{status}: {body}");
            }
        }
    }
}

#[tokio::test]
async fn the_mock_connector_api_refuses_characters_xml_forbids_naming_the_element() {
    use tower::ServiceExt as _;
    let options = spoke::inbound::ConnectorOptions {
        tenant: spoke::inbound::store::Tenant {
            provider: "ACME".into(),
            client: "C-7".into(),
            club: "K-3".into(),
        },
        state_file: None,
        body_limit: spoke::inbound::DEFAULT_BODY_LIMIT,
    };
    let state = spoke::inbound::ConnectorState::new(
        spoke::inbound::store::Seed::builtin().into_intouch(options.tenant.clone()),
        options,
    );
    let user = "<?xml version=\"1.0\"?><user><providerInfo><identifier>ACME</identifier><clientID>C-7</clientID><clubID>K-3</clubID><recordID>R-1</recordID></providerInfo><userInfo><firstname>Ana&#1;</firstname><lastname>L</lastname><userType>prospect</userType><userStatus>active</userStatus></userInfo></user>";
    let request = Request::post(format!("{}/user", spoke::inbound::wire::API_BASE))
        .body(Body::from(user))
        .unwrap();
    let response = spoke::inbound::router(state)
        .oneshot(request)
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    assert!(text.contains("`&lt;firstname&gt;` holds U+0001"), "{text}");
    roxmltree::Document::parse(&text).expect("the refusal is well-formed");
}
