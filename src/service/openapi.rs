//! The API's OpenAPI 3.1 document, served at `/api/v1/openapi.json`. A test checks that its
//! operations are exactly the routes [`super::api::routes`] serves.

use serde_json::{json, Value};

fn error_response(description: &str) -> Value {
    json!({
        "description": description,
        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
    })
}

fn ok_json(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema } } })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn path_param(name: &str, description: &str, integer: bool) -> Value {
    json!({
        "name": name, "in": "path", "required": true, "description": description,
        "schema": { "type": if integer { "integer" } else { "string" } }
    })
}

/// The document.
pub fn document() -> Value {
    let partner = path_param("partner", "The partner's slug", false);
    let run = path_param("run", "The run's id", true);
    let common = |mut responses: Value| {
        responses["401"] = error_response("No valid token or session");
        responses["404"] = error_response("No such thing, or not one the caller may see");
        responses
    };
    let components = json!({
        "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
        "schemas": {
            "Error": { "type": "object", "required": ["error"], "properties": { "error": {
                "type": "object", "required": ["status", "message"],
                "properties": {
                    "status": { "type": "integer" }, "message": { "type": "string" },
                    "problems": { "type": "array", "items": { "type": "object", "properties": {
                        "line": { "type": ["integer", "null"] }, "key": { "type": "string" }, "message": { "type": "string" }
                    } } }
                }
            } } },
            "Account": { "type": "object", "properties": {
                "name": { "type": "string" }, "role": { "enum": ["admin", "partner"] },
                "partners": { "type": "array", "items": { "type": "integer" } }
            } },
            "Partner": { "type": "object", "properties": {
                "id": { "type": "integer" }, "slug": { "type": "string" }, "name": { "type": "string" }
            } },
            "NewPartner": { "type": "object", "required": ["slug", "name"], "additionalProperties": false, "properties": {
                "slug": { "type": "string", "pattern": "^[a-z0-9-]{1,40}$" }, "name": { "type": "string" }
            } },
            "NewAccount": { "type": "object", "required": ["name", "role"], "additionalProperties": false, "properties": {
                "name": { "type": "string" }, "role": { "enum": ["admin", "partner"] },
                "partners": { "type": "array", "items": { "type": "string" }, "description": "Slugs a partner account sees" }
            } },
            "Profile": { "type": "object", "properties": {
                "id": { "type": "integer" }, "partner": { "type": "string" }, "name": { "type": "string" },
                "digest": { "type": "string" }, "uploaded_at": { "type": "string", "format": "date-time" }
            } },
            "Waiver": { "type": "object", "properties": {
                "id": { "type": "integer" }, "rule": { "type": "string" }, "reason": { "type": "string" },
                "owner": { "type": "string" }, "expires": { "type": "string", "format": "date" }
            } },
            "NewWaiver": { "type": "object", "required": ["rule", "reason", "owner", "expires"], "additionalProperties": false, "properties": {
                "rule": { "type": "string" }, "reason": { "type": "string" }, "owner": { "type": "string" },
                "expires": { "type": "string", "format": "date" }
            } },
            "RunRequest": { "type": "object", "required": ["partner"], "additionalProperties": false, "properties": {
                "partner": { "type": "string" },
                "profile": { "type": "integer", "description": "Default: the partner's latest profile" },
                "target": { "enum": ["mock", "sandbox"], "default": "mock" },
                "faults": { "type": "array", "items": { "type": "string" }, "description": "Mock faults (`spoke partner --list-faults`)" },
                "base_url": { "type": "string", "description": "Sandbox runs: the API root (default: the profile's base-url)" },
                "seed": { "type": "integer", "minimum": 0 },
                "only": { "type": "array", "items": { "type": "string" } },
                "secrets": { "type": "object", "additionalProperties": { "type": "string" },
                    "description": "Sandbox runs: values of the variables the profile names, kept in memory for this run only; never stored or shown" }
            } },
            "Run": { "type": "object", "properties": {
                "id": { "type": "integer" }, "partner": { "type": "string" }, "profile_id": { "type": "integer" },
                "profile": { "type": "string" },
                "state": { "enum": ["queued", "running", "finished", "failed", "interrupted"] },
                "target": { "enum": ["mock", "sandbox"] },
                "faults": { "type": "array", "items": { "type": "string" } },
                "base_url": { "type": ["string", "null"] }, "seed": { "type": "integer" },
                "only": { "type": "array", "items": { "type": "string" } },
                "secrets_given": { "type": "array", "items": { "type": "string" }, "description": "Names only" },
                "created_by": { "type": "string" },
                "created_at": { "type": "string", "format": "date-time" },
                "started_at": { "type": ["string", "null"], "format": "date-time" },
                "finished_at": { "type": ["string", "null"], "format": "date-time" },
                "step": { "type": ["string", "null"] },
                "exit_code": { "type": ["integer", "null"], "description": "As `spoke certify` exits: 0 conformant, 1 not, 3 could not run" },
                "verdict": { "type": ["string", "null"], "enum": ["conformant", "not-conformant", "could-not-run", null] },
                "totals": { "type": ["object", "null"] },
                "error": { "type": ["string", "null"] },
                "instance": { "type": ["string", "null"], "description": "The spoke serve instance that ran it" },
                "links": { "type": "object" }
            } }
        }
    });
    let mut paths = serde_json::Map::new();
    paths.insert(
        "/api/v1/openapi.json".to_owned(),
        json!({ "get": {
            "operationId": "openapi", "summary": "This document", "security": [],
            "responses": { "200": { "description": "The OpenAPI document" } }
        }}),
    );
    paths.insert(
        "/api/v1/whoami".to_owned(),
        json!({ "get": {
            "operationId": "whoami", "summary": "The caller's account",
            "responses": common(json!({ "200": ok_json("The account", reference("Account")) }))
        }}),
    );
    paths.insert("/api/v1/partners".to_owned(), json!({
                "get": {
                    "operationId": "listPartners", "summary": "The partners the caller may see",
                    "responses": common(json!({ "200": ok_json("Partners", json!({
                        "type": "object", "properties": { "partners": { "type": "array", "items": reference("Partner") } }
                    })) }))
                },
                "post": {
                    "operationId": "createPartner", "summary": "Create a partner (admin)",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("NewPartner") } } },
                    "responses": common(json!({
                        "201": ok_json("Created", reference("Partner")),
                        "403": error_response("Not an admin"),
                        "409": error_response("The slug is taken"),
                        "422": error_response("Invalid")
                    }))
                }
            }));
    paths.insert(
        "/api/v1/partners/{partner}".to_owned(),
        json!({ "get": {
            "operationId": "getPartner", "summary": "A partner and its latest finished run",
            "parameters": [partner.clone()],
            "responses": common(json!({ "200": ok_json("The partner", reference("Partner")) }))
        }}),
    );
    paths.insert("/api/v1/partners/{partner}/profiles".to_owned(), json!({
                "get": {
                    "operationId": "listProfiles", "summary": "A partner's profiles, newest first",
                    "parameters": [partner.clone()],
                    "responses": common(json!({ "200": ok_json("Profiles", json!({
                        "type": "object", "properties": { "profiles": { "type": "array", "items": reference("Profile") } }
                    })) }))
                },
                "post": {
                    "operationId": "uploadProfile",
                    "summary": "Upload a profile (TOML, at most 256 KiB); refused with every problem and its line as `spoke profile check` finds them",
                    "parameters": [partner.clone(), {
                        "name": "name", "in": "query", "required": false,
                        "description": "The file name (default profile.toml)", "schema": { "type": "string" }
                    }],
                    "requestBody": { "required": true, "content": { "application/toml": { "schema": { "type": "string" } } } },
                    "responses": common(json!({
                        "201": ok_json("Stored", reference("Profile")),
                        "413": error_response("Over the size limit"),
                        "422": error_response("Not a valid profile: `error.problems` lists line, key and message")
                    }))
                }
            }));
    paths.insert("/api/v1/partners/{partner}/waivers".to_owned(), json!({
                "get": {
                    "operationId": "listWaivers", "summary": "A partner's waivers",
                    "parameters": [partner.clone()],
                    "responses": common(json!({ "200": ok_json("Waivers", json!({
                        "type": "object", "properties": { "waivers": { "type": "array", "items": reference("Waiver") } }
                    })) }))
                },
                "post": {
                    "operationId": "createWaiver", "summary": "Add a waiver (admin); checked as a waivers file is",
                    "parameters": [partner.clone()],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("NewWaiver") } } },
                    "responses": common(json!({
                        "201": ok_json("Stored", reference("Waiver")),
                        "403": error_response("Not an admin"),
                        "409": error_response("The rule has a waiver already"),
                        "422": error_response("Invalid")
                    }))
                }
            }));
    paths.insert("/api/v1/partners/{partner}/waivers/{waiver}".to_owned(), json!({ "delete": {
                "operationId": "deleteWaiver", "summary": "Remove a waiver (admin)",
                "parameters": [partner.clone(), path_param("waiver", "The waiver's id", true)],
                "responses": common(json!({ "204": { "description": "Removed" }, "403": error_response("Not an admin") }))
            }}));
    paths.insert("/api/v1/accounts".to_owned(), json!({ "post": {
                "operationId": "createAccount", "summary": "Create an account (admin); its token is in the answer, once",
                "requestBody": { "required": true, "content": { "application/json": { "schema": reference("NewAccount") } } },
                "responses": common(json!({
                    "201": ok_json("Created", json!({ "type": "object", "properties": {
                        "name": { "type": "string" }, "role": { "type": "string" }, "token": { "type": "string" }
                    } })),
                    "403": error_response("Not an admin"),
                    "409": error_response("The name is taken"),
                    "422": error_response("Invalid")
                }))
            }}));
    paths.insert("/api/v1/runs".to_owned(), json!({
                "get": {
                    "operationId": "listRuns", "summary": "Runs the caller may see, newest first",
                    "parameters": [
                        { "name": "partner", "in": "query", "required": false, "schema": { "type": "string" } },
                        { "name": "before", "in": "query", "required": false, "description": "Only ids below this (the `next` of the previous page)", "schema": { "type": "integer" } },
                        { "name": "limit", "in": "query", "required": false, "schema": { "type": "integer", "minimum": 1, "maximum": 200 } }
                    ],
                    "responses": common(json!({ "200": ok_json("Runs", json!({ "type": "object", "properties": {
                        "runs": { "type": "array", "items": reference("Run") },
                        "next": { "type": ["integer", "null"] }
                    } })) }))
                },
                "post": {
                    "operationId": "startRun", "summary": "Queue a run; follow it at `links.self` or `links.events`",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": reference("RunRequest") } } },
                    "responses": common(json!({
                        "202": ok_json("Queued", reference("Run")),
                        "413": error_response("A secret is over the size limit"),
                        "422": error_response("Invalid: the message names the field")
                    }))
                }
            }));
    paths.insert(
        "/api/v1/runs/{run}".to_owned(),
        json!({ "get": {
            "operationId": "getRun", "summary": "A run's state, step and verdict (poll this)",
            "parameters": [run.clone()],
            "responses": common(json!({ "200": ok_json("The run", reference("Run")) }))
        }}),
    );
    paths.insert("/api/v1/runs/{run}/events".to_owned(), json!({ "get": {
                "operationId": "runEvents",
                "summary": "Server-sent events: `status` (a Run) whenever its state or step changes, then `done` (the Run) when it ends",
                "parameters": [run.clone()],
                "responses": common(json!({ "200": { "description": "An event stream", "content": { "text/event-stream": { "schema": { "type": "string" } } } } }))
            }}));
    paths.insert("/api/v1/runs/{run}/reports/{format}".to_owned(), json!({ "get": {
                "operationId": "getReport", "summary": "A finished run's report as the renderers wrote it, or its certification bundle (a zip for `spoke bundle verify`)",
                "parameters": [run.clone(), {
                    "name": "format", "in": "path", "required": true,
                    "schema": { "type": "string", "enum": ["json", "junit", "har", "html", "bundle"] }
                }],
                "responses": common(json!({ "200": { "description": "The file", "content": {
                    "application/json": {}, "application/xml": {}, "text/html": {}, "application/zip": {}
                } } }))
            }}));
    paths.insert("/api/v1/diff".to_owned(), json!({ "get": {
                "operationId": "diffRuns", "summary": "Two finished runs compared rule by rule (the JSON of `spoke diff --format json`)",
                "parameters": [
                    { "name": "old", "in": "query", "required": true, "schema": { "type": "integer" } },
                    { "name": "new", "in": "query", "required": true, "schema": { "type": "integer" } }
                ],
                "responses": common(json!({
                    "200": ok_json("The comparison", json!({ "type": "object" })),
                    "422": error_response("A run has not finished")
                }))
            }}));
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "spoke serve",
            "version": "1",
            "description": "Start certification runs, follow them, fetch their reports. Authenticate with `Authorization: Bearer TOKEN` (writes need it; reads also accept a page session). Partner accounts see only their own partners."
        },
        "servers": [ { "url": "/" } ],
        "security": [ { "bearer": [] } ],
        "paths": paths,
        "components": components
    })
}
