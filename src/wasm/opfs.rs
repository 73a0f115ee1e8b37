//! `OpfsPool`: the origin private file system (OPFS) storage of the browser
//! entry, through sqlite-wasm-vfs's sync-access-handle pool VFS ("sahpool",
//! a port of SQLite's own `opfs-sahpool`:
//! <https://sqlite.org/wasm/doc/trunk/persistence.md#vfs-opfs-sahpool>).
//!
//! One pool per durq database: its VFS is named `durq-opfs:<name>` and keeps
//! its files in the OPFS directory `.durq/<name>`, so a database and its
//! alarm namespaces (`<name>.alarms/<ns>.db`) move, lock and are released
//! together. The pool holds an exclusive sync access handle on each of its
//! OPFS files while installed: a second worker (another tab) cannot install
//! the same pool until this one is released ([`OpfsPool::release`]).
//!
//! Each database in the pool takes two slots (the database and its WAL, in
//! WAL mode with `locking_mode=EXCLUSIVE`, which needs no shared memory:
//! <https://www.sqlite.org/wal.html#noshm>). Adding slots is asynchronous
//! (OPFS hands out sync access handles through promises), so the JS host
//! calls [`OpfsPool::reserve`] before opening an alarm namespace.
//!
//! Works only in a dedicated worker in a secure context (where
//! `FileSystemFileHandle.createSyncAccessHandle` exists).

use super::error::js_error;
use rsqlite_vfs::VfsFilesManager;
use sqlite_wasm_rs::WasmOsCallback;
use sqlite_wasm_vfs::sahpool::{install, OpfsSAHError, OpfsSAHPoolCfgBuilder, OpfsSAHPoolUtil};
use wasm_bindgen::prelude::*;

/// Slots a pool is installed with; the JS host reserves more at open (see
/// `OPFS_SPARE_NAMESPACES` in `js/src/browser/platform.ts`).
pub const INITIAL_SLOTS: u32 = 8;

/// Longest database name, in UTF-8 bytes. The pool stores each file's name in
/// a 512-byte header; an alarm namespace's file adds `.alarms/` and up to
/// 128 + 3 bytes to it.
pub const MAX_NAME_BYTES: usize = 200;

/// An installed OPFS pool holding one durq database (and its alarm
/// namespaces).
#[wasm_bindgen]
pub struct OpfsPool {
    util: OpfsSAHPoolUtil,
    vfs: String,
}

/// Checks a database name: 1 to [`MAX_NAME_BYTES`] UTF-8 bytes from
/// `A-Z a-z 0-9 _ . -`, not starting with a dot.
fn check_name(name: &str) -> Result<(), JsValue> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(js_error(
            "DURQ_INVALID_INPUT",
            &format!(
                "an OPFS database name is 1 to {MAX_NAME_BYTES} characters from A-Z a-z 0-9 _ . - \
                 and does not start with a dot, got {name:?}"
            ),
        ))
    }
}

/// Maps a pool error to a `DurqError`: `DURQ_OPFS_UNAVAILABLE` where the
/// platform lacks OPFS sync access handles, `DURQ_LOCKED` where another
/// context holds the pool's files, else `DURQ_OPFS` with the pool's reason.
fn pool_error(name: &str, e: OpfsSAHError) -> JsValue {
    match e {
        OpfsSAHError::NotSupported => js_error(
            "DURQ_OPFS_UNAVAILABLE",
            "OPFS storage needs a dedicated worker in a secure context (https or localhost) in a browser \
             with FileSystemFileHandle.createSyncAccessHandle (Chrome 108+, Firefox 111+, Safari 16.4+): \
             call open({ opfs }) inside a Worker and reach it from the page with connect(worker), \
             or use open({ memory: true })",
        ),
        OpfsSAHError::Opfs { ref message, .. } if message.contains("NoModificationAllowedError") => js_error(
            "DURQ_LOCKED",
            &format!(
                "the OPFS database {name:?} is open in another tab or worker ({e}); \
                 reach it through that context, or wait for it to close"
            ),
        ),
        other => js_error("DURQ_OPFS", &format!("OPFS database {name:?}: {other}")),
    }
}

impl OpfsPool {
    /// Installs (or reuses, in this worker) the pool of database `name`.
    ///
    /// # Errors
    /// See [`OpfsPool::install`].
    pub async fn install_pool(name: &str) -> Result<OpfsPool, JsValue> {
        check_name(name)?;
        let vfs = format!("durq-opfs:{name}");
        let cfg = OpfsSAHPoolCfgBuilder::new()
            .vfs_name(&vfs)
            .directory(&format!(".durq/{name}"))
            .initial_capacity(INITIAL_SLOTS as usize)
            .build();
        let util = install::<WasmOsCallback>(&cfg, false)
            .await
            .map_err(|e| pool_error(name, e))?;
        if util.is_paused() {
            util.resume().await.map_err(|e| pool_error(name, e))?;
        }
        Ok(OpfsPool { util, vfs })
    }

    /// Deletes the virtual file `name` (a no-op if missing); its slot is kept
    /// for reuse.
    ///
    /// # Errors
    /// `DURQ_OPFS` if the file is open or the pool is not active.
    pub fn remove_file(&self, name: &str) -> Result<bool, JsValue> {
        self.util.remove(name).map_err(|e| pool_error(&self.vfs, e))
    }
}

#[wasm_bindgen]
impl OpfsPool {
    /// Installs the pool of the durq database `name` (1 to 200 characters
    /// from `A-Z a-z 0-9 _ . -`, not starting with a dot) in the OPFS
    /// directory `.durq/<name>`, under the VFS name `durq-opfs:<name>`.
    /// Reuses the pool if this worker installed it already.
    ///
    /// Rejects with `DURQ_INVALID_INPUT` for a bad name,
    /// `DURQ_OPFS_UNAVAILABLE` outside a dedicated worker or where OPFS sync
    /// access handles are missing, `DURQ_LOCKED` if another context holds the
    /// pool's files, `DURQ_OPFS` for any other OPFS failure.
    pub async fn install(name: String) -> Result<OpfsPool, JsValue> {
        OpfsPool::install_pool(&name).await
    }

    /// The SQLite VFS name to open the pool's databases with.
    #[wasm_bindgen(getter)]
    pub fn vfs(&self) -> String {
        self.vfs.clone()
    }

    /// Slots held (two per open database: the file and its WAL).
    #[wasm_bindgen(getter)]
    pub fn capacity(&self) -> u32 {
        self.util.capacity() as u32
    }

    /// The virtual file names in the pool (each takes a slot), sorted.
    ///
    /// Throws `DURQ_OPFS` if the pool is paused or needs recovery.
    #[wasm_bindgen(js_name = fileNames)]
    pub fn file_names(&self) -> Result<Vec<String>, JsValue> {
        let mut names = self.util.names().map_err(|e| pool_error(&self.vfs, e))?;
        names.sort();
        Ok(names)
    }

    /// Makes sure the pool holds at least `slots` slots. Rejects with
    /// `DURQ_OPFS` if OPFS refuses more handles.
    pub async fn reserve(&self, slots: u32) -> Result<(), JsValue> {
        self.util
            .ensure_capacity(slots as usize)
            .await
            .map_err(|e| pool_error(&self.vfs, e))
    }

    /// Releases the pool's OPFS handles (pause), so another worker can
    /// install it; the data stays. Close every database of the pool first.
    ///
    /// Throws `DURQ_OPFS` if a database of the pool is still open.
    pub fn release(&self) -> Result<(), JsValue> {
        self.util.pause().map_err(|e| pool_error(&self.vfs, e))
    }
}
