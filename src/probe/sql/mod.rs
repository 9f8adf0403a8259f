//! The `sql` probe: rows of a query against a SQLite file or a PostgreSQL server, against
//! expectations — deployment guides' `sqlite3 live_state.db "SELECT current_state, error_reason FROM
//! operational_state"` as a gate. The query is always read-only, so the probe can never change
//! the state it checks: SQLite opens the file read-only (module `sqlite`), PostgreSQL runs it
//! in a `READ ONLY` transaction (module `postgres`).
//!
//! The module is in layers, so the part that judges rows is one code path for both engines
//! and usable without a checklist item:
//! - [`Database`] and [`query`] (in `database`): where rows come from, and the one async
//!   entry point that fetches them as [`Rows`];
//! - [`check`] with [`Expect`] (in `rows`): what the rows must look like;
//! - [`RawSqlProbe`] / [`SqlProbe`] (here): the checklist's table, validated once, and the
//!   item's report (checks, measurements, the result table).
//!
//! Expectations (at least one):
//! - `rows`: the exact number of rows; `empty = true` is `rows = 0`;
//! - `equals`: the *value* — first column of the first row — equals this (string, number,
//!   boolean; SQL NULL never equals anything);
//! - `min` / `max`: the value is a number within these bounds.
//!
//! No rows where a value is expected is a `fail` that says so; a query that does not connect,
//! prepare or run is an `error` naming the query and the database.

mod database;
mod error;
mod postgres;
mod rows;
mod sqlite;

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

pub use database::{Database, query};
pub use error::SqlError;
pub use rows::{Expect, Rows, check, display_cell, same_value};

use super::{FieldError, ProbeContext, Validator};
use crate::model::{ProbeOutput, Table};

/// Rows kept in the report's table (the count is always exact).
const SHOWN_ROWS: usize = 20;

/// SQLite's default busy timeout.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// PostgreSQL's default connect and statement timeout.
const DEFAULT_PG_TIMEOUT: Duration = Duration::from_secs(10);

/// `kind = "sql"`: run a query and check its rows. Exactly one of `sqlite` and `url`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("oneOf" = [{ "required": ["sqlite"] }, { "required": ["url"] }]))]
pub struct RawSqlProbe {
    /// SQLite database file, relative to the checklist; `${VAR}` is interpolated. Opened
    /// read-only; a missing file is an error.
    pub sqlite: Option<String>,
    /// PostgreSQL server, as a URL: `"postgres://user:${PGPASSWORD}@127.0.0.1:5432/db"`
    /// (or `postgresql://`); `${VAR}` is interpolated and its value redacted everywhere.
    /// Queried in a read-only transaction; no TLS yet (`sslmode=require` is refused).
    pub url: Option<String>,
    /// The query, one statement, e.g. `"SELECT current_state FROM operational_state"`.
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
    /// SQLite only: how long to wait for a writer's lock (humantime). Default `"5s"`.
    pub busy_timeout: Option<String>,
    /// PostgreSQL only: the connect timeout and the server's `statement_timeout`
    /// (humantime); the whole exchange is abandoned after twice this plus 5 s. Default
    /// `"10s"`.
    pub timeout: Option<String>,
}

/// A validated `sql` probe.
#[derive(Debug, Clone)]
pub struct SqlProbe {
    db: Database,
    query: String,
    expect: Expect,
    /// The busy timeout (SQLite) or the connect and statement timeout (PostgreSQL).
    timeout: Duration,
}

impl RawSqlProbe {
    /// Validate into a [`SqlProbe`].
    ///
    /// # Errors
    /// A [`FieldError`] for neither or both of `sqlite` and `url`, an unset `${VAR}`, a URL
    /// that is not PostgreSQL's or asks for TLS, a timeout key of the other engine, an empty
    /// query, no expectation, `empty` beside `rows`, or an `equals` that is not a string,
    /// number or boolean.
    pub fn validate(self, v: &mut Validator) -> Result<SqlProbe, FieldError> {
        let db = self.database(v)?;
        if self.query.trim().is_empty() {
            return Err(FieldError::new("query", "expected a query"));
        }
        let expect = self.expectation(true)?.unwrap_or_default();
        let (key, text, default) = match (&db, &self.busy_timeout, &self.timeout) {
            (Database::Sqlite { .. }, _, Some(_)) => {
                return Err(FieldError::new(
                    "timeout",
                    "timeout is for PostgreSQL (url); a SQLite file takes busy_timeout",
                ));
            }
            (Database::Postgres { .. }, Some(_), _) => {
                return Err(FieldError::new(
                    "busy_timeout",
                    "busy_timeout is for SQLite; PostgreSQL (url) takes timeout",
                ));
            }
            (Database::Sqlite { .. }, t, _) => ("busy_timeout", t, DEFAULT_BUSY_TIMEOUT),
            (Database::Postgres { .. }, _, t) => ("timeout", t, DEFAULT_PG_TIMEOUT),
        };
        let timeout = match text {
            Some(t) => v.duration(key, t)?,
            None => default,
        };
        Ok(SqlProbe {
            db,
            query: self.query,
            expect,
            timeout,
        })
    }

    /// Exactly one of `sqlite` and `url`, interpolated.
    pub(crate) fn database(&self, v: &mut Validator) -> Result<Database, FieldError> {
        match (&self.sqlite, &self.url) {
            (Some(path), None) => {
                let path = v.interpolate("sqlite", path)?;
                Ok(Database::sqlite(path.value, path.display))
            }
            (None, Some(url)) => {
                let url = v.interpolate("url", url)?;
                Database::postgres(&url).map_err(|m| FieldError::new("url", v.redactor.redact(&m)))
            }
            (Some(_), Some(_)) => Err(FieldError::new(
                "url",
                "sqlite and url exclude each other: one probe reads one database",
            )),
            (None, None) => Err(FieldError::new(
                "",
                "expected a database: sqlite = \"<file>\" or url = \"postgres://…\"",
            )),
        }
    }

    /// The expectations; at least one when `required` (a drill step that only saves or
    /// compares a saved value has none: `None`).
    pub(crate) fn expectation(&self, required: bool) -> Result<Option<Expect>, FieldError> {
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
        let expect = Expect {
            rows,
            equals: self.equals.clone(),
            min: self.min,
            max: self.max,
        };
        if expect == Expect::default() {
            if !required {
                return Ok(None);
            }
            return Err(FieldError::new(
                "",
                "expected at least one of: rows, empty, equals, min, max",
            ));
        }
        Ok(Some(expect))
    }
}

impl SqlProbe {
    /// Run the query and check the rows; a [`SqlError`] is an `error` outcome, redacted.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let db = self.db.resolved(&ctx.checklist_dir);
        match query(&db, &self.query, self.timeout).await {
            Ok(rows) => self.output(&rows),
            Err(e) => ProbeOutput::error(ctx.redactor.redact(&e.to_string())),
        }
    }

    /// The item's report: the checks, `rows` and `value` measured, a summary, and the first
    /// [`SHOWN_ROWS`] rows as a table.
    fn output(&self, rows: &Rows) -> ProbeOutput {
        let mut o = ProbeOutput {
            checks: check(rows, &self.expect),
            summary: format!(
                "{} row(s) from {}; value {}",
                rows.rows.len(),
                self.db.display(),
                rows.shown_value()
            ),
            ..ProbeOutput::default()
        };
        o.measure("rows", rows.rows.len() as u64);
        if let Some(v) = rows.value() {
            o.measure("value", v.clone());
        }
        o.tables.push(Table {
            title: format!("Result of `{}`", self.query),
            columns: rows.columns.clone(),
            rows: rows
                .rows
                .iter()
                .take(SHOWN_ROWS)
                .map(|r| r.iter().map(display_cell).collect())
                .collect(),
        });
        o
    }
}

crate::probe::probe_kind!(SqlProbe, RawSqlProbe, async);
