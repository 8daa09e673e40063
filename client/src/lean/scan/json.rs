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
    fn object(&mut self, field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        self.member(field)?;
        self.rest(field)
    }

    /// The members after the first, up to and including the `}`.
    fn rest(&mut self, field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
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
    fn member(&mut self, field: &mut impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
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
