//! Request bodies → validated [`User`](crate::store::User) and
//! [`NewGroup`](crate::store::NewGroup) records.
//!
//! The HTTP API creates users and groups in batches from a JSON array or a
//! CSV body ([`parse_users`], [`parse_groups`]); import jobs stream a CSV or
//! JSON-lines file of any size through an [`ItemStream`]. Both give one
//! [`ParsedItem`] per input item, in input order: a bad item is an
//! [`ItemError`] on that item only, while a body that cannot be read at all
//! (broken JSON, a bad CSV header, too many items) is a [`BodyError`] and
//! nothing of it is stored.
//!
//! # Layout
//!
//! * [`input`]: [`UserInput`], [`GroupInput`], [`RecordLimits`]: what a
//!   caller sends, and the rules that turn it into a stored record.
//! * [`item`]: [`RecordInput`], how the readers build either input, and
//!   the item each reader yields.
//! * [`fields`]: the rules for names, avatar URLs and metadata.
//! * `csv_scan`: physical line numbers and unclosed quotes under the CSV
//!   parser.
//! * [`csv_rows`]: CSV headers and rows → inputs; [`cells`]: one cell as a
//!   field (present, a `;` list, a JSON object).
//! * [`stream`]: [`ItemStream`], item by item over any reader (CSV, JSON
//!   lines), with constant memory.
//! * [`lines`]: JSON lines with a bounded line buffer.
//! * [`merge`]: a stored record with only the fields an item gave
//!   changed ([`Given`]).
//! * [`parse`]: [`parse_users`], [`parse_groups`]: a whole request body
//!   (JSON array, CSV, JSON lines), bounded by an item count.
//!
//! ```
//! use tokenim_gateway::import::{parse_users, Format, RecordLimits};
//! let body = br#"[{"id": "alice"}, {"id": "bad id"}, {"id": "alice"}]"#;
//! let items = parse_users(body, Format::Json, 100, &RecordLimits::default(), 0).unwrap();
//! assert_eq!(items[0].result.as_ref().unwrap().name, "alice");
//! assert_eq!(items[1].result.as_ref().unwrap_err().code.name(), "invalid_user");
//! assert_eq!(items[2].result.as_ref().unwrap_err().code.name(), "duplicate_item");
//! ```

pub mod cells;
pub mod csv_rows;
mod csv_scan;
pub mod fields;
pub mod input;
pub mod item;
pub mod lines;
pub mod merge;
pub mod parse;
pub mod stream;

use tokenim_protocol::{ErrorBody, ErrorCode};

pub use self::input::{GroupInput, RecordLimits, UserInput};
pub use self::item::{Given, RecordInput};
pub use self::parse::{parse_groups, parse_items, parse_users};
pub use self::stream::{GroupStream, ItemStream, UserStream};

/// Why one item of a batch was refused. The other items are unaffected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ItemError {
    /// [`ErrorCode::InvalidUser`] or [`ErrorCode::InvalidGroup`] for a bad
    /// id, [`ErrorCode::InvalidField`] for any other field (or an item that
    /// cannot be read), [`ErrorCode::DuplicateItem`] for a repeated id.
    pub code: ErrorCode,
    /// What is wrong, naming the field (and for CSV the row).
    pub message: String,
}

impl ItemError {
    /// An error with this code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// [`ErrorCode::InvalidField`]: "field `{field}`: {problem}".
    pub fn field(field: &str, problem: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::InvalidField,
            format!("field `{field}`: {problem}"),
        )
    }

    /// The same error with `context` (e.g. "row 3 (line 5)") in front.
    pub fn at(mut self, context: impl std::fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The error as it appears in a batch result.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code, self.message.clone())
    }
}

/// Why a whole body was refused: nothing of it is stored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyError {
    /// The body cannot be read as the format it claims (broken JSON, not
    /// an array, a bad CSV header). The message says where (line and
    /// column, or row). Fix the body and send it again.
    #[error("{0}")]
    Invalid(String),
    /// The body holds more than `limit` items. Split it into batches of at
    /// most `limit`, or import it as a job.
    #[error("too many items: at most {limit} per request; split the batch or import it as a job")]
    TooManyItems {
        /// The most items one request may hold.
        limit: usize,
    },
    /// The input could not be read (an I/O error on an import's spooled
    /// file). Retry the job.
    #[error("could not read the input: {0}")]
    Io(#[from] std::io::Error),
}

impl BodyError {
    /// The stable code: [`ErrorCode::InvalidBody`],
    /// [`ErrorCode::TooManyItems`] or [`ErrorCode::Internal`] (I/O).
    pub fn code(&self) -> ErrorCode {
        match self {
            BodyError::Invalid(_) => ErrorCode::InvalidBody,
            BodyError::TooManyItems { .. } => ErrorCode::TooManyItems,
            BodyError::Io(_) => ErrorCode::Internal,
        }
    }

    /// The error as a reply body.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code(), self.to_string())
    }
}

/// A body's format, chosen from its `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`: one array of objects.
    Json,
    /// `text/csv`: a header row, then one row per item.
    Csv,
    /// `application/x-ndjson` or `application/jsonl`: one object per line.
    JsonLines,
}

impl Format {
    /// The format of a `Content-Type` value, ignoring parameters such as
    /// `; charset=utf-8` and letter case; `None` for any other type.
    ///
    /// ```
    /// use tokenim_gateway::import::Format;
    /// assert_eq!(Format::from_content_type("text/CSV; charset=utf-8"), Some(Format::Csv));
    /// assert_eq!(Format::from_content_type("text/plain"), None);
    /// ```
    pub fn from_content_type(content_type: &str) -> Option<Format> {
        let mime = content_type.split(';').next().unwrap_or("").trim();
        let is = |name: &str| mime.eq_ignore_ascii_case(name);
        if is("application/json") {
            Some(Format::Json)
        } else if is("text/csv") {
            Some(Format::Csv)
        } else if is("application/x-ndjson") || is("application/jsonl") {
            Some(Format::JsonLines)
        } else {
            None
        }
    }
}

/// One item of a body, in input order.
#[derive(Debug, Clone, PartialEq)]
pub struct ParsedItem<T> {
    /// Position in the input, 0-based: the array index (JSON), the data
    /// record (CSV: the header and empty lines are not counted, and a
    /// quoted field spanning lines stays one record), or the non-blank
    /// line (JSON lines: blank lines are not counted).
    pub index: usize,
    /// The item's `id` as written, when it is a readable string (cut to
    /// 128 bytes), even when it is not a valid id.
    pub id: Option<String>,
    /// The fields the item gave (what `mode=merge` changes).
    pub given: Given,
    /// The validated record, or why the item was refused.
    pub result: Result<T, ItemError>,
}

/// The longest id echoed back in [`ParsedItem::id`].
const ID_ECHO_MAX: usize = 128;

/// `id` cut to [`ID_ECHO_MAX`] bytes at a character boundary.
fn echo_id(id: &str) -> String {
    let mut end = id.len().min(ID_ECHO_MAX);
    while !id.is_char_boundary(end) {
        end -= 1;
    }
    id[..end].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_map_to_formats() {
        let cases = [
            ("application/json", Some(Format::Json)),
            ("Application/JSON ; charset=utf-8", Some(Format::Json)),
            ("text/csv;charset=utf-8", Some(Format::Csv)),
            ("application/x-ndjson", Some(Format::JsonLines)),
            ("application/jsonl", Some(Format::JsonLines)),
            ("application/xml", None),
            ("", None),
        ];
        for (ct, want) in cases {
            assert_eq!(Format::from_content_type(ct), want, "{ct}");
        }
    }

    #[test]
    fn errors_carry_their_codes() {
        let e = ItemError::field("name", "too long").at("row 2 (line 3)");
        assert_eq!(e.message, "row 2 (line 3): field `name`: too long");
        assert_eq!(e.body().code, ErrorCode::InvalidField);
        assert_eq!(e.body().name, "invalid_field");
        let b = BodyError::TooManyItems { limit: 10 };
        assert_eq!(b.code(), ErrorCode::TooManyItems);
        assert!(b.to_string().contains("at most 10"), "{b}");
        assert_eq!(
            BodyError::Invalid("x".into()).code(),
            ErrorCode::InvalidBody
        );
    }

    #[test]
    fn echoed_ids_are_bounded() {
        assert_eq!(echo_id("alice"), "alice");
        assert_eq!(echo_id(&"é".repeat(100)).len(), 128);
        assert_eq!(echo_id(&"a".repeat(1000)).len(), 128);
    }
}
