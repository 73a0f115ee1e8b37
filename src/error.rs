//! The one error type of the durq core, with stable codes.
//!
//! Every error carries a `code` string that crosses the wasm boundary
//! unchanged (`DURQ_*` for durq's own errors, `SQLITE_*` for SQLite's primary
//! result codes, named as on <https://www.sqlite.org/rescode.html>).

/// `Result` with durq's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the durq core.
///
/// Each variant's message says what went wrong in words a user can act on;
/// [`Error::code`] gives the stable machine-readable code.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A caller-supplied value is malformed or out of range (code
    /// `DURQ_INVALID_INPUT`). Nothing was written.
    #[error("{0}")]
    InvalidInput(String),
    /// The run (or other record) does not exist (code `DURQ_NOT_FOUND`).
    #[error("{0}")]
    NotFound(String),
    /// A write by a lease holder whose lease is gone: it expired and was
    /// recovered, or another worker holds a newer fencing token (code
    /// `DURQ_LEASE_LOST`). Nothing was written.
    #[error("{0}")]
    LeaseLost(String),
    /// The operation does not apply to the run's current status, e.g.
    /// deleting a leased run (code `DURQ_INVALID_STATE`).
    #[error("{0}")]
    InvalidState(String),
    /// Stored data does not have the shape durq wrote, e.g. a JSON column
    /// that does not parse (code `DURQ_CORRUPT`): the file was changed by
    /// something other than durq.
    #[error("{0}")]
    Corrupt(String),
    /// A `search` in FTS5 syntax (`searchSyntax: "fts5"`) that FTS5 rejects
    /// (code `DURQ_INVALID_SEARCH`), with FTS5's reason
    /// (<https://www.sqlite.org/fts5.html#full_text_query_syntax>).
    #[error("{0}")]
    InvalidSearch(String),
    /// The full-text index is being rebuilt or its rebuild failed (code
    /// `DURQ_SEARCH_STALE`): a bulk import deferred its maintenance and it
    /// has not been restored yet. Other reads and writes work meanwhile.
    #[error("{0}")]
    SearchStale(String),
    /// The database was closed (code `DURQ_CLOSED`).
    #[error("the database is closed")]
    Closed,
    /// The database schema is newer than this build understands (code
    /// `DURQ_SCHEMA_TOO_NEW`): open it with a newer durq.
    #[error("database schema version {found} is newer than the {supported} this build of durq supports; upgrade durq")]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build migrates to.
        supported: i64,
    },
    /// An error reported by SQLite; the code is SQLite's primary result code
    /// (`SQLITE_BUSY`, `SQLITE_FULL`, `SQLITE_CORRUPT`, ...).
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl Error {
    /// The stable code of this error, e.g. `DURQ_NOT_FOUND` or `SQLITE_BUSY`.
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidInput(_) => "DURQ_INVALID_INPUT",
            Error::NotFound(_) => "DURQ_NOT_FOUND",
            Error::LeaseLost(_) => "DURQ_LEASE_LOST",
            Error::InvalidState(_) => "DURQ_INVALID_STATE",
            Error::Corrupt(_) => "DURQ_CORRUPT",
            Error::InvalidSearch(_) => "DURQ_INVALID_SEARCH",
            Error::SearchStale(_) => "DURQ_SEARCH_STALE",
            Error::Closed => "DURQ_CLOSED",
            Error::SchemaTooNew { .. } => "DURQ_SCHEMA_TOO_NEW",
            Error::Sqlite(e) => match e {
                rusqlite::Error::SqliteFailure(f, _) => sqlite_code_name(f.extended_code),
                rusqlite::Error::QueryReturnedNoRows => "DURQ_NOT_FOUND",
                rusqlite::Error::FromSqlConversionFailure(_, _, inner) if inner.is::<Error>() => {
                    "DURQ_CORRUPT"
                }
                _ => "SQLITE_ERROR",
            },
        }
    }

    /// SQLite's extended result code for an SQLite error that has one
    /// (e.g. 2058 `SQLITE_IOERR_SHORT_READ`, 3338 `SQLITE_IOERR_FSYNC`;
    /// <https://www.sqlite.org/rescode.html#extrc>), else `None`. The
    /// primary code is [`Error::code`]; the extended one tells which I/O
    /// call or constraint failed.
    pub fn extended_code(&self) -> Option<i32> {
        match self {
            Error::Sqlite(rusqlite::Error::SqliteFailure(f, _)) => Some(f.extended_code),
            _ => None,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }

    /// Stored data that does not have durq's shape, as a row mapper's
    /// error (`rusqlite::Error`): it surfaces as `DURQ_CORRUPT` (see
    /// [`Error::code`]).
    pub(crate) fn corrupt_row(e: Error) -> rusqlite::Error {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    }
}

/// Maps an SQLite (extended) result code to the name of its primary code, as
/// listed on <https://www.sqlite.org/rescode.html>.
pub fn sqlite_code_name(code: i32) -> &'static str {
    match code & 0xff {
        1 => "SQLITE_ERROR",
        2 => "SQLITE_INTERNAL",
        3 => "SQLITE_PERM",
        4 => "SQLITE_ABORT",
        5 => "SQLITE_BUSY",
        6 => "SQLITE_LOCKED",
        7 => "SQLITE_NOMEM",
        8 => "SQLITE_READONLY",
        9 => "SQLITE_INTERRUPT",
        10 => "SQLITE_IOERR",
        11 => "SQLITE_CORRUPT",
        12 => "SQLITE_NOTFOUND",
        13 => "SQLITE_FULL",
        14 => "SQLITE_CANTOPEN",
        15 => "SQLITE_PROTOCOL",
        17 => "SQLITE_SCHEMA",
        18 => "SQLITE_TOOBIG",
        19 => "SQLITE_CONSTRAINT",
        20 => "SQLITE_MISMATCH",
        21 => "SQLITE_MISUSE",
        22 => "SQLITE_NOLFS",
        23 => "SQLITE_AUTH",
        25 => "SQLITE_RANGE",
        26 => "SQLITE_NOTADB",
        _ => "SQLITE_ERROR",
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::InvalidInput(format!("malformed JSON: {e}"))
    }
}
