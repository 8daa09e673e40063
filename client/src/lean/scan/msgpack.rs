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
