//! CSV headers and rows → inputs.
//!
//! The header row names the columns ([`RecordInput::COLUMNS`]: any order,
//! any subset that includes `id`; names are trimmed and compared without
//! letter case). In a row, an empty cell is an absent field, `roles` and
//! `members` hold `;`-separated entries (each trimmed; empty entries are
//! skipped), and `metadata` holds a JSON object. Rows are byte records so
//! that a row with invalid UTF-8 is an error on that row only.

use std::fmt::Display;

use csv::ByteRecord;
use tokenim_protocol::ErrorCode;

use super::item::{Given, RecordInput};
use super::{BodyError, ItemError, echo_id};

/// Where each of the five known columns sits in a row.
#[derive(Debug, Clone)]
pub(crate) struct Columns {
    /// Position of `COLUMNS[i]` in a row, if the header has it.
    positions: [Option<usize>; 5],
    /// Number of fields in the header (every row must have as many).
    width: usize,
}

impl Columns {
    /// Maps a header row onto `names`. An unknown, unnamed or repeated
    /// column, or no `id` column, fails the whole body.
    pub(crate) fn from_header(header: &ByteRecord, names: &[&str; 5]) -> Result<Self, BodyError> {
        let mut positions = [None; 5];
        for (at, raw) in header.iter().enumerate() {
            let column = at + 1;
            let name = std::str::from_utf8(raw).map_err(|_| {
                invalid(format_args!(
                    "CSV header: column {column} is not valid UTF-8"
                ))
            })?;
            let name = name
                .trim_start_matches('\u{feff}')
                .trim()
                .to_ascii_lowercase();
            if name.is_empty() {
                return Err(invalid(format_args!(
                    "CSV header: column {column} has no name"
                )));
            }
            let Some(known) = names.iter().position(|n| *n == name) else {
                return Err(invalid(format_args!(
                    "CSV header: unknown column `{name}` (column {column}); the columns are {}",
                    names.join(", ")
                )));
            };
            if positions[known].replace(at).is_some() {
                return Err(invalid(format_args!(
                    "CSV header: column `{name}` appears twice"
                )));
            }
        }
        if positions[0].is_none() {
            return Err(invalid("CSV header: no `id` column"));
        }
        Ok(Self {
            positions,
            width: header.len(),
        })
    }

    /// Reads a data row: its id as written (when readable), the cells it
    /// filled and the input, or why the row cannot be read.
    pub(crate) fn read<I: RecordInput>(
        &self,
        row: &ByteRecord,
    ) -> (Option<String>, Given, Result<I, ItemError>) {
        let id = self.positions[0]
            .and_then(|p| row.get(p))
            .and_then(|raw| std::str::from_utf8(raw).ok())
            .filter(|id| !id.is_empty())
            .map(echo_id);
        if row.len() != self.width {
            let e = ItemError::new(
                ErrorCode::InvalidField,
                format!(
                    "{} field{}, the header has {}",
                    row.len(),
                    if row.len() == 1 { "" } else { "s" },
                    self.width
                ),
            );
            return (id, Given::default(), Err(e));
        }
        let mut cells = [None; 5];
        for (i, position) in self.positions.iter().enumerate() {
            let Some(raw) = position.and_then(|p| row.get(p)) else {
                continue;
            };
            match std::str::from_utf8(raw) {
                Ok("") => {}
                Ok(cell) => cells[i] = Some(cell),
                Err(_) => {
                    let e = ItemError::new(
                        ErrorCode::InvalidField,
                        format!("column `{}` is not valid UTF-8", I::COLUMNS[i]),
                    );
                    return (id, Given::default(), Err(e));
                }
            }
        }
        (id, Given::of_cells(&cells), I::from_cells(cells))
    }
}

fn invalid(message: impl Display) -> BodyError {
    BodyError::Invalid(message.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::import::UserInput;

    const NAMES: [&str; 5] = ["id", "name", "avatar_url", "roles", "metadata"];

    fn header(fields: &[&str]) -> Result<Columns, String> {
        Columns::from_header(&ByteRecord::from(fields.to_vec()), &NAMES).map_err(|e| e.to_string())
    }

    #[test]
    fn header_names_are_trimmed_case_free_and_in_any_order() {
        let c = header(&["\u{feff}ID", " Roles ", "name"]).unwrap();
        assert_eq!(c.positions, [Some(0), Some(2), None, Some(1), None]);
        assert_eq!(c.width, 3);
    }

    #[test]
    fn bad_headers_fail_the_body() {
        let cases: [(&[&str], &str); 4] = [
            (&["id", "email"], "unknown column `email`"),
            (&["name"], "no `id` column"),
            (&["id", "ID"], "appears twice"),
            (&["id", ""], "column 2 has no name"),
        ];
        for (fields, want) in cases {
            let e = header(fields).unwrap_err();
            assert!(e.contains(want), "{fields:?}: {e}");
        }
        let bad = ByteRecord::from(vec![&b"id"[..], &b"\xff"[..]]);
        let e = Columns::from_header(&bad, &NAMES).unwrap_err();
        assert!(matches!(e, BodyError::Invalid(m) if m.contains("not valid UTF-8")));
    }

    #[test]
    fn rows_read_cells_lists_and_metadata() {
        let c = header(&["id", "roles", "metadata", "name"]).unwrap();
        let row = ByteRecord::from(vec!["alice", " admin ; ;mod", r#"{"a":1}"#, ""]);
        let (id, _, input) = c.read::<UserInput>(&row);
        assert_eq!(id.as_deref(), Some("alice"));
        let input = input.unwrap();
        assert_eq!(input.name, None);
        let roles: Vec<_> = input.roles.iter().map(|r| r.as_str()).collect();
        assert_eq!(roles, ["admin", "mod"]);
        assert_eq!(input.metadata["a"], 1);
    }

    #[test]
    fn bad_cells_are_item_errors_naming_row_and_field() {
        let c = header(&["id", "roles", "metadata"]).unwrap();
        let cases = [
            (vec!["", "", ""], "field `id`: missing"),
            (
                vec!["a", "Bad Role", ""],
                "field `roles`: invalid role name",
            ),
            (
                vec!["a", "", "[1]"],
                "field `metadata`: must be a JSON object",
            ),
            (vec!["a", "", "{"], "field `metadata`: not valid JSON"),
        ];
        for (fields, want) in cases {
            let (_, _, input) = c.read::<UserInput>(&ByteRecord::from(fields.clone()));
            let e = input.unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField);
            assert!(e.message.contains(want), "{fields:?}: {}", e.message);
        }
    }
}
