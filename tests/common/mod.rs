//! Helpers shared by the integration tests (`mod common;` in each): temp
//! directories on both targets and, on wasm, a `HostFs` on `node:fs` like
//! the one `js/src/node/host-fs.ts` builds.
//!
//! Not every test file uses every helper.
#![allow(dead_code)]

pub mod suite;

/// A fresh directory under the system temp dir (natively through
/// `std::fs`, on wasm through `node:fs`), removed with its files on drop.
pub struct TempDir(String);

impl TempDir {
    /// Makes `<tmp>/durq-<tag>-...`.
    #[cfg(not(target_family = "wasm"))]
    pub fn new(tag: &str) -> TempDir {
        use std::sync::atomic::{AtomicU64, Ordering};
        use std::time::{SystemTime, UNIX_EPOCH};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!(
            "durq-{tag}-{}-{}-{nanos}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir.to_str().unwrap().to_owned())
    }

    /// Makes `<tmp>/durq-<tag>-XXXXXX` in Node; in a browser worker a fresh
    /// name prefix `/durq-<tag>-<n>-<random>` in the tests' OPFS pool (which has no
    /// directories: files are named by their whole path).
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    pub fn new(tag: &str) -> TempDir {
        if in_node() {
            TempDir(node::temp_dir(&format!("durq-{tag}-")))
        } else {
            TempDir(opfs::temp_root(tag))
        }
    }

    /// The path of `name` in this directory.
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.0)
    }

    /// The directory itself.
    pub fn root(&self) -> &str {
        &self.0
    }

    /// Names of the files in the directory, sorted.
    #[cfg(not(target_family = "wasm"))]
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

/// Whether `path` exists on disk.
pub fn path_exists(path: &str) -> bool {
    #[cfg(not(target_family = "wasm"))]
    return std::path::Path::new(path).exists();
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    return if in_node() {
        node::exists(path)
    } else {
        opfs::exists(path)
    };
}

/// Creates the alarm folder of a file store where the core cannot (on wasm
/// the host creates it, as `js/src/alarms.ts` does); natively a no-op.
#[allow(unused_variables)]
pub fn prepare_alarm_dir(store: &durq::Store) {
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    if let (true, Some(dir)) = (in_node(), store.alarm_dir()) {
        node::mkdir(dir);
    }
}

/// The `EXPLAIN QUERY PLAN` lines of `sql` on `conn`, joined by newlines.
#[allow(dead_code)]
pub fn plan(conn: &rusqlite::Connection, sql: &str, params: &[rusqlite::types::Value]) -> String {
    let mut st = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let rows = st
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            r.get::<_, String>(3)
        })
        .unwrap();
    rows.map(|r| r.unwrap()).collect::<Vec<_>>().join("\n")
}

impl Drop for TempDir {
    fn drop(&mut self) {
        #[cfg(not(target_family = "wasm"))]
        let _ = std::fs::remove_dir_all(&self.0);
        #[cfg(all(target_family = "wasm", target_os = "unknown"))]
        if in_node() {
            node::remove_dir(&self.0);
        } else {
            opfs::remove_under(&self.0);
        }
    }
}

/// Whether the wasm test runs in Node (else in a browser worker).
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub fn in_node() -> bool {
    js_sys::Reflect::has(&js_sys::global(), &"process".into()).unwrap_or(false)
}

/// Prepares the storage before a wasm test (see `durq-test-macros`): a
/// no-op in Node; in a browser worker, installs the tests' OPFS pool once.
#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub async fn ready() {
    if !in_node() {
        opfs::install().await;
    }
}

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub mod opfs {
    //! The OPFS pool of the browser tests (`tests/browser.rs`), installed
    //! through `durq::wasm::opfs::OpfsPool` as the browser entry does.

    use durq::wasm::opfs::OpfsPool;
    use std::cell::{Cell, OnceCell};

    /// Slots the tests' pool holds: two per open database (file and WAL);
    /// a test opens a few databases and alarm namespaces at a time.
    const SLOTS: u32 = 48;

    thread_local! {
        static POOL: OnceCell<OpfsPool> = const { OnceCell::new() };
        static NEXT: Cell<u64> = const { Cell::new(0) };
    }

    /// Installs the pool `durq-tests` (once per worker) with [`SLOTS`] slots.
    pub async fn install() {
        if POOL.with(|p| p.get().is_some()) {
            return;
        }
        let pool = OpfsPool::install_pool("durq-tests").await.unwrap();
        pool.reserve(SLOTS).await.unwrap();
        POOL.with(|p| {
            let _ = p.set(pool);
        });
    }

    fn with_pool<T>(f: impl FnOnce(&OpfsPool) -> T) -> T {
        POOL.with(|p| f(p.get().expect("common::ready() installs the OPFS pool")))
    }

    /// The pool's SQLite VFS name.
    pub fn vfs() -> String {
        with_pool(|p| p.vfs())
    }

    /// A name prefix `/durq-<tag>-<n>-<random>` no file of the pool has yet.
    pub fn temp_root(tag: &str) -> String {
        let n = NEXT.with(|c| {
            c.set(c.get() + 1);
            c.get()
        });
        // Each suite of tests/browser.rs has its own copy of this module
        // (and counter): the random part keeps their names apart.
        let salt = (js_sys::Math::random() * 1e9) as u64;
        let root = format!("/durq-{tag}-{n}-{salt}");
        remove_under(&root);
        root
    }

    /// Whether `path` is a file of the pool, or a prefix (`path/...`) of one.
    pub fn exists(path: &str) -> bool {
        let dir = format!("{path}/");
        with_pool(|p| {
            p.file_names()
                .unwrap()
                .iter()
                .any(|n| n == path || n.starts_with(&dir))
        })
    }

    /// Deletes the pool's files under `root/`.
    pub fn remove_under(root: &str) {
        let dir = format!("{root}/");
        with_pool(|p| {
            for name in p.file_names().unwrap() {
                if name.starts_with(&dir) {
                    p.remove_file(&name).unwrap();
                }
            }
        })
    }
}

/// The host VFS on `std::fs`, registered once as `"durq-host"`.
#[cfg(not(target_family = "wasm"))]
pub fn std_host_vfs() -> &'static str {
    durq::vfs::register_host_vfs(durq::vfs::StdFileHost::new()).unwrap()
}

#[cfg(all(target_family = "wasm", target_os = "unknown"))]
pub mod node {
    //! A `HostFs` on `node:fs` (the calls `js/src/node/host-fs.ts` makes),
    //! with a `state` object that counts syncs and can fake a full disk.
    //!
    //! The JS is compiled at first use with `new Function` and reaches Node's
    //! modules through `process.getBuiltinModule` (Node 20.16+), rather than
    //! through an `inline_js` snippet: the same test files also run in a
    //! browser worker (`tests/browser.rs`), where a snippet importing
    //! `node:fs` would fail to load the whole test module.

    use durq::wasm::host_fs::HostFs;
    use js_sys::{Array, Function, Reflect};
    use wasm_bindgen::{JsCast, JsValue};

    const HELPERS: &str = r#"
const fs = process.getBuiltinModule("node:fs");
const os = process.getBuiltinModule("node:os");
const path = process.getBuiltinModule("node:path");
const FLAGS = {
  read: fs.constants.O_RDONLY,
  readWrite: fs.constants.O_RDWR,
  create: fs.constants.O_RDWR | fs.constants.O_CREAT,
  createNew: fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL,
};
function nodeHost(state) {
  return {
    open: (p, mode) => fs.openSync(p, FLAGS[mode]),
    read: (fd, buf, pos) => fs.readSync(fd, buf, 0, buf.length, pos),
    write: (fd, data, pos) => {
      if (state.fullDisk) throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28 });
      let done = 0;
      while (done < data.length) done += fs.writeSync(fd, data, done, data.length - done, pos + done);
      return done;
    },
    truncate: (fd, size) => fs.ftruncateSync(fd, size),
    sync: (fd, dataOnly) => { state.syncs += 1; dataOnly ? fs.fdatasyncSync(fd) : fs.fsyncSync(fd); },
    size: (fd) => fs.fstatSync(fd).size,
    close: (fd) => fs.closeSync(fd),
    exists: (p) => fs.existsSync(p),
    delete: (p) => { try { fs.unlinkSync(p); } catch (e) { if (e.code !== "ENOENT") throw e; } },
    syncDir: (p) => { const fd = fs.openSync(path.dirname(p), "r"); try { fs.fsyncSync(fd); } finally { fs.closeSync(fd); } },
    fullPath: (p) => path.resolve(p),
  };
}
return {
  makeHost: (state) => nodeHost(state),
  makeState: () => ({ syncs: 0, fullDisk: false }),
  setFullDisk: (state, on) => { state.fullDisk = on; },
  syncs: (state) => state.syncs,
  tempDir: (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix ?? "durq-wasm-")),
  removeDir: (d) => fs.rmSync(d, { recursive: true, force: true }),
  names: (d) => fs.readdirSync(d).sort().join(","),
  mkdir: (d) => { fs.mkdirSync(d, { recursive: true }); },
  exists: (p) => fs.existsSync(p),
};
"#;

    thread_local! {
        static FNS: JsValue = Function::new_no_args(HELPERS).call0(&JsValue::UNDEFINED).unwrap();
    }

    /// Calls helper `name` of [`HELPERS`] with `args`.
    fn call(name: &str, args: &[&JsValue]) -> JsValue {
        FNS.with(|fns| {
            let f: Function = Reflect::get(fns, &JsValue::from_str(name))
                .unwrap()
                .unchecked_into();
            f.apply(
                &JsValue::UNDEFINED,
                &args.iter().copied().collect::<Array>(),
            )
            .unwrap()
        })
    }

    /// A fresh `HostFs` object on `node:fs` reporting to `state`.
    pub fn make_host(state: &JsValue) -> HostFs {
        call("makeHost", &[state]).unchecked_into()
    }
    /// A fresh `{ syncs: 0, fullDisk: false }`.
    pub fn make_state() -> JsValue {
        call("makeState", &[])
    }
    /// While `on`, every write throws `ENOSPC`.
    pub fn set_full_disk(state: &JsValue, on: bool) {
        call("setFullDisk", &[state, &JsValue::from_bool(on)]);
    }
    /// How many `sync` calls the hosts of `state` got.
    pub fn syncs(state: &JsValue) -> f64 {
        call("syncs", &[state]).as_f64().unwrap()
    }
    /// A fresh directory `<os.tmpdir()>/<prefix>XXXXXX`.
    pub fn temp_dir(prefix: &str) -> String {
        call("tempDir", &[&JsValue::from_str(prefix)])
            .as_string()
            .unwrap()
    }
    /// `rm -rf dir`.
    pub fn remove_dir(dir: &str) {
        call("removeDir", &[&JsValue::from_str(dir)]);
    }
    /// The names in `dir`, sorted, joined with commas.
    pub fn names(dir: &str) -> String {
        call("names", &[&JsValue::from_str(dir)])
            .as_string()
            .unwrap()
    }
    /// `mkdir -p dir`.
    pub fn mkdir(dir: &str) {
        call("mkdir", &[&JsValue::from_str(dir)]);
    }
    /// Whether `path` exists.
    pub fn exists(path: &str) -> bool {
        call("exists", &[&JsValue::from_str(path)]).is_truthy()
    }

    thread_local! {
        static NODE_VFS: std::cell::OnceCell<&'static str> = const { std::cell::OnceCell::new() };
    }

    /// The host VFS over one `node:fs` `HostFs` for the whole test binary,
    /// registered through `durq::wasm::host_fs::register` as
    /// `Core.openFile` does.
    pub fn node_host_vfs() -> &'static str {
        NODE_VFS.with(|vfs| {
            *vfs.get_or_init(|| durq::wasm::host_fs::register(make_host(&make_state())).unwrap())
        })
    }
}
