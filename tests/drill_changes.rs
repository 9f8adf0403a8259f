//! Deployment-change drill steps end to end, run by the real binary against the real paper
//! broker and a real Prometheus: the `http` action with values saved for later steps (and
//! redacted everywhere), `expect = "http"` with `reachable = false` and `body_not_contains`,
//! `undo` run by the restore (a failed one fails the item), and `expect = "prometheus"`.

use std::path::Path;

mod common;

use common::prometheus::{Prometheus, prom_bin};
use common::{HEAD, describe, free_port, item, report_json, run_in, status_of, walk, write};

/// A paper broker on `port` as a service, and `items` after it.
fn with_broker(port: u16, items: &str) -> String {
    format!(
        "{HEAD}[[service]]\nname = \"broker\"\ncommand = [\"prodready\", \"paper-broker\", \"--listen\", \"127.0.0.1:{port}\"]\nready = {{ http = \"http://127.0.0.1:{port}/healthz\", timeout = \"10s\" }}\n\n{items}"
    )
}

/// Run `c.toml` in `dir`; the report and the output for messages.
fn run(dir: &Path, text: &str) -> (serde_json::Value, String) {
    write(dir, "c.toml", text);
    let out = run_in(dir, &["run", "c.toml", "--out", "out"], &[]);
    let shown = describe(&out);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{shown}");
    (report_json(&dir.join("out")), shown)
}

/// `(name, result, detail)` of each step of item `id`.
fn steps(r: &serde_json::Value, id: &str) -> Vec<(String, String, String)> {
    common::outcome(r, id)["measured"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let text = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (text("name"), text("result"), text("detail"))
        })
        .collect()
}

/// `(what, ok, detail)` of what the restore of item `id` did.
fn restored(r: &serde_json::Value, id: &str) -> Vec<(String, bool, String)> {
    common::outcome(r, id)["measured"]["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["what"].as_str().unwrap().to_string(),
                s["ok"].as_bool().unwrap(),
                s["detail"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

#[test]
fn an_http_action_saves_a_value_later_steps_use_and_no_output_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/api/v1/orders");
    let drill = format!(
        r#"{{ kind = "drill", step = [
        {{ name = "place a resting order", http = "{base}", method = "POST", headers = {{ "Content-Type" = "application/json" }}, body = '{{"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit", "limit_price": 1.0, "client_order_id": "c-1"}}', save = {{ order = "/order_id" }} }},
        {{ name = "it rests", expect = "http", url = "{base}/${{saved.order}}", json_pointer = "/status", json_equals = "accepted", within = "5s" }},
        {{ name = "cancel it", http = "{base}/${{saved.order}}", method = "DELETE" }},
        {{ name = "it is cancelled", expect = "http", url = "{base}/${{saved.order}}", json_pointer = "/status", json_equals = "cancelled", within = "5s" }},
    ] }}"#
    );
    let (r, shown) = run(
        dir.path(),
        &with_broker(port, &item("orders", "major", &drill)),
    );
    assert_eq!(
        status_of(&r, "orders"),
        "pass",
        "{:?}\n{shown}",
        steps(&r, "orders")
    );
    let s = steps(&r, "orders");
    assert!(s[0].2.contains("saved ${saved.order}"), "{s:?}");
    assert!(s[2].2.contains("/api/v1/orders/${saved.order}"), "{s:?}");
    // The broker's order ids start with "ord-"; none is shown anywhere in the report folder.
    for f in walk(&dir.path().join("out")) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        assert!(
            !text.contains("ord-"),
            "{} shows a saved value",
            f.display()
        );
    }
}

#[test]
fn a_reference_to_a_value_no_earlier_step_saves_is_refused_at_its_key() {
    let dir = tempfile::tempdir().unwrap();
    let drill = r#"{ kind = "drill", step = [
        { http = "http://127.0.0.1:9/${saved.token}" },
    ] }"#;
    write(
        dir.path(),
        "c.toml",
        &format!("{HEAD}{}", item("d", "major", drill)),
    );
    let out = run_in(dir.path(), &["check", "c.toml"], &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        err.contains("probe.step[0].http: ${saved.token}: nothing is saved as \"token\""),
        "{err}"
    );
}

#[test]
fn reachable_false_holds_once_the_service_is_down_and_not_while_it_answers() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let health = format!("http://127.0.0.1:{port}/healthz");
    let drill = format!(
        r#"{{ kind = "drill", step = [
        {{ name = "answers, not unhealthy", expect = "http", url = "{health}", body_not_contains = "unhealthy", within = "5s" }},
        {{ name = "unreachable while up", expect = "http", url = "{health}", reachable = false, within = "1s" }},
        {{ stop = "broker" }},
        {{ name = "unreachable once stopped", expect = "http", url = "{health}", reachable = false, within = "2s" }},
    ] }}"#
    );
    let (r, shown) = run(
        dir.path(),
        &with_broker(port, &item("down", "major", &drill)),
    );
    assert_eq!(status_of(&r, "down"), "fail", "{shown}");
    let s = steps(&r, "down");
    let results: Vec<&str> = s.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(results, ["held", "FAILED", "done", "held"], "{s:?}");
    assert!(s[1].2.contains("answered 200, expected no answer"), "{s:?}");
    assert!(s[3].2.contains("no answer"), "{s:?}");
}

/// A drill whose `command` has `undo`, and an expectation that holds.
fn undo_drill(undo: &str) -> String {
    format!(
        r#"{{ kind = "drill", step = [
        {{ name = "deploy", command = ["sh", "-c", "echo bad > release"], undo = {undo} }},
        {{ name = "still running", expect = "process", service = "app", within = "5s" }},
    ] }}"#
    )
}

fn undo_checklist(undo: &str) -> String {
    format!(
        "{HEAD}[[service]]\nname = \"app\"\ncommand = [\"sleep\", \"60\"]\n\n{}",
        item("rollback", "major", &undo_drill(undo))
    )
}

#[test]
fn an_undo_runs_at_restore_time_and_is_listed_with_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    let (r, shown) = run(
        dir.path(),
        &undo_checklist(r#"["sh", "-c", "echo good > release"]"#),
    );
    assert_eq!(status_of(&r, "rollback"), "pass", "{shown}");
    let back = std::fs::read_to_string(dir.path().join("release")).unwrap();
    assert_eq!(back.trim(), "good");
    let done = restored(&r, "rollback");
    assert_eq!(done.len(), 1, "{done:?}");
    assert!(done[0].0.starts_with("undo of \"deploy\""), "{done:?}");
    assert!(done[0].1, "{done:?}");
}

#[test]
fn a_failed_undo_fails_the_item_even_when_every_step_held() {
    let dir = tempfile::tempdir().unwrap();
    let (r, shown) = run(dir.path(), &undo_checklist(r#"["sh", "-c", "exit 3"]"#));
    assert_eq!(status_of(&r, "rollback"), "fail", "{shown}");
    let s = steps(&r, "rollback");
    assert!(s.iter().all(|x| x.1 != "FAILED"), "{s:?}");
    let done = restored(&r, "rollback");
    assert!(
        !done[0].1 && done[0].2.contains("exited with 3"),
        "{done:?}"
    );
}

#[test]
fn prometheus_steps_poll_a_query_value_and_an_alert_state() {
    prom_bin("prometheus");
    let dir = tempfile::tempdir().unwrap();
    let rules = write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: drill\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n      - alert: NeverFiring\n        expr: vector(1) > 2\n",
    );
    let prom = Prometheus::start(&[], &[rules.as_path()]);
    let url = format!("http://127.0.0.1:{}", prom.port);
    let drill = format!(
        r#"{{ kind = "drill", step = [
        {{ name = "value in bounds", expect = "prometheus", url = "{url}", query = "vector(3)", min = 3, max = 3, within = "10s" }},
        {{ name = "fires", expect = "prometheus", url = "{url}", alert = "AlwaysFiring", within = "20s" }},
        {{ name = "quiet", expect = "prometheus", url = "{url}", alert = "NeverFiring", firing = false, within = "20s" }},
        {{ name = "value too low", expect = "prometheus", url = "{url}", query = "vector(1)", min = 2, within = "1s" }},
        {{ name = "no such alert", expect = "prometheus", url = "{url}", alert = "Nope", firing = false, within = "1s" }},
    ] }}"#
    );
    let (r, shown) = run(
        dir.path(),
        &format!("{HEAD}{}", item("prom", "major", &drill)),
    );
    let s = steps(&r, "prom");
    let results: Vec<&str> = s.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(
        results,
        ["held", "held", "held", "FAILED", "FAILED"],
        "{s:?}\n{shown}"
    );
    assert!(s[1].2.contains("alert AlwaysFiring: firing"), "{s:?}");
    assert!(s[3].2.contains("= 1"), "{s:?}");
    assert!(s[4].2.contains("no alerting rule named \"Nope\""), "{s:?}");
}

#[test]
fn orders_are_read_from_any_venue_by_url_and_json_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}/api/v1");
    let venue = format!(
        r#"orders_url = "{base}/orders?status=open&account=x", orders_pointer = "/orders", positions_url = "{base}/positions?account=x", positions_pointer = "/positions""#
    );
    let drill = format!(
        r#"{{ kind = "drill", step = [
        {{ name = "rest an order", http = "{base}/orders", method = "POST", headers = {{ "Content-Type" = "application/json" }}, body = '{{"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit", "limit_price": 1.0, "account": "x"}}' }},
        {{ name = "one open, flat", expect = "orders", {venue}, open = 1, flat = true, within = "5s" }},
        {{ name = "none open", expect = "orders", {venue}, open = 0, within = "1s" }},
    ] }}"#
    );
    let (r, shown) = run(
        dir.path(),
        &with_broker(port, &item("venue", "major", &drill)),
    );
    let s = steps(&r, "venue");
    let results: Vec<&str> = s.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(results, ["done", "held", "FAILED"], "{s:?}\n{shown}");
    assert!(s[1].2.contains("1 open order(s), positions flat"), "{s:?}");
    assert!(s[2].2.contains("1 open order(s)"), "{s:?}");
}

#[test]
fn a_marker_written_by_a_command_is_found_in_files_and_a_command_output_and_older_lines_do_not_count()
 {
    let dir = tempfile::tempdir().unwrap();
    // A line from an earlier drill, with a marker of its own: it must not count.
    write(
        dir.path(),
        "logs/app.log",
        "2026-01-01 prodready-marker-0123456789abcdef old attempt\n",
    );
    let drill = r#"[[item]]
id = "marker"
section = "Drills"
title = "Marker round trip"
severity = "major"
[item.probe]
kind = "drill"

[[item.probe.step]]
name = "write"
command = ["sh", "-c", "echo \"app: request id=$PRODREADY_DRILL_MARKER\" >> logs/app.log"]

[[item.probe.step]]
name = "in the files"
expect = "log"
files = ["logs/*.log"]
marker = true
count = 1
within = "5s"

[[item.probe.step]]
name = "in the aggregator's output"
expect = "log"
command = ["cat", "logs/app.log"]
marker = true
matches = "^app: request"
count = 1
within = "5s"
"#;
    let (r, shown) = run(dir.path(), &format!("{HEAD}{drill}"));
    assert_eq!(status_of(&r, "marker"), "pass", "{shown}");
    let s = steps(&r, "marker");
    let log = std::fs::read_to_string(dir.path().join("logs/app.log")).unwrap();
    let written = log
        .lines()
        .nth(1)
        .unwrap()
        .trim_start_matches("app: request id=");
    assert!(written.starts_with("prodready-marker-"), "{log}");
    for step in ["in the files", "in the aggregator's output"] {
        let d = &s.iter().find(|x| x.0 == step).unwrap().2;
        assert!(d.starts_with("1 line(s) with the marker "), "{d}");
        assert!(d.contains(written), "{step}: {d} (written: {written})");
    }
    // Run again: the new attempt's marker is not the first's, so it finds its own line only.
    let (r, shown) = run(dir.path(), &format!("{HEAD}{drill}"));
    assert_eq!(status_of(&r, "marker"), "pass", "{shown}");
    let log = std::fs::read_to_string(dir.path().join("logs/app.log")).unwrap();
    let markers: Vec<&str> = log
        .lines()
        .filter_map(|l| l.strip_prefix("app: request id="))
        .collect();
    assert_eq!(markers.len(), 2, "{log}");
    assert_ne!(markers[0], markers[1]);
}
