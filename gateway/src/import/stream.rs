//! [`ItemStream`]: the items of a CSV or JSON-lines input of any size,
//! one at a time, for import jobs.
//!
//! The stream holds one record at a time (plus the reader's 8 KiB
//! buffer), never the whole input, and applies the same per-item rules as
//! a request body. A JSON line longer than
//! [`MAX_LINE_BYTES`](super::lines::MAX_LINE_BYTES) is an item error and is
//! skipped without being held; a CSV record is held whole while it is read
//! (the spooled file's size bounds it).
//!
//! Duplicate ids are not checked unless asked for
//! ([`ItemStream::check_duplicates`]): an import may hold millions of
//! rows, and the store already reports a repeated id as `exists` (or, when
//! upserting, applies the later row).

use std::collections::HashMap;
use std::io::Read;
use std::marker::PhantomData;

use csv::ByteRecord;
use tokenim_protocol::ErrorCode;
use tokenim_protocol::ids::USER_ID_MAX_LEN;

use super::csv_rows::Columns;
use super::csv_scan::Scanned;
use super::input::{GroupInput, RecordLimits, UserInput};
use super::item::{Next, RecordInput};
use super::lines::Lines;
use super::{BodyError, Format, ItemError, ParsedItem};

/// Streams [`UserInput`] items into users.
pub type UserStream<R> = ItemStream<R, UserInput>;
/// Streams [`GroupInput`] items into groups.
pub type GroupStream<R> = ItemStream<R, GroupInput>;

/// The items of a CSV or JSON-lines input, validated one at a time.
///
/// Yields `Ok(item)` for every item, good or bad, in input order, and
/// `Err` only when the input cannot be read further (an I/O error); the
/// stream ends after that.
///
/// ```
/// use tokenim_gateway::import::{Format, RecordLimits, UserStream};
/// let csv = "id,name\nalice,Alice\nbob,\n";
/// let stream = UserStream::new(csv.as_bytes(), Format::Csv, &RecordLimits::default(), 0)?;
/// let names: Vec<String> = stream.map(|item| item.unwrap().result.unwrap().name).collect();
/// assert_eq!(names, ["Alice", "bob"]);
/// # Ok::<(), tokenim_gateway::import::BodyError>(())
/// ```
#[derive(Debug)]
pub struct ItemStream<R, I> {
    source: Source<R>,
    limits: RecordLimits,
    now_ms: u64,
    next_index: usize,
    seen: Option<Seen>,
    input: PhantomData<fn() -> I>,
}

#[derive(Debug)]
enum Source<R> {
    Csv {
        reader: Box<csv::Reader<Scanned<R>>>,
        columns: Columns,
        row: ByteRecord,
    },
    Lines(Lines<R>),
    Done,
}

impl<R: Read, I: RecordInput> ItemStream<R, I> {
    /// Starts reading `reader` as `format` ([`Format::Csv`] or
    /// [`Format::JsonLines`]); records are stamped with `now_ms`. For CSV
    /// the header row is read here, and a bad one fails with
    /// [`BodyError::Invalid`]; so does [`Format::Json`], which cannot be
    /// streamed.
    pub fn new(
        reader: R,
        format: Format,
        limits: &RecordLimits,
        now_ms: u64,
    ) -> Result<Self, BodyError> {
        let source = match format {
            Format::Csv => {
                let mut reader = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(Scanned::new(reader));
                let mut row = ByteRecord::new();
                if read_record(&mut reader, &mut row)?.is_none() {
                    return Err(BodyError::Invalid(
                        "CSV: no header row (the input is empty)".into(),
                    ));
                }
                let columns = Columns::from_header(&row, &I::COLUMNS)?;
                Source::Csv {
                    reader: Box::new(reader),
                    columns,
                    row,
                }
            }
            Format::JsonLines => Source::Lines(Lines::new(reader)),
            Format::Json => {
                return Err(BodyError::Invalid(
                    "a JSON array cannot be streamed: send CSV or JSON lines".into(),
                ));
            }
        };
        Ok(Self {
            source,
            limits: *limits,
            now_ms,
            next_index: 0,
            seen: None,
            input: PhantomData,
        })
    }

    /// Refuses a repeated id with [`ErrorCode::DuplicateItem`], keeping the
    /// first. This remembers every distinct id: about 80 bytes each
    /// (roughly 0.8 GB for 10 million), so leave it off for big imports.
    pub fn check_duplicates(mut self) -> Self {
        self.seen = Some(Seen::default());
        self
    }

    /// The next item, read but not validated, or `None` at the end.
    fn next_input(&mut self) -> Result<Option<Next<I>>, BodyError> {
        let index = self.next_index;
        match &mut self.source {
            Source::Csv {
                reader,
                columns,
                row,
            } => {
                let Some(line) = &read_record(reader, row)? else {
                    return Ok(None);
                };
                let line = *line;
                let (id, given, input) = columns.read::<I>(row);
                let at = format!("row {index} (line {line})");
                Ok(Some(Next {
                    at,
                    id,
                    given,
                    input,
                }))
            }
            Source::Lines(lines) => Ok(lines.next_item()?),
            Source::Done => Ok(None),
        }
    }
}

impl<R: Read, I: RecordInput> Iterator for ItemStream<R, I> {
    type Item = Result<ParsedItem<I::Record>, BodyError>;

    fn next(&mut self) -> Option<Self::Item> {
        let Next {
            at,
            id,
            given,
            input,
        } = match self.next_input() {
            Ok(Some(next)) => next,
            Ok(None) => {
                self.source = Source::Done;
                return None;
            }
            Err(e) => {
                self.source = Source::Done;
                return Some(Err(e));
            }
        };
        let index = self.next_index;
        self.next_index += 1;
        let result = input
            .and_then(|i| i.into_record(self.now_ms, &self.limits))
            .map_err(|e| e.at(&at));
        let mut item = ParsedItem {
            index,
            id,
            given,
            result,
        };
        if let Some(seen) = &mut self.seen {
            seen.check(&mut item);
        }
        Some(Ok(item))
    }
}

/// The next record into `row` and the line it starts on, `None` at the
/// end; a record that holds a quoted field never closed is refused with
/// the line it opened on (the parser would take the rest of the input as
/// that field).
fn read_record<R: Read>(
    reader: &mut csv::Reader<Scanned<R>>,
    row: &mut ByteRecord,
) -> Result<Option<u64>, BodyError> {
    let more = reader.read_byte_record(row).map_err(csv_error)?;
    let scanned = reader.get_mut();
    let (line, open) = if more {
        scanned.take_record()
    } else {
        (0, scanned.unterminated().is_some())
    };
    if open {
        let opened = scanned.unterminated().map_or(line, |(_, at)| at);
        return Err(BodyError::Invalid(format!(
            "CSV: the quoted field opened on line {opened} is never closed (a stray \"?): \
             nothing from there to the end of the input was read"
        )));
    }
    Ok(more.then_some(line))
}

fn csv_error(e: csv::Error) -> BodyError {
    let message = format!("CSV: {e}");
    match e.into_kind() {
        csv::ErrorKind::Io(e) => BodyError::Io(e),
        _ => BodyError::Invalid(message),
    }
}

/// Ids seen so far in one input, with the index of their first item.
#[derive(Debug, Default)]
pub(crate) struct Seen(HashMap<Box<str>, usize>);

impl Seen {
    /// Marks `item` as a duplicate when its id was seen before; remembers
    /// it otherwise. Ids too long to be valid keep their own error.
    pub(crate) fn check<T>(&mut self, item: &mut ParsedItem<T>) {
        let Some(id) = item.id.as_deref().filter(|id| id.len() <= USER_ID_MAX_LEN) else {
            return;
        };
        if let Some(first) = self.0.get(id) {
            item.result = Err(ItemError::new(
                ErrorCode::DuplicateItem,
                format!(
                    "id {id:?} appears again: only its first occurrence (item {first}) is used"
                ),
            ));
        } else {
            self.0.insert(id.into(), item.index);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io;

    use super::*;
    use crate::import::lines::MAX_LINE_BYTES;

    /// Generates `rows` items on the fly, so the input is never in memory.
    struct Generated {
        rows: usize,
        next: usize,
        line: Vec<u8>,
        at: usize,
        line_of: fn(usize) -> String,
    }

    impl Generated {
        fn new(header: &str, rows: usize, line_of: fn(usize) -> String) -> Self {
            Self {
                rows,
                next: 0,
                line: header.as_bytes().to_vec(),
                at: 0,
                line_of,
            }
        }
    }

    impl Read for Generated {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.at == self.line.len() {
                if self.next == self.rows {
                    return Ok(0);
                }
                self.line = (self.line_of)(self.next).into_bytes();
                self.at = 0;
                self.next += 1;
            }
            let n = buf.len().min(self.line.len() - self.at);
            buf[..n].copy_from_slice(&self.line[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    fn count(
        stream: impl Iterator<Item = Result<ParsedItem<impl Sized>, BodyError>>,
    ) -> (usize, usize) {
        stream.fold((0, 0), |(ok, bad), item| match item.unwrap().result {
            Ok(_) => (ok + 1, bad),
            Err(_) => (ok, bad + 1),
        })
    }

    const ROWS: usize = 100_000;

    #[test]
    fn a_large_csv_streams_row_by_row() {
        // Every 1000th row has a bad id; the rest are good.
        let input = Generated::new("id,name,roles\r\n", ROWS, |i| {
            let id = if i % 1000 == 999 {
                format!("bad id {i}")
            } else {
                format!("user-{i}")
            };
            format!("{id},\"User, {i}\",member\r\n")
        });
        let stream = UserStream::new(input, Format::Csv, &RecordLimits::default(), 0).unwrap();
        assert_eq!(count(stream), (ROWS - ROWS / 1000, ROWS / 1000));
    }

    #[test]
    fn large_json_lines_stream_line_by_line() {
        let input = Generated::new("", ROWS, |i| {
            format!("{{\"id\":\"g{i}\",\"members\":[\"u{i}\"]}}\n\n")
        });
        let stream =
            GroupStream::new(input, Format::JsonLines, &RecordLimits::default(), 0).unwrap();
        assert_eq!(count(stream), (ROWS, 0));
    }

    #[test]
    fn duplicates_are_checked_only_when_asked() {
        let body = "id\na\na\n";
        let limits = RecordLimits::default();
        let plain = UserStream::new(body.as_bytes(), Format::Csv, &limits, 0).unwrap();
        assert_eq!(count(plain), (2, 0));
        let checked = UserStream::new(body.as_bytes(), Format::Csv, &limits, 0)
            .unwrap()
            .check_duplicates();
        let items: Vec<_> = checked.map(Result::unwrap).collect();
        assert_eq!(
            items[1].result.as_ref().unwrap_err().code,
            ErrorCode::DuplicateItem
        );
    }

    #[test]
    fn an_over_long_line_is_skipped_without_being_held() {
        let long = format!(
            "{{\"id\":\"a\",\"name\":\"{}\"}}\n{{\"id\":\"b\"}}\n",
            "x".repeat(MAX_LINE_BYTES)
        );
        let stream = UserStream::new(
            long.as_bytes(),
            Format::JsonLines,
            &RecordLimits::default(),
            0,
        )
        .unwrap();
        let items: Vec<_> = stream.map(Result::unwrap).collect();
        assert_eq!(items.len(), 2);
        let e = items[0].result.as_ref().unwrap_err();
        assert!(
            e.message.starts_with("line 1: longer than"),
            "{}",
            e.message
        );
        assert_eq!(items[1].result.as_ref().unwrap().id.as_str(), "b");
    }

    #[test]
    fn a_read_error_ends_the_stream() {
        struct Failing(bool);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                if std::mem::replace(&mut self.0, true) {
                    return Err(io::Error::other("disk gone"));
                }
                let head = b"id\na\n";
                buf[..head.len()].copy_from_slice(head);
                Ok(head.len())
            }
        }
        for format in [Format::Csv, Format::JsonLines] {
            let mut stream =
                UserStream::new(Failing(false), format, &RecordLimits::default(), 0).unwrap();
            let mut results: Vec<_> = stream.by_ref().collect();
            let last = results.pop().unwrap().unwrap_err();
            assert!(matches!(last, BodyError::Io(_)), "{format:?}: {last}");
            assert_eq!(last.code(), ErrorCode::Internal);
            assert!(stream.next().is_none());
        }
    }

    #[test]
    fn a_json_array_cannot_be_streamed() {
        let e = UserStream::new(&b"[]"[..], Format::Json, &RecordLimits::default(), 0).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidBody);
    }
}
