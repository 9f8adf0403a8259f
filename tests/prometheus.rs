//! The `prometheus` probe and `uptime` with `source = "prometheus"` against a real Prometheus
//! server (Debian's `prometheus`, started per test on a loopback port with a temporary TSDB,
//! scraping and evaluating rules every second), the real paper broker and a real
//! `prodready soak`; the generated burn-rate rules checked by the real `promtool`.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

use common::ChildGuard as Proc;
use common::prometheus::{
    BASIC_PASSWORD, BASIC_USER, Job, Prometheus, SCRAPE_INTERVAL_S, prom_bin,
};
use common::{
    HEAD, PaperBroker, describe, item, measured, outcome, report_json, run_in, status_of, write,
};

/// The committed rules file.
fn rules_file() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus/prodready-soak-rules.yml")
}

fn run(dir: &Path, items: &[String]) -> serde_json::Value {
    write(dir, "c.toml", &format!("{HEAD}{}", items.concat()));
    let _ = std::fs::remove_dir_all(dir.join("out"));
    let out = run_in(dir, &["run", "c.toml", "--out", "out"], &[]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        describe(&out)
    );
    report_json(&dir.join("out"))
}

fn summary(r: &serde_json::Value, id: &str) -> String {
    outcome(r, id)["summary"].as_str().unwrap().to_string()
}

/// A `kind = "prometheus"` item on `url` with the rest of the probe table.
fn prom_item(id: &str, url: &str, rest: &str) -> String {
    item(
        id,
        "blocker",
        &format!("{{ kind = \"prometheus\", url = \"{url}\", {rest} }}"),
    )
}

#[test]
fn rules_file_is_the_commands_output_and_promtool_accepts_it() {
    let out = run_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["soak", "--print-prometheus-rules"],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(rules_file()).unwrap();
    assert_eq!(
        printed, committed,
        "deploy/prometheus/prodready-soak-rules.yml is stale: regenerate it with \
         `prodready soak --print-prometheus-rules > deploy/prometheus/prodready-soak-rules.yml`"
    );
    let check = Command::new(prom_bin("promtool"))
        .args(["check", "rules"])
        .arg(rules_file())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // 7 recording rules (5m … 3d) and the page and ticket alerts.
    assert!(text.contains("SUCCESS: 9 rules found"), "{text}");
    // Another target and window also pass promtool; a window below 3 days is refused.
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "soak",
            "--print-prometheus-rules",
            "--slo-target",
            "99.5",
            "--slo-window",
            "7d",
        ],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
    let weekly = write(
        dir.path(),
        "weekly.yml",
        &String::from_utf8_lossy(&out.stdout),
    );
    let check = Command::new(prom_bin("promtool"))
        .args(["check", "rules"])
        .arg(&weekly)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let out = run_in(
        dir.path(),
        &["soak", "--print-prometheus-rules", "--slo-window", "1d"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("at least 3d"),
        "{}",
        describe(&out)
    );
}

/// A stand-in for a broken Prometheus on 127.0.0.1: `/api/v1/query` answers 503 with a text
/// body on one port, and never answers on the other. Runs until the test process ends.
fn broken_servers() -> (u16, u16) {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            use axum::routing::get;
            let unavailable = axum::Router::new().route(
                "/api/v1/query",
                get(|| async {
                    (
                        axum::http::StatusCode::SERVICE_UNAVAILABLE,
                        "upstream overloaded\n",
                    )
                }),
            );
            let silent = axum::Router::new().route(
                "/api/v1/query",
                get(|| async {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    "never"
                }),
            );
            let a = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let b = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send((
                a.local_addr().unwrap().port(),
                b.local_addr().unwrap().port(),
            ))
            .unwrap();
            let _ = tokio::join!(axum::serve(a, unavailable), axum::serve(b, silent));
        });
    });
    rx.recv().unwrap()
}

#[test]
fn queries_hold_thresholds_and_bad_answers_are_errors_with_the_servers_message() {
    let dir = tempfile::tempdir().unwrap();
    // One alert that always fires, one whose evaluation fails: two series end up with the
    // same labels once the alert's label `a` overrides theirs.
    let rules = write(
        dir.path(),
        "rules.yml",
        "groups:\n  - name: drill\n    rules:\n      - alert: AlwaysFiring\n        expr: vector(1)\n      - alert: BrokenAlert\n        expr: label_replace(vector(1), \"a\", \"1\", \"\", \"\") or label_replace(vector(2), \"a\", \"2\", \"\", \"\")\n        labels:\n          a: x\n",
    );
    let prom = Prometheus::start(&[], &[&rules]);
    let url = prom.url();
    // Two evaluations of the group: the first has then finished with both rules.
    prom.wait_for(
        "count_over_time(ALERTS{alertname=\"AlwaysFiring\", alertstate=\"firing\"}[1m])",
        Duration::from_secs(60),
        |v| v >= 2.0,
    );
    let (unavailable, silent) = broken_servers();
    let r = run(
        dir.path(),
        &[
            prom_item("one", &url, "query = 'vector(1)', min = 1"),
            prom_item("two-over", &url, "query = 'vector(2)', max = 1"),
            prom_item(
                "any",
                &url,
                "query = 'vector(1) or label_replace(vector(5), \"k\", \"v\", \"\", \"\")', equals = 5, series = \"any\"",
            ),
            prom_item(
                "all",
                &url,
                "query = 'vector(1) or label_replace(vector(5), \"k\", \"v\", \"\", \"\")', equals = 5",
            ),
            prom_item(
                "range",
                &url,
                "query = 'vector(3)', window = \"30s\", step = \"5s\", aggregate = \"avg\", min = 2, max = 4",
            ),
            prom_item("malformed", &url, "query = 'sum(rate(x[5m]', min = 0"),
            prom_item("string", &url, "query = '\"hello\"', min = 0"),
            prom_item("matrix", &url, "query = 'vector(1)[1m:10s]', min = 0"),
            prom_item("nan", &url, "query = 'vector(0/0)', min = 0"),
            prom_item("empty", &url, "query = 'up{job=\"absent\"}', min = 1"),
            prom_item(
                "empty-ok",
                &url,
                "query = 'up{job=\"absent\"} == 0', max = 0, empty = \"pass\"",
            ),
            prom_item("no-rule", &url, "alerts = [\"NoSuchAlert\"]"),
            prom_item(
                "firing-expected",
                &url,
                "alerts = [\"AlwaysFiring\"], firing = true",
            ),
            prom_item("firing-unexpected", &url, "alerts = [\"AlwaysFiring\"]"),
            prom_item(
                "broken-rule",
                &url,
                "alerts = [\"BrokenAlert\"], firing = true",
            ),
            prom_item(
                "unavailable",
                &format!("http://127.0.0.1:{unavailable}"),
                "query = 'vector(1)', min = 1",
            ),
            prom_item(
                "silent",
                &format!("http://127.0.0.1:{silent}"),
                "query = 'vector(1)', min = 1, timeout = \"300ms\"",
            ),
        ],
    );
    for (id, want) in [
        ("one", "pass"),
        ("two-over", "fail"),
        ("any", "pass"),
        ("all", "fail"),
        ("range", "pass"),
        ("malformed", "error"),
        ("string", "error"),
        ("matrix", "error"),
        ("nan", "error"),
        ("empty", "error"),
        ("empty-ok", "pass"),
        ("no-rule", "fail"),
        ("firing-expected", "pass"),
        ("firing-unexpected", "fail"),
        ("broken-rule", "fail"),
        ("unavailable", "error"),
        ("silent", "error"),
    ] {
        assert_eq!(status_of(&r, id), want, "{id}: {}", outcome(&r, id));
    }
    assert_eq!(measured(outcome(&r, "one"), "value"), 1.0);
    let broken = outcome(&r, "broken-rule")["checks"].to_string();
    assert!(
        broken.contains("err: vector contains metrics with the same labelset"),
        "{broken}"
    );
    assert!(
        summary(&r, "all").contains("1 of 2 series hold"),
        "{}",
        summary(&r, "all")
    );
    assert_eq!(measured(outcome(&r, "range"), "value"), 3.0);
    assert!(
        outcome(&r, "range")["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["media_type"] == "image/svg+xml"),
        "{}",
        outcome(&r, "range")
    );
    for (id, text) in [
        ("malformed", "parse error"),
        ("malformed", "sum(rate(x[5m]"),
        ("string", "expected a vector, got a string"),
        ("matrix", "expected a vector, got a matrix"),
        ("nan", "is not a finite number"),
        ("empty", "returned no series"),
        ("unavailable", "HTTP 503"),
        ("unavailable", "upstream overloaded"),
        ("silent", "timed out after 300.0 ms"),
        ("no-rule", "0 firing"),
        ("firing-unexpected", "1 firing (expected none firing)"),
    ] {
        assert!(
            summary(&r, id).contains(text),
            "{id}: {text} not in {}",
            summary(&r, id)
        );
    }
}

/// Read `listening on ADDR` from a child's first stdout line.
fn listening(child: &mut std::process::Child) -> String {
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    line.trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("first line {line:?}"))
        .to_string()
}

/// Check interval of the soak monitor, ms.
const INTERVAL_MS: u64 = 200;
const FAST_BURN: &str = "ProdreadySoakErrorBudgetFastBurn";
const SLOW_BURN: &str = "ProdreadySoakErrorBudgetSlowBurn";

#[test]
fn broker_outage_reads_back_alike_through_the_store_and_prometheus_and_fires_the_fast_burn_alert() {
    let dir = tempfile::tempdir().unwrap();
    let broker = PaperBroker::start(&[]);
    let broker_addr = broker.addr.clone();
    let checklist = write(
        dir.path(),
        "soak.toml",
        &format!(
            "{HEAD}[[monitor]]\nname = \"broker\"\ninterval = \"{INTERVAL_MS}ms\"\ntimeout = \"150ms\"\nfailures_before_down = 1\ncheck = {{ kind = \"http\", url = \"{}\" }}\n\n{}",
            broker.url("/healthz"),
            item(
                "placeholder",
                "info",
                "{ kind = \"env\", vars = [\"PATH\"] }"
            )
        ),
    );
    let mut soak = Proc(
        Command::new(common::bin())
            .arg("soak")
            .arg(&checklist)
            .arg("--state")
            .arg(dir.path().join("soak.db"))
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let soak_addr = listening(&mut soak.0);
    let rules = rules_file();
    let prom = Prometheus::start(
        &[
            Job {
                name: "broker",
                target: &broker_addr,
            },
            Job {
                name: "soak",
                target: &soak_addr,
            },
        ],
        &[&rules],
    );
    let url = prom.url();
    let bound = Duration::from_secs(60);
    prom.wait_for("sum(up)", bound, |v| v == 2.0);
    prom.wait_for(
        "count_over_time(prodready_soak_checks_total[1m])",
        bound,
        |v| v >= 3.0,
    );

    let alerts = |firing: bool| {
        prom_item(
            if firing {
                "alerts-firing"
            } else {
                "alerts-quiet"
            },
            &url,
            &format!("alerts = [\"{FAST_BURN}\", \"{SLOW_BURN}\"], firing = {firing}"),
        )
    };
    let fast_only = prom_item(
        "fast-firing",
        &url,
        &format!("alerts = [\"{FAST_BURN}\"], firing = true"),
    );
    let before = run(
        dir.path(),
        &[
            prom_item("targets-up", &url, "query = 'up', min = 1"),
            alerts(false),
        ],
    );
    assert_eq!(
        status_of(&before, "targets-up"),
        "pass",
        "{}",
        outcome(&before, "targets-up")
    );
    assert_eq!(measured(outcome(&before, "targets-up"), "series"), 2.0);
    assert_eq!(
        status_of(&before, "alerts-quiet"),
        "pass",
        "{}",
        outcome(&before, "alerts-quiet")
    );

    // The outage: from the broker's exit to the new broker listening on the same port, held
    // until Prometheus has recorded it and the fast-burn alert fires, and at least 5 s.
    let mut broker = broker;
    broker.child.kill().unwrap();
    broker.child.wait().unwrap();
    let down_at = Instant::now();
    prom.wait_for("up{job=\"broker\"}", bound, |v| v == 0.0);
    prom.wait_for(
        &format!("count(ALERTS{{alertname=\"{FAST_BURN}\", alertstate=\"firing\"}})"),
        bound,
        |v| v >= 1.0,
    );
    while down_at.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let broker = PaperBroker::start_at(&broker_addr);
    let outage = down_at.elapsed();
    // Recovered in both sources: a few good scrapes and checks after the restart.
    let scrapes_before = prom
        .value("count_over_time(up{job=\"broker\"}[1h])")
        .unwrap();
    prom.wait_for("count_over_time(up{job=\"broker\"}[1h])", bound, |v| {
        v >= scrapes_before + 3.0
    });
    prom.wait_for("up{job=\"broker\"}", bound, |v| v == 1.0);

    let after = run(
        dir.path(),
        &[
            fast_only,
            item(
                "store",
                "blocker",
                "{ kind = \"uptime\", monitor = \"broker\", state = \"soak.db\", window = \"30d\" }",
            ),
            item(
                "prom-series",
                "blocker",
                &format!(
                    "{{ kind = \"uptime\", source = \"prometheus\", url = \"{url}\", series = 'up{{job=\"broker\"}}', window = \"30d\" }}"
                ),
            ),
            item(
                "prom-counters",
                "blocker",
                &format!(
                    "{{ kind = \"uptime\", source = \"prometheus\", url = \"{url}\", bad = 'prodready_soak_check_failures_total{{monitor=\"broker\"}}', total = 'prodready_soak_checks_total{{monitor=\"broker\"}}', window = \"30d\" }}"
                ),
            ),
            item(
                "prom-recent",
                "blocker",
                &format!(
                    "{{ kind = \"uptime\", source = \"prometheus\", url = \"{url}\", series = 'up{{job=\"broker\"}}', window = \"2s\" }}"
                ),
            ),
            prom_item(
                "broker-up-2m",
                &url,
                "query = 'up{job=\"broker\"}', window = \"2m\", step = \"1s\", min = 1",
            ),
        ],
    );
    drop(broker);
    assert_eq!(
        status_of(&after, "fast-firing"),
        "pass",
        "{}",
        outcome(&after, "fast-firing")
    );
    // Less than an hour of data: pending, saying how much was observed, never a pass.
    for id in ["store", "prom-series", "prom-counters"] {
        assert_eq!(
            status_of(&after, id),
            "pending",
            "{id}: {}",
            outcome(&after, id)
        );
        assert!(
            summary(&after, id).contains("of 30.0 days observed"),
            "{}",
            summary(&after, id)
        );
        assert!(
            measured(outcome(&after, id), "burn_rate_1h") > 14.4,
            "{id}: {}",
            outcome(&after, id)
        );
    }
    // A window that history covers is judged, not pending: the last 2 s were all up.
    assert_eq!(
        status_of(&after, "prom-recent"),
        "pass",
        "{}",
        outcome(&after, "prom-recent")
    );
    assert_eq!(
        outcome(&after, "prom-recent")["measured"]["window_complete"],
        true
    );
    assert_eq!(
        status_of(&after, "broker-up-2m"),
        "fail",
        "{}",
        outcome(&after, "broker-up-2m")
    );
    // Downtime read back: the store within one check interval of the outage as the test
    // measured it; Prometheus within one scrape interval of the store (a failed scrape stands
    // for one interval; the counters for the checks they count), plus one check interval
    // for where the store's own edges fall.
    let store = measured(outcome(&after, "store"), "downtime_ms");
    let outage_ms = outage.as_secs_f64() * 1e3;
    let check_ms = INTERVAL_MS as f64;
    assert!(
        (store - outage_ms).abs() <= 2.0 * check_ms,
        "store {store} ms vs outage {outage_ms} ms"
    );
    eprintln!(
        "outage {outage_ms:.0} ms; downtime: store {store:.0} ms, prometheus series {:.0} ms, counters {:.0} ms",
        measured(outcome(&after, "prom-series"), "downtime_ms"),
        measured(outcome(&after, "prom-counters"), "downtime_ms")
    );
    for id in ["prom-series", "prom-counters"] {
        let prom_down = measured(outcome(&after, id), "downtime_ms");
        assert!(
            (prom_down - store).abs() <= SCRAPE_INTERVAL_S * 1e3 + check_ms,
            "{id}: {prom_down} ms vs store {store} ms (outage {outage_ms} ms)"
        );
    }
}

#[test]
fn example_prometheus_checklist_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("checklists/examples/prometheus.toml");
    let out = run_in(
        Path::new(env!("CARGO_MANIFEST_DIR")),
        &["check", path.to_str().unwrap()],
        &[],
    );
    assert!(out.status.success(), "{}", describe(&out));
}

#[test]
fn basic_auth_from_the_environment_opens_a_protected_server_and_never_shows_the_password() {
    let prom = Prometheus::start_with_basic_auth();
    let url = prom.url();
    let dir = tempfile::tempdir().unwrap();
    let auth = |var: &str| {
        format!(
            "basic_auth = {{ username = \"{BASIC_USER}\", password = \"${{{var}}}\" }}, query = 'vector(1)', min = 1"
        )
    };
    write(
        dir.path(),
        "c.toml",
        &format!(
            "{HEAD}{}{}{}",
            prom_item("right", &url, &auth("PROM_TEST_PASSWORD")),
            prom_item("wrong", &url, &auth("PROM_TEST_WRONG")),
            prom_item("none", &url, "query = 'vector(1)', min = 1"),
        ),
    );
    let wrong = "not-the-password-41";
    let out = run_in(
        dir.path(),
        &["run", "c.toml", "--out", "out"],
        &[
            ("PROM_TEST_PASSWORD", BASIC_PASSWORD),
            ("PROM_TEST_WRONG", wrong),
        ],
    );
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "right"), "pass", "{}", outcome(&r, "right"));
    for id in ["wrong", "none"] {
        assert_eq!(status_of(&r, id), "error", "{}", outcome(&r, id));
        assert!(summary(&r, id).contains("HTTP 401"), "{}", summary(&r, id));
    }
    let mut everything = String::from_utf8_lossy(&out.stdout).to_string();
    everything.push_str(&String::from_utf8_lossy(&out.stderr));
    for f in common::walk(&dir.path().join("out")) {
        everything.push_str(&String::from_utf8_lossy(&std::fs::read(f).unwrap()));
    }
    for secret in [BASIC_PASSWORD, wrong] {
        assert!(!everything.contains(secret), "{secret} leaked");
    }
}

#[test]
fn ca_file_trusts_a_prometheus_served_over_https_and_without_it_the_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    common::make_certs(dir.path(), 30);
    let prom =
        Prometheus::start_with_tls(&dir.path().join("leaf.pem"), &dir.path().join("leaf.key"));
    let url = format!("https://127.0.0.1:{}", prom.port);
    let r = run(
        dir.path(),
        &[
            prom_item(
                "trusted",
                &url,
                "ca_file = \"ca.pem\", query = 'vector(1)', min = 1",
            ),
            prom_item("untrusted", &url, "query = 'vector(1)', min = 1"),
        ],
    );
    assert_eq!(
        status_of(&r, "trusted"),
        "pass",
        "{}",
        outcome(&r, "trusted")
    );
    assert_eq!(
        status_of(&r, "untrusted"),
        "error",
        "{}",
        outcome(&r, "untrusted")
    );
    assert!(
        summary(&r, "untrusted").contains("certificate"),
        "{}",
        summary(&r, "untrusted")
    );
}
