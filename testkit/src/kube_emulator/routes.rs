//! The HTTP surface of the emulator, shaped like the core/v1 API.

use std::sync::Mutex;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;
use serde_json::{Value, json};

use super::objects::{ApiFailure, Cluster, RESOURCES};
use super::portforward;

type State = web::Data<Mutex<Cluster>>;

/// Registers the routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v1/namespaces/{ns}/pods/{name}/portforward",
        web::get().to(portforward::handle),
    )
    .route("/api/v1/namespaces/{ns}/{resource}", web::get().to(list))
    .route("/api/v1/namespaces/{ns}/{resource}", web::post().to(create))
    .route(
        "/api/v1/namespaces/{ns}/{resource}/{name}",
        web::get().to(get),
    )
    .route(
        "/api/v1/namespaces/{ns}/{resource}/{name}",
        web::patch().to(apply),
    )
    .route(
        "/api/v1/namespaces/{ns}/{resource}/{name}",
        web::delete().to(delete),
    )
    .default_service(web::to(|| async {
        failure(ApiFailure {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
        })
    }));
}

fn failure(f: ApiFailure) -> HttpResponse {
    HttpResponse::build(StatusCode::from_u16(f.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR))
        .json(f.body())
}

fn respond(result: Result<Value, ApiFailure>, status: StatusCode) -> HttpResponse {
    match result {
        Ok(object) => HttpResponse::build(status).json(object),
        Err(f) => failure(f),
    }
}

fn known(resource: &str) -> Result<&'static str, ApiFailure> {
    RESOURCES
        .iter()
        .find(|(r, _)| *r == resource)
        .map(|(_, kind)| *kind)
        .ok_or_else(|| ApiFailure {
            code: 404,
            reason: "NotFound",
            message: "the server could not find the requested resource".into(),
        })
}

fn parse_body(body: &[u8]) -> Result<Value, ApiFailure> {
    serde_json::from_slice(body).map_err(|e| ApiFailure {
        code: 400,
        reason: "BadRequest",
        message: format!("the body of the request was in an unknown format: {e}"),
    })
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(rename = "labelSelector")]
    label_selector: Option<String>,
}

async fn list(
    state: State,
    path: web::Path<(String, String)>,
    query: web::Query<ListQuery>,
) -> HttpResponse {
    let (ns, resource) = path.into_inner();
    let kind = match known(&resource) {
        Ok(kind) => kind,
        Err(f) => return failure(f),
    };
    let selector: Vec<(String, String)> = query
        .label_selector
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_owned(), v.trim_start_matches('=').to_owned()))
        })
        .collect();
    let mut cluster = state.lock().unwrap_or_else(|e| e.into_inner());
    let items = cluster.list(&resource, &ns, &selector);
    HttpResponse::Ok().json(json!({
        "apiVersion": "v1",
        "kind": format!("{kind}List"),
        "metadata": {"resourceVersion": "1"},
        "items": items,
    }))
}

/// Runs `op` on the named object of a known resource.
fn on_object(
    state: State,
    path: web::Path<(String, String, String)>,
    op: fn(&mut Cluster, &str, &str, &str) -> Result<Value, ApiFailure>,
) -> HttpResponse {
    let (ns, resource, name) = path.into_inner();
    if let Err(f) = known(&resource) {
        return failure(f);
    }
    let result = op(
        &mut state.lock().unwrap_or_else(|e| e.into_inner()),
        &resource,
        &ns,
        &name,
    );
    respond(result, StatusCode::OK)
}

async fn get(state: State, path: web::Path<(String, String, String)>) -> HttpResponse {
    on_object(state, path, Cluster::get)
}

async fn create(state: State, path: web::Path<(String, String)>, body: web::Bytes) -> HttpResponse {
    let (ns, resource) = path.into_inner();
    let result = known(&resource)
        .and_then(|_| parse_body(&body))
        .and_then(|object| {
            state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .create(&resource, &ns, object)
        });
    respond(result, StatusCode::CREATED)
}

#[derive(Deserialize)]
struct PatchQuery {
    #[serde(rename = "fieldManager")]
    field_manager: Option<String>,
}

async fn apply(
    state: State,
    req: HttpRequest,
    path: web::Path<(String, String, String)>,
    query: web::Query<PatchQuery>,
    body: web::Bytes,
) -> HttpResponse {
    let (ns, resource, name) = path.into_inner();
    if let Err(f) = known(&resource) {
        return failure(f);
    }
    let content_type = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type != "application/apply-patch+yaml" {
        return failure(ApiFailure {
            code: 415,
            reason: "UnsupportedMediaType",
            message: format!("the emulator supports server-side apply only, not {content_type:?}"),
        });
    }
    let Some(manager) = query.into_inner().field_manager else {
        return failure(ApiFailure {
            code: 422,
            reason: "Invalid",
            message: "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch".into(),
        });
    };
    let result = parse_body(&body).and_then(|object| {
        state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .apply(&resource, &ns, &name, object, &manager)
    });
    respond(result, StatusCode::OK)
}

async fn delete(state: State, path: web::Path<(String, String, String)>) -> HttpResponse {
    on_object(state, path, Cluster::delete)
}
