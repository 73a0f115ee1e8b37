//! Validation of caller-supplied names, labels and times.
//!
//! Limits are durq's own choices, picked to keep index entries small and to
//! keep user text out of anything structural; they are checked in Rust even
//! though the TypeScript façade checks them first, so a direct caller of the
//! core gets the same guarantees.

use crate::error::{Error, Result};
use std::collections::BTreeMap;

/// Longest job, queue, step, idempotency or concurrency key name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest label key, in bytes; keys use `[A-Za-z0-9_.:/-]`.
pub const MAX_LABEL_KEY_BYTES: usize = 64;
/// Longest label value, in bytes.
pub const MAX_LABEL_VALUE_BYTES: usize = 256;
/// Most labels on one run.
pub const MAX_LABELS: usize = 32;
/// Largest accepted time, ms since the epoch: 2^48 - 1 (year 10889), the
/// largest a UUIDv7's 48-bit timestamp holds (RFC 9562 §5.7). Run ids are
/// made from `now`, so a larger clock value would wrap them.
pub const MAX_TIME_MS: i64 = (1 << 48) - 1;
/// Largest delay or lease in ms: 2^31 - 1 (about 24.8 days), the largest
/// `setTimeout` delay (HTML standard, timer initialisation steps).
pub const MAX_DELAY_MS: i64 = i32::MAX as i64;

/// A non-empty name of at most [`MAX_NAME_BYTES`] bytes without NUL.
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` otherwise.
pub fn name(what: &str, v: &str) -> Result<()> {
    if v.is_empty() {
        return Err(Error::invalid(format!("{what} must not be empty")));
    }
    if v.len() > MAX_NAME_BYTES {
        return Err(Error::invalid(format!(
            "{what} is {} bytes; the limit is {MAX_NAME_BYTES}",
            v.len()
        )));
    }
    if v.contains('\0') {
        return Err(Error::invalid(format!(
            "{what} must not contain NUL characters"
        )));
    }
    Ok(())
}

/// A time in ms since the epoch: 0 ..= [`MAX_TIME_MS`].
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` otherwise.
pub fn time(what: &str, v: i64) -> Result<()> {
    if !(0..=MAX_TIME_MS).contains(&v) {
        return Err(Error::invalid(format!(
            "{what} must be a time in ms since the Unix epoch between 0 and {MAX_TIME_MS}, got {v}"
        )));
    }
    Ok(())
}

/// A duration in ms: 1 ..= [`MAX_DELAY_MS`].
///
/// # Errors
/// [`Error::InvalidInput`] naming `what` otherwise.
pub fn duration(what: &str, v: i64) -> Result<()> {
    if !(1..=MAX_DELAY_MS).contains(&v) {
        return Err(Error::invalid(format!(
            "{what} must be between 1 and {MAX_DELAY_MS} ms, got {v}"
        )));
    }
    Ok(())
}

/// Labels: at most [`MAX_LABELS`]; keys of 1..=64 bytes from
/// `[A-Za-z0-9_.:/-]`; values of at most 256 bytes without NUL.
///
/// # Errors
/// [`Error::InvalidInput`] naming the first offending label.
pub fn labels(labels: &BTreeMap<String, String>) -> Result<()> {
    if labels.len() > MAX_LABELS {
        return Err(Error::invalid(format!(
            "a run has at most {MAX_LABELS} labels, got {}",
            labels.len()
        )));
    }
    for (k, v) in labels {
        label_key(k)?;
        if v.len() > MAX_LABEL_VALUE_BYTES {
            return Err(Error::invalid(format!(
                "label {k:?} value is {} bytes; the limit is {MAX_LABEL_VALUE_BYTES}",
                v.len()
            )));
        }
        if v.contains('\0') {
            return Err(Error::invalid(format!(
                "label {k:?} value must not contain NUL characters"
            )));
        }
    }
    Ok(())
}

/// A label key: 1..=64 bytes of `[A-Za-z0-9_.:/-]`.
///
/// # Errors
/// [`Error::InvalidInput`] otherwise.
pub fn label_key(k: &str) -> Result<()> {
    let ok = !k.is_empty()
        && k.len() <= MAX_LABEL_KEY_BYTES
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'/' | b'-'));
    if !ok {
        return Err(Error::invalid(format!(
            "label key {k:?} is invalid: use 1 to {MAX_LABEL_KEY_BYTES} characters from A-Z a-z 0-9 _ . : / -"
        )));
    }
    Ok(())
}
