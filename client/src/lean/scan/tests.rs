//! The scanner against the full decode, on the protocol document's
//! examples, on generated messages with awkward payloads, and on every
//! truncation of them.

use tokenim_protocol::{ChannelName, Codec, Data, Publication, Push, UserId};

use super::{Scanned, agrees, decode_message, message};

fn push(channel: &str, seq: u64, from: Option<&str>, data: &str) -> Push {
    Push::Message(Publication {
        channel: ChannelName::new(channel).unwrap(),
        seq,
        from: from.map(|f| UserId::new(f).unwrap()),
        data: Data::from_json(data).unwrap(),
        time: 1_700_000_000_000,
    })
}

#[test]
fn reads_the_stamp_of_a_message_in_both_codecs() {
    let data = r#"{"t":1700000000123456,"p":3,"n":9,"pad":"xx\"seq\":7"}"#;
    for codec in Codec::ALL {
        let bytes = codec
            .encode(&push("loadtest.1.2", 42, Some("lt-7"), data))
            .unwrap();
        assert_eq!(
            message(codec, &bytes),
            Some(Scanned {
                channel: b"loadtest.1.2",
                seq: 42,
                t: Some(1_700_000_000_123_456),
            }),
            "{codec:?}"
        );
        assert!(agrees(codec, &bytes));
    }
}

#[test]
fn the_documents_examples_and_other_frames_agree() {
    let json: [&[u8]; 7] = [
        br#"{"push":"message","channel":"rooms.lobby","seq":18,"from":"alice","data":{"text":"hi"},"time":1700000000000}"#,
        br#"{"push":"message","channel":"rooms.lobby","seq":19,"data":{"text":"maintenance at 02:00","level":2,"tags":["ops",null,true]},"time":1700000000500}"#,
        br#"{"push":"join","channel":"rooms.lobby","user":"carol","session":43}"#,
        br#"{"push":"disconnect","code":4003,"reason":"token expired","reconnect":true}"#,
        br#"{"id":5,"result":{"type":"publish","channel":"rooms.lobby","seq":18}}"#,
        br#"{"id":8,"error":{"code":1104,"name":"permission_denied","message":"no"}}"#,
        b"not json",
    ];
    for frame in json {
        assert!(
            agrees(Codec::Json, frame),
            "{}",
            String::from_utf8_lossy(frame)
        );
    }
    let m = message(Codec::Json, json[0]).unwrap();
    assert_eq!((m.seq, m.t), (18, None));
    assert!(message(Codec::Json, json[2]).is_none());
    // The document's MessagePack example of the first message.
    let hex = "86a470757368a76d657373616765a76368616e6e656cab726f6f6d732e6c6f626279a373657112a466726f6da5616c696365a46461746181a474657874a26869a474696d65cf0000018bcfe56800";
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    let m = message(Codec::MsgPack, &bytes).unwrap();
    assert_eq!((m.channel, m.seq, m.t), (&b"rooms.lobby"[..], 18, None));
    assert!(agrees(Codec::MsgPack, &bytes));
}

/// A small deterministic generator of awkward payloads.
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn value(&mut self, depth: u32) -> String {
        match self.next() % if depth > 2 { 6 } else { 8 } {
            0 => "null".into(),
            1 => "true".into(),
            2 => format!("{}", self.next() >> (self.next() % 64)),
            3 => format!("-{}.5e3", self.next() % 1000),
            4 => r#""q\"uo\\te \u00e9 \"seq\":1 }]""#.into(),
            5 => format!("\"{}\"", "x".repeat((self.next() % 300) as usize)),
            6 => {
                let n = self.next() % 4;
                let items: Vec<String> = (0..n).map(|_| self.value(depth + 1)).collect();
                format!("[{}]", items.join(","))
            }
            _ => {
                let keys = ["tt", "seq", "push", "data", "p", "n", "pad"];
                let n = self.next() % 4;
                let items: Vec<String> = (0..n)
                    .map(|i| {
                        let k = keys[((self.next() + i) % keys.len() as u64) as usize];
                        format!("\"{k}\":{}", self.value(depth + 1))
                    })
                    .collect();
                format!("{{{}}}", items.join(","))
            }
        }
    }
}

#[test]
fn generated_messages_and_all_their_truncations_agree() {
    let mut g = Gen(0x1234_5678_9abc_def1);
    for round in 0..400 {
        let data = if round % 5 == 1 {
            format!(r#"{{"t":{}}}"#, g.value(1))
        } else if round % 3 == 0 {
            format!(
                r#"{{"t":{},"p":{},"n":{}}}"#,
                g.next() >> 10,
                round,
                g.next() % 9
            )
        } else {
            let v = g.value(0);
            if v.starts_with('{') && v.len() > 2 && round % 2 == 0 {
                format!(r#"{{"pad":[{{"t":1}}],"t":{}, {}"#, g.next() >> 12, &v[1..])
            } else {
                v
            }
        };
        let from = (round % 2 == 0).then_some("lt-3");
        let frame = push("loadtest.a-b_c", g.next() >> (g.next() % 64), from, &data);
        for codec in Codec::ALL {
            let bytes = codec.encode(&frame).unwrap();
            assert!(
                decode_message(codec, &bytes).is_some(),
                "full decode of {data}"
            );
            assert!(agrees(codec, &bytes), "{codec:?} {data}");
            for cut in 0..bytes.len() {
                assert!(
                    message(codec, &bytes[..cut]).is_none(),
                    "{codec:?} {data} cut at {cut}"
                );
            }
        }
    }
}

#[test]
fn the_fast_path_still_walks_the_tail() {
    fn scan(s: &str) -> Option<Scanned<'_>> {
        message(Codec::Json, s.as_bytes())
    }
    let m = scan(
        r#"{"push":"message","channel":"c","seq":1,"from":"u","data":{"t":5,"p":1},"time":2}"#,
    );
    assert_eq!(m.map(|m| (m.seq, m.t)), Some((1, Some(5))));
    // A later duplicate wins, as in the general walk.
    let m = scan(r#"{"push":"message","channel":"c","seq":1,"data":{"t":5,"t":"x"},"time":2}"#);
    assert_eq!(m.map(|m| (m.seq, m.t)), Some((1, None)));
    let m = scan(r#"{"push":"message","channel":"c","seq":1,"data":{"t":5},"seq":9}"#);
    assert_eq!(m.map(|m| m.seq), Some(9));
    // A broken tail or trailing bytes are refused.
    assert!(scan(r#"{"push":"message","channel":"c","seq":1,"data":{"t":5},"time":2"#).is_none());
    assert!(scan(r#"{"push":"message","channel":"c","seq":1,"data":{"t":5}} x"#).is_none());
    // An escaped channel or sender leaves the fast path for the general one.
    let m = scan(r#"{"push":"message","channel":"c","seq":1,"from":"a\"b","data":{"t":5}}"#);
    assert_eq!(m.map(|m| m.t), Some(Some(5)));
}
