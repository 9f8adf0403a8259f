//! Every checklist error a user can meet, as they read it: one insta snapshot of
//! `prodready check`'s message for each kind of bad input (a reworded message shows up in review,
//! not in a user's CI log). Each case is a whole checklist; the message names file:line:col.

mod common;

use common::*;

/// An item table around `probe` (a TOML inline table).
fn one(probe: &str) -> String {
    format!("{HEAD}{}", item("x", "major", probe))
}

/// `(case, checklist text)`.
fn cases() -> Vec<(&'static str, String)> {
    let svc = "[[service]]\nname = \"broker\"\ncommand = [\"prodready\", \"paper-broker\"]\n\n";
    vec![
        ("empty name", "[checklist]\nname = \" \"\n".into()),
        ("no items", HEAD.to_string()),
        (
            "duplicate id",
            format!(
                "{HEAD}{}{}",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#),
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        (
            "bad id",
            format!(
                "{HEAD}{}",
                item("a b", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        ("unknown kind", one(r#"{ kind = "ping", host = "x" }"#)),
        (
            "bare number duration",
            one(r#"{ kind = "command", command = ["true"], timeout = "10" }"#),
        ),
        (
            "unset variable",
            one(r#"{ kind = "http", url = "http://127.0.0.1:1/${PRODREADY_ERRORS_TEST_UNSET}" }"#),
        ),
        (
            "http: equals without pointer",
            one(r#"{ kind = "http", url = "http://127.0.0.1:1/", json_equals = "ok" }"#),
        ),
        (
            "http: equals and one_of",
            one(
                r#"{ kind = "http", url = "http://127.0.0.1:1/", json_pointer = "/s", json_equals = "ok", json_one_of = ["ok"] }"#,
            ),
        ),
        (
            "http: status out of range",
            one(r#"{ kind = "http", url = "http://127.0.0.1:1/", status = 700 }"#),
        ),
        (
            "latency: duration and count",
            one(
                r#"{ kind = "latency", url = "http://127.0.0.1:1/", rate = 10, duration = "1s", count = 10 }"#,
            ),
        ),
        (
            "latency: too few samples",
            one(
                r#"{ kind = "latency", url = "http://127.0.0.1:1/", rate = 10, duration = "1s", p99 = "10ms" }"#,
            ),
        ),
        (
            "memory: no target",
            one(r#"{ kind = "memory", max_growth = "1MiB/h" }"#),
        ),
        (
            "memory: unknown service",
            one(
                r#"{ kind = "memory", service = "nope", max_growth = "1MiB/h", duration = "10m" }"#,
            ),
        ),
        (
            "memory: during itself",
            one(r#"{ kind = "memory", pid = 1, during = "x", max_growth = "1MiB/h" }"#),
        ),
        (
            "memory: interval below 1s",
            one(r#"{ kind = "memory", pid = 1, interval = "500ms", max_growth = "1MiB/h" }"#),
        ),
        (
            "sql: no expectation",
            one(r#"{ kind = "sql", sqlite = "s.db", query = "SELECT 1" }"#),
        ),
        (
            "ready tcp without port",
            format!(
                "{HEAD}[[service]]\nname = \"db\"\ncommand = [\"true\"]\nready = {{ tcp = \"localhost\" }}\n\n{}",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        (
            "waiver for unknown item",
            format!(
                "{}[[waiver]]\nitem = \"nope\"\nreason = \"r\"\napproved_by = \"lead\"\nexpires = 2027-01-31\n",
                one(r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        (
            "waiver expiry with time",
            format!(
                "{}[[waiver]]\nitem = \"x\"\nreason = \"r\"\napproved_by = \"lead\"\nexpires = 2027-01-31T10:00:00Z\n",
                one(r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        (
            "duplicate service",
            format!(
                "{HEAD}{svc}{svc}{}",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
    ]
}

#[test]
fn every_kind_of_bad_checklist_is_rejected_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = String::new();
    for (case, text) in cases() {
        write(dir.path(), "c.toml", &text);
        let out = run_in(dir.path(), &["check", "c.toml"], &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{case}: {err}");
        assert!(err.starts_with("error: c.toml:"), "{case}: {err}");
        all.push_str(&format!("## {case}\n{err}\n"));
    }
    insta::assert_snapshot!("checklist_errors", all);
}
