//! The receive path's decoder: reads a `message` push's `channel`, `seq`
//! and the stamp's `t` (its intended send time) by walking the encoded
//! bytes, JSON or MessagePack, without building a value, validating
//! UTF-8 or allocating. Every other field is skipped by its length or
//! its brackets.
//!
//! [`message`] answers `None` for anything that is not a `message` push
//! (a reply, a join, a malformed frame); callers then fall back to the
//! serde decode in [`super::frame`]. [`decode_message`] is the full,
//! slow decode through `tokenim-protocol` that tests and `--verify` use
//! to check the scanner frame by frame ([`agrees`]).

use tokenim_protocol::{Codec, Push, ServerFrame};

/// What the scanner reads from a `message` push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scanned<'a> {
    /// The channel name's bytes, as encoded (channel names need no
    /// escaping).
    pub channel: &'a [u8],
    /// The message's sequence in its channel.
    pub seq: u64,
    /// `data.t` when the payload is an object whose `t` is an unsigned
    /// integer (a [`super::Stamp`]).
    pub t: Option<u64>,
}

/// Reads a `message` push; `None` for any other frame.
#[inline]
pub fn message(codec: Codec, frame: &[u8]) -> Option<Scanned<'_>> {
    match codec {
        Codec::Json => json::message(frame),
        Codec::MsgPack => msgpack::message(frame),
    }
}

/// The same fields as [`Scanned`], from a full decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    /// The channel.
    pub channel: String,
    /// The sequence.
    pub seq: u64,
    /// The stamp's `t`, if the payload is a stamp.
    pub t: Option<u64>,
}

/// Decodes a frame completely with `tokenim-protocol`; `Some` for a
/// `message` push.
pub fn decode_message(codec: Codec, frame: &[u8]) -> Option<Decoded> {
    match codec.decode_server(frame).ok()? {
        ServerFrame::Push(Push::Message(p)) => Some(Decoded {
            channel: p.channel.as_str().to_owned(),
            seq: p.seq,
            t: serde_json::from_str::<serde_json::Value>(p.data.as_json())
                .ok()
                .and_then(|v| v.as_object()?.get("t")?.as_u64()),
        }),
        _ => None,
    }
}

/// Whether the scanner and the full decode read `frame` the same way.
pub fn agrees(codec: Codec, frame: &[u8]) -> bool {
    match (message(codec, frame), decode_message(codec, frame)) {
        (None, None) => true,
        (Some(s), Some(d)) => s.channel == d.channel.as_bytes() && s.seq == d.seq && s.t == d.t,
        _ => false,
    }
}

/// Which top-level field is which.
enum Field {
    Push,
    Channel,
    Seq,
    Data,
    Other,
}

impl Field {
    #[inline]
    fn of(key: &[u8]) -> Field {
        match key {
            b"push" => Field::Push,
            b"channel" => Field::Channel,
            b"seq" => Field::Seq,
            b"data" => Field::Data,
            _ => Field::Other,
        }
    }
}

/// What a walk collected; a message once `push` said so.
#[derive(Default)]
struct Found<'a> {
    message: bool,
    channel: Option<&'a [u8]>,
    seq: Option<u64>,
    t: Option<u64>,
}

impl<'a> Found<'a> {
    fn finish(self) -> Option<Scanned<'a>> {
        if !self.message {
            return None;
        }
        Some(Scanned {
            channel: self.channel?,
            seq: self.seq?,
            t: self.t,
        })
    }
}

mod json {
    //! JSON: a cursor over the bytes that skips values by their syntax.

    use super::{Field, Found, Scanned};

    pub(super) fn message(b: &[u8]) -> Option<Scanned<'_>> {
        let mut c = Cursor { b, i: 0 };
        let mut found = Found::default();
        if fast(&mut c, &mut found).is_some() {
            // The rest of `data`, then the rest of the frame, walked in
            // full: a later duplicate or a malformed tail still counts.
            c.rest(&mut |c, key| data_field(c, key, &mut found))?;
            c.rest(&mut |c, key| top_field(c, key, &mut found))?;
        } else {
            (c, found) = (Cursor { b, i: 0 }, Found::default());
            c.object(&mut |c, key| top_field(c, key, &mut found))?;
        }
        c.ws();
        if c.i != b.len() {
            return None;
        }
        found.finish()
    }

    /// The gateway's own layout, `{"push":"message","channel":"..",
    /// "seq":N,["from":"..",]"data":{"t":T`, matched by prefixes: on
    /// success the cursor stands just after `T`.
    fn fast<'a>(c: &mut Cursor<'a>, found: &mut Found<'a>) -> Option<()> {
        let b = c.b;
        let prefix = |i: usize, p: &[u8]| b.get(i..)?.starts_with(p).then_some(i + p.len());
        let plain_string = |i: usize| {
            let end = i + b.get(i..)?.iter().position(|&x| x == b'"' || x == b'\\')?;
            (b[end] == b'"').then_some(end)
        };
        let i = prefix(0, br#"{"push":"message","channel":""#)?;
        let end = plain_string(i)?;
        found.channel = Some(&b[i..end]);
        c.i = prefix(end + 1, br#","seq":"#)?;
        found.seq = Some(c.uint()?);
        let mut i = c.i;
        if let Some(from) = prefix(i, br#","from":""#) {
            i = plain_string(from)? + 1;
        }
        c.i = prefix(i, br#","data":{"t":"#)?;
        found.t = Some(c.uint()?);
        found.message = true;
        Some(())
    }

    fn top_field<'a>(c: &mut Cursor<'a>, key: &'a [u8], found: &mut Found<'a>) -> Option<()> {
        match Field::of(key) {
            Field::Push => {
                if c.string()? != b"message" {
                    return None;
                }
                found.message = true;
            }
            Field::Channel => found.channel = Some(c.string()?),
            Field::Seq => found.seq = Some(c.uint()?),
            Field::Data if c.peek() == Some(b'{') => {
                found.t = None;
                c.object(&mut |c, key| data_field(c, key, found))?;
            }
            Field::Data => {
                found.t = None;
                c.skip()?;
            }
            Field::Other => c.skip()?,
        }
        Some(())
    }

    fn data_field<'a>(c: &mut Cursor<'a>, key: &'a [u8], found: &mut Found<'a>) -> Option<()> {
        if key == b"t" {
            found.t = c.uint();
            if found.t.is_some() {
                return Some(());
            }
        }
        c.skip()
    }

    struct Cursor<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cursor<'a> {
        #[inline]
        fn peek(&mut self) -> Option<u8> {
            self.ws();
            self.b.get(self.i).copied()
        }

        #[inline]
        fn ws(&mut self) {
            while matches!(self.b.get(self.i), Some(b' ' | b'\n' | b'\r' | b'\t')) {
                self.i += 1;
            }
        }

        #[inline]
        fn eat(&mut self, byte: u8) -> Option<()> {
            (self.peek()? == byte).then(|| self.i += 1)
        }

        /// An object: `field(cursor, key)` must consume each value.
        fn object(
            &mut self,
            field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
        ) -> Option<()> {
            self.eat(b'{')?;
            if self.peek()? == b'}' {
                self.i += 1;
                return Some(());
            }
            self.member(field)?;
            self.rest(field)
        }

        /// The members after the first, up to and including the `}`.
        fn rest(
            &mut self,
            field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
        ) -> Option<()> {
            loop {
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.member(field)?;
                    }
                    b'}' => {
                        self.i += 1;
                        return Some(());
                    }
                    _ => return None,
                }
            }
        }

        /// `"key": value`, the value consumed by `field`.
        #[inline]
        fn member(
            &mut self,
            field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>,
        ) -> Option<()> {
            let key = self.string()?;
            self.eat(b':')?;
            self.ws();
            field(self, key)
        }

        /// A string's raw bytes (escapes left as they are).
        #[inline]
        fn string(&mut self) -> Option<&'a [u8]> {
            self.eat(b'"')?;
            let start = self.i;
            loop {
                match *self.b.get(self.i)? {
                    b'"' => {
                        self.i += 1;
                        return Some(&self.b[start..self.i - 1]);
                    }
                    b'\\' => self.i += 2,
                    _ => self.i += 1,
                }
            }
        }

        /// An unsigned integer that ends where the value ends; `None`
        /// (cursor unmoved) for anything else.
        #[inline]
        fn uint(&mut self) -> Option<u64> {
            let mut i = self.i;
            let mut v = 0u64;
            while let Some(d) = self.b.get(i).filter(|d| d.is_ascii_digit()) {
                v = v.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
                i += 1;
            }
            let ends = matches!(
                self.b.get(i),
                Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') | None
            );
            (i > self.i && ends).then(|| {
                self.i = i;
                v
            })
        }

        /// Skips one value of any kind.
        fn skip(&mut self) -> Option<()> {
            match self.peek()? {
                b'"' => self.string().map(|_| ()),
                b'{' | b'[' => {
                    let mut depth = 0usize;
                    loop {
                        match *self.b.get(self.i)? {
                            b'"' => {
                                self.string()?;
                                continue;
                            }
                            b'{' | b'[' => depth += 1,
                            b'}' | b']' => {
                                depth -= 1;
                                if depth == 0 {
                                    self.i += 1;
                                    return Some(());
                                }
                            }
                            _ => {}
                        }
                        self.i += 1;
                    }
                }
                _ => {
                    let start = self.i;
                    while !matches!(
                        self.b.get(self.i),
                        Some(b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t') | None
                    ) {
                        self.i += 1;
                    }
                    (self.i > start).then_some(())
                }
            }
        }
    }
}

mod msgpack {
    //! MessagePack: a cursor that skips values by their type byte.

    use super::{Field, Found, Scanned};

    pub(super) fn message(b: &[u8]) -> Option<Scanned<'_>> {
        let mut c = Cursor { b, i: 0 };
        let mut found = Found::default();
        for _ in 0..c.map_len()? {
            match Field::of(c.str()?) {
                Field::Push => {
                    if c.str()? != b"message" {
                        return None;
                    }
                    found.message = true;
                }
                Field::Channel => found.channel = Some(c.str()?),
                Field::Seq => found.seq = Some(c.uint()?),
                Field::Data if matches!(c.b.get(c.i), Some(0x80..=0x8f | 0xde | 0xdf)) => {
                    for _ in 0..c.map_len()? {
                        let key = c.str()?;
                        if key == b"t" {
                            if let Some(t) = c.uint() {
                                found.t = Some(t);
                                continue;
                            }
                            found.t = None;
                        }
                        c.skip()?;
                    }
                }
                Field::Data | Field::Other => c.skip()?,
            }
        }
        if c.i != b.len() {
            return None;
        }
        found.finish()
    }

    struct Cursor<'a> {
        b: &'a [u8],
        i: usize,
    }

    impl<'a> Cursor<'a> {
        #[inline]
        fn byte(&mut self) -> Option<u8> {
            let v = *self.b.get(self.i)?;
            self.i += 1;
            Some(v)
        }

        /// The next `n` bytes as a big-endian number (n ≤ 8).
        #[inline]
        fn be(&mut self, n: usize) -> Option<u64> {
            let bytes = self.b.get(self.i..self.i + n)?;
            self.i += n;
            Some(bytes.iter().fold(0u64, |v, &b| v << 8 | u64::from(b)))
        }

        #[inline]
        fn take(&mut self, n: u64) -> Option<&'a [u8]> {
            let n = usize::try_from(n).ok()?;
            let out = self.b.get(self.i..self.i.checked_add(n)?)?;
            self.i += n;
            Some(out)
        }

        #[inline]
        fn map_len(&mut self) -> Option<u64> {
            match self.byte()? {
                m @ 0x80..=0x8f => Some(u64::from(m & 0x0f)),
                0xde => self.be(2),
                0xdf => self.be(4),
                _ => None,
            }
        }

        #[inline]
        fn str(&mut self) -> Option<&'a [u8]> {
            let n = match self.byte()? {
                m @ 0xa0..=0xbf => u64::from(m & 0x1f),
                0xd9 => self.be(1)?,
                0xda => self.be(2)?,
                0xdb => self.be(4)?,
                _ => return None,
            };
            self.take(n)
        }

        /// A non-negative integer; `None` (cursor unmoved) otherwise.
        #[inline]
        fn uint(&mut self) -> Option<u64> {
            let start = self.i;
            let v = match self.byte()? {
                m @ 0x00..=0x7f => Some(u64::from(m)),
                0xcc => self.be(1),
                0xcd => self.be(2),
                0xce => self.be(4),
                0xcf => self.be(8),
                m @ 0xd0..=0xd3 => {
                    let n = 1usize << (m - 0xd0);
                    self.be(n).filter(|v| v >> (n * 8 - 1) == 0)
                }
                _ => None,
            };
            if v.is_none() {
                self.i = start;
            }
            v
        }

        /// Skips one value of any kind (nested ones by counting).
        fn skip(&mut self) -> Option<()> {
            let mut pending = 1u64;
            while pending > 0 {
                pending -= 1;
                let m = self.byte()?;
                let skip = match m {
                    0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => 0,
                    0x80..=0x8f => {
                        pending += 2 * u64::from(m & 0x0f);
                        0
                    }
                    0x90..=0x9f => {
                        pending += u64::from(m & 0x0f);
                        0
                    }
                    0xa0..=0xbf => u64::from(m & 0x1f),
                    0xc4 | 0xd9 => self.be(1)?,
                    0xc5 | 0xda => self.be(2)?,
                    0xc6 | 0xdb => self.be(4)?,
                    0xc7 => self.be(1)? + 1,
                    0xc8 => self.be(2)? + 1,
                    0xc9 => self.be(4)? + 1,
                    0xca | 0xce | 0xd2 => 4,
                    0xcb | 0xcf | 0xd3 => 8,
                    0xcc | 0xd0 => 1,
                    0xcd | 0xd1 => 2,
                    0xd4 => 2,
                    0xd5 => 3,
                    0xd6 => 5,
                    0xd7 => 9,
                    0xd8 => 17,
                    0xdc => {
                        pending += self.be(2)?;
                        0
                    }
                    0xdd => {
                        pending += self.be(4)?;
                        0
                    }
                    0xde => {
                        pending += 2 * self.be(2)?;
                        0
                    }
                    0xdf => {
                        pending += 2 * self.be(4)?;
                        0
                    }
                    _ => return None,
                };
                self.take(skip)?;
                // Every pending value needs at least one byte.
                if pending > (self.b.len() - self.i) as u64 {
                    return None;
                }
            }
            Some(())
        }
    }
}

#[cfg(test)]
mod tests;
