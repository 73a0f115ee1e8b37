//! [`StdFileHost`]: the [`FileHost`] on `std::fs`, for native builds.
//!
//! It exists so that the host VFS is tested natively against bundled SQLite
//! with the same code paths the wasm build drives through `node:fs`, and so
//! that a native durq can use the same VFS.

use std::fs::{File, OpenOptions as StdOpenOptions};
use std::path::{Path, PathBuf};

use super::host::{FileHost, HostError, HostErrorKind, OpenMode};

/// A [`FileHost`] on `std::fs`, resolving relative paths against a base
/// directory (the process's working directory unless one is given).
///
/// # Example
/// ```no_run
/// use durq::vfs::{register_host_vfs_as, StdFileHost};
/// let vfs = register_host_vfs_as("durq-std", StdFileHost::new()).unwrap();
/// let conn = rusqlite::Connection::open_with_flags_and_vfs(
///     "app.db",
///     rusqlite::OpenFlags::default(),
///     vfs,
/// ).unwrap();
/// ```
#[derive(Debug, Clone, Default)]
pub struct StdFileHost {
    base_dir: Option<PathBuf>,
}

impl StdFileHost {
    /// A host resolving relative paths against the working directory.
    pub fn new() -> Self {
        StdFileHost { base_dir: None }
    }

    /// A host resolving relative paths against `dir` (which should be
    /// absolute; a relative `dir` is itself taken from the working
    /// directory).
    pub fn with_base_dir(dir: impl Into<PathBuf>) -> Self {
        StdFileHost {
            base_dir: Some(dir.into()),
        }
    }

    fn resolve(&self, path: &str) -> Result<PathBuf, HostError> {
        let path = Path::new(path);
        if path.as_os_str().is_empty() {
            return Err(HostError::new(HostErrorKind::NotFound, "empty path"));
        }
        let joined = match &self.base_dir {
            Some(base) if path.is_relative() => base.join(path),
            _ => path.to_path_buf(),
        };
        Ok(std::path::absolute(joined)?)
    }
}

impl FileHost for StdFileHost {
    type Handle = File;

    fn open(&self, path: &str, mode: OpenMode) -> Result<File, HostError> {
        let path = self.resolve(path)?;
        let mut options = StdOpenOptions::new();
        options.read(true).write(mode.writable());
        match mode {
            OpenMode::Read | OpenMode::ReadWrite => {}
            OpenMode::Create => {
                options.create(true);
            }
            OpenMode::CreateNew => {
                options.create_new(true);
            }
        }
        let file = options.open(&path)?;
        // open(2) succeeds on a directory opened read-only; SQLite must not
        // get one as a database.
        if file.metadata()?.is_dir() {
            return Err(HostError::new(
                HostErrorKind::IsADirectory,
                format!("{} is a directory", path.display()),
            ));
        }
        Ok(file)
    }

    fn read_at(&self, file: &File, buf: &mut [u8], offset: u64) -> Result<usize, HostError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            Ok(file.read_at(buf, offset)?)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            match file.seek_read(buf, offset) {
                // Windows reports reading at end of file as ERROR_HANDLE_EOF.
                Err(e) if e.raw_os_error() == Some(38) => Ok(0),
                other => Ok(other?),
            }
        }
    }

    fn write_all_at(&self, file: &File, data: &[u8], offset: u64) -> Result<(), HostError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileExt;
            Ok(file.write_all_at(data, offset)?)
        }
        #[cfg(windows)]
        {
            use std::os::windows::fs::FileExt;
            let mut done = 0;
            while done < data.len() {
                let n = file.seek_write(&data[done..], offset + done as u64)?;
                if n == 0 {
                    return Err(HostError::new(HostErrorKind::Other, "write returned 0"));
                }
                done += n;
            }
            Ok(())
        }
    }

    fn truncate(&self, file: &File, size: u64) -> Result<(), HostError> {
        Ok(file.set_len(size)?)
    }

    fn sync(&self, file: &File, data_only: bool) -> Result<(), HostError> {
        if data_only {
            Ok(file.sync_data()?)
        } else {
            Ok(file.sync_all()?)
        }
    }

    fn size(&self, file: &File) -> Result<u64, HostError> {
        Ok(file.metadata()?.len())
    }

    fn close(&self, file: File) -> Result<(), HostError> {
        // std reports no error from close(2); the data's durability was
        // already decided by `sync`.
        drop(file);
        Ok(())
    }

    fn exists(&self, path: &str) -> Result<bool, HostError> {
        Ok(self.resolve(path)?.try_exists()?)
    }

    fn delete(&self, path: &str) -> Result<(), HostError> {
        match std::fs::remove_file(self.resolve(path)?) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => Ok(other?),
        }
    }

    fn sync_dir(&self, path: &str) -> Result<(), HostError> {
        #[cfg(unix)]
        {
            let path = self.resolve(path)?;
            let Some(dir) = path.parent() else {
                return Ok(());
            };
            // As os_unix.c does: a directory that cannot be opened is not an
            // error, a failed fsync of an opened one is.
            match File::open(dir) {
                Ok(dir) => Ok(dir.sync_all()?),
                Err(_) => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(())
        }
    }

    fn full_path(&self, path: &str) -> Result<String, HostError> {
        let resolved = self.resolve(path)?;
        resolved.into_os_string().into_string().map_err(|raw| {
            HostError::new(
                HostErrorKind::Other,
                format!("path {} is not valid UTF-8", PathBuf::from(raw).display()),
            )
        })
    }
}
