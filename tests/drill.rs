//! Failure drills end to end: `checklists/drills.toml` run by the real binary against the
//! paper broker and the example trading agent, with the broker on a free port. The agent passes
//! every drill; each seeded-defect twin fails exactly the step that should catch it, with what
//! was seen in the message; an abandoned drill still restores what it broke; measured times
//! agree with a fault of known length; bad drills are rejected at their line.

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
    let drill = r#"{ kind = "drill", step = [
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
    // Wait until the drill has stopped the broker (its port closes), then interrupt.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut seen_up = false;
    loop {
        let up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        seen_up |= up;
        if seen_up && !up {
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
