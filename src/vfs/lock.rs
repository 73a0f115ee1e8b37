//! In-process SQLite file locks, kept in memory per file path.
//!
//! SQLite's five lock levels (NONE < SHARED < RESERVED < PENDING < EXCLUSIVE,
//! sqlite.org/lockingv3.html) are tracked per path for all handles of one
//! host VFS, the way os_unix.c tracks them per inode: many SHARED holders,
//! at most one RESERVED/PENDING/EXCLUSIVE holder, PENDING keeps new readers
//! out, EXCLUSIVE needs every other reader gone. Contention is
//! `SQLITE_BUSY`.
//!
//! Nothing here reaches the OS: other *processes* are kept out by the
//! façade's exclusive `<path>.lock` file, not by these locks. Two paths that
//! name one file (symlinks, hard links) count as different files.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rsqlite_vfs::{LockLevel, VfsError, VfsErrorCode, VfsResult};

/// The lock state of one path, over all its handles.
#[derive(Debug, Default)]
struct PathLocks {
    /// Handles holding SHARED or more.
    shared: u32,
    /// The level of the one handle holding RESERVED, PENDING or EXCLUSIVE.
    writer: Option<LockLevel>,
}

/// Lock states of all paths locked through one VFS. Cheap to clone (shared).
#[derive(Debug, Clone, Default)]
pub(crate) struct LockTable {
    paths: Arc<Mutex<HashMap<String, PathLocks>>>,
}

impl LockTable {
    fn paths(&self) -> MutexGuard<'_, HashMap<String, PathLocks>> {
        // A panic elsewhere while holding the guard cannot leave the map in a
        // torn state (every update is a few field writes), so recover it.
        self.paths
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Raises `held` (this handle's level on `path`) to `want`, or fails
    /// with `SQLITE_BUSY` when another handle's lock is in the way. A failed
    /// EXCLUSIVE may leave the handle at PENDING, as SQLite allows
    /// (sqlite.org/c3ref/io_methods.html).
    pub(crate) fn lock(&self, path: &str, held: &mut LockLevel, want: LockLevel) -> VfsResult<()> {
        if want <= *held {
            return Ok(());
        }
        let mut paths = self.paths();
        let entry = paths.entry(path.to_owned()).or_default();
        if *held == LockLevel::None {
            if entry.writer >= Some(LockLevel::Pending) {
                return Err(busy("another connection is writing this database"));
            }
            entry.shared += 1;
            *held = LockLevel::Shared;
            if want == LockLevel::Shared {
                return Ok(());
            }
        }
        // From here on this handle holds at least SHARED.
        if *held == LockLevel::Shared && entry.writer.is_some() {
            return Err(busy("another connection holds the write lock"));
        }
        match want {
            LockLevel::None | LockLevel::Shared => Ok(()),
            LockLevel::Reserved => {
                entry.writer = Some(LockLevel::Reserved);
                *held = LockLevel::Reserved;
                Ok(())
            }
            LockLevel::Pending | LockLevel::Exclusive => {
                entry.writer = Some(LockLevel::Pending);
                *held = LockLevel::Pending;
                if want == LockLevel::Pending {
                    return Ok(());
                }
                if entry.shared > 1 {
                    return Err(busy("other connections are reading this database"));
                }
                entry.writer = Some(LockLevel::Exclusive);
                *held = LockLevel::Exclusive;
                Ok(())
            }
        }
    }

    /// Lowers `held` to `want` (SHARED or NONE); a level at or below `want`
    /// is left as it is.
    pub(crate) fn unlock(&self, path: &str, held: &mut LockLevel, want: LockLevel) {
        if want >= *held {
            return;
        }
        let mut paths = self.paths();
        let Some(entry) = paths.get_mut(path) else {
            *held = LockLevel::None;
            return;
        };
        if *held >= LockLevel::Reserved {
            entry.writer = None;
        }
        if want == LockLevel::None {
            entry.shared = entry.shared.saturating_sub(1);
            *held = LockLevel::None;
        } else {
            *held = LockLevel::Shared;
        }
        if entry.shared == 0 && entry.writer.is_none() {
            paths.remove(path);
        }
    }

    /// Whether any handle holds RESERVED or more on `path`.
    pub(crate) fn reserved(&self, path: &str) -> bool {
        self.paths().get(path).is_some_and(|e| e.writer.is_some())
    }
}

fn busy(message: &'static str) -> VfsError {
    VfsError::new(VfsErrorCode::Busy, message.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use LockLevel::*;

    #[test]
    fn readers_share_and_writer_waits_for_them() {
        let table = LockTable::default();
        let (mut a, mut b) = (None, None);
        table.lock("db", &mut a, Shared).unwrap();
        table.lock("db", &mut b, Shared).unwrap();
        table.lock("db", &mut a, Reserved).unwrap();
        assert!(table.reserved("db"));
        // b cannot reserve while a does.
        assert_eq!(
            table.lock("db", &mut b, Reserved).unwrap_err().code(),
            VfsErrorCode::Busy
        );
        // a cannot go exclusive while b reads, but keeps PENDING.
        assert_eq!(
            table.lock("db", &mut a, Exclusive).unwrap_err().code(),
            VfsErrorCode::Busy
        );
        assert_eq!(a, Pending);
        // PENDING keeps a new reader out.
        let mut c = None;
        assert_eq!(
            table.lock("db", &mut c, Shared).unwrap_err().code(),
            VfsErrorCode::Busy
        );
        table.unlock("db", &mut b, None);
        table.lock("db", &mut a, Exclusive).unwrap();
        assert_eq!(a, Exclusive);
        table.unlock("db", &mut a, Shared);
        assert!(!table.reserved("db"));
        table.lock("db", &mut c, Shared).unwrap();
        table.unlock("db", &mut a, None);
        table.unlock("db", &mut c, None);
        assert!(table.paths().is_empty());
    }

    #[test]
    fn paths_are_independent() {
        let table = LockTable::default();
        let (mut a, mut b) = (None, None);
        table.lock("one", &mut a, Exclusive).unwrap();
        table.lock("two", &mut b, Exclusive).unwrap();
        assert_eq!((a, b), (Exclusive, Exclusive));
    }
}
