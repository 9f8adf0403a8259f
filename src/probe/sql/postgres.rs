//! The PostgreSQL backend, on tokio-postgres without TLS.
//!
//! Read-only twice over: the session's transactions default to `READ ONLY` and the query runs
//! inside `BEGIN READ ONLY`, so `DELETE`, `UPDATE` and DDL are refused by the server (for a
//! hard guarantee, give the probe a role that may only `SELECT`). The query is first prepared
//! (the extended protocol accepts a single statement, so `COMMIT; DELETE …` cannot slip
//! through, and tells each column's type), then run with the simple protocol, which returns
//! every value as PostgreSQL's text. Each text becomes the JSON value the SQLite backend would
//! give: `int2`/`int4`/`int8`/`oid` are integers, `float4`/`float8`/`numeric` numbers (an
//! integral `numeric` stays an integer; `NaN` and infinities stay text; `numeric` beyond
//! f64 precision is rounded), `bool` a boolean, NULL `null`, and every other type
//! (text, varchar, timestamps, dates, json, uuid…) its text.

use std::time::Duration;

use serde_json::Value;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

use super::{Rows, SqlError};

/// How long past twice the statement timeout (prepare, then run) the server has to report its
/// own cancellation before the exchange is abandoned as hung.
const ANSWER_GRACE: Duration = Duration::from_secs(5);

/// Connect with `config` (named `display` in errors), run `sql` read-only, disconnect.
pub(super) async fn query(
    config: &tokio_postgres::Config,
    display: &str,
    sql: &str,
    timeout: Duration,
) -> Result<Rows, SqlError> {
    let mut config = config.clone();
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(timeout);
    }
    let (client, connection) =
        config
            .connect(tokio_postgres::NoTls)
            .await
            .map_err(|e| SqlError::Connect {
                db: display.into(),
                cause: server_message(&e),
            })?;
    // The connection ends when `client` is dropped, including when the item timeout drops
    // this future.
    tokio::spawn(connection);
    let bound = timeout.saturating_mul(2) + ANSWER_GRACE;
    let rows = tokio::time::timeout(bound, read_only(&client, sql, timeout)).await;
    match rows {
        Ok(rows) => rows.map_err(|e| SqlError::Query {
            db: display.into(),
            query: sql.into(),
            cause: server_message(&e),
        }),
        Err(_) => Err(SqlError::Timeout {
            db: display.into(),
            query: sql.into(),
            after: bound,
        }),
    }
}

/// Prepare `sql` (for its column types), run it inside a read-only transaction with the
/// statement timeout, and convert its text rows.
async fn read_only(
    client: &tokio_postgres::Client,
    sql: &str,
    timeout: Duration,
) -> Result<Rows, tokio_postgres::Error> {
    let ms = timeout.as_millis().clamp(1, i32::MAX as u128);
    client
        .batch_execute(&format!(
            "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY; \
             SET statement_timeout = {ms}; BEGIN READ ONLY"
        ))
        .await?;
    let statement = client.prepare(sql).await?;
    let columns = statement.columns();
    let mut rows = Vec::new();
    for message in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(r) = message {
            let row = columns
                .iter()
                .enumerate()
                .map(|(i, c)| cell(c.type_(), r.get(i)))
                .collect();
            rows.push(row);
        }
    }
    // Nothing was written; the rollback only ends the transaction before the disconnect.
    let _ = client.batch_execute("ROLLBACK").await;
    Ok(Rows {
        columns: columns.iter().map(|c| c.name().to_string()).collect(),
        rows,
    })
}

/// One value from PostgreSQL's text form, by its column type (see the module doc).
fn cell(ty: &Type, text: Option<&str>) -> Value {
    let Some(text) = text else {
        return Value::Null;
    };
    let integer = || text.parse::<i64>().ok().map(Value::from);
    let real = || {
        text.parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
    };
    let value = match *ty {
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => integer(),
        Type::FLOAT4 | Type::FLOAT8 => real(),
        Type::NUMERIC => integer().or_else(real),
        Type::BOOL => Some(Value::Bool(text == "t")),
        _ => None,
    };
    value.unwrap_or_else(|| Value::String(text.to_string()))
}

/// The server's own words for a database error (`ERROR: relation "x" does not exist`, with
/// its detail and hint on the same line); otherwise the error and its causes.
fn server_message(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => db.to_string().replace('\n', "; "),
        None => crate::units::error_chain(e),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn text_values_become_what_sqlite_would_give() {
        assert_eq!(cell(&Type::INT8, Some("-42")), json!(-42));
        assert_eq!(cell(&Type::FLOAT8, Some("1.5")), json!(1.5));
        assert_eq!(cell(&Type::FLOAT4, Some("3")), json!(3.0));
        assert_eq!(cell(&Type::NUMERIC, Some("7")), json!(7));
        assert_eq!(cell(&Type::NUMERIC, Some("0.25")), json!(0.25));
        assert_eq!(cell(&Type::NUMERIC, Some("NaN")), json!("NaN"));
        assert_eq!(cell(&Type::FLOAT8, Some("Infinity")), json!("Infinity"));
        assert_eq!(cell(&Type::BOOL, Some("t")), json!(true));
        assert_eq!(cell(&Type::BOOL, Some("f")), json!(false));
        assert_eq!(cell(&Type::VARCHAR, Some("ACTIVE")), json!("ACTIVE"));
        assert_eq!(
            cell(&Type::TIMESTAMPTZ, Some("2026-01-02 03:04:05+00")),
            json!("2026-01-02 03:04:05+00")
        );
        assert_eq!(cell(&Type::TEXT, None), Value::Null);
    }
}
