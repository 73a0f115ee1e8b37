//! The persisted part of the effect cache (`defineEffect({ cache: true })`).
//!
//! An effect's output is stored under its name and the SHA-256 of its input's
//! canonical JSON (RFC 8785, made by the façade), with the effect's
//! `version`. A read with another version is a miss; the next write replaces
//! the old entry in place, so an effect whose output schema changed does not
//! accumulate stale rows. The in-memory side (entries stamped with commit
//! generations, commit-gated eviction, backpressure) lives in the façade
//! (`js/src/cache.ts`); see `docs/architecture.md`, capability 8.

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::json::raw_text;
use crate::validate;
use crate::write::Write;
use ts_rs::TS;

/// Largest effect version.
pub const MAX_VERSION: i64 = i32::MAX as i64;

/// `putEffect`: store (or replace) one effect output.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct PutEffectOp {
    /// Effect name (1..=256 bytes, no NUL).
    pub name: String,
    /// Version of the effect's output schema, 0..=[`MAX_VERSION`].
    pub version: i64,
    /// The input's canonical JSON text; only its SHA-256 is stored.
    pub input: String,
    /// Output JSON.
    #[ts(type = "unknown")]
    pub output: Box<RawValue>,
    /// When the output was computed, ms (stored as `created_at`; default
    /// `now`). The façade's `maxAgeMs` counts from it, in memory and here alike.
    #[serde(default)]
    pub at: Option<i64>,
}

/// `deleteEffects`: drop stored outputs, of one effect or of all.
#[derive(Debug, Deserialize, TS)]
#[serde(rename_all = "camelCase")]
#[ts(optional_fields = nullable)]
pub struct DeleteEffectsOp {
    /// Only this effect's outputs; all effects when absent.
    #[serde(default)]
    pub name: Option<String>,
}

/// A stored effect output, as [`get`] returns it. Serialized as
/// `{"version":N,"createdAt":MS,"output":<output verbatim>}`, in this field order: the
/// façade cuts the output's text out of it without parsing it again
/// (pinned by `tests/effects.rs`).
#[derive(Debug, Serialize, TS)]
#[serde(rename_all = "camelCase")]
pub struct StoredEffect {
    /// The version that wrote it.
    pub version: i64,
    /// When it was written (the `now` of its `putEffect`), ms; the façade's
    /// `maxAgeMs` compares against it.
    pub created_at: i64,
    /// Output JSON, verbatim.
    #[ts(type = "unknown")]
    pub output: Box<RawValue>,
}

/// Result of `deleteEffects`.
#[derive(Debug, Serialize, TS)]
pub struct Deleted {
    /// Outputs deleted.
    pub deleted: usize,
}

/// The stored key of an input: SHA-256 of its canonical JSON text (32 bytes).
pub fn key(input: &str) -> [u8; 32] {
    Sha256::digest(input.as_bytes()).into()
}

fn check_version(version: i64) -> Result<()> {
    if !(0..=MAX_VERSION).contains(&version) {
        return Err(Error::invalid(format!(
            "effect version must be an integer in 0..={MAX_VERSION}, got {version}"
        )));
    }
    Ok(())
}

/// Applies `putEffect`: an upsert on `(name, key)`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad name, version or time; an SQLite error
/// if the write fails.
pub fn put(w: &mut Write<'_>, o: &PutEffectOp) -> Result<()> {
    let c = w.conn();
    let at = o.at.unwrap_or(w.now());
    validate::time("at", at)?;
    validate::name("effect name", &o.name)?;
    check_version(o.version)?;
    c.prepare_cached(
        "INSERT INTO effects (name, key, version, output, created_at) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name, key) DO UPDATE SET version = excluded.version,
             output = excluded.output, created_at = excluded.created_at",
    )?
    .execute(params![
        o.name,
        &key(&o.input)[..],
        o.version,
        o.output.get(),
        at
    ])?;
    Ok(())
}

/// Applies `deleteEffects`.
///
/// # Errors
/// [`Error::InvalidInput`] for a bad name or time; an SQLite error if the
/// write fails.
pub fn delete(w: &mut Write<'_>, o: &DeleteEffectsOp) -> Result<Deleted> {
    let c = w.conn();
    let deleted = match &o.name {
        Some(name) => {
            validate::name("effect name", name)?;
            c.prepare_cached("DELETE FROM effects WHERE name = ?1")?
                .execute([name])?
        }
        None => c.execute("DELETE FROM effects", [])?,
    };
    Ok(Deleted { deleted })
}

/// The stored output of effect `name` for the canonical input `input`, of
/// whatever version wrote it (the caller compares versions). One primary-key
/// seek.
///
/// # Errors
/// An SQLite error if the read fails; [`Error::Corrupt`] if the stored output
/// is not JSON.
pub fn get(c: &Connection, name: &str, input: &str) -> Result<Option<StoredEffect>> {
    let row: Option<(i64, i64, String)> = c
        .prepare_cached(
            "SELECT version, created_at, output FROM effects WHERE name = ?1 AND key = ?2",
        )?
        .query_row(params![name, &key(input)[..]], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })
        .optional()?;
    row.map(|(version, created_at, output)| {
        Ok(StoredEffect {
            version,
            created_at,
            output: raw_text(output)?,
        })
    })
    .transpose()
}
