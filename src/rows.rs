//! Multi-row `INSERT`s, chunked under SQLite's bound-parameter limit.
//!
//! One `INSERT ... VALUES (...), (...), ...` statement per chunk is several
//! times cheaper than one statement per row (each `sqlite3_step` pays the
//! VDBE setup once). A statement may bind at most
//! `SQLITE_LIMIT_VARIABLE_NUMBER` parameters (32766 in this build, see
//! <https://www.sqlite.org/limits.html#max_variable_number>), so rows are
//! cut into chunks whose sizes are powers of two: at most log2(rows)
//! distinct statements exist, and all of them stay in the connection's
//! prepared-statement cache.

use crate::error::Result;
use rusqlite::limits::Limit;
use rusqlite::types::Value;
use rusqlite::Connection;

/// Bound parameters one statement may take on `c`
/// (`SQLITE_LIMIT_VARIABLE_NUMBER`; 32766 unless the build changed it).
pub fn max_params(c: &Connection) -> usize {
    usize::try_from(c.limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER).unwrap_or(999))
        .unwrap_or(999)
        .max(1)
}

/// Largest power of two of rows of `cols` columns that fits in one
/// statement on `c`, capped at `cap` rows.
pub fn rows_per_statement(c: &Connection, cols: usize, cap: usize) -> usize {
    let fit = (max_params(c) / cols.max(1)).clamp(1, cap.max(1));
    1 << (usize::BITS - 1 - fit.leading_zeros())
}

/// Inserts `rows` (each `cols.len()` values) into `table` with
/// `INSERT {verb} INTO table (cols) VALUES (...), (...), ...`: one
/// statement per power-of-two chunk of at most [`rows_per_statement`]
/// rows. Returns the rows inserted.
///
/// # Errors
/// The first SQLite error (a constraint, a full disk); the chunks before it
/// stay written in the caller's transaction.
pub fn insert_rows(
    c: &Connection,
    verb: &str,
    table: &str,
    cols: &[&str],
    rows: &[Vec<Value>],
) -> Result<usize> {
    let max = rows_per_statement(c, cols.len(), 4096);
    let one = format!("({})", vec!["?"; cols.len()].join(","));
    let mut inserted = 0;
    let mut rest = rows;
    let mut flat: Vec<&Value> = Vec::new();
    while !rest.is_empty() {
        let n = if rest.len() >= max {
            max
        } else {
            1 << (usize::BITS - 1 - rest.len().leading_zeros())
        };
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        let sql = format!(
            "INSERT {verb} INTO {table} ({}) VALUES {}",
            cols.join(", "),
            vec![one.as_str(); n].join(",")
        );
        flat.clear();
        for r in chunk {
            debug_assert_eq!(r.len(), cols.len(), "row width");
            flat.extend(r.iter());
        }
        inserted += c
            .prepare_cached(&sql)?
            .execute(rusqlite::params_from_iter(flat.iter()))?;
    }
    Ok(inserted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_under_the_limit() {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (a, b, c)").unwrap();
        // 3 columns: 32766 / 3 = 10922 fit, capped at 4096 rows a statement.
        assert_eq!(rows_per_statement(&c, 3, 4096), 4096);
        assert_eq!(rows_per_statement(&c, 24, 4096), 1024);
        let rows: Vec<Vec<Value>> = (0..10_001)
            .map(|i| vec![Value::Integer(i), Value::Null, Value::Text("x".into())])
            .collect();
        let n = insert_rows(&c, "", "t", &["a", "b", "c"], &rows).unwrap();
        assert_eq!(n, 10_001);
        let (count, sum): (i64, i64) = c
            .query_row("SELECT count(*), sum(a) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((count, sum), (10_001, 10_000 * 10_001 / 2));
        // A lower limit is obeyed.
        c.set_limit(Limit::SQLITE_LIMIT_VARIABLE_NUMBER, 10)
            .unwrap();
        assert_eq!(rows_per_statement(&c, 3, 4096), 2);
        assert_eq!(
            insert_rows(&c, "", "t", &["a", "b", "c"], &rows[..7]).unwrap(),
            7
        );
    }
}
