//! JSON lines, one item per line, read with a bounded buffer: a line
//! longer than [`MAX_LINE_BYTES`] is an item error and is skipped without
//! being held. Blank lines are skipped and not counted as items; a UTF-8
//! byte-order mark before the first line is ignored.

use std::io::{self, BufRead, BufReader, Read};

use serde_json::Value;
use tokenim_protocol::ErrorCode;

use super::ItemError;
use super::item::{Given, Next, RecordInput, from_json};

/// Longest JSON line read, in bytes (8 MiB): far above any valid record.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// JSON lines, one at a time, with a bounded buffer.
#[derive(Debug)]
pub(crate) struct Lines<R> {
    reader: BufReader<R>,
    /// Lines read so far (the number of the last one, 1-based).
    line: usize,
    buf: Vec<u8>,
}

impl<R: Read> Lines<R> {
    pub(crate) fn new(reader: R) -> Self {
        Self {
            reader: BufReader::new(reader),
            line: 0,
            buf: Vec::new(),
        }
    }

    /// The next non-blank line's item, or `None` at the end.
    pub(crate) fn next_item<I: RecordInput>(&mut self) -> io::Result<Option<Next<I>>> {
        loop {
            let Some(too_long) = self.read_line()? else {
                return Ok(None);
            };
            let at = format!("line {}", self.line);
            if too_long {
                let e = ItemError::new(
                    ErrorCode::InvalidField,
                    format!("longer than {MAX_LINE_BYTES} bytes"),
                );
                return Ok(Some(Next {
                    at,
                    id: None,
                    given: Given::default(),
                    input: Err(e),
                }));
            }
            let mut text = self.buf.as_slice();
            if self.line == 1 {
                text = text.strip_prefix(b"\xef\xbb\xbf").unwrap_or(text);
            }
            let text = text.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let (id, given, input) = match serde_json::from_slice::<Value>(text) {
                Ok(value) => from_json::<I>(value),
                Err(e) => (
                    None,
                    Given::default(),
                    Err(ItemError::new(ErrorCode::InvalidField, not_json(&e))),
                ),
            };
            return Ok(Some(Next {
                at,
                id,
                given,
                input,
            }));
        }
    }

    /// Reads one line into `buf` (without its `\n`); `Some(true)` when it
    /// was longer than [`MAX_LINE_BYTES`] (then `buf` is empty), `None` at
    /// the end of the input.
    fn read_line(&mut self) -> io::Result<Option<bool>> {
        self.buf.clear();
        let mut too_long = false;
        let mut read_any = false;
        loop {
            let available = match self.reader.fill_buf() {
                Ok(a) => a,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if available.is_empty() {
                break;
            }
            read_any = true;
            let (chunk, used, done) = match available.iter().position(|&b| b == b'\n') {
                Some(end) => (&available[..end], end + 1, true),
                None => (available, available.len(), false),
            };
            if !too_long && self.buf.len() + chunk.len() > MAX_LINE_BYTES {
                too_long = true;
                self.buf = Vec::new();
            }
            if !too_long {
                self.buf.extend_from_slice(chunk);
            }
            self.reader.consume(used);
            if done {
                break;
            }
        }
        if !read_any {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(too_long))
    }
}

/// serde_json's message with the column, without its "line 1" (the line
/// is said by the caller).
fn not_json(e: &serde_json::Error) -> String {
    let message = e.to_string();
    let message = message
        .rsplit_once(" at line ")
        .map_or(message.as_str(), |(m, _)| m);
    format!("not valid JSON: {message} at column {}", e.column())
}
