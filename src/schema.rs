//! The schema and its migrations, versioned by `PRAGMA user_version`
//! (<https://www.sqlite.org/pragma.html#pragma_user_version>).
//!
//! Migrations are append-only: migration `n` (1-based) moves a database from
//! `user_version = n - 1` to `n`, inside one transaction with the version
//! bump, so a crash mid-migration leaves the previous version intact.

use crate::error::{Error, Result};
use rusqlite::Connection;

/// Migration scripts, in order. Never edit a released one; append.
pub const MIGRATIONS: &[&str] = &[
    // 1: runs, labels, steps, logs.
    r#"
    CREATE TABLE meta (
        key   TEXT PRIMARY KEY NOT NULL,
        value TEXT
    ) WITHOUT ROWID;

    -- One row per run. `id` is a UUIDv7 (time-ordered), so id order is
    -- creation order. Times are integer ms since the Unix epoch.
    CREATE TABLE runs (
        id               TEXT PRIMARY KEY NOT NULL,
        queue            TEXT NOT NULL,
        job              TEXT NOT NULL,
        status           TEXT NOT NULL CHECK (status IN ('pending','leased','completed','failed','cancelled')),
        priority         INTEGER NOT NULL DEFAULT 0,
        run_at           INTEGER NOT NULL,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        started_at       INTEGER,
        finished_at      INTEGER,
        input            TEXT NOT NULL,
        output           TEXT,
        error            TEXT,
        labels           TEXT NOT NULL DEFAULT '{}',
        idempotency_key  TEXT,
        concurrency_key  TEXT,
        attempt          INTEGER NOT NULL DEFAULT 0,
        max_attempts     INTEGER NOT NULL,
        backoff          TEXT NOT NULL,
        lease_token      INTEGER NOT NULL DEFAULT 0,
        lease_owner      TEXT,
        lease_expires_at INTEGER,
        progress         TEXT,
        retried_from     TEXT
    );

    -- Claim: the next due pending run of a queue, by priority, runAt, id.
    CREATE INDEX runs_claim ON runs (queue, priority DESC, run_at, id) WHERE status = 'pending';
    -- `lease_expires_at` is set exactly while a handler may be running the
    -- run: status 'leased', or 'cancelled' until the holder stops (or its
    -- lease runs out). Expired-lease recovery and the next expiry: one seek.
    CREATE INDEX runs_lease ON runs (lease_expires_at) WHERE lease_expires_at IS NOT NULL;
    -- At most one running handler per concurrency key (enforced, not hoped
    -- for); a cancelled run keeps its key until its handler has stopped.
    CREATE UNIQUE INDEX runs_concurrency ON runs (concurrency_key)
        WHERE concurrency_key IS NOT NULL AND lease_expires_at IS NOT NULL;
    -- Idempotency: one run per (job, key).
    CREATE UNIQUE INDEX runs_idempotency ON runs (job, idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    -- listRuns by status / by job, newest first.
    CREATE INDEX runs_status ON runs (status, id);
    CREATE INDEX runs_job ON runs (job, id);
    -- Retention purge.
    CREATE INDEX runs_finished ON runs (finished_at) WHERE finished_at IS NOT NULL;

    -- Labels, normalized; the JSON copy on runs.labels is for reads/events.
    -- Keyed (key, value, run_id): a label's runs come in id (creation)
    -- order from one b-tree, and an extra label is one primary-key probe.
    -- Rows are deleted by key from the run's JSON copy, so no second index
    -- on run_id is kept (each index is one more b-tree insert per label).
    CREATE TABLE run_labels (
        key    TEXT NOT NULL,
        value  TEXT NOT NULL,
        run_id TEXT NOT NULL,
        PRIMARY KEY (key, value, run_id)
    ) WITHOUT ROWID;

    -- Checkpointed step outputs.
    CREATE TABLE steps (
        run_id     TEXT NOT NULL,
        name       TEXT NOT NULL,
        output     TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (run_id, name)
    ) WITHOUT ROWID;

    -- step.log() lines.
    CREATE TABLE run_logs (
        run_id  TEXT NOT NULL,
        seq     INTEGER NOT NULL,
        at      INTEGER NOT NULL,
        attempt INTEGER NOT NULL,
        level   TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (run_id, seq)
    ) WITHOUT ROWID;
    "#,
    // 2: batches and their active membership.
    r#"
    -- A run created by `enqueueBatch` names its batch. Runs of a batch,
    -- in id order: `cancelBatch` and `listRuns({ batchId })`.
    ALTER TABLE runs ADD COLUMN batch_id TEXT;
    CREATE INDEX runs_batch ON runs (batch_id, id) WHERE batch_id IS NOT NULL;

    -- One row per batch: authoritative for its state and counts, which move
    -- in the same transaction as each run transition of the batch. No
    -- secondary index on `state` (it changes; active batches are listed
    -- through `active_batches`); `queue` and `idempotency_key` never change.
    CREATE TABLE batches (
        id              TEXT PRIMARY KEY NOT NULL,
        queue           TEXT NOT NULL,
        state           TEXT NOT NULL CHECK (state IN ('active','completed','failed','cancelled')),
        labels          TEXT NOT NULL DEFAULT '{}',
        idempotency_key TEXT,
        total           INTEGER NOT NULL,
        pending         INTEGER NOT NULL DEFAULT 0,
        leased          INTEGER NOT NULL DEFAULT 0,
        completed       INTEGER NOT NULL DEFAULT 0,
        failed          INTEGER NOT NULL DEFAULT 0,
        cancelled       INTEGER NOT NULL DEFAULT 0,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL,
        finished_at     INTEGER
    ) WITHOUT ROWID;
    -- listBatches({ queue }) history, newest first.
    CREATE INDEX batches_queue ON batches (queue, id);
    CREATE UNIQUE INDEX batches_idempotency ON batches (idempotency_key)
        WHERE idempotency_key IS NOT NULL;
    -- Retention purge (set once, when the batch turns terminal).
    CREATE INDEX batches_finished ON batches (finished_at) WHERE finished_at IS NOT NULL;

    -- Advisory membership: the non-terminal batches of a queue, listed by a
    -- primary-key prefix scan whose cost does not grow with batch history.
    -- Written before the batch row, removed when the batch turns terminal,
    -- repaired on read and by `reconcileBatches`. `added_at` (ms) lets the
    -- reconcile tell a member whose batch row is missing for good from one
    -- whose batch is about to appear.
    CREATE TABLE active_batches (
        queue    TEXT NOT NULL,
        batch_id TEXT NOT NULL,
        added_at INTEGER NOT NULL,
        PRIMARY KEY (queue, batch_id)
    ) WITHOUT ROWID;
    "#,
    // 3: full-text search over runs, and run history.
    r#"
    -- What the full-text index holds for each run: the job name, the string
    -- values of input and output (not their keys or numbers), the error's
    -- message and the label values. The index is filled from this view.
    CREATE VIEW runs_search_text (rid, job, input, output, error, labels) AS
        SELECT r.rowid, r.job,
            (SELECT group_concat(t.value, ' ') FROM json_tree(iif(json_valid(r.input), r.input, 'null')) AS t WHERE t.type = 'text'),
            iif(r.output IS NULL, NULL, (SELECT group_concat(t.value, ' ') FROM json_tree(iif(json_valid(r.output), r.output, 'null')) AS t WHERE t.type = 'text')),
            iif(r.error IS NOT NULL AND json_valid(r.error), r.error ->> '$.message', NULL),
            iif(r.labels = '{}', NULL, (SELECT group_concat(l.value, ' ') FROM json_each(iif(json_valid(r.labels), r.labels, '{}')) AS l))
        FROM runs AS r;
    -- (`json_valid` guards: a row whose stored JSON was damaged by hand
    -- indexes as empty instead of failing every write to it, delete included.)

    -- Contentless with delete by rowid
    -- (https://www.sqlite.org/fts5.html#contentless_delete_tables): the index
    -- stores no copy of the text, and an entry is removed by its rowid (the
    -- run's rowid), without the text it was made from.
    CREATE VIRTUAL TABLE runs_fts USING fts5 (
        job, input, output, error, labels,
        content = '', contentless_delete = 1,
        tokenize = 'unicode61 remove_diacritics 2'
    );

    -- Kept by triggers, through a queue of rowids indexed in bulk
    -- (`search::flush_pending` in search.rs) before any search reads the index
    -- and by a commit that fills the queue: FTS5 writes its pending terms
    -- to disk at every statement savepoint, so a trigger that wrote to the
    -- index itself made one index segment per row and cut enqueue
    -- throughput 2.7x. Only inserts, deletes and updates of the indexed
    -- columns queue a run (a claim or a heartbeat does not). A bulk import
    -- drops these triggers and rebuilds once (search.rs).
    -- `fresh` = 1: inserted since the last flush, so not in the index yet
    -- (nothing to remove before indexing it).
    CREATE TABLE runs_fts_pending (rid INTEGER PRIMARY KEY, fresh INTEGER NOT NULL);
    -- The first change to a run since the last flush decides `fresh`
    -- (NOT EXISTS rather than OR IGNORE, which a statement on `runs` with a
    -- conflict clause of its own would override).
    CREATE TRIGGER runs_fts_insert AFTER INSERT ON runs BEGIN
        INSERT INTO runs_fts_pending (rid, fresh) SELECT new.rowid, 1
            WHERE NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE rid = new.rowid);
    END;
    CREATE TRIGGER runs_fts_update AFTER UPDATE OF job, input, output, error, labels ON runs BEGIN
        INSERT INTO runs_fts_pending (rid, fresh) SELECT new.rowid, 0
            WHERE NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE rid = new.rowid);
    END;
    CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts_pending (rid, fresh) SELECT old.rowid, 0
            WHERE NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE rid = old.rowid);
    END;

    -- Runs stored before this migration (`REBUILD_SQL` in search.rs).
    INSERT INTO runs_fts (rowid, job, input, output, error, labels)
        SELECT rid, job, input, output, error, labels FROM runs_search_text;

    -- Lifecycle events of each run. `generation` is the commit that wrote
    -- the event (`meta.generation`, one more per committing group commit),
    -- `seq` its place in that commit; a run's history is one primary-key
    -- prefix scan. Written with one multi-row insert per commit.
    CREATE TABLE run_events (
        run_id     TEXT NOT NULL,
        generation INTEGER NOT NULL,
        seq        INTEGER NOT NULL,
        at         INTEGER NOT NULL,
        kind       TEXT NOT NULL,
        attempt    INTEGER NOT NULL,
        data       TEXT,
        PRIMARY KEY (run_id, generation, seq)
    ) WITHOUT ROWID;
    "#,
    // v4: the persisted effect cache (`crate::effect`).
    r#"
    -- One output per effect and input: `key` is the SHA-256 (32 bytes) of
    -- the input's canonical JSON; `version` is the effect's output schema
    -- version that wrote it (a read with another version is a miss, and the
    -- next write replaces the row).
    CREATE TABLE effects (
        name       TEXT NOT NULL,
        key        BLOB NOT NULL,
        version    INTEGER NOT NULL,
        output     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (name, key)
    ) WITHOUT ROWID;
    "#,
    // v5: new runs reach the search index by a rowid watermark instead of
    // one queue row each (`search` in search.rs): no trigger runs on an
    // insert into `runs`, which spared each insert its statement journal
    // and its queue row (BENCHMARKS.md, "Beside the peers").
    r#"
    -- Index what the queue holds now, as `search::flush_pending` did before.
    DELETE FROM runs_fts WHERE rowid IN (SELECT rid FROM runs_fts_pending WHERE fresh = 0);
    INSERT INTO runs_fts (rowid, job, input, output, error, labels)
        SELECT v.rid, v.job, v.input, v.output, v.error, v.labels
        FROM runs_fts_pending AS p CROSS JOIN runs_search_text AS v ON v.rid = p.rid;
    DELETE FROM runs_fts_pending;
    -- Every run with a rowid up to `fts_indexed_rowid` is in the index (or
    -- queued in `runs_fts_pending` for a change); every run above it is
    -- indexed by the next flush, by rowid range.
    INSERT OR REPLACE INTO meta (key, value)
        VALUES ('fts_indexed_rowid', (SELECT coalesce(max(rowid), 0) FROM runs));
    DROP TRIGGER IF EXISTS runs_fts_insert;
    DROP TRIGGER IF EXISTS runs_fts_update;
    DROP TRIGGER IF EXISTS runs_fts_delete;
    -- `fresh` = 1: above the watermark, so not in the index yet (nothing to
    -- remove; the range indexes it).
    CREATE TRIGGER runs_fts_update AFTER UPDATE OF job, input, output, error, labels ON runs BEGIN
        INSERT INTO runs_fts_pending (rid, fresh)
            SELECT new.rowid, new.rowid > coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed_rowid'), 0)
            WHERE NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE rid = new.rowid);
    END;
    -- A delete also lowers the watermark to the greatest rowid left: SQLite
    -- gives a new row the greatest rowid + 1
    -- (https://www.sqlite.org/autoinc.html), so after the top rows are
    -- deleted a new run may reuse a rowid at or below the watermark, and it
    -- must still be indexed by the range.
    CREATE TRIGGER runs_fts_delete AFTER DELETE ON runs BEGIN
        INSERT INTO runs_fts_pending (rid, fresh)
            SELECT old.rowid, old.rowid > coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed_rowid'), 0)
            WHERE NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE rid = old.rowid);
        UPDATE meta SET value = (SELECT coalesce(max(rowid), 0) FROM runs)
            WHERE key = 'fts_indexed_rowid' AND CAST(value AS INTEGER) > (SELECT coalesce(max(rowid), 0) FROM runs);
    END;
    "#,
    // v6: a run's `enqueued` event is its own row (`created_at`, and the
    // generation of the commit that created it), not a `run_events` row:
    // one insert fewer per enqueue (`crate::history::run_events` reads it).
    // Runs created before keep their stored event and a NULL here.
    r#"
    ALTER TABLE runs ADD COLUMN enqueued_generation INTEGER;
    "#,
    // v7: an update queues a run for re-indexing only when the text the
    // index holds for it can change: `UPDATE OF` fires whenever a column is
    // assigned, and a completion assigns `output` even when it holds no
    // string (`null`, a number, `[1,2]`): JSON with no `"` has no text
    // values (https://www.rfc-editor.org/rfc/rfc8259#section-7), so such an
    // output indexes as nothing, as the NULL before it did. (A file whose
    // maintenance is deferred by an import that died gets the trigger now;
    // its queue rows are harmless, as the rebuild at `restore` redoes the
    // index, and the snapshot then puts the older trigger back, which only
    // queues more.)
    r#"
    DROP TRIGGER IF EXISTS runs_fts_update;
    CREATE TRIGGER runs_fts_update AFTER UPDATE OF job, input, output, error, labels ON runs
    WHEN new.job IS NOT old.job OR new.input IS NOT old.input OR new.error IS NOT old.error
        OR new.labels IS NOT old.labels
        OR (new.output IS NOT old.output
            AND (instr(coalesce(new.output, ''), '"') > 0 OR instr(coalesce(old.output, ''), '"') > 0))
    BEGIN
        INSERT INTO runs_fts_pending (rid, fresh)
            SELECT new.rowid, new.rowid > coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'fts_indexed_rowid'), 0)
            WHERE NOT EXISTS (SELECT 1 FROM runs_fts_pending WHERE rid = new.rowid);
    END;
    "#,
    // v8: cron schedules (`crate::schedule`) and paused queues (`crate::queues`).
    r#"
    -- One row per schedule; `run` is the NewRun JSON each slot enqueues
    -- (without runAt and idempotency key, which are the slot's), `next_at`
    -- the earliest slot not fired yet (NULL: it fires no more).
    CREATE TABLE schedules (
        id           TEXT PRIMARY KEY NOT NULL,
        cron         TEXT NOT NULL,
        timezone     TEXT NOT NULL,
        catch_up     TEXT NOT NULL CHECK (catch_up IN ('latest','all','none')),
        job          TEXT NOT NULL,
        queue        TEXT NOT NULL,
        run          TEXT NOT NULL,
        next_at      INTEGER,
        last_slot_at INTEGER,
        last_run_id  TEXT,
        created_at   INTEGER NOT NULL,
        updated_at   INTEGER NOT NULL
    );
    -- The scheduler timer's next wake-up and the due schedules: one seek.
    CREATE INDEX schedules_due ON schedules (next_at) WHERE next_at IS NOT NULL;
    CREATE TABLE paused_queues (
        queue     TEXT PRIMARY KEY NOT NULL,
        paused_at INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
];

/// The schema version this build migrates to.
pub fn latest_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the database up to [`latest_version`].
///
/// # Errors
/// [`Error::SchemaTooNew`] if the file was written by a newer durq; an SQLite
/// error if a migration fails (the database is left at the last version that
/// committed).
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_with(conn, MIGRATIONS)
}

/// Runs the scripts of `migrations` that `conn`'s `user_version` has not
/// seen yet, each in its own transaction with its version bump. Shared by
/// the main database and the alarm databases (`crate::alarm::MIGRATIONS`).
///
/// # Errors
/// [`Error::SchemaTooNew`] if the file's version is above `migrations.len()`;
/// an SQLite error if a script fails (its transaction is rolled back).
pub fn migrate_with(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let latest = migrations.len() as i64;
    if found > latest || found < 0 {
        return Err(Error::SchemaTooNew {
            found,
            supported: latest,
        });
    }
    for (i, sql) in migrations.iter().enumerate().skip(found as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}
