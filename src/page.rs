//! Pages and cursors shared by every `list*` read: page sizes and the
//! id cursor format.

use crate::error::{Error, Result};

/// Default page size of `listRuns`, `listBatches` and `listAlarms`.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 1000;

/// A page size: `None` is [`DEFAULT_LIMIT`]; else 1 ..= [`MAX_LIMIT`].
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn check_limit(limit: Option<i64>) -> Result<i64> {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Error::invalid(format!(
            "limit must be between 1 and {MAX_LIMIT}, got {limit}"
        )));
    }
    Ok(limit)
}

/// A pagination cursor: an id (36 characters of hex digits and `-`) from
/// an earlier page of `what`.
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn check_cursor(cur: &str, what: &str) -> Result<()> {
    if cur.len() != 36 || !cur.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-') {
        return Err(Error::invalid(format!(
            "cursor is not one returned by {what}"
        )));
    }
    Ok(())
}
