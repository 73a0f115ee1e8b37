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

    /// Makes `<tmp>/durq-<tag>-XXXXXX`.
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    pub fn new(tag: &str) -> TempDir {
        TempDir(node::temp_dir(&format!("durq-{tag}-")))
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
    return node::exists(path);
}

/// Creates the alarm folder of a file store where the core cannot (on wasm
/// the host creates it, as `js/src/alarms.ts` does); natively a no-op.
#[allow(unused_variables)]
pub fn prepare_alarm_dir(store: &durq::Store) {
    #[cfg(all(target_family = "wasm", target_os = "unknown"))]
    if let Some(dir) = store.alarm_dir() {
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
        node::remove_dir(&self.0);
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

    use durq::wasm::host_fs::HostFs;
    use wasm_bindgen::prelude::*;

    #[wasm_bindgen(inline_js = r#"
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
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
module.exports.makeHost = (state) => nodeHost(state);
module.exports.makeState = () => ({ syncs: 0, fullDisk: false });
module.exports.setFullDisk = (state, on) => { state.fullDisk = on; };
module.exports.syncs = (state) => state.syncs;
module.exports.tempDir = (prefix) => fs.mkdtempSync(path.join(os.tmpdir(), prefix ?? "durq-wasm-"));
module.exports.removeDir = (d) => fs.rmSync(d, { recursive: true, force: true });
module.exports.names = (d) => fs.readdirSync(d).sort().join(",");
module.exports.mkdir = (d) => { fs.mkdirSync(d, { recursive: true }); };
module.exports.exists = (p) => fs.existsSync(p);
"#)]
    extern "C" {
        /// A fresh `HostFs` object on `node:fs` reporting to `state`.
        #[wasm_bindgen(js_name = makeHost)]
        pub fn make_host(state: &JsValue) -> HostFs;
        /// A fresh `{ syncs: 0, fullDisk: false }`.
        #[wasm_bindgen(js_name = makeState)]
        pub fn make_state() -> JsValue;
        /// While `on`, every write throws `ENOSPC`.
        #[wasm_bindgen(js_name = setFullDisk)]
        pub fn set_full_disk(state: &JsValue, on: bool);
        /// How many `sync` calls the hosts of `state` got.
        pub fn syncs(state: &JsValue) -> f64;
        /// A fresh directory `<os.tmpdir()>/<prefix>XXXXXX`.
        #[wasm_bindgen(js_name = tempDir)]
        pub fn temp_dir(prefix: &str) -> String;
        /// `rm -rf dir`.
        #[wasm_bindgen(js_name = removeDir)]
        pub fn remove_dir(dir: &str);
        /// The names in `dir`, sorted, joined with commas.
        pub fn names(dir: &str) -> String;
        /// `mkdir -p dir`.
        pub fn mkdir(dir: &str);
        /// Whether `path` exists.
        pub fn exists(path: &str) -> bool;
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
