//! The API document (OpenAPI 3.1): made from the handlers' `#[utoipa::path]` attributes and
//! their request and response types as [`super::api`] registers them (a handler without one
//! does not compile there), served at `GET /api/v1/openapi.json` and rendered by the reference
//! page at `/api-docs`.

use std::sync::LazyLock;

use actix_web::{HttpResponse, get};
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi as Document, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use super::error::ErrorBody;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "StreamSpace control plane",
        description = "Sessions, templates, agents, users, homes and the audit log. Every call \
            but login and the probes needs `Authorization: Bearer <token>` from \
            `POST /api/v1/auth/login`; errors are `{\"error\": code, \"message\": …}` with the \
            status that fits."
    ),
    components(schemas(ErrorBody)),
    security(("login" = []))
)]
struct Base;

/// What every operation shares, added once here instead of in each attribute.
struct Conventions;

/// Operations that never touch the database.
const WITHOUT_DATABASE: &[&str] = &["healthz", "openapi"];

impl Modify for Conventions {
    fn modify(&self, api: &mut Document) {
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "login",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("A login token from POST /api/v1/auth/login"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "agent",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An agent credential (AGENT_TOKEN)"))
                    .build(),
            ),
        );
        for item in api.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                conventions(operation);
            }
        }
    }
}

fn conventions(operation: &mut Operation) {
    let takes_input = operation.request_body.is_some()
        || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
    // No `security` means the document's default (a login token); `security(())` is one
    // empty requirement: none.
    let authenticated = operation.security.as_ref().is_none_or(|requirements| {
        requirements
            .iter()
            .any(|r| serde_json::to_value(r).is_ok_and(|v| v != serde_json::json!({})))
    });
    // Handler comments often start with their route, which the reference shows anyway.
    if let Some(summary) = operation.summary.take() {
        operation.summary = Some(without_route(&summary));
    }
    let id = operation.operation_id.clone().unwrap_or_default();
    // Handlers are named for what they do within their module (`list`, `get`): the tag makes
    // them unique.
    if let Some(tag) = operation.tags.as_ref().and_then(|t| t.first())
        && !id.starts_with(tag.as_str())
    {
        operation.operation_id = Some(format!("{tag}_{id}"));
    }
    let responses = &mut operation.responses.responses;
    let mut add = |status: &str, description: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| ResponseBuilder::new().description(description).into());
    };
    if takes_input {
        add("400", "Malformed or invalid input");
    }
    if authenticated {
        add("401", "No, an invalid or an outdated token");
    }
    if !WITHOUT_DATABASE.contains(&id.as_str()) {
        add("503", "The database (or the agent asked) is unavailable");
    }
    // Every error has the one error body.
    for (status, response) in responses.iter_mut() {
        if let RefOr::T(response) = response
            && status.starts_with(['4', '5'])
            && response.content.is_empty()
        {
            response.content.insert(
                "application/json".into(),
                Content::new(Some(Ref::from_schema_name("ErrorBody"))),
            );
        }
    }
}

/// "`GET /x`: does y" → "Does y"; "`POST /x` → 202 …" → "Answers 202 …".
fn without_route(summary: &str) -> String {
    let Some(rest) = summary
        .strip_prefix('`')
        .and_then(|s| s.split_once('`'))
        .map(|(_, rest)| rest)
    else {
        return summary.to_owned();
    };
    let rest = rest.trim_start_matches(':').trim_start();
    if let Some(outcome) = rest.strip_prefix('→') {
        return format!("Answers{outcome}");
    }
    let mut chars = rest.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => summary.to_owned(),
    }
}

/// Text in the API never holds NUL (Postgres cannot store it; such input is a 400): said with a
/// pattern on every string the document does not otherwise constrain.
fn without_nul(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let text = match map.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            if text
                && !["pattern", "format", "enum"]
                    .iter()
                    .any(|k| map.contains_key(*k))
            {
                map.insert("pattern".into(), Value::String("^[^\\u0000]*$".into()));
            }
            map.values_mut().for_each(without_nul);
        }
        Value::Array(items) => items.iter_mut().for_each(without_nul),
        _ => {}
    }
}

/// The document, made once.
pub static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let (_, paths) = actix_web::App::new()
        .into_utoipa_app()
        .configure(super::api)
        .split_for_parts();
    let mut document = Base::openapi().merge_from(paths);
    document.info.version = env!("CARGO_PKG_VERSION").into();
    Conventions.modify(&mut document);
    let mut document = serde_json::to_value(&document).unwrap_or_default();
    without_nul(&mut document);
    serde_json::to_string_pretty(&document).unwrap_or_default()
});

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "patch", "head", "options", "trace",
];

/// Each documented path's segments and the methods it takes (`GET, POST`).
static ROUTES: LazyLock<Vec<Route>> = LazyLock::new(|| {
    let document: serde_json::Value = serde_json::from_str(&DOCUMENT).unwrap_or_default();
    document["paths"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(path, item)| {
            let methods = item.as_object().into_iter().flatten();
            let methods: Vec<String> = methods
                .filter(|(m, _)| METHODS.contains(&m.as_str()))
                .map(|(m, _)| m.to_uppercase())
                .collect();
            Route {
                template: path.clone(),
                methods: methods.join(", "),
            }
        })
        .collect()
});

/// A documented path and the methods it takes (`GET, POST`).
struct Route {
    template: String,
    methods: String,
}

impl Route {
    /// Whether `path` is this template with its `{parameters}` filled in.
    fn matches(&self, path: &str) -> bool {
        let (mut template, mut path) = (self.template.split('/'), path.split('/'));
        loop {
            match (template.next(), path.next()) {
                (None, None) => return true,
                (Some(t), Some(p)) if (t.starts_with('{') && !p.is_empty()) || t == p => {}
                _ => return false,
            }
        }
    }

    /// Literal segments: the most literal template names a path (`/agents/register`, not
    /// `/agents/{agent_id}`).
    fn literal(&self) -> usize {
        self.template
            .split('/')
            .filter(|t| !t.starts_with('{'))
            .count()
    }
}

fn route_of(path: &str) -> Option<&'static Route> {
    ROUTES
        .iter()
        .filter(|route| route.matches(path))
        .max_by_key(|route| route.literal())
}

/// The documented path template `path` is an instance of (`/api/v1/sessions/{id}`), if any.
pub fn template_of(path: &str) -> Option<&'static str> {
    route_of(path).map(|route| route.template.as_str())
}

/// The methods a documented path takes, or `None` when no documented path matches.
pub fn methods_at(path: &str) -> Option<String> {
    route_of(path).map(|route| route.methods.clone())
}

/// This document.
#[utoipa::path(
    operation_id = "openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object))
)]
#[get("/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT.as_str())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use serde_json::Value;

    use super::*;

    fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(r)) = map.get("$ref") {
                    out.push(r);
                }
                map.values().for_each(|v| refs(v, out));
            }
            Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }

    fn schema(path: &str) -> Value {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        document
            .pointer(path)
            .unwrap_or_else(|| panic!("{path}"))
            .clone()
    }

    fn pattern(path: &str) -> jsonschema::Validator {
        let pattern = schema(path)["pattern"].as_str().unwrap().to_owned();
        jsonschema::validator_for(&serde_json::json!({ "pattern": pattern })).unwrap()
    }

    type Validator = fn(&str) -> Result<(), String>;

    proptest::proptest! {
        /// What the document promises a client is what the server checks: schemathesis sends
        /// values that match (expecting acceptance) and values that do not (expecting 400).
        #[test]
        fn documented_patterns_accept_exactly_what_the_validators_accept(
            text in "[a-zA-Z0-9._ \n-]{0,3}[01a.-]{0,66}(m|Mi|Gi|k|[.])?",
        ) {
            let cases: [(&str, Validator); 5] = [
                ("/components/schemas/NewUser/properties/username", crate::validate::username),
                ("/components/schemas/Registration/properties/agent_id", crate::validate::agent_id),
                ("/components/schemas/TemplateBody/properties/name", crate::validate::template_name),
                ("/components/schemas/ResourceAmounts/properties/cpu", crate::validate::cpu),
                ("/components/schemas/ResourceAmounts/properties/memory", crate::validate::memory),
            ];
            for (path, check) in cases {
                let matches = pattern(path).is_valid(&Value::String(text.clone()));
                proptest::prop_assert_eq!(matches, check(&text).is_ok(), "{} on {:?}", path, text);
            }
        }
    }

    #[test]
    fn summaries_leave_out_the_route_the_reference_shows_anyway() {
        assert_eq!(
            without_route("`GET /api/v1/x`: asks the agent"),
            "Asks the agent"
        );
        assert_eq!(
            without_route("`POST /x` → 202 with it"),
            "Answers 202 with it"
        );
        assert_eq!(
            without_route("`GET /api/v1/sessions/{id}`"),
            "`GET /api/v1/sessions/{id}`"
        );
        assert_eq!(without_route("The caller."), "The caller.");
    }

    #[test]
    fn every_reference_resolves_and_every_operation_is_named_once() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        assert_eq!(document["openapi"], "3.1.0");
        let mut found = Vec::new();
        refs(&document, &mut found);
        assert!(found.len() > 50);
        for reference in found {
            let pointer = reference.trim_start_matches('#');
            assert!(
                document.pointer(pointer).is_some(),
                "{reference} resolves to nothing"
            );
        }
        let mut ids = HashSet::new();
        for (path, item) in document["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let id = operation["operationId"].as_str().unwrap();
                assert!(ids.insert(id.to_owned()), "{method} {path}: {id} twice");
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.starts_with(['4', '5']) {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn every_operation_but_the_probes_and_this_document_can_answer_401() {
        let document: Value = serde_json::from_str(&DOCUMENT).unwrap();
        let open: Vec<String> = document["paths"]
            .as_object()
            .unwrap()
            .iter()
            .flat_map(|(path, item)| {
                item.as_object()
                    .unwrap()
                    .iter()
                    .filter(|(_, op)| op["responses"].get("401").is_none())
                    .map(move |(method, _)| format!("{method} {path}"))
            })
            .collect();
        assert_eq!(
            open,
            [
                "get /api/v1/openapi.json",
                "get /healthz",
                "get /metrics",
                "get /readyz"
            ]
        );
    }
}
