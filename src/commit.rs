//! Group commit on the main database: a batch of operations in ONE
//! transaction, each failing alone (docs/architecture.md, capability 7).
//!
//! An open savepoint makes SQLite copy every page an operation touches to
//! a statement journal, which cost 40% of enqueue throughput here
//! (BENCHMARKS.md). So the batch first runs without savepoints; an
//! operation that fails before writing anything (validation, lease checks:
//! nearly every failure) needs no rollback. Only if a failed operation had
//! already changed rows (`sqlite3_total_changes` moved) is the transaction
//! rolled back and the whole batch replayed with a real savepoint per
//! operation. Either way nothing is visible before COMMIT.

use crate::error::{Error, Result};
use crate::history::Events;
use crate::ids::RunIdGenerator;
use crate::op::{self, Op, Outcome};
use crate::search;
use crate::write::{in_savepoint, Savepoint, Write};
use rusqlite::Connection;

/// What the main database's writes carry from one commit to the next.
#[derive(Debug)]
pub struct WriteState {
    /// Run and batch ids.
    pub ids: RunIdGenerator,
    /// Events of the group commit being applied.
    pub events: Events,
    /// Generation of the last commit that wrote something (`meta.generation`).
    pub generation: i64,
}

/// Applies `ops` (each already parsed, or its parse error) at `now` in one
/// transaction on `conn`; one [`Outcome`] per operation, in order.
///
/// # Errors
/// An SQLite error if the transaction cannot begin or commit, or if SQLite
/// rolled it back itself (an I/O error, a full disk); then no operation of
/// the batch took effect.
pub fn apply(
    conn: &mut Connection,
    state: &mut WriteState,
    now: i64,
    ops: &[&Result<Op>],
) -> Result<Vec<Outcome>> {
    match apply_batch(conn, state, now, ops, false)? {
        Some(out) => Ok(out),
        None => Ok(apply_batch(conn, state, now, ops, true)?
            .expect("savepoint mode never asks for a replay")),
    }
}

/// One attempt at a batch; `None` means "a failed operation left writes
/// behind: replay with savepoints" (the transaction was rolled back).
fn apply_batch(
    conn: &mut Connection,
    state: &mut WriteState,
    now: i64,
    ops: &[&Result<Op>],
    savepoints: bool,
) -> Result<Option<Vec<Outcome>>> {
    let mut out = Vec::with_capacity(ops.len());
    let tx = conn.transaction()?;
    let WriteState {
        ids,
        events,
        generation,
    } = state;
    events.clear();
    let mut wrote = false;
    for &op in ops {
        let before = tx.total_changes();
        let mark = events.len();
        let mut w = Write::new(&tx, now, ids, events, *generation + 1);
        let res = match op {
            Ok(op) if savepoints => Savepoint::open(&tx).and_then(|sp| {
                let r = op::apply(&mut w, op)?;
                sp.release()?;
                Ok(r)
            }),
            Ok(op) => op::apply(&mut w, op),
            Err(e) => Err(Error::invalid(e.to_string())),
        };
        let finished = w.take_finished();
        match &res {
            Ok(_) => wrote |= tx.total_changes() != before,
            Err(_) => events.truncate(mark),
        }
        out.push(match res {
            Ok(ok) => Outcome::Ok {
                ok,
                finished_batches: finished,
            },
            Err(e) => {
                if tx.is_autocommit() {
                    // SQLite rolled the whole transaction back (an I/O
                    // error, a full disk): nothing of the batch is kept,
                    // and the rest must not run outside a transaction.
                    return Err(e);
                }
                if !savepoints && tx.total_changes() != before {
                    return Ok(None); // dropping `tx` rolls back
                }
                Outcome::error(&e)
            }
        });
    }
    // A commit that wrote something is a new generation: its events go in
    // with one multi-row insert, and `meta.generation` moves with it.
    let next = *generation + 1;
    if wrote {
        if search::pending(&tx)? >= search::FLUSH_AT {
            // In a savepoint: a failing index write (a damaged index) must
            // not fail the batch; the queue stays, and the next search
            // retries the flush and reports the error.
            let _ = in_savepoint(&tx, || search::flush_pending(&tx));
        }
        events.flush(&tx, next)?;
        tx.prepare_cached("INSERT OR REPLACE INTO meta (key, value) VALUES ('generation', ?1)")?
            .execute([next])?;
    }
    tx.commit()?;
    if wrote {
        *generation = next;
    }
    Ok(Some(out))
}
