//! The `sql` probe: rows of a query against a SQLite database, against expectations — the
//! seeds' `sqlite3 live_state.db "SELECT current_state, error_reason FROM operational_state"`
//! as a gate. The database is opened read-only (`SQLITE_OPEN_READ_ONLY`), so the probe can
//! never change the state it checks, and with a busy timeout, so it reads beside a writer in
//! WAL mode.
//!
//! Expectations (at least one):
//! - `rows`: the exact number of rows; `empty = true` is `rows = 0`;
//! - `equals`: the *value* — first column of the first row — equals this (string, number,
//!   boolean; SQL NULL never equals anything);
//! - `min` / `max`: the value is a number within these bounds.
//!
//! No rows where a value is expected is a `fail` that says so; a query that does not prepare
//! or run is an `error` naming the query and the database.

use std::path::PathBuf;
use std::time::Duration;

use rusqlite::types::ValueRef;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator, compare_range};
use crate::model::{Check, ProbeOutput, Table};

/// Rows kept in the report's table (the count is always exact).
const SHOWN_ROWS: usize = 20;

/// `kind = "sql"`: run a query and check its rows.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawSqlProbe {
    /// SQLite database file, relative to the checklist; `${VAR}` is interpolated. Opened
    /// read-only; a missing file is an error.
    pub sqlite: String,
    /// The query, e.g. `"SELECT current_state FROM operational_state"`.
    pub query: String,
    /// Exact number of rows expected.
    pub rows: Option<u64>,
    /// `true`: no rows expected (same as `rows = 0`).
    pub empty: Option<bool>,
    /// The value expected in the first column of the first row.
    pub equals: Option<serde_json::Value>,
    /// Smallest accepted value (first column of the first row, a number).
    pub min: Option<f64>,
    /// Largest accepted value (first column of the first row, a number).
    pub max: Option<f64>,
    /// How long to wait for a writer's lock (humantime). Default `"5s"`.
    pub busy_timeout: Option<String>,
}

/// A validated `sql` probe.
#[derive(Debug, Clone)]
pub struct SqlProbe {
    path: PathBuf,
    display: String,
    query: String,
    rows: Option<u64>,
    equals: Option<serde_json::Value>,
    min: Option<f64>,
    max: Option<f64>,
    busy_timeout: Duration,
}

impl RawSqlProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] for an empty query, no expectation, `empty` beside `rows`, or an
    /// `equals` that is not a string, number or boolean.
    pub fn validate(self, v: &mut Validator) -> Result<SqlProbe, FieldError> {
        let db = v.interpolate("sqlite", &self.sqlite)?;
        if self.query.trim().is_empty() {
            return Err(FieldError::new("query", "expected a query"));
        }
        let rows = match (self.rows, self.empty) {
            (Some(_), Some(_)) => {
                return Err(FieldError::new(
                    "empty",
                    "empty and rows exclude each other (empty = true is rows = 0)",
                ));
            }
            (r, Some(true)) => r.or(Some(0)),
            (r, _) => r,
        };
        if let Some(e) = &self.equals
            && !(e.is_string() || e.is_number() || e.is_boolean())
        {
            return Err(FieldError::new(
                "equals",
                "expected a string, number or boolean",
            ));
        }
        if rows.is_none() && self.equals.is_none() && self.min.is_none() && self.max.is_none() {
            return Err(FieldError::new(
                "",
                "expected at least one of: rows, empty, equals, min, max",
            ));
        }
        let busy_timeout = self
            .busy_timeout
            .as_deref()
            .map(|t| v.duration("busy_timeout", t))
            .transpose()?
            .unwrap_or(Duration::from_secs(5));
        Ok(SqlProbe {
            path: PathBuf::from(&db.value),
            display: db.display,
            query: self.query,
            rows,
            equals: self.equals,
            min: self.min,
            max: self.max,
            busy_timeout,
        })
    }
}

/// A query's result: column names and every row's cells as JSON values.
struct ResultSet {
    columns: Vec<String>,
    rows: Vec<Vec<serde_json::Value>>,
}

fn cell(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => f.into(),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned().into(),
        ValueRef::Blob(b) => format!("<{} bytes>", b.len()).into(),
    }
}

impl SqlProbe {
    fn query(&self, ctx: &ProbeContext) -> Result<ResultSet, String> {
        use rusqlite::OpenFlags;
        let path = ctx.resolve(&self.path);
        if !path.is_file() {
            return Err(format!("{}: no such database file", self.display));
        }
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| format!("{}: cannot open: {e}", self.display))?;
        let _ = conn.busy_timeout(self.busy_timeout);
        let at = |e: rusqlite::Error| format!("{}: query \"{}\": {e}", self.display, self.query);
        let mut st = conn.prepare(&self.query).map_err(at)?;
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
        Ok(ResultSet { columns, rows: out })
    }

    /// Run the query and check the rows.
    pub fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        match self.query(ctx) {
            Ok(rs) => self.judge(&rs),
            Err(e) => ProbeOutput::error(ctx.redactor.redact(&e)),
        }
    }

    fn judge(&self, rs: &ResultSet) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let value = rs.rows.first().and_then(|r| r.first());
        o.measure("rows", rs.rows.len() as u64);
        if let Some(v) = value {
            o.measure("value", v.clone());
        }
        if let Some(n) = self.rows {
            o.checks.push(Check::new(
                "rows",
                format!("= {n}"),
                rs.rows.len().to_string(),
                rs.rows.len() as u64 == n,
            ));
        }
        let shown = value.map_or_else(|| "no rows".to_string(), |v| v.to_string());
        if let Some(want) = &self.equals {
            o.checks.push(Check::new(
                "value",
                format!("= {want}"),
                shown.clone(),
                value.is_some_and(|v| same_value(v, want)),
            ));
        }
        if self.min.is_some() || self.max.is_some() {
            let number = value.and_then(serde_json::Value::as_f64);
            let (expected, ok) = compare_range(self.min, self.max, number.unwrap_or(f64::NAN));
            o.checks
                .push(Check::new("value", expected, shown.clone(), ok));
        }
        o.summary = format!(
            "{} row(s) from {}; value {shown}",
            rs.rows.len(),
            self.display
        );
        o.tables.push(Table {
            title: format!("Result of `{}`", self.query),
            columns: rs.columns.clone(),
            rows: rs
                .rows
                .iter()
                .take(SHOWN_ROWS)
                .map(|r| r.iter().map(display_cell).collect())
                .collect(),
        });
        o
    }
}

/// A cell for people: text without quotes, NULL as `NULL`.
fn display_cell(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

/// SQLite's dynamic types against a TOML value: numbers compare as numbers (`1` = `1.0`),
/// booleans as SQLite stores them (1 and 0), text as text.
fn same_value(got: &serde_json::Value, want: &serde_json::Value) -> bool {
    match (got, want) {
        (serde_json::Value::Number(a), serde_json::Value::Number(b)) => a.as_f64() == b.as_f64(),
        (serde_json::Value::Number(a), serde_json::Value::Bool(b)) => {
            a.as_f64() == Some(f64::from(u8::from(*b)))
        }
        (a, b) => a == b,
    }
}

crate::probe::probe_kind!(SqlProbe, RawSqlProbe, blocking);
