//! Limits on every input, walked from the OpenAPI document the host serves:
//! every text field of every write route's body refuses a NUL and a value
//! past its documented `maxLength` with a 422 naming the field; every bounded
//! integer refuses a value past its `maximum`; every path parameter refuses
//! what is outside its grammar (`a#b`, `..`, a NUL, very long, a non-number
//! for an integer id) with a 404 or 422, never a 500, on both stores. Plus the
//! cases the issue names: a description with a NUL or of 200 KB, the time zone
//! `Nowhere/City`, a contact method priority of 4294967295.

use std::sync::Arc;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::support::{Auth, TestApp, spawn_app, spawn_app_on};
use quper_core::ports::Table;

/// Routes whose bodies come from third parties in the provider's own format:
/// refusing one for a long or odd value would lose an alert or a receipt, so
/// they are not held to Quper's text limits (ingestion has no body schema;
/// Infobip's receipts follow Infobip's documentation).
const THIRD_PARTY: &[&str] = &["/api/v1/notifications/infobip/receipts"];

fn resolve<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    let mut schema = schema;
    for _ in 0..16 {
        let Some(reference) = schema.get("$ref").and_then(Value::as_str) else {
            break;
        };
        let name = reference.rsplit('/').next().unwrap_or_default();
        schema = &document["components"]["schemas"][name];
    }
    schema
}

fn types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(name)) => vec![name.as_str()],
        Some(Value::Array(names)) => names.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

/// The branch of a nullable or alternative schema that holds a value: a
/// non-null branch of `anyOf`/`oneOf`, else the schema itself.
fn concrete<'a>(document: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(document, schema);
    for keyword in ["anyOf", "oneOf"] {
        if let Some(branches) = schema.get(keyword).and_then(Value::as_array)
            && let Some(branch) = branches
                .iter()
                .map(|branch| resolve(document, branch))
                .find(|branch| types(branch) != ["null"])
        {
            return concrete(document, branch);
        }
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array)
        && all.len() == 1
    {
        return concrete(document, &all[0]);
    }
    schema
}

/// A value the schema at `field` accepts, so a body is valid but for the
/// one field a test breaks.
fn valid(document: &Value, schema: &Value, field: &str) -> Value {
    let schema = concrete(document, schema);
    if let Some(constant) = schema.get("const") {
        return constant.clone();
    }
    if let Some(first) = schema.get("enum").and_then(Value::as_array).and_then(|all| all.first()) {
        return first.clone();
    }
    let kinds = types(schema);
    if kinds.contains(&"object") || schema.get("properties").is_some() {
        let mut object = Map::new();
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
            let Some(name) = name.as_str() else { continue };
            if let Some(sub) = properties.and_then(|properties| properties.get(name)) {
                object.insert(name.to_owned(), valid(document, sub, name));
            }
        }
        return Value::Object(object);
    }
    if kinds.contains(&"array") {
        return json!([]);
    }
    if kinds.contains(&"boolean") {
        return json!(true);
    }
    if kinds.contains(&"integer") || kinds.contains(&"number") {
        let minimum = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
        return json!(minimum.max(1));
    }
    match schema.get("format").and_then(Value::as_str) {
        Some("date-time") => return json!("2030-01-01T00:00:00Z"),
        Some("partial-date-time") => return json!("2030-01-01T00:00:00"),
        Some("uuid") => return json!("6f9619ff-8b86-4011-b42d-00c04fc964ff".to_owned()),
        _ => {}
    }
    let text = match field {
        "email" => "walker@example.com",
        f if f.contains("password") => "walker-password-1",
        "id" | "tenant" => "walker-env",
        "timezone" | "time_zone" => "UTC",
        "phone" => "+15550123456",
        "avatar_url" | "address" => "https://example.com/hook",
        "sns_topic_arn" => "arn:aws:sns:us-east-1:123456789012:walker",
        "group_by" => "title",
        _ => "walker",
    };
    // A field with a documented minimum length (the contact form's message)
    // gets a value that long.
    let min = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0) as usize;
    let short = min.saturating_sub(text.chars().count());
    json!(format!("{text}{}", "w".repeat(short)))
}

/// A leaf field of a request body: its path as the error names it, and its
/// schema.
struct Leaf {
    /// Steps from the body to the field: a property name, or `[]` for an
    /// array item, or `{}` for a map value.
    steps: Vec<String>,
    schema: Value,
}

impl Leaf {
    fn path(&self) -> String {
        let mut path = String::new();
        for step in &self.steps {
            match step.as_str() {
                "[]" => path.push_str("[0]"),
                "{}" => path.push_str(".k"),
                name if path.is_empty() => path.push_str(name),
                name => {
                    path.push('.');
                    path.push_str(name);
                }
            }
        }
        path
    }
}

fn leaves(document: &Value, schema: &Value, steps: Vec<String>, out: &mut Vec<Leaf>, depth: usize) {
    if depth > 8 {
        return;
    }
    let schema = concrete(document, schema);
    let kinds = types(schema);
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in properties {
            let mut next = steps.clone();
            next.push(name.clone());
            leaves(document, sub, next, out, depth + 1);
        }
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            let mut next = steps.clone();
            next.push("{}".into());
            leaves(document, values, next, out, depth + 1);
        }
        return;
    }
    if kinds.contains(&"object") {
        if let Some(values) = schema.get("additionalProperties").filter(|v| v.is_object()) {
            let mut next = steps.clone();
            next.push("{}".into());
            leaves(document, values, next, out, depth + 1);
        }
        return;
    }
    if kinds.contains(&"array") {
        if let Some(items) = schema.get("items") {
            let mut next = steps.clone();
            next.push("[]".into());
            leaves(document, items, next, out, depth + 1);
        }
        return;
    }
    if kinds.contains(&"string") || kinds.contains(&"integer") || schema.get("enum").is_some() {
        out.push(Leaf {
            steps,
            schema: schema.clone(),
        });
    }
}

/// The valid body of `schema` with the field at `steps` set to `value`.
fn body_with(document: &Value, schema: &Value, steps: &[String], value: Value) -> Value {
    let Some((step, rest)) = steps.split_first() else {
        return value;
    };
    let schema = concrete(document, schema);
    match step.as_str() {
        "[]" => {
            let items = schema.get("items").cloned().unwrap_or(Value::Bool(true));
            json!([body_with(document, &items, rest, value)])
        }
        "{}" => {
            let values = schema.get("additionalProperties").cloned().unwrap_or(Value::Bool(true));
            json!({ "k": body_with(document, &values, rest, value) })
        }
        name => {
            let mut object = match valid(document, schema, "") {
                Value::Object(object) => object,
                _ => Map::new(),
            };
            let sub = schema["properties"][name].clone();
            object.insert(name.to_owned(), body_with(document, &sub, rest, value));
            Value::Object(object)
        }
    }
}

/// A concrete path for a templated one: integer parameters 1, text ids a UUID
/// one, environments `default`.
fn concrete_path(document: &Value, operation: &Value, template: &str, hostile: Option<(&str, &str)>) -> String {
    let mut path = template.to_owned();
    for parameter in operation["parameters"].as_array().into_iter().flatten() {
        if parameter["in"] != "path" {
            continue;
        }
        let name = parameter["name"].as_str().unwrap_or_default();
        let schema = concrete(document, &parameter["schema"]);
        let value = match hostile {
            Some((target, value)) if target == name => value.to_owned(),
            _ if types(schema).contains(&"integer") => "1".to_owned(),
            _ if schema.get("format").and_then(Value::as_str) == Some("uuid") => {
                "6f9619ff-8b86-4011-b42d-00c04fc964ff".to_owned()
            }
            _ if template.starts_with("/api/v1/environments/") => "default".to_owned(),
            _ => "6f9619ff-8b86-4011-b42d-00c04fc964ff".to_owned(),
        };
        path = path.replace(&format!("{{{name}}}"), &value);
    }
    path
}

async fn served_document(app: &TestApp) -> Value {
    let response = app
        .http
        .get(format!("{}/openapi.json", app.base))
        .send()
        .await
        .expect("openapi.json");
    assert_eq!(response.status(), 200);
    response.json().await.expect("the document")
}

fn write_operations(document: &Value) -> Vec<(Method, String, Value)> {
    let mut operations = Vec::new();
    for (path, item) in document["paths"].as_object().into_iter().flatten() {
        if !path.starts_with("/api/v1/") {
            continue;
        }
        for (name, method) in [("post", Method::POST), ("put", Method::PUT), ("patch", Method::PATCH)] {
            if let Some(operation) = item.get(name) {
                operations.push((method, path.clone(), operation.clone()));
            }
        }
    }
    operations
}

fn json_body_schema(operation: &Value) -> Option<&Value> {
    operation["requestBody"]["content"]["application/json"].get("schema")
}

fn is_free_text(schema: &Value) -> bool {
    schema.get("enum").is_none()
        && schema.get("const").is_none()
        && !matches!(
            schema.get("format").and_then(Value::as_str),
            Some("date-time" | "partial-date-time" | "date" | "time")
        )
}

#[tokio::test]
async fn every_text_field_of_every_write_route_refuses_nul_and_overlong_values_naming_the_field() {
    let app = spawn_app().await;
    let document = served_document(&app).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (method, template, operation) in write_operations(&document) {
        if THIRD_PARTY.contains(&template.as_str()) {
            continue;
        }
        let Some(schema) = json_body_schema(&operation) else {
            continue;
        };
        let path = concrete_path(&document, &operation, &template, None);
        let mut fields = Vec::new();
        leaves(&document, schema, Vec::new(), &mut fields, 0);
        for leaf in fields {
            let field = leaf.path();
            let mut cases: Vec<(&str, Value)> = Vec::new();
            if types(&leaf.schema).contains(&"string") || leaf.schema.get("enum").is_some() {
                cases.push(("a NUL", json!("wal\0ker")));
                match leaf.schema.get("maxLength").and_then(Value::as_u64) {
                    Some(max) => cases.push(("an over-long value", json!("a".repeat(max as usize + 1)))),
                    None if is_free_text(&leaf.schema) => {
                        failures.push(format!("{method} {template} `{field}`: no documented maxLength"));
                    }
                    None => {}
                }
            } else if types(&leaf.schema).contains(&"integer") {
                match leaf.schema.get("maximum").and_then(Value::as_u64) {
                    Some(max) => cases.push(("a value over its maximum", json!(max + 1))),
                    // Ids are bounded by their type; a missing one is a 404.
                    None if field.ends_with("_id") || field.ends_with("_ids[0]") => {}
                    None => failures.push(format!("{method} {template} `{field}`: no documented maximum")),
                }
                if let Some(min) = leaf.schema.get("minimum").and_then(Value::as_i64)
                    && min > i64::from(i32::MIN)
                    && min != 0
                {
                    cases.push(("a value under its minimum", json!(min - 1)));
                }
            }
            for (what, value) in cases {
                checked += 1;
                let body = body_with(&document, schema, &leaf.steps, value);
                let reply = app
                    .send(method.clone(), &path, Auth::Bearer(&app.root), Some(body.clone()))
                    .await;
                let named = reply.body["error"]["details"]["field"].as_str().unwrap_or_default();
                if reply.status != 422 || named != field {
                    failures.push(format!(
                        "{method} {path} with {what} in `{field}`: {} naming `{named}` ({}); body {body}",
                        reply.status, reply.body
                    ));
                }
            }
        }
    }
    assert!(checked > 100, "only {checked} cases: the walk found too few fields");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Path segments outside every id grammar, percent-encoded as a client
/// would send them.
const HOSTILE_SEGMENTS: &[&str] = &[
    "a%23b",
    "..%2Fusers",
    "...",
    "%00",
    "a%00b",
    "x%2Fy",
    "T%23default%23USER",
    "not-a-number-nor-a-uuid-but-long-enough-to-be-neither-of-them-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
    "-1",
    "1.5",
    "99999999999999999999999",
    "%F0%9F%92%A5",
];

async fn hostile_path_ids_are_404_or_422(app: TestApp) {
    let document = served_document(&app).await;
    let mut failures = Vec::new();
    let mut checked = 0;
    for (template, item) in document["paths"].as_object().into_iter().flatten() {
        if !template.starts_with("/api/v1/") || !template.contains('{') {
            continue;
        }
        for (name, method) in [
            ("get", Method::GET),
            ("post", Method::POST),
            ("put", Method::PUT),
            ("patch", Method::PATCH),
            ("delete", Method::DELETE),
        ] {
            let Some(operation) = item.get(name) else { continue };
            let parameters: Vec<String> = operation["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|p| p["in"] == "path")
                .filter_map(|p| p["name"].as_str().map(str::to_owned))
                .collect();
            let body = json_body_schema(operation).map(|schema| valid(&document, schema, ""));
            for parameter in &parameters {
                for segment in HOSTILE_SEGMENTS {
                    checked += 1;
                    let path = concrete_path(&document, operation, template, Some((parameter, segment)));
                    let reply = app
                        .send(method.clone(), &path, Auth::Bearer(&app.root), body.clone())
                        .await;
                    if reply.status != 404 && reply.status != 422 {
                        failures.push(format!("{method} {path}: {} {}", reply.status, reply.body));
                    }
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} cases: the walk found too few path parameters"
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn hostile_path_ids_are_404_or_422_on_sqlite() {
    hostile_path_ids_are_404_or_422(spawn_app().await).await;
}

#[tokio::test]
async fn hostile_path_ids_are_404_or_422_on_dynamodb() {
    let table: Arc<dyn Table> = crate::support::dynamodb_table("hostileids").await;
    hostile_path_ids_are_404_or_422(spawn_app_on(table, &[]).await).await;
}

#[tokio::test]
async fn an_environment_id_with_a_key_separator_is_a_404_for_a_superadmin() {
    let app = spawn_app().await;
    for id in ["a%23b", "default%23USER", "default%23", "%23"] {
        let reply = app.get(&format!("/api/v1/environments/{id}"), &app.root).await;
        assert_eq!(reply.status, 404, "{id}: {:?}", reply.body);
        assert_eq!(reply.code(), "NOT_FOUND");
    }
    // The environment the id would have broken into is still there.
    assert_eq!(app.get("/api/v1/environments/default", &app.root).await.status, 200);
}

fn assert_refused(reply: &crate::support::Reply, field: &str) {
    assert_eq!(reply.status, 422, "{:?}", reply.body);
    assert_eq!(reply.code(), "VALIDATION_ERROR", "{:?}", reply.body);
    assert_eq!(reply.body["error"]["details"]["field"], field, "{:?}", reply.body);
}

#[tokio::test]
async fn a_description_with_a_nul_or_of_200_kb_is_refused_and_nothing_is_stored() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("limits").await;
    let nul = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "Payments", "description": "before\0after" }),
        )
        .await;
    assert_refused(&nul, "description");
    let huge = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "Payments", "description": "d".repeat(200 * 1024) }),
        )
        .await;
    assert!(
        huge.status == 422 || huge.status == 413,
        "200 KB description: {} {:?}",
        huge.status,
        huge.body
    );
    if huge.status == 422 {
        assert_refused(&huge, "description");
    }
    let at_limit = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({ "name": "Payments", "description": "d".repeat(quper_core::model::limits::DESCRIPTION) }),
        )
        .await;
    assert_eq!(at_limit.status, 201, "{:?}", at_limit.body);
    let over = app
        .patch(
            &format!("/api/v1/teams/{}", at_limit.body["id"]),
            &admin,
            json!({ "description": "d".repeat(quper_core::model::limits::DESCRIPTION + 1) }),
        )
        .await;
    assert_refused(&over, "description");
    // Only the team at the limit was stored, unchanged by the refused patch.
    let teams = app.get("/api/v1/teams", &admin).await;
    assert_eq!(teams.status, 200);
    let listed = teams.body["items"]
        .as_array()
        .or(teams.body.as_array())
        .cloned()
        .unwrap_or_default();
    assert_eq!(listed.len(), 1, "{:?}", teams.body);
    assert_eq!(
        listed[0]["description"].as_str().map(str::len),
        Some(quper_core::model::limits::DESCRIPTION)
    );
}

#[tokio::test]
async fn an_unknown_time_zone_is_refused_wherever_one_is_accepted() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("zones").await;
    let user = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "tz@zones.example", "full_name": "Tz", "timezone": "Nowhere/City" }),
        )
        .await;
    assert_refused(&user, "timezone");
    let me = app
        .patch("/api/v1/app/users/me", &admin, json!({ "timezone": "Nowhere/City" }))
        .await;
    assert_refused(&me, "timezone");
    let schedule = app
        .post(
            "/api/v1/schedules",
            &admin,
            json!({ "name": "Primary", "time_zone": "Nowhere/City" }),
        )
        .await;
    assert_refused(&schedule, "time_zone");
    let layer = app
        .post(
            "/api/v1/schedules",
            &admin,
            json!({ "name": "Primary", "layers": [{ "user_ids": [], "shift_length": 1, "shift_unit": "days",
                    "start": "2030-01-01T09:00:00", "time_zone": "Nowhere/City" }] }),
        )
        .await;
    assert_refused(&layer, "layers[0].time_zone");
    // A real zone is taken.
    let good = app
        .post(
            "/api/v1/users",
            &admin,
            json!({ "email": "tz@zones.example", "full_name": "Tz", "timezone": "Europe/Berlin" }),
        )
        .await;
    assert_eq!(good.status, 201, "{:?}", good.body);
    assert_eq!(good.body["timezone"], "Europe/Berlin");
}

#[tokio::test]
async fn a_contact_method_priority_past_its_bound_is_refused_and_priorities_do_not_wrap() {
    let app = spawn_app().await;
    let admin = app.tenant_with_admin("prio").await;
    let (user, _) = app
        .user_with_role(&admin, "prio@prio.example", quper_core::model::Role::Responder)
        .await;
    let path = format!("/api/v1/users/{user}/contact-methods");
    let huge = app
        .post(
            &path,
            &admin,
            json!({ "kind": "email", "address": "a@prio.example", "priority": 4294967295u64 }),
        )
        .await;
    assert_refused(&huge, "priority");
    let over = app
        .post(
            &path,
            &admin,
            json!({ "kind": "email", "address": "a@prio.example", "priority": quper_core::model::limits::PRIORITY + 1 }),
        )
        .await;
    assert_refused(&over, "priority");
    let highest = app
        .post(
            &path,
            &admin,
            json!({ "kind": "email", "address": "a@prio.example", "priority": quper_core::model::limits::PRIORITY }),
        )
        .await;
    assert_eq!(highest.status, 201, "{:?}", highest.body);
    // The next method without a priority comes after it, not back at 1.
    let next = app
        .post(&path, &admin, json!({ "kind": "email", "address": "b@prio.example" }))
        .await;
    assert_eq!(next.status, 201, "{:?}", next.body);
    assert!(
        next.body["priority"].as_u64() >= Some(u64::from(quper_core::model::limits::PRIORITY)),
        "{:?}",
        next.body
    );
}
