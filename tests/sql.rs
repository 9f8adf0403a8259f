//! The `sql` probe end to end: the real binary against real SQLite files made here with
//! rusqlite — the seeds' `sqlite3 live_state.db "SELECT current_state …"` check as a gate.

mod common;

use std::path::Path;

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
    write(dir, "c.toml", &format!("{HEAD}{}", items.concat()));
    let out = run_in(dir, &["run", "c.toml", "--out", "out"], &[]);
    (out.status.code().unwrap(), report_json(&dir.join("out")))
}

fn outcome<'a>(r: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    &r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap()["outcome"]
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
