//! `HostFs`: the JS object that does the host VFS's file I/O on wasm.
//!
//! The wasm module imports no file API of its own (it also loads in
//! browsers); the Node entry passes an object built on `node:fs` sync APIs
//! (`nodeHostFs()` in `js/src/node/host-fs.ts`) to `Core.openFile`, and
//! this file implements [`crate::vfs::FileHost`] by calling it.
//!
//! Every method is synchronous and throws on failure. A thrown error's
//! `code` (`"ENOENT"`, `"ENOSPC"`, ... as on Node's `SystemError`) picks the
//! SQLite result code (see [`crate::vfs::HostErrorKind::from_node_code`]);
//! its `errno` and `message` are kept for diagnostics. Nothing a host throws
//! can panic the module.

use std::cell::RefCell;

use js_sys::Reflect;
use wasm_bindgen::prelude::*;

use crate::vfs::{FileHost, HostError, HostErrorKind, OpenMode};

#[wasm_bindgen(typescript_custom_section)]
const HOST_FS_TS: &'static str = r#"
/**
 * Synchronous file operations the durq core's file VFS calls (see
 * src/wasm/host_fs.rs). Offsets and sizes are byte counts below 2^53.
 * Failures are thrown as errors with a Node-style `code` ("ENOENT", "ENOSPC").
 */
export interface HostFs {
  /** Opens `path`; returns a file descriptor. `"read"`/`"readWrite"` need an existing file, `"create"` creates without truncating, `"createNew"` fails with EEXIST if it exists. */
  open(path: string, mode: "read" | "readWrite" | "create" | "createNew"): number;
  /** Reads up to `buffer.length` bytes at `position` into `buffer`; returns the count (0 at end of file). */
  read(fd: number, buffer: Uint8Array, position: number): number;
  /** Writes all of `data` at `position`; returns the count written (`data.length`). */
  write(fd: number, data: Uint8Array, position: number): number;
  /** Sets the file length to `size` bytes. */
  truncate(fd: number, size: number): void;
  /** fsync (or fdatasync when `dataOnly`). */
  sync(fd: number, dataOnly: boolean): void;
  /** The file length in bytes. */
  size(fd: number): number;
  /** Closes `fd`. */
  close(fd: number): void;
  /** Whether `path` exists. */
  exists(path: string): boolean;
  /** Removes `path`; a missing file is not an error. */
  delete(path: string): void;
  /** fsyncs the directory containing `path` (no-op where directories cannot be opened). */
  syncDir(path: string): void;
  /** `path` made absolute. */
  fullPath(path: string): string;
}
"#;

#[wasm_bindgen]
extern "C" {
    /// A JS object implementing the `HostFs` interface above (e.g. the one
    /// `nodeHostFs()` returns). File descriptors are JS numbers.
    #[wasm_bindgen(typescript_type = "HostFs")]
    pub type HostFs;

    #[wasm_bindgen(method, catch, js_name = open)]
    fn js_open(this: &HostFs, path: &str, mode: &str) -> Result<i32, JsValue>;

    // `&mut [u8]` reaches JS as a Uint8Array view of wasm memory, so the
    // host's `readSync` writes straight into SQLite's buffer (no copy).
    #[wasm_bindgen(method, catch, js_name = read)]
    fn js_read(this: &HostFs, fd: i32, buffer: &mut [u8], position: f64) -> Result<f64, JsValue>;

    #[wasm_bindgen(method, catch, js_name = write)]
    fn js_write(this: &HostFs, fd: i32, data: &[u8], position: f64) -> Result<f64, JsValue>;

    #[wasm_bindgen(method, catch, js_name = truncate)]
    fn js_truncate(this: &HostFs, fd: i32, size: f64) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = sync)]
    fn js_sync(this: &HostFs, fd: i32, data_only: bool) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = size)]
    fn js_size(this: &HostFs, fd: i32) -> Result<f64, JsValue>;

    #[wasm_bindgen(method, catch, js_name = close)]
    fn js_close(this: &HostFs, fd: i32) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = exists)]
    fn js_exists(this: &HostFs, path: &str) -> Result<bool, JsValue>;

    #[wasm_bindgen(method, catch, js_name = delete)]
    fn js_delete(this: &HostFs, path: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = syncDir)]
    fn js_sync_dir(this: &HostFs, path: &str) -> Result<(), JsValue>;

    #[wasm_bindgen(method, catch, js_name = fullPath)]
    fn js_full_path(this: &HostFs, path: &str) -> Result<String, JsValue>;
}

thread_local! {
    /// Every host object registered so far, with the VFS name it got.
    static REGISTERED_HOSTS: RefCell<Vec<(HostFs, &'static str)>> = const { RefCell::new(Vec::new()) };
}

/// Registers a host VFS over `host` and returns its name for
/// `Connection::open_with_flags_and_vfs`.
///
/// One VFS per distinct host object (compared with `===`): the first gets
/// [`crate::vfs::HOST_VFS_NAME`] (`"durq-host"`), later ones `"durq-host-2"`,
/// `"durq-host-3"`, ...; passing the same object again returns its name, so
/// `nodeHostFs()` (a singleton) costs one registration per process. Each
/// registration lives as long as the wasm instance (a few hundred bytes),
/// so a host made per open is a small leak per open.
///
/// # Errors
/// A `DurqError` with code `SQLITE_ERROR` if SQLite refuses the
/// registration.
pub fn register(host: HostFs) -> Result<&'static str, JsValue> {
    let target: &JsValue = &host;
    let known = REGISTERED_HOSTS.with(|hosts| {
        let hosts = hosts.borrow();
        hosts
            .iter()
            .find(|(h, _)| {
                let h: &JsValue = h;
                h == target
            })
            .map(|(_, name)| *name)
    });
    if let Some(name) = known {
        return Ok(name);
    }
    let count = REGISTERED_HOSTS.with(|hosts| hosts.borrow().len());
    let name: &'static str = if count == 0 {
        crate::vfs::HOST_VFS_NAME
    } else {
        Box::leak(format!("{}-{}", crate::vfs::HOST_VFS_NAME, count + 1).into_boxed_str())
    };
    let name = crate::vfs::register_host_vfs_as(name, host.clone().unchecked_into::<HostFs>())
        .map_err(|e| super::error::js_error("SQLITE_ERROR", &e.to_string()))?;
    REGISTERED_HOSTS.with(|hosts| hosts.borrow_mut().push((host, name)));
    Ok(name)
}

/// Largest integer a JS number holds exactly (2^53): offsets and sizes
/// must stay at or below it.
const MAX_SAFE_BYTES: u64 = 1 << 53;

fn position(offset: u64) -> Result<f64, HostError> {
    if offset <= MAX_SAFE_BYTES {
        Ok(offset as f64)
    } else {
        Err(HostError::new(
            HostErrorKind::NoSpace,
            format!("offset {offset} is past 2^53 bytes, the largest a JS number holds exactly"),
        ))
    }
}

/// A byte count returned by the host: a finite, non-negative integer.
fn count(value: f64, what: &str) -> Result<u64, HostError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= MAX_SAFE_BYTES as f64 {
        Ok(value as u64)
    } else {
        Err(HostError::new(
            HostErrorKind::Other,
            format!("the host returned {value} as a {what}, not a byte count"),
        ))
    }
}

fn string_prop(value: &JsValue, key: &str) -> Option<String> {
    Reflect::get(value, &JsValue::from_str(key))
        .ok()?
        .as_string()
}

/// Turns whatever the host threw into a [`HostError`]: `code` picks the
/// kind, `message` and `errno` (negative in Node) are kept.
fn host_error(thrown: JsValue) -> HostError {
    let code = string_prop(&thrown, "code");
    let kind = code
        .as_deref()
        .map_or(HostErrorKind::Other, HostErrorKind::from_node_code);
    let message = string_prop(&thrown, "message")
        .or_else(|| thrown.as_string())
        .unwrap_or_else(|| format!("{thrown:?}"));
    let errno = Reflect::get(&thrown, &JsValue::from_str("errno"))
        .ok()
        .and_then(|v| v.as_f64())
        .filter(|n| n.is_finite() && *n != 0.0 && n.abs() <= i32::MAX as f64)
        .map(|n| (n as i32).abs());
    HostError {
        kind,
        message,
        errno,
    }
}

impl FileHost for HostFs {
    type Handle = i32;

    fn open(&self, path: &str, mode: OpenMode) -> Result<i32, HostError> {
        self.js_open(path, mode.as_str()).map_err(host_error)
    }

    fn read_at(&self, fd: &i32, buf: &mut [u8], offset: u64) -> Result<usize, HostError> {
        let n = self
            .js_read(*fd, buf, position(offset)?)
            .map_err(host_error)?;
        let n = count(n, "read count")?;
        // A host claiming more than it was asked for is not believed.
        Ok(usize::try_from(n).map_or(buf.len(), |n| n.min(buf.len())))
    }

    fn write_all_at(&self, fd: &i32, data: &[u8], offset: u64) -> Result<(), HostError> {
        let mut done = 0;
        while done < data.len() {
            let at = position(offset.saturating_add(done as u64))?;
            let n = self.js_write(*fd, &data[done..], at).map_err(host_error)?;
            let n = count(n, "write count")?;
            if n == 0 {
                return Err(HostError::new(
                    HostErrorKind::Other,
                    "the host wrote 0 bytes",
                ));
            }
            done += usize::try_from(n)
                .unwrap_or(usize::MAX)
                .min(data.len() - done);
        }
        Ok(())
    }

    fn truncate(&self, fd: &i32, size: u64) -> Result<(), HostError> {
        self.js_truncate(*fd, position(size)?).map_err(host_error)
    }

    fn sync(&self, fd: &i32, data_only: bool) -> Result<(), HostError> {
        self.js_sync(*fd, data_only).map_err(host_error)
    }

    fn size(&self, fd: &i32) -> Result<u64, HostError> {
        count(self.js_size(*fd).map_err(host_error)?, "file size")
    }

    fn close(&self, fd: i32) -> Result<(), HostError> {
        self.js_close(fd).map_err(host_error)
    }

    fn exists(&self, path: &str) -> Result<bool, HostError> {
        self.js_exists(path).map_err(host_error)
    }

    fn delete(&self, path: &str) -> Result<(), HostError> {
        self.js_delete(path).map_err(host_error)
    }

    fn sync_dir(&self, path: &str) -> Result<(), HostError> {
        self.js_sync_dir(path).map_err(host_error)
    }

    fn full_path(&self, path: &str) -> Result<String, HostError> {
        self.js_full_path(path).map_err(host_error)
    }
}
