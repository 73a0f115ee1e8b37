//! The host VFS (src/vfs) driven natively by SQLite through `StdFileHost`,
//! the same VFS code the wasm build drives through `node:fs`.
//!
//! Run: `cargo test --test vfs_host`; the `wasm` module at the end runs the
//! same VFS through the wasm `HostFs` binding in Node:
//! `cargo test --target wasm32-unknown-unknown --test vfs_host`.

mod common;

#[cfg(not(target_family = "wasm"))]
mod native {

    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use durq::vfs::{
        last_error_message, register_host_vfs, register_host_vfs_as, FileHost, HostError,
        HostErrorKind, HostVfsData, HostVfsStore, OpenMode, StdFileHost, HOST_VFS_NAME,
    };
    use rusqlite::{Connection, ErrorCode, OpenFlags};

    use crate::common::TempDir;

    fn std_vfs() -> &'static str {
        register_host_vfs(StdFileHost::new()).unwrap()
    }

    fn open(path: &str, vfs: &str) -> rusqlite::Result<Connection> {
        Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            vfs,
        )
    }

    /// Opens like durq's store does: exclusive locking first, then WAL.
    fn open_wal(path: &str, vfs: &str, synchronous: &str) -> Connection {
        let conn = open(path, vfs).unwrap();
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .unwrap();
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", synchronous)
            .unwrap();
        conn
    }

    fn integrity(conn: &Connection) -> String {
        conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap()
    }

    fn count(conn: &Connection) -> i64 {
        conn.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap()
    }

    fn code(e: &rusqlite::Error) -> Option<ErrorCode> {
        e.sqlite_error_code()
    }

    #[test]
    fn conformance_suite_passes() {
        let dir = TempDir::new("suite");
        let data =
            rsqlite_vfs::VfsAppData::new(HostVfsData::new(StdFileHost::with_base_dir(dir.root())));
        rsqlite_vfs::test_suite::test_vfs_store::<HostVfsStore<StdFileHost>>(data).unwrap();
        assert!(dir.names().is_empty(), "left behind: {:?}", dir.names());
    }

    #[test]
    fn registration_is_idempotent() {
        assert_eq!(std_vfs(), HOST_VFS_NAME);
        assert_eq!(
            register_host_vfs(StdFileHost::new()).unwrap(),
            HOST_VFS_NAME
        );
        // A name some other code registered is refused, not hijacked.
        let taken = register_host_vfs_as("unix", StdFileHost::new()).unwrap_err();
        assert!(taken.to_string().contains("unix"), "{taken}");
    }

    #[test]
    fn rollback_journal_rows_survive_reopen() {
        let dir = TempDir::new("rollback");
        let path = dir.path("app.db");
        {
            let conn = open(&path, std_vfs()).unwrap();
            conn.execute_batch(
                "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL;
             CREATE TABLE t(id INTEGER PRIMARY KEY, body TEXT NOT NULL);",
            )
            .unwrap();
            for i in 0..200 {
                conn.execute(
                    "INSERT INTO t(body) VALUES (?1)",
                    [format!("row {i} {}", "x".repeat(i))],
                )
                .unwrap();
            }
            // The journal is deleted after every commit in DELETE mode.
            assert_eq!(dir.names(), ["app.db"]);
        }
        let conn = open(&path, std_vfs()).unwrap();
        assert_eq!(count(&conn), 200);
        let body: String = conn
            .query_row("SELECT body FROM t WHERE id = 200", [], |r| r.get(0))
            .unwrap();
        assert_eq!(body, format!("row 199 {}", "x".repeat(199)));
        assert_eq!(integrity(&conn), "ok");
    }

    #[test]
    fn wal_with_exclusive_locking_checkpoints_and_reopens() {
        let dir = TempDir::new("wal");
        let path = dir.path("app.db");
        {
            let conn = open_wal(&path, std_vfs(), "FULL");
            conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB NOT NULL);")
                .unwrap();
            for i in 0..100 {
                conn.execute("INSERT INTO t(body) VALUES (zeroblob(?1))", [1000 + i])
                    .unwrap();
            }
            // Exclusive mode: no -shm file, the wal-index is in heap memory.
            assert_eq!(dir.names(), ["app.db", "app.db-wal"]);
            let wal_len = std::fs::metadata(dir.path("app.db-wal")).unwrap().len();
            assert!(wal_len > 100 * 1000, "wal is {wal_len} bytes");

            let (busy, log, done): (i64, i64, i64) = conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .unwrap();
            assert_eq!((busy, log, done), (0, 0, 0));
            assert_eq!(std::fs::metadata(dir.path("app.db-wal")).unwrap().len(), 0);

            // More rows after the checkpoint live only in the WAL until close.
            for i in 0..10 {
                conn.execute("INSERT INTO t(body) VALUES (zeroblob(?1))", [i])
                    .unwrap();
            }
            assert_eq!(count(&conn), 110);
        }
        // Close checkpointed and removed the WAL.
        assert_eq!(dir.names(), ["app.db"]);
        let conn = open_wal(&path, std_vfs(), "FULL");
        assert_eq!(count(&conn), 110);
        assert_eq!(integrity(&conn), "ok");
    }

    #[test]
    fn wal_database_needs_exclusive_locking_set_first() {
        let dir = TempDir::new("wal-noexcl");
        let path = dir.path("app.db");
        {
            let conn = open_wal(&path, std_vfs(), "NORMAL");
            conn.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
                .unwrap();
        }
        // Without locking_mode=EXCLUSIVE, SQLite would need xShm*, which this
        // VFS does not have: reading a WAL database fails cleanly.
        let conn = open(&path, std_vfs()).unwrap();
        let err = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert!(code(&err).is_some(), "{err:?}");
        eprintln!("WAL database read without exclusive locking: {err}");
        drop(conn);
        // ...and with it, it works.
        let conn = open_wal(&path, std_vfs(), "NORMAL");
        assert_eq!(count(&conn), 1);
    }

    #[test]
    fn committed_wal_frames_are_recovered_from_a_copy_taken_while_open() {
        // What a crash leaves on disk: the database and its WAL as they are
        // while the connection is still open. Opening the copy must replay the
        // committed frames.
        let dir = TempDir::new("wal-copy");
        let path = dir.path("app.db");
        let conn = open_wal(&path, std_vfs(), "NORMAL");
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint=0; CREATE TABLE t(id INTEGER PRIMARY KEY, v TEXT);",
        )
        .unwrap();
        for i in 0..50 {
            conn.execute("INSERT INTO t(v) VALUES (?1)", [i.to_string()])
                .unwrap();
        }
        std::fs::copy(&path, dir.path("copy.db")).unwrap();
        std::fs::copy(dir.path("app.db-wal"), dir.path("copy.db-wal")).unwrap();
        let copy = open_wal(&dir.path("copy.db"), std_vfs(), "NORMAL");
        assert_eq!(count(&copy), 50);
        assert_eq!(integrity(&copy), "ok");
        drop(conn);
    }

    #[test]
    fn hot_rollback_journal_is_rolled_back() {
        // A transaction that spilled pages into the database file, copied with
        // its journal before COMMIT: opening the copy must roll it back.
        let dir = TempDir::new("hot-journal");
        let path = dir.path("app.db");
        let conn = open(&path, std_vfs()).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode=DELETE; PRAGMA cache_size=10;
         CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB);",
        )
        .unwrap();
        for _ in 0..20 {
            conn.execute("INSERT INTO t(body) VALUES (randomblob(3000))", [])
                .unwrap();
        }
        conn.execute_batch(
            "BEGIN; UPDATE t SET body = randomblob(3000); INSERT INTO t(body) SELECT body FROM t;",
        )
        .unwrap();
        assert!(std::fs::metadata(dir.path("app.db-journal")).unwrap().len() > 0);
        std::fs::copy(&path, dir.path("copy.db")).unwrap();
        std::fs::copy(dir.path("app.db-journal"), dir.path("copy.db-journal")).unwrap();
        conn.execute_batch("ROLLBACK").unwrap();

        let copy = open(&dir.path("copy.db"), std_vfs()).unwrap();
        assert_eq!(count(&copy), 20);
        assert_eq!(integrity(&copy), "ok");
        drop(copy);
        assert!(!Path::new(&dir.path("copy.db-journal")).exists());
    }

    #[test]
    fn second_connection_to_an_exclusive_database_gets_busy() {
        let dir = TempDir::new("busy");
        let path = dir.path("app.db");
        let first = open_wal(&path, std_vfs(), "NORMAL");
        first
            .execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();

        let second = open(&path, std_vfs()).unwrap();
        second
            .pragma_update(None, "locking_mode", "EXCLUSIVE")
            .unwrap();
        let err = second
            .query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::DatabaseBusy), "{err:?}");
        drop(second);
        assert_eq!(count(&first), 1);
        drop(first);
        // The locks went with the connection.
        let third = open_wal(&path, std_vfs(), "NORMAL");
        assert_eq!(count(&third), 1);
    }

    #[test]
    fn shared_readers_then_a_writer_in_rollback_mode() {
        let dir = TempDir::new("readers");
        let path = dir.path("app.db");
        let a = open(&path, std_vfs()).unwrap();
        a.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
            .unwrap();
        let b = open(&path, std_vfs()).unwrap();
        // b holds a SHARED lock while its read transaction is open.
        b.execute_batch("BEGIN; SELECT * FROM t;").unwrap();
        let err = a.execute("INSERT INTO t VALUES (2)", []).unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::DatabaseBusy), "{err:?}");
        b.execute_batch("COMMIT").unwrap();
        a.execute("INSERT INTO t VALUES (2)", []).unwrap();
        assert_eq!(count(&b), 2);
    }

    #[test]
    fn temp_tables_sorts_and_vacuum_use_memory_not_files() {
        let dir = TempDir::new("temp");
        let path = dir.path("app.db");
        let conn = open_wal(&path, std_vfs(), "NORMAL");
        conn.execute_batch(
            "PRAGMA cache_size=5; PRAGMA temp_store=FILE;
         CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT);
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 5000)
           INSERT INTO t(k) SELECT hex(randomblob(16)) FROM n;
         CREATE TEMP TABLE scratch AS SELECT k FROM t ORDER BY k;
         CREATE INDEX t_k ON t(k);",
        )
        .unwrap();
        let sorted: i64 = conn
            .query_row("SELECT count(*) FROM scratch", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sorted, 5000);
        conn.execute_batch("VACUUM").unwrap();
        assert_eq!(count(&conn), 5000);
        assert_eq!(integrity(&conn), "ok");
        assert_eq!(dir.names(), ["app.db", "app.db-wal"]);
    }

    #[test]
    fn bad_paths_are_errors_not_panics() {
        let dir = TempDir::new("bad");
        let vfs = std_vfs();
        // Missing parent directory.
        let err = open(&dir.path("no/such/dir/app.db"), vfs).unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::CannotOpen), "{err:?}");
        assert!(last_error_message().is_some_and(|m| m.contains("no/such/dir")));
        // A directory where the database should be.
        std::fs::create_dir(dir.path("a-dir")).unwrap();
        let err = open(&dir.path("a-dir"), vfs)
            .and_then(|c| c.execute_batch("CREATE TABLE t(x)"))
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::CannotOpen), "{err:?}");
        // A missing file opened without CREATE.
        let err = Connection::open_with_flags_and_vfs(
            dir.path("missing.db"),
            OpenFlags::SQLITE_OPEN_READ_WRITE,
            vfs,
        )
        .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::CannotOpen), "{err:?}");
        // A file that is not a database.
        std::fs::write(dir.path("junk.db"), vec![7u8; 8192]).unwrap();
        let conn = open(&dir.path("junk.db"), vfs).unwrap();
        let err = conn
            .execute_batch("SELECT * FROM sqlite_master")
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::NotADatabase), "{err:?}");
        // Unknown VFS name.
        assert!(open(&dir.path("x.db"), "durq-no-such-vfs").is_err());
    }

    #[test]
    fn relative_paths_resolve_against_the_base_dir() {
        let dir = TempDir::new("relative");
        let host = StdFileHost::with_base_dir(dir.root());
        assert_eq!(host.full_path("app.db").unwrap(), dir.path("app.db"));
        assert_eq!(host.full_path(&dir.path("x.db")).unwrap(), dir.path("x.db"));
        assert_eq!(
            host.full_path("").unwrap_err().kind,
            HostErrorKind::NotFound
        );
    }

    #[test]
    fn node_error_codes_classify() {
        for (code, kind) in [
            ("ENOENT", HostErrorKind::NotFound),
            ("EEXIST", HostErrorKind::AlreadyExists),
            ("ENOSPC", HostErrorKind::NoSpace),
            ("EDQUOT", HostErrorKind::NoSpace),
            ("EACCES", HostErrorKind::PermissionDenied),
            ("EROFS", HostErrorKind::ReadOnlyFilesystem),
            ("EISDIR", HostErrorKind::IsADirectory),
            ("EINTR", HostErrorKind::Interrupted),
            ("EIO", HostErrorKind::Other),
            ("ERR_INVALID_ARG_TYPE", HostErrorKind::Other),
        ] {
            assert_eq!(HostErrorKind::from_node_code(code), kind, "{code}");
        }
    }

    /// A `StdFileHost` that counts syncs and can be told to fail writes.
    struct Instrumented {
        inner: StdFileHost,
        syncs: Arc<AtomicUsize>,
        dir_syncs: Arc<AtomicUsize>,
        fail_writes: Arc<AtomicBool>,
        interrupt_next_read: Arc<AtomicBool>,
    }

    #[derive(Clone, Default)]
    struct Probes {
        syncs: Arc<AtomicUsize>,
        dir_syncs: Arc<AtomicUsize>,
        fail_writes: Arc<AtomicBool>,
        interrupt_next_read: Arc<AtomicBool>,
    }

    impl Probes {
        /// Registers an instrumented host under `name` (one name per test: the
        /// first registration of a name wins).
        fn register(&self, name: &'static str) -> &'static str {
            register_host_vfs_as(
                name,
                Instrumented {
                    inner: StdFileHost::new(),
                    syncs: self.syncs.clone(),
                    dir_syncs: self.dir_syncs.clone(),
                    fail_writes: self.fail_writes.clone(),
                    interrupt_next_read: self.interrupt_next_read.clone(),
                },
            )
            .unwrap()
        }
    }

    impl FileHost for Instrumented {
        type Handle = std::fs::File;
        fn open(&self, path: &str, mode: OpenMode) -> Result<Self::Handle, HostError> {
            self.inner.open(path, mode)
        }
        fn read_at(
            &self,
            h: &Self::Handle,
            buf: &mut [u8],
            offset: u64,
        ) -> Result<usize, HostError> {
            if self.interrupt_next_read.swap(false, Ordering::SeqCst) {
                return Err(HostError::new(
                    HostErrorKind::Interrupted,
                    "EINTR: interrupted",
                ));
            }
            // Return at most 100 bytes at a time: the VFS must keep reading.
            let n = buf.len().min(100);
            self.inner.read_at(h, &mut buf[..n], offset)
        }
        fn write_all_at(
            &self,
            h: &Self::Handle,
            data: &[u8],
            offset: u64,
        ) -> Result<(), HostError> {
            if self.fail_writes.load(Ordering::SeqCst) {
                return Err(HostError {
                    kind: HostErrorKind::NoSpace,
                    message: "ENOSPC: no space left on device, write".into(),
                    errno: Some(28),
                });
            }
            self.inner.write_all_at(h, data, offset)
        }
        fn truncate(&self, h: &Self::Handle, size: u64) -> Result<(), HostError> {
            self.inner.truncate(h, size)
        }
        fn sync(&self, h: &Self::Handle, data_only: bool) -> Result<(), HostError> {
            self.syncs.fetch_add(1, Ordering::SeqCst);
            self.inner.sync(h, data_only)
        }
        fn size(&self, h: &Self::Handle) -> Result<u64, HostError> {
            self.inner.size(h)
        }
        fn close(&self, h: Self::Handle) -> Result<(), HostError> {
            self.inner.close(h)
        }
        fn exists(&self, path: &str) -> Result<bool, HostError> {
            self.inner.exists(path)
        }
        fn delete(&self, path: &str) -> Result<(), HostError> {
            self.inner.delete(path)
        }
        fn sync_dir(&self, path: &str) -> Result<(), HostError> {
            self.dir_syncs.fetch_add(1, Ordering::SeqCst);
            self.inner.sync_dir(path)
        }
        fn full_path(&self, path: &str) -> Result<String, HostError> {
            self.inner.full_path(path)
        }
    }

    #[test]
    fn synchronous_full_fsyncs_every_commit_and_normal_does_not() {
        let probes = Probes::default();
        let vfs = probes.register("durq-test-syncs");
        let dir = TempDir::new("syncs");
        let conn = open_wal(&dir.path("app.db"), vfs, "FULL");
        conn.execute_batch("CREATE TABLE t(x)").unwrap();
        // The new WAL's directory entry was made durable at its first sync.
        assert!(probes.dir_syncs.load(Ordering::SeqCst) >= 1);

        let before = probes.syncs.load(Ordering::SeqCst);
        for i in 0..10 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        let full = probes.syncs.load(Ordering::SeqCst) - before;
        assert!(
            full >= 10,
            "{full} syncs for 10 commits with synchronous=FULL"
        );

        conn.pragma_update(None, "synchronous", "NORMAL").unwrap();
        let before = probes.syncs.load(Ordering::SeqCst);
        for i in 0..10 {
            conn.execute("INSERT INTO t VALUES (?1)", [i]).unwrap();
        }
        assert_eq!(probes.syncs.load(Ordering::SeqCst) - before, 0);

        // A checkpoint syncs the WAL and the database even with NORMAL.
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
            .unwrap();
        assert!(probes.syncs.load(Ordering::SeqCst) - before >= 2);
    }

    #[test]
    fn disk_full_is_sqlite_full_and_the_database_stays_intact() {
        let probes = Probes::default();
        let vfs = probes.register("durq-test-full");
        let dir = TempDir::new("full");
        let path = dir.path("app.db");
        let conn = open_wal(&path, vfs, "FULL");
        conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)")
            .unwrap();
        conn.execute("INSERT INTO t(body) VALUES (zeroblob(100))", [])
            .unwrap();

        probes.fail_writes.store(true, Ordering::SeqCst);
        let err = conn
            .execute("INSERT INTO t(body) VALUES (zeroblob(100000))", [])
            .unwrap_err();
        assert_eq!(code(&err), Some(ErrorCode::DiskFull), "{err:?}");
        let message = last_error_message().unwrap();
        assert!(
            message.contains("ENOSPC") && message.contains("app.db"),
            "{message}"
        );
        probes.fail_writes.store(false, Ordering::SeqCst);

        conn.execute("INSERT INTO t(body) VALUES (zeroblob(100))", [])
            .unwrap();
        assert_eq!(count(&conn), 2);
        drop(conn);
        let conn = open_wal(&path, vfs, "FULL");
        assert_eq!(count(&conn), 2);
        assert_eq!(integrity(&conn), "ok");
    }

    #[test]
    fn short_and_interrupted_reads_are_retried() {
        let probes = Probes::default();
        let vfs = probes.register("durq-test-reads");
        let dir = TempDir::new("reads");
        let path = dir.path("app.db");
        {
            let conn = open(&path, vfs).unwrap();
            conn.execute_batch("CREATE TABLE t(x TEXT); INSERT INTO t VALUES ('hello');")
                .unwrap();
        }
        probes.interrupt_next_read.store(true, Ordering::SeqCst);
        let conn = open(&path, vfs).unwrap();
        let x: String = conn.query_row("SELECT x FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(x, "hello");
        assert!(!probes.interrupt_next_read.load(Ordering::SeqCst));
    }

    /// Env var that turns `kill9_child_writer` into the writer process of the
    /// kill -9 tests: `<db path>|<journal mode>|<synchronous>`.
    const CHILD_ENV: &str = "DURQ_VFS_KILL9_CHILD";

    /// The child process of `kill_9_*`: commits rows one transaction at a time
    /// and prints `committed=<id>` after each COMMIT returns, until killed (or
    /// for at most 60 s).
    #[test]
    #[ignore = "child process of the kill -9 tests"]
    fn kill9_child_writer() {
        let Ok(spec) = std::env::var(CHILD_ENV) else {
            return;
        };
        let mut parts = spec.split('|');
        let (path, journal, sync) = (
            parts.next().unwrap(),
            parts.next().unwrap(),
            parts.next().unwrap(),
        );
        let conn = open(path, std_vfs()).unwrap();
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .unwrap();
        conn.pragma_update(None, "journal_mode", journal).unwrap();
        conn.pragma_update(None, "synchronous", sync).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint=20;
         CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, body BLOB NOT NULL);",
        )
        .unwrap();
        let started = Instant::now();
        let mut id: i64 = conn
            .query_row("SELECT coalesce(max(id), 0) FROM t", [], |r| r.get(0))
            .unwrap();
        while started.elapsed() < Duration::from_secs(60) {
            id += 1;
            conn.execute(
                "INSERT INTO t(id, body) VALUES (?1, randomblob(1500 + ?1 % 3000))",
                [id],
            )
            .unwrap();
            println!("committed={id}");
        }
    }

    /// Runs the writer in a child process and kills it with SIGKILL after it
    /// reported `commits` more commits, three times over on the same database
    /// (so the kills land mid-write, mid-checkpoint, after recovery...), and
    /// checks after each kill that every reported commit is there.
    fn kill_9_keeps_committed_rows(journal: &str, sync: &str, commits: i64) {
        let dir = TempDir::new("kill9");
        let path = dir.path("app.db");
        let mut expected = 0;
        for round in 0..3 {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "native::kill9_child_writer",
                    "--exact",
                    "--ignored",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CHILD_ENV, format!("{path}|{journal}|{sync}"))
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut last = expected;
            for line in BufReader::new(child.stdout.take().unwrap()).lines() {
                let line = line.unwrap();
                if let Some(at) = line.rfind("committed=") {
                    last = line[at + "committed=".len()..].trim().parse().unwrap();
                    if last >= expected + commits {
                        break;
                    }
                }
            }
            child.kill().unwrap(); // SIGKILL on unix
            child.wait().unwrap();
            assert!(
                last >= expected + commits,
                "round {round}: the writer stopped at {last}"
            );

            let conn = open(&path, std_vfs()).unwrap();
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .unwrap();
            assert_eq!(integrity(&conn), "ok", "{journal}/{sync} round {round}");
            let (n, max): (i64, i64) = conn
                .query_row("SELECT count(*), max(id) FROM t", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .unwrap();
            eprintln!("{journal}/{sync} round {round}: killed after commit {last}, found {n} rows");
            // Every reported commit is there, with no gap; one more may have
            // committed between the print we read and the kill.
            assert!(
                max >= last,
                "{journal}/{sync}: {max} rows after {last} reported commits"
            );
            assert_eq!(n, max, "{journal}/{sync}: ids have gaps");
            expected = max;
        }
    }

    #[test]
    fn kill_9_wal_synchronous_normal_keeps_committed_rows() {
        kill_9_keeps_committed_rows("WAL", "NORMAL", 300);
    }

    #[test]
    fn kill_9_wal_synchronous_full_keeps_committed_rows() {
        kill_9_keeps_committed_rows("WAL", "FULL", 100);
    }

    #[test]
    fn kill_9_rollback_journal_keeps_committed_rows() {
        kill_9_keeps_committed_rows("DELETE", "FULL", 100);
    }
}

#[cfg(target_family = "wasm")]
mod wasm {
    //! The VFS through `durq::wasm::host_fs::HostFs`, with a JS host on
    //! `node:fs` (the same calls `js/src/node/host-fs.ts` makes), in Node.

    use durq::vfs::{last_error_message, register_host_vfs_as};
    use durq::wasm::host_fs::HostFs;
    use rusqlite::{Connection, ErrorCode, OpenFlags};
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_test::wasm_bindgen_test as test;

    use crate::common::node::{
        make_host, make_state, names, remove_dir, set_full_disk, syncs, temp_dir,
    };

    fn open_wal(path: &str, vfs: &str) -> Connection {
        let conn = Connection::open_with_flags_and_vfs(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            vfs,
        )
        .unwrap();
        conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
            .unwrap();
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn
    }

    #[test]
    fn rows_survive_reopen_and_syncs_reach_the_host() {
        let state = make_state();
        let vfs = register_host_vfs_as("durq-wasm-test-basic", make_host(&state)).unwrap();
        let dir = temp_dir("durq-vfs-wasm-");
        let path = format!("{dir}/app.db");
        {
            let conn = open_wal(&path, vfs);
            conn.execute_batch("CREATE TABLE t(id INTEGER PRIMARY KEY, body BLOB)")
                .unwrap();
            let before = syncs(&state);
            for i in 0..50 {
                conn.execute(
                    "INSERT INTO t(body) VALUES (randomblob(?1))",
                    [100 + i * 50],
                )
                .unwrap();
            }
            assert!(syncs(&state) - before >= 50.0);
            assert_eq!(names(&dir), "app.db,app.db-wal");
        }
        assert_eq!(names(&dir), "app.db");
        let conn = open_wal(&path, vfs);
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 50);
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        drop(conn);
        remove_dir(&dir);
    }

    #[test]
    fn thrown_enospc_is_sqlite_full_and_a_missing_dir_is_cantopen() {
        let state = make_state();
        let vfs = register_host_vfs_as("durq-wasm-test-errors", make_host(&state)).unwrap();
        let dir = temp_dir("durq-vfs-wasm-");
        let path = format!("{dir}/app.db");
        let conn = open_wal(&path, vfs);
        conn.execute_batch("CREATE TABLE t(x BLOB); INSERT INTO t VALUES (1);")
            .unwrap();
        set_full_disk(&state, true);
        let err = conn
            .execute("INSERT INTO t VALUES (zeroblob(50000))", [])
            .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(ErrorCode::DiskFull),
            "{err:?}"
        );
        assert!(last_error_message().unwrap().contains("ENOSPC"));
        set_full_disk(&state, false);
        conn.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let n: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 2);
        drop(conn);

        let err = Connection::open_with_flags_and_vfs(
            format!("{dir}/no/such/dir/app.db"),
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            vfs,
        )
        .unwrap_err();
        assert_eq!(
            err.sqlite_error_code(),
            Some(ErrorCode::CannotOpen),
            "{err:?}"
        );
        remove_dir(&dir);
    }

    #[test]
    fn register_gives_one_vfs_per_host_object() {
        let state = make_state();
        let first = durq::wasm::host_fs::register(make_host(&state)).unwrap();
        let host = make_host(&state);
        let same = JsValue::from(&host);
        let second = durq::wasm::host_fs::register(host).unwrap();
        assert_ne!(first, second);
        let again = durq::wasm::host_fs::register(same.unchecked_into::<HostFs>()).unwrap();
        assert_eq!(second, again);
    }
}
