//! Checks `docs/PROTOCOL.md` against the code, so the spec cannot drift.
//!
//! * Every example (a ```` ```json client ```` or ```` ```json server ````
//!   block followed by a ```` ```msgpack ```` block of hex bytes) decodes in
//!   both codecs to the same frame, and re-encoding that frame gives exactly
//!   the documented JSON text and the documented bytes.
//! * Every command, every reply body, an error reply and every push kind
//!   (a message with and without `from`) has an example.
//! * The error-code and disconnect-code tables list exactly the codes of
//!   [`ErrorCode`] and [`DisconnectCode`], with their names, reasons and
//!   reconnect advice.
//!
//! When an example is wrong the failure message prints the example as the
//! code encodes it, in the document's layout, ready to paste.

use std::collections::BTreeSet;

use tokenim_protocol::reply::Outcome;
use tokenim_protocol::{
    ClientFrame, Codec, Command, DisconnectCode, ErrorBody, ErrorCode, Push, ReplyBody, ServerFrame,
};

const SPEC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/PROTOCOL.md"));

/// Which side sends an example frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

/// One example: a JSON block and the MessagePack block after it.
#[derive(Debug)]
struct Example {
    /// 1-based line of the opening ```` ```json ```` fence.
    line: usize,
    side: Side,
    json: String,
    msgpack: Vec<u8>,
}

/// Reads the fenced block that starts after line `open` (0-based); returns
/// its lines and the index of the closing fence.
fn block<'a>(lines: &[&'a str], open: usize) -> Result<(Vec<&'a str>, usize), String> {
    let body_start = open + 1;
    let close = lines[body_start..]
        .iter()
        .position(|l| l.trim_end() == "```")
        .map(|i| body_start + i)
        .ok_or_else(|| format!("line {}: fenced block is never closed", open + 1))?;
    Ok((lines[body_start..close].to_vec(), close))
}

fn parse_hex(lines: &[&str], line: usize) -> Result<Vec<u8>, String> {
    lines
        .iter()
        .flat_map(|l| l.split_whitespace())
        .map(|tok| {
            let ok = tok.len() == 2 && tok.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if ok {
                Ok(u8::from_str_radix(tok, 16).expect("checked hex"))
            } else {
                Err(format!(
                    "line {line}: {tok:?} is not a lowercase hex byte in a msgpack block"
                ))
            }
        })
        .collect()
}

/// Extracts every example of `doc`, refusing a malformed layout (a JSON
/// example without its MessagePack twin, a stray MessagePack block, an
/// unknown `json` tag) so that an example cannot be skipped silently.
fn examples(doc: &str) -> Result<Vec<Example>, String> {
    let lines: Vec<&str> = doc.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let fence = lines[i].trim_end();
        let Some(info) = fence.strip_prefix("```").filter(|s| !s.is_empty()) else {
            if fence == "```" {
                // An untagged block: skip its body.
                i = block(&lines, i)?.1 + 1;
            } else {
                i += 1;
            }
            continue;
        };
        let side = match info.split_whitespace().collect::<Vec<_>>().as_slice() {
            ["json", "client"] => Some(Side::Client),
            ["json", "server"] => Some(Side::Server),
            ["json"] => None,
            ["json", ..] => return Err(format!("line {}: unknown example tag {fence:?}", i + 1)),
            ["msgpack", ..] => {
                return Err(format!(
                    "line {}: msgpack block does not follow a json client/server block",
                    i + 1
                ));
            }
            _ => None,
        };
        let (body, close) = block(&lines, i)?;
        let Some(side) = side else {
            i = close + 1;
            continue;
        };
        let mut next = close + 1;
        while next < lines.len() && lines[next].trim().is_empty() {
            next += 1;
        }
        if lines.get(next).map(|l| l.trim_end()) != Some("```msgpack") {
            return Err(format!(
                "line {}: json example is not followed by a ```msgpack block",
                i + 1
            ));
        }
        let (hex, hex_close) = block(&lines, next)?;
        out.push(Example {
            line: i + 1,
            side,
            json: body.join("\n").trim().to_owned(),
            msgpack: parse_hex(&hex, next + 1)?,
        });
        i = hex_close + 1;
    }
    Ok(out)
}

/// The example as the code encodes `frame`, in the document's layout.
fn render<T: serde::Serialize>(side: Side, frame: &T) -> String {
    let json = Codec::Json.encode(frame).expect("encode json");
    let packed = Codec::MsgPack.encode(frame).expect("encode msgpack");
    let tag = match side {
        Side::Client => "client",
        Side::Server => "server",
    };
    let hex: Vec<String> = packed
        .chunks(16)
        .map(|c| {
            c.iter()
                .map(|b| format!("{b:02x}"))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    format!(
        "```json {tag}\n{}\n```\n```msgpack\n{}\n```",
        String::from_utf8_lossy(&json),
        hex.join("\n")
    )
}

/// Decodes one example both ways and re-encodes it; returns the frame's
/// kinds for the coverage check, or what is wrong.
fn check_one(ex: &Example) -> Result<Vec<&'static str>, String> {
    fn run<T: serde::Serialize + PartialEq + std::fmt::Debug>(
        ex: &Example,
        decode: impl Fn(Codec, &[u8]) -> Result<T, tokenim_protocol::DecodeError>,
    ) -> Result<T, String> {
        let at = format!("example at line {}", ex.line);
        let from_json = decode(Codec::Json, ex.json.as_bytes())
            .map_err(|e| format!("{at}: the JSON does not decode: {e}"))?;
        let from_msgpack = decode(Codec::MsgPack, &ex.msgpack)
            .map_err(|e| format!("{at}: the msgpack does not decode: {e}"))?;
        let expected = render(ex.side, &from_json);
        if from_json != from_msgpack {
            return Err(format!(
                "{at}: JSON and msgpack decode to different frames:\n  json:    {from_json:?}\n  msgpack: {from_msgpack:?}\nthe JSON one encodes as\n{expected}"
            ));
        }
        let json = Codec::Json.encode(&from_json).expect("encode json");
        let packed = Codec::MsgPack.encode(&from_json).expect("encode msgpack");
        if json.as_ref() != ex.json.as_bytes() || packed.as_ref() != ex.msgpack.as_slice() {
            return Err(format!(
                "{at}: re-encoding does not give the documented bytes; the code encodes it as\n{expected}"
            ));
        }
        Ok(from_json)
    }
    Ok(match ex.side {
        Side::Client => vec![command_kind(&run(ex, |c, b| c.decode_client(b))?)],
        Side::Server => server_kinds(&run(ex, |c, b| c.decode_server(b))?),
    })
}

/// Every kind of client frame that needs an example: the protocol's own
/// list of command types (a unit test of the crate checks that each names
/// a command, as [`Command::kind`] spells it).
const COMMAND_KINDS: &[&str] = &tokenim_protocol::command::COMMAND_TYPES;

/// Every kind of server frame that needs an example.
const SERVER_KINDS: &[&str] = &[
    "result connect",
    "result refresh",
    "result subscribe",
    "result unsubscribe",
    "result publish",
    "result send",
    "result ping",
    "result presence",
    "result history",
    "result ack",
    "error",
    "push message with from",
    "push message without from",
    "push join",
    "push leave",
    "push disconnect",
    "push gap",
];

fn command_kind(frame: &ClientFrame) -> &'static str {
    frame.command.kind()
}

fn server_kinds(frame: &ServerFrame) -> Vec<&'static str> {
    let kind = match frame {
        ServerFrame::Reply(reply) => match &reply.outcome {
            Outcome::Result(body) => match body {
                ReplyBody::Connect { .. } => "result connect",
                ReplyBody::Refresh { .. } => "result refresh",
                ReplyBody::Subscribe { .. } => "result subscribe",
                ReplyBody::Unsubscribe { .. } => "result unsubscribe",
                ReplyBody::Publish { .. } => "result publish",
                ReplyBody::Send { .. } => "result send",
                ReplyBody::Ping {} => "result ping",
                ReplyBody::Presence { .. } => "result presence",
                ReplyBody::History { .. } => "result history",
                ReplyBody::Ack { .. } => "result ack",
            },
            Outcome::Error(err) => {
                // A documented error must be self-consistent too.
                assert_eq!(err.name, err.code.name(), "error example {err:?}");
                "error"
            }
        },
        ServerFrame::Push(push) => match push {
            Push::Message(p) if p.from.is_some() => "push message with from",
            Push::Message(_) => "push message without from",
            Push::Join(_) => "push join",
            Push::Leave(_) => "push leave",
            Push::Disconnect(_) => "push disconnect",
            Push::Gap(_) => "push gap",
        },
    };
    vec![kind]
}

/// Checks every example of `doc`; returns the kinds covered and every
/// problem found.
fn check_doc(doc: &str) -> (BTreeSet<&'static str>, Vec<String>) {
    let examples = match examples(doc) {
        Ok(examples) => examples,
        Err(e) => return (BTreeSet::new(), vec![e]),
    };
    let mut covered = BTreeSet::new();
    let mut problems = Vec::new();
    for ex in &examples {
        match check_one(ex) {
            Ok(kinds) => covered.extend(kinds),
            Err(e) => problems.push(e),
        }
    }
    (covered, problems)
}

#[test]
fn every_example_decodes_and_reencodes_exactly_in_both_codecs() {
    let (_, problems) = check_doc(SPEC);
    assert!(
        problems.is_empty(),
        "docs/PROTOCOL.md has {} wrong example(s):\n\n{}",
        problems.len(),
        problems.join("\n\n")
    );
}

#[test]
fn every_frame_kind_has_an_example() {
    let (covered, _) = check_doc(SPEC);
    let missing: Vec<_> = COMMAND_KINDS
        .iter()
        .chain(SERVER_KINDS)
        .filter(|k| !covered.contains(*k))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/PROTOCOL.md has no (valid) example of: {missing:?}"
    );
}

#[test]
fn a_wrong_example_is_caught() {
    let good = "```json client\n{\"id\":7,\"type\":\"ping\"}\n```\n```msgpack\n82 a2 69 64 07 a4 74 79 70 65 a4 70 69 6e 67\n```\n";
    let (covered, problems) = check_doc(good);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(covered.contains("ping"));

    let bad_cases = [
        // Wrong byte (id 8 instead of 7).
        good.replace("64 07", "64 08"),
        // JSON not in the encoder's compact form.
        good.replace(r#"{"id":7,"type":"ping"}"#, r#"{"id": 7, "type": "ping"}"#),
        // Field order differs from the encoder's.
        good.replace(r#"{"id":7,"type":"ping"}"#, r#"{"type":"ping","id":7}"#),
        // A client frame tagged as a server frame.
        good.replace("json client", "json server"),
        // Uppercase hex.
        good.replace("a4 70 69 6e 67", "A4 70 69 6E 67"),
        // The msgpack twin is missing.
        good.replace("```msgpack", "```text"),
        // A typo in the tag would otherwise drop the example.
        good.replace("json client", "json clinet"),
    ];
    for bad in &bad_cases {
        let (_, problems) = check_doc(bad);
        assert!(!problems.is_empty(), "not caught:\n{bad}");
    }
}

/// Rows `| <code> | `<name>` | <cells>... |` of the tables in the section
/// whose `## ` heading starts with `heading`.
fn table_rows<'a>(doc: &'a str, heading: &str) -> Vec<(u16, &'a str, Vec<&'a str>)> {
    let mut in_section = false;
    let mut rows = Vec::new();
    for line in doc.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            in_section = h.starts_with(heading);
            continue;
        }
        if !in_section || !line.starts_with('|') {
            continue;
        }
        let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
        let (Some(code), Some(name)) = (cells.first(), cells.get(1)) else {
            continue;
        };
        if let (Ok(code), Some(name)) = (
            code.parse::<u16>(),
            name.strip_prefix('`').and_then(|n| n.strip_suffix('`')),
        ) {
            rows.push((code, name, cells[2..].to_vec()));
        }
    }
    rows
}

#[test]
fn error_code_table_matches_the_code() {
    let rows = table_rows(SPEC, "Error codes");
    let documented: Vec<(u16, &str)> = rows.iter().map(|(c, n, _)| (*c, *n)).collect();
    let actual: Vec<(u16, &str)> = ErrorCode::ALL
        .iter()
        .map(|c| (c.code(), c.name()))
        .collect();
    assert_eq!(documented, actual, "the Error codes table is out of date");
    for (code, name, rest) in &rows {
        assert!(
            rest.len() == 2 && rest.iter().all(|c| !c.is_empty()),
            "error {code} {name}: the row needs a meaning and what to do"
        );
    }
}

#[test]
fn disconnect_code_table_matches_the_code() {
    let rows = table_rows(SPEC, "Disconnect codes");
    let documented: Vec<(u16, &str, &str)> = rows
        .iter()
        .map(|(c, r, rest)| (*c, *r, rest.first().copied().unwrap_or("")))
        .collect();
    let actual: Vec<(u16, &str, &str)> = DisconnectCode::ALL
        .iter()
        .map(|c| {
            let reconnect = if c.reconnect() { "yes" } else { "no" };
            (c.code(), c.reason(), reconnect)
        })
        .collect();
    assert_eq!(
        documented, actual,
        "the Disconnect codes table is out of date"
    );
}

#[test]
fn plain_json_blocks_are_valid_and_error_bodies_consistent() {
    let lines: Vec<&str> = SPEC.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if line.trim_end() != "```json" {
            continue;
        }
        let (body, _) = block(&lines, i).unwrap();
        let text = body.join("\n");
        let value: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("line {}: invalid JSON: {e}", i + 1));
        if value.get("code").is_some() {
            let err: ErrorBody = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("line {}: not an error body: {e}", i + 1));
            assert_eq!(err.name, err.code.name(), "line {}", i + 1);
        }
    }
}

/// What "Frames and codecs" promises about decoding beyond the examples.
#[test]
fn documented_decoding_rules_hold() {
    let ping = ClientFrame {
        id: 1,
        command: Command::Ping {},
    };
    let json = |s: &str| Codec::Json.decode_client(s.as_bytes());
    // Any field order, whitespace, unknown fields.
    assert_eq!(
        json(" { \"type\" : \"ping\", \"extra\": [1, {}], \"id\": 1 } "),
        Ok(ping.clone())
    );
    // Optional fields may be null.
    let msg = Codec::Json
        .decode_server(
            br#"{"push":"message","channel":"a","seq":1,"from":null,"data":null,"time":2}"#,
        )
        .unwrap();
    assert!(matches!(msg, ServerFrame::Push(Push::Message(ref p)) if p.from.is_none()));
    // A field given twice, or text after the object, is an error.
    assert!(json(r#"{"id":1,"type":"ping","id":2}"#).is_err());
    assert!(json(r#"{"id":1,"type":"ping"} {}"#).is_err());
    // Undecodable frames map to the documented error codes.
    assert_eq!(
        json("hello").unwrap_err().code(),
        ErrorCode::BadRequest,
        "not JSON"
    );
    assert_eq!(
        json(r#"{"id":1,"type":"fly"}"#).unwrap_err().code(),
        ErrorCode::UnknownCommand
    );
    assert_eq!(
        json(r##"{"id":1,"type":"subscribe","channel":"#"}"##)
            .unwrap_err()
            .code(),
        ErrorCode::InvalidChannel
    );
    // MessagePack: an id as uint 64 and a key as str 8 are accepted.
    let wide = [
        0x82, 0xa2, b'i', b'd', 0xcf, 0, 0, 0, 0, 0, 0, 0, 1, 0xd9, 4, b't', b'y', b'p', b'e',
        0xa4, b'p', b'i', b'n', b'g',
    ];
    assert_eq!(Codec::MsgPack.decode_client(&wide), Ok(ping));
    // Data keeps the value, not the text.
    let data = json(r#"{"id":1,"type":"publish","channel":"a","data":{"e":"\u00e9","n":1e2}}"#);
    match data.unwrap().command {
        Command::Publish { data, .. } => assert_eq!(data.as_json(), r#"{"e":"é","n":100.0}"#),
        other => panic!("{other:?}"),
    }
}
