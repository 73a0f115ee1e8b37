//! [`Store`]: one SQLite connection holding a durq database, and the group
//! commit that applies a batch of operations in one transaction.

use crate::alarm::{self, Alarm, AlarmDb, AlarmFilter, AlarmOp, AlarmPage};
use crate::batch::{self, Batch, BatchFilter, BatchPage};
use crate::commit::{self, WriteState};
use crate::error::{Error, Result};
use crate::history::Events;
use crate::ids::RunIdGenerator;
use crate::model::{Run, RunFilter, RunPage};
pub use crate::op::{ErrorBody, Op, Outcome};
use crate::{history, query, queues, schedule, schema, search, validate};
use rusqlite::{Connection, OpenFlags};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::BTreeMap;

/// How hard each commit pushes data to storage
/// (<https://www.sqlite.org/pragma.html#pragma_synchronous>).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=FULL`: the WAL is fsynced at every commit; a commit
    /// survives power loss. The default.
    #[default]
    Full,
    /// `synchronous=NORMAL`: a commit survives the process being killed but
    /// may be rolled back by a power failure.
    Normal,
    /// The host makes each commit atomic and durable as a whole (a
    /// Cloudflare Durable Object, which runs every group commit inside
    /// `ctx.storage.transactionSync()`): `journal_mode=MEMORY` (the rollback
    /// journal that statement and savepoint rollbacks need stays in memory;
    /// <https://www.sqlite.org/pragma.html#pragma_journal_mode>) and
    /// `synchronous=OFF`. Each commit then writes only whole pages of the
    /// database file, once; a crash mid-commit is undone by the host's
    /// transaction, not by SQLite's journal.
    External,
}

impl Synchronous {
    /// Parses `"full"` or `"normal"`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for anything else.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "full" => Ok(Synchronous::Full),
            "normal" => Ok(Synchronous::Normal),
            "external" => Ok(Synchronous::External),
            _ => Err(Error::invalid(format!(
                "synchronous must be \"full\", \"normal\" or \"external\", got {s:?}"
            ))),
        }
    }
}

/// Options for [`Store::open`].
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// Durability of commits (file databases only).
    pub synchronous: Synchronous,
    /// SQLite VFS name to open the file with; `None` is SQLite's default.
    pub vfs: Option<String>,
    /// Seed for the random bits of run ids.
    pub seed: u64,
}

/// A durq database: runs, labels, steps and logs in one SQLite connection.
///
/// Writes go through [`Store::apply`] (group commit); reads are the other
/// methods and see what has committed.
pub struct Store {
    conn: Connection,
    /// Ids, event buffer and generation of the main database's writes.
    state: WriteState,
    /// Why restoring the search index at open failed, if it did.
    search_open_error: Option<String>,
    alarm_home: AlarmHome,
    /// Alarm namespaces opened so far (one connection each).
    alarms: BTreeMap<String, AlarmDb>,
}

/// Where the alarm databases of a store live.
enum AlarmHome {
    /// In memory, like the main database.
    Memory,
    /// `<dir>/<namespace>.db`, opened like the main file.
    Dir { dir: String, options: StoreOptions },
}

/// See [`Store::search_status`].
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchStatus {
    /// Index maintenance is deferred: search answers `DURQ_SEARCH_STALE`.
    pub deferred: bool,
    /// Why the restore at open failed, while still deferred.
    pub open_error: Option<String>,
}

impl Store {
    /// Opens an in-memory database (gone when the store is dropped).
    ///
    /// # Errors
    /// An SQLite error if the connection cannot be set up.
    pub fn open_in_memory(seed: u64) -> Result<Store> {
        let conn = Connection::open_in_memory()?;
        Store::init(conn, seed, false, Synchronous::Normal, AlarmHome::Memory)
    }

    /// Opens (creating if missing) the database file at `path`, in WAL mode
    /// with `locking_mode=EXCLUSIVE` (this connection is the file's only
    /// user, and SQLite then keeps the WAL index in heap memory, so the VFS
    /// needs no shared memory: <https://www.sqlite.org/wal.html#noshm>), and
    /// migrates its schema.
    ///
    /// # Errors
    /// `SQLITE_CANTOPEN` if the file cannot be opened, `SQLITE_NOTADB` if it
    /// is not a database, [`Error::SchemaTooNew`] if a newer durq wrote it.
    pub fn open(path: &str, options: &StoreOptions) -> Result<Store> {
        if path.is_empty() || path.contains('\0') {
            return Err(Error::invalid(
                "the database path must be non-empty and contain no NUL",
            ));
        }
        let conn = open_file(path, options)?;
        let home = AlarmHome::Dir {
            dir: format!("{path}.alarms"),
            options: options.clone(),
        };
        Store::init(conn, options.seed, true, options.synchronous, home)
    }

    fn init(
        mut conn: Connection,
        seed: u64,
        file: bool,
        sync: Synchronous,
        alarm_home: AlarmHome,
    ) -> Result<Store> {
        configure(&conn, file, sync)?;
        // A bulk import that died left the search index triggers dropped:
        // put them back and rebuild before anyone can search, and before
        // migrating (a later migration may change the triggers the snapshot
        // holds). A failure is kept for `search_status` (search answers
        // DURQ_SEARCH_STALE) and does not stop the open.
        let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        let deferral_exists = (search::SINCE_VERSION..=schema::latest_version()).contains(&version);
        let search_open_error = if deferral_exists && search::is_deferred(&conn)? {
            let restored = conn.transaction().map_err(Error::from).and_then(|tx| {
                search::restore(&tx)?;
                tx.commit()?;
                Ok(())
            });
            restored.err().map(|e| e.to_string())
        } else {
            None
        };
        schema::migrate(&mut conn)?;
        let mut ids = RunIdGenerator::new(seed);
        // Runs and batches share the generator: resume after the greatest id
        // of either (two primary-key seeks).
        let last: Option<String> = conn.query_row(
            "SELECT max(id) FROM (SELECT max(id) AS id FROM runs UNION ALL SELECT max(id) FROM batches)",
            [],
            |r| r.get(0),
        )?;
        if let Some(last) = last {
            ids.resume_after(&last);
        }
        let generation: i64 = conn.query_row(
            "SELECT coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation'), 0)",
            [],
            |r| r.get(0),
        )?;
        Ok(Store {
            conn,
            state: WriteState {
                ids,
                events: Events::default(),
                generation,
            },
            search_open_error,
            alarm_home,
            alarms: BTreeMap::new(),
        })
    }

    /// The underlying connection, for tests and diagnostics (read only by
    /// convention: writes must go through [`Store::apply`]).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// Applies `ops` at `now` (ms since the Unix epoch: the one clock of
    /// the whole group commit) in ONE transaction, each as if inside its own
    /// savepoint (<https://www.sqlite.org/lang_savepoint.html>): an
    /// operation that fails is rolled back alone and its neighbours commit.
    /// Returns one [`Outcome`] per operation, in order. See
    /// [`crate::commit`] for how savepoints are avoided while nothing fails.
    ///
    /// Alarm operations ([`Op::as_alarm`]) write to their namespace's own
    /// database: after the main transaction commits, each namespace the
    /// batch touches gets one transaction of its own (opening the namespace
    /// if needed). A namespace that cannot be opened or committed fails its
    /// own operations only.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a `now` outside 0 ..= 2^48 - 1; an
    /// SQLite error if the main transaction cannot begin or commit. Either
    /// way no operation of the batch took effect.
    pub fn apply(&mut self, now: i64, ops: &[Result<Op>]) -> Result<Vec<Outcome>> {
        validate::time("now", now)?;
        let is_alarm = |op: &Result<Op>| matches!(op, Ok(op) if op.as_alarm().is_some());
        if !ops.iter().any(is_alarm) {
            // Nearly every commit: no alarm operation to route elsewhere.
            let all: Vec<&Result<Op>> = ops.iter().collect();
            return self.apply_main(now, &all);
        }
        let mut out: Vec<Option<Outcome>> = ops.iter().map(|_| None).collect();
        let main: Vec<usize> = (0..ops.len()).filter(|&i| !is_alarm(&ops[i])).collect();
        if !main.is_empty() {
            let list: Vec<&Result<Op>> = main.iter().map(|&i| &ops[i]).collect();
            for (i, o) in main.iter().zip(self.apply_main(now, &list)?) {
                out[*i] = Some(o);
            }
        }
        // Each namespace gets its own transaction, after the main one (if
        // that could not commit, nothing of the batch ran).
        let mut by_ns: BTreeMap<&str, Vec<(usize, AlarmOp<'_>)>> = BTreeMap::new();
        for (i, op) in ops.iter().enumerate() {
            if let Some(a) = op.as_ref().ok().and_then(Op::as_alarm) {
                by_ns.entry(a.namespace()).or_default().push((i, a));
            }
        }
        for (ns, list) in by_ns {
            let alarm_ops: Vec<AlarmOp<'_>> = list.iter().map(|(_, a)| *a).collect();
            let results = self
                .alarm_db(ns)
                .and_then(|db| db.apply(now, &alarm_ops))
                .map_err(|e| ErrorBody::from(&e));
            match results {
                Ok(results) => {
                    for ((i, _), r) in list.iter().zip(results) {
                        out[*i] = Some(match r {
                            Ok(v) => Outcome::Ok {
                                ok: crate::op::OpResult::Alarm(v),
                                finished_batches: Vec::new(),
                            },
                            Err(e) => Outcome::error(&e),
                        });
                    }
                }
                Err(e) => {
                    for (i, _) in &list {
                        out[*i] = Some(Outcome::Err { err: e.clone() });
                    }
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|o| o.expect("every operation has an outcome"))
            .collect())
    }

    /// The group commit of the main database's operations; a successful
    /// `restoreSearchIndex` clears the error kept from the open.
    fn apply_main(&mut self, now: i64, ops: &[&Result<Op>]) -> Result<Vec<Outcome>> {
        let outcomes = commit::apply(&mut self.conn, &mut self.state, now, ops)?;
        let restored = ops
            .iter()
            .zip(&outcomes)
            .any(|(op, o)| matches!((op, o), (Ok(Op::RestoreSearchIndex), Outcome::Ok { .. })));
        if restored {
            self.search_open_error = None;
        }
        Ok(outcomes)
    }

    /// [`Store::apply`] on a JSON array of operation objects
    /// (`{"op": name, "args": {...}}`, see [`Op`]), returning the JSON array
    /// of outcomes (`{"ok": result, "finishedBatches"?: [...]}` /
    /// `{"err": {code, message, extendedCode?}}`). A malformed operation
    /// fails alone with `DURQ_INVALID_INPUT`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] if `ops_json` is not a JSON array or `now` is
    /// out of range; an SQLite error if the transaction cannot commit.
    ///
    /// # Example
    /// ```
    /// let mut store = durq::Store::open_in_memory(1)?;
    /// let out = store.apply_json(1700000000000, r#"[{"op":"enqueue","args":{"job":"email","input":{"to":"a@b.c"}}}]"#)?;
    /// assert!(out.starts_with(r#"[{"ok":{"id":""#));
    /// # Ok::<(), durq::Error>(())
    /// ```
    pub fn apply_json(&mut self, now: i64, ops_json: &str) -> Result<String> {
        // One pass over the text when every operation is well formed (the
        // façade's always are); otherwise each is parsed on its own, so a
        // bad one fails alone.
        let ops: Vec<Result<Op>> = match serde_json::from_str::<Vec<Op>>(ops_json) {
            Ok(ops) => ops.into_iter().map(Ok).collect(),
            Err(_) => {
                let raw: Vec<&RawValue> = serde_json::from_str(ops_json)
                    .map_err(|e| Error::invalid(format!("operations must be a JSON array: {e}")))?;
                raw.iter().map(|r| Op::parse(r.get())).collect()
            }
        };
        let outcomes = self.apply(now, &ops)?;
        Ok(serde_json::to_string(&outcomes).expect("outcomes serialize"))
    }

    /// The run with id `id`.
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none.
    pub fn get_run(&self, id: &str) -> Result<Run> {
        query::get_run(&self.conn, id)
    }

    /// A page of runs matching `filter`, newest first or by relevance (see
    /// [`RunFilter`] and [`query::list_runs`]). With `search`, the runs
    /// waiting in the index's queue are indexed first
    /// ([`Store::flush_search_index`]: a small write of its own).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit, label, cursor or search;
    /// [`Error::InvalidSearch`]; [`Error::SearchStale`] while index
    /// maintenance is deferred; an SQLite error if the flush or read fails.
    pub fn list_runs(&self, filter: &RunFilter) -> Result<RunPage> {
        query::list_runs(&self.conn, filter)
    }

    /// Indexes the runs waiting in the search index's queue, in a small
    /// transaction of its own (a search does this first, so it never misses
    /// a committed run; a commit does it once the queue reaches
    /// [`search::FLUSH_AT`]). Returns how many runs were indexed.
    ///
    /// # Errors
    /// An SQLite error if the write fails (nothing is lost: the queue stays).
    pub fn flush_search_index(&self) -> Result<usize> {
        search::flush_queue(&self.conn)
    }

    /// The batch with id `id` (state, counts, times).
    ///
    /// # Errors
    /// [`Error::NotFound`] if there is none.
    pub fn get_batch(&self, id: &str) -> Result<Batch> {
        batch::get_batch(&self.conn, id)
    }

    /// A page of batches matching `filter`, newest first (see
    /// [`batch::list_batches`] for the plan).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad queue, limit or cursor.
    pub fn list_batches(&self, filter: &BatchFilter) -> Result<BatchPage> {
        batch::list_batches(&self.conn, filter)
    }

    /// The active batches of `queue`, oldest first, read from the
    /// `active_batches` membership by primary-key prefix: the cost does not
    /// grow with batch history. Stale members (terminal batch) are removed
    /// best effort, in their own small transaction; members whose batch row
    /// is missing are skipped and kept (see [`batch::list_active_batches`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad queue name; an SQLite error if the
    /// read fails (never because the removal failed).
    pub fn list_active_batches(&self, queue: &str) -> Result<Vec<Batch>> {
        batch::list_active_batches(&self.conn, queue)
    }

    /// Folder of the alarm databases of a file store (`<path>.alarms`);
    /// `None` for an in-memory store (its alarms are in memory too).
    pub fn alarm_dir(&self) -> Option<&str> {
        match &self.alarm_home {
            AlarmHome::Memory => None,
            AlarmHome::Dir { dir, .. } => Some(dir),
        }
    }

    /// Opens (creating if missing) the alarm database of namespace `ns`:
    /// `<path>.alarms/<ns>.db` for a file store, in memory otherwise. Opening
    /// an open namespace returns it. Natively the folder is created if
    /// missing; on wasm the host must have created it (the core has no
    /// `mkdir`), see `js/src/alarms.ts`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name (see
    /// [`alarm::validate_namespace`]), before anything is created;
    /// `SQLITE_CANTOPEN` if the file cannot be created;
    /// [`Error::SchemaTooNew`] if a newer durq wrote it.
    pub fn alarm_db(&mut self, ns: &str) -> Result<&mut AlarmDb> {
        alarm::validate_namespace(ns)?;
        if !self.alarms.contains_key(ns) {
            let db = match &self.alarm_home {
                AlarmHome::Memory => {
                    let conn = Connection::open_in_memory()?;
                    configure(&conn, false, Synchronous::Normal)?;
                    AlarmDb::init(conn)?
                }
                AlarmHome::Dir { dir, options } => {
                    #[cfg(not(target_family = "wasm"))]
                    std::fs::create_dir_all(dir).map_err(|e| {
                        Error::Sqlite(rusqlite::Error::SqliteFailure(
                            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CANTOPEN),
                            Some(format!("cannot create the alarm folder {dir}: {e}")),
                        ))
                    })?;
                    let conn = open_file(&format!("{dir}/{ns}.db"), options)?;
                    configure(&conn, true, options.synchronous)?;
                    AlarmDb::init(conn)?
                }
            };
            self.alarms.insert(ns.to_owned(), db);
        }
        Ok(self.alarms.get_mut(ns).expect("inserted above"))
    }

    /// The alarm of `actor_id` in namespace `ns`, if any.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad namespace or actor id; open errors
    /// as [`Store::alarm_db`].
    pub fn get_alarm(&mut self, ns: &str, actor_id: &str) -> Result<Option<Alarm>> {
        self.alarm_db(ns)?.get(actor_id)
    }

    /// A page of namespace `ns`'s alarms, earliest first.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad namespace, limit, `before` or cursor.
    pub fn list_alarms(&mut self, ns: &str, filter: &AlarmFilter) -> Result<AlarmPage> {
        self.alarm_db(ns)?.list(filter)
    }

    /// The first alarm time (ms) of `ns` strictly after `after`: one seek
    /// of the `alarms_due` index. The façade's one timer takes the earliest
    /// of these and of each queue's [`Store::next_wake_at`].
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad namespace; an SQLite error.
    pub fn next_alarm_after(&mut self, ns: &str, after: i64) -> Result<Option<i64>> {
        self.alarm_db(ns)?.next_after(after)
    }

    /// The lifecycle events of run `id`, oldest first (see
    /// [`history::run_events`]).
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn run_events(&self, id: &str) -> Result<Vec<history::RunEvent>> {
        history::run_events(&self.conn, id)
    }

    /// Runs with an id greater than `after`, in id order (see
    /// [`query::export_runs`]).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit or cursor.
    pub fn export_runs(&self, after: Option<&str>, limit: i64) -> Result<RunPage> {
        query::export_runs(&self.conn, after, limit)
    }

    /// Generation of the last commit that wrote something (0 for a new
    /// database); run events carry the generation that wrote them.
    pub fn generation(&self) -> i64 {
        self.state.generation
    }

    /// Whether the search index is usable: `deferred` while a bulk import
    /// has its maintenance deferred (or one died and the restore at open
    /// failed: `open_error` says why).
    ///
    /// # Errors
    /// An SQLite error if `meta` cannot be read.
    pub fn search_status(&self) -> Result<SearchStatus> {
        let deferred = search::is_deferred(&self.conn)?;
        Ok(SearchStatus {
            deferred,
            open_error: if deferred {
                self.search_open_error.clone()
            } else {
                None
            },
        })
    }

    /// An estimate of the number of runs, O(1): the greatest rowid of
    /// `runs` (exact until runs are deleted). The façade uses it to decide
    /// whether an import defers index maintenance.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn run_count_estimate(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT coalesce(max(rowid), 0) FROM runs", [], |r| r.get(0))?)
    }

    /// Stored steps of a run, in the order they were stored.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn steps(&self, id: &str) -> Result<Vec<query::StepRecord>> {
        query::steps(&self.conn, id)
    }

    /// The stored output of effect `name` for the canonical input JSON
    /// `input` (any version; see [`crate::effect::get`]).
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn effect(&self, name: &str, input: &str) -> Result<Option<crate::effect::StoredEffect>> {
        crate::effect::get(&self.conn, name, input)
    }

    /// The stored output of step `name` of run `id`, if any.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn step_output(
        &self,
        id: &str,
        name: &str,
    ) -> Result<Option<Box<serde_json::value::RawValue>>> {
        query::step_output(&self.conn, id, name)
    }

    /// Log lines of a run, oldest first.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn logs(&self, id: &str) -> Result<Vec<query::LogRecord>> {
        query::logs(&self.conn, id)
    }

    /// When a worker of `queue` next has something to do: the earliest
    /// `runAt` of a pending run or lease expiry of a leased run, ms; `None`
    /// when the queue is empty. Two index seeks.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn next_wake_at(&self, queue: &str) -> Result<Option<i64>> {
        query::next_wake_at(&self.conn, queue)
    }

    /// The schedule `id`, if it exists.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad id; [`Error::Corrupt`] for a stored
    /// run that does not parse.
    pub fn get_schedule(&self, id: &str) -> Result<Option<schedule::read::Schedule>> {
        schedule::read::get(&self.conn, id)
    }

    /// A page of schedules in id order.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad limit or cursor.
    pub fn list_schedules(
        &self,
        filter: &schedule::read::ScheduleFilter,
    ) -> Result<schedule::read::SchedulePage> {
        schedule::read::list(&self.conn, filter)
    }

    /// The earliest slot any schedule has not fired, ms (one index seek):
    /// the scheduler timer wakes for it and submits `fireSchedules`.
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn next_schedule_at(&self) -> Result<Option<i64>> {
        schedule::read::next_at(&self.conn)
    }

    /// Every queue with runs or paused, with its paused flag and counts by
    /// status (one pass over the runs: O(runs)).
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn list_queues(&self) -> Result<Vec<queues::QueueInfo>> {
        queues::list(&self.conn)
    }

    /// Run counts by status (a scan of the status index: O(runs)).
    ///
    /// # Errors
    /// An SQLite error if the read fails.
    pub fn stats(&self) -> Result<query::Stats> {
        query::stats(&self.conn)
    }

    /// Runs `PRAGMA integrity_check` and returns its lines (`["ok"]` when
    /// the file is sound, <https://www.sqlite.org/pragma.html#pragma_integrity_check>).
    ///
    /// # Errors
    /// An SQLite error if the check cannot run.
    pub fn integrity_check(&self) -> Result<Vec<String>> {
        let mut st = self.conn.prepare("PRAGMA integrity_check")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Opens (creating if missing) an SQLite file read-write, through
/// `options.vfs` if set.
fn open_file(path: &str, options: &StoreOptions) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Ok(match &options.vfs {
        Some(vfs) => Connection::open_with_flags_and_vfs(path, flags, vfs.as_str())?,
        None => Connection::open_with_flags(path, flags)?,
    })
}

/// The pragmas of every durq connection: a file gets WAL (or, for
/// [`Synchronous::External`], an in-memory rollback journal) with
/// `locking_mode=EXCLUSIVE` (<https://www.sqlite.org/wal.html#noshm>) and
/// the chosen `synchronous`; every connection gets an 8 MiB page cache,
/// temporary storage in memory and no foreign keys.
fn configure(conn: &Connection, file: bool, sync: Synchronous) -> Result<()> {
    conn.set_prepared_statement_cache_capacity(128);
    if file {
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
        let want = if sync == Synchronous::External {
            "memory"
        } else {
            "wal"
        };
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", want, |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case(want) {
            return Err(Error::invalid(format!(
                "could not switch the database to journal_mode {want} (got {mode})"
            )));
        }
        conn.pragma_update(
            None,
            "synchronous",
            match sync {
                Synchronous::Full => "FULL",
                Synchronous::Normal => "NORMAL",
                Synchronous::External => "OFF",
            },
        )?;
    }
    // 8 MiB page cache (negative = KiB, https://www.sqlite.org/pragma.html#pragma_cache_size).
    // Wasm memory never shrinks, so the cache is resident for the life of the
    // process. At 32 MiB it was most of the 40 MiB of wasm memory; 8 MiB took
    // peak RSS for 300k runs enqueued and processed from 177 to 160 MiB with
    // enqueue and processing rates unchanged within noise (bench/memory.mjs,
    // BENCHMARKS.md "Memory"): appends touch the right edges of the b-trees
    // and claims one seek of `runs_claim`, a few hundred pages at most.
    conn.pragma_update(None, "cache_size", -8192)?;
    // Statement journals in memory, not in temporary files
    // (https://www.sqlite.org/tempfiles.html#stmtjrnl): a write that fires
    // the search index triggers needs one, and keeping it off the file
    // system made such inserts about 1.25x faster here. Temporary sorts
    // also stay in memory; durq's queries are planned to avoid them.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "foreign_keys", false)?;
    Ok(())
}
