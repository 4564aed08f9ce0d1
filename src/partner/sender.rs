//! The mock partner as a sender: carries out a two-way step the way a partner's system would,
//! calling the Connector API with XML; the sending faults spoil it on purpose.

use super::{Fault, Faults};
use crate::inbound::wire::Resource;
use crate::profile::SendStep;
use crate::twoway::StepRequest;
use crate::xml::Builder;
use std::time::Duration;

/// How long one call to the Connector API may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

struct Sender<'a> {
    client: reqwest::Client,
    request: &'a StepRequest,
    faults: &'a Faults,
}

impl Sender<'_> {
    fn url(&self, resource: Resource) -> String {
        format!(
            "{}/{}",
            self.request.connector_url.trim_end_matches('/'),
            resource.segment()
        )
    }

    fn provider(&self, record_id: &str) -> Builder {
        Builder::new("providerInfo")
            .child(Builder::new("identifier").text(self.request.provider_id.clone()))
            .child(Builder::new("clientID").text(self.request.client_id.clone()))
            .child(Builder::new("clubID").text(self.request.club_id.clone()))
            .child(Builder::new("recordID").text(record_id))
    }

    fn with_host(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.faults.has(Fault::SendPlainHttpPublicHost) {
            builder.header(reqwest::header::HOST, "connector.example.com")
        } else {
            builder
        }
    }

    /// POSTs a document; answers the status and body.
    async fn post(&self, resource: Resource, document: String) -> Result<(u16, String), String> {
        let builder = self
            .client
            .post(self.url(resource))
            .header(reqwest::header::CONTENT_TYPE, "application/xml")
            .body(document);
        let response = self
            .with_host(builder)
            .send()
            .await
            .map_err(|error| format!("POST {}: {error}", resource.segment()))?;
        let status = response.status().as_u16();
        let body = response.text().await.unwrap_or_default();
        Ok((status, body))
    }

    async fn save_user(
        &self,
        record_id: &str,
        fields: &[(&str, &str)],
    ) -> Result<(u16, String), String> {
        let mut info = Builder::new("userInfo");
        for (name, value) in fields.iter().filter(|(_, value)| !value.is_empty()) {
            info.push(Builder::new(*name).text(*value));
        }
        let document = Builder::new("user")
            .child(self.provider(record_id))
            .child(info)
            .to_document();
        self.post(Resource::User, document).await
    }

    async fn save_source(&self, record_id: &str, name: &str) -> Result<(u16, String), String> {
        let document = Builder::new("leadSource")
            .child(self.provider(record_id))
            .child(
                Builder::new("leadInfo")
                    .child(Builder::new("name").text(name))
                    .child(Builder::new("active").text("true")),
            )
            .to_document();
        self.post(Resource::LeadSource, document).await
    }

    /// GET or DELETE on the user resource, naming the record by query parameters.
    async fn by_query(
        &self,
        method: reqwest::Method,
        record_id: &str,
        with_club: bool,
    ) -> Result<(), String> {
        // The query names the Connector documents for reads.
        let mut query = vec![
            ("provider", self.request.provider_id.as_str()),
            ("client_id", self.request.client_id.as_str()),
        ];
        if with_club {
            query.push(("club_id", self.request.club_id.as_str()));
        }
        query.push(("recordID", record_id));
        let builder = self
            .client
            .request(method.clone(), self.url(Resource::User))
            .query(&query);
        self.with_host(builder)
            .send()
            .await
            .map_err(|error| format!("{method} user: {error}"))?;
        Ok(())
    }

    /// The member's record id and contact details as this partner keeps them after converting.
    fn member(&self) -> (String, String, String) {
        let request = self.request;
        if self.faults.has(Fault::SendConvertDuplicates) {
            (
                format!("{}-M", request.record_id),
                format!(
                    "member.{}",
                    request.email.replace('@', ".at.") + "@example.org"
                ),
                "+15550000000".to_owned(),
            )
        } else if self.faults.has(Fault::SendConvertWithNewRecordId) {
            (
                format!("{}-M", request.record_id),
                request.email.clone(),
                request.mobile.clone(),
            )
        } else {
            (
                request.record_id.clone(),
                request.email.clone(),
                request.mobile.clone(),
            )
        }
    }
}

/// The `<uuid>` of a save's answer.
fn answered_uuid(body: &str) -> Option<String> {
    crate::xml::parse(body)
        .ok()?
        .child("uuid")
        .and_then(|uuid| uuid.leaf_text())
}

/// Carries out `request` against the Connector API it names, as the mock partner's system would.
pub async fn act(request: &StepRequest, faults: &Faults) -> Result<(), String> {
    let client = reqwest::Client::builder()
        .timeout(CALL_TIMEOUT)
        .build()
        .map_err(|error| format!("cannot build an HTTP client: {error}"))?;
    let sender = Sender {
        client,
        request,
        faults,
    };
    let first = request.first_name.as_str();
    let last = request.last_name.as_str();
    match request.step {
        SendStep::Convert => {
            let (record_id, email, mobile) = sender.member();
            sender
                .save_user(
                    &record_id,
                    &[
                        ("firstname", first),
                        ("lastname", last),
                        ("userStatus", "ACTIVE"),
                        ("userType", "MEMBER"),
                        ("mobile", &mobile),
                        ("email", &email),
                    ],
                )
                .await?;
            // Reads back what it sent, as a careful partner does.
            let with_club = !faults.has(Fault::SendReadWithoutClub);
            sender
                .by_query(reqwest::Method::GET, &record_id, with_club)
                .await
        }
        SendStep::Inactivate => {
            let converted = request.user_type == "MEMBER";
            let (record_id, email, mobile) = if converted {
                sender.member()
            } else {
                (
                    request.record_id.clone(),
                    request.email.clone(),
                    request.mobile.clone(),
                )
            };
            if faults.has(Fault::SendDeleteToInactivate) {
                return sender
                    .by_query(reqwest::Method::DELETE, &record_id, true)
                    .await;
            }
            sender
                .save_user(
                    &record_id,
                    &[
                        ("firstname", first),
                        ("lastname", last),
                        ("userStatus", "INACTIVE"),
                        ("userType", &request.user_type),
                        ("mobile", &mobile),
                        ("email", &email),
                    ],
                )
                .await
                .map(drop)
        }
        SendStep::CreateUser => {
            let gender = if faults.has(Fault::SendLowercaseGender) {
                "f"
            } else {
                "F"
            };
            let (_, body) = sender
                .save_user(
                    &request.record_id,
                    &[
                        ("firstname", first),
                        ("lastname", last),
                        ("userStatus", "ACTIVE"),
                        ("userType", "PROSPECT"),
                        ("birthdate", "1991-04-12"),
                        ("gender", gender),
                        ("mobile", &request.mobile),
                        ("email", &request.email),
                    ],
                )
                .await?;
            let update_id = if faults.has(Fault::SendUuidAsRecordId) {
                answered_uuid(&body).unwrap_or_else(|| request.record_id.clone())
            } else if faults.has(Fault::SendNewRecordIdOnUpdate) {
                format!("{}-2", request.record_id)
            } else {
                request.record_id.clone()
            };
            let new_mobile = format!("{}9", request.mobile);
            sender
                .save_user(
                    &update_id,
                    &[
                        ("firstname", first),
                        ("lastname", last),
                        ("userStatus", "ACTIVE"),
                        ("userType", "PROSPECT"),
                        ("birthdate", "1991-04-12"),
                        ("gender", "F"),
                        ("mobile", &new_mobile),
                        ("email", &request.email),
                    ],
                )
                .await
                .map(drop)
        }
        SendStep::LeadSource => {
            let source_id = format!("{}-source", request.record_id);
            let lead = [
                ("firstname", first),
                ("lastname", last),
                ("userStatus", "ACTIVE"),
                ("userType", "PROSPECT"),
                ("mobile", request.mobile.as_str()),
                ("email", request.email.as_str()),
                ("leadSource", request.lead_source.as_str()),
            ];
            if faults.has(Fault::SendSourceAfterLead) {
                sender.save_user(&request.record_id, &lead).await?;
                sender.save_source(&source_id, &request.lead_source).await?;
            } else {
                sender.save_source(&source_id, &request.lead_source).await?;
                sender.save_user(&request.record_id, &lead).await?;
            }
            Ok(())
        }
    }
}
