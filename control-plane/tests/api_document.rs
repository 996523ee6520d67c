//! The API as its document describes it, against the real server: the document served, methods
//! a path does not take, and input the document rules out. (Every response of every test is
//! also checked against the document by the test client.)

use serde_json::{Value, json};
use streamspace_control_plane::http::openapi::DOCUMENT;
use streamspace_testkit::control_plane as common;

#[actix_web::test]
async fn the_document_and_its_reference_page_are_served_from_this_server() {
    let static_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../static");
    let server = common::start(&[("STATIC_DIR", static_dir)]).await;
    let (status, served) = server.call("GET", "/api/v1/openapi.json", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(served, serde_json::from_str::<Value>(&DOCUMENT).unwrap());
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["info"]["version"], env!("CARGO_PKG_VERSION"));
    let operations: usize = served["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(operations, 49);
    // The reference page and its Swagger UI come from this server, not a CDN.
    let (status, page) = server.call("GET", "/api-docs", None, None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap();
    assert!(page.contains("/swagger-ui/swagger-ui-bundle.js"), "{page}");
    let (status, _) = server
        .call("GET", "/swagger-ui/swagger-ui-bundle.js", None, None)
        .await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_method_a_documented_path_does_not_take_is_a_405_naming_the_ones_it_does() {
    let server = common::start(&[]).await;
    let client = awc::Client::default();
    for (method, path, allow) in [
        ("PUT", "/api/v1/sessions", "GET, POST"),
        ("POST", "/api/v1/agents/a-1", "GET, DELETE"),
        // This reaches the route `…/credentials/{id}` (DELETE) in the router; the path names
        // the rotation, which takes POST only.
        ("DELETE", "/api/v1/agents/a-1/credentials/rotate", "POST"),
        ("TRACE", "/healthz", "GET"),
    ] {
        let mut response = client
            .request(method.parse().unwrap(), format!("{}{path}", server.base))
            .bearer_auth(&server.admin)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 405, "{method} {path}");
        let allowed = response.headers().get("allow").unwrap().to_str().unwrap();
        let mut allowed: Vec<&str> = allowed.split(", ").collect();
        let mut expected: Vec<&str> = allow.split(", ").collect();
        allowed.sort_unstable();
        expected.sort_unstable();
        assert_eq!(allowed, expected, "{method} {path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "method_not_allowed");
    }
    // Paths nobody documents stay 404.
    let (status, body) = server
        .post("/api/v1/nothing", &server.admin, json!({}))
        .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[actix_web::test]
async fn text_with_nul_is_refused_as_input_not_failed_on_as_a_database_error() {
    let server = common::start(&[]).await;
    let (status, body) = server
        .get("/api/v1/agents?after=a%00b&q=%00", &server.admin)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_text");
    let template = json!({
        "name": "nul", "image": "xterm", "env": {"GREETING": "hello\u{0}world"},
    });
    let (status, body) = server
        .post("/api/v1/templates", &server.admin, template)
        .await;
    assert_eq!(status, 400, "{body}");
    let user = json!({"username": "nul", "password": "long-enough\u{0}"});
    let (status, body) = server.post("/api/v1/users", &server.admin, user).await;
    assert_eq!(status, 400, "{body}");
    // Messages that quote the input show the character, not a NUL.
    let (status, body) = server.get("/api/v1/audit?x%00y=1", &server.admin).await;
    assert_eq!(status, 400);
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("x\u{FFFD}y") && !message.contains('\0'),
        "{message}"
    );
    // Nothing was stored, and the server goes on.
    let (status, body) = server.get("/api/v1/templates", &server.admin).await;
    assert_eq!(
        (status, body["templates"].as_array().unwrap().len()),
        (200, 0)
    );
}

#[actix_web::test]
async fn a_body_must_be_an_object_and_a_port_a_whole_number() {
    let server = common::start(&[]).await;
    let (status, body) = server
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!(["admin", common::ADMIN_PASSWORD])),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let nested = json!({"name": "a", "image": "xterm", "default_resources": ["1", "1Gi"]});
    let (status, body) = server
        .post("/api/v1/templates", &server.admin, nested)
        .await;
    assert_eq!(status, 400, "{body}");
    let unknown = json!({"name": "a", "image": "xterm", "default_resources": {"gpu": "1"}});
    let (status, body) = server
        .post("/api/v1/templates", &server.admin, unknown)
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("gpu"), "{body}");
    let fraction = json!({"name": "a", "image": "xterm", "vnc_port": 5900.5});
    let (status, _) = server
        .post("/api/v1/templates", &server.admin, fraction)
        .await;
    assert_eq!(status, 400);
    // JSON may write a whole number with a point.
    let whole = json!({"name": "a", "image": "xterm", "vnc_port": 5901.0});
    let (status, body) = server.post("/api/v1/templates", &server.admin, whole).await;
    assert_eq!(
        (status, body["vnc_port"].as_i64()),
        (201, Some(5901)),
        "{body}"
    );
}
