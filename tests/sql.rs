//! The `sql` probe end to end: the real binary against real SQLite files made here with
//! rusqlite and a real PostgreSQL server started here (tests/common/postgres.rs) — the seeds'
//! `sqlite3 live_state.db "SELECT current_state …"` check as a gate, on either engine.

mod common;

use std::path::Path;

use common::postgres::{PG_PASSWORD, Postgres};
use common::*;

/// An agent's state database: `operational_state` (one row) and `trades` (three rows).
fn state_db(dir: &Path) {
    let conn = rusqlite::Connection::open(dir.join("live_state.db")).unwrap();
    conn.execute_batch(
        "PRAGMA journal_mode = WAL;
         CREATE TABLE operational_state (current_state TEXT, error_reason TEXT, notification_count INTEGER);
         INSERT INTO operational_state VALUES ('ACTIVE', NULL, 1);
         CREATE TABLE trades (id INTEGER PRIMARY KEY, qty REAL);
         INSERT INTO trades (qty) VALUES (1.5), (2), (3);",
    )
    .unwrap();
}

fn sql_item(id: &str, probe: &str) -> String {
    item(
        id,
        "blocker",
        &format!("{{ kind = \"sql\", sqlite = \"live_state.db\", {probe} }}"),
    )
}

fn run(dir: &Path, items: &[String]) -> (i32, serde_json::Value) {
    run_env(dir, items, &[])
}

fn run_env(dir: &Path, items: &[String], env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    write(dir, "c.toml", &format!("{HEAD}{}", items.concat()));
    let out = run_in(dir, &["run", "c.toml", "--out", "out"], env);
    (out.status.code().unwrap(), report_json(&dir.join("out")))
}

#[test]
fn state_row_count_and_numeric_bounds_pass_when_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    state_db(dir.path());
    let (code, r) = run(
        dir.path(),
        &[
            sql_item(
                "state",
                r#"query = "SELECT current_state, error_reason FROM operational_state", equals = "ACTIVE", rows = 1"#,
            ),
            sql_item(
                "notified-once",
                r#"query = "SELECT notification_count FROM operational_state", equals = 1"#,
            ),
            sql_item(
                "trades",
                r#"query = "SELECT count(*), sum(qty) FROM trades", min = 3, max = 3"#,
            ),
            sql_item(
                "no-errors",
                r#"query = "SELECT error_reason FROM operational_state WHERE error_reason IS NOT NULL", empty = true"#,
            ),
        ],
    );
    for id in ["state", "notified-once", "trades", "no-errors"] {
        assert_eq!(status_of(&r, id), "pass", "{id}: {:#}", outcome(&r, id));
    }
    assert_eq!(code, 0);
    let state = outcome(&r, "state");
    assert_eq!(state["measured"]["value"], "ACTIVE");
    assert_eq!(state["tables"][0]["columns"][1], "error_reason");
    assert_eq!(state["tables"][0]["rows"][0][1], "NULL");
}

#[test]
fn a_wrong_value_or_no_rows_fails_and_says_what_was_seen() {
    let dir = tempfile::tempdir().unwrap();
    state_db(dir.path());
    let (code, r) = run(
        dir.path(),
        &[
            sql_item(
                "waiting",
                r#"query = "SELECT current_state FROM operational_state", equals = "WAITING""#,
            ),
            sql_item(
                "missing",
                r#"query = "SELECT current_state FROM operational_state WHERE 0", equals = "ACTIVE""#,
            ),
            sql_item("too-few", r#"query = "SELECT id FROM trades", rows = 4"#),
        ],
    );
    assert_eq!(code, 1);
    for id in ["waiting", "missing", "too-few"] {
        assert_eq!(status_of(&r, id), "fail", "{id}");
    }
    let measured = |id: &str| {
        outcome(&r, id)["checks"][0]["measured"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(measured("waiting"), "\"ACTIVE\"");
    assert_eq!(measured("missing"), "no rows");
    assert_eq!(measured("too-few"), "3");
}

#[test]
fn a_missing_database_a_bad_query_or_a_write_is_an_error_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    state_db(dir.path());
    let (code, r) = run(
        dir.path(),
        &[
            item(
                "nodb",
                "blocker",
                r#"{ kind = "sql", sqlite = "gone.db", query = "SELECT 1", rows = 1 }"#,
            ),
            sql_item(
                "typo",
                r#"query = "SELECT current_stat FROM operational_state", rows = 1"#,
            ),
            sql_item("write", r#"query = "DELETE FROM trades", empty = true"#),
        ],
    );
    assert_eq!(code, 1);
    for id in ["nodb", "typo", "write"] {
        assert_eq!(status_of(&r, id), "error", "{id}: {:#}", outcome(&r, id));
    }
    let summary = |id: &str| outcome(&r, id)["summary"].as_str().unwrap().to_string();
    assert!(
        summary("nodb").contains("gone.db: no such database file"),
        "{}",
        summary("nodb")
    );
    assert!(
        summary("typo").contains("query \"SELECT current_stat"),
        "{}",
        summary("typo")
    );
    assert!(
        summary("typo").contains("live_state.db"),
        "{}",
        summary("typo")
    );
    assert!(
        summary("write").contains("readonly"),
        "{}",
        summary("write")
    );
    let conn = rusqlite::Connection::open(dir.path().join("live_state.db")).unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM trades", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3, "the read-only probe deleted rows");
}

#[test]
fn an_item_without_expectations_is_rejected_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    for (probe, wanted) in [
        (
            r#"query = "SELECT 1""#,
            "expected at least one of: rows, empty, equals, min, max",
        ),
        (
            r#"query = "SELECT 1", rows = 1, empty = true"#,
            "empty and rows exclude each other",
        ),
        (
            r#"query = "SELECT 1", equals = [1]"#,
            "expected a string, number or boolean",
        ),
    ] {
        write(
            dir.path(),
            "c.toml",
            &format!("{HEAD}{}", sql_item("x", probe)),
        );
        let out = run_in(dir.path(), &["check", "c.toml"], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("c.toml:") && err.contains(wanted), "{err}");
    }
}

/// The same agent state in PostgreSQL: `operational_state` (one row) and `trades` (three
/// rows, `numeric` quantities), in database `db`.
fn pg_state(pg: &Postgres, db: &str) {
    pg.create_db(
        db,
        "CREATE TABLE operational_state (current_state text, error_reason varchar(200), notification_count int4);
         INSERT INTO operational_state VALUES ('ACTIVE', NULL, 1);
         CREATE TABLE trades (id serial PRIMARY KEY, qty numeric(12, 4));
         INSERT INTO trades (qty) VALUES (1.5), (2), (3);",
    );
}

/// An `sql` item against `url` (written as is into the checklist).
fn pg_item(id: &str, url: &str, probe: &str) -> String {
    item(
        id,
        "blocker",
        &format!("{{ kind = \"sql\", url = \"{url}\", {probe} }}"),
    )
}

/// Every file of the report folder as one text, to search for leaked secrets.
fn everything_written(dir: &Path) -> String {
    walk(dir)
        .iter()
        .map(|p| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned())
        .collect()
}

#[test]
fn postgres_rows_values_and_bounds_pass_as_with_sqlite() {
    let pg = Postgres::start();
    pg_state(&pg, "state");
    let url = pg.url("${PGPASSWORD}", "state");
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = run_env(
        dir.path(),
        &[
            pg_item(
                "state",
                &url,
                r#"query = "SELECT current_state, error_reason FROM operational_state", equals = "ACTIVE", rows = 1"#,
            ),
            pg_item(
                "notified-once",
                &url,
                r#"query = "SELECT notification_count FROM operational_state", equals = 1"#,
            ),
            pg_item(
                "trades",
                &url,
                r#"query = "SELECT count(*), sum(qty) FROM trades", min = 3, max = 3"#,
            ),
            pg_item(
                "volume",
                &url,
                r#"query = "SELECT sum(qty) FROM trades", equals = 6.5"#,
            ),
            pg_item(
                "no-errors",
                &url,
                r#"query = "SELECT error_reason FROM operational_state WHERE error_reason IS NOT NULL", empty = true"#,
            ),
            pg_item(
                "types",
                &url,
                r#"query = "SELECT true AS ok, 0.25::numeric, 1.5::float8, 2::int2, TIMESTAMP '2026-01-02 03:04:05', NULL::text", equals = true"#,
            ),
        ],
        &[("PGPASSWORD", PG_PASSWORD)],
    );
    for id in [
        "state",
        "notified-once",
        "trades",
        "volume",
        "no-errors",
        "types",
    ] {
        assert_eq!(status_of(&r, id), "pass", "{id}: {:#}", outcome(&r, id));
    }
    assert_eq!(code, 0);
    let state = outcome(&r, "state");
    assert_eq!(state["measured"]["value"], "ACTIVE");
    assert_eq!(state["measured"]["rows"], 1);
    assert_eq!(state["tables"][0]["columns"][1], "error_reason");
    assert_eq!(state["tables"][0]["rows"][0][1], "NULL");
    assert_eq!(outcome(&r, "volume")["measured"]["value"], 6.5);
    let types = outcome(&r, "types");
    assert_eq!(types["measured"]["value"], true);
    assert_eq!(
        types["tables"][0]["rows"][0],
        serde_json::json!(["true", "0.25", "1.5", "2", "2026-01-02 03:04:05", "NULL"])
    );
    assert!(
        !everything_written(&dir.path().join("out")).contains(PG_PASSWORD),
        "the password leaked into the report"
    );
}

#[test]
fn postgres_wrong_value_or_no_rows_fails_naming_the_query_and_database() {
    let pg = Postgres::start();
    pg_state(&pg, "state");
    let url = pg.url("${PGPASSWORD}", "state");
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = run_env(
        dir.path(),
        &[
            pg_item(
                "waiting",
                &url,
                r#"query = "SELECT current_state FROM operational_state", equals = "WAITING""#,
            ),
            pg_item(
                "missing",
                &url,
                r#"query = "SELECT current_state FROM operational_state WHERE false", equals = "ACTIVE""#,
            ),
            pg_item(
                "too-few",
                &url,
                r#"query = "SELECT id FROM trades", rows = 4"#,
            ),
        ],
        &[("PGPASSWORD", PG_PASSWORD)],
    );
    assert_eq!(code, 1);
    for id in ["waiting", "missing", "too-few"] {
        assert_eq!(status_of(&r, id), "fail", "{id}: {:#}", outcome(&r, id));
    }
    let measured = |id: &str| {
        outcome(&r, id)["checks"][0]["measured"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(measured("waiting"), "\"ACTIVE\"");
    assert_eq!(measured("missing"), "no rows");
    assert_eq!(measured("too-few"), "3");
    let waiting = outcome(&r, "waiting");
    let summary = waiting["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("from {url}")), "{summary}");
    assert_eq!(
        waiting["tables"][0]["title"],
        "Result of `SELECT current_state FROM operational_state`"
    );
}

#[test]
fn postgres_wrong_password_bad_query_write_or_slow_query_is_an_error_and_changes_nothing() {
    let pg = Postgres::start();
    pg_state(&pg, "state");
    let url = pg.url("${PGPASSWORD}", "state");
    let wrong = "wrong-9d1e-password";
    let dir = tempfile::tempdir().unwrap();
    let (code, r) = run_env(
        dir.path(),
        &[
            pg_item(
                "login",
                &pg.url("${PG_WRONG_PASSWORD}", "state"),
                r#"query = "SELECT 1", rows = 1"#,
            ),
            pg_item(
                "typo",
                &url,
                r#"query = "SELECT current_stat FROM operational_state", rows = 1"#,
            ),
            pg_item(
                "write",
                &url,
                r#"query = "DELETE FROM trades", empty = true"#,
            ),
            pg_item(
                "smuggled-write",
                &url,
                r#"query = "COMMIT; DELETE FROM trades", empty = true"#,
            ),
            // The URL's own connect timeout keeps the short statement timeout from also
            // bounding the login on a busy machine.
            pg_item(
                "slow",
                &format!("{url}?connect_timeout=60"),
                r#"query = "SELECT pg_sleep(30)", rows = 1, timeout = "300ms""#,
            ),
        ],
        &[("PGPASSWORD", PG_PASSWORD), ("PG_WRONG_PASSWORD", wrong)],
    );
    assert_eq!(code, 1);
    for id in ["login", "typo", "write", "smuggled-write", "slow"] {
        assert_eq!(status_of(&r, id), "error", "{id}: {:#}", outcome(&r, id));
    }
    let summary = |id: &str| outcome(&r, id)["summary"].as_str().unwrap().to_string();
    let login = summary("login");
    assert!(
        login.contains("postgres://app:${PG_WRONG_PASSWORD}@127.0.0.1:")
            && login.contains("password authentication failed for user \"app\""),
        "{login}"
    );
    let typo = summary("typo");
    assert!(
        typo.starts_with(&format!("{url}: query \"SELECT current_stat")),
        "{typo}"
    );
    assert!(
        typo.contains("ERROR: column \"current_stat\" does not exist"),
        "{typo}"
    );
    let write = summary("write");
    assert!(
        write.contains("cannot execute DELETE in a read-only transaction"),
        "{write}"
    );
    let smuggled = summary("smuggled-write");
    assert!(
        smuggled.contains("cannot insert multiple commands into a prepared statement"),
        "{smuggled}"
    );
    let slow = summary("slow");
    assert!(
        slow.contains("canceling statement due to statement timeout"),
        "{slow}"
    );
    let written = everything_written(&dir.path().join("out"));
    assert!(!written.contains(wrong), "the wrong password leaked");
    assert!(!written.contains(PG_PASSWORD), "the password leaked");
    assert_eq!(
        pg.scalar("state", "SELECT count(*) FROM trades"),
        "3",
        "the read-only probe deleted rows"
    );
}

#[test]
fn a_database_missing_doubled_unset_or_mismatched_is_rejected_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = "postgres://app:${PGPASSWORD}@127.0.0.1:5432/state";
    for (probe, wanted) in [
        (
            r#"kind = "sql", url = "postgres://app:${PRODREADY_SQL_TEST_UNSET}@127.0.0.1:5432/db", query = "SELECT 1", rows = 1"#.to_string(),
            "c.toml:11:25: item \"x\": probe.url: environment variable PRODREADY_SQL_TEST_UNSET is not set",
        ),
        (
            r#"kind = "sql", query = "SELECT 1", rows = 1"#.to_string(),
            "expected a database: sqlite = \"<file>\" or url = \"postgres://…\"",
        ),
        (
            format!(r#"kind = "sql", sqlite = "s.db", url = "{url}", query = "SELECT 1", rows = 1"#),
            "item \"x\": probe.url: sqlite and url exclude each other",
        ),
        (
            r#"kind = "sql", url = "mysql://app@127.0.0.1/db", query = "SELECT 1", rows = 1"#.to_string(),
            "expected a postgres:// or postgresql:// URL",
        ),
        (
            format!(r#"kind = "sql", url = "{url}?sslmode=require", query = "SELECT 1", rows = 1"#),
            "sslmode=require: TLS to PostgreSQL is not supported yet",
        ),
        (
            format!(r#"kind = "sql", url = "{url}", query = "SELECT 1", rows = 1, busy_timeout = "1s""#),
            "item \"x\": probe.busy_timeout: busy_timeout is for SQLite",
        ),
        (
            r#"kind = "sql", sqlite = "s.db", query = "SELECT 1", rows = 1, timeout = "1s""#.to_string(),
            "item \"x\": probe.timeout: timeout is for PostgreSQL",
        ),
    ] {
        write(
            dir.path(),
            "c.toml",
            &format!("{HEAD}{}", item("x", "blocker", &format!("{{ {probe} }}"))),
        );
        let out = run_in(
            dir.path(),
            &["check", "c.toml"],
            &[("PGPASSWORD", PG_PASSWORD)],
        );
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{probe}: {err}");
        assert!(err.contains("c.toml:11:") && err.contains(wanted), "{probe}: {err}");
        assert!(!err.contains(PG_PASSWORD), "{err}");
    }
}
