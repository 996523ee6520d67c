//! The API document as a contract: every response a test gets through [`crate::TestServer`] is
//! checked against it, so a route, a status or a field the document does not describe (or
//! describes wrongly) fails the test that met it.
//!
//! Checked closed: objects may carry only the properties the document names, so a field added
//! to a response without its schema is caught too.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use serde_json::{Map, Value, json};
use streamspace_control_plane::http::openapi::{DOCUMENT, template_of};

struct Contract {
    /// `components` with every object closed and every `allOf` merged.
    components: Value,
    /// `paths`, by template and then method.
    paths: Value,
    validators: Mutex<HashMap<String, std::sync::Arc<jsonschema::Validator>>>,
}

static CONTRACT: LazyLock<Contract> = LazyLock::new(|| {
    let document: Value = serde_json::from_str(&DOCUMENT).expect("the API document is JSON");
    let mut components = document["components"].clone();
    let schemas = components["schemas"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let merged: Map<String, Value> = schemas
        .keys()
        .map(|name| {
            (
                name.clone(),
                closed(&merge_all_of(&schemas[name], &schemas)),
            )
        })
        .collect();
    components["schemas"] = Value::Object(merged);
    Contract {
        components,
        paths: document["paths"].clone(),
        validators: Mutex::default(),
    }
});

/// An object schema standing for `allOf` parts (refs resolved), so that closing it does not
/// refuse the properties of its other parts.
fn merge_all_of(schema: &Value, schemas: &Map<String, Value>) -> Value {
    let Some(parts) = schema.get("allOf").and_then(Value::as_array) else {
        return schema.clone();
    };
    let mut properties = Map::new();
    let mut required = Vec::new();
    for part in parts {
        let part = match part.get("$ref").and_then(Value::as_str) {
            Some(reference) => {
                let name = reference.trim_start_matches("#/components/schemas/");
                merge_all_of(&schemas[name], schemas)
            }
            None => part.clone(),
        };
        if let Some(p) = part["properties"].as_object() {
            properties.extend(p.clone());
        }
        if let Some(r) = part["required"].as_array() {
            required.extend(r.iter().cloned());
        }
    }
    json!({"type": "object", "properties": properties, "required": required})
}

/// The schema with `additionalProperties: false` on every object that names its properties.
fn closed(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), closed(v))).collect();
            if out.contains_key("properties") && !out.contains_key("additionalProperties") {
                out.insert("additionalProperties".into(), Value::Bool(false));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(closed).collect()),
        other => other.clone(),
    }
}

/// Checks one response: `body` as the client parsed it (`null` when empty, a string when not
/// JSON). `Err` says what the document does not allow.
pub fn check(method: &str, url_path: &str, status: u16, body: &Value) -> Result<(), String> {
    let contract = &*CONTRACT;
    let path = url_path.split('?').next().unwrap_or(url_path);
    // The path's template, found as the server's 405 answers find it.
    let operation = template_of(path).and_then(|template| {
        let operation = &contract.paths[template][method.to_lowercase()];
        (!operation.is_null()).then_some((template, operation))
    });
    let Some((template, operation)) = operation else {
        // Pages and assets are not the API; a missing API route answers 404 with the error body.
        if !path.starts_with("/api/") || (status == 404 && body["error"] == "not_found") {
            return Ok(());
        }
        return Err(format!(
            "{method} {path} answered {status}, but the API document has no such operation"
        ));
    };
    let response = &operation["responses"][status.to_string()];
    if response.is_null() {
        return Err(format!(
            "{method} {template} answered {status}, which its operation does not document: {body}"
        ));
    }
    let Some(content) = response["content"].as_object().filter(|c| !c.is_empty()) else {
        return match body {
            Value::Null => Ok(()),
            _ => Err(format!(
                "{method} {path} answered {status} with a body the document says it has not: {body}"
            )),
        };
    };
    let Some(json_content) = content.get("application/json") else {
        // Text (metrics): the test reads it with a real parser.
        return Ok(());
    };
    let cache_key = format!("{method} {template} {status}");
    let validator = contract
        .validators
        .lock()
        .unwrap()
        .entry(cache_key)
        .or_insert_with(|| {
            let schema = json!({
                "components": contract.components,
                "allOf": [closed(&json_content["schema"])],
            });
            std::sync::Arc::new(
                jsonschema::options()
                    .should_validate_formats(true)
                    .build(&schema)
                    .expect("the API document's schemas compile"),
            )
        })
        .clone();
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{method} {path} answered {status} with a body the API document does not allow: {}\nbody: {body}",
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> Value {
        json!({
            "id": "0b8e7f1c-59d4-4f49-9c55-3f3f4a3b9d11",
            "username": "alice",
            "role": "user",
            "disabled": false,
            "created_at": "2026-11-28T04:00:00Z",
            "updated_at": "2026-11-28T04:00:00Z",
        })
    }

    #[test]
    fn a_response_as_documented_passes() {
        check("POST", "/api/v1/users", 201, &user()).unwrap();
        check(
            "DELETE",
            "/api/v1/users/0b8e7f1c-59d4-4f49-9c55-3f3f4a3b9d11",
            204,
            &Value::Null,
        )
        .unwrap();
        let page = json!({"users": [user()], "next_after": null});
        check("GET", "/api/v1/users?limit=1", 200, &page).unwrap();
        let error = json!({"error": "not_found", "message": "no user", "request_id": "x"});
        check("PATCH", "/api/v1/users/1", 404, &error).unwrap();
    }

    #[test]
    fn a_field_the_document_does_not_name_fails() {
        let mut extra = user();
        extra["password_hash"] = json!("$argon2id$…");
        let error = check("POST", "/api/v1/users", 201, &extra).unwrap_err();
        assert!(error.contains("password_hash"), "{error}");
        // Also inside a merged (flattened) schema.
        let session = json!({"sessions": [{"owner": "alice", "surprise": 1}], "next_before": null});
        assert!(check("GET", "/api/v1/sessions", 200, &session).is_err());
    }

    #[test]
    fn a_wrong_type_a_missing_field_or_an_unknown_value_fails() {
        let mut wrong = user();
        wrong["disabled"] = json!("no");
        assert!(check("POST", "/api/v1/users", 201, &wrong).is_err());
        let mut missing = user();
        missing.as_object_mut().unwrap().remove("username");
        assert!(check("POST", "/api/v1/users", 201, &missing).is_err());
        let mut role = user();
        role["role"] = json!("root");
        assert!(check("POST", "/api/v1/users", 201, &role).is_err());
    }

    #[test]
    fn an_undocumented_status_or_route_fails() {
        let error = json!({"error": "internal", "message": "internal error"});
        let refused = check("GET", "/api/v1/users", 500, &error).unwrap_err();
        assert!(refused.contains("does not document"), "{refused}");
        assert!(check("GET", "/api/v1/secret-admin", 200, &json!({})).is_err());
        assert!(check("DELETE", "/api/v1/users/1", 204, &json!({"gone": true})).is_err());
        // A missing route answering the catch-all's 404 is as documented; pages are not the API.
        check(
            "GET",
            "/api/v1/nothing",
            404,
            &json!({"error": "not_found", "message": "no such endpoint"}),
        )
        .unwrap();
        check("GET", "/desktops", 200, &json!("<!doctype html>")).unwrap();
    }
}
