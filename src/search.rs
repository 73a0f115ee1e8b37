//! Full-text search over runs (SQLite FTS5, <https://www.sqlite.org/fts5.html>)
//! and the deferral of its index maintenance during bulk imports.
//!
//! The index `runs_fts` is a contentless FTS5 table with delete by rowid,
//! filled from the view `runs_search_text` (schema migration 3). New runs
//! reach it by rowid: every run up to the watermark `meta.fts_indexed_rowid`
//! ([`WATERMARK_KEY`]) is indexed, every run above it is not yet. Changes
//! to runs already indexed are queued by triggers on `runs` (updates of the
//! indexed columns, deletes) in `runs_fts_pending` (migration 5; before it,
//! an insert trigger queued every new run, and its statement journal and
//! queue row cost each insert). Both are indexed in bulk ([`flush_pending`])
//! before a search and by a commit that brings them to [`FLUSH_AT`].
//! A large import ([`crate::transfer`]) instead:
//! 1. [`defer`]: in one transaction, copies the SQL of the installed index
//!    triggers from `sqlite_master` into `meta` (key [`SNAPSHOT_KEY`]),
//!    drops them and sets the flag [`DEFERRED_KEY`];
//! 2. imports;
//! 3. [`restore`]: in one transaction, recreates the triggers from the
//!    snapshot, rebuilds the index and clears the flag and the snapshot.
//!
//! A process that dies between 1 and 3 leaves the flag set; [`crate::Store`]
//! runs [`restore`] at open, before any search. While the flag is set,
//! search fails with `DURQ_SEARCH_STALE`. Each step is idempotent.

use crate::error::{Error, Result};
pub use crate::model::{RunOrder, SearchSyntax};
use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};

/// The schema version (`PRAGMA user_version`) that added the index and its
/// deferral (migration 3 in `crate::schema`).
pub const SINCE_VERSION: i64 = 3;

/// `meta` key of the deferral flag (value `'1'` while set).
pub const DEFERRED_KEY: &str = "fts_deferred";
/// `meta` key of the trigger snapshot: a JSON array of `{name, sql}`.
pub const SNAPSHOT_KEY: &str = "fts_triggers";
/// Rebuilds the index from the runs: empties it, then indexes every run in
/// one `INSERT ... SELECT` over the view `runs_search_text` (one FTS5
/// statement, so FTS5 writes large segments), and empties the queue of
/// rowids waiting for [`flush_pending`].
pub const REBUILD_SQL: &str = "INSERT INTO runs_fts (runs_fts) VALUES ('delete-all');
    INSERT INTO runs_fts (rowid, job, input, output, error, labels)
        SELECT rid, job, input, output, error, labels FROM runs_search_text;
    DELETE FROM runs_fts_pending;
    INSERT OR REPLACE INTO meta (key, value)
        VALUES ('fts_indexed_rowid', (SELECT coalesce(max(rowid), 0) FROM runs));";

/// `meta` key of the watermark: the greatest rowid of `runs` whose run is in
/// the index (or queued for a change); runs above it are indexed by the next
/// [`flush_pending`], by rowid range. A delete lowers it to the greatest
/// rowid left (a new row may then reuse a rowid; see migration 5).
pub const WATERMARK_KEY: &str = "fts_indexed_rowid";

/// The watermark and the greatest rowid of `runs` (0 for none).
fn watermark(c: &Connection) -> Result<(i64, i64)> {
    Ok(c.prepare_cached(
        "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed_rowid'), 0),
                coalesce((SELECT max(rowid) FROM runs), 0)",
    )?
    .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?)
}

/// Runs queued for indexing at which a group commit indexes them itself
/// ([`crate::Store::apply`]); below it they wait for the next search (or
/// the next commit that reaches it). Batching the queue makes FTS5 write
/// fewer, larger segments (less merging), and a run enqueued and finished
/// between two flushes is indexed once, not twice (BENCHMARKS.md).
pub const FLUSH_AT: i64 = 4096;

fn any_pending(c: &Connection) -> Result<bool> {
    if is_deferred(c)? {
        return Ok(false); // the restore rebuilds everything
    }
    let (mark, top) = watermark(c)?;
    Ok(top > mark
        || c.prepare_cached("SELECT 1 FROM runs_fts_pending LIMIT 1")?
            .query_row([], |_| Ok(()))
            .optional()?
            .is_some())
}

/// [`flush_pending`] outside the write queue's transaction, in a small
/// transaction of its own, begun only when the queue is not empty (a search
/// runs this first; [`crate::Store::flush_search_index`] exposes it).
/// Returns the runs indexed.
///
/// # Errors
/// An SQLite error if the write fails (nothing is lost: the queue stays).
pub fn flush_queue(c: &Connection) -> Result<usize> {
    if !any_pending(c)? {
        return Ok(0);
    }
    let tx = c.unchecked_transaction()?;
    let n = flush_pending(&tx)?;
    tx.commit()?;
    Ok(n)
}

/// Runs waiting to be indexed, an upper bound: the queued changes, and the
/// rowids above the watermark (rowids are dense unless runs were deleted; a
/// new run changed since is counted in both). A count of the whole queue
/// is a b-tree count, cheaper than one that filters it, and this runs at
/// every commit ([`FLUSH_AT`]).
///
/// # Errors
/// An SQLite error if the read fails.
pub fn pending(c: &Connection) -> Result<i64> {
    if is_deferred(c)? {
        return Ok(0); // the restore rebuilds everything
    }
    let (mark, top) = watermark(c)?;
    let queued: i64 = c
        .prepare_cached("SELECT count(*) FROM runs_fts_pending")?
        .query_row([], |r| r.get(0))?;
    Ok(queued + (top - mark).max(0))
}

/// Brings the index up to date, on the caller's transaction: removes the
/// index entries of the queued runs that were indexed before (by rowid),
/// re-indexes those of them still at or below the watermark, indexes every
/// run above the watermark (a rowid range of the view), empties the queue
/// and raises the watermark to the greatest rowid. A few statements
/// whatever the number of runs, so FTS5 writes one segment per flush, not
/// one per run. Called by a commit that reached [`FLUSH_AT`], and before
/// every search (through [`flush_queue`]), so a search never misses a
/// committed run. Returns the runs indexed or re-indexed. Does nothing
/// while maintenance is deferred ([`defer`]): [`restore`] rebuilds.
///
/// # Errors
/// An SQLite error; the caller's transaction then rolls back.
pub fn flush_pending(c: &Connection) -> Result<usize> {
    if is_deferred(c)? {
        return Ok(0); // the restore rebuilds everything
    }
    let (mark, _) = watermark(c)?;
    c.prepare_cached(
        "DELETE FROM runs_fts WHERE rowid IN (SELECT rid FROM runs_fts_pending WHERE fresh = 0)",
    )?
    .execute([])?;
    let changed = c
        .prepare_cached(
            "INSERT INTO runs_fts (rowid, job, input, output, error, labels)
             SELECT v.rid, v.job, v.input, v.output, v.error, v.labels
             FROM runs_fts_pending AS p CROSS JOIN runs_search_text AS v ON v.rid = p.rid
             WHERE p.rid <= ?1",
        )?
        .execute([mark])?;
    let new = c
        .prepare_cached(
            "INSERT INTO runs_fts (rowid, job, input, output, error, labels)
             SELECT rid, job, input, output, error, labels FROM runs_search_text WHERE rid > ?1",
        )?
        .execute([mark])?;
    c.prepare_cached("DELETE FROM runs_fts_pending")?
        .execute([])?;
    c.prepare_cached(
        "INSERT OR REPLACE INTO meta (key, value)
         VALUES ('fts_indexed_rowid', (SELECT coalesce(max(rowid), 0) FROM runs))",
    )?
    .execute([])?;
    Ok(changed + new)
}

/// Longest `search` text, bytes.
pub const MAX_SEARCH_BYTES: usize = 4096;

/// The FTS5 query for `text` read as `syntax`.
///
/// # Errors
/// [`Error::InvalidInput`] for an empty text, one over [`MAX_SEARCH_BYTES`]
/// or one with a NUL character.
pub fn fts_query(text: &str, syntax: SearchSyntax) -> Result<String> {
    if text.len() > MAX_SEARCH_BYTES || text.contains('\0') {
        return Err(Error::invalid(format!(
            "search must be at most {MAX_SEARCH_BYTES} bytes with no NUL character"
        )));
    }
    if text.trim().is_empty() {
        return Err(Error::invalid("search must contain at least one word"));
    }
    Ok(match syntax {
        SearchSyntax::Fts5 => text.to_owned(),
        // Every word becomes an FTS5 string ("..." with " doubled), which
        // FTS5 reads as a phrase of that word's tokens: no operator,
        // column filter or prefix can come from the text.
        SearchSyntax::Words => text
            .split_whitespace()
            .map(|w| format!("\"{}\"", w.replace('"', "\"\"")))
            .collect::<Vec<_>>()
            .join(" "),
    })
}

/// An SQLite error from a search query as the error the user should see:
/// FTS5's complaints about a raw query are [`Error::InvalidSearch`].
pub fn search_error(e: Error, syntax: SearchSyntax) -> Error {
    // The query is durq's own and checked; with a raw FTS5 text, a plain
    // SQLITE_ERROR while it runs ("fts5: syntax error near ...", "no such
    // column: x", "unterminated string") is the text's fault.
    if let (SearchSyntax::Fts5, Error::Sqlite(rusqlite::Error::SqliteFailure(f, msg))) =
        (syntax, &e)
    {
        if f.extended_code == rusqlite::ffi::SQLITE_ERROR {
            let why = msg.as_deref().unwrap_or("syntax error");
            return Error::InvalidSearch(format!(
                "the search is not a valid FTS5 query ({why}); see https://www.sqlite.org/fts5.html#full_text_query_syntax, or leave out searchSyntax to match plain words"
            ));
        }
    }
    e
}

fn meta(c: &Connection, key: &str) -> Result<Option<String>> {
    Ok(c.prepare_cached("SELECT value FROM meta WHERE key = ?1")?
        .query_row(params![key], |r| r.get(0))
        .optional()?)
}

/// Whether index maintenance is deferred (an import is running, or died).
///
/// # Errors
/// An SQLite error if `meta` cannot be read.
pub fn is_deferred(c: &Connection) -> Result<bool> {
    Ok(meta(c, DEFERRED_KEY)?.is_some())
}

/// `Err(SearchStale)` while index maintenance is deferred.
///
/// # Errors
/// [`Error::SearchStale`] then; an SQLite error if `meta` cannot be read.
pub fn check_fresh(c: &Connection) -> Result<()> {
    if is_deferred(c)? {
        return Err(Error::SearchStale(
            "the full-text index is out of date: a bulk import deferred its maintenance and the rebuild has not finished (or failed); search works again once importRuns returns, or after restoreSearchIndex() succeeds".into(),
        ));
    }
    Ok(())
}

fn drop_trigger(c: &Connection, name: &str) -> Result<()> {
    c.execute_batch(&format!(
        "DROP TRIGGER IF EXISTS \"{}\"",
        name.replace('"', "\"\"")
    ))?;
    Ok(())
}

/// One trigger of the snapshot.
#[derive(Debug, Serialize, Deserialize)]
struct SavedTrigger {
    name: String,
    sql: String,
}

/// Result of [`defer`] and [`restore`].
#[derive(Debug, Serialize, ts_rs::TS)]
#[serde(rename_all = "camelCase")]
pub struct IndexChange {
    /// Whether this call changed anything (`false`: already in that state).
    pub changed: bool,
    /// Triggers dropped or recreated.
    pub triggers: usize,
}

/// Step 1: snapshots the index triggers installed on `runs` (those whose
/// SQL names `runs_fts`) into `meta`, drops them and sets the flag, on the
/// caller's transaction. A no-op if the flag is already set (the snapshot
/// taken then is kept: the triggers are gone now).
///
/// # Errors
/// An SQLite error; the caller's transaction then rolls back.
pub fn defer(c: &Connection) -> Result<IndexChange> {
    if is_deferred(c)? {
        return Ok(IndexChange {
            changed: false,
            triggers: 0,
        });
    }
    let saved: Vec<SavedTrigger> = c
        .prepare_cached(
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'trigger' AND tbl_name = 'runs' AND sql LIKE '%runs_fts%' ORDER BY name",
        )?
        .query_map([], |r| {
            Ok(SavedTrigger {
                name: r.get(0)?,
                sql: r.get(1)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let snapshot = serde_json::to_string(&saved).expect("triggers serialize");
    c.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)")?
        .execute(params![SNAPSHOT_KEY, snapshot])?;
    for t in &saved {
        drop_trigger(c, &t.name)?;
    }
    c.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES (?1, '1')")?
        .execute(params![DEFERRED_KEY])?;
    Ok(IndexChange {
        changed: true,
        triggers: saved.len(),
    })
}

/// Step 3: recreates the triggers from the snapshot, rebuilds the index
/// ([`REBUILD_SQL`], one pass over the runs) and clears the flag and the snapshot, on the caller's
/// transaction. A no-op if the flag is not set.
///
/// # Errors
/// [`Error::Corrupt`] if the flag is set but the snapshot is missing or
/// does not parse; an SQLite error if a trigger or the rebuild fails. The
/// caller's transaction then rolls back and the flag stays set.
pub fn restore(c: &Connection) -> Result<IndexChange> {
    if !is_deferred(c)? {
        return Ok(IndexChange {
            changed: false,
            triggers: 0,
        });
    }
    let text = meta(c, SNAPSHOT_KEY)?.ok_or_else(|| {
        Error::Corrupt(
            "search index maintenance is deferred but the trigger snapshot is missing from meta"
                .into(),
        )
    })?;
    let saved: Vec<SavedTrigger> = serde_json::from_str(&text).map_err(|e| {
        Error::Corrupt(format!(
            "the search trigger snapshot in meta does not parse: {e}"
        ))
    })?;
    for t in &saved {
        // The snapshot is durq's own text in `meta`; still, run nothing but
        // one CREATE TRIGGER statement from it (`execute` rejects a text of
        // several statements).
        let sql = t.sql.trim();
        if !sql
            .get(..15)
            .is_some_and(|p| p.eq_ignore_ascii_case("CREATE TRIGGER "))
        {
            return Err(Error::Corrupt(format!(
                "the search trigger snapshot in meta holds something other than a CREATE TRIGGER statement for {:?}",
                t.name
            )));
        }
        drop_trigger(c, &t.name)?;
        c.execute(sql, [])?;
    }
    c.execute_batch(REBUILD_SQL)?;
    c.prepare_cached("DELETE FROM meta WHERE key IN (?1, ?2)")?
        .execute(params![DEFERRED_KEY, SNAPSHOT_KEY])?;
    Ok(IndexChange {
        changed: true,
        triggers: saved.len(),
    })
}
