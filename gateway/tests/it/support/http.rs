//! A small HTTP/1.1 client for the `/v1` API tests: one request per
//! connection (`connection: close`, the response read to EOF; chunked
//! bodies are decoded), and [`Api`], which sends an API key with each
//! request.

use std::net::SocketAddr;

use base64::Engine;
use serde_json::Value;
use tokenim_protocol::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{ADMIN_KEY_ID, ADMIN_SECRET, TestGateway};

/// How long one request may take (an import upload is a few megabytes).
const REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// An HTTP response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// Header names in lowercase, in the order received.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (lossy).
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics with the body when it is not.
    #[track_caller]
    pub(crate) fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "HTTP {} body is not JSON ({e}): {}",
                self.status,
                self.text()
            )
        })
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    pub(crate) fn expect(&self, status: u16) -> Value {
        assert_eq!(self.status, status, "{}", self.text());
        if self.body.is_empty() {
            Value::Null
        } else {
            self.json()
        }
    }

    /// Asserts an error response: `status`, and a body that is exactly
    /// `{"code","name","message"}` with `code`. Returns the message.
    #[track_caller]
    pub(crate) fn expect_error(&self, status: u16, code: ErrorCode) -> String {
        let body = self.expect(status);
        let object = body.as_object().expect("an error body is an object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["code", "message", "name"], "{body}");
        assert_eq!(body["code"], code.code(), "{body}");
        assert_eq!(body["name"], code.name(), "{body}");
        body["message"].as_str().unwrap().to_owned()
    }
}

/// Sends one request over a fresh connection and reads the whole
/// response. The body is written while the response is read, so a server
/// that answers before reading everything does not deadlock the test.
pub(crate) async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    request_from(None, addr, method, path, headers, body).await
}

/// [`request`] from the local address `source` (e.g. `127.0.0.2`: another
/// client, as far as the gateway can tell).
pub(crate) async fn request_from(
    source: Option<std::net::IpAddr>,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Response {
    let stream = match source {
        None => TcpStream::connect(addr).await.expect("connects"),
        Some(ip) => {
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind(SocketAddr::new(ip, 0)).unwrap();
            socket.connect(addr).await.expect("connects")
        }
    };
    let (mut reader, mut writer) = stream.into_split();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let write = async {
        // The server may close early (e.g. a refusal before the body is
        // read): the response says what happened.
        if writer.write_all(head.as_bytes()).await.is_ok() {
            let _ = writer.write_all(body).await;
        }
        writer
    };
    let read = async {
        let mut raw = Vec::new();
        reader.read_to_end(&mut raw).await.map(|_| raw)
    };
    let (_writer, raw) = tokio::time::timeout(REQUEST_TIMEOUT, async { tokio::join!(write, read) })
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no response in time"));
    parse_response(&raw.expect("response read"))
}

/// Parses a whole response (head and body, as read to EOF).
pub(crate) fn parse_response(raw: &[u8]) -> Response {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = std::str::from_utf8(&raw[..end]).expect("ASCII head");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[end + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok());
    let body = if chunked {
        dechunk(rest)
    } else if let Some(n) = length {
        assert!(
            rest.len() >= n,
            "body cut short: {} of {n} bytes",
            rest.len()
        );
        rest[..n].to_vec()
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

/// Decodes a chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size_text = std::str::from_utf8(&rest[..line_end]).expect("chunk size");
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).expect("hex chunk size");
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// The `Authorization` value for a key: `Basic base64(id:secret)`.
pub(crate) fn basic(id: &str, secret: &str) -> String {
    let pair = format!("{id}:{secret}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// The `/v1` API of one gateway, called with one set of credentials.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    pub(crate) addr: SocketAddr,
    /// The `Authorization` header's value; `None` sends none.
    authorization: Option<String>,
    /// The local address requests come from (`None`: the kernel's choice).
    source: Option<std::net::IpAddr>,
}

impl Api {
    /// The API of `gw`, as the bootstrap admin key (every scope).
    pub(crate) fn new(gw: &TestGateway) -> Self {
        Self {
            addr: gw.addr,
            authorization: Some(basic(ADMIN_KEY_ID, ADMIN_SECRET)),
            source: None,
        }
    }

    /// The same API at another address (e.g. the internal listener).
    pub(crate) fn at(&self, addr: SocketAddr) -> Self {
        Self {
            addr,
            ..self.clone()
        }
    }

    /// The same API, called from the local address `ip`.
    pub(crate) fn from(&self, ip: &str) -> Self {
        Self {
            source: Some(ip.parse().unwrap()),
            ..self.clone()
        }
    }

    /// The same gateway as key `id` with `secret` (Basic).
    pub(crate) fn with_key(&self, id: &str, secret: &str) -> Self {
        self.with_authorization(Some(basic(id, secret)))
    }

    /// The same gateway with any `Authorization` value (or none).
    pub(crate) fn with_authorization(&self, value: Option<String>) -> Self {
        Self {
            authorization: value,
            ..self.clone()
        }
    }

    /// Any request: `content_type` and `extra` headers are added.
    pub(crate) async fn send_with(
        &self,
        method: &str,
        path: &str,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        let mut headers: Vec<(&str, &str)> = extra.to_vec();
        if let Some(auth) = &self.authorization {
            headers.push(("authorization", auth.as_str()));
        }
        request_from(self.source, self.addr, method, path, &headers, body).await
    }

    /// A request with a body of `content_type`.
    pub(crate) async fn send(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: &[u8],
    ) -> Response {
        self.send_with(method, path, &[("content-type", content_type)], body)
            .await
    }

    pub(crate) async fn get(&self, path: &str) -> Response {
        self.send_with("GET", path, &[], b"").await
    }

    pub(crate) async fn delete(&self, path: &str) -> Response {
        self.send_with("DELETE", path, &[], b"").await
    }

    /// A POST without a body.
    pub(crate) async fn post(&self, path: &str) -> Response {
        self.send_with("POST", path, &[], b"").await
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Response {
        self.send(
            "POST",
            path,
            "application/json",
            body.to_string().as_bytes(),
        )
        .await
    }

    /// A `PATCH` with a JSON merge patch.
    pub(crate) async fn patch_json(&self, path: &str, body: &Value) -> Response {
        let body = body.to_string();
        self.send(
            "PATCH",
            path,
            "application/merge-patch+json",
            body.as_bytes(),
        )
        .await
    }

    pub(crate) async fn put_json(&self, path: &str, body: &Value) -> Response {
        self.send("PUT", path, "application/json", body.to_string().as_bytes())
            .await
    }
}
