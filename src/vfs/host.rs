//! The file host: the few synchronous file operations the host VFS needs.
//!
//! [`FileHost`] is the seam between SQLite's VFS callbacks (in
//! [`super::store`]) and whatever really touches the disk: `std::fs` natively
//! (`StdFileHost`), or a JavaScript object built on `node:fs` on
//! wasm (`src/wasm/host_fs.rs`). Keeping it this small keeps the JS side a
//! thin shim and lets the VFS logic be tested natively.

use std::fmt;

/// `Send + Sync` natively, nothing on wasm.
///
/// Natively SQLite may call the VFS from several threads (one connection per
/// thread), so a host and its handles must be thread-safe there. On
/// `wasm32-unknown-unknown` everything runs on one thread and a JS object
/// (`!Send`) must be allowed as a host.
#[cfg(not(target_family = "wasm"))]
pub trait MaybeSendSync: Send + Sync {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send + Sync + ?Sized> MaybeSendSync for T {}

/// `Send + Sync` natively, nothing on wasm.
///
/// Natively SQLite may call the VFS from several threads (one connection per
/// thread), so a host and its handles must be thread-safe there. On
/// `wasm32-unknown-unknown` everything runs on one thread and a JS object
/// (`!Send`) must be allowed as a host.
#[cfg(target_family = "wasm")]
pub trait MaybeSendSync {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> MaybeSendSync for T {}

/// How [`FileHost::open`] opens a file. Each variant is one POSIX flag set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpenMode {
    /// Read only; the file must exist (`O_RDONLY`, Node flag `"r"`).
    Read,
    /// Read and write; the file must exist (`O_RDWR`, Node flag `"r+"`).
    ReadWrite,
    /// Read and write, created empty if missing, never truncated
    /// (`O_RDWR | O_CREAT`).
    Create,
    /// Read and write, created empty; fails with
    /// [`HostErrorKind::AlreadyExists`] if the file exists
    /// (`O_RDWR | O_CREAT | O_EXCL`).
    CreateNew,
}

impl OpenMode {
    /// The name this mode has on the JS `HostFs` interface: `"read"`,
    /// `"readWrite"`, `"create"` or `"createNew"`.
    pub fn as_str(self) -> &'static str {
        match self {
            OpenMode::Read => "read",
            OpenMode::ReadWrite => "readWrite",
            OpenMode::Create => "create",
            OpenMode::CreateNew => "createNew",
        }
    }

    /// Whether a handle opened in this mode may be written.
    pub fn writable(self) -> bool {
        !matches!(self, OpenMode::Read)
    }
}

/// What kind of failure a [`HostError`] is, as far as SQLite cares.
///
/// The VFS turns it into a SQLite result code together with the operation
/// that failed: any failure to open is `SQLITE_CANTOPEN`, [`NoSpace`] is
/// `SQLITE_FULL` whatever the operation, anything else is the operation's
/// `SQLITE_IOERR_*` code (`SQLITE_IOERR_READ`, `_WRITE`, `_FSYNC`, ...).
///
/// [`NoSpace`]: HostErrorKind::NoSpace
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostErrorKind {
    /// The file or a directory on its path does not exist (`ENOENT`).
    NotFound,
    /// The file exists and the open asked for a new one (`EEXIST`).
    AlreadyExists,
    /// The disk or the user's quota is full, or the file would grow past the
    /// file system's limit (`ENOSPC`, `EDQUOT`, `EFBIG`).
    NoSpace,
    /// The process may not access the file (`EACCES`, `EPERM`).
    PermissionDenied,
    /// The file system is mounted read-only (`EROFS`).
    ReadOnlyFilesystem,
    /// A directory was given where a file was expected (`EISDIR`).
    IsADirectory,
    /// A path component is not a directory (`ENOTDIR`).
    NotADirectory,
    /// The call was interrupted by a signal and may be retried (`EINTR`,
    /// `EAGAIN`).
    Interrupted,
    /// The file system does not support the operation (`ENOTSUP`,
    /// `EOPNOTSUPP`, `ENOSYS`).
    Unsupported,
    /// Anything else (`EIO`, `EBADF`, a non-`Error` thrown by JS, ...).
    Other,
}

impl HostErrorKind {
    /// Classifies a Node.js / libuv error code such as `"ENOENT"` (the
    /// `code` property of errors thrown by `node:fs`). Unknown codes are
    /// [`HostErrorKind::Other`].
    pub fn from_node_code(code: &str) -> Self {
        match code {
            "ENOENT" => HostErrorKind::NotFound,
            "EEXIST" => HostErrorKind::AlreadyExists,
            "ENOSPC" | "EDQUOT" | "EFBIG" => HostErrorKind::NoSpace,
            "EACCES" | "EPERM" => HostErrorKind::PermissionDenied,
            "EROFS" => HostErrorKind::ReadOnlyFilesystem,
            "EISDIR" => HostErrorKind::IsADirectory,
            "ENOTDIR" => HostErrorKind::NotADirectory,
            "EINTR" | "EAGAIN" => HostErrorKind::Interrupted,
            "ENOTSUP" | "EOPNOTSUPP" | "ENOSYS" => HostErrorKind::Unsupported,
            _ => HostErrorKind::Other,
        }
    }

    /// Classifies a [`std::io::Error`], by its kind and, where the kind is
    /// too coarse, its OS error number.
    pub fn from_io_error(error: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match error.kind() {
            K::NotFound => HostErrorKind::NotFound,
            K::AlreadyExists => HostErrorKind::AlreadyExists,
            K::StorageFull | K::FileTooLarge => HostErrorKind::NoSpace,
            K::PermissionDenied => HostErrorKind::PermissionDenied,
            K::ReadOnlyFilesystem => HostErrorKind::ReadOnlyFilesystem,
            K::IsADirectory => HostErrorKind::IsADirectory,
            K::NotADirectory => HostErrorKind::NotADirectory,
            K::Interrupted | K::WouldBlock => HostErrorKind::Interrupted,
            K::Unsupported => HostErrorKind::Unsupported,
            _ => match error.raw_os_error() {
                // EDQUOT has no stable `ErrorKind` on the toolchains we support.
                #[cfg(target_os = "linux")]
                Some(122) => HostErrorKind::NoSpace,
                #[cfg(target_os = "macos")]
                Some(69) => HostErrorKind::NoSpace,
                _ => HostErrorKind::Other,
            },
        }
    }
}

impl fmt::Display for HostErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            HostErrorKind::NotFound => "not found",
            HostErrorKind::AlreadyExists => "already exists",
            HostErrorKind::NoSpace => "no space left",
            HostErrorKind::PermissionDenied => "permission denied",
            HostErrorKind::ReadOnlyFilesystem => "read-only file system",
            HostErrorKind::IsADirectory => "is a directory",
            HostErrorKind::NotADirectory => "not a directory",
            HostErrorKind::Interrupted => "interrupted",
            HostErrorKind::Unsupported => "not supported",
            HostErrorKind::Other => "I/O error",
        })
    }
}

/// A failed file operation, as reported by a [`FileHost`].
///
/// Carries the [`HostErrorKind`] that decides the SQLite result code, the
/// host's own message (e.g. Node's `"ENOSPC: no space left on device,
/// write"`) and the OS error number when known (reported to SQLite for
/// `sqlite3_system_errno`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HostError {
    /// What kind of failure this is.
    pub kind: HostErrorKind,
    /// The host's message, for people.
    pub message: String,
    /// The positive OS error number (`errno`), if the host knows it.
    pub errno: Option<i32>,
}

impl HostError {
    /// An error of `kind` with `message` and no OS error number.
    pub fn new(kind: HostErrorKind, message: impl Into<String>) -> Self {
        HostError {
            kind,
            message: message.into(),
            errno: None,
        }
    }
}

impl From<std::io::Error> for HostError {
    fn from(error: std::io::Error) -> Self {
        HostError {
            kind: HostErrorKind::from_io_error(&error),
            errno: error.raw_os_error().filter(|&n| n != 0).map(i32::abs),
            message: error.to_string(),
        }
    }
}

/// Synchronous file operations on real files, the storage under the host VFS.
///
/// Paths are the host's own (absolute after [`FileHost::full_path`]); offsets
/// and sizes are in bytes. Every method reports failure as a [`HostError`]
/// and never panics. Implementations: `StdFileHost` (native,
/// `std::fs`) and the JS `HostFs` object on wasm (`src/wasm/host_fs.rs`,
/// built on `node:fs` by `js/src/node/host-fs.ts`).
///
/// The VFS calls these in the order SQLite asks (sqlite.org/c3ref/io_methods.html);
/// durability comes from [`FileHost::sync`] really reaching the disk
/// (`fsync`/`fdatasync`), which SQLite calls as often as `PRAGMA
/// synchronous` demands.
pub trait FileHost: MaybeSendSync + 'static {
    /// An open file, e.g. a `std::fs::File` or a Node file descriptor.
    type Handle: MaybeSendSync + 'static;

    /// Opens `path` as `mode` says.
    ///
    /// # Errors
    /// [`HostErrorKind::NotFound`] if the file is missing and `mode` does not
    /// create it, [`HostErrorKind::AlreadyExists`] for [`OpenMode::CreateNew`]
    /// on an existing file, anything else the OS reports.
    fn open(&self, path: &str, mode: OpenMode) -> Result<Self::Handle, HostError>;

    /// Reads up to `buf.len()` bytes at byte `offset` into the start of
    /// `buf`, returning how many were read: fewer only at end of file, 0 at
    /// or past it. The VFS calls again for the rest of a short read.
    ///
    /// # Errors
    /// Any OS failure of the read.
    fn read_at(
        &self,
        handle: &Self::Handle,
        buf: &mut [u8],
        offset: u64,
    ) -> Result<usize, HostError>;

    /// Writes all of `data` at byte `offset`, growing the file (with zeros
    /// before `offset` if it lies past the end).
    ///
    /// # Errors
    /// Any OS failure; [`HostErrorKind::NoSpace`] when the disk is full. Some
    /// bytes may have been written when this fails.
    fn write_all_at(
        &self,
        handle: &Self::Handle,
        data: &[u8],
        offset: u64,
    ) -> Result<(), HostError>;

    /// Sets the file's length to `size` bytes, cutting or zero-extending it.
    ///
    /// # Errors
    /// Any OS failure of the truncate.
    fn truncate(&self, handle: &Self::Handle, size: u64) -> Result<(), HostError>;

    /// Flushes the file's written data to stable storage (`fdatasync` when
    /// `data_only`, else `fsync`) and returns only when that is done.
    ///
    /// # Errors
    /// Any OS failure of the sync: the data may not be durable.
    fn sync(&self, handle: &Self::Handle, data_only: bool) -> Result<(), HostError>;

    /// The file's current length in bytes.
    ///
    /// # Errors
    /// Any OS failure of the `fstat`.
    fn size(&self, handle: &Self::Handle) -> Result<u64, HostError>;

    /// Closes the handle. The handle is gone even when this fails.
    ///
    /// # Errors
    /// Any OS failure of the close.
    fn close(&self, handle: Self::Handle) -> Result<(), HostError>;

    /// Whether something exists at `path`.
    ///
    /// # Errors
    /// A failure other than "not found" (e.g. permission denied on a parent).
    fn exists(&self, path: &str) -> Result<bool, HostError>;

    /// Removes the file at `path`. A missing file is success.
    ///
    /// # Errors
    /// Any other OS failure of the unlink.
    fn delete(&self, path: &str) -> Result<(), HostError>;

    /// Makes the directory entries in the directory that contains `path`
    /// durable (opens the directory and `fsync`s it), so that a file just
    /// created or deleted there stays so after a power loss. Hosts on which
    /// directories cannot be opened (Windows) return `Ok`.
    ///
    /// # Errors
    /// The `fsync` of the directory failed.
    fn sync_dir(&self, path: &str) -> Result<(), HostError>;

    /// The absolute form of `path` (relative paths resolved against the
    /// host's working directory), as UTF-8. The VFS uses it as the file's
    /// identity, and SQLite derives the `-journal` / `-wal` names from it.
    ///
    /// # Errors
    /// The path cannot be made absolute or is not UTF-8.
    fn full_path(&self, path: &str) -> Result<String, HostError>;
}
