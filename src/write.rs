//! [`Write`]: what every write operation is given (rusqlite's
//! `Transaction` is the model): the open transaction, the group commit's
//! clock, the run id generator, the history buffer and the batches that
//! turned terminal, in one value. [`Savepoint`] is a guard that rolls its
//! savepoint back when dropped unreleased.

use crate::error::Result;
use crate::history::{EventKind, Events};
use crate::ids::RunIdGenerator;
use crate::model::FinishedBatch;
use rusqlite::Connection;

/// One operation's view of the group commit it runs in.
///
/// Made by the group commit ([`crate::commit`]) for each operation; the
/// connection is inside the commit's transaction, so nothing an operation
/// writes is visible before `COMMIT`.
pub struct Write<'c> {
    conn: &'c Connection,
    now: i64,
    ids: &'c mut RunIdGenerator,
    events: &'c mut Events,
    generation: i64,
    finished: Vec<FinishedBatch>,
}

impl<'c> Write<'c> {
    /// A context on `conn` (a connection inside an open transaction) at
    /// `now`, ms since the Unix epoch (already validated by the caller), in
    /// the commit that will be `generation` if it writes anything.
    pub fn new(
        conn: &'c Connection,
        now: i64,
        ids: &'c mut RunIdGenerator,
        events: &'c mut Events,
        generation: i64,
    ) -> Write<'c> {
        Write {
            conn,
            now,
            ids,
            events,
            generation,
            finished: Vec::new(),
        }
    }

    /// The generation this commit gets (`meta.generation` after it), which
    /// stamps its events: every operation that stamps it also writes, so
    /// the commit does get it.
    pub fn generation(&self) -> i64 {
        self.generation
    }

    /// The connection, inside the group commit's transaction.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// The group commit's clock, ms since the Unix epoch: one value for
    /// every operation of the commit.
    pub fn now(&self) -> i64 {
        self.now
    }

    /// A new time-ordered id (UUIDv7) for a run or batch created now.
    pub fn next_id(&mut self) -> String {
        self.ids.next_id(self.now)
    }

    /// The run id generator (imports make ids from their own times and
    /// move the generator past the ids they keep).
    pub fn ids(&mut self) -> &mut RunIdGenerator {
        self.ids
    }

    /// Records a lifecycle event of run `id` at `now` (written to
    /// `run_events` with the commit; see [`crate::history`]).
    pub fn event(
        &mut self,
        id: &str,
        kind: EventKind,
        attempt: i64,
        data: Option<serde_json::Value>,
    ) {
        self.events.push(id, self.now, kind, attempt, data);
    }

    /// Drops this commit's unwritten events of run `id` (it was deleted).
    pub fn forget_events(&mut self, id: &str) {
        self.events.forget(id);
    }

    /// Notes that a batch turned terminal in this operation.
    pub fn batch_finished(&mut self, batch: FinishedBatch) {
        self.finished.push(batch);
    }

    /// The batches this operation turned terminal so far.
    pub fn finished_batches(&self) -> &[FinishedBatch] {
        &self.finished
    }

    /// Takes the batches this operation turned terminal (the commit moves
    /// them into the operation's outcome).
    pub fn take_finished(&mut self) -> Vec<FinishedBatch> {
        std::mem::take(&mut self.finished)
    }
}

/// An open savepoint (<https://www.sqlite.org/lang_savepoint.html>):
/// [`Savepoint::release`] keeps its writes; dropping it unreleased rolls
/// them back (as rusqlite's `Savepoint` does), so an early return with `?`
/// can never leave a half-done operation behind.
pub struct Savepoint<'c> {
    conn: &'c Connection,
    open: bool,
}

impl<'c> Savepoint<'c> {
    /// Opens `SAVEPOINT durq_op` on `conn` (savepoints of one name nest:
    /// each release or rollback applies to the innermost one).
    ///
    /// # Errors
    /// An SQLite error if the statement fails.
    pub fn open(conn: &'c Connection) -> Result<Savepoint<'c>> {
        conn.prepare_cached("SAVEPOINT durq_op")?.execute([])?;
        Ok(Savepoint { conn, open: true })
    }

    /// Keeps the savepoint's writes (in the enclosing transaction).
    ///
    /// # Errors
    /// An SQLite error if `RELEASE` fails (the guard then rolls back).
    pub fn release(mut self) -> Result<()> {
        self.conn.prepare_cached("RELEASE durq_op")?.execute([])?;
        self.open = false;
        Ok(())
    }
}

impl Drop for Savepoint<'_> {
    fn drop(&mut self) {
        // After an I/O error or a full disk SQLite may have rolled the whole
        // transaction back already: then there is nothing left to undo.
        if self.open && !self.conn.is_autocommit() {
            let undo = |sql| {
                self.conn
                    .prepare_cached(sql)
                    .and_then(|mut s| s.execute([]))
            };
            let _ = undo("ROLLBACK TO durq_op");
            let _ = undo("RELEASE durq_op");
        }
    }
}

/// Runs `f` inside a savepoint on `conn`: released if `f` succeeds, rolled
/// back if it fails.
///
/// # Errors
/// `f`'s error, or an SQLite error opening or releasing the savepoint.
pub fn in_savepoint<T>(conn: &Connection, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let sp = Savepoint::open(conn)?;
    let v = f()?;
    sp.release()?;
    Ok(v)
}
