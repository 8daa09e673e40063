//! Import jobs: a 100,000-user CSV and a JSON-lines file of groups run in
//! the background with readable progress and failures, and a node refuses
//! jobs beyond `api.max_jobs`.

use std::time::Duration;

use serde_json::{Value, json};
use tokenim_protocol::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{create_key, create_users, ids};
use crate::support::TestGateway;
use crate::support::http::{Api, Response, basic, parse_response};
use crate::support::{ADMIN_KEY_ID, ADMIN_SECRET};

/// Rows in the big import.
const ROWS: usize = 100_000;

/// A CSV of [`ROWS`] users, ten of them invalid; returns it and the
/// invalid rows' indexes with their codes.
fn users_csv() -> (String, Vec<(u64, ErrorCode)>) {
    let mut csv = String::from("id,name,avatar_url\n");
    let mut invalid = Vec::new();
    for i in 0..ROWS {
        if i % 10_000 == 7 {
            if (i / 10_000) % 2 == 0 {
                csv.push_str(&format!("bad id {i},,\n"));
                invalid.push((i as u64, ErrorCode::InvalidUser));
            } else {
                csv.push_str(&format!("v{i:06},,ftp://x\n"));
                invalid.push((i as u64, ErrorCode::InvalidField));
            }
        } else {
            csv.push_str(&format!("u{i:06},User {i},\n"));
        }
    }
    (csv, invalid)
}

/// Polls a job until it ends; returns its last state and every
/// `processed` value seen.
async fn wait_for_job(api: &Api, id: &str) -> (Value, Vec<u64>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    let mut seen = Vec::new();
    loop {
        let job = api.get(&format!("/v1/jobs/{id}")).await.expect(200);
        seen.push(job["processed"].as_u64().unwrap());
        if job["state"] == "done" || job["state"] == "failed" {
            return (job, seen);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "job never ended: {job}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// `(index, code)` of each item of a failures page.
fn failures(page: &Value) -> Vec<(u64, u64)> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            assert_eq!(f["status"], "error", "{f}");
            (
                f["index"].as_u64().unwrap(),
                f["error"]["code"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_100k_user_csv_import_runs_in_the_background_with_progress_and_failures() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let (csv, invalid) = users_csv();
    let accepted = api
        .send("POST", "/v1/jobs/import/users", "text/csv", csv.as_bytes())
        .await
        .expect(202);
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("job_"), "{accepted}");
    assert_eq!(accepted["kind"], "users");
    assert_eq!(accepted["state"], "queued");
    assert_eq!(accepted["bytes"], csv.len());
    assert_eq!(accepted["processed"], 0);

    let (job, seen) = wait_for_job(&api, &id).await;
    // Progress only grows, and is visible while the job runs (it is
    // recorded after each batch of `api.max_batch_items`).
    assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
    assert!(
        seen.iter().any(|&p| p > 0 && p < ROWS as u64),
        "no progress seen between 0 and {ROWS}: {seen:?}"
    );
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        (
            &job["processed"],
            &job["created"],
            &job["exists"],
            &job["updated"],
            &job["failed"]
        ),
        (
            &json!(ROWS),
            &json!(ROWS - 10),
            &json!(0),
            &json!(0),
            &json!(10)
        )
    );
    assert!(job["finished_at"].as_u64().unwrap() >= job["created_at"].as_u64().unwrap());
    assert!(job.get("error").is_none(), "{job}");

    let expected: Vec<(u64, u64)> = invalid
        .iter()
        .map(|(i, code)| (*i, u64::from(code.code())))
        .collect();
    let page = api
        .get(&format!("/v1/jobs/{id}/failures"))
        .await
        .expect(200);
    assert_eq!(failures(&page), expected);
    assert_eq!(page["items"][0]["id"], "bad id 7");
    assert_eq!(page["items"][1]["id"], "v010007");
    assert!(page.get("next").is_none(), "{page}");
    let mut walked = Vec::new();
    let mut path = format!("/v1/jobs/{id}/failures?limit=4");
    loop {
        let page = api.get(&path).await.expect(200);
        walked.extend(failures(&page));
        match page["next"].as_str() {
            Some(next) => path = format!("/v1/jobs/{id}/failures?limit=4&after={next}"),
            None => break,
        }
    }
    assert_eq!(walked, expected);

    let user = api.get("/v1/users/u050000").await.expect(200);
    assert_eq!(user["name"], "User 50000");
    let found = api
        .get("/v1/users?ids=u000000,u099999,v010007,u000007")
        .await
        .expect(200);
    assert_eq!(ids(&found), ["u000000", "u099999"]);
    assert_eq!(found["missing"], json!(["v010007", "u000007"]));

    api.get("/v1/jobs/job_nope")
        .await
        .expect_error(404, ErrorCode::NotFound);
}

#[tokio::test]
async fn a_json_lines_import_of_groups_reports_each_line() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    create_users(&api, &["a", "b", "c"]).await;
    let lines = concat!(
        "{\"id\": \"g1\", \"owner\": \"a\", \"members\": [\"b\"]}\n",
        "\n",
        "{\"id\": \"g2\", \"members\": [\"zz\"]}\n",
        "{\"id\": \"bad id\"}\n",
        "not json\n",
        "{\"id\": \"g3\", \"name\": \"Three\", \"members\": [\"a\", \"b\", \"c\"]}\n",
        "{\"id\": \"g1\"}\n",
    );
    let accepted = api
        .send(
            "POST",
            "/v1/jobs/import/groups",
            "application/x-ndjson",
            lines.as_bytes(),
        )
        .await
        .expect(202);
    assert_eq!(accepted["kind"], "groups");
    let id = accepted["id"].as_str().unwrap();
    let (job, _) = wait_for_job(&api, id).await;
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(
        (
            &job["processed"],
            &job["created"],
            &job["exists"],
            &job["failed"]
        ),
        (&json!(6), &json!(2), &json!(1), &json!(3))
    );
    let page = api
        .get(&format!("/v1/jobs/{id}/failures"))
        .await
        .expect(200);
    let code = |c: ErrorCode| u64::from(c.code());
    assert_eq!(
        failures(&page),
        [
            (1, code(ErrorCode::UnknownMember)),
            (2, code(ErrorCode::InvalidGroup)),
            (3, code(ErrorCode::InvalidField)),
        ]
    );
    assert_eq!(
        ids(&api.get("/v1/groups/g1/members").await.expect(200)),
        ["a", "b"]
    );
    assert_eq!(
        ids(&api.get("/v1/groups/g3/members").await.expect(200)),
        ["a", "b", "c"]
    );
    api.get("/v1/groups/g2")
        .await
        .expect_error(404, ErrorCode::NotFound);

    // Reading a groups job needs groups:write.
    let (key, secret) = create_key(&api, "users only", &["users:write"]).await;
    api.with_key(&key, &secret)
        .get(&format!("/v1/jobs/{id}"))
        .await
        .expect_error(403, ErrorCode::MissingScope);
    api.send("POST", "/v1/jobs/import/groups", "application/json", b"[]")
        .await
        .expect_error(415, ErrorCode::InvalidBody);
}

#[tokio::test]
async fn an_import_over_max_import_bytes_is_refused_and_frees_its_slot() {
    let gw = TestGateway::with(|c| {
        c.api.max_import_bytes = 100;
        c.api.max_jobs = 1;
    })
    .await;
    let api = Api::new(&gw);
    let csv: String = std::iter::once("id\n".to_owned())
        .chain((0..50).map(|i| format!("big{i}\n")))
        .collect();
    let message = api
        .send("POST", "/v1/jobs/import/users", "text/csv", csv.as_bytes())
        .await
        .expect_error(413, ErrorCode::BodyTooLarge);
    assert!(message.contains("100 bytes"), "{message}");
    api.get("/v1/users/big0")
        .await
        .expect_error(404, ErrorCode::NotFound);
    let accepted = api
        .send("POST", "/v1/jobs/import/users", "text/csv", b"id\nsmall\n")
        .await
        .expect(202);
    let (job, _) = wait_for_job(&api, accepted["id"].as_str().unwrap()).await;
    assert_eq!(job["created"], 1, "{job}");
}

/// An import whose body is sent in two parts: the head and `first` now,
/// the rest when asked.
struct Upload {
    stream: TcpStream,
    rest: &'static [u8],
}

impl Upload {
    async fn start(gw: &TestGateway, body: &'static [u8], split: usize) -> Self {
        let mut stream = TcpStream::connect(gw.addr).await.unwrap();
        let head = format!(
            "POST /v1/jobs/import/users HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\
             authorization: {}\r\ncontent-type: text/csv\r\ncontent-length: {}\r\n\r\n",
            gw.addr,
            basic(ADMIN_KEY_ID, ADMIN_SECRET),
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..split]).await.unwrap();
        Self {
            stream,
            rest: &body[split..],
        }
    }

    /// The response, read to EOF.
    async fn response(&mut self) -> Response {
        let mut raw = Vec::new();
        self.stream.read_to_end(&mut raw).await.unwrap();
        parse_response(&raw)
    }

    /// Sends the rest of the body and reads the response.
    async fn finish(mut self) -> Response {
        self.stream.write_all(self.rest).await.unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.response())
            .await
            .expect("response in time")
    }
}

#[tokio::test]
async fn a_node_refuses_imports_beyond_max_jobs() {
    let gw = TestGateway::with(|c| c.api.max_jobs = 1).await;
    let api = Api::new(&gw);
    let body: &'static [u8] = b"id\nx1\nx2\n";
    // Two uploads that hold their slot until their bodies are complete:
    // whichever takes the one slot first, the other is refused at once.
    let mut first = Upload::start(&gw, body, 3).await;
    let mut second = Upload::start(&gw, body, 3).await;
    let (refused, first_won) = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            r = first.response() => (r, false),
            r = second.response() => (r, true),
        }
    })
    .await
    .expect("one upload is refused");
    let winner = if first_won { first } else { second };
    let message = refused.expect_error(429, ErrorCode::TooManyJobs);
    assert!(message.contains("1 import jobs"), "{message}");
    assert_eq!(
        refused.header("retry-after"),
        Some("1"),
        "a 429 says when to retry"
    );

    let accepted = winner.finish().await.expect(202);
    let (job, _) = wait_for_job(&api, accepted["id"].as_str().unwrap()).await;
    assert_eq!(job["created"], 2, "{job}");
    // The slot is free again once the job has ended.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let r = api
            .send("POST", "/v1/jobs/import/users", "text/csv", b"id\nx3\n")
            .await;
        if r.status == 202 {
            break;
        }
        r.expect_error(429, ErrorCode::TooManyJobs);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot stays taken"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_job_whose_node_stopped_is_reported_failed() {
    use tokenim_gateway::store::jobs::{Job, JobKind, JobState};
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let long_ago = tokenim_gateway::unix_millis() - 2 * 60_000;
    let orphan = Job {
        id: "job_orphan".into(),
        kind: JobKind::Users,
        mode: Default::default(),
        state: JobState::Running,
        bytes: 10,
        processed: 5,
        created: 5,
        exists: 0,
        updated: 0,
        failed: 0,
        created_at: long_ago,
        updated_at: long_ago,
        finished_at: None,
        error: None,
    };
    gw.state.store.put_job(&orphan).await.unwrap();
    let job = api.get("/v1/jobs/job_orphan").await.expect(200);
    assert_eq!(job["state"], "failed");
    assert_eq!(job["processed"], 5);
    assert!(
        job["error"]["message"]
            .as_str()
            .unwrap()
            .contains("stopped")
    );
    // The verdict is stored: every node answers the same.
    let stored = gw.state.store.job("job_orphan").await.unwrap().unwrap();
    assert_eq!(stored.state, JobState::Failed);

    // A job that reported recently is left alone.
    let fresh = Job {
        id: "job_fresh".into(),
        updated_at: tokenim_gateway::unix_millis(),
        ..orphan
    };
    gw.state.store.put_job(&fresh).await.unwrap();
    let job = api.get("/v1/jobs/job_fresh").await.expect(200);
    assert_eq!(job["state"], "running");
}

#[tokio::test]
async fn a_stray_quote_fails_the_import_at_its_line_and_nothing_after_it_is_claimed() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut csv = String::from("id,name\n");
    for i in 0..10_000 {
        if i == 100 {
            csv.push_str(&format!("sq-{i},\"Broken\n"));
        } else {
            csv.push_str(&format!("sq-{i},User {i}\n"));
        }
    }
    let accepted = api
        .send("POST", "/v1/jobs/import/users", "text/csv", csv.as_bytes())
        .await
        .expect(202);
    let (job, _) = wait_for_job(&api, accepted["id"].as_str().unwrap()).await;
    assert_eq!(job["state"], "failed", "{job}");
    let message = job["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("line 102") && message.contains("never closed"),
        "{job}"
    );
    assert_eq!(job["error"]["name"], "invalid_body", "{job}");
    // The 100 rows before it are stored and counted, nothing else claimed.
    assert_eq!(
        (&job["processed"], &job["created"]),
        (&json!(100), &json!(100)),
        "{job}"
    );
    api.get("/v1/users/sq-99").await.expect(200);
    for absent in ["sq-100", "sq-101", "sq-9999"] {
        api.get(&format!("/v1/users/{absent}"))
            .await
            .expect_error(404, ErrorCode::NotFound);
    }
}

#[tokio::test]
async fn jobs_are_listed_by_state_and_kind_for_the_scopes_a_key_holds() {
    let gw = TestGateway::spawn().await;
    let api = Api::new(&gw);
    let mut ids = Vec::new();
    for body in [&b"id\nl1\n"[..], b"id\nl2\n"] {
        let job = api
            .send("POST", "/v1/jobs/import/users", "text/csv", body)
            .await
            .expect(202);
        let id = job["id"].as_str().unwrap().to_owned();
        wait_for_job(&api, &id).await;
        ids.push(id);
    }
    ids.sort();
    let listed = |q: &'static str, api: Api| async move {
        let page = api.get(&format!("/v1/jobs{q}")).await.expect(200);
        let mut ids: Vec<String> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        (ids, page["next"].as_str().map(str::to_owned))
    };
    assert_eq!(listed("", api.clone()).await.0, ids);
    assert_eq!(listed("?state=done&kind=users", api.clone()).await.0, ids);
    assert!(listed("?state=running", api.clone()).await.0.is_empty());
    assert!(listed("?kind=groups", api.clone()).await.0.is_empty());
    // Pages of one, by id.
    let (first, next) = listed("?limit=1", api.clone()).await;
    assert_eq!(first, [ids[0].clone()]);
    let page = api
        .get(&format!("/v1/jobs?limit=1&after={}", next.unwrap()))
        .await
        .expect(200);
    assert_eq!(page["items"][0]["id"], ids[1].as_str());
    // A key sees only the kinds its scopes allow.
    let (id, secret) = super::create_key(&api, "groups", &["groups:write"]).await;
    assert!(listed("", api.with_key(&id, &secret)).await.0.is_empty());
    let (id, secret) = super::create_key(&api, "reader", &["users:read"]).await;
    api.with_key(&id, &secret)
        .get("/v1/jobs")
        .await
        .expect_error(403, ErrorCode::MissingScope);
    api.with_key(&id, &secret)
        .get(&format!("/v1/jobs/{}", ids[0]))
        .await
        .expect_error(403, ErrorCode::MissingScope);
    // `jobs:read` sees every job without being able to start one.
    let (id, secret) = super::create_key(&api, "monitor", &["jobs:read"]).await;
    let monitor = api.with_key(&id, &secret);
    assert_eq!(listed("", monitor.clone()).await.0, ids);
    monitor
        .get(&format!("/v1/jobs/{}", ids[0]))
        .await
        .expect(200);
    monitor
        .get(&format!("/v1/jobs/{}/failures", ids[0]))
        .await
        .expect(200);
    monitor
        .send(
            "POST",
            "/v1/jobs/import/users",
            "text/csv",
            b"id
x
",
        )
        .await
        .expect_error(403, ErrorCode::MissingScope);
    api.get("/v1/jobs?state=bogus")
        .await
        .expect_error(400, ErrorCode::BadRequest);
}
