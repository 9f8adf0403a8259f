//! The live soak status page, served by a real tracker watching a real paper broker: the
//! outage shows as an incident and on today's bar, the JSON API agrees with `soak-status`,
//! serving changes nothing recorded, and a non-loopback address without credentials is refused.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const INTERVAL_MS: i64 = 200;

/// Start `prodready ARGS…` that prints `listening on ADDR` first; returns it and the port.
fn serving(args: &[&str], env: &[(&str, &str)]) -> (ChildGuard, u16) {
    let mut child = Command::new(bin())
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
    let port = addr.rsplit_once(':').unwrap().1.parse().unwrap();
    (ChildGuard(child), port)
}

/// GET `path`; returns (status line, headers, body).
fn get(port: u16, path: &str, auth: Option<&str>) -> (String, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let auth = auth.map_or(String::new(), |a| format!("Authorization: {a}\r\n"));
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{auth}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((&out, ""));
    let (status, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    (status.to_string(), headers.to_lowercase(), body.to_string())
}

fn soak_status(state: &Path) -> serde_json::Value {
    let out = Command::new(bin())
        .args(["soak-status", "--format", "json", "--state"])
        .arg(state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A soak of one HTTP monitor on the broker's health endpoint, with the page on a free port.
fn start_soak(dir: &Path, broker: &str) -> (ChildGuard, u16) {
    let checklist = write(
        dir,
        "soak.toml",
        &format!(
            "[checklist]\nname = \"page\"\n\n[[monitor]]\nname = \"broker\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"150ms\"\ncheck = {{ kind = \"http\", url = \"http://{broker}/healthz\" }}\n\n{}",
            item(
                "placeholder",
                "info",
                r#"{ kind = "env", vars = ["PATH"] }"#
            )
        ),
    );
    let state = dir.join("soak.db");
    serving(
        &[
            "soak",
            checklist.to_str().unwrap(),
            "--state",
            state.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    )
}

/// Now, ms since the Unix epoch.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "waited a minute for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_outage_of_the_broker_shows_on_the_page_and_the_api_agrees_with_soak_status() {
    let dir = tempfile::tempdir().unwrap();
    let broker = PaperBroker::start(&[]);
    let addr = broker.addr.clone();
    let (tracker, port) = start_soak(dir.path(), &addr);
    let up = || {
        let (_, _, body) = get(port, "/api/v1/status", None);
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        v["monitors"][0]["state"] == "up"
    };
    wait_for("the monitor to be up", up);
    // Kill the broker for a few seconds, then bring it back on the same address.
    let stopped = Instant::now();
    let killed_ms = wall_ms();
    drop(broker);
    std::thread::sleep(Duration::from_secs(3));
    let broker = PaperBroker::start_at(&addr);
    let outage = stopped.elapsed().as_millis() as i64;
    let restarted_ms = wall_ms();
    wait_for("the monitor to be up again", up);
    let seen_up_ms = wall_ms();
    std::thread::sleep(Duration::from_millis(3 * INTERVAL_MS as u64));

    // The page, as a person loads it.
    let (status, headers, page) = get(port, "/", None);
    assert!(status.contains("200"), "{status}");
    for h in [
        "content-security-policy: default-src 'none'",
        "x-content-type-options: nosniff",
        "frame-ancestors 'none'",
        "content-type: text/html",
    ] {
        assert!(headers.contains(h), "missing {h:?} in {headers}");
    }
    assert!(!page.contains("<script"), "the page has no script");
    assert!(
        page.contains("http-equiv=\"refresh\""),
        "it refreshes itself"
    );
    assert!(page.contains(">UP<"), "current state by text");
    assert!(
        page.contains("Incidents") && page.contains("connection"),
        "{page}"
    );
    assert_eq!(page.matches("<g><title>").count(), 90, "90 day bars");
    // Today's bar (the last; or yesterday's, if the outage straddled UTC midnight) is no
    // longer fully up: it has a down part.
    let last_two: Vec<&str> = page.rsplit("<g><title>").take(2).collect();
    assert!(
        last_two.iter().any(|b| b.contains("class=\"down\"")),
        "{last_two:?}"
    );

    // In a real browser: the page renders without script, and a screenshot is kept.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/status-page");
    std::fs::create_dir_all(&shots).unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let (dom, _) = chromium(dir.path(), &url, &["--dump-dom".to_string()]);
    assert!(
        dom.contains(">UP<") && dom.contains("<h3>Incidents</h3>"),
        "{dom}"
    );
    assert_eq!(
        dom.matches("<g><title>").count(),
        90,
        "90 day bars in the rendered page"
    );
    let shot = shots.join("status-page.png");
    chromium(
        dir.path(),
        &url,
        &[
            "--window-size=1100,1000".to_string(),
            format!("--screenshot={}", shot.display()),
        ],
    );
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "a screenshot was taken"
    );

    // The API: one incident, as long as the outage give or take the check interval and timeout
    // at each end.
    let (_, headers, body) = get(port, "/api/v1/status", None);
    assert!(headers.contains("application/json"), "{headers}");
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/status.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator.iter_errors(&api).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
    let m = &api["monitors"][0];
    let incidents = m["summary"]["incidents"].as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{m}");
    let (start, end) = (
        incidents[0]["start_ms"].as_i64().unwrap(),
        incidents[0]["end_ms"].as_i64().unwrap(),
    );
    eprintln!("outage {outage} ms, incident {} ms", end - start);
    // Orders, not windows (a busy machine can delay any check): the incident starts after the
    // kill and before the restart, and ends after it started and before the API said up again.
    // ANCHOR allows for the store's timeline being anchored to the wall clock at start-up.
    const ANCHOR: i64 = 1000;
    assert!(
        start >= killed_ms - ANCHOR && start < restarted_ms + ANCHOR,
        "incident start {start} vs kill {killed_ms} and restart {restarted_ms}"
    );
    assert!(
        end > start && end <= seen_up_ms + ANCHOR,
        "incident end {end} vs start {start} and seen up {seen_up_ms}"
    );
    let days = m["days"].as_array().unwrap();
    assert_eq!(days.len(), 90);
    assert!(
        days[88..].iter().any(|d| d["down"].as_f64().unwrap() > 0.0),
        "{:?}",
        &days[88..]
    );
    assert!(!m["response_times"].as_array().unwrap().is_empty());

    // Stop the tracker: from now on nothing is recorded, and the API agrees with soak-status
    // on everything recorded (the totals and the incidents).
    drop(tracker);
    drop(broker);
    let state = dir.path().join("soak.db");
    let before = soak_status(&state);
    let (page_server, port) = serving(
        &[
            "status-page",
            "--state",
            state.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ],
        &[],
    );
    for _ in 0..20 {
        get(port, "/", None);
    }
    let (_, _, body) = get(port, "/api/v1/status", None);
    drop(page_server);
    let api: serde_json::Value = serde_json::from_str(&body).unwrap();
    let after = soak_status(&state);
    for key in ["totals", "incidents", "first_ms", "last_ms", "last_state"] {
        assert_eq!(
            before[0][key], after[0][key],
            "serving the page changed {key}"
        );
        assert_eq!(
            api["monitors"][0]["summary"][key], after[0][key],
            "API vs soak-status: {key}"
        );
    }
}

#[test]
fn a_non_loopback_address_needs_credentials_and_credentials_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let broker = PaperBroker::start(&[]);
    let (tracker, _) = start_soak(dir.path(), &broker.addr);
    let state = dir.path().join("soak.db");
    wait_for("the store", || state.exists());
    drop(tracker);
    let state = state.to_str().unwrap();
    // Refused before anything binds: no other address is ever opened.
    let out = Command::new(bin())
        .args(["status-page", "--state", state, "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("not a loopback address") && err.contains("--auth"),
        "{err}"
    );
    // A literal secret is refused: it would show in ps.
    let out = Command::new(bin())
        .args(["status-page", "--state", state, "--auth", "bearer:hunter2"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(!String::from_utf8_lossy(&out.stderr).contains("hunter2"));
    // With a bearer token from the environment: 401 without it, 200 with it.
    let (page, port) = serving(
        &[
            "status-page",
            "--state",
            state,
            "--listen",
            "127.0.0.1:0",
            "--auth",
            "bearer:${PAGE_TOKEN}",
        ],
        &[("PAGE_TOKEN", "s3cret-token")],
    );
    let (status, headers, _) = get(port, "/api/v1/status", None);
    assert!(status.contains("401"), "{status}");
    assert!(headers.contains("www-authenticate: bearer"), "{headers}");
    let (status, _, _) = get(port, "/", Some("Bearer wrong"));
    assert!(status.contains("401"), "{status}");
    let (status, _, body) = get(port, "/api/v1/status", Some("Bearer s3cret-token"));
    assert!(status.contains("200"), "{status}");
    assert!(!body.contains("s3cret-token"));
    drop(page);
}

#[test]
fn the_status_schema_is_published() {
    let out = Command::new(bin())
        .args(["schema", "status"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", describe(&out));
    let generated: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let published: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schema/status.schema.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        generated, published,
        "regenerate with `prodready schema status > schema/status.schema.json`"
    );
}
