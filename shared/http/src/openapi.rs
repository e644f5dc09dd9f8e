//! The OpenAPI 3.1 document, made from the route list.
//!
//! Every route group declares its routes once, as an [`ApiRouter`] whose
//! handlers' extractors and return types carry the schemas (aide reads them;
//! `schemars` derives each type's JSON schema from its serde shape). That
//! router serves the requests, and [`document`] turns the same declaration
//! into the document served at `/openapi.json`:
//!
//! - request bodies, path and query parameters from the extractors
//!   ([`ApiJson`], [`ApiPath`], [`ApiQuery`], ...), security from [`Caller`]
//!   and the ingestion key;
//! - the success response from the return type (`Json<T>` 200, [`Created`]
//!   201, `NoContent` 204), and every failure as the `default` response in
//!   the one error format ([`ErrorBody`]);
//! - each operation tagged with its route group, which is also the Lambda
//!   function that serves it;
//! - every `/api/v1/...` path also as `/api/v2/...`, with its success bodies
//!   wrapped in the v2 envelope and its errors carrying `meta`.

use aide::OperationInput;
use aide::OperationOutput;
use aide::axum::ApiRouter;
use aide::generate::GenContext;
use aide::openapi::{
    Info, MediaType, OpenApi, Operation, ReferenceOr, RequestBody, Response, SchemaObject, SecurityScheme, Tag,
};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response as HttpResponse};
use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery, OptionalJson, RawBody};
use crate::middleware::LATEST_VERSION;
use crate::state::AppState;

/// A created resource: 201 with its JSON.
#[derive(Debug, Clone)]
pub struct Created<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> HttpResponse {
        (StatusCode::CREATED, Json(self.0)).into_response()
    }
}

impl<T: JsonSchema> OperationOutput for Created<T> {
    type Inner = T;

    fn operation_response(ctx: &mut GenContext, operation: &mut Operation) -> Option<Response> {
        Json::<T>::operation_response(ctx, operation)
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<u16>, Response)> {
        Self::operation_response(ctx, operation)
            .map(|response| vec![(Some(201), described(response, "Created"))])
            .unwrap_or_default()
    }
}

/// A response's description, when its schema gave none.
pub fn described(mut response: Response, description: &str) -> Response {
    if response.description.is_empty() {
        response.description = description.to_owned();
    }
    response
}

/// A JSON response with `schema`.
pub fn json_response(description: &str, schema: Schema) -> Response {
    Response {
        description: description.to_owned(),
        content: IndexMap::from_iter([(
            "application/json".to_owned(),
            MediaType {
                schema: Some(SchemaObject {
                    json_schema: schema,
                    example: None,
                    external_docs: None,
                }),
                ..Default::default()
            },
        )]),
        ..Default::default()
    }
}

/// The error format of every failure, as a schema:
/// `{"success": false, "error": {"code", "message", "details"}}`.
pub struct ErrorBody;

impl JsonSchema for ErrorBody {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Error".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Every failure, in one format.",
            "type": "object",
            "required": ["success", "error"],
            "properties": {
                "success": { "const": false },
                "error": {
                    "type": "object",
                    "required": ["code", "message", "details"],
                    "properties": {
                        "code": { "enum": crate::error::ErrorCode::ALL.map(crate::error::ErrorCode::as_str) },
                        "message": { "type": "string" },
                        "details": { "type": "object" },
                    },
                },
            },
        })
    }
}

impl OperationOutput for ApiError {
    type Inner = ErrorBody;

    fn operation_response(ctx: &mut GenContext, _: &mut Operation) -> Option<Response> {
        Some(json_response(
            "A failure, in the one error format (see the status)",
            ctx.schema.subschema_for::<ErrorBody>(),
        ))
    }

    fn inferred_responses(ctx: &mut GenContext, operation: &mut Operation) -> Vec<(Option<u16>, Response)> {
        Self::operation_response(ctx, operation)
            .map(|response| vec![(None, response)])
            .unwrap_or_default()
    }
}

impl<T: JsonSchema> OperationInput for ApiJson<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        Json::<T>::operation_input(ctx, operation);
    }
}

impl<T: JsonSchema> OperationInput for OptionalJson<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        Json::<T>::operation_input(ctx, operation);
        if let Some(ReferenceOr::Item(body)) = &mut operation.request_body {
            body.required = false;
        }
    }
}

impl OperationInput for RawBody {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        operation.request_body = Some(ReferenceOr::Item(RequestBody {
            description: Some("The body as the sender posts it (SNS posts JSON as text/plain).".into()),
            content: IndexMap::from_iter([(
                "text/plain".to_owned(),
                MediaType {
                    schema: Some(SchemaObject {
                        json_schema: json_schema!({ "type": "string" }),
                        example: None,
                        external_docs: None,
                    }),
                    ..Default::default()
                },
            )]),
            required: true,
            extensions: IndexMap::new(),
        }));
    }
}

impl<T: JsonSchema> OperationInput for ApiQuery<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Query::<T>::operation_input(ctx, operation);
    }
}

impl<T: JsonSchema> OperationInput for ApiPath<T> {
    fn operation_input(ctx: &mut GenContext, operation: &mut Operation) {
        axum::extract::Path::<T>::operation_input(ctx, operation);
    }
}

/// Sets the operation's security to any one of `schemes`.
pub fn require_any(operation: &mut Operation, schemes: &[&str]) {
    operation.security = schemes
        .iter()
        .map(|scheme| IndexMap::from_iter([((*scheme).to_owned(), Vec::new())]))
        .collect();
}

impl OperationInput for Caller {
    fn operation_input(_: &mut GenContext, operation: &mut Operation) {
        require_any(operation, &["bearerAuth", "basicAuth"]);
    }
}

/// The document of the routes `build` declares (aide collects the
/// operations while the routes are declared). Problems aide finds (a path
/// parameter no extractor documents, ...) are logged; [`document_checked`]
/// returns them.
pub fn document(build: impl FnOnce() -> ApiRouter<AppState>) -> Value {
    let (document, problems) = document_checked(build);
    for problem in problems {
        tracing::warn!(%problem, "the OpenAPI document is incomplete");
    }
    document
}

/// [`document`] and the problems aide found while building it.
pub fn document_checked(build: impl FnOnce() -> ApiRouter<AppState>) -> (Value, Vec<String>) {
    let problems = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    aide::generate::reset_context();
    let seen = problems.clone();
    aide::generate::on_error(move |error| seen.borrow_mut().push(error.to_string()));
    aide::generate::extract_schemas(true);
    aide::generate::infer_responses(true);
    let mut api = OpenApi {
        info: Info {
            title: "Quper API".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            description: Some(
                "Alerting, on-call and incidents. `/api/v1/...` answers with resources as they are; \
                 `/api/v2/...` serves the same routes wrapped in `{\"success\", \"data\", \"message\", \"meta\"}`. \
                 Every failure is `{\"success\": false, \"error\": {\"code\", \"message\", \"details\"}}`."
                    .into(),
            ),
            ..Info::default()
        },
        ..OpenApi::default()
    };
    // The WebSocket endpoint is not an HTTP route (an API Gateway WebSocket
    // API on AWS), so it is not in the paths: the description names it.
    if let Some(description) = api.info.description.as_mut() {
        description.push_str(crate::ws::OPENAPI_NOTE);
    }
    let _router = build().finish_api_with(&mut api, |api| {
        api.security_scheme(
            "bearerAuth",
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: Some("JWT".into()),
                description: Some("A token from POST /api/v1/auth/token, or an external provider's".into()),
                extensions: IndexMap::new(),
            },
        )
        .security_scheme(
            "basicAuth",
            SecurityScheme::Http {
                scheme: "basic".into(),
                bearer_format: None,
                description: Some("An account's email (or tenant/email) and password".into()),
                extensions: IndexMap::new(),
            },
        )
        .security_scheme(
            "alertSourceKey",
            SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Header,
                name: "X-API-Key".into(),
                description: Some(
                    "An alert source's key; also accepted as X-Alert-Source-Key, Authorization: Bearer, \
                     ?api_key= or ?token= (and PagerDuty's routing_key)"
                        .into(),
                ),
                extensions: IndexMap::new(),
            },
        )
        .security_scheme(
            "metricsToken",
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: None,
                description: Some(
                    "The token configured as QUPER_METRICS_TOKEN (metrics are public without one)".into(),
                ),
                extensions: IndexMap::new(),
            },
        )
        .security_scheme(
            "supabaseWebhookSecret",
            SecurityScheme::Http {
                scheme: "bearer".into(),
                bearer_format: None,
                description: Some("The shared secret configured as QUPER_SUPABASE_WEBHOOK_SECRET".into()),
                extensions: IndexMap::new(),
            },
        )
        .security_scheme(
            "infobipReceiptToken",
            SecurityScheme::ApiKey {
                location: aide::openapi::ApiKeyLocation::Header,
                name: "X-Infobip-Receipt-Token".into(),
                description: Some("The token configured as QUPER_INFOBIP_RECEIPT_TOKEN".into()),
                extensions: IndexMap::new(),
            },
        )
    });
    let mut document = serde_json::to_value(&api).unwrap_or_else(|_| json!({}));
    document["openapi"] = json!("3.1.0");
    add_tags(&mut document);
    document_failures(&mut document);
    add_v2(&mut document);
    drop_unused_schemas(&mut document);
    any_value_as_empty_schema(&mut document);
    aide::generate::reset_context();
    let problems = problems.borrow().clone();
    (document, problems)
}

/// Writes "any JSON value" as the schema `{}` instead of the boolean schema
/// `true` (schemars' schema of `serde_json::Value`). Both mean the same, but
/// tools that read the document (Schemathesis among them) expect a schema to
/// be an object where a property, item or body schema is.
fn any_value_as_empty_schema(document: &mut Value) {
    fn schema(value: &mut Value) {
        match value {
            Value::Bool(true) => *value = json!({}),
            Value::Object(object) => {
                for (key, child) in object.iter_mut() {
                    match key.as_str() {
                        "properties" | "patternProperties" | "$defs" | "definitions" | "dependentSchemas" => {
                            for sub in child.as_object_mut().into_iter().flat_map(|m| m.values_mut()) {
                                schema(sub);
                            }
                        }
                        "allOf" | "anyOf" | "oneOf" | "prefixItems" => {
                            for sub in child.as_array_mut().into_iter().flatten() {
                                schema(sub);
                            }
                        }
                        "items"
                        | "additionalProperties"
                        | "not"
                        | "if"
                        | "then"
                        | "else"
                        | "contains"
                        | "propertyNames"
                        | "unevaluatedItems"
                        | "unevaluatedProperties" => schema(child),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    /// Every `schema` of a parameter, body or response, wherever it sits.
    fn schemas_in(value: &mut Value) {
        match value {
            Value::Object(object) => {
                for (key, child) in object.iter_mut() {
                    if key == "schema" {
                        schema(child);
                    } else {
                        schemas_in(child);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(schemas_in),
            _ => {}
        }
    }
    schemas_in(&mut document["paths"]);
    if let Some(components) = document["components"]["schemas"].as_object_mut() {
        components.values_mut().for_each(schema);
    }
}

/// Removes component schemas nothing refers to (the path and query
/// parameter types, which become parameters).
fn drop_unused_schemas(document: &mut Value) {
    loop {
        let text = document["paths"].to_string() + &document["components"]["schemas"].to_string();
        let Some(schemas) = document["components"]["schemas"].as_object_mut() else {
            return;
        };
        let unused: Vec<String> = schemas
            .keys()
            .filter(|name| !text.contains(&format!("\"#/components/schemas/{name}\"")))
            .cloned()
            .collect();
        if unused.is_empty() {
            return;
        }
        for name in unused {
            schemas.remove(&name);
        }
    }
}

/// Every operation may fail (the edge alone answers 413, 415, 429, 503):
/// each documents its failures in the one error format.
fn document_failures(document: &mut Value) {
    let Some(paths) = document["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        for operation in item.as_object_mut().into_iter().flat_map(|item| item.values_mut()) {
            let responses = &mut operation["responses"];
            if responses.get("default").is_none() {
                responses["default"] = json!({
                    "description": "A failure, in the one error format (see the status)",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
                });
            }
        }
    }
}

/// Lists the tags (route groups) the operations use, in order.
fn add_tags(document: &mut Value) {
    let mut tags: Vec<String> = Vec::new();
    for item in document["paths"].as_object().into_iter().flat_map(Map::values) {
        for operation in item.as_object().into_iter().flat_map(Map::values) {
            for tag in operation["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                if !tags.iter().any(|t| t == tag) {
                    tags.push(tag.to_owned());
                }
            }
        }
    }
    let described: Vec<Value> = tags
        .iter()
        .map(|name| {
            serde_json::to_value(Tag {
                name: name.clone(),
                description: Some(format!("The `{name}` route group (Lambda function `quper-{name}`)")),
                ..Tag::default()
            })
            .unwrap_or(Value::Null)
        })
        .collect();
    document["tags"] = Value::Array(described);
}

/// Adds `/api/v2/...` for every `/api/v1/...` path: the same operations, their
/// JSON success bodies wrapped in the envelope, their errors with `meta`.
fn add_v2(document: &mut Value) {
    let Some(paths) = document["paths"].as_object().cloned() else {
        return;
    };
    let mut with_v2 = Map::new();
    for (path, item) in paths {
        let v2 = path
            .strip_prefix("/api/v1/")
            .map(|rest| (format!("/api/v2/{rest}"), envelope_item(&item)));
        with_v2.insert(path, item);
        if let Some((path, item)) = v2 {
            with_v2.insert(path, item);
        }
    }
    document["paths"] = Value::Object(with_v2);
    let schemas = &mut document["components"]["schemas"];
    if !schemas.is_object() {
        *schemas = json!({});
    }
    schemas["Meta"] = json!({
        "type": "object",
        "required": ["request_id", "timestamp", "version"],
        "properties": {
            "request_id": { "type": "string" },
            "timestamp": { "type": "string", "format": "date-time" },
            "version": { "const": LATEST_VERSION },
        },
    });
    schemas["ErrorV2"] = json!({
        "description": "Every failure under /api/v2: the error format with `meta`.",
        "allOf": [{ "$ref": "#/components/schemas/Error" }],
        "required": ["meta"],
        "properties": { "meta": { "$ref": "#/components/schemas/Meta" } },
    });
}

fn envelope_item(item: &Value) -> Value {
    let mut item = item.clone();
    let Some(operations) = item.as_object_mut() else {
        return item;
    };
    for operation in operations.values_mut() {
        if let Some(id) = operation["operationId"].as_str() {
            operation["operationId"] = json!(format!("{id}V2"));
        }
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for (status, response) in responses.iter_mut() {
            let Some(schema) = response.pointer_mut("/content/application~1json/schema") else {
                continue;
            };
            *schema = if status.starts_with('2') {
                json!({
                    "type": "object",
                    "required": ["success", "data", "message", "meta"],
                    "properties": {
                        "success": { "const": true },
                        "data": schema.clone(),
                        "message": { "type": "string" },
                        "meta": { "$ref": "#/components/schemas/Meta" },
                    },
                })
            } else if *schema == json!({ "$ref": "#/components/schemas/Error" }) {
                json!({ "$ref": "#/components/schemas/ErrorV2" })
            } else {
                // A failure with a body of its own (readiness' 503): the
                // envelope adds `meta` to it.
                json!({
                    "allOf": [schema.clone()],
                    "required": ["meta"],
                    "properties": { "meta": { "$ref": "#/components/schemas/Meta" } },
                })
            };
        }
    }
    item
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_true(value: &Value, at: &str, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, child) in object {
                    let here = format!("{at}/{key}");
                    let is_schema_slot = matches!(key.as_str(), "schema" | "items" | "additionalProperties" | "not")
                        || at.ends_with("/properties")
                        || at.ends_with("/components/schemas");
                    if *child == Value::Bool(true) && is_schema_slot {
                        found.push(here.clone());
                    }
                    any_true(child, &here, found);
                }
            }
            Value::Array(items) => {
                for (index, child) in items.iter().enumerate() {
                    if *child == Value::Bool(true) && (at.ends_with("Of") || at.ends_with("prefixItems")) {
                        found.push(format!("{at}/{index}"));
                    }
                    any_true(child, &format!("{at}/{index}"), found);
                }
            }
            _ => {}
        }
    }

    #[test]
    fn any_value_is_the_empty_schema_not_true() {
        let document = document(crate::routes::all_documented);
        let mut found = Vec::new();
        any_true(&document, "", &mut found);
        assert!(
            found.is_empty(),
            "boolean `true` schemas left in the document: {found:?}"
        );
        // The ingestion body (any JSON) and a source's `config` are still "anything".
        assert_eq!(
            document.pointer("/paths/~1api~1v1~1alerts/post/requestBody/content/application~1json/schema"),
            Some(&json!({}))
        );
        assert_eq!(
            document.pointer("/components/schemas/SourceView/properties/config"),
            Some(&json!({}))
        );
    }

    #[test]
    fn every_operation_documents_a_success_response() {
        let document = document(crate::routes::all_documented);
        let mut missing = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let documented = operation
                    .get("responses")
                    .and_then(Value::as_object)
                    .is_some_and(|responses| responses.keys().any(|status| status.starts_with('2')));
                if !documented {
                    missing.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            missing.is_empty(),
            "operations without a documented success: {missing:?}"
        );
    }

    #[test]
    fn every_ingestion_operation_declares_the_source_key() {
        let document = document(crate::routes::all_documented);
        let mut undeclared = Vec::new();
        for (path, item) in document["paths"].as_object().expect("paths") {
            for (method, operation) in item.as_object().expect("path item") {
                let ingest = operation["tags"]
                    .as_array()
                    .is_some_and(|tags| tags.contains(&json!("ingest")));
                if ingest && operation["security"] != json!([{ "alertSourceKey": [] }]) {
                    undeclared.push(format!("{method} {path}"));
                }
            }
        }
        assert!(
            undeclared.is_empty(),
            "ingestion without alertSourceKey: {undeclared:?}"
        );
    }

    #[test]
    fn a_v2_failure_with_its_own_body_is_documented_with_meta() {
        let document = document(crate::routes::all_documented);
        let ready = document
            .pointer("/paths/~1api~1v2~1public~1health~1ready/get/responses/503/content/application~1json/schema")
            .expect("503 of v2 readiness");
        assert_eq!(ready["allOf"], json!([{ "$ref": "#/components/schemas/Readiness" }]));
        assert_eq!(ready["required"], json!(["meta"]));
        let error = document
            .pointer("/paths/~1api~1v2~1users/get/responses/default/content/application~1json/schema")
            .expect("default of v2 users");
        assert_eq!(error, &json!({ "$ref": "#/components/schemas/ErrorV2" }));
    }

    #[test]
    fn list_parameters_document_the_limits_the_handlers_enforce() {
        let document = document(crate::routes::all_documented);
        let parameter = |path: &str, name: &str| {
            document["paths"][path]["get"]["parameters"]
                .as_array()
                .and_then(|all| all.iter().find(|p| p["name"] == name))
                .map(|p| (p["schema"]["minimum"].clone(), p["schema"]["maximum"].clone()))
        };
        assert_eq!(parameter("/api/v1/roles", "limit"), Some((json!(1), json!(100))));
        assert_eq!(parameter("/api/v1/alerts", "limit"), Some((json!(1), json!(200))));
        assert_eq!(parameter("/api/v2/users", "page"), Some((json!(1), Value::Null)));
        assert_eq!(
            parameter("/api/v1/incidents", "page_size"),
            Some((json!(1), Value::Null))
        );
    }
}
