//! Every checklist error a user can meet, as they read it: one insta snapshot of
//! `prodready check`'s message for each kind of bad input (a reworded message shows up in review,
//! not in a user's CI log). Each case is a whole checklist; the message names file:line:col.

mod common;

use common::*;

/// An item table around `probe` (a TOML inline table).
fn one(probe: &str) -> String {
    format!("{HEAD}{}", item("x", "major", probe))
}

/// A latency item (or `probe`) with the regression table `regression`.
fn gated(regression: &str, probe: Option<&str>) -> String {
    let probe = probe
        .unwrap_or(r#"{ kind = "latency", url = "http://127.0.0.1:1/", rate = 10, count = 100 }"#);
    one(probe).replace("probe = ", &format!("regression = {regression}\nprobe = "))
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
            "latency: a FIX key over HTTP",
            one(
                r#"{ kind = "latency", url = "http://127.0.0.1:1/", rate = 10, count = 100, sender_comp_id = "A" }"#,
            ),
        ),
        (
            "latency: an HTTP key over FIX",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, body = "{}" }"#,
            ),
        ),
        (
            "latency: FIX URL without a port",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1", rate = 10, count = 100 }"#,
            ),
        ),
        (
            "latency: FIX without CompIDs",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, order = "11={{seq}}" }"#,
            ),
        ),
        (
            "latency: FIX version",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, fix_version = "5.0", sender_comp_id = "A", target_comp_id = "B", order = "11={{seq}}" }"#,
            ),
        ),
        (
            "latency: FIX order without a placeholder in ClOrdID",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, sender_comp_id = "A", target_comp_id = "B", order = "11=one|55=NIFTY" }"#,
            ),
        ),
        (
            "latency: FIX order with a header tag",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, sender_comp_id = "A", target_comp_id = "B", order = "11={{seq}}|49=ME" }"#,
            ),
        ),
        (
            "latency: FIX order not tag=value",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, sender_comp_id = "A", target_comp_id = "B", order = "11={{seq}}|symbol=NIFTY" }"#,
            ),
        ),
        (
            "latency: FIX heartbeat below a second",
            one(
                r#"{ kind = "latency", transport = "fix", url = "fix+tcp://127.0.0.1:1", rate = 10, count = 100, sender_comp_id = "A", target_comp_id = "B", order = "11={{seq}}", heartbeat = "500ms" }"#,
            ),
        ),
        (
            "latency: FIX with an HTTP URL",
            one(
                r#"{ kind = "latency", transport = "fix", url = "http://127.0.0.1:1/", rate = 10, count = 100 }"#,
            ),
        ),
        (
            "latency: websocket url over http",
            one(r#"{ kind = "latency", url = "ws://127.0.0.1:1/ws", rate = 10, count = 100 }"#),
        ),
        (
            "latency: websocket without match",
            one(
                r#"{ kind = "latency", transport = "websocket", url = "ws://127.0.0.1:1/ws", body = '{"id":"{{seq}}"}', rate = 10, count = 100 }"#,
            ),
        ),
        (
            "latency: websocket with an http key",
            one(
                r#"{ kind = "latency", transport = "websocket", url = "ws://127.0.0.1:1/ws", method = "POST", body = '{"id":"{{seq}}"}', match = "/id", rate = 10, count = 100 }"#,
            ),
        ),
        (
            "latency: websocket message without its id",
            one(
                r#"{ kind = "latency", transport = "websocket", url = "ws://127.0.0.1:1/ws", body = '{"symbol":"NIFTY"}', match = "/client_order_id", rate = 10, count = 100 }"#,
            ),
        ),
        (
            "latency: match over http",
            one(
                r#"{ kind = "latency", url = "http://127.0.0.1:1/", match = "/id", rate = 10, count = 100 }"#,
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
            "item during an unknown item",
            format!(
                "{HEAD}{}\nduring = \"nope\"\n",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#).trim_end()
            ),
        ),
        (
            "during on the item and in the memory probe",
            format!(
                "{HEAD}{}{}\nduring = \"a\"\n",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#),
                item(
                    "m",
                    "major",
                    r#"{ kind = "memory", pid = 1, during = "a", max_growth = "1MiB/h" }"#
                )
                .trim_end()
            ),
        ),
        (
            "drill: unknown service",
            one(r#"{ kind = "drill", step = [{ stop = "nope" }] }"#),
        ),
        (
            "drill: within without a unit",
            one(
                r#"{ kind = "drill", step = [{ expect = "http", url = "http://127.0.0.1:1/", within = "10" }] }"#,
            ),
        ),
        (
            "drill: expectation on a sink that does not exist",
            one(
                r#"{ kind = "drill", step = [{ expect = "notifications", sink = "telegram", count = 1, within = "5s" }] }"#,
            ),
        ),
        (
            "drill: equals_saved before its save",
            one(
                r#"{ kind = "drill", step = [{ expect = "sql", sqlite = "s.db", query = "SELECT 1", equals_saved = "before", within = "1s" }, { expect = "sql", sqlite = "s.db", query = "SELECT 1", save = "before", within = "1s" }] }"#,
            ),
        ),
        (
            "drill: a key that does not apply",
            one(r#"{ kind = "drill", step = [{ wait = "1s", code = 0 }] }"#),
        ),
        (
            "drill: two actions in one step",
            one(r#"{ kind = "drill", step = [{ wait = "1s", expect = "exit" }] }"#),
        ),
        (
            "drill: a key that does not apply to an http action",
            one(r#"{ kind = "drill", step = [{ http = "http://127.0.0.1:1/", within = "1s" }] }"#),
        ),
        (
            "drill: reachable = false with a key that judges an answer",
            one(
                r#"{ kind = "drill", step = [{ expect = "http", url = "http://127.0.0.1:1/", reachable = false, status = 503, within = "1s" }] }"#,
            ),
        ),
        (
            "drill: a log file read without the marker",
            one(
                r#"{ kind = "drill", step = [{ expect = "log", files = ["logs/*.log"], matches = "ERROR", within = "5s" }] }"#,
            ),
        ),
        (
            "drill: a log expectation with two sources",
            one(
                r#"{ kind = "drill", step = [{ expect = "log", service = "x", unit = "agent.service", marker = true, within = "5s" }] }"#,
            ),
        ),
        (
            "drill: a log expectation that counts nothing",
            one(
                r#"{ kind = "drill", step = [{ expect = "log", unit = "agent.service", within = "5s" }] }"#,
            ),
        ),
        (
            "sink variable without its sink",
            format!(
                "{HEAD}[[service]]\nname = \"agent\"\ncommand = [\"agent\", \"--notify\", \"${{SINK_OPS_URL}}\"]\n\n{}",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
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
            "sql: no database",
            one(r#"{ kind = "sql", query = "SELECT 1", rows = 1 }"#),
        ),
        (
            "sql: sqlite and url",
            one(
                r#"{ kind = "sql", sqlite = "s.db", url = "postgres://app@127.0.0.1/db", query = "SELECT 1", rows = 1 }"#,
            ),
        ),
        (
            "sql: postgres TLS",
            one(
                r#"{ kind = "sql", url = "postgres://app:pw@127.0.0.1/db?sslmode=require", query = "SELECT 1", rows = 1 }"#,
            ),
        ),
        (
            "prometheus: no threshold",
            one(r#"{ kind = "prometheus", url = "http://127.0.0.1:9090", query = "up" }"#),
        ),
        (
            "prometheus: query and alerts",
            one(
                r#"{ kind = "prometheus", url = "http://127.0.0.1:9090", query = "up", min = 1, alerts = ["A"] }"#,
            ),
        ),
        (
            "prometheus: aggregate without window",
            one(
                r#"{ kind = "prometheus", url = "http://127.0.0.1:9090", query = "up", aggregate = "avg", min = 1 }"#,
            ),
        ),
        (
            "prometheus: unknown empty rule",
            one(
                r#"{ kind = "prometheus", url = "http://127.0.0.1:9090", query = "up", min = 1, empty = "ignore" }"#,
            ),
        ),
        (
            "uptime: prometheus without series",
            one(r#"{ kind = "uptime", source = "prometheus", url = "http://127.0.0.1:9090" }"#),
        ),
        (
            "uptime: prometheus with min_coverage",
            one(
                r#"{ kind = "uptime", source = "prometheus", url = "http://127.0.0.1:9090", series = "up", min_coverage = 99 }"#,
            ),
        ),
        (
            "uptime: store without state",
            one(r#"{ kind = "uptime", monitor = "web" }"#),
        ),
        (
            "monitor: a check key of the wrong type",
            format!(
                "{HEAD}[[monitor]]\nname = \"web\"\ninterval = \"1s\"\n[monitor.check]\nkind = \"http\"\nurl = \"http://127.0.0.1:1/\"\nstatus = \"ok\"\n\n{}",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        (
            "monitor: unknown check kind",
            format!(
                "{HEAD}[[monitor]]\nname = \"web\"\ncheck = {{ kind = \"ping\", address = \"127.0.0.1:1\" }}\n\n{}",
                item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
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
        // The three a new user met: each error is at the offending key's own line, names the
        // key and the item's id, and says how to write a value that lacks its unit.
        (
            "a duration without unit or quotes, in a probe table",
            format!(
                "{HEAD}{}[[item]]\nid = \"order-latency\"\nsection = \"Performance\"\ntitle = \"Latency\"\nseverity = \"blocker\"\n\n[item.probe]\nkind = \"latency\"\nurl = \"http://127.0.0.1:1/\"\nrate = 10\np99 = \"50ms\"\nduration = 20\n",
                item("health", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
            ),
        ),
        (
            "an item named by its id, not its index",
            format!(
                "{HEAD}{}{}",
                item("health", "major", r#"{ kind = "env", vars = ["PATH"] }"#),
                item("disk", "major", r#"{ kind = "host", min_disk_free = 50 }"#)
            ),
        ),
        (
            "an unknown key in a drill step, at the step's own line",
            format!(
                "{HEAD}{svc}[[item]]\nid = \"broker-restart\"\nsection = \"Resilience\"\ntitle = \"Broker restart\"\nseverity = \"major\"\n\n[item.probe]\nkind = \"drill\"\n\n[[item.probe.step]]\nrestart = \"broker\"\n\n[[item.probe.step]]\nexpect = \"http\"\nurl = \"http://127.0.0.1:1/\"\nwithin = \"5s\"\nwithinn = \"10s\"\n"
            ),
        ),
        (
            "log: two sources",
            one(r#"{ kind = "log", files = ["a.log"], unit = "agent.service", secrets = true }"#),
        ),
        (
            "log: a pattern without a bound",
            one(r#"{ kind = "log", files = ["a.log"], pattern = "ERROR" }"#),
        ),
        (
            "log: since on a command's lines without timestamp",
            one(
                r#"{ kind = "log", command = ["kubectl", "logs", "deploy/api"], since = "1h", secrets = true }"#,
            ),
        ),
        (
            "env: a bad regex in matches",
            one(r#"{ kind = "env", matches = { IB_ACCOUNT = "^(DU" } }"#),
        ),
        (
            "config: an unknown key in a key check",
            one(
                r#"{ kind = "config", path = "risk.toml", keys = [{ pointer = "/risk/max", maximum = 1 }] }"#,
            ),
        ),
        (
            "file: max_age without a unit",
            one(r#"{ kind = "file", path = "backups/*.gz", max_age = "24" }"#),
        ),
        (
            "tcp: a reversed port range",
            one(r#"{ kind = "tcp", listening_allow = [22, "9100-9000"] }"#),
        ),
        (
            "regression: a key of another kind",
            gated(
                r#"{ p99 = "+10%" }"#,
                Some(r#"{ kind = "env", vars = ["PATH"] }"#),
            ),
        ),
        (
            "regression: coverage on a latency item",
            gated(r#"{ p50 = "+10%", coverage = "-1pt" }"#, None),
        ),
        (
            "regression: a rise without its sign",
            gated(r#"{ p50 = "10%" }"#, None),
        ),
        (
            "regression: a drop in percent",
            gated(
                r#"{ availability = "-0.05%" }"#,
                Some(
                    r#"{ kind = "uptime", monitor = "m", state = "soak.db", window = "30d", target = 99.9 }"#,
                ),
            ),
        ),
        ("regression: alpha alone", gated("{ alpha = 0.01 }", None)),
        (
            "regression: an unknown key",
            gated(r#"{ p95 = "+10%" }"#, None),
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

/// Run `prodready` with `args` in `dir`; `(exit code, stderr)` with the directory's path
/// replaced by `$DIR` so the snapshot does not depend on where the test ran.
fn fails(dir: &std::path::Path, args: &[&str]) -> (i32, String) {
    let out = std::process::Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).replace(&dir.display().to_string(), "$DIR");
    (
        out.status.code().unwrap_or(-1),
        stderr.trim_end().to_string(),
    )
}

/// Every kind of bad input to the other commands, as the user reads it: missing and truncated
/// reports, a report that is not ours, a key that is not a key, a bad date or duration on the
/// command line, a garbage interval log, a missing soak store. Each names the file (or the
/// argument) and what was expected, and exits 2 (invalid input), never 0.
#[test]
fn every_kind_of_bad_command_input_names_its_file_and_what_was_expected() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("truncated.json"),
        "{\"schema\": \"prodready-report/1\", \"items\": [",
    )
    .unwrap();
    std::fs::write(d.join("other.json"), "{\"hello\": \"world\"}").unwrap();
    std::fs::write(d.join("not-a-key"), "this is not an OpenSSH private key\n").unwrap();
    std::fs::write(
        d.join("garbage.hlog"),
        "#[Histogram log format version 1.3]\n1.0,1.0,1.0,!!!notbase64\n",
    )
    .unwrap();
    std::fs::write(
        d.join("ok.toml"),
        format!(
            "{HEAD}{}",
            item("a", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
        ),
    )
    .unwrap();
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("run: no such checklist", vec!["run", "missing.toml"]),
        (
            "run: bare number timeout",
            vec!["run", "--timeout", "10", "ok.toml"],
        ),
        (
            "run: no such baseline",
            vec!["run", "--baseline", "missing", "ok.toml"],
        ),
        (
            "run: truncated baseline",
            vec!["run", "--baseline", "truncated.json", "ok.toml"],
        ),
        ("report: no such report", vec!["report", "missing.json"]),
        ("report: truncated report", vec!["report", "truncated.json"]),
        (
            "report: not a prodready report",
            vec!["report", "other.json"],
        ),
        ("verify: truncated report", vec!["verify", "truncated.json"]),
        (
            "verify: bad date",
            vec!["verify", "--on", "2026-13-45", "truncated.json"],
        ),
        (
            "sign: truncated report",
            vec![
                "sign",
                "--role",
                "Tech lead",
                "--key",
                "not-a-key",
                "truncated.json",
            ],
        ),
        (
            "sign: bad decision",
            vec![
                "sign",
                "--role",
                "Tech lead",
                "--key",
                "not-a-key",
                "--decision",
                "maybe",
                "truncated.json",
            ],
        ),
        (
            "latency merge: garbage log",
            vec!["latency", "merge", "garbage.hlog"],
        ),
        (
            "latency merge: no such log",
            vec!["latency", "merge", "missing.hlog"],
        ),
        (
            "soak-status: no such store",
            vec!["soak-status", "--state", "missing.db"],
        ),
        (
            "compare: no such report",
            vec!["compare", "missing", "other.json"],
        ),
        (
            "compare: truncated report",
            vec!["compare", "truncated.json", "other.json"],
        ),
        (
            "compare: bad alpha",
            vec!["compare", "--alpha", "2", "truncated.json", "other.json"],
        ),
    ];
    let mut all = String::new();
    for (name, args) in cases {
        let (code, stderr) = fails(d, &args);
        assert_ne!(code, 0, "{name}: {stderr}");
        all.push_str(&format!("## {name} (exit {code})\n{stderr}\n\n"));
    }
    insta::assert_snapshot!("command_errors", all);
}
