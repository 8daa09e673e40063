//! [`RecordInput`]: what the readers need from [`UserInput`] and
//! [`GroupInput`], so that CSV rows, JSON values and JSON lines become
//! either input the same way.

use serde::de::DeserializeOwned;
use serde_json::Value;
use tokenim_auth::RoleName;
use tokenim_protocol::{ErrorCode, UserId};

use super::cells::{cell_list, cell_metadata, required};
use super::input::{GroupInput, RecordLimits, UserInput};
use super::{ItemError, echo_id};
use crate::store::{NewGroup, User};

/// An input that a batch item is read into: [`UserInput`] or
/// [`GroupInput`]. The parsers and [`super::ItemStream`] are generic over
/// it.
pub trait RecordInput: DeserializeOwned + Sized {
    /// The validated record.
    type Record;
    /// The CSV columns, `id` first.
    const COLUMNS: [&'static str; 5];
    /// Builds the input from CSV cells in [`Self::COLUMNS`] order (`None`:
    /// an empty cell or a missing column).
    fn from_cells(cells: [Option<&str>; 5]) -> Result<Self, ItemError>;
    /// Validates the input (the type's `validate`).
    fn into_record(self, now_ms: u64, limits: &RecordLimits) -> Result<Self::Record, ItemError>;
}

impl RecordInput for UserInput {
    type Record = User;
    const COLUMNS: [&'static str; 5] = ["id", "name", "avatar_url", "roles", "metadata"];

    fn from_cells(
        [id, name, avatar_url, roles, metadata]: [Option<&str>; 5],
    ) -> Result<Self, ItemError> {
        Ok(Self {
            id: required("id", id)?,
            name: name.map(str::to_owned),
            avatar_url: avatar_url.map(str::to_owned),
            roles: cell_list("roles", roles, RoleName::new)?,
            metadata: cell_metadata(metadata)?,
        })
    }

    fn into_record(self, now_ms: u64, limits: &RecordLimits) -> Result<User, ItemError> {
        self.validate(now_ms, limits)
    }
}

impl RecordInput for GroupInput {
    type Record = NewGroup;
    const COLUMNS: [&'static str; 5] = ["id", "name", "owner", "members", "metadata"];

    fn from_cells(
        [id, name, owner, members, metadata]: [Option<&str>; 5],
    ) -> Result<Self, ItemError> {
        let owner = owner
            .map(UserId::new)
            .transpose()
            .map_err(|e| ItemError::field("owner", e))?;
        Ok(Self {
            id: required("id", id)?,
            name: name.map(str::to_owned),
            owner,
            members: cell_list("members", members, UserId::new)?,
            metadata: cell_metadata(metadata)?,
        })
    }

    fn into_record(self, now_ms: u64, limits: &RecordLimits) -> Result<NewGroup, ItemError> {
        self.validate(now_ms, limits)
    }
}

/// Which of an item's fields ([`RecordInput::COLUMNS`]) it gave, and which
/// of those it gave as `null`: what a batch in `mode=merge` changes. A CSV
/// cell left empty is not given; a JSON field is given when its key is
/// there, whatever its value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    present: u8,
    null: u8,
}

impl Given {
    /// Every field given, none `null` (a record written whole).
    pub const ALL: Given = Given {
        present: 0b1_1111,
        null: 0,
    };

    /// The fields of a JSON object that are among `columns`.
    pub fn of_object(map: &serde_json::Map<String, Value>, columns: &[&str; 5]) -> Given {
        let mut given = Given::default();
        for (i, column) in columns.iter().enumerate() {
            if let Some(value) = map.get(*column) {
                given.present |= 1 << i;
                if value.is_null() {
                    given.null |= 1 << i;
                }
            }
        }
        given
    }

    /// The CSV cells that are not empty.
    pub fn of_cells(cells: &[Option<&str>; 5]) -> Given {
        let mut given = Given::default();
        for (i, cell) in cells.iter().enumerate() {
            if cell.is_some() {
                given.present |= 1 << i;
            }
        }
        given
    }

    /// Whether column `i` (of [`RecordInput::COLUMNS`]) was given.
    pub fn has(self, i: usize) -> bool {
        self.present & (1 << i) != 0
    }

    /// Whether column `i` was given as `null`.
    pub fn is_null(self, i: usize) -> bool {
        self.null & (1 << i) != 0
    }
}

/// One item as read: where it is, its id as written, the fields it gave,
/// and the input or why it cannot be read.
pub(crate) struct Next<I> {
    /// Where the item is, e.g. "row 3 (line 5)" or "line 7".
    pub(crate) at: String,
    /// Its id as written, when readable.
    pub(crate) id: Option<String>,
    /// The fields it gave.
    pub(crate) given: Given,
    /// The input, not yet validated.
    pub(crate) input: Result<I, ItemError>,
}

/// Reads one JSON item: its id as written (when a string), the fields it
/// gave and the input, or why it cannot be read (not an object, a wrong
/// field type, an unknown field).
pub(crate) fn from_json<I: RecordInput>(
    value: Value,
) -> (Option<String>, Given, Result<I, ItemError>) {
    let Value::Object(map) = value else {
        let found = match value {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        let e = ItemError::new(
            ErrorCode::InvalidField,
            format!("item is {found}, expected a JSON object"),
        );
        return (None, Given::default(), Err(e));
    };
    let id = map.get("id").and_then(Value::as_str).map(echo_id);
    let given = Given::of_object(&map, &I::COLUMNS);
    let input = I::deserialize(Value::Object(map))
        .map_err(|e| ItemError::new(ErrorCode::InvalidField, e.to_string()));
    (id, given, input)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_are_echoed_even_when_the_item_is_bad() {
        let (id, _, input) = from_json::<UserInput>(json!({"id": "alice", "name": 1}));
        assert_eq!(id.as_deref(), Some("alice"));
        assert!(input.is_err());
        assert_eq!(from_json::<UserInput>(json!({"id": 1})).0, None);
    }

    #[test]
    fn given_fields_are_the_keys_present_or_the_cells_filled() {
        let (_, given, _) =
            from_json::<UserInput>(json!({"id": "a", "roles": ["x"], "avatar_url": null}));
        let has: Vec<bool> = (0..5).map(|i| given.has(i)).collect();
        assert_eq!(has, [true, false, true, true, false]);
        assert!(given.is_null(2) && !given.is_null(3));
        let given = Given::of_cells(&[Some("a"), None, None, Some("x"), None]);
        assert!(given.has(0) && !given.has(1) && given.has(3) && !given.is_null(3));
        assert!((0..5).all(|i| Given::ALL.has(i) && !Given::ALL.is_null(i)));
    }

    #[test]
    fn csv_cells_build_inputs() {
        let g = GroupInput::from_cells([
            Some("g"),
            None,
            Some("bob"),
            Some("amy; bob"),
            Some(r#"{"x":true}"#),
        ])
        .unwrap();
        assert_eq!(g.owner.as_ref().map(UserId::as_str), Some("bob"));
        assert_eq!(g.members.len(), 2);
        assert_eq!(g.metadata["x"], true);
        let e = GroupInput::from_cells([Some("g"), None, Some("b c"), None, None]).unwrap_err();
        assert!(e.message.starts_with("field `owner`"), "{}", e.message);
        let u =
            UserInput::from_cells([Some("u"), Some("U"), Some("http://a"), None, None]).unwrap();
        assert_eq!(u.validate(0, &RecordLimits::default()).unwrap().name, "U");
    }
}
