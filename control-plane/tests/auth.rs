//! Login, tokens, users and roles against the real server and database.

use streamspace_testkit::control_plane as common;

use serde_json::json;

#[actix_web::test]
async fn login_succeeds_with_the_right_password_and_me_names_the_user() {
    let server = common::start(&[]).await;
    let (status, body) = server.get("/api/v1/auth/me", &server.admin).await;
    assert_eq!(status, 200);
    assert_eq!(body["username"], "admin");
    assert_eq!(body["role"], "admin");
}

#[actix_web::test]
async fn login_fails_the_same_way_for_a_wrong_password_and_an_unknown_user() {
    let server = common::start(&[]).await;
    for (username, password) in [("admin", "wrong-password"), ("nobody", "whatever-password")] {
        let (status, body) = server
            .call(
                "POST",
                "/api/v1/auth/login",
                None,
                Some(json!({"username": username, "password": password})),
            )
            .await;
        assert_eq!(status, 401);
        // The same but for the request's own id.
        let mut body = body;
        assert!(body["request_id"].is_string());
        body.as_object_mut().unwrap().remove("request_id");
        assert_eq!(
            body,
            json!({"error": "unauthorized", "message": "invalid username or password"})
        );
    }
    // Written in the background, so in either order.
    let mut failed: Vec<String> = server
        .audit("login_failed", 2)
        .await
        .iter()
        .map(|e| e["details"]["username"].as_str().unwrap().to_owned())
        .collect();
    failed.sort();
    assert_eq!(failed, ["admin", "nobody"]);
}

#[actix_web::test]
async fn requests_without_or_with_bad_tokens_are_401_with_a_json_body() {
    let server = common::start(&[]).await;
    let (status, body) = server.call("GET", "/api/v1/sessions", None, None).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "unauthorized");
    let (status, body) = server.get("/api/v1/sessions", "garbage").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (401, Some("invalid token"))
    );
}

#[actix_web::test]
async fn malformed_bodies_and_unknown_routes_get_json_errors() {
    let server = common::start(&[]).await;
    let (status, body) = server
        .post("/api/v1/users", &server.admin, json!({"username": 7}))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("request body:"),
        "{body}"
    );
    let (status, body) = server.get("/api/v1/nothing-here", &server.admin).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
}

#[actix_web::test]
async fn users_are_admin_managed_and_disabling_one_ends_their_access() {
    let server = common::start(&[]).await;
    let alice = server.user("alice").await;

    let (status, body) = server
        .post(
            "/api/v1/users",
            &alice,
            json!({"username": "eve", "password": "12345678"}),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));

    let (status, body) = server
        .post(
            "/api/v1/users",
            &server.admin,
            json!({"username": "alice", "password": "another-password"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (409, Some("user \"alice\" already exists"))
    );

    let (status, body) = server
        .post(
            "/api/v1/users",
            &server.admin,
            json!({"username": "Bad Name", "password": "12345678"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = server
        .post(
            "/api/v1/users",
            &server.admin,
            json!({"username": "bob", "password": "short"}),
        )
        .await;
    assert_eq!(status, 400);

    let (_, list) = server.get("/api/v1/users", &server.admin).await;
    let alice_id = list["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .unwrap();
    assert!(
        list["users"][0].get("password_hash").is_none(),
        "hashes never leave the server"
    );

    // Known to the server (its cache of recent callers holds her)…
    let (status, _) = server.get("/api/v1/auth/me", &alice).await;
    assert_eq!(status, 200);
    let (status, body) = server
        .call(
            "PATCH",
            &format!("/api/v1/users/{alice_id}"),
            Some(&server.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!((status, body["disabled"].as_bool()), (200, Some(true)));
    // …and refused all the same.
    let (status, _) = server.get("/api/v1/auth/me", &alice).await;
    assert_eq!(status, 401, "a disabled user's token stops working at once");
    let (status, body) = server
        .call(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(json!({"username": "alice", "password": "alice-password"})),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("this account is disabled"))
    );
}

#[actix_web::test]
async fn an_admin_cannot_lock_themselves_out() {
    let server = common::start(&[]).await;
    let (_, me) = server.get("/api/v1/auth/me", &server.admin).await;
    let (status, _) = server
        .call(
            "PATCH",
            &format!("/api/v1/users/{}", me["id"].as_str().unwrap()),
            Some(&server.admin),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(status, 409);
}

#[actix_web::test]
async fn templates_are_listed_to_everyone_and_changed_by_admins_only() {
    let server = common::start(&[]).await;
    let alice = server.user("alice").await;
    server.template("xterm").await;
    let (status, body) = server.get("/api/v1/templates", &alice).await;
    assert_eq!(status, 200);
    assert_eq!(body["templates"][0]["name"], "xterm");
    assert_eq!(body["templates"][0]["vnc_port"], 5900);
    let (status, _) = server.delete("/api/v1/templates/xterm", &alice).await;
    assert_eq!(status, 403);
    let (status, body) = server
        .post(
            "/api/v1/templates",
            &server.admin,
            json!({"name": "x", "image": "i", "default_resources": {"cpu": "lots"}}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("cpu: \"lots\" is not a CPU quantity like 2, 0.5 or 1500m")
        )
    );
    let (status, _) = server
        .call(
            "PUT",
            "/api/v1/templates/xterm",
            Some(&server.admin),
            Some(json!({"name": "xterm", "image": "xterm -fg green"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = server.get("/api/v1/templates/xterm", &alice).await;
    assert_eq!(body["image"], "xterm -fg green");
    assert_eq!(
        server
            .delete("/api/v1/templates/xterm", &server.admin)
            .await
            .0,
        204
    );
    assert_eq!(server.get("/api/v1/templates/xterm", &alice).await.0, 404);
}

#[actix_web::test]
async fn changing_a_password_ends_the_login_tokens_issued_before() {
    let server = common::start(&[]).await;
    let before = server.user("carol").await;
    let (_, me) = server.get("/api/v1/auth/me", &before).await;
    let carol_id = me["id"].as_str().unwrap().to_owned();
    let (status, body) = server
        .call(
            "PATCH",
            &format!("/api/v1/users/{carol_id}"),
            Some(&server.admin),
            Some(json!({"password": "a-brand-new-password"})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.get("/api/v1/auth/me", &before).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            401,
            Some("the password changed since this token was issued; log in again")
        )
    );
    let after = server.login("carol", "a-brand-new-password").await;
    let (status, _) = server.get("/api/v1/auth/me", &after).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn a_user_name_that_keeps_failing_is_told_to_wait_before_any_password_is_checked() {
    let server = common::start(&[]).await;
    server.user("dave").await;
    let attempt = |password: &'static str| {
        let base = server.base.clone();
        async move {
            let mut response = awc::Client::default()
                .post(format!("{base}/api/v1/auth/login"))
                .send_json(&json!({"username": "dave", "password": password}))
                .await
                .unwrap();
            let retry_after = response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap());
            let body: serde_json::Value = response.json().await.unwrap();
            (response.status().as_u16(), retry_after, body)
        }
    };
    for _ in 0..10 {
        assert_eq!(attempt("wrong-password").await.0, 401);
    }
    // Now even the right password waits: the name is being guessed at.
    let (status, retry_after, body) = attempt("dave-password").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (429, Some("too_many_requests"))
    );
    assert!(
        retry_after.is_some_and(|s| (1..=60).contains(&s)),
        "{retry_after:?}"
    );
    assert!(body["message"].as_str().unwrap().contains("try again in"));
    // Throttled attempts are not audited: the log holds the ten that were checked.
    let failed = server.audit("login_failed", 10).await;
    assert_eq!(failed.len(), 10);
}

#[actix_web::test]
async fn users_change_their_own_password_and_keep_working_with_the_new_token() {
    let server = common::start(&[]).await;
    let alice = server.user("alice").await;
    let change =
        |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    let (status, body) = server
        .post(
            "/api/v1/auth/password",
            &alice,
            change("wrong", "a-new-password"),
        )
        .await;
    assert_eq!((status, body["error"].as_str()), (403, Some("forbidden")));
    let (status, body) = server
        .post(
            "/api/v1/auth/password",
            &alice,
            change("alice-password", "short"),
        )
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
    // Within the second of the login, the old token ends all the same.
    let (status, body) = server
        .post(
            "/api/v1/auth/password",
            &alice,
            change("alice-password", "a-new-password"),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.get("/api/v1/auth/me", &alice).await.0,
        401,
        "the old token ended"
    );
    assert_eq!(server.get("/api/v1/auth/me", &fresh).await.0, 200);
    server.login("alice", "a-new-password").await;
    server.audit("password_change", 1).await;
}

#[actix_web::test]
async fn admins_delete_users_who_hold_nothing_on_any_agent() {
    let (server, _agent, _token) = common::start_with_agent(&[]).await;
    let alice = server.user("alice").await;
    let (_, me) = server.get("/api/v1/auth/me", &alice).await;
    let alice_id = me["id"].as_str().unwrap().to_owned();
    let (_, admin) = server.get("/api/v1/auth/me", &server.admin).await;
    let (status, _) = server
        .delete(
            &format!("/api/v1/users/{}", admin["id"].as_str().unwrap()),
            &server.admin,
        )
        .await;
    assert_eq!(status, 409, "not themselves");
    common::create_session(&server, &alice, "xterm").await;
    let path = format!("/api/v1/users/{alice_id}");
    let (status, body) = server.delete(&path, &server.admin).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("user_has_sessions"))
    );
    assert_eq!(server.delete(&path, &alice).await.0, 403);

    server.user("bob").await;
    let (_, users) = server.get("/api/v1/users", &server.admin).await;
    let bob = users["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "bob")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _) = server
        .delete(&format!("/api/v1/users/{bob}"), &server.admin)
        .await;
    assert_eq!(status, 204);
    let (_, users) = server.get("/api/v1/users", &server.admin).await;
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["username"] != "bob")
    );
    let (status, _) = server
        .post(
            "/api/v1/auth/login",
            "",
            json!({"username": "bob", "password": "bob-password"}),
        )
        .await;
    assert_eq!(status, 401);
    server.audit("user_delete", 1).await;
}

#[actix_web::test]
async fn users_and_templates_page_by_name_and_refuse_what_they_do_not_know() {
    let server = common::start(&[]).await;
    for name in ["carol", "alice", "bob"] {
        server.user(name).await;
    }
    for name in ["zeta", "alpha", "mid"] {
        server.template(name).await;
    }
    let walk = |list: &'static str, key: &'static str| {
        let server = &server;
        async move {
            let mut seen = Vec::new();
            let mut path = format!("/api/v1/{list}?limit=2");
            loop {
                let (status, page) = server.get(&path, &server.admin).await;
                assert_eq!(status, 200, "{page}");
                let items = page[list].as_array().unwrap();
                assert!(items.len() <= 2);
                seen.extend(items.iter().map(|i| i[key].as_str().unwrap().to_owned()));
                match page["next_after"].as_str() {
                    Some(after) => path = format!("/api/v1/{list}?limit=2&after={after}"),
                    None => return seen,
                }
            }
        }
    };
    assert_eq!(
        walk("users", "username").await,
        ["admin", "alice", "bob", "carol"]
    );
    assert_eq!(walk("templates", "name").await, ["alpha", "mid", "zeta"]);
    for bad in ["limit=0", "limit=501", "limit=x", "sort=name"] {
        for list in ["users", "templates"] {
            let (status, body) = server
                .get(&format!("/api/v1/{list}?{bad}"), &server.admin)
                .await;
            assert_eq!(status, 400, "{list}?{bad}: {body}");
        }
    }
}
