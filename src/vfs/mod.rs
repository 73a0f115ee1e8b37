//! The host VFS: SQLite file storage whose I/O is done by a host object.
//!
//! SQLite reaches files only through a VFS (sqlite.org/vfs.html). On
//! `wasm32-unknown-unknown` there is no file system, so this VFS hands
//! every file operation to a [`FileHost`]: in Node, a JS object built on
//! `node:fs` sync APIs (`src/wasm/host_fs.rs`, `js/src/node/host-fs.ts`),
//! so the `.wasm` never imports `node:fs` and loads in browsers too;
//! natively, `StdFileHost` on `std::fs`, which is how the VFS is tested.
//!
//! ```text
//! rusqlite ─ SQLite ─ host VFS (this module) ─ FileHost ─ node:fs / std::fs
//! ```
//!
//! # Durability
//! `xSync` calls [`FileHost::sync`] (`fsync`, or `fdatasync` when SQLite
//! asks for data only); SQLite decides when from `PRAGMA synchronous`. A
//! newly created database, journal or WAL file also gets its directory
//! fsynced at its first sync, as SQLite's unix VFS does. Writes go straight
//! to the OS (no buffering here), so a transaction whose COMMIT returned
//! survives the process being killed (`kill -9`) in every mode, and a power
//! loss with `synchronous=FULL`. Sector size (4096) and device
//! characteristics (none) are SQLite's conservative defaults.
//!
//! # Locking
//! SQLite's lock levels are tracked in memory only, per path, across the
//! connections of this process (so a second connection to the same file
//! gets `SQLITE_BUSY` instead of corrupting it). **Nothing locks the file
//! against other processes**: the caller must keep them out, as durq's
//! façade does with an exclusive `<path>.lock` file taken before opening.
//!
//! # WAL
//! The VFS has no shared-memory methods (`xShm*`). WAL therefore works only
//! with `PRAGMA locking_mode=EXCLUSIVE` set *before* the database is first
//! read; SQLite then keeps the wal-index in heap memory (sqlite.org/wal.html,
//! "Use of WAL Without Shared-Memory"). Opening a WAL database without it
//! fails with `SQLITE_CANTOPEN`/`SQLITE_IOERR`, and `journal_mode=WAL`
//! without it leaves the journal mode unchanged.
//!
//! # Temporary files
//! Files SQLite opens without a name (temp databases, statement journals,
//! sorter spill, `VACUUM`'s copy) and `DELETEONCLOSE` files are kept in
//! memory, never on disk.
//!
//! # Example
//! ```no_run
//! use rusqlite::{Connection, OpenFlags};
//! let vfs = durq::vfs::register_host_vfs(durq::vfs::StdFileHost::new())?;
//! let conn = Connection::open_with_flags_and_vfs("app.db", OpenFlags::default(), vfs)?;
//! conn.pragma_update(None, "locking_mode", "EXCLUSIVE")?;
//! conn.pragma_update(None, "journal_mode", "WAL")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod host;
mod lock;
#[cfg(not(target_family = "wasm"))]
mod std_host;
mod store;

use std::sync::Mutex;

pub use host::{FileHost, HostError, HostErrorKind, MaybeSendSync, OpenMode};
#[cfg(not(target_family = "wasm"))]
pub use std_host::StdFileHost;
#[cfg(not(target_family = "wasm"))]
pub use store::NativeOs;
pub use store::{last_error_message, HostVfsData, HostVfsFile, HostVfsStore};

use store::{HostIoMethods, HostVfs};

/// The name [`register_host_vfs`] registers the host VFS under, for
/// `sqlite3_open_v2` / `Connection::open_with_flags_and_vfs`.
pub const HOST_VFS_NAME: &str = "durq-host";

/// Why a host VFS could not be registered.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum VfsRegisterError {
    /// Some other code registered a different VFS under this name.
    #[error(
        "a VFS named {0:?} is already registered by someone other than durq; pick another name"
    )]
    NameTaken(&'static str),
    /// SQLite refused the registration (or could not initialize).
    #[error("registering the VFS {name:?} with SQLite failed: {source}")]
    Sqlite {
        /// The name that was being registered.
        name: &'static str,
        /// rsqlite-vfs's error, with SQLite's result code where there is one.
        #[source]
        source: rsqlite_vfs::RegisterVfsError,
    },
}

/// Names registered by this module. Also serializes registration.
static REGISTERED: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

/// Registers the host VFS over `host` as [`HOST_VFS_NAME`] (`"durq-host"`)
/// and returns that name, for
/// `rusqlite::Connection::open_with_flags_and_vfs(path, flags, name)`.
///
/// Idempotent: if the name is already registered by durq, `host` is
/// dropped and the existing registration (with its first host) is kept. Use
/// [`register_host_vfs_as`] to register a different host next to it. The
/// VFS is never the default VFS and lives until the process (or wasm
/// instance) ends.
///
/// # Errors
/// [`VfsRegisterError::NameTaken`] if another library registered a VFS under
/// this name; [`VfsRegisterError::Sqlite`] if SQLite fails to initialize or
/// refuses the registration.
pub fn register_host_vfs<H: FileHost>(host: H) -> Result<&'static str, VfsRegisterError> {
    register_host_vfs_as(HOST_VFS_NAME, host)
}

/// Registers the host VFS over `host` under `name` and returns `name`; see
/// [`register_host_vfs`]. Idempotent per name: a name durq already
/// registered keeps its first host.
///
/// # Errors
/// As [`register_host_vfs`]; also [`VfsRegisterError::Sqlite`] for an empty
/// name or one containing a NUL byte.
pub fn register_host_vfs_as<H: FileHost>(
    name: &'static str,
    host: H,
) -> Result<&'static str, VfsRegisterError> {
    let mut registered = REGISTERED.lock().unwrap_or_else(|p| p.into_inner());
    if registered.contains(&name) {
        return Ok(name);
    }
    let sqlite = |source| VfsRegisterError::Sqlite { name, source };
    // SAFETY: registration is serialized by `REGISTERED`, and the pointer
    // returned by the lookup is only compared with null, never used.
    if unsafe { rsqlite_vfs::registered_vfs(name) }
        .map_err(sqlite)?
        .is_some()
    {
        return Err(VfsRegisterError::NameTaken(name));
    }
    // SAFETY: `HostVfs<H>` uses rsqlite-vfs's default constructor, file
    // layout and callbacks, with `HostIoMethods<H>` whose store's app data is
    // the `HostVfsData<H>` passed here. Registration is serialized by
    // `REGISTERED`; the registration is leaked (`into_raw`), so the VFS and
    // its data outlive every connection and open file. Callbacks on one
    // file are serialized by SQLite; state shared between files (the lock
    // table) is behind a mutex, and natively `FileHost: Send + Sync`.
    let registration = unsafe {
        rsqlite_vfs::register_vfs::<HostIoMethods<H>, HostVfs<H>>(
            name,
            HostVfsData::new(host),
            false,
        )
    }
    .map_err(sqlite)?;
    let _ = registration.into_raw();
    registered.push(name);
    Ok(name)
}
