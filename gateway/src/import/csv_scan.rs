//! [`Scanned`]: the reader under the CSV parser, watching the bytes it
//! hands over for what the parser does not tell: the physical line a
//! record starts on (LF, CRLF and newlines inside quoted fields all count)
//! and a quoted field still open at the end of the input, which the
//! parser would silently take as one field holding the rest of the file.
//!
//! It follows the parser's grammar (RFC 4180: `,` between fields, `"`
//! quoting, `""` for a quote inside quotes, `\r`, `\n` or `\r\n` ending a
//! record, blank lines skipped) one byte at a time, and keeps the offsets
//! of newlines only as far back as the parser's last record.

use std::collections::VecDeque;
use std::io::{self, Read};

/// Where the scan is in the grammar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Between records (blank lines included).
    RecordStart,
    /// At the start of a field.
    FieldStart,
    /// Inside a field that did not start with a quote.
    Unquoted,
    /// Inside a quoted field.
    Quoted,
    /// Just after a quote inside a quoted field: the end of the field, or
    /// the first half of `""`.
    QuoteInQuoted,
}

/// See the module doc.
#[derive(Debug)]
pub(crate) struct Scanned<R> {
    inner: R,
    state: State,
    /// Newlines read so far.
    newlines: u64,
    /// The line each record scanned but not yet taken starts on.
    ahead: VecDeque<u64>,
    /// Records scanned so far (the one being scanned included).
    records: u64,
    /// Records taken ([`Scanned::take_record`]).
    taken: u64,
    /// The open quoted field's record (its number, from 1) and line.
    open_quote: Option<(u64, u64)>,
    eof: bool,
}

impl<R: Read> Scanned<R> {
    pub(crate) fn new(inner: R) -> Self {
        Self {
            inner,
            state: State::RecordStart,
            newlines: 0,
            ahead: VecDeque::new(),
            records: 0,
            taken: 0,
            open_quote: None,
            eof: false,
        }
    }

    /// The parser produced its next record: the line (from 1) it starts
    /// on, and whether it holds a quoted field never closed.
    pub(crate) fn take_record(&mut self) -> (u64, bool) {
        self.taken += 1;
        let line = self.ahead.pop_front().unwrap_or(1 + self.newlines);
        let open = self
            .unterminated()
            .is_some_and(|(record, _)| record <= self.taken);
        (line, open)
    }

    /// At the end of the input with a quoted field still open: its
    /// record's number (from 1) and the line its quote opened on.
    pub(crate) fn unterminated(&self) -> Option<(u64, u64)> {
        (self.eof && self.state == State::Quoted)
            .then_some(self.open_quote)
            .flatten()
    }

    fn scan(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let end = matches!(b, b'\n' | b'\r');
            self.state = match self.state {
                State::RecordStart if end => State::RecordStart,
                State::RecordStart => {
                    self.records += 1;
                    self.ahead.push_back(1 + self.newlines);
                    self.field_start(b)
                }
                State::FieldStart => self.field_start(b),
                State::Unquoted if end => State::RecordStart,
                State::Unquoted if b == b',' => State::FieldStart,
                State::Unquoted => State::Unquoted,
                State::Quoted if b == b'"' => State::QuoteInQuoted,
                State::Quoted => State::Quoted,
                State::QuoteInQuoted if b == b'"' => State::Quoted,
                State::QuoteInQuoted => {
                    self.open_quote = None;
                    match b {
                        b',' => State::FieldStart,
                        _ if end => State::RecordStart,
                        _ => State::Unquoted,
                    }
                }
            };
            if b == b'\n' {
                self.newlines += 1;
            }
        }
    }

    /// The state after byte `b` at the start of a field.
    fn field_start(&mut self, b: u8) -> State {
        match b {
            b'"' => {
                self.open_quote = Some((self.records, 1 + self.newlines));
                State::Quoted
            }
            b',' => State::FieldStart,
            b'\n' | b'\r' => State::RecordStart,
            _ => State::Unquoted,
        }
    }
}

impl<R: Read> Read for Scanned<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof = true;
        }
        self.scan(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scanned(input: &str) -> Scanned<&[u8]> {
        let mut s = Scanned::new(input.as_bytes());
        io::copy(&mut s, &mut io::sink()).unwrap();
        s
    }

    #[test]
    fn an_open_quote_at_the_end_is_found_with_its_line() {
        let s = scanned("id,name\nsb-1,A\nsb-2,\"B\nsb-3,C\n");
        assert_eq!(s.unterminated(), Some((3, 3)));
        for closed in [
            "id,name\na,\"B\"\"x\"\"\"\n",
            "id,name\na,\"multi\r\nline\"\r\n",
            "id,name\na,5'10\"\n",
            "id,name\na,\"\"",
        ] {
            assert_eq!(scanned(closed).unterminated(), None, "{closed:?}");
        }
        assert!(scanned("id,name\na,\"b\"\"").unterminated().is_some());
    }

    #[test]
    fn records_start_on_physical_lines() {
        let mut s = scanned("id,name\r\nlc-1,A\r\n\r\n,B\r\n\"x\ny\",z\nlast");
        let lines: Vec<u64> = (0..5).map(|_| s.take_record().0).collect();
        assert_eq!(lines, [1, 2, 4, 5, 7]);
    }
}
