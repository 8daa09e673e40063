//! Socket.IO 4 over Engine.IO 4, WebSocket transport only: what the
//! generator speaks to a Socket.IO server for `--target socketio`, so the
//! same scenarios run side by side with a gateway that is not tokenim.
//!
//! The exchange (see `bench/socketio/README.md`):
//!
//! | step | client | server |
//! |---|---|---|
//! | open `/socket.io/?EIO=4&transport=websocket` | | `0{"sid":...}` |
//! | join the default namespace | `40` | `40{"sid":...}` (`44{...}`: refused) |
//! | subscribe | `42<id>["subscribe","<room>"]` | `43<id>[{"ok":true}]` |
//! | publish | `42<id>["publish","<room>",<data>]` | `43<id>[...]` |
//! | a message in a joined room | | `42["message","<room>",<data>]` |
//! | heartbeat | `3` | `2` |
//!
//! The heartbeat ([`PING`], [`PONG`]) is answered inside the lean
//! transport's [`super::Conn`] (see [`super::Conn::set_text_heartbeat`]),
//! so every scenario that reads keeps its connections alive. Socket.IO has no sequence numbers: the
//! publisher writes its own `seq` (a per-run counter, 1, 2, 3, ... in
//! intended send order over all publishers) and the intended send time
//! `t` into `data`, and [`message`] reads them back by scanning the bytes,
//! so loss, duplicates, order and latency are judged exactly as for
//! tokenim.

use std::fmt::Write as _;

use super::scan::Scanned;
use tokenim_client::lean::UpgradeError;

use super::{Conn, ConnError, DialError};

/// Engine.IO's ping packet (the server sends it).
pub const PING: &[u8] = b"2";
/// Engine.IO's pong packet (the answer to [`PING`]).
pub const PONG: &[u8] = b"3";

/// The Engine.IO upgrade path and query.
pub const PATH: &str = "/socket.io/?EIO=4&transport=websocket";

/// The path to upgrade on: `path` if it already names the Engine.IO
/// endpoint, otherwise [`PATH`] (so `--url ws://host:port` is enough).
pub fn upgrade_path(path: &str) -> String {
    if path.starts_with("/socket.io/") && path.contains("EIO=") {
        path.to_owned()
    } else {
        PATH.to_owned()
    }
}

/// The namespace handshake after the upgrade: the server's open packet
/// (`0{...}`), our `40`, its `40{...}`.
pub async fn handshake(conn: &mut Conn) -> Result<(), DialError> {
    let open = conn.recv().await?;
    if open.first() != Some(&b'0') {
        return Err(DialError::Upgrade(UpgradeError::Handshake(format!(
            "expected an Engine.IO open packet, got {:?}",
            preview(open)
        ))));
    }
    conn.send(b"40").await.map_err(ConnError::Io)?;
    loop {
        let packet = conn.recv().await?;
        if packet.starts_with(b"40") {
            return Ok(());
        }
        if packet.starts_with(b"44") {
            return Err(DialError::Refused(44));
        }
        if packet.first() == Some(&b'1') {
            return Err(DialError::CLOSED);
        }
    }
}

fn preview(bytes: &[u8]) -> String {
    String::from_utf8_lossy(&bytes[..bytes.len().min(60)]).into_owned()
}

/// `42<id>["subscribe","<room>"]`.
pub fn subscribe(id: u64, room: &str) -> Vec<u8> {
    format!("42{id}[\"subscribe\",\"{room}\"]").into_bytes()
}

/// `42<id>["publish","<room>",{"seq":S,"t":T,"p":P,"pad":"..."}]` into
/// `out` (cleared first).
pub fn publish(out: &mut String, id: u64, room: &str, seq: u64, t: u64, p: u32, pad: &str) {
    out.clear();
    let _ = write!(
        out,
        "42{id}[\"publish\",\"{room}\",{{\"seq\":{seq},\"t\":{t},\"p\":{p}"
    );
    if !pad.is_empty() {
        let _ = write!(out, ",\"pad\":\"{pad}\"");
    }
    out.push_str("}]");
}

/// The id of an acknowledgement (`43<id>[...]`), if `packet` is one.
#[inline]
pub fn ack_id(packet: &[u8]) -> Option<u64> {
    let rest = packet.strip_prefix(b"43")?;
    let (id, used) = digits(rest)?;
    (rest.get(used) == Some(&b'[')).then_some(id)
}

/// Reads until the acknowledgement of `id`; whether it said `"ok":true`.
/// Other packets (messages of the room) are skipped.
pub async fn next_ack(conn: &mut Conn, id: u64) -> Result<bool, DialError> {
    loop {
        let packet = conn.recv().await?;
        if ack_id(packet) == Some(id) {
            return Ok(find(packet, b"\"ok\":true").is_some());
        }
        if packet.first() == Some(&b'1') || packet.starts_with(b"41") {
            return Err(DialError::CLOSED);
        }
    }
}

const MESSAGE: &[u8] = b"42[\"message\",\"";

/// Reads a room message's room, `seq` and `t` from
/// `42["message","<room>",{..."seq":S,..."t":T...}]`; `None` for any
/// other packet or a message without a `seq`.
#[inline]
pub fn message(packet: &[u8]) -> Option<Scanned<'_>> {
    let rest = packet.strip_prefix(MESSAGE)?;
    let end = rest.iter().position(|&b| b == b'"')?;
    let (room, data) = (&rest[..end], &rest[end + 1..]);
    let data = data.strip_prefix(b",{")?;
    let seq = field(data, b"\"seq\":")?;
    Some(Scanned {
        channel: room,
        seq,
        t: field(data, b"\"t\":"),
    })
}

/// The unsigned integer after `key` in `data`.
#[inline]
fn field(data: &[u8], key: &[u8]) -> Option<u64> {
    let at = find(data, key)? + key.len();
    digits(&data[at..]).map(|(n, _)| n)
}

#[inline]
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A leading decimal number and how many bytes it took.
#[inline]
fn digits(bytes: &[u8]) -> Option<(u64, usize)> {
    let mut n: u64 = 0;
    let mut used = 0;
    for &b in bytes {
        if !b.is_ascii_digit() {
            break;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        used += 1;
    }
    (used > 0).then_some((n, used))
}

/// The same fields as [`message`] from a full JSON decode (for
/// `--verify` and the tests).
pub fn decode_message(packet: &[u8]) -> Option<(String, u64, Option<u64>)> {
    let body = packet.strip_prefix(b"42")?;
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let items = value.as_array()?;
    if items.first()?.as_str()? != "message" {
        return None;
    }
    let room = items.get(1)?.as_str()?.to_owned();
    let data = items.get(2)?.as_object()?;
    Some((
        room,
        data.get("seq")?.as_u64()?,
        data.get("t").and_then(serde_json::Value::as_u64),
    ))
}

/// Whether [`message`] and [`decode_message`] read `packet` the same way.
pub fn agrees(packet: &[u8]) -> bool {
    match (message(packet), decode_message(packet)) {
        (None, None) => true,
        (Some(s), Some((room, seq, t))) => s.channel == room.as_bytes() && s.seq == seq && s.t == t,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_and_message_round_trip() {
        let mut out = String::new();
        publish(
            &mut out,
            7,
            "loadtest.1.2",
            42,
            1_700_000_000_123_456,
            3,
            "xx",
        );
        assert_eq!(
            out,
            r#"427["publish","loadtest.1.2",{"seq":42,"t":1700000000123456,"p":3,"pad":"xx"}]"#
        );
        // What the server emits for it.
        let pushed =
            br#"42["message","loadtest.1.2",{"seq":42,"t":1700000000123456,"p":3,"pad":"xx"}]"#;
        let m = message(pushed).unwrap();
        assert_eq!(
            (m.channel, m.seq, m.t),
            (&b"loadtest.1.2"[..], 42, Some(1_700_000_000_123_456))
        );
        assert!(agrees(pushed));
        // Key order does not matter.
        let reordered = br#"42["message","r",{"t":5,"p":0,"seq":9}]"#;
        assert_eq!(message(reordered).map(|m| (m.seq, m.t)), Some((9, Some(5))));
        assert!(agrees(reordered));
        for other in [
            &b"2"[..],
            b"40{\"sid\":\"x\"}",
            b"431[{\"ok\":true}]",
            b"42[\"other\",1]",
        ] {
            assert!(message(other).is_none());
            assert!(agrees(other));
        }
    }

    #[test]
    fn acks_and_paths() {
        assert_eq!(ack_id(br#"431[{"ok":true}]"#), Some(1));
        assert_eq!(ack_id(br#"43123[{"ok":true}]"#), Some(123));
        assert_eq!(ack_id(b"42[\"message\"]"), None);
        assert_eq!(ack_id(b"43"), None);
        assert_eq!(subscribe(1, "r"), br#"421["subscribe","r"]"#.to_vec());
        assert_eq!(upgrade_path("/ws"), PATH);
        assert_eq!(upgrade_path("/"), PATH);
        assert_eq!(
            upgrade_path("/socket.io/?EIO=4&transport=websocket&x=1"),
            "/socket.io/?EIO=4&transport=websocket&x=1"
        );
    }
}
