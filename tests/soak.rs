//! The soak tracker end to end: the real `prodready` binary against real HTTP servers
//! (`python3 -m http.server` on 127.0.0.1, ephemeral ports), killed and restarted to make real
//! downtime, the tracker itself SIGKILLed, and the wall clock stepped through the hidden
//! `--clock-offset-file` while the monotonic clock stays real.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

mod common;

use common::free_port;
// A child process, killed when the test ends whatever happens.
use common::ChildGuard as Proc;

const BIN: &str = env!("CARGO_BIN_EXE_prodready");
/// Check interval of the test monitors, ms.
const INTERVAL_MS: i64 = 200;

impl Proc {
    fn signal(&self, s: Signal) {
        kill(Pid::from_raw(self.0.id() as i32), s).expect("signal");
    }

    /// SIGTERM, then wait (bounded) for the exit; returns how long it took and the code.
    fn terminate(mut self) -> (Duration, Option<i32>) {
        let t0 = Instant::now();
        self.signal(Signal::SIGTERM);
        loop {
            if let Some(st) = self.0.try_wait().expect("wait") {
                return (t0.elapsed(), st.code());
            }
            assert!(
                t0.elapsed() < Duration::from_secs(15),
                "soak did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

fn wait_listening(port: u16) -> Instant {
    let t0 = Instant::now();
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Instant::now();
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "nothing listens on {port}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// A real HTTP server: `python3 -m http.server` serving an empty folder.
fn http_server(port: u16, dir: &Path) -> Proc {
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            "--bind",
            "127.0.0.1",
            &port.to_string(),
            "--directory",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is installed");
    let p = Proc(child);
    wait_listening(port);
    p
}

fn write_checklist(dir: &Path, port: u16, extra_monitor: &str, items: &str) -> PathBuf {
    let path = dir.join("soak.toml");
    let text = format!(
        r#"[checklist]
name = "soak test"

[[monitor]]
name = "web"
interval = "{INTERVAL_MS}ms"
timeout = "150ms"
check = {{ kind = "http", url = "http://127.0.0.1:{port}/" }}
{extra_monitor}

[[monitor]]
name = "port"
interval = "{INTERVAL_MS}ms"
check = {{ kind = "tcp", address = "127.0.0.1:{port}" }}

{items}
[[item]]
id = "placeholder"
section = "Soak"
title = "placeholder"
severity = "info"
probe = {{ kind = "env", vars = ["PATH"] }}
"#
    );
    std::fs::write(&path, text).unwrap();
    path
}

fn soak(checklist: &Path, state: &Path, extra: &[&str]) -> Proc {
    let child = Command::new(BIN)
        .arg("soak")
        .arg(checklist)
        .arg("--state")
        .arg(state)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Proc(child)
}

fn sleep_ms(ms: u64) {
    std::thread::sleep(Duration::from_millis(ms));
}

fn status(state: &Path) -> serde_json::Value {
    let out = Command::new(BIN)
        .args([
            "soak-status",
            "--format",
            "json",
            "--window",
            "1h",
            "--state",
        ])
        .arg(state)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn monitor<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["monitor"] == name)
        .unwrap_or_else(|| panic!("no monitor {name} in {status}"))
}

fn ms(v: &serde_json::Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

/// The one integer `sql` selects from the store at `state`.
fn one_i64(state: &Path, sql: &str) -> i64 {
    let conn = rusqlite::Connection::open(state).unwrap();
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// Wall-clock ms now.
fn wall_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Orders, not windows (a busy machine delays any check): monitor `m` has one incident, which
/// starts after `cause` (less `early`, for a check in flight then, placed at its start) and
/// before `fix`, and ends after `fix` and before `stop` (wall ms); its downtime is counted, no
/// more than from `cause` to `stop`. `ANCHOR` allows for the store's timeline being anchored to
/// the wall clock at start-up.
fn assert_one_incident(m: &serde_json::Value, cause: i64, early: i64, fix: i64, stop: i64) {
    const ANCHOR: i64 = 1000;
    let incidents = m["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{m}");
    let start = incidents[0]["start_ms"].as_i64().unwrap();
    let end = incidents[0]["end_ms"]
        .as_i64()
        .unwrap_or_else(|| panic!("incident closed: {m}"));
    assert!(
        start >= cause - early - ANCHOR && start < fix + ANCHOR,
        "incident start {start} vs cause {cause} and fix {fix}: {m}"
    );
    assert!(
        end > fix - ANCHOR && end <= stop + ANCHOR,
        "incident end {end} vs fix {fix} and stop {stop}: {m}"
    );
    let down = ms(&m["totals"]["down_ms"]);
    assert!(
        down > 0 && down <= stop - cause + ANCHOR,
        "down {down} ms from cause {cause} to stop {stop}: {m}"
    );
}

#[test]
fn target_stopped_for_n_seconds_is_one_incident_between_the_kill_and_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = http_server(port, dir.path());
    let checklist = write_checklist(dir.path(), port, "", "");
    let state = dir.path().join("soak.db");
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(1500);
    let stopped = Instant::now();
    let killed_ms = wall_ms();
    drop(server); // SIGKILL: connections are refused from now on
    sleep_ms(3000);
    let restarted_ms = wall_ms();
    let server = http_server(port, dir.path());
    let outage = stopped.elapsed().as_millis() as i64;
    sleep_ms(1500);
    let (took, code) = tracker.terminate();
    let stopped_ms = wall_ms();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "SIGTERM took {took:?}");
    drop(server);

    let st = status(&state);
    for name in ["web", "port"] {
        let m = monitor(&st, name);
        let down = ms(&m["totals"]["down_ms"]);
        let up = ms(&m["totals"]["up_ms"]);
        eprintln!("{name}: outage {outage} ms, recorded down {down} ms, up {up} ms");
        assert_one_incident(m, killed_ms, 0, restarted_ms, stopped_ms);
        let first_error = m["incidents"][0]["first_error"].as_str().unwrap();
        assert!(
            first_error.to_lowercase().contains("refused")
                || first_error.contains("connection failed"),
            "{m}"
        );
        assert!(up > 0, "{name}: up {up} ms");
    }
}

#[test]
fn tracker_killed_for_m_seconds_is_unknown_not_up_and_the_store_stays_sound() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = http_server(port, dir.path());
    let checklist = write_checklist(dir.path(), port, "", "");
    let state = dir.path().join("soak.db");
    let started_wall = wall_ms();
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(1500);
    tracker.signal(Signal::SIGKILL);
    let killed_wall = wall_ms();
    drop(tracker);
    let last = {
        let conn = rusqlite::Connection::open(&state).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let (first, last, n): (i64, i64, i64) = conn
            .query_row(
                "SELECT min(wall_ms), max(wall_ms), count(*) FROM samples",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .unwrap();
        eprintln!(
            "{n} samples committed; the last {} ms before the kill",
            killed_wall - last
        );
        // Every sample taken before the kill is committed as it is taken: several are there,
        // all between the start and the kill.
        assert!(n >= 2, "{n} samples");
        assert!(started_wall <= first && first < last && last <= killed_wall);
        last
    };
    sleep_ms(3000);
    let restarted_wall = wall_ms();
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(1500);
    let (_, code) = tracker.terminate();
    assert_eq!(code, Some(0));

    let st = status(&state);
    let read_wall = wall_ms();
    let gap = restarted_wall - killed_wall;
    for name in ["web", "port"] {
        let m = monitor(&st, name);
        let unknown = ms(&m["unknown_ms"]);
        let down = ms(&m["totals"]["down_ms"]);
        let up = ms(&m["totals"]["up_ms"]);
        eprintln!("{name}: gap ≥ {gap} ms, unknown {unknown} ms, up {up} ms, down {down} ms");
        assert_eq!(down, 0);
        // Orders, not windows: the time the tracker was away is unknown (less at most the one
        // interval the last sample before the kill speaks for), never more than from its last
        // sample to the status read; up is at most the time a tracker ran.
        assert!(
            unknown >= gap - INTERVAL_MS,
            "{name}: unknown {unknown} < gap {gap}"
        );
        assert!(
            unknown <= read_wall - last,
            "{name}: unknown {unknown} ms, more than from the last sample to the read"
        );
        assert!(
            up <= (killed_wall - started_wall) + (read_wall - restarted_wall),
            "{name}: the gap was counted as up ({up} ms)"
        );
        // Coverage is the observed share of the window so far: the gap lowers it; the time
        // before the first observation does not (that is window progress).
        let coverage = m["coverage"].as_f64().unwrap();
        let expected = (up + down) as f64 / (up + down + unknown) as f64;
        assert!(
            (coverage - expected).abs() < 1e-3,
            "{name}: coverage {coverage}, up+down / (up+down+unknown) = {expected}"
        );
        assert!(coverage < 1.0);
        assert!(m["window_progress"].as_f64().unwrap() < 0.01);
    }
    let events = monitor(&st, "web")["events"].as_array().unwrap().clone();
    let gap_event = events
        .iter()
        .find(|e| e["kind"] == "tracker_gap")
        .expect("the gap is reported");
    let measured = ms(&gap_event["duration_ms"]);
    assert!(
        measured >= gap - INTERVAL_MS && measured <= read_wall - last,
        "gap event {measured} ms vs {gap} ms"
    );
    assert!(gap_event["detail"].as_str().unwrap().contains("killed"));
    let conn = rusqlite::Connection::open(&state).unwrap();
    let ok: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn wall_clock_jump_of_an_hour_either_way_adds_no_phantom_downtime() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = http_server(port, dir.path());
    let checklist = write_checklist(dir.path(), port, "", "");
    let state = dir.path().join("soak.db");
    let offset = dir.path().join("offset");
    std::fs::write(&offset, "0s").unwrap();
    let offset_arg = offset.to_str().unwrap().to_string();
    let started = Instant::now();
    let started_wall = wall_ms();
    let tracker = soak(&checklist, &state, &["--clock-offset-file", &offset_arg]);
    sleep_ms(1500);
    std::fs::write(&offset, "+1h").unwrap();
    sleep_ms(1500);
    std::fs::write(&offset, "-1h").unwrap();
    sleep_ms(1500);
    let (took, code) = tracker.terminate();
    let ran = started.elapsed().as_millis() as i64;
    assert_eq!(code, Some(0));
    // How long the tracker took to take its first sample (before any jump), on this machine.
    let startup =
        one_i64(&state, "SELECT wall_ms FROM samples ORDER BY rowid LIMIT 1") - started_wall;

    let st = status(&state);
    for name in ["web", "port"] {
        let m = monitor(&st, name);
        let down = ms(&m["totals"]["down_ms"]);
        let up = ms(&m["totals"]["up_ms"]);
        eprintln!("{name}: ran {ran} ms, up {up} ms, down {down} ms");
        assert_eq!(down, 0, "phantom downtime");
        // Up is all the time the tracker watched: from its first sample to its stop, less at
        // most one interval, both measured in this run.
        let watched = ran - startup - took.as_millis() as i64;
        assert!(
            up <= ran && up >= watched - INTERVAL_MS,
            "{name}: up {up} ms of {ran} ms (first sample after {startup} ms, stop took {took:?})"
        );
        assert!(m["incidents"].as_array().unwrap().is_empty());
    }
    let jumps: Vec<i64> = monitor(&st, "web")["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "clock_jump")
        .map(|e| ms(&e["duration_ms"]))
        .collect();
    assert_eq!(jumps.len(), 2, "{jumps:?}");
    assert!((jumps[0] - 3_600_000).abs() < 1000, "{jumps:?}");
    assert!((jumps[1] + 7_200_000).abs() < 1000, "{jumps:?}");
}

#[test]
fn maintenance_time_is_excluded_and_listed_not_counted_as_down() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens: every check fails
    let now = jiff::Timestamp::now();
    let start = now - jiff::SignedDuration::from_hours(1);
    let end = now + jiff::SignedDuration::from_hours(1);
    let maint = format!(
        "[[monitor.maintenance]]\nreason = \"broker upgrade\"\nstart = \"{start}\"\nend = \"{end}\"\n"
    );
    let checklist = write_checklist(dir.path(), port, &maint, "");
    let state = dir.path().join("soak.db");
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(1500);
    let (_, code) = tracker.terminate();
    assert_eq!(code, Some(0));
    let st = status(&state);
    let web = monitor(&st, "web");
    assert_eq!(ms(&web["totals"]["down_ms"]), 0);
    assert!(ms(&web["totals"]["maint_ms"]) > 1000, "{web}");
    assert!(
        ms(&web["totals"]["failures"]) >= 5,
        "failures are still recorded: {web}"
    );
    assert_eq!(web["maintenance"][0]["reason"], "broker upgrade");
    assert!(web["incidents"].as_array().unwrap().is_empty());
    // The same outage outside maintenance is down time.
    let port_m = monitor(&st, "port");
    assert!(ms(&port_m["totals"]["down_ms"]) > 1000, "{port_m}");
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn metrics_and_healthz_are_served_and_sigterm_stops_within_ten_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = http_server(port, dir.path());
    let checklist = write_checklist(dir.path(), port, "", "");
    let state = dir.path().join("soak.db");
    let mut tracker = soak(
        &checklist,
        &state,
        &["--listen", "127.0.0.1:0", "--keep-samples", "35d"],
    );
    let mut line = String::new();
    BufReader::new(tracker.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let mport: u16 = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    sleep_ms(1200);
    let health = http_get(mport, "/healthz");
    assert!(
        health.starts_with("HTTP/1.0 200") || health.starts_with("HTTP/1.1 200"),
        "{health}"
    );
    let metrics = http_get(mport, "/metrics");
    assert!(metrics.contains("text/plain; version=0.0.4"), "{metrics}");
    assert!(
        metrics.contains("prodready_soak_up{monitor=\"web\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("prodready_soak_availability_ratio{monitor=\"web\",window=\"1h\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("prodready_soak_error_budget_remaining_ratio{monitor=\"port\"} 1"),
        "{metrics}"
    );
    let text = Command::new(BIN)
        .args(["soak-status", "--state"])
        .arg(&state)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.starts_with("tracker: running"), "{text}");
    assert!(
        text.contains("│ web") && text.contains("43.2 min"),
        "{text}"
    );
    let (took, code) = tracker.terminate();
    assert_eq!(code, Some(0));
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The clean stop is recorded.
    let stopped = one_i64(&state, "SELECT stopped FROM runs ORDER BY id DESC LIMIT 1");
    assert_eq!(stopped, 1);
}

#[test]
fn uptime_item_is_pending_before_its_window_and_judged_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let _server = http_server(port, dir.path());
    let items = r#"
[[item]]
id = "month"
section = "Soak"
title = "30 days at 99.9 %"
severity = "major"
probe = { kind = "uptime", monitor = "web", state = "soak.db" }

[[item]]
id = "recent"
section = "Soak"
title = "last 2 s at 99 %"
severity = "major"
probe = { kind = "uptime", monitor = "port", state = "soak.db", window = "2s", target = 99, min_coverage = 75 }

[[item]]
id = "ghost"
section = "Soak"
title = "unknown monitor"
severity = "minor"
probe = { kind = "uptime", monitor = "nope", state = "soak.db" }
"#;
    let checklist = write_checklist(dir.path(), port, "", items);
    let state = dir.path().join("soak.db");
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(3000);
    let out = dir.path().join("report");
    let run = Command::new(BIN)
        .arg("run")
        .arg(&checklist)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let (_, code) = tracker.terminate();
    assert_eq!(code, Some(0));
    assert_eq!(
        run.status.code(),
        Some(1),
        "pending blocks: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    let item = |id: &str| {
        report["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["id"] == id)
            .unwrap()
            .clone()
    };
    let month = item("month");
    assert_eq!(month["outcome"]["status"], "pending", "{month}");
    assert!(
        month["outcome"]["summary"]
            .as_str()
            .unwrap()
            .contains("of 30.0 days observed"),
        "{month}"
    );
    assert!(
        month["outcome"]["measured"]["projected_availability_percent"]
            .as_f64()
            .unwrap()
            > 99.0
    );
    let recent = item("recent");
    assert_eq!(recent["outcome"]["status"], "pass", "{recent}");
    assert_eq!(item("ghost")["outcome"]["status"], "error");
    let md = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(md.contains("evidence/recent/timeline.svg"), "{md}");
    let svg = std::fs::read_to_string(out.join("evidence/recent/timeline.svg")).unwrap();
    assert!(svg.contains("<rect"), "{svg}");
}

#[test]
fn monitor_typos_and_bad_time_zones_are_rejected_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[monitor]]\nname = \"web\"\nintervall = \"1s\"\ncheck = { kind = \"tcp\", address = \"127.0.0.1:1\" }\n",
            "monitor \"web\": unknown key \"intervall\"",
        ),
        (
            "[[monitor]]\nname = \"web\"\ncheck = { kind = \"tcp\", address = \"127.0.0.1:1\" }\n[[monitor.maintenance]]\nreason = \"x\"\nat = \"02:00\"\nduration = \"1h\"\ntz = \"Mars/Olympus\"\n",
            "monitor \"web\": maintenance[0].tz: unknown time zone \"Mars/Olympus\"",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", url = \"http://127.0.0.1:1\", type = \"limit\" }\n",
            "monitor \"o\": check.limit_price: a limit order needs a positive limit_price",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", transport = \"fix\", url = \"fix+tcp://127.0.0.1:1\", symbol = \"NIFTY\" }\n",
            "monitor \"o\": check.symbol: does not apply to transport = \"fix\"",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", transport = \"fix\", url = \"fix+tcp://127.0.0.1:1\", sender_comp_id = \"A\", target_comp_id = \"B\", place = \"11={{seq}}|55=X\", ack_ord_status = [\"New\"] }\n",
            "monitor \"o\": check.ack_ord_status: \"New\" is not an OrdStatus(39) value",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", url = \"http://127.0.0.1:1\", ack_ord_status = [\"0\"] }\n",
            "monitor \"o\": check.ack_ord_status: applies only to transport = \"fix\"",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", transport = \"websocket\", url = \"ws://127.0.0.1:1/ws/orders\" }\n",
            "monitor \"o\": check.place: transport = \"websocket\" needs place",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", transport = \"websocket\", url = \"ws://127.0.0.1:1/ws/orders\", place = '{\"client_order_id\":\"{{uuid}}\"}' }\n",
            "monitor \"o\": check.match: transport = \"websocket\" needs match",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", transport = \"websocket\", url = \"http://127.0.0.1:1/\", place = '{}', match = \"/id\" }\n",
            "monitor \"o\": check.url: expected a ws:// or wss:// URL",
        ),
        (
            "[[monitor]]\nname = \"o\"\ncheck = { kind = \"order\", url = \"http://127.0.0.1:1/o\", place = '{}', ack = { pointer = \"/status\", equals = \"ok\", one_of = [\"ok\"] } }\n",
            "monitor \"o\": check.ack.one_of: json_equals and json_one_of exclude each other",
        ),
    ];
    for (monitor, want) in cases {
        let path = dir.path().join("c.toml");
        std::fs::write(
            &path,
            format!("[checklist]\nname = \"t\"\n{monitor}\n[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"info\"\nprobe = {{ kind = \"env\", vars = [\"PATH\"] }}\n"),
        )
        .unwrap();
        let out = Command::new(BIN).arg("check").arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{err}");
        assert!(err.contains("c.toml:"), "{err}");
    }
}

#[test]
fn a_sample_retention_below_one_day_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let checklist = write_checklist(dir.path(), free_port(), "", "");
    let out = Command::new(BIN)
        .arg("soak")
        .arg(&checklist)
        .args(["--state", "x.db", "--keep-samples", "1h"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("'1h' for '--keep-samples <DURATION>': expected at least 1d"),
        "{err}"
    );
    assert!(
        !dir.path().join("x.db").exists(),
        "nothing is created on invalid input"
    );
}

#[test]
fn example_soak_checklist_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("checklists/examples/soak.toml");
    let out = Command::new(BIN).arg("check").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid: 2 items"));
}

/// Start a paper broker on an ephemeral port; the process and its port.
fn paper_broker() -> (Proc, u16) {
    let mut broker = Proc(
        Command::new(BIN)
            .args(["paper-broker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(broker.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u16 = line
        .trim()
        .strip_prefix("listening on 127.0.0.1:")
        .unwrap_or_else(|| panic!("first line: {line:?}"))
        .parse()
        .unwrap();
    (broker, port)
}

/// Soak the checklist with `monitors` beside the standard two for 2 s, stop it (it must exit
/// 0) and return `soak-status` of its store.
fn soak_for_two_seconds(dir: &Path, port: u16, monitors: &str) -> serde_json::Value {
    let checklist = write_checklist(dir, port, monitors, "");
    let state = dir.join("soak.db");
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(2000);
    let (_, code) = tracker.terminate();
    assert_eq!(code, Some(0));
    status(&state)
}

#[test]
fn order_monitor_places_and_cancels_paper_orders_and_counts_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, port) = paper_broker();
    let order = format!(
        "\n[[monitor]]\nname = \"order\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"1s\"\ncheck = {{ kind = \"order\", url = \"http://127.0.0.1:{port}\", type = \"limit\", limit_price = 1.0, cancel = true }}\n"
    );
    let st = soak_for_two_seconds(dir.path(), port, &order);
    let o = monitor(&st, "order");
    assert_eq!(o["kind"], "order");
    assert!(ms(&o["totals"]["ops"]) >= 10, "{o}");
    assert_eq!(ms(&o["totals"]["op_errors"]), 0, "{o}");
    assert_eq!(o["error_rate"].as_f64(), Some(0.0));
    assert_eq!(ms(&o["totals"]["down_ms"]), 0, "{o}");
}

/// The order monitor against a venue's own API, here the paper broker's WebSocket: a limit
/// order from a template, its acknowledgement matched by client id past the market data on
/// the socket, then cancelled with the order id from the acknowledgement and the cancel's
/// answer checked. A second monitor expects `filled` of an order that only rests: every check
/// fails on its acknowledgement and counts as an operation error.
#[test]
fn order_monitor_over_websocket_places_and_cancels_and_counts_a_failed_ack() {
    let dir = tempfile::tempdir().unwrap();
    let (_broker, port) = paper_broker();
    let place = r#"'{"symbol":"NIFTY","side":"buy","qty":1,"type":"limit","limit_price":1.0,"client_order_id":"ws-{{uuid}}"}'"#;
    let monitors = format!(
        "\n[[monitor]]\nname = \"ws-order\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"1s\"\ncheck = {{ kind = \"order\", transport = \"websocket\", url = \"ws://127.0.0.1:{port}/ws/orders\", place = {place}, match = \"/client_order_id\", ack = {{ pointer = \"/status\", equals = \"accepted\" }}, cancel = '{{\"action\":\"cancel\",\"order_id\":\"{{{{order_id}}}}\"}}' }}\n\n[[monitor]]\nname = \"ws-unfilled\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"1s\"\ncheck = {{ kind = \"order\", transport = \"websocket\", url = \"ws://127.0.0.1:{port}/ws/orders\", place = {place}, match = \"/client_order_id\", ack = {{ pointer = \"/status\", equals = \"filled\" }} }}\n"
    );
    let st = soak_for_two_seconds(dir.path(), port, &monitors);
    let o = monitor(&st, "ws-order");
    assert_eq!(o["kind"], "order");
    // Two operations a check (the order and its cancel), none failed.
    assert!(ms(&o["totals"]["ops"]) >= 10, "{o}");
    assert_eq!(ms(&o["totals"]["ops"]) % 2, 0, "{o}");
    assert_eq!(ms(&o["totals"]["op_errors"]), 0, "{o}");
    assert_eq!(ms(&o["totals"]["down_ms"]), 0, "{o}");
    let bad = monitor(&st, "ws-unfilled");
    assert!(ms(&bad["totals"]["ops"]) >= 5, "{bad}");
    assert_eq!(bad["totals"]["ops"], bad["totals"]["op_errors"], "{bad}");
    assert_eq!(bad["error_rate"].as_f64(), Some(1.0), "{bad}");
}

#[test]
fn target_frozen_with_sigstop_is_one_incident_from_the_freeze_to_after_the_thaw() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let server = http_server(port, dir.path());
    let checklist = write_checklist(dir.path(), port, "", "");
    let state = dir.path().join("soak.db");
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(1500);
    // Frozen: the kernel still queues connections, but nothing answers a request.
    let frozen_wall = wall_ms();
    server.signal(Signal::SIGSTOP);
    sleep_ms(3000);
    let thawed_wall = wall_ms();
    server.signal(Signal::SIGCONT);
    sleep_ms(1500);
    let (_, code) = tracker.terminate();
    let stopped_wall = wall_ms();
    assert_eq!(code, Some(0));
    let st = status(&state);
    let web = monitor(&st, "web");
    let down = ms(&web["totals"]["down_ms"]);
    eprintln!(
        "web: frozen {} ms, recorded down {down} ms",
        thawed_wall - frozen_wall
    );
    // A check in flight at the freeze is placed at its start: one interval and its timeout.
    assert_one_incident(
        web,
        frozen_wall,
        INTERVAL_MS + 150,
        thawed_wall,
        stopped_wall,
    );
    let first = web["incidents"][0]["first_error"].as_str().unwrap();
    assert!(first.contains("timed out"), "{first}");
    // (The tcp monitor is not asserted: once the frozen server's listen backlog is full, new
    // connections hang too, so how long it stays up depends on the backlog size.)
}

#[test]
fn command_monitor_follows_a_real_command_with_paths_relative_to_the_checklist() {
    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("ready.flag");
    std::fs::write(&flag, "").unwrap();
    let checklist = dir.path().join("cmd.toml");
    std::fs::write(
        &checklist,
        format!(
            r#"[checklist]
name = "command soak"

[[monitor]]
name = "flag"
interval = "{INTERVAL_MS}ms"
timeout = "2s"
failures_before_down = 2
check = {{ kind = "command", command = ["test", "-f", "ready.flag"] }}

[[item]]
id = "placeholder"
section = "Soak"
title = "placeholder"
severity = "info"
probe = {{ kind = "env", vars = ["PATH"] }}
"#
        ),
    )
    .unwrap();
    let state = dir.path().join("soak.db");
    // Started from another folder: the command must still run in the checklist's folder.
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(1500);
    let gone_wall = wall_ms();
    std::fs::remove_file(&flag).unwrap();
    sleep_ms(2000);
    let back_wall = wall_ms();
    std::fs::write(&flag, "").unwrap();
    sleep_ms(1500);
    let (_, code) = tracker.terminate();
    let stopped_wall = wall_ms();
    assert_eq!(code, Some(0));
    let st = status(&state);
    let m = monitor(&st, "flag");
    let down = ms(&m["totals"]["down_ms"]);
    eprintln!(
        "flag: missing {} ms, recorded down {down} ms",
        back_wall - gone_wall
    );
    assert_one_incident(m, gone_wall, 0, back_wall, stopped_wall);
    assert!(
        m["incidents"][0]["first_error"]
            .as_str()
            .unwrap()
            .contains("exit"),
        "{m}"
    );
}

#[test]
fn order_monitor_over_fix_places_and_cancels_orders_and_counts_a_refused_logon() {
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Proc(
        Command::new(BIN)
            .args(["paper-broker", "--listen", "127.0.0.1:0"])
            .args(["--fix-listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(broker.0.stdout.take().unwrap());
    let mut read_port = |prefix: &str| -> u16 {
        let mut line = String::new();
        out.read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix(prefix)
            .unwrap_or_else(|| panic!("line: {line:?}"))
            .parse()
            .unwrap()
    };
    let port = read_port("listening on 127.0.0.1:");
    let fix_port = read_port("fix listening on 127.0.0.1:");
    // A limit buy at 1 rests, so each check places and cancels (2 operations); the second
    // monitor names a CompID the acceptor is not, so every check fails.
    let monitors = format!(
        "\n[[monitor]]\nname = \"fix-order\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"1s\"\ncheck = {{ kind = \"order\", transport = \"fix\", url = \"fix+tcp://127.0.0.1:{fix_port}\", sender_comp_id = \"SOAK\", target_comp_id = \"PAPER\", place = \"11=soak-{{{{uuid}}}}|55=NIFTY|54=1|38=1|40=2|44=1\", ack_ord_status = [\"0\"], cancel = true }}\n\n[[monitor]]\nname = \"fix-wrong\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"1s\"\ncheck = {{ kind = \"order\", transport = \"fix\", url = \"fix+tcp://127.0.0.1:{fix_port}\", sender_comp_id = \"SOAK\", target_comp_id = \"NOPE\", place = \"11=soak-{{{{uuid}}}}|55=NIFTY|54=1|38=1|40=1\" }}\n"
    );
    let checklist = write_checklist(dir.path(), port, &monitors, "");
    let state = dir.path().join("soak.db");
    let tracker = soak(&checklist, &state, &[]);
    sleep_ms(2000);
    let (_, code) = tracker.terminate();
    assert_eq!(code, Some(0));
    let st = status(&state);
    let o = monitor(&st, "fix-order");
    assert_eq!(o["kind"], "order");
    let ops = ms(&o["totals"]["ops"]);
    assert!(ops >= 10 && ops % 2 == 0, "place and cancel each time: {o}");
    assert_eq!(ms(&o["totals"]["op_errors"]), 0, "{o}");
    assert_eq!(ms(&o["totals"]["down_ms"]), 0, "{o}");
    let w = monitor(&st, "fix-wrong");
    assert!(ms(&w["totals"]["ops"]) >= 5, "{w}");
    assert_eq!(
        ms(&w["totals"]["op_errors"]),
        ms(&w["totals"]["ops"]),
        "{w}"
    );
    assert_eq!(w["error_rate"].as_f64(), Some(1.0), "{w}");
}
