//! Failure drills end to end: `checklists/drills.toml` run by the real binary against the
//! paper broker and the example trading agent, with the broker on a free port. The agent passes
//! every drill; each seeded-defect twin fails exactly the step that should catch it, with what
//! was seen in the message; an abandoned drill still restores what it broke; measured times
//! agree with a fault of known length. How steps are read and refused: `tests/drill_steps.rs`.

use std::path::Path;

mod common;

use common::{HEAD, agent_bin, describe, free_port, item, report_json, run_in, status_of, write};

/// `checklists/drills.toml` in `dir`, on a free broker port, with the agent binary's real path
/// and `defect` (`--defect NAME`) given to the agent service or, for `lossy-restore`, to the
/// restore command.
fn drills(dir: &Path, defect: Option<&str>) {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("checklists/drills.toml"),
    )
    .unwrap();
    let agent = agent_bin().display().to_string();
    let mut text = text
        .replace("18090", &free_port().to_string())
        .replace("18091", &free_port().to_string())
        .replace("18092", &free_port().to_string())
        .replace("../target/debug/examples/trading_agent", &agent);
    match defect {
        Some("lossy-restore") => {
            text = text.replace(
                "\"restore\", \"--from\"",
                "\"restore\", \"--defect\", \"lossy-restore\", \"--from\"",
            )
        }
        Some(d) => {
            text = text.replacen(
                &format!("  \"{agent}\",\n"),
                &format!("  \"{agent}\", \"--defect\", \"{d}\",\n"),
                1,
            )
        }
        None => {}
    }
    write(dir, "drills.toml", &text);
}

/// Run `drills.toml` (only `only` when given) and return the report.
fn run(dir: &Path, only: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let mut args = vec!["run", "drills.toml", "--out", "out"];
    for o in only {
        args.extend(["--only", o]);
    }
    let out = run_in(dir, &args, &[]);
    let shown = describe(&out);
    (out.status.code(), report_json(&dir.join("out")), shown)
}

fn checks(r: &serde_json::Value, id: &str) -> Vec<(String, bool, String)> {
    let it = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap();
    it["outcome"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["passed"].as_bool().unwrap(),
                c["measured"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The names of the failed checks of item `id`.
fn failed(r: &serde_json::Value, id: &str) -> Vec<(String, String)> {
    checks(r, id)
        .into_iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(n, _, m)| (n, m))
        .collect()
}

#[test]
fn the_example_agent_passes_every_drill_and_every_service_is_left_running() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), None);
    let (code, r, shown) = run(dir.path(), &[]);
    assert_eq!(code, Some(0), "{shown}");
    for id in [
        "dependency-down",
        "notification-throttling",
        "permanent-error",
        "graceful-shutdown",
        "backup-restore",
        "gateway-errors",
        "kill-switch",
        "rollback",
        "log-round-trip",
    ] {
        assert_eq!(status_of(&r, id), "pass", "{id}: {:?}", checks(&r, id));
        let steps = r["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()["outcome"]["measured"]["steps"]
            .as_array()
            .unwrap()
            .clone();
        assert!(
            steps.iter().all(|s| s["result"] != "FAILED"),
            "{id}: {steps:?}"
        );
    }
    // Every service was running when the run stopped it: none exited on its own.
    for s in r["services"].as_array().unwrap() {
        let msg = s["message"].as_str().unwrap();
        assert!(!msg.contains("exited during the run"), "{s}");
    }
    // The sink's messages are kept as evidence.
    let evidence = std::fs::read_to_string(
        dir.path()
            .join("out/evidence/dependency-down/sink-telegram.jsonl"),
    )
    .unwrap();
    assert!(evidence.contains("WAITING"), "{evidence}");
    assert!(
        !evidence.contains("TEST:TOKEN"),
        "token redacted: {evidence}"
    );
}

#[test]
fn an_agent_that_crash_loops_fails_the_no_crash_loop_step() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("crash-loop"));
    let (code, r, shown) = run(dir.path(), &["dependency-down"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "dependency-down");
    let crash = f.iter().find(|(n, _)| n == "no crash loop");
    assert!(
        crash.is_some_and(|(_, m)| m.contains("not running") && m.contains("exit 1")),
        "{f:?}"
    );
}

#[test]
fn an_agent_that_notifies_every_failure_fails_the_one_notification_step() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("notify-every-failure"));
    let (code, r, shown) = run(dir.path(), &["dependency-down"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "dependency-down");
    assert_eq!(f.len(), 1, "only the notification step fails: {f:?}");
    assert_eq!(f[0].0, "exactly one WAITING notification");
    assert!(
        f[0].1.contains("matching message(s), expected exactly 1"),
        "{f:?}"
    );
}

#[test]
fn an_agent_that_ignores_sigterm_fails_the_shutdown_step_as_force_killed() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("ignore-sigterm"));
    let (code, r, shown) = run(dir.path(), &["graceful-shutdown"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "graceful-shutdown");
    let exit = f
        .iter()
        .find(|(n, _)| n == "shutdown time: exit 0, no force kill");
    assert!(
        exit.is_some_and(|(_, m)| m.contains("SIGKILL after 10.00 s grace")),
        "{f:?}"
    );
}

#[test]
fn an_agent_that_exits_without_cancelling_fails_the_flat_book_step() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("no-cancel"));
    let (code, r, shown) = run(dir.path(), &["graceful-shutdown"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "graceful-shutdown");
    assert_eq!(f.len(), 1, "only the order step fails: {f:?}");
    assert_eq!(f[0].0, "no open orders, positions flat");
    assert!(f[0].1.contains("1 open order(s)"), "{f:?}");
}

#[test]
fn a_restore_that_loses_rows_fails_the_comparison_with_the_saved_count() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("lossy-restore"));
    let (code, r, shown) = run(dir.path(), &["backup-restore"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "backup-restore");
    assert_eq!(f.len(), 1, "only the comparison fails: {f:?}");
    assert_eq!(f[0].0, "restored trades equal the backup");
    assert!(f[0].1.contains("(saved: "), "{f:?}");
}

#[test]
fn an_agent_that_does_not_survive_gateway_503s_fails_the_no_crash_loop_step() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("crash-loop"));
    let (code, r, shown) = run(dir.path(), &["gateway-errors"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "gateway-errors");
    let crash = f.iter().find(|(n, _)| n == "no crash loop");
    assert!(
        crash.is_some_and(|(_, m)| m.contains("not running") && m.contains("exit 1")),
        "{f:?}"
    );
}

#[test]
fn a_kill_switch_that_leaves_an_order_open_fails_the_cancelled_step() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), Some("kill-leaves-order"));
    let (code, r, shown) = run(dir.path(), &["kill-switch"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "kill-switch");
    assert!(!f.is_empty(), "{shown}");
    assert_eq!(f[0].0, "open orders cancelled, positions flat", "{f:?}");
    assert!(f[0].1.contains("1 open order(s)"), "{f:?}");
}

#[test]
fn a_rollback_whose_undo_fails_fails_the_item_at_the_restore() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), None);
    let path = dir.path().join("drills.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        r#"undo = ["sh", "-c", "echo 1.4.2 > app-release && echo drill-key > app-key"]"#,
        r#"undo = ["sh", "-c", "echo 1.4.2 > releases/app-release"]"#,
    );
    std::fs::write(&path, text).unwrap();
    let (code, r, shown) = run(dir.path(), &["rollback"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "rollback");
    assert_eq!(f.len(), 1, "only the undo fails: {f:?}");
    assert!(
        f[0].0.starts_with("restore undo of \"deploy 2.0.0\""),
        "{f:?}"
    );
    assert!(f[0].1.contains("exited with"), "{f:?}");
}

#[test]
fn the_log_round_trip_finds_the_marked_line_and_an_app_whose_lines_are_lost_fails_at_that_step() {
    let dir = tempfile::tempdir().unwrap();
    drills(dir.path(), None);
    let (code, r, shown) = run(dir.path(), &["log-round-trip"]);
    assert_eq!(code, Some(0), "{shown}");
    let steps = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "log-round-trip")
        .unwrap()["outcome"]["measured"]["steps"]
        .clone();
    let found = steps
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "marker in the log files")
        .unwrap_or_else(|| panic!("{steps}"))["detail"]
        .as_str()
        .unwrap()
        .to_string();
    // The line the app wrote: the marker it was sent, found in its log file.
    let marker = found
        .split_whitespace()
        .find(|w| w.starts_with("prodready-marker-"))
        .unwrap_or_else(|| panic!("{found}"));
    assert_eq!(marker.len(), "prodready-marker-".len() + 16, "{found}");
    let log = std::fs::read_to_string(dir.path().join("app-logs/app.log")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.contains(marker)).count(),
        1,
        "{log}"
    );
    assert!(found.contains("app-logs/app.log:"), "{found}");

    // Seeded defect: the app's log lines never reach the files (stderr discarded).
    let path = dir.path().join("drills.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace(
            "mkdir -p app-logs &&",
            "mkdir -p app-logs && touch app-logs/app.log &&",
        )
        .replace(" 2>> app-logs/app.log", " 2>/dev/null");
    std::fs::write(&path, text).unwrap();
    let (code, r, shown) = run(dir.path(), &["log-round-trip"]);
    assert_eq!(code, Some(1), "{shown}");
    let f = failed(&r, "log-round-trip");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "marker in the log files", "{f:?}");
    assert!(
        f[0].1
            .contains("0 line(s) with the marker prodready-marker-"),
        "{f:?}"
    );
    // A second attempt has a marker of its own: the first run's line does not count.
    assert!(!f[0].1.contains(marker), "{f:?}");
}

/// A broker and a proxy in front of it, and `items` after them.
fn broker_checklist(port: u16, items: &str) -> String {
    format!(
        "{HEAD}[[proxy]]\nname = \"gw\"\nupstream = \"127.0.0.1:{port}\"\n\n[[service]]\nname = \"broker\"\ncommand = [\"prodready\", \"paper-broker\", \"--listen\", \"127.0.0.1:{port}\"]\nready = {{ http = \"http://127.0.0.1:{port}/healthz\", timeout = \"10s\" }}\n\n{items}"
    )
}

#[test]
fn a_drill_abandoned_by_its_timeout_still_restarts_what_it_stopped_and_heals_the_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let drill = r#"{ kind = "drill", step = [
        { stop = "broker" },
        { proxy = "gw", fault = "down" },
        { wait = "60s" },
    ] }"#;
    let after = r#"{ kind = "http", url = "http://${PROXY_GW_ADDR}/healthz" }"#;
    let text = broker_checklist(
        port,
        &format!(
            "{}\ntimeout = \"2s\"\n\n{}",
            item("breaks", "major", drill).trim_end(),
            item("after", "major", after)
        ),
    );
    write(dir.path(), "t.toml", &text);
    let out = run_in(
        dir.path(),
        &["run", "t.toml", "--out", "out", "--jobs", "1"],
        &[],
    );
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "breaks"), "error", "{}", describe(&out));
    // The next item reaches the broker through the proxy: both were restored.
    assert_eq!(status_of(&r, "after"), "pass", "{}", describe(&out));
    let svc = &r["services"][0];
    assert!(
        svc["message"].as_str().unwrap().contains("started 2 times"),
        "{svc}"
    );
}

#[test]
fn an_interrupted_drill_restores_before_the_run_stops_its_services() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The marker file says the services are up and the drill has begun, so a closed port after
    // it is the drill's stop, not a broker that has not started yet: no window to catch.
    let drill = r#"{ kind = "drill", step = [
        { command = ["touch", "drill-started"] },
        { stop = "broker" },
        { wait = "60s" },
    ] }"#;
    write(
        dir.path(),
        "t.toml",
        &broker_checklist(port, &item("breaks", "major", drill)),
    );
    let child = std::process::Command::new(common::bin())
        .args(["run", "t.toml", "--out", "out"])
        .current_dir(dir.path())
        .env("CI", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the drill has begun and stopped the broker (its port closes), then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let marker = dir.path().join("drill-started");
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        if marker.exists() && !up {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the drill never stopped the broker"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["run"]["interrupted"], true);
    let svc = &r["services"][0];
    // Restarted by the restore, then stopped by the run like any running service.
    assert!(
        svc["message"].as_str().unwrap().contains("started 2 times"),
        "{svc}"
    );
    assert!(
        !svc["message"]
            .as_str()
            .unwrap()
            .contains("exited during the run"),
        "{svc}"
    );
}

#[test]
fn a_stall_of_three_seconds_is_measured_as_three_seconds_within_one_interval() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let drill = format!(
        r#"{{ kind = "drill", step = [
        {{ broker_fault = {{ stall_for = "3s" }}, broker = "http://127.0.0.1:{port}" }},
        {{ name = "healthy again", expect = "http", url = "http://127.0.0.1:{port}/healthz", within = "20s", interval = "100ms" }},
    ] }}"#
    );
    write(
        dir.path(),
        "t.toml",
        &broker_checklist(port, &item("stall", "major", &drill)),
    );
    let out = run_in(dir.path(), &["run", "t.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    let steps = r["items"][0]["outcome"]["measured"]["steps"].clone();
    let ms = steps[1]["ms"].as_f64().unwrap();
    // The health check blocks in the stall and answers when it ends: the time reads the
    // stall's 3 s, never less. Above, it is bounded by the drill's own duration from the same
    // run (no wall-clock window a busy machine could miss): it was measured from the fault
    // action, not from some earlier point.
    assert!(ms >= 2900.0, "{steps}");
    let drill_ms = r["items"][0]["outcome"]["duration_ms"].as_f64().unwrap();
    assert!(ms <= drill_ms, "{steps} within a drill of {drill_ms} ms");
}

#[test]
fn a_drill_restore_clears_broker_faults_it_set() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let drill = format!(
        r#"{{ kind = "drill", step = [
        {{ broker_fault = {{ unhealthy = true }}, broker = "http://127.0.0.1:{port}" }},
        {{ name = "unhealthy", expect = "http", url = "http://127.0.0.1:{port}/healthz", status = 503, within = "5s" }},
        {{ name = "never healthy", expect = "http", url = "http://127.0.0.1:{port}/healthz", within = "500ms" }},
    ] }}"#
    );
    let after = format!(r#"{{ kind = "http", url = "http://127.0.0.1:{port}/healthz" }}"#);
    write(
        dir.path(),
        "t.toml",
        &broker_checklist(
            port,
            &format!(
                "{}{}",
                item("faulty", "major", &drill),
                item("after", "major", &after)
            ),
        ),
    );
    let out = run_in(
        dir.path(),
        &["run", "t.toml", "--out", "out", "--jobs", "1"],
        &[],
    );
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "faulty"), "fail", "{}", describe(&out));
    let f = failed(&r, "faulty");
    assert_eq!(f.len(), 1, "{f:?}");
    assert!(f[0].1.contains("status 503"), "the last thing seen: {f:?}");
    assert_eq!(
        status_of(&r, "after"),
        "pass",
        "faults cleared: {}",
        describe(&out)
    );
}

#[test]
fn process_counts_restarts_since_the_drill_started() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let drill = r#"{ kind = "drill", step = [
        { restart = "broker" },
        { name = "at most one restart", expect = "process", service = "broker", max_restarts = 1, within = "5s" },
        { name = "no restart at all", expect = "process", service = "broker", max_restarts = 0, within = "300ms" },
    ] }"#;
    write(
        dir.path(),
        "t.toml",
        &broker_checklist(port, &item("restarts", "major", drill)),
    );
    let out = run_in(dir.path(), &["run", "t.toml", "--out", "out"], &[]);
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "restarts"), "fail", "{}", describe(&out));
    let f = failed(&r, "restarts");
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].0, "no restart at all");
    assert!(
        f[0].1.contains("1 restart(s) since the drill started"),
        "{f:?}"
    );
}

/// `prodready run t.toml --out out` in `dir`, started in the background (CI set).
fn spawn_run(dir: &Path) -> std::process::Child {
    std::process::Command::new(common::bin())
        .args(["run", "t.toml", "--out", "out"])
        .current_dir(dir)
        .env("CI", "true")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// SIGINT to `child`, as ctrl-c would send.
fn interrupt(child: &std::process::Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
}

/// Poll every 50 ms until `cond` holds; panics with `what` when `child` exits first (a bound
/// on a hang, not a timing assertion).
fn wait_for(child: &mut std::process::Child, what: &str, cond: impl Fn() -> bool) {
    while !cond() {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("prodready exited ({status}) before {what}: {err}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Running (not zombie) processes with `arg` as one of their arguments, from /proc.
fn live_with_arg(arg: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().to_string();
        if pid.parse::<u32>().is_err() {
            continue;
        }
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let zombie = state
            .rsplit_once(')')
            .is_some_and(|(_, r)| matches!(r.split_whitespace().next(), Some("Z" | "X")));
        if !zombie && cmdline.split(|b| *b == 0).any(|a| a == arg.as_bytes()) {
            out.push(format!(
                "{pid}: {}",
                String::from_utf8_lossy(&cmdline).replace('\0', " ")
            ));
        }
    }
    out
}

/// The outcome of item `id`, and its `drill.json`.
fn drill_record(dir: &Path, id: &str) -> (serde_json::Value, serde_json::Value) {
    let r = report_json(&dir.join("out"));
    let outcome = common::outcome(&r, id).clone();
    let file = format!("evidence/{id}/drill.json");
    assert!(
        outcome["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == file.as_str()),
        "drill.json listed as evidence: {outcome}"
    );
    let text = std::fs::read_to_string(dir.join("out").join(&file)).unwrap();
    (outcome, serde_json::from_str(&text).unwrap())
}

/// The results of the recorded steps, in order.
fn results(record: &serde_json::Value) -> Vec<String> {
    record["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["result"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_interrupted_drill_reports_the_steps_run_the_fault_in_effect_and_the_restore_that_healed_it() {
    let dir = tempfile::tempdir().unwrap();
    let (port, proxy_port) = (free_port(), free_port());
    // The broker is stopped and started again by the drill itself (so the restore has nothing
    // to do for it), then the proxy goes down, and the next step leaves a marker and runs
    // until interrupted: the marker says, from outside, that the fault is in effect and which
    // step is in progress.
    let drill = r#"{ kind = "drill", step = [
        { stop = "broker" },
        { start = "broker" },
        { proxy = "gw", fault = "down" },
        { name = "hold the fault", command = ["sh", "-c", "touch fault-in-effect; exec sleep 987001"], timeout = "10m" },
        { proxy = "gw", fault = "heal" },
    ] }"#;
    let text = broker_checklist(port, &item("gateway-down", "major", drill)).replacen(
        "name = \"gw\"\n",
        &format!("name = \"gw\"\nlisten = \"127.0.0.1:{proxy_port}\"\n"),
        1,
    );
    write(dir.path(), "t.toml", &text);
    let mut child = spawn_run(dir.path());
    let marker = dir.path().join("fault-in-effect");
    wait_for(&mut child, "the fault was in effect", || marker.exists());
    // Seen from outside: the proxy refuses connections.
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy_port)).is_err());
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert_eq!(
        report_json(&dir.path().join("out"))["run"]["interrupted"],
        true
    );
    let (outcome, record) = drill_record(dir.path(), "gateway-down");
    assert_eq!(outcome["status"], "error", "{outcome}");
    let summary = outcome["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("interrupted at step 4 of 5 (\"hold the fault\"); in effect: proxy gw down; restore ok: proxy gw healed (was down)"),
        "{summary}"
    );
    // The report's measured values and drill.json carry the same record.
    for key in ["stopped", "steps", "in_effect", "restored"] {
        assert_eq!(outcome["measured"][key], record[key], "{key}");
    }
    assert_eq!(record["stopped"]["reason"], "interrupted");
    assert_eq!(record["stopped"]["step"], 4);
    assert_eq!(record["stopped"]["in_progress"], true);
    assert_eq!(
        results(&record),
        ["done", "done", "done", "stopped", "not reached"]
    );
    let steps = record["steps"].as_array().unwrap();
    // The steps that ran have their start and duration, in order; the one not reached has none.
    let at: Vec<f64> = steps[..4]
        .iter()
        .map(|s| s["at_ms"].as_f64().unwrap())
        .collect();
    assert!(at.windows(2).all(|w| w[0] <= w[1]), "{at:?}");
    assert!(steps[..4].iter().all(|s| s["ms"].as_f64().is_some()));
    assert!(steps[4]["at_ms"].is_null() && steps[4]["ms"].is_null());
    assert_eq!(
        record["in_effect"],
        serde_json::json!([{"what": "proxy gw", "state": "down", "step": "3. proxy gw: down"}])
    );
    // Only what the restore itself did: the broker a later step started is not listed.
    assert_eq!(
        record["restored"],
        serde_json::json!([{"what": "proxy gw", "ok": true, "detail": "healed (was down)"}])
    );
    // No process is left behind: neither the broker nor the step's command.
    assert_eq!(
        live_with_arg(&format!("127.0.0.1:{port}")),
        Vec::<String>::new()
    );
    assert_eq!(live_with_arg("987001"), Vec::<String>::new());
}

#[test]
fn a_drill_stopped_by_its_item_timeout_keeps_the_same_record_and_restores_before_the_next_item() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let drill = r#"{ kind = "drill", step = [
        { stop = "broker" },
        { proxy = "gw", fault = "down" },
        { name = "never", expect = "http", url = "http://${PROXY_GW_ADDR}/healthz", within = "10m" },
        { proxy = "gw", fault = "heal" },
    ] }"#;
    let after = r#"{ kind = "http", url = "http://${PROXY_GW_ADDR}/healthz" }"#;
    let text = broker_checklist(
        port,
        &format!(
            "{}\ntimeout = \"5s\"\n\n{}",
            item("breaks", "major", drill).trim_end(),
            item("after", "major", after)
        ),
    );
    write(dir.path(), "t.toml", &text);
    let out = run_in(
        dir.path(),
        &["run", "t.toml", "--out", "out", "--jobs", "1"],
        &[],
    );
    let (outcome, record) = drill_record(dir.path(), "breaks");
    assert_eq!(outcome["status"], "error", "{}", describe(&out));
    let summary = outcome["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("timed out (item timeout)")
            && summary.contains("at step 3 of 4 (\"never\"); in effect: service broker stopped, proxy gw down; restore ok: service broker started again (ready after"),
        "{summary}"
    );
    assert_eq!(record["stopped"]["reason"], "timed out");
    assert_eq!(results(&record), ["done", "done", "stopped", "not reached"]);
    // The expectation in progress says what it saw last: the gateway refused.
    let last = record["steps"][2]["detail"].as_str().unwrap();
    assert!(
        last.starts_with("timed out after") && last.contains("last seen:"),
        "{last}"
    );
    let restored: Vec<(&str, bool)> = record["restored"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["what"].as_str().unwrap(), r["ok"].as_bool().unwrap()))
        .collect();
    assert_eq!(restored, [("service broker", true), ("proxy gw", true)]);
    // The next item reaches the broker through the proxy: both were whole again before it ran.
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "after"), "pass", "{}", describe(&out));
}

#[test]
fn a_second_interrupt_abandons_a_hung_restore_and_says_what_was_not_done() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    // The service comes up the first time only: started again by the restore, it never gets
    // ready (its readiness waits for two minutes) and leaves a marker.
    let script = format!(
        "if [ -e first ]; then touch restoring; exec sleep 987654; else touch first; exec {} paper-broker --listen 127.0.0.1:{port}; fi",
        common::bin().display()
    );
    let text = format!(
        "{HEAD}[[service]]\nname = \"slow\"\ncommand = [\"sh\", \"-c\", {script:?}]\nready = {{ http = \"http://127.0.0.1:{port}/healthz\", timeout = \"120s\" }}\n\n{}",
        item(
            "hang",
            "major",
            r#"{ kind = "drill", step = [
                { stop = "slow" },
                { name = "hold", command = ["sh", "-c", "touch stopped; exec sleep 987002"], timeout = "10m" },
            ] }"#
        )
    );
    write(dir.path(), "t.toml", &text);
    let mut child = spawn_run(dir.path());
    let (stopped, restoring) = (dir.path().join("stopped"), dir.path().join("restoring"));
    wait_for(&mut child, "the drill stopped the service", || {
        stopped.exists()
    });
    interrupt(&child);
    wait_for(&mut child, "the restore started the service", || {
        restoring.exists()
    });
    interrupt(&child);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let (outcome, record) = drill_record(dir.path(), "hang");
    let summary = outcome["summary"].as_str().unwrap();
    assert!(
        summary.starts_with("interrupted at step 2 of 2 (\"hold\"); in effect: service slow stopped; restore FAILED: service slow"),
        "{summary}"
    );
    // Cut short by the second interrupt, not by the restore's own time limit.
    assert_eq!(
        record["restored"],
        serde_json::json!([{"what": "service slow", "ok": false, "detail": "not done: the restore was abandoned by a second interruption"}])
    );
    assert_eq!(live_with_arg("987654"), Vec::<String>::new());
    assert_eq!(live_with_arg("987002"), Vec::<String>::new());
    assert_eq!(
        live_with_arg(&format!("127.0.0.1:{port}")),
        Vec::<String>::new()
    );
}
