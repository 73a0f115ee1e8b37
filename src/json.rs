//! JSON helpers shared by every layer: stored JSON text back as a
//! [`RawValue`] (user values stay verbatim, never re-serialized) and
//! results as raw values.

use crate::error::{Error, Result};
use serde_json::value::RawValue;

/// Stored JSON text back as a raw value, without re-serializing it.
///
/// # Errors
/// [`Error::Corrupt`] if the text does not parse (the file was changed by
/// something other than durq).
pub fn raw_text(s: String) -> Result<Box<RawValue>> {
    RawValue::from_string(s).map_err(|e| {
        Error::Corrupt(format!(
            "a stored JSON value does not parse ({e}); was the file edited by hand?"
        ))
    })
}

/// [`raw_text`] inside a row mapper (`DURQ_CORRUPT` as a `rusqlite::Error`).
pub fn raw_column(s: String) -> rusqlite::Result<Box<RawValue>> {
    raw_text(s).map_err(Error::corrupt_row)
}

/// [`raw_column`] of a nullable column.
pub fn raw_column_opt(v: Option<String>) -> rusqlite::Result<Option<Box<RawValue>>> {
    v.map(raw_column).transpose()
}
