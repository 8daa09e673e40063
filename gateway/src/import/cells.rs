//! Reading one CSV cell as a field of a user or a group: present, a
//! `;`-separated list, or a JSON object. What a row's cells mean is each
//! input type's ([`super::item::RecordInput::from_cells`]).

use std::fmt::Display;

use serde_json::Value;

use super::ItemError;
use crate::store::Metadata;

/// A cell that must be present.
pub(crate) fn required(field: &str, cell: Option<&str>) -> Result<String, ItemError> {
    cell.map(str::to_owned)
        .ok_or_else(|| ItemError::field(field, "missing"))
}

/// A `;`-separated list; entries are trimmed and empty ones skipped.
pub(crate) fn cell_list<T, E: Display>(
    field: &str,
    cell: Option<&str>,
    parse: impl Fn(&str) -> Result<T, E>,
) -> Result<Vec<T>, ItemError> {
    cell.into_iter()
        .flat_map(|c| c.split(';'))
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| parse(entry).map_err(|e| ItemError::field(field, e)))
        .collect()
}

/// A JSON object's text; absent means empty.
pub(crate) fn cell_metadata(cell: Option<&str>) -> Result<Metadata, ItemError> {
    let Some(text) = cell else {
        return Ok(Metadata::new());
    };
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(ItemError::field("metadata", "must be a JSON object")),
        Err(e) => Err(ItemError::field(
            "metadata",
            format_args!("not valid JSON: {e}"),
        )),
    }
}
