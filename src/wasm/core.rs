//! `Core`: the one class the wasm module exports. Internal: the public
//! contract is the TypeScript façade in `js/src`, and the shapes of every
//! call are in `docs/boundary.md`.
//!
//! Plain data crosses as JSON text. Run inputs and outputs are user JSON that
//! the core stores verbatim, so a JSON string (made by `JSON.stringify`, read
//! once by `serde_json` with `RawValue`) is both the cheapest carrier and
//! the one that cannot change a value on the way.
//!
//! No method calls user JavaScript while it runs (the VFS host's file calls
//! are the only JS it reaches), so a re-entrant call cannot happen.

use super::error::{js_error, to_js};
use crate::{RunFilter, Store, StoreOptions, Synchronous};
use wasm_bindgen::prelude::*;

/// A durq database handle (one SQLite connection).
#[wasm_bindgen]
pub struct Core {
    store: Option<Store>,
}

type JsResult<T> = Result<T, JsValue>;

fn seed_of(seed: f64) -> u64 {
    if seed.is_finite() {
        seed.abs() as u64
    } else {
        0
    }
}

#[wasm_bindgen]
impl Core {
    /// Opens an in-memory database. `seed`: entropy for run ids (an integer
    /// below 2^53, e.g. from `crypto.getRandomValues`).
    ///
    /// Throws a `DurqError` if SQLite cannot set the database up.
    #[wasm_bindgen(js_name = openMemory)]
    pub fn open_memory(seed: f64) -> JsResult<Core> {
        Ok(Core {
            store: Some(Store::open_in_memory(seed_of(seed)).map_err(|e| to_js(&e))?),
        })
    }

    /// Opens (creating if missing) the database file at `path` through the
    /// host VFS, whose file I/O is done by `host` (see `js/src/node/host-fs.ts`).
    /// `synchronous` is `"full"` (fsync at every commit; the default),
    /// `"normal"`, or `"external"` when the host makes each `apply` atomic
    /// itself (a Durable Object's `transactionSync`; see
    /// [`crate::store::Synchronous::External`]).
    ///
    /// Throws `DURQ_INVALID_INPUT` for a bad `synchronous`, `SQLITE_CANTOPEN`
    /// if the file cannot be opened, `SQLITE_NOTADB` if it is not a database,
    /// `DURQ_SCHEMA_TOO_NEW` if a newer durq wrote it.
    #[wasm_bindgen(js_name = openFile)]
    pub fn open_file(
        path: &str,
        host: super::host_fs::HostFs,
        seed: f64,
        synchronous: &str,
    ) -> JsResult<Core> {
        let vfs = super::host_fs::register(host)?;
        Core::open_vfs(path, vfs, seed, synchronous)
    }

    /// Opens (creating if missing) the database file `path` through the
    /// registered SQLite VFS `vfs`: the browser entry passes the VFS of an
    /// installed [`super::opfs::OpfsPool`] (`pool.vfs`). `synchronous` as in
    /// `openFile`. Alarm namespaces open through the same VFS.
    ///
    /// Throws `DURQ_INVALID_INPUT` for a bad `synchronous` or path,
    /// `SQLITE_ERROR` ("no such vfs") for an unknown VFS, `SQLITE_CANTOPEN`
    /// if the pool has no free slot, `SQLITE_NOTADB` if the file is not a
    /// database, `DURQ_SCHEMA_TOO_NEW` if a newer durq wrote it.
    #[wasm_bindgen(js_name = openVfs)]
    pub fn open_vfs(path: &str, vfs: &str, seed: f64, synchronous: &str) -> JsResult<Core> {
        let synchronous = Synchronous::parse(synchronous).map_err(|e| to_js(&e))?;
        let options = StoreOptions {
            synchronous,
            vfs: Some(vfs.to_string()),
            seed: seed_of(seed),
        };
        Ok(Core {
            store: Some(Store::open(path, &options).map_err(|e| to_js(&e))?),
        })
    }

    fn store(&self) -> JsResult<&Store> {
        self.store
            .as_ref()
            .ok_or_else(|| to_js(&crate::Error::Closed))
    }

    fn store_mut(&mut self) -> JsResult<&mut Store> {
        self.store
            .as_mut()
            .ok_or_else(|| to_js(&crate::Error::Closed))
    }

    /// Applies a JSON array of operations (`{"op", "args"}` objects, see
    /// `js/src/generated/boundary.ts`) at `now` (ms since the Unix epoch,
    /// one clock for the whole group commit) in one transaction, a savepoint
    /// each; returns the JSON array of outcomes (`{"ok": ..., "finishedBatches"?: [...]}`
    /// or `{"err": {"code", "message", "extendedCode"?}}`).
    ///
    /// Throws `DURQ_CLOSED` after `close()`, `DURQ_INVALID_INPUT` if
    /// `opsJson` is not a JSON array or `now` is not an integer in
    /// 0 ..= 2^48 - 1, or an `SQLITE_*` error if the commit fails (then none
    /// of the operations took effect).
    pub fn apply(&mut self, now: f64, ops_json: &str) -> JsResult<String> {
        if now.fract() != 0.0 || !(0.0..=crate::validate::MAX_TIME_MS as f64).contains(&now) {
            return Err(js_error(
                "DURQ_INVALID_INPUT",
                &format!(
                    "now must be ms since the Unix epoch (an integer in 0 ..= 2^48 - 1), got {now}"
                ),
            ));
        }
        self.store_mut()?
            .apply_json(now as i64, ops_json)
            .map_err(|e| to_js(&e))
    }

    /// The run `id` as JSON. Throws `DURQ_NOT_FOUND` if there is none.
    #[wasm_bindgen(js_name = getRun)]
    pub fn get_run(&self, id: &str) -> JsResult<String> {
        let run = self.store()?.get_run(id).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&run).expect("run serializes"))
    }

    /// A page of runs for a JSON filter (`{job, status, queue, labels,
    /// createdAfter, createdBefore, batchId, search, searchSyntax, order,
    /// limit, cursor}`), as `{"runs": [...], "nextCursor": string | null}`.
    ///
    /// Throws `DURQ_INVALID_INPUT` for an unknown field, bad limit, label,
    /// cursor or search; `DURQ_INVALID_SEARCH` for a raw FTS5 query that FTS5
    /// rejects; `DURQ_SEARCH_STALE` for a search while index maintenance is
    /// deferred.
    #[wasm_bindgen(js_name = listRuns)]
    pub fn list_runs(&self, filter_json: &str) -> JsResult<String> {
        let filter: RunFilter = serde_json::from_str(filter_json)
            .map_err(|e| js_error("DURQ_INVALID_INPUT", &format!("bad listRuns filter: {e}")))?;
        let page = self.store()?.list_runs(&filter).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&page).expect("page serializes"))
    }

    /// Runs with an id greater than `after` (all when empty), in id order,
    /// at most `limit` (1..=1000), as `{"runs": [...], "nextCursor"}`: the
    /// pages of `exportRuns`. Throws `DURQ_INVALID_INPUT` for a bad limit or
    /// cursor.
    #[wasm_bindgen(js_name = exportRuns)]
    pub fn export_runs(&self, after: &str, limit: f64) -> JsResult<String> {
        let after = (!after.is_empty()).then_some(after);
        let page = self
            .store()?
            .export_runs(after, limit as i64)
            .map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&page).expect("page serializes"))
    }

    /// The lifecycle events of run `id` as a JSON array, oldest first
    /// (`[{kind, at, attempt, generation, data}]`; empty for an unknown run).
    #[wasm_bindgen(js_name = runEvents)]
    pub fn run_events(&self, id: &str) -> JsResult<String> {
        let list = self.store()?.run_events(id).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&list).expect("events serialize"))
    }

    /// `{"deferred": bool, "openError": string | null}`: whether search
    /// index maintenance is deferred (search answers `DURQ_SEARCH_STALE`),
    /// and why the repair at open failed if it did.
    #[wasm_bindgen(js_name = searchStatus)]
    pub fn search_status(&self) -> JsResult<String> {
        let st = self.store()?.search_status().map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&st).expect("status serializes"))
    }

    /// An O(1) estimate of the number of runs (the greatest rowid), which
    /// `importRuns` weighs against its own size to choose deferral.
    #[wasm_bindgen(js_name = runCountEstimate)]
    pub fn run_count_estimate(&self) -> JsResult<f64> {
        let n = self.store()?.run_count_estimate().map_err(|e| to_js(&e))?;
        Ok(n as f64)
    }

    /// Generation of the last commit that wrote something (run events carry
    /// the generation that wrote them).
    pub fn generation(&self) -> JsResult<f64> {
        Ok(self.store()?.generation() as f64)
    }

    /// The batch `id` as JSON (`{id, queue, state, labels, idempotencyKey,
    /// counts: {total, pending, leased, completed, failed, cancelled},
    /// createdAt, updatedAt, finishedAt}`). Throws `DURQ_NOT_FOUND` if there
    /// is none.
    #[wasm_bindgen(js_name = getBatch)]
    pub fn get_batch(&self, id: &str) -> JsResult<String> {
        let b = self.store()?.get_batch(id).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&b).expect("batch serializes"))
    }

    /// A page of batches for a JSON filter (`{queue, state, limit, cursor}`),
    /// as `{"batches": [...], "nextCursor": string | null}`, newest first.
    ///
    /// Throws `DURQ_INVALID_INPUT` for an unknown field, bad queue, limit or cursor.
    #[wasm_bindgen(js_name = listBatches)]
    pub fn list_batches(&self, filter_json: &str) -> JsResult<String> {
        let filter: crate::BatchFilter = serde_json::from_str(filter_json).map_err(|e| {
            js_error(
                "DURQ_INVALID_INPUT",
                &format!("bad listBatches filter: {e}"),
            )
        })?;
        let page = self.store()?.list_batches(&filter).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&page).expect("page serializes"))
    }

    /// The active batches of `queue` as a JSON array, oldest first, read
    /// through the `active_batches` membership (stale members are dropped
    /// best effort). Throws `DURQ_INVALID_INPUT` for a bad queue name.
    #[wasm_bindgen(js_name = listActiveBatches)]
    pub fn list_active_batches(&self, queue: &str) -> JsResult<String> {
        let list = self
            .store()?
            .list_active_batches(queue)
            .map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&list).expect("batches serialize"))
    }

    /// The stored output of effect `name` for the canonical input JSON
    /// `input`, as `{"version": n, "output": ...}`; `undefined` if none.
    #[wasm_bindgen(js_name = getEffect)]
    pub fn get_effect(&self, name: &str, input: &str) -> JsResult<Option<String>> {
        let found = self.store()?.effect(name, input).map_err(|e| to_js(&e))?;
        Ok(found.map(|e| serde_json::to_string(&e).expect("effect serializes")))
    }

    /// The stored output JSON of step `name` of run `id`; `undefined` if none.
    #[wasm_bindgen(js_name = getStepOutput)]
    pub fn get_step_output(&self, id: &str, name: &str) -> JsResult<Option<String>> {
        let found = self.store()?.step_output(id, name).map_err(|e| to_js(&e))?;
        Ok(found.map(|o| o.get().to_owned()))
    }

    /// Stored steps of run `id`: `[{name, output, attempt, createdAt}]`.
    #[wasm_bindgen(js_name = getSteps)]
    pub fn get_steps(&self, id: &str) -> JsResult<String> {
        let steps = self.store()?.steps(id).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&steps).expect("steps serialize"))
    }

    /// Log lines of run `id`: `[{at, attempt, level, message}]`.
    #[wasm_bindgen(js_name = getLogs)]
    pub fn get_logs(&self, id: &str) -> JsResult<String> {
        let logs = self.store()?.logs(id).map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&logs).expect("logs serialize"))
    }

    /// Earliest time (ms) a worker of `queue` has something to do: a pending
    /// run's `runAt` or a lease's expiry; `undefined` if none.
    #[wasm_bindgen(js_name = nextWakeAt)]
    pub fn next_wake_at(&self, queue: &str) -> JsResult<Option<f64>> {
        Ok(self
            .store()?
            .next_wake_at(queue)
            .map_err(|e| to_js(&e))?
            .map(|t| t as f64))
    }

    /// Checks an alarm namespace name (see `durq::alarm::validate_namespace`)
    /// without opening anything. Throws `DURQ_INVALID_INPUT` for a bad one.
    #[wasm_bindgen(js_name = validateNamespace)]
    pub fn validate_namespace(&self, ns: &str) -> JsResult<()> {
        crate::alarm::validate_namespace(ns).map_err(|e| to_js(&e))
    }

    /// Folder of the alarm databases of a file database (`<path>.alarms`),
    /// which the host must create before `openAlarms`; `undefined` for an
    /// in-memory database.
    #[wasm_bindgen(js_name = alarmDir)]
    pub fn alarm_dir(&self) -> JsResult<Option<String>> {
        Ok(self.store()?.alarm_dir().map(str::to_owned))
    }

    /// Opens (creating if missing) the alarm database of namespace `ns`.
    /// Throws `DURQ_INVALID_INPUT` for a bad name, `SQLITE_CANTOPEN` if the
    /// file cannot be created, `DURQ_SCHEMA_TOO_NEW`.
    #[wasm_bindgen(js_name = openAlarms)]
    pub fn open_alarms(&mut self, ns: &str) -> JsResult<()> {
        self.store_mut()?.alarm_db(ns).map_err(|e| to_js(&e))?;
        Ok(())
    }

    /// The alarm of `actorId` in `ns` as JSON (`{actorId, scheduledTime,
    /// deliverAt, retryCount, version}`), or `undefined`. Throws `DURQ_INVALID_INPUT`
    /// for a bad namespace or actor id.
    #[wasm_bindgen(js_name = getAlarm)]
    pub fn get_alarm(&mut self, ns: &str, actor_id: &str) -> JsResult<Option<String>> {
        let a = self
            .store_mut()?
            .get_alarm(ns, actor_id)
            .map_err(|e| to_js(&e))?;
        Ok(a.map(|a| serde_json::to_string(&a).expect("alarm serializes")))
    }

    /// A page of `ns`'s alarms for a JSON filter (`{before, limit, cursor}`)
    /// as `{"alarms": [...], "nextCursor": string | null}`, earliest first.
    /// Throws `DURQ_INVALID_INPUT` for an unknown field, bad limit, `before`
    /// or cursor.
    #[wasm_bindgen(js_name = listAlarms)]
    pub fn list_alarms(&mut self, ns: &str, filter_json: &str) -> JsResult<String> {
        let filter: crate::AlarmFilter = serde_json::from_str(filter_json)
            .map_err(|e| js_error("DURQ_INVALID_INPUT", &format!("bad alarm list filter: {e}")))?;
        let page = self
            .store_mut()?
            .list_alarms(ns, &filter)
            .map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&page).expect("page serializes"))
    }

    /// The first alarm time (ms) of `ns` strictly after `after` (one seek
    /// of the `alarms_due` index); `undefined` if none. Throws
    /// `DURQ_INVALID_INPUT` for a bad namespace.
    #[wasm_bindgen(js_name = nextAlarmAfter)]
    pub fn next_alarm_after(&mut self, ns: &str, after: f64) -> JsResult<Option<f64>> {
        Ok(self
            .store_mut()?
            .next_alarm_after(ns, after as i64)
            .map_err(|e| to_js(&e))?
            .map(|t| t as f64))
    }

    /// The schedule `id` as JSON (`{id, cron, timezone, catchUp, job, queue,
    /// input, labels, priority, concurrencyKey, maxAttempts, nextAt,
    /// lastSlotAt, lastRunId, createdAt, updatedAt}`), or `undefined`.
    /// Throws `DURQ_INVALID_INPUT` for a bad id.
    #[wasm_bindgen(js_name = getSchedule)]
    pub fn get_schedule(&self, id: &str) -> JsResult<Option<String>> {
        let s = self.store()?.get_schedule(id).map_err(|e| to_js(&e))?;
        Ok(s.map(|s| serde_json::to_string(&s).expect("schedule serializes")))
    }

    /// A page of schedules for a JSON filter (`{cursor, limit}`) as
    /// `{"schedules": [...], "nextCursor": string | null}`, in id order.
    /// Throws `DURQ_INVALID_INPUT` for an unknown field, bad limit or cursor.
    #[wasm_bindgen(js_name = listSchedules)]
    pub fn list_schedules(&self, filter_json: &str) -> JsResult<String> {
        let filter: crate::schedule::read::ScheduleFilter = serde_json::from_str(filter_json)
            .map_err(|e| {
                js_error(
                    "DURQ_INVALID_INPUT",
                    &format!("bad listSchedules filter: {e}"),
                )
            })?;
        let page = self
            .store()?
            .list_schedules(&filter)
            .map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&page).expect("page serializes"))
    }

    /// The earliest slot (ms) a schedule has not fired; `undefined` if none.
    #[wasm_bindgen(js_name = nextScheduleAt)]
    pub fn next_schedule_at(&self) -> JsResult<Option<f64>> {
        Ok(self
            .store()?
            .next_schedule_at()
            .map_err(|e| to_js(&e))?
            .map(|t| t as f64))
    }

    /// Every queue with runs or paused, as a JSON array of `{name, paused,
    /// pausedAt, counts: {pending, leased, completed, failed, cancelled}}`.
    #[wasm_bindgen(js_name = listQueues)]
    pub fn list_queues(&self) -> JsResult<String> {
        let q = self.store()?.list_queues().map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&q).expect("queues serialize"))
    }

    /// Run counts by status as JSON `{pending, leased, completed, failed, cancelled}`.
    pub fn stats(&self) -> JsResult<String> {
        let s = self.store()?.stats().map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&s).expect("stats serialize"))
    }

    /// `PRAGMA integrity_check` lines as JSON (`["ok"]` when sound).
    #[wasm_bindgen(js_name = integrityCheck)]
    pub fn integrity_check(&self) -> JsResult<String> {
        let lines = self.store()?.integrity_check().map_err(|e| to_js(&e))?;
        Ok(serde_json::to_string(&lines).expect("lines serialize"))
    }

    /// Closes the database (checkpointing the WAL of a file database). Every
    /// later call throws `DURQ_CLOSED`; closing twice is a no-op.
    pub fn close(&mut self) {
        self.store = None;
    }
}
