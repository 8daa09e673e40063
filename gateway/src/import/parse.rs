//! [`parse_users`], [`parse_groups`]: a whole request body → one
//! [`ParsedItem`] per item, in input order.
//!
//! A body holds at most `max_items` items: reading stops at item
//! `max_items + 1` and the whole body fails with
//! [`BodyError::TooManyItems`]. Within a body, an id seen before makes
//! that later item [`ErrorCode::DuplicateItem`](tokenim_protocol::ErrorCode)
//! (the first occurrence is the one processed, even if it was refused).
//!
//! JSON bodies are one array of objects, read element by element: broken
//! JSON or a non-array fails the body (the message gives serde_json's line
//! and column), while an element that is not an object or has a wrong
//! field is an item error. CSV and JSON-lines bodies go through the same
//! reader as import jobs ([`ItemStream`]).

use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer as _, SeqAccess, Visitor};
use serde_json::Value;

use super::input::{GroupInput, RecordLimits, UserInput};
use super::item::{RecordInput, from_json};
use super::stream::{ItemStream, Seen};
use super::{BodyError, Format, ParsedItem};
use crate::store::{NewGroup, User};

/// Parses a body of users.
///
/// ```
/// use tokenim_gateway::import::{parse_users, BodyError, Format, RecordLimits};
/// let csv = b"id,roles\nalice,admin;mod\n";
/// let items = parse_users(csv, Format::Csv, 10, &RecordLimits::default(), 0).unwrap();
/// assert_eq!(items[0].result.as_ref().unwrap().roles.len(), 2);
/// let err = parse_users(b"[{}, {}]", Format::Json, 1, &RecordLimits::default(), 0).unwrap_err();
/// assert!(matches!(err, BodyError::TooManyItems { limit: 1 }));
/// ```
pub fn parse_users(
    body: &[u8],
    format: Format,
    max_items: usize,
    limits: &RecordLimits,
    now_ms: u64,
) -> Result<Vec<ParsedItem<User>>, BodyError> {
    parse_items::<UserInput>(body, format, max_items, limits, now_ms)
}

/// Parses a body of groups.
///
/// ```
/// use tokenim_gateway::import::{parse_groups, Format, RecordLimits};
/// let body = b"{\"id\": \"team\", \"owner\": \"bob\", \"members\": [\"amy\", \"amy\"]}\n";
/// let items = parse_groups(body, Format::JsonLines, 10, &RecordLimits::default(), 0).unwrap();
/// let members: Vec<&str> = items[0].result.as_ref().unwrap().members.iter().map(|m| m.as_str()).collect();
/// assert_eq!(members, ["amy", "bob"]);
/// ```
pub fn parse_groups(
    body: &[u8],
    format: Format,
    max_items: usize,
    limits: &RecordLimits,
    now_ms: u64,
) -> Result<Vec<ParsedItem<NewGroup>>, BodyError> {
    parse_items::<GroupInput>(body, format, max_items, limits, now_ms)
}

/// Parses a body of any [`RecordInput`]: what [`parse_users`] and
/// [`parse_groups`] do.
pub fn parse_items<I: RecordInput>(
    body: &[u8],
    format: Format,
    max_items: usize,
    limits: &RecordLimits,
    now_ms: u64,
) -> Result<Vec<ParsedItem<I::Record>>, BodyError> {
    if format == Format::Json {
        return parse_json_array::<I>(body, max_items, limits, now_ms);
    }
    let stream = ItemStream::<_, I>::new(body, format, limits, now_ms)?.check_duplicates();
    let mut items = Vec::new();
    for item in stream {
        if items.len() == max_items {
            return Err(BodyError::TooManyItems { limit: max_items });
        }
        items.push(item?);
    }
    Ok(items)
}

fn parse_json_array<I: RecordInput>(
    body: &[u8],
    max_items: usize,
    limits: &RecordLimits,
    now_ms: u64,
) -> Result<Vec<ParsedItem<I::Record>>, BodyError> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let too_many = Cell::new(false);
    let visitor = Elements::<I> {
        max_items,
        limits,
        now_ms,
        too_many: &too_many,
        input: PhantomData,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    let result = de
        .deserialize_seq(visitor)
        .and_then(|items| de.end().map(|()| items));
    match result {
        Ok(items) => Ok(items),
        Err(_) if too_many.get() => Err(BodyError::TooManyItems { limit: max_items }),
        Err(e) => Err(BodyError::Invalid(format!("invalid JSON body: {e}"))),
    }
}

/// Reads the array element by element, validating each as it comes, and
/// stops (with an error; `too_many` says why) at element `max_items + 1`.
struct Elements<'a, I> {
    max_items: usize,
    limits: &'a RecordLimits,
    now_ms: u64,
    too_many: &'a Cell<bool>,
    input: PhantomData<fn() -> I>,
}

impl<'de, I: RecordInput> Visitor<'de> for Elements<'_, I> {
    type Value = Vec<ParsedItem<I::Record>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        let mut seen = Seen::default();
        while let Some(value) = seq.next_element::<Value>()? {
            if items.len() == self.max_items {
                self.too_many.set(true);
                return Err(de::Error::custom("too many items"));
            }
            let (id, given, input) = from_json::<I>(value);
            let result = input.and_then(|i| i.into_record(self.now_ms, self.limits));
            let mut item = ParsedItem {
                index: items.len(),
                id,
                given,
                result,
            };
            seen.check(&mut item);
            items.push(item);
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use tokenim_protocol::ErrorCode;

    use super::*;
    use crate::import::ItemError;

    fn users(
        body: &[u8],
        format: Format,
        max_items: usize,
    ) -> Result<Vec<ParsedItem<User>>, BodyError> {
        parse_users(body, format, max_items, &RecordLimits::default(), 1)
    }

    fn csv(body: &str) -> Vec<ParsedItem<User>> {
        users(body.as_bytes(), Format::Csv, 100).unwrap()
    }

    fn names(items: &[ParsedItem<User>]) -> Vec<&str> {
        items
            .iter()
            .map(|i| i.result.as_ref().unwrap().name.as_str())
            .collect()
    }

    fn error(item: &ParsedItem<User>) -> &ItemError {
        item.result.as_ref().unwrap_err()
    }

    #[test]
    fn json_items_come_back_in_order_with_indexes() {
        let items = users(
            br#"[{"id": "a"}, {"id": "b", "name": "B"}]"#,
            Format::Json,
            10,
        )
        .unwrap();
        assert_eq!(names(&items), ["a", "B"]);
        assert_eq!(items[1].index, 1);
        assert_eq!(items[1].id.as_deref(), Some("b"));
        assert!(
            users(b"\xef\xbb\xbf[]", Format::Json, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn exactly_the_limit_is_fine_and_one_over_fails_whole() {
        let body = |n: usize| {
            let items: Vec<String> = (0..n).map(|i| format!(r#"{{"id":"u{i}"}}"#)).collect();
            format!("[{}]", items.join(","))
        };
        assert_eq!(users(body(3).as_bytes(), Format::Json, 3).unwrap().len(), 3);
        let e = users(body(4).as_bytes(), Format::Json, 3).unwrap_err();
        assert!(matches!(e, BodyError::TooManyItems { limit: 3 }), "{e}");
        assert_eq!(e.code(), ErrorCode::TooManyItems);
        // Reading stops at item limit + 1: what follows is never parsed.
        let e = users(
            br#"[{"id":"a"},{"id":"b"},{"id":"c"}, broken"#,
            Format::Json,
            2,
        )
        .unwrap_err();
        assert!(matches!(e, BodyError::TooManyItems { limit: 2 }), "{e}");
        let rows = |n: usize| (0..n).fold("id\n".to_owned(), |s, i| format!("{s}u{i}\n"));
        assert_eq!(users(rows(3).as_bytes(), Format::Csv, 3).unwrap().len(), 3);
        let e = users(rows(4).as_bytes(), Format::Csv, 3).unwrap_err();
        assert!(matches!(e, BodyError::TooManyItems { limit: 3 }), "{e}");
        let lines =
            |n: usize| (0..n).fold(String::new(), |s, i| format!("{s}{{\"id\":\"u{i}\"}}\n"));
        assert_eq!(
            users(lines(3).as_bytes(), Format::JsonLines, 3)
                .unwrap()
                .len(),
            3
        );
        let e = users(lines(4).as_bytes(), Format::JsonLines, 3).unwrap_err();
        assert!(matches!(e, BodyError::TooManyItems { limit: 3 }), "{e}");
    }

    #[test]
    fn a_repeated_id_is_a_duplicate_and_the_first_is_kept() {
        for (body, format) in [
            (
                &br#"[{"id":"a","name":"first"},{"id":"b"},{"id":"a","name":"second"}]"#[..],
                Format::Json,
            ),
            (b"id,name\na,first\nb,\na,second\n", Format::Csv),
            (
                b"{\"id\":\"a\",\"name\":\"first\"}\n{\"id\":\"b\"}\n{\"id\":\"a\"}\n",
                Format::JsonLines,
            ),
        ] {
            let items = users(body, format, 10).unwrap();
            assert_eq!(
                items[0].result.as_ref().unwrap().name,
                "first",
                "{format:?}"
            );
            assert!(items[1].result.is_ok());
            let e = error(&items[2]);
            assert_eq!(e.code, ErrorCode::DuplicateItem, "{format:?}");
            assert!(e.message.contains("(item 0)"), "{}", e.message);
            assert_eq!(items[2].id.as_deref(), Some("a"));
        }
        // The first occurrence counts even when it was refused.
        let items = users(br#"[{"id":"a","name":""},{"id":"a"}]"#, Format::Json, 10).unwrap();
        assert_eq!(error(&items[0]).code, ErrorCode::InvalidField);
        assert_eq!(error(&items[1]).code, ErrorCode::DuplicateItem);
    }

    #[test]
    fn json_body_errors_say_where() {
        for (body, want) in [
            (&b"[{\"id\": \"a\"},\n {\"id\": }]"[..], "line 2 column"),
            (
                b"{\"id\": \"a\"}",
                "expected a JSON array of objects at line 1 column",
            ),
            (b"", "EOF while parsing"),
            (b"[] []", "trailing characters at line 1 column 4"),
        ] {
            let e = users(body, Format::Json, 10).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidBody);
            assert!(e.to_string().contains(want), "{e}");
        }
    }

    #[test]
    fn json_non_object_elements_are_item_errors() {
        let items = users(
            br#"[{"id":"a"}, 5, "b", null, {"id":"c","x":1}]"#,
            Format::Json,
            10,
        )
        .unwrap();
        assert_eq!(items.len(), 5);
        assert!(items[0].result.is_ok());
        for (i, found) in [(1, "a number"), (2, "a string"), (3, "null")] {
            let e = error(&items[i]);
            assert_eq!(e.code, ErrorCode::InvalidField);
            assert!(e.message.contains(found), "{}", e.message);
        }
        assert!(error(&items[4]).message.contains("unknown field `x`"));
    }

    #[test]
    fn csv_handles_bom_crlf_and_empty_lines() {
        let items = csv("\u{feff}Id , NAME\r\na,A\r\n\r\n\r\nb,B\r\n\nc,C");
        assert_eq!(names(&items), ["A", "B", "C"]);
        let indexes: Vec<_> = items.iter().map(|i| i.index).collect();
        assert_eq!(indexes, [0, 1, 2], "empty lines are not items");
    }

    #[test]
    fn csv_quoted_fields_hold_commas_quotes_and_newlines() {
        let body = "id,name,metadata\n\
                    a,\"Smith, Ann\",\"{\"\"k\"\": \"\"v,w\"\"}\"\n\
                    b,\"Bob \"\"B\"\"\",\"{\n\"\"n\"\": 1\n}\"\n\
                    c,\"two\nlines\",\n\
                    d,D,\n";
        let items = csv(body);
        assert_eq!(items.len(), 4);
        assert_eq!(items[0].result.as_ref().unwrap().metadata["k"], "v,w");
        assert_eq!(items[0].result.as_ref().unwrap().name, "Smith, Ann");
        assert_eq!(items[1].result.as_ref().unwrap().name, "Bob \"B\"");
        assert_eq!(items[1].result.as_ref().unwrap().metadata["n"], 1);
        // The quoted newline stays in the cell (and a name may not hold one).
        let e = error(&items[2]);
        assert!(
            e.message.starts_with("row 2 (line 6): field `name`"),
            "{}",
            e.message
        );
        assert_eq!((items[3].index, items[3].id.as_deref()), (3, Some("d")));
        assert_eq!(items[3].result.as_ref().unwrap().name, "D");
    }

    #[test]
    fn csv_bad_rows_are_item_errors_saying_the_row() {
        let body = b"id,name\na,A\nb,\xff\xfe\nc,C,extra\nd\ne,E\n";
        let items = users(body, Format::Csv, 10).unwrap();
        assert_eq!(items.len(), 5);
        let utf8 = error(&items[1]);
        assert_eq!(utf8.code, ErrorCode::InvalidField);
        assert_eq!(
            utf8.message,
            "row 1 (line 3): column `name` is not valid UTF-8"
        );
        assert_eq!(items[1].id.as_deref(), Some("b"));
        assert!(
            error(&items[2])
                .message
                .contains("row 2 (line 4): 3 fields, the header has 2")
        );
        assert!(
            error(&items[3])
                .message
                .contains("row 3 (line 5): 1 field, the header has 2")
        );
        assert!(items[0].result.is_ok() && items[4].result.is_ok());
        let items = csv("id,avatar_url\nok,ftp://x\n");
        assert!(
            error(&items[0])
                .message
                .starts_with("row 0 (line 2): field `avatar_url`")
        );
    }

    #[test]
    fn csv_line_numbers_are_physical_lines_for_lf_crlf_and_quoted_newlines() {
        for body in [
            "id,name\nlc-1,A\n,B\n",
            "id,name\r\nlc-1,A\r\n,B\r\n",
            "id,name\r\nlc-1,A\r\n\r\n,B\r\n",
            "id,name\nlc-1,\"A\nB\"\n,B\n",
        ] {
            let items = csv(body);
            let want = if body.contains("\r\n\r\n") || body.contains("\"A") {
                "row 1 (line 4)"
            } else {
                "row 1 (line 3)"
            };
            assert!(
                error(&items[1]).message.starts_with(want),
                "{body:?}: {:?}",
                error(&items[1])
            );
        }
    }

    #[test]
    fn an_unclosed_quote_fails_the_whole_body_with_its_line() {
        let e = users(b"id,name\nsb-1,A\nsb-2,\"B\nsb-3,C\n", Format::Csv, 10).unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains("line 3") && message.contains("never closed"),
            "{message}"
        );
        // In the header too.
        let e = users(b"id,\"name\na,A\n", Format::Csv, 10).unwrap_err();
        assert!(e.to_string().contains("line 1"), "{e}");
        // A quote inside an unquoted field is a character like any other.
        let items = csv("id,name\na,5'10\"\n");
        assert_eq!(names(&items), ["5'10\""]);
    }

    #[test]
    fn csv_header_problems_fail_the_body() {
        for (body, want) in [
            ("", "no header row"),
            ("\n\n", "no header row"),
            ("id,email\na,b\n", "unknown column `email`"),
            ("name\nA\n", "no `id` column"),
        ] {
            let e = users(body.as_bytes(), Format::Csv, 10).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidBody);
            assert!(e.to_string().contains(want), "{body:?}: {e}");
        }
        let e =
            parse_groups(b"id,roles\n", Format::Csv, 10, &RecordLimits::default(), 0).unwrap_err();
        assert!(e.to_string().contains("unknown column `roles`"), "{e}");
    }

    #[test]
    fn csv_groups_read_owner_and_members() {
        let body = b"id,owner,members,name\nteam,bob,amy;cat;amy,Team\n";
        let items = parse_groups(body, Format::Csv, 10, &RecordLimits::default(), 0).unwrap();
        let g = items[0].result.as_ref().unwrap();
        let members: Vec<_> = g.members.iter().map(|m| m.as_str()).collect();
        assert_eq!(members, ["amy", "cat", "bob"]);
        assert_eq!(g.group.name, "Team");
    }

    #[test]
    fn json_lines_skip_blank_lines_and_refuse_bad_lines_alone() {
        let body = b"\xef\xbb\xbf{\"id\":\"a\"}\r\n\n   \n{\"id\": \n[1]\n{\"id\":\"b\"}";
        let items = users(body, Format::JsonLines, 10).unwrap();
        assert_eq!(items.len(), 4);
        assert!(items[0].result.is_ok() && items[3].result.is_ok());
        let broken = error(&items[1]);
        assert_eq!(broken.code, ErrorCode::InvalidField);
        assert!(
            broken.message.starts_with("line 4: not valid JSON: "),
            "{}",
            broken.message
        );
        assert!(
            error(&items[2])
                .message
                .starts_with("line 5: item is an array")
        );
        assert_eq!(items[3].index, 3);
    }
}
