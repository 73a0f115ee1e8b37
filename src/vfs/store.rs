//! The SQLite VFS over a [`FileHost`]: rsqlite-vfs's `VfsStore` / `VfsFile`
//! traits implemented on top of the host's file operations.
//!
//! SQLite's contract for these callbacks is sqlite.org/c3ref/vfs.html and
//! sqlite.org/c3ref/io_methods.html; rsqlite-vfs turns the raw C callbacks
//! into the typed calls implemented here.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

#[cfg(not(target_family = "wasm"))]
use rsqlite_vfs::OsCallback;
use rsqlite_vfs::{
    AccessMode, FileKind, LockLevel, MemChunksFile, OpenAccess, OpenOptions, OpenRequest,
    OpenedFile, SQLiteIoMethods, SQLiteVfs, SyncOptions, SystemErrorCode, VfsError, VfsErrorCode,
    VfsFile, VfsResult, VfsStore,
};

use super::host::{FileHost, HostError, HostErrorKind, OpenMode};
use super::lock::LockTable;

/// How many times an interrupted (`EINTR`) host call is retried before the
/// error is passed on.
const MAX_INTERRUPTED_RETRIES: u32 = 100;

/// Chunk size of in-memory temp files: SQLite's default page size.
const MEMORY_CHUNK_BYTES: usize = 4096;

/// The file operation that failed, which picks the SQLite error code.
#[derive(Debug, Clone, Copy)]
enum Op {
    Open,
    Read,
    Write,
    Truncate,
    Sync,
    Size,
    Close,
    Access,
    Delete,
    DirSync,
    FullPath,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Open => "open",
            Op::Read => "read",
            Op::Write => "write",
            Op::Truncate => "truncate",
            Op::Sync => "fsync",
            Op::Size => "fstat",
            Op::Close => "close",
            Op::Access => "access",
            Op::Delete => "delete",
            Op::DirSync => "directory fsync",
            Op::FullPath => "resolve path",
        }
    }

    fn code(self) -> VfsErrorCode {
        match self {
            Op::Open | Op::FullPath => VfsErrorCode::CantOpen,
            Op::Read => VfsErrorCode::IoRead,
            Op::Write => VfsErrorCode::IoWrite,
            Op::Truncate => VfsErrorCode::IoTruncate,
            Op::Sync => VfsErrorCode::IoSync,
            Op::Size => VfsErrorCode::IoStat,
            Op::Close => VfsErrorCode::IoClose,
            Op::Access => VfsErrorCode::IoAccess,
            Op::Delete => VfsErrorCode::IoDelete,
            Op::DirSync => VfsErrorCode::IoDirectorySync,
        }
    }
}

/// Maps a host failure to the SQLite error code SQLite's own unix VFS
/// would report: `SQLITE_FULL` for a full disk, `SQLITE_CANTOPEN` for any
/// failed open, else the operation's `SQLITE_IOERR_*` code.
fn vfs_error(op: Op, path: &str, error: HostError) -> VfsError {
    let code = match error.kind {
        HostErrorKind::NoSpace => VfsErrorCode::Full,
        _ => op.code(),
    };
    let result = VfsError::new(
        code,
        format!("{} {path:?}: {} ({})", op.name(), error.message, error.kind).into(),
    );
    match error.errno.and_then(SystemErrorCode::from_raw) {
        Some(errno) => result.with_system_error(errno),
        None => result,
    }
}

/// Calls `f` again while it fails with [`HostErrorKind::Interrupted`], a
/// bounded number of times.
fn retry<T>(mut f: impl FnMut() -> Result<T, HostError>) -> Result<T, HostError> {
    let mut tries = 0;
    loop {
        match f() {
            Err(e) if e.kind == HostErrorKind::Interrupted && tries < MAX_INTERRUPTED_RETRIES => {
                tries += 1;
            }
            other => return other,
        }
    }
}

thread_local! {
    /// The last error any host VFS reported to SQLite on this thread, for
    /// `xGetLastError` and [`last_error_message`].
    static LAST_ERROR: RefCell<Option<VfsError>> = const { RefCell::new(None) };
}

/// The message of the last error the host VFS returned to SQLite on this
/// thread, e.g. `write "/data/app.db-wal": ENOSPC: no space left on device,
/// write (no space left)`, or `None` if there was none.
///
/// SQLite itself only reports the code (`SQLITE_FULL`, "database or disk is
/// full"); this is the host's reason behind it. It stays set until the next
/// error: read it right after the failing call.
pub fn last_error_message() -> Option<String> {
    LAST_ERROR.with(|e| e.borrow().as_ref().map(|e| e.message().to_owned()))
}

/// State shared by one host VFS and all files opened through it.
struct Shared<H> {
    host: H,
    locks: LockTable,
}

/// The per-VFS data of a host VFS (SQLite's `pAppData`): the [`FileHost`]
/// and the in-process lock table.
///
/// Built by [`super::register_host_vfs`]; public so that tests can run
/// rsqlite-vfs's conformance suite on [`HostVfsStore`] directly.
pub struct HostVfsData<H: FileHost> {
    shared: Arc<Shared<H>>,
}

impl<H: FileHost> HostVfsData<H> {
    /// Wraps `host`, with no file open and no lock held.
    pub fn new(host: H) -> Self {
        HostVfsData {
            shared: Arc::new(Shared {
                host,
                locks: LockTable::default(),
            }),
        }
    }

    /// The host the files are opened on.
    pub fn host(&self) -> &H {
        &self.shared.host
    }
}

/// A file opened through the host VFS: a host file, or an in-memory file
/// for temporary and delete-on-close files.
pub struct HostVfsFile<H: FileHost> {
    inner: FileImpl<H>,
}

enum FileImpl<H: FileHost> {
    /// SQLite's anonymous temp files and `DELETEONCLOSE` files: never
    /// persisted, so they live in memory (rsqlite-vfs `MemChunksFile`).
    Memory(MemChunksFile),
    Host(HostFile<H>),
}

/// A file on the host.
struct HostFile<H: FileHost> {
    shared: Arc<Shared<H>>,
    /// `None` only after [`HostFile::close`].
    handle: Option<H::Handle>,
    /// The path as SQLite gave it (after `xFullPathname`): error messages and
    /// the lock table key.
    path: String,
    writable: bool,
    /// This handle's SQLite lock level.
    lock: LockLevel,
    /// The directory holding a newly created database, journal or WAL file
    /// still needs an fsync, done at the first `xSync`, as os_unix.c does
    /// (`UNIXFILE_DIRSYNC`).
    dir_sync_pending: bool,
}

impl<H: FileHost> HostFile<H> {
    fn handle(&self, op: Op) -> VfsResult<&H::Handle> {
        self.handle
            .as_ref()
            .ok_or_else(|| VfsError::new(op.code(), "file is already closed".into()))
    }

    fn host_err(&self, op: Op, error: HostError) -> VfsError {
        vfs_error(op, &self.path, error)
    }

    fn check_writable(&self) -> VfsResult<()> {
        if self.writable {
            Ok(())
        } else {
            Err(VfsError::new(
                VfsErrorCode::ReadOnly,
                format!("{:?} is open read-only", self.path).into(),
            ))
        }
    }

    /// Closes the host handle and drops this handle's locks.
    fn close(&mut self) -> VfsResult<()> {
        self.shared
            .locks
            .unlock(&self.path, &mut self.lock, LockLevel::None);
        match self.handle.take() {
            Some(handle) => self
                .shared
                .host
                .close(handle)
                .map_err(|e| vfs_error(Op::Close, &self.path, e)),
            None => Ok(()),
        }
    }
}

impl<H: FileHost> Drop for HostFile<H> {
    fn drop(&mut self) {
        // SQLite always closes through `xClose`; this only runs for handles
        // dropped without it (e.g. a failed test), so the error has no taker.
        let _ = self.close();
    }
}

impl<H: FileHost> VfsFile for HostVfsFile<H> {
    fn read(&mut self, buf: &mut [u8], offset: u64) -> VfsResult<usize> {
        let file = match &mut self.inner {
            FileImpl::Memory(m) => return m.read(buf, offset),
            FileImpl::Host(f) => f,
        };
        let handle = file.handle(Op::Read)?;
        let mut done = 0;
        while done < buf.len() {
            let at = offset.checked_add(done as u64).ok_or_else(|| {
                VfsError::new(VfsErrorCode::IoRead, "read offset overflows".into())
            })?;
            let rest = &mut buf[done..];
            let n = retry(|| file.shared.host.read_at(handle, rest, at))
                .map_err(|e| file.host_err(Op::Read, e))?;
            if n == 0 {
                break; // end of file: xRead zero-fills and reports a short read
            }
            done += n.min(rest.len());
        }
        Ok(done)
    }

    fn write(&mut self, buf: &[u8], offset: u64) -> VfsResult<()> {
        let file = match &mut self.inner {
            FileImpl::Memory(m) => return m.write(buf, offset),
            FileImpl::Host(f) => f,
        };
        file.check_writable()?;
        let handle = file.handle(Op::Write)?;
        retry(|| file.shared.host.write_all_at(handle, buf, offset))
            .map_err(|e| file.host_err(Op::Write, e))
    }

    fn truncate(&mut self, size: u64) -> VfsResult<()> {
        let file = match &mut self.inner {
            FileImpl::Memory(m) => {
                // MemChunksFile only shrinks; grow it by writing a zero byte.
                let current = m.size()?;
                if size > current {
                    return m.write(&[0], size - 1);
                }
                return m.truncate(size);
            }
            FileImpl::Host(f) => f,
        };
        file.check_writable()?;
        let handle = file.handle(Op::Truncate)?;
        retry(|| file.shared.host.truncate(handle, size))
            .map_err(|e| file.host_err(Op::Truncate, e))
    }

    fn sync(&mut self, options: SyncOptions) -> VfsResult<()> {
        let file = match &mut self.inner {
            FileImpl::Memory(m) => return m.sync(options),
            FileImpl::Host(f) => f,
        };
        let handle = file.handle(Op::Sync)?;
        // SQLITE_SYNC_FULL asks for macOS F_FULLFSYNC, which neither std nor
        // Node offers: a plain fsync is what the unix VFS does without it.
        retry(|| file.shared.host.sync(handle, options.data_only))
            .map_err(|e| file.host_err(Op::Sync, e))?;
        if file.dir_sync_pending {
            file.dir_sync_pending = false;
            // Like os_unix.c's unixSync, a failed directory fsync is not an
            // error of this file's sync (some file systems refuse it).
            let _ = retry(|| file.shared.host.sync_dir(&file.path));
        }
        Ok(())
    }

    fn size(&self) -> VfsResult<u64> {
        let file = match &self.inner {
            FileImpl::Memory(m) => return m.size(),
            FileImpl::Host(f) => f,
        };
        let handle = file.handle(Op::Size)?;
        retry(|| file.shared.host.size(handle)).map_err(|e| file.host_err(Op::Size, e))
    }

    fn lock(&mut self, level: LockLevel) -> VfsResult<()> {
        match &mut self.inner {
            FileImpl::Memory(m) => m.lock(level),
            FileImpl::Host(f) => f.shared.locks.lock(&f.path, &mut f.lock, level),
        }
    }

    fn unlock(&mut self, level: LockLevel) -> VfsResult<()> {
        match &mut self.inner {
            FileImpl::Memory(m) => m.unlock(level),
            FileImpl::Host(f) => {
                f.shared.locks.unlock(&f.path, &mut f.lock, level);
                Ok(())
            }
        }
    }

    fn check_reserved_lock(&self) -> VfsResult<bool> {
        match &self.inner {
            FileImpl::Memory(m) => m.check_reserved_lock(),
            FileImpl::Host(f) => Ok(f.shared.locks.reserved(&f.path)),
        }
    }
}

/// The `VfsStore` of the host VFS: opens, closes, deletes and names files
/// through the [`FileHost`] in [`HostVfsData`].
///
/// - Named files are host files, opened as SQLite asks (`CREATE`,
///   `EXCLUSIVE`, read-only); a read-write open refused for permissions
///   falls back to read-only, as in os_unix.c, and SQLite is told.
/// - Anonymous files (temp databases, statement journals, sorter spill) and
///   `DELETEONCLOSE` files live in memory and vanish at close.
/// - Locks are tracked in memory per path (see [`super`] for why that is
///   enough); `xShm*` methods are absent, so WAL works only with `PRAGMA
///   locking_mode=EXCLUSIVE` set before the first access.
pub struct HostVfsStore<H>(PhantomData<H>);

impl<H: FileHost> VfsStore for HostVfsStore<H> {
    type File = HostVfsFile<H>;
    type AppData = HostVfsData<H>;

    fn record_error(_data: &Self::AppData, error: VfsError) {
        LAST_ERROR.with(|e| *e.borrow_mut() = Some(error));
    }

    fn last_error(_data: &Self::AppData) -> Option<VfsError> {
        LAST_ERROR.with(|e| e.borrow().clone())
    }

    fn open_file(
        data: &Self::AppData,
        request: OpenRequest<'_>,
    ) -> VfsResult<OpenedFile<Self::File>> {
        let options = request.options;
        let memory = |access| {
            Ok(OpenedFile {
                file: HostVfsFile {
                    inner: FileImpl::Memory(MemChunksFile::new(MEMORY_CHUNK_BYTES)),
                },
                access,
            })
        };
        let Some(filename) = request.filename else {
            return memory(options.access());
        };
        let path = filename.path();
        let host = &data.shared.host;
        if options.delete_on_close() {
            if options.exclusive()
                && retry(|| host.exists(path)).map_err(|e| vfs_error(Op::Open, path, e))?
            {
                return Err(VfsError::new(
                    VfsErrorCode::CantOpen,
                    format!("open {path:?}: the file already exists").into(),
                ));
            }
            return memory(options.access());
        }
        let mode = match (options.access(), options.create(), options.exclusive()) {
            (OpenAccess::ReadOnly, _, _) => OpenMode::Read,
            (OpenAccess::ReadWrite, false, _) => OpenMode::ReadWrite,
            (OpenAccess::ReadWrite, true, false) => OpenMode::Create,
            (OpenAccess::ReadWrite, true, true) => OpenMode::CreateNew,
        };
        let (handle, mode) = match retry(|| host.open(path, mode)) {
            Ok(handle) => (handle, mode),
            Err(e)
                if mode.writable()
                    && matches!(
                        e.kind,
                        HostErrorKind::PermissionDenied | HostErrorKind::ReadOnlyFilesystem
                    ) =>
            {
                match retry(|| host.open(path, OpenMode::Read)) {
                    Ok(handle) => (handle, OpenMode::Read),
                    Err(_) => return Err(vfs_error(Op::Open, path, e)),
                }
            }
            Err(e) => return Err(vfs_error(Op::Open, path, e)),
        };
        let dir_sync_pending = options.create()
            && matches!(
                options.kind(),
                Some(
                    FileKind::MainDb
                        | FileKind::MainJournal
                        | FileKind::SuperJournal
                        | FileKind::Wal
                )
            );
        Ok(OpenedFile {
            file: HostVfsFile {
                inner: FileImpl::Host(HostFile {
                    shared: Arc::clone(&data.shared),
                    handle: Some(handle),
                    path: path.to_owned(),
                    writable: mode.writable(),
                    lock: LockLevel::None,
                    dir_sync_pending,
                }),
            },
            access: if mode.writable() {
                OpenAccess::ReadWrite
            } else {
                OpenAccess::ReadOnly
            },
        })
    }

    fn close_file(
        _data: &Self::AppData,
        _name: Option<&str>,
        file: Self::File,
        _options: OpenOptions,
    ) -> VfsResult<()> {
        match file.inner {
            FileImpl::Memory(_) => Ok(()),
            FileImpl::Host(mut f) => f.close(),
        }
    }

    fn access(data: &Self::AppData, name: &str, _mode: AccessMode) -> VfsResult<bool> {
        // Existence answers all three questions: SQLite asks READWRITE only
        // of temp directories, which this VFS never uses, and an unreadable
        // file fails at open with a clear error anyway.
        retry(|| data.shared.host.exists(name)).map_err(|e| vfs_error(Op::Access, name, e))
    }

    fn full_pathname(data: &Self::AppData, name: &str) -> VfsResult<String> {
        retry(|| data.shared.host.full_path(name)).map_err(|e| vfs_error(Op::FullPath, name, e))
    }

    fn delete_file(data: &Self::AppData, name: &str, sync_dir: bool) -> VfsResult<()> {
        let host = &data.shared.host;
        retry(|| host.delete(name)).map_err(|e| vfs_error(Op::Delete, name, e))?;
        if sync_dir {
            retry(|| host.sync_dir(name)).map_err(|e| vfs_error(Op::DirSync, name, e))?;
        }
        Ok(())
    }
}

/// The I/O method table of the host VFS: rsqlite-vfs's default callbacks
/// over [`HostVfsStore`], version 1 (no `xShm*`, no memory mapping).
pub(crate) struct HostIoMethods<H>(PhantomData<H>);

impl<H: FileHost> SQLiteIoMethods for HostIoMethods<H> {
    type Store = HostVfsStore<H>;
}

/// The `sqlite3_vfs` of the host VFS: rsqlite-vfs's default callbacks, with
/// the platform's clock, sleep and randomness.
pub(crate) struct HostVfs<H>(PhantomData<H>);

impl<H: FileHost> SQLiteVfs<HostIoMethods<H>> for HostVfs<H> {
    type Os = PlatformOs;

    /// Paths as long as Linux's `PATH_MAX`, so deep project directories fit.
    const MAX_PATH_SIZE: i32 = 4096;

    fn os(_data: &HostVfsData<H>) -> &PlatformOs {
        &PLATFORM_OS
    }
}

#[cfg(target_family = "wasm")]
type PlatformOs = sqlite_wasm_rs::WasmOsCallback;
#[cfg(target_family = "wasm")]
static PLATFORM_OS: PlatformOs = sqlite_wasm_rs::WasmOsCallback;

#[cfg(not(target_family = "wasm"))]
type PlatformOs = NativeOs;
#[cfg(not(target_family = "wasm"))]
static PLATFORM_OS: PlatformOs = NativeOs;

/// Clock, sleep and randomness from `std`, for the native build.
#[cfg(not(target_family = "wasm"))]
pub struct NativeOs;

#[cfg(not(target_family = "wasm"))]
impl OsCallback for NativeOs {
    fn sleep(&self, dur: std::time::Duration) {
        std::thread::sleep(dur);
    }

    fn random(&self, buf: &mut [u8]) -> usize {
        use std::collections::hash_map::RandomState;
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the OS once per process and then
        // varied per instance: enough for SQLite's PRNG seed and temp names.
        for (i, chunk) in buf.chunks_mut(8).enumerate() {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_usize(i);
            let bytes = hasher.finish().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        buf.len()
    }

    fn epoch_timestamp_in_ms(&self) -> VfsResult<i64> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| VfsError::new(VfsErrorCode::Error, e.to_string().into()))?;
        i64::try_from(now.as_millis())
            .map_err(|e| VfsError::new(VfsErrorCode::Error, e.to_string().into()))
    }
}
