//! The SQLite backend: opens the file read-only (`SQLITE_OPEN_READ_ONLY`), so a query can
//! never change the state it checks, with a busy timeout, so it reads beside a writer in WAL
//! mode. Blocking; [`super::query`] runs it on tokio's blocking pool.

use std::path::Path;
use std::time::Duration;

use rusqlite::types::ValueRef;
use serde_json::Value;

use super::{Rows, SqlError};

/// Run `sql` against the SQLite file at `path`, named `display` in errors.
pub(super) fn query(
    path: &Path,
    display: &str,
    sql: &str,
    busy_timeout: Duration,
) -> Result<Rows, SqlError> {
    use rusqlite::OpenFlags;
    if !path.is_file() {
        return Err(SqlError::NoFile { db: display.into() });
    }
    let conn = rusqlite::Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| SqlError::Connect {
        db: display.into(),
        cause: e.to_string(),
    })?;
    let _ = conn.busy_timeout(busy_timeout);
    let at = |e: rusqlite::Error| SqlError::Query {
        db: display.into(),
        query: sql.into(),
        cause: e.to_string(),
    };
    let mut st = conn.prepare(sql).map_err(at)?;
    let columns: Vec<String> = st.column_names().iter().map(|c| c.to_string()).collect();
    let mut out = Vec::new();
    let mut rows = st.query([]).map_err(at)?;
    while let Some(r) = rows.next().map_err(at)? {
        let mut row = Vec::with_capacity(columns.len());
        for i in 0..columns.len() {
            row.push(cell(r.get_ref(i).map_err(at)?));
        }
        out.push(row);
    }
    Ok(Rows { columns, rows: out })
}

/// SQLite's dynamic types as JSON: INTEGER and REAL are numbers, TEXT a string, NULL `null`,
/// a BLOB `"<N bytes>"`.
fn cell(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => f.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
    }
}
