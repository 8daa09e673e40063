//! `POST /v1/users`: batches in JSON and CSV, a result per item in input
//! order, create and upsert modes, and whole-body refusals that store
//! nothing.

use serde_json::json;
use tokenim_protocol::ErrorCode;

use super::{define_roles, item, item_results};
use crate::support::TestGateway;
use crate::support::http::Api;

#[tokio::test]
async fn a_json_batch_reports_each_item_in_input_order() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    define_roles(&api, &["admin"]).await;
    let body = api
        .post_json(
            "/v1/users",
            &json!([
                {"id": "alice", "name": "Alice", "roles": ["admin"]},
                {"id": "bad id"},
                {"id": "alice", "name": "Second Alice"},
                {"id": "bob", "avatar_url": "ftp://x"},
                {"id": "carol", "metadata": {"team": "red"}, "avatar_url": "https://img/c.png"},
                42,
                {"id": "dave", "email": "dave@example.com"},
            ]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("alice"), "created", None),
            item(1, Some("bad id"), "error", Some(ErrorCode::InvalidUser)),
            item(2, Some("alice"), "error", Some(ErrorCode::DuplicateItem)),
            item(3, Some("bob"), "error", Some(ErrorCode::InvalidField)),
            item(4, Some("carol"), "created", None),
            item(5, None, "error", Some(ErrorCode::InvalidField)),
            item(6, Some("dave"), "error", Some(ErrorCode::InvalidField)),
        ]
    );
    assert_eq!(
        (
            &body["created"],
            &body["exists"],
            &body["updated"],
            &body["failed"]
        ),
        (&json!(2), &json!(0), &json!(0), &json!(5))
    );
    let error = &body["results"][3]["error"];
    assert_eq!(error["name"], "invalid_field");
    assert!(
        error["message"].as_str().unwrap().contains("avatar_url"),
        "{error}"
    );
    assert!(
        body["results"][6]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("email"),
        "{body}"
    );

    let alice = api.get("/v1/users/alice").await.expect(200);
    assert_eq!(alice["name"], "Alice");
    assert_eq!(alice["roles"], json!(["admin"]));
    let carol = api.get("/v1/users/carol").await.expect(200);
    assert_eq!(carol["metadata"], json!({"team": "red"}));
    assert_eq!(carol["avatar_url"], "https://img/c.png");
    for refused in ["bob", "dave"] {
        api.get(&format!("/v1/users/{refused}"))
            .await
            .expect_error(404, ErrorCode::NotFound);
    }
}

#[tokio::test]
async fn create_mode_leaves_existing_users_and_upsert_updates_them() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    api.post_json("/v1/users", &json!([{"id": "alice", "name": "Alice"}]))
        .await
        .expect(200);
    let stored = api.get("/v1/users/alice").await.expect(200);

    let body = api
        .post_json(
            "/v1/users",
            &json!([{"id": "alice", "name": "Changed"}, {"id": "erin"}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("alice"), "exists", None),
            item(1, Some("erin"), "created", None),
        ]
    );
    assert_eq!(api.get("/v1/users/alice").await.expect(200), stored);

    // A failing item of an upsert changes nothing of the stored user.
    let body = api
        .post_json(
            "/v1/users?mode=upsert",
            &json!([{"id": "alice", "name": "Nope", "avatar_url": "ftp://x"}]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [item(
            0,
            Some("alice"),
            "error",
            Some(ErrorCode::InvalidField)
        )]
    );
    assert_eq!(api.get("/v1/users/alice").await.expect(200), stored);

    let body = api
        .post_json(
            "/v1/users?mode=upsert",
            &json!([
                {"id": "alice", "name": "Alice B", "metadata": {"v": 2}},
                {"id": "erin"},
                {"id": "frank"},
            ]),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("alice"), "updated", None),
            item(1, Some("erin"), "exists", None),
            item(2, Some("frank"), "created", None),
        ]
    );
    assert_eq!(
        (&body["created"], &body["exists"], &body["updated"]),
        (&json!(1), &json!(1), &json!(1))
    );
    let updated = api.get("/v1/users/alice").await.expect(200);
    assert_eq!(updated["name"], "Alice B");
    assert_eq!(updated["metadata"], json!({"v": 2}));
    assert_eq!(updated["created_at"], stored["created_at"]);
    assert!(updated["updated_at"].as_u64() >= stored["updated_at"].as_u64());

    api.post_json("/v1/users?mode=replace", &json!([{"id": "x"}]))
        .await
        .expect_error(400, ErrorCode::BadRequest);
}

#[tokio::test]
async fn a_batch_over_the_limit_is_refused_whole_and_stores_nothing() {
    let gw = TestGateway::with(|c| c.api.max_batch_items = 5).await;
    let api = Api::new(&gw);
    let six: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
    let everyone = format!("/v1/users?ids={}", six.join(","));

    let json_body = json!(six.iter().map(|id| json!({"id": id})).collect::<Vec<_>>());
    let message = api
        .post_json("/v1/users", &json_body)
        .await
        .expect_error(413, ErrorCode::TooManyItems);
    assert!(message.contains("at most 5"), "{message}");
    let csv = format!("id\n{}\n", six.join("\n"));
    let message = api
        .send("POST", "/v1/users", "text/csv", csv.as_bytes())
        .await
        .expect_error(413, ErrorCode::TooManyItems);
    assert!(message.contains("at most 5"), "{message}");
    // Six ids are too many to ask for at once, too.
    let message = api
        .get(&everyone)
        .await
        .expect_error(413, ErrorCode::TooManyItems);
    assert!(message.contains("at most 5"), "{message}");
    let found = api
        .get(&format!("/v1/users?ids={}", six[..5].join(",")))
        .await
        .expect(200);
    assert_eq!(found["items"], json!([]));
    assert_eq!(found["missing"], json!(six[..5]));
    api.get("/v1/users/u5")
        .await
        .expect_error(404, ErrorCode::NotFound);

    // Exactly the limit is fine.
    let five = json!(
        six[..5]
            .iter()
            .map(|id| json!({"id": id}))
            .collect::<Vec<_>>()
    );
    let body = api.post_json("/v1/users", &five).await.expect(200);
    assert_eq!(body["created"], 5);
}

#[tokio::test]
async fn a_body_over_max_body_bytes_is_refused_and_stores_nothing() {
    let gw = TestGateway::with(|c| c.api.max_body_bytes = 64).await;
    let api = Api::new(&gw);
    let ids: Vec<String> = (0..10).map(|i| format!("user-{i}")).collect();
    let body = json!(ids.iter().map(|id| json!({"id": id})).collect::<Vec<_>>());
    assert!(body.to_string().len() > 64);
    let message = api
        .post_json("/v1/users", &body)
        .await
        .expect_error(413, ErrorCode::BodyTooLarge);
    assert!(message.contains("64 bytes"), "{message}");
    let found = api.get("/v1/users?ids=user-0,user-9").await.expect(200);
    assert_eq!(found["missing"], json!(["user-0", "user-9"]));
    api.post_json("/v1/users", &json!([{"id": "small"}]))
        .await
        .expect(200);
}

#[tokio::test]
async fn a_body_that_cannot_be_read_is_refused_and_stores_nothing() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let cases: [(&str, &[u8]); 4] = [
        ("application/json", br#"[{"id": "a"}, {"id": "b""#),
        ("application/json", br#"{"id": "a"}"#),
        ("application/json", br#"[{"id": "a"}] trailing"#),
        ("text/csv", b"id,email\na,a@example.com\n"),
    ];
    for (content_type, body) in cases {
        let message = api
            .send("POST", "/v1/users", content_type, body)
            .await
            .expect_error(400, ErrorCode::InvalidBody);
        assert!(!message.is_empty());
    }
    api.send("POST", "/v1/users", "text/plain", b"a\n")
        .await
        .expect_error(415, ErrorCode::InvalidBody);
    let found = api.get("/v1/users?ids=a,b").await.expect(200);
    assert_eq!(found["missing"], json!(["a", "b"]));
}

#[tokio::test]
async fn csv_with_bom_crlf_quoting_and_empty_lines() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    define_roles(&api, &["admin", "mod"]).await;
    let csv = "\u{feff}id,name,metadata,roles\r\n\
               alice,\"Smith, Alice\",,admin;mod\r\n\
               \r\n\
               bob,\"Bob \"\"the builder\"\"\",\"{\"\"k\"\": 1}\",\r\n\
               carol,,\"{\r\n\"\"a\"\": 1,\r\n\"\"b\"\": 2}\",\r\n\
               \r\n\
               dave,\"two\nlines\",,\r\n\
               erin,Erin,,\r\n";
    let body = api
        .send(
            "POST",
            "/v1/users",
            "text/csv; charset=utf-8",
            csv.as_bytes(),
        )
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("alice"), "created", None),
            item(1, Some("bob"), "created", None),
            item(2, Some("carol"), "created", None),
            item(3, Some("dave"), "error", Some(ErrorCode::InvalidField)),
            item(4, Some("erin"), "created", None),
        ]
    );
    let alice = api.get("/v1/users/alice").await.expect(200);
    assert_eq!(alice["name"], "Smith, Alice");
    assert_eq!(alice["roles"], json!(["admin", "mod"]));
    let bob = api.get("/v1/users/bob").await.expect(200);
    assert_eq!(bob["name"], "Bob \"the builder\"");
    assert_eq!(bob["metadata"], json!({"k": 1}));
    let carol = api.get("/v1/users/carol").await.expect(200);
    assert_eq!(carol["name"], "carol");
    assert_eq!(carol["metadata"], json!({"a": 1, "b": 2}));
    api.get("/v1/users/dave")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_csv_row_with_invalid_utf8_fails_alone() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let csv = b"id,name\nalice,Al\xffice\nbob,Bob\n";
    let body = api
        .send("POST", "/v1/users", "text/csv", csv)
        .await
        .expect(200);
    assert_eq!(
        item_results(&body),
        [
            item(0, Some("alice"), "error", Some(ErrorCode::InvalidField)),
            item(1, Some("bob"), "created", None),
        ]
    );
    let message = body["results"][0]["error"]["message"].as_str().unwrap();
    assert!(message.contains("UTF-8"), "{message}");
    api.get("/v1/users/alice")
        .await
        .expect_error(404, ErrorCode::NotFound);
    assert_eq!(api.get("/v1/users/bob").await.expect(200)["name"], "Bob");
}

#[tokio::test]
async fn a_csv_batch_with_an_unclosed_quote_is_refused_whole_and_stores_nothing() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let message = api
        .send(
            "POST",
            "/v1/users",
            "text/csv",
            b"id,name\nsb-1,A\nsb-2,\"B\nsb-3,C\n",
        )
        .await
        .expect_error(400, ErrorCode::InvalidBody);
    assert!(message.contains("line 3"), "{message}");
    for id in ["sb-1", "sb-2", "sb-3"] {
        api.get(&format!("/v1/users/{id}"))
            .await
            .expect_error(404, ErrorCode::NotFound);
    }
    // CRLF: the row's line is its physical line.
    let body = api
        .send(
            "POST",
            "/v1/users",
            "text/csv",
            b"id,name\r\nlc-1,A\r\n,B\r\n",
        )
        .await
        .expect(200);
    let message = body["results"][1]["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("row 1 (line 3)"), "{body}");
}

/// Defines each of `roles` (with no permissions).
#[tokio::test]
async fn a_user_given_a_role_that_does_not_exist_is_refused_with_its_name() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    define_roles(&api, &["teacher"]).await;
    let body = api
        .post_json(
            "/v1/users",
            &json!([
                {"id": "t1", "roles": ["teacher"]},
                {"id": "t2", "roles": ["teacher", "principal"]},
            ]),
        )
        .await
        .expect(200);
    assert_eq!(body["results"][0]["status"], "created", "{body}");
    assert_eq!(body["results"][1]["status"], "error", "{body}");
    let message = body["results"][1]["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("\"principal\" does not exist"),
        "{message}"
    );
    api.get("/v1/users/t2")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_merge_patch_changes_only_the_fields_given() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    define_roles(&api, &["teacher", "head"]).await;
    let alice = json!([{
        "id": "alice", "name": "Alice", "roles": ["teacher"],
        "avatar_url": "https://img/a.png", "metadata": {"a": 1, "b": 2}
    }]);
    api.post_json("/v1/users", &alice).await.expect(200);
    let patch = |body: serde_json::Value| {
        let api = api.clone();
        async move {
            api.send(
                "PATCH",
                "/v1/users/alice",
                "application/merge-patch+json",
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let user = patch(json!({"name": "Alice B", "metadata": {"b": null, "c": 3}}))
        .await
        .expect(200);
    assert_eq!(user["name"], "Alice B");
    assert_eq!(user["metadata"], json!({"a": 1, "c": 3}));
    assert_eq!(user["roles"], json!(["teacher"]), "untouched fields stay");
    assert_eq!(user["avatar_url"], "https://img/a.png");
    let user = patch(json!({"roles": ["teacher", "head"], "avatar_url": null}))
        .await
        .expect(200);
    assert_eq!(user["roles"], json!(["teacher", "head"]));
    assert!(user.get("avatar_url").is_none(), "{user}");

    // Refusals name the field and store nothing.
    for (body, status, code, names) in [
        (
            json!({"roles": ["principal"]}),
            404,
            ErrorCode::NotFound,
            "principal",
        ),
        (json!({"id": "bob"}), 400, ErrorCode::InvalidField, "id"),
        (
            json!({"email": "a@b"}),
            400,
            ErrorCode::InvalidField,
            "email",
        ),
        (
            json!({"avatar_url": "ftp://x"}),
            400,
            ErrorCode::InvalidField,
            "avatar_url",
        ),
        (json!(["name"]), 400, ErrorCode::InvalidBody, "object"),
    ] {
        let message = patch(body.clone()).await.expect_error(status, code);
        assert!(message.contains(names), "{body}: {message}");
    }
    let stored = api.get("/v1/users/alice").await.expect(200);
    assert_eq!(stored, user, "nothing refused was stored");
    api.send("PATCH", "/v1/users/ghost", "application/json", b"{}")
        .await
        .expect_error(404, ErrorCode::NotFound);

    // Audited with the fields changed and the roles before and after.
    let log = api
        .get("/v1/audit?action=user.updated&target=alice")
        .await
        .expect(200);
    let records = log["records"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{log}");
    assert_eq!(records[0]["detail"]["changed"], json!(["name", "metadata"]));
    assert_eq!(records[1]["detail"]["roles_before"], json!(["teacher"]));
    assert_eq!(records[1]["detail"]["roles"], json!(["teacher", "head"]));
}
