//! The `canary` probe against a real Prometheus (Debian's `prometheus`, scraping every second)
//! and three real paper brokers under the same light order load from this test: `baseline`,
//! `canary` (the same build, no fault) and `faulty` (an error rate of 5 % set through its
//! `/admin/faults` before the load starts). One run of the real binary judges them over one
//! window: canary against baseline passes, faulty against baseline fails on its error rate,
//! and a window too short for `min_points`, a query returning several series and an
//! unreachable server are errors. The load errors of the metric table are checked apart.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

mod common;

use common::prometheus::{Job, Prometheus};
use common::{HEAD, OneItem, PaperBroker, describe, outcome, report_json, run_in, run_item, write};

/// The error ratio of one side: injected errors over every acknowledgement, over 10 s.
const ERROR_RATE: &str = r#"sum(rate(prodready_paper_orders_total{job="{{group}}",status="error"}[10s])) / sum(rate(prodready_paper_orders_total{job="{{group}}"}[10s]))"#;
/// Orders per second of one side.
const ORDER_RATE: &str = r#"sum(rate(prodready_paper_orders_total{job="{{group}}"}[10s]))"#;

/// POST `body` (JSON) to `path` on a fresh connection; the status line's code (0 when the
/// request could not be made).
fn post(addr: &str, path: &str, body: &str) -> u16 {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Orders to every broker in turn, about 20 a second each, until `stop`; counts the orders
/// sent.
fn drive(addrs: Vec<String>, stop: Arc<AtomicBool>, sent: Arc<AtomicU64>) {
    let mut seq = 0u64;
    while !stop.load(Ordering::Relaxed) {
        for a in &addrs {
            seq += 1;
            let body = format!(
                r#"{{"symbol":"NIFTY","side":"buy","qty":1,"type":"market","client_order_id":"c-{seq}"}}"#
            );
            post(a, "/api/v1/orders", &body);
            sent.fetch_add(1, Ordering::Relaxed);
        }
        std::thread::sleep(Duration::from_millis(40));
    }
}

/// A `kind = "canary"` item against `url` with the probe's own keys and its metric tables.
fn canary_item(id: &str, url: &str, keys: &str, metrics: &[String]) -> String {
    format!(
        "[[item]]\nid = \"{id}\"\nsection = \"Release\"\ntitle = \"Canary {id}\"\nseverity = \"blocker\"\n[item.probe]\nkind = \"canary\"\nurl = \"{url}\"\n{keys}\n{}\n",
        metrics.concat()
    )
}

/// One `[[item.probe.metric]]` table.
fn metric(name: &str, query: &str, rest: &str) -> String {
    format!("[[item.probe.metric]]\nname = \"{name}\"\nquery = '{query}'\n{rest}\n")
}

/// The error-rate metric (critical, group `errors` weighing 3) and the order-rate metric
/// (lower is worse, 20 % allowance), with `group_line` for each.
fn both_metrics(group_line: &str) -> Vec<String> {
    vec![
        metric(
            "error rate",
            ERROR_RATE,
            &format!("critical = true\ngroup = \"errors\"\nweight = 3.0\n{group_line}"),
        ),
        metric(
            "order rate",
            ORDER_RATE,
            &format!(
                "direction = \"decrease\"\nallowance = 0.2\ngroup = \"traffic\"\n{group_line}"
            ),
        ),
    ]
}

fn summary(r: &serde_json::Value, id: &str) -> String {
    outcome(r, id)["summary"].as_str().unwrap().to_string()
}

/// The metric `name` of an outcome's `measured.metrics`.
fn metric_figures<'a>(o: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    o["measured"]["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["name"] == name)
        .unwrap_or_else(|| panic!("metric {name} in {o:#}"))
}

#[test]
fn equal_canary_passes_a_faulty_one_fails_on_its_error_rate_and_missing_data_is_an_error() {
    let brokers: Vec<PaperBroker> = (0..3).map(|_| PaperBroker::start(&[])).collect();
    let code = post(&brokers[2].addr, "/admin/faults", r#"{"error_rate": 0.05}"#);
    assert_eq!(code, 200, "setting the fault on the faulty broker");
    let names = ["baseline", "canary", "faulty"];
    let jobs: Vec<Job<'_>> = names
        .iter()
        .zip(&brokers)
        .map(|(name, b)| Job {
            name,
            target: &b.addr,
        })
        .collect();
    let prom = Prometheus::start(&jobs, &[]);
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let load = {
        let addrs = brokers.iter().map(|b| b.addr.clone()).collect();
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || drive(addrs, stop, sent))
    };
    // Enough scraped history for a 60 s window at 1 s: 70 scrapes of every job since the load
    // began (a bound on a hang, not a timing assertion).
    for name in names {
        prom.wait_for(
            &format!("count_over_time(prodready_paper_open_orders{{job=\"{name}\"}}[2m])"),
            Duration::from_secs(300),
            |v| v >= 70.0,
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let url = prom.url();
    let window = "window = \"60s\"\nstep = \"1s\"\nmin_points = 50";
    let checklist = [
        canary_item("equal", &url, window, &both_metrics("")),
        canary_item(
            "faulty",
            &url,
            window,
            &both_metrics("canary_group = \"faulty\""),
        ),
        canary_item(
            "too-few",
            &url,
            "window = \"30s\"\nstep = \"1s\"\nmin_points = 50",
            &[metric("error rate", ERROR_RATE, "")],
        ),
        canary_item(
            "many-series",
            &url,
            window,
            &[metric(
                "acks",
                r#"prodready_paper_orders_total{job="{{group}}"}"#,
                "",
            )],
        ),
        canary_item(
            "unreachable",
            &format!("http://127.0.0.1:{}", common::free_port()),
            window,
            &[metric("error rate", ERROR_RATE, "")],
        ),
    ]
    .concat();
    write(dir.path(), "c.toml", &format!("{HEAD}{checklist}"));
    let out = run_in(dir.path(), &["run", "c.toml", "--out", "out"], &[]);
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    eprintln!("orders sent: {}", sent.load(Ordering::Relaxed));

    // The same build on both sides: nothing harmful, score 100.
    let equal = outcome(&r, "equal");
    eprintln!(
        "equal: {}\n{}",
        equal["summary"], equal["tables"][0]["rows"]
    );
    assert_eq!(equal["status"], "pass", "{equal:#}");
    assert_eq!(equal["measured"]["score"], 100.0, "{equal:#}");
    let errors = metric_figures(equal, "error rate");
    assert_eq!(errors["classification"], "pass", "{errors:#}");
    for m in ["error rate", "order rate"] {
        let f = metric_figures(equal, m);
        assert!(
            f["n_baseline"].as_u64().unwrap() >= 50 && f["n_canary"].as_u64().unwrap() >= 50,
            "{f:#}"
        );
    }
    let charts: Vec<_> = equal["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["media_type"] == "image/svg+xml")
        .collect();
    assert_eq!(charts.len(), 2, "{equal:#}");
    let svg = std::fs::read_to_string(
        dir.path()
            .join("out")
            .join(charts[0]["path"].as_str().unwrap()),
    )
    .unwrap();
    assert!(svg.contains("baseline") && svg.contains("canary"), "{svg}");
    assert_eq!(equal["tables"][0]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(
        equal["measured"]["test"],
        "Mann–Whitney U (two-sided/one-sided), Hodges–Lehmann shift"
    );

    // 5 % errors against none: the error rate is high (a change from zero is outside every
    // allowance), critical, and fails the item; the score is the traffic group's alone.
    let faulty = outcome(&r, "faulty");
    eprintln!(
        "faulty: {}\n{}",
        faulty["summary"], faulty["tables"][0]["rows"]
    );
    assert_eq!(faulty["status"], "fail", "{faulty:#}");
    let text = summary(&r, "faulty");
    assert!(text.contains("error rate (high)"), "{text}");
    assert!(
        text.contains("critical metric harmful: error rate"),
        "{text}"
    );
    let errors = metric_figures(faulty, "error rate");
    assert_eq!(errors["classification"], "high", "{errors:#}");
    assert_eq!(errors["baseline_median"], 0.0, "{errors:#}");
    assert!(
        errors["canary_median"].as_f64().unwrap() > 0.0,
        "{errors:#}"
    );
    assert!(errors["p"].as_f64().unwrap() < 0.05, "{errors:#}");
    assert!(errors["ratio"].is_null(), "infinite ratio: {errors:#}");
    // errors (weight 3) score 0, traffic (weight 1) 100.
    assert_eq!(faulty["measured"]["score"], 25.0, "{faulty:#}");
    let check = faulty["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "error rate")
        .unwrap();
    assert_eq!(check["passed"], false, "{check:#}");
    assert!(
        check["measured"].as_str().unwrap().starts_with("high:"),
        "{check:#}"
    );

    // Missing data is an error, never a pass.
    for c in equal["checks"]
        .as_array()
        .unwrap()
        .iter()
        .chain(faulty["checks"].as_array().unwrap())
    {
        eprintln!("  {}: {}", c["name"], c["measured"]);
    }
    let few = summary(&r, "too-few");
    assert_eq!(outcome(&r, "too-few")["status"], "error", "{few}");
    assert!(
        few.contains("metric \"error rate\": too few points")
            && few.contains("expected at least min_points = 50"),
        "{few}"
    );
    let many = summary(&r, "many-series");
    assert_eq!(outcome(&r, "many-series")["status"], "error", "{many}");
    assert!(many.contains("series, expected exactly one"), "{many}");
    let down = summary(&r, "unreachable");
    assert_eq!(outcome(&r, "unreachable")["status"], "error", "{down}");
    assert!(down.contains("connection failed"), "{down}");
}

/// The one item of [`load_error`].
const ITEM: OneItem = OneItem {
    checklist: "canary",
    id: "canary-judge",
    section: "Release",
    title: "Canary no worse than baseline",
    severity: "blocker",
    timeout: None,
    kind: "canary",
};

/// prodready's stderr for a checklist whose canary probe is `probe` (exit 2 asserted).
fn load_error(dir: &Path, probe: &str) -> String {
    let (code, stderr) = run_item(dir, &ITEM, probe, &[]);
    assert_eq!(code, 2, "{stderr}");
    stderr.as_str().unwrap().to_string()
}

#[test]
fn metric_tables_without_group_placeholder_or_with_two_queries_are_load_errors() {
    let dir = tempfile::tempdir().unwrap();
    let head = "url = \"http://127.0.0.1:9\"\nwindow = \"10m\"\n[[item.probe.metric]]\nname = \"errors\"\n";
    // The file is [checklist], name, blank, [[item]], id, section, title, severity,
    // [item.probe], kind, then the probe's lines: the metric's query is line 15.
    let e = load_error(dir.path(), &format!("{head}query = 'sum(rate(x[1m]))'"));
    assert!(
        e.contains("checklist.toml:15:1: item \"canary-judge\": probe.metric[0].query: expected {{group}} in the query"),
        "{e}"
    );
    let e = load_error(
        dir.path(),
        &format!(
            "{head}query = 'sum(rate(x{{job=\"{{{{group}}}}\"}}[1m]))'\nbaseline = 'sum(rate(x[1m]))'"
        ),
    );
    assert!(
        e.contains("checklist.toml:16:1: item \"canary-judge\": probe.metric[0].baseline: expected either `query` (with {{group}}) or both `baseline` and `canary`, not both"),
        "{e}"
    );
    let e = load_error(dir.path(), head);
    assert!(e.contains("probe.metric[0].query: expected `query`"), "{e}");
    let e = load_error(dir.path(), &format!("{head}baseline = 'sum(rate(x[1m]))'"));
    assert!(
        e.contains("probe.metric[0].canary: expected `query`"),
        "{e}"
    );
    let e = load_error(
        dir.path(),
        "url = \"http://127.0.0.1:9\"\nwindow = \"10m\"\nstep = \"500ms\"\n[[item.probe.metric]]\nname = \"e\"\nquery = '{{group}}'",
    );
    assert!(e.contains("probe.step: expected at least 1s"), "{e}");
    let e = load_error(
        dir.path(),
        &format!("{head}query = 'a{{{{group}}}}'")
            .replace("window = \"10m\"", "window = \"10m\"\nmin_points = 0"),
    );
    assert!(
        e.contains("probe.min_points: expected at least 1 point per side"),
        "{e}"
    );
    let e = load_error(
        dir.path(),
        &format!("{head}query = 'a{{{{group}}}}'\ndirection = \"up\""),
    );
    assert!(
        e.contains("probe.metric[0].direction: unknown variant \"up\", expected one of \"increase\", \"decrease\", \"either\""),
        "{e}"
    );
    // Two metrics of one group with different weights.
    let e = load_error(
        dir.path(),
        &format!(
            "{head}query = 'a{{{{group}}}}'\nweight = 2.0\n[[item.probe.metric]]\nname = \"b\"\nquery = 'b{{{{group}}}}'\nweight = 1.0"
        ),
    );
    assert!(
        e.contains("probe.metric[1].weight: group \"default\" already has weight 2"),
        "{e}"
    );
}
