//! The paper broker as a real process on an ephemeral loopback port: order lifecycle,
//! accounts, duplicate client order ids, API-key auth, fault injection (from the command line
//! and at runtime through `/admin/faults`), health toggles, metrics and graceful SIGTERM
//! shutdown.

use std::io::Read;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::PaperBroker;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn post(c: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

async fn get_json(c: &reqwest::Client, url: &str) -> Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

fn market(cid: &str) -> Value {
    json!({"symbol": "NIFTY", "side": "buy", "qty": 3, "type": "market", "client_order_id": cid})
}

#[tokio::test]
async fn order_lifecycle_market_fill_limit_rest_cancel_and_positions() {
    let b = PaperBroker::start_capturing_stderr(&[]);
    let c = client();
    let orders = b.url("/api/v1/orders");

    let (s, ack) = post(&c, &orders, market("m-1")).await;
    assert_eq!(s, 200);
    assert_eq!(ack["status"], "filled");
    assert_eq!(ack["client_order_id"], "m-1");
    let fill = ack["filled_price"].as_f64().unwrap();
    assert!((100.0..201.0).contains(&fill), "{fill}");
    assert!(ack["reason"].is_null());

    // A buy limit far below the ±0.5 % band rests.
    let (s, ack) = post(
        &c,
        &orders,
        json!({"symbol": "NIFTY", "side": "buy", "qty": 1, "type": "limit", "limit_price": 1.0,
               "client_order_id": "l-1", "time_in_force": "gtc"}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(ack["status"], "accepted");
    let id = ack["order_id"].as_str().unwrap().to_string();
    let got = get_json(&c, &b.url(&format!("/api/v1/orders/{id}"))).await;
    assert_eq!(got["status"], "accepted");
    assert_eq!(got["limit_price"], 1.0);

    let r = c
        .delete(b.url(&format!("/api/v1/orders/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "cancelled");
    let r = c
        .delete(b.url(&format!("/api/v1/orders/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 409);
    let err = r.json::<Value>().await.unwrap();
    assert!(
        err["error"].as_str().unwrap().contains("cancelled"),
        "{err}"
    );
    let r = c
        .get(b.url("/api/v1/orders/ord-99999999"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let pos = get_json(&c, &b.url("/api/v1/positions")).await;
    let p = &pos["positions"][0];
    assert_eq!(p["symbol"], "NIFTY");
    assert_eq!(p["qty"], 3.0);
    assert!((p["cash"].as_f64().unwrap() + 3.0 * fill).abs() < 1e-6);
}

fn for_account(account: &str, side: &str, kind: &str, cid: &str) -> Value {
    let mut o = json!({"symbol": "NIFTY", "side": side, "qty": 2, "type": kind,
                       "client_order_id": cid, "account": account});
    if kind == "limit" {
        o["limit_price"] = json!(1.0);
    }
    o
}

#[tokio::test]
async fn orders_and_positions_are_kept_and_listed_per_account() {
    let b = PaperBroker::start_capturing_stderr(&[]);
    let c = client();
    let orders = b.url("/api/v1/orders");
    for body in [
        for_account("alice", "buy", "market", "a-1"),
        for_account("alice", "buy", "limit", "a-2"),
        for_account("bob", "sell", "market", "b-1"),
        for_account("bob", "buy", "limit", "b-2"),
        market("d-1"),
    ] {
        let (s, ack) = post(&c, &orders, body).await;
        assert_eq!(s, 200, "{ack}");
    }

    let open = get_json(&c, &b.url("/api/v1/orders?status=open&account=alice")).await;
    let open = open["orders"].as_array().unwrap();
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["client_order_id"], "a-2");
    assert_eq!(open[0]["account"], "alice");
    assert_eq!(open[0]["status"], "accepted");

    let all = get_json(&c, &b.url("/api/v1/orders")).await;
    let ids: Vec<&str> = all["orders"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["client_order_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a-1", "a-2", "b-1", "b-2", "d-1"], "oldest first");
    let every_open = get_json(&c, &b.url("/api/v1/orders?status=open")).await;
    assert_eq!(every_open["orders"].as_array().unwrap().len(), 2);
    let default = get_json(&c, &b.url("/api/v1/orders?account=default")).await;
    assert_eq!(default["orders"][0]["client_order_id"], "d-1");

    let bob = get_json(&c, &b.url("/api/v1/positions?account=bob")).await;
    let bob = bob["positions"].as_array().unwrap();
    assert_eq!(bob.len(), 1);
    assert_eq!(
        (bob[0]["account"].as_str(), bob[0]["qty"].as_f64()),
        (Some("bob"), Some(-2.0))
    );
    let every = get_json(&c, &b.url("/api/v1/positions")).await;
    let every: Vec<(String, f64)> = every["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["account"].as_str().unwrap().to_string(),
                p["qty"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        every,
        [
            ("alice".into(), 2.0),
            ("bob".into(), -2.0),
            ("default".into(), 3.0)
        ]
    );

    let r = c
        .get(b.url("/api/v1/orders?status=pending"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let e = r.json::<Value>().await.unwrap();
    assert!(e["error"].as_str().unwrap().starts_with("status:"), "{e}");
    let r = c
        .get(b.url("/api/v1/positions?acount=bob"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn resting_limit_order_fills_when_the_simulated_price_crosses_it() {
    // A 2 s price period makes the ±0.5 % oscillation cross a limit 0.2 % below the current
    // mid within about one period.
    let b = PaperBroker::start_capturing_stderr(&["--price-period", "2s"]);
    let c = client();
    let q = get_json(&c, &b.url("/api/v1/quotes/NIFTY")).await;
    let mid = q["mid"].as_f64().unwrap();
    let limit = (mid * 0.998 * 100.0).round() / 100.0;
    let (_, ack) = post(
        &c,
        &b.url("/api/v1/orders"),
        json!({"symbol": "NIFTY", "side": "buy", "qty": 1, "type": "limit", "limit_price": limit}),
    )
    .await;
    let id = ack["order_id"].as_str().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(6);
    let mut last = Value::Null;
    while Instant::now() < deadline {
        last = get_json(&c, &b.url(&format!("/api/v1/orders/{id}"))).await;
        if last["status"] == "filled" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["status"], "filled", "{last}");
    assert!(last["filled_price"].as_f64().unwrap() <= limit);
}

#[tokio::test]
async fn duplicate_client_order_id_is_rejected_with_409() {
    let b = PaperBroker::start_capturing_stderr(&[]);
    let c = client();
    let (s1, a1) = post(&c, &b.url("/api/v1/orders"), market("dup-1")).await;
    let (s2, a2) = post(&c, &b.url("/api/v1/orders"), market("dup-1")).await;
    assert_eq!((s1, a1["status"].as_str()), (200, Some("filled")));
    assert_eq!(s2, 409);
    assert_eq!(a2["status"], "rejected");
    assert_eq!(a2["reason"], "duplicate client_order_id");
    assert!(a2["order_id"].is_null());
}

#[tokio::test]
async fn invalid_orders_get_a_4xx_json_error() {
    let b = PaperBroker::start_capturing_stderr(&[]);
    let c = client();
    let url = b.url("/api/v1/orders");
    for body in [
        json!({"symbol": "NIFTY", "side": "buy", "qty": 1, "type": "limit"}),
        json!({"symbol": "NIFTY", "side": "hold", "qty": 1, "type": "market"}),
        json!({"symbol": "NIFTY", "side": "buy", "qty": -1, "type": "market"}),
        json!({"symbol": "NIFTY", "side": "buy", "qty": 1, "type": "market", "colour": "red"}),
    ] {
        let (s, v) = post(&c, &url, body.clone()).await;
        assert_eq!(s, 400, "{body}");
        assert!(
            v["error"].as_str().unwrap().starts_with("invalid order"),
            "{v}"
        );
    }
    let r = c.post(&url).body("not json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn api_key_is_required_when_configured_but_not_for_health() {
    let b = PaperBroker::start_capturing_stderr(&["--api-key", "s3cret"]);
    let c = client();
    let url = b.url("/api/v1/orders");
    let r = c.post(&url).json(&market("a-1")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = c
        .post(&url)
        .bearer_auth("wrong")
        .json(&market("a-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c
        .post(&url)
        .bearer_auth("s3cret")
        .json(&market("a-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = c.post(b.url("/admin/unhealthy")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = c.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn health_toggles_by_admin_endpoint_and_sigusr1() {
    let b = PaperBroker::start_capturing_stderr(&[]);
    let c = client();
    let health = || async {
        c.get(b.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(health().await, 200);
    c.post(b.url("/admin/unhealthy")).send().await.unwrap();
    assert_eq!(health().await, 503);
    c.post(b.url("/admin/healthy")).send().await.unwrap();
    assert_eq!(health().await, 200);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(b.pid()),
        nix::sys::signal::Signal::SIGUSR1,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while health().await != 503 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(health().await, 503);
}

#[tokio::test]
async fn injected_errors_latency_and_metrics() {
    let b = PaperBroker::start_capturing_stderr(&["--error-rate", "1", "--latency", "150ms"]);
    let c = client();
    let started = Instant::now();
    let (s, v) = post(&c, &b.url("/api/v1/orders"), market("e-1")).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(s, 503);
    assert_eq!(v["error"], "injected fault");
    let m = c
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for line in [
        "prodready_paper_orders_total{status=\"error\"} 1",
        "prodready_paper_order_latency_seconds_count 1",
        "prodready_paper_order_latency_seconds_bucket{le=\"0.1\"} 0",
        "prodready_paper_order_latency_seconds_bucket{le=\"0.5\"} 1",
        "prodready_paper_open_orders 0",
    ] {
        assert!(m.contains(line), "{line} missing in\n{m}");
    }
}

#[tokio::test]
async fn a_stall_holds_requests_until_it_ends() {
    // The broker's clock starts after `spawned` and before it prints its address (`ready`), so
    // its stall, 1 s to 6 s broker time, covers [ready + 1 s, spawned + 6 s] of ours. Only
    // orders of events are asserted, no durations a busy machine could miss.
    let spawned = Instant::now();
    let b = PaperBroker::start_capturing_stderr(&["--stall-after", "1s", "--stall-for", "5s"]);
    let ready = Instant::now();
    let c = client();
    tokio::time::sleep_until((ready + Duration::from_millis(1100)).into()).await;
    let sent = Instant::now();
    assert!(
        sent < spawned + Duration::from_secs(6),
        "the order was sent {:?} after the broker started, after its stall",
        sent - spawned
    );
    let (s, _) = post(&c, &b.url("/api/v1/orders"), market("s-1")).await;
    let answered = Instant::now();
    assert_eq!(s, 200);
    // Sent inside the stall, answered only after it ended.
    assert!(
        answered >= spawned + Duration::from_secs(6),
        "answered {:?} after the broker started, before its stall ended",
        answered - spawned
    );
    // After the stall, requests flow again: far quicker than the held one.
    let t = Instant::now();
    let (s, _) = post(&c, &b.url("/api/v1/orders"), market("s-2")).await;
    assert_eq!(s, 200);
    assert!(t.elapsed() * 2 < answered - sent, "{:?}", t.elapsed());
}

fn rss_kib(pid: i32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn leak_per_order_really_grows_resident_memory() {
    let b = PaperBroker::start_capturing_stderr(&["--leak-per-order", "1MiB"]);
    let c = client();
    post(&c, &b.url("/api/v1/orders"), market("warm")).await;
    let before = rss_kib(b.pid());
    for i in 0..64 {
        post(&c, &b.url("/api/v1/orders"), market(&format!("leak-{i}"))).await;
    }
    let after = rss_kib(b.pid());
    assert!(
        after >= before + 60 * 1024,
        "RSS grew only from {before} KiB to {after} KiB"
    );
    let m = c
        .get(b.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains(&format!(
        "prodready_paper_retained_bytes {}",
        65 * 1024 * 1024
    )));
}

#[test]
fn sigterm_stops_within_10_s_finishing_in_flight_requests_and_logs_a_summary() {
    // A 30 s stall from 0.5 s holds the in-flight request; shutdown must cut it short.
    let mut b =
        PaperBroker::start_capturing_stderr(&["--stall-after", "500ms", "--stall-for", "30s"]);
    let addr = b.addr.clone();
    std::thread::sleep(Duration::from_millis(700));
    let in_flight = std::thread::spawn(move || {
        use std::io::Write;
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        let body =
            r#"{"symbol":"NIFTY","side":"buy","qty":1,"type":"market","client_order_id":"t-1"}"#;
        write!(
            s,
            "POST /api/v1/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut resp = String::new();
        let _ = s.read_to_string(&mut resp);
        resp
    });
    std::thread::sleep(Duration::from_millis(300));
    let t = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(b.pid()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = loop {
        if let Some(s) = b.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "still running after 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let resp = in_flight.join().unwrap();
    assert!(
        resp.starts_with("HTTP/1.1 200"),
        "in-flight request: {resp:?}"
    );
    assert!(resp.contains("\"status\":\"filled\""), "{resp}");
    let mut err = String::new();
    b.child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("SIGTERM"), "{err}");
    assert!(err.contains("stopped after"), "{err}");
    assert!(err.contains("1 orders (filled 1"), "{err}");
}

async fn set_faults(c: &reqwest::Client, b: &PaperBroker, body: &str) -> (u16, Value) {
    let r = c
        .post(b.url("/admin/faults"))
        .bearer_auth("k")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn runtime_faults_are_set_shown_and_cleared_back_to_the_command_line() {
    let b = PaperBroker::start_capturing_stderr(&["--api-key", "k", "--latency", "5ms"]);
    let c = client();
    let health = || async {
        c.get(b.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let (s, v) = set_faults(
        &c,
        &b,
        r#"{"unhealthy": true, "error_rate": 1, "jitter": "10ms"}"#,
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["unhealthy"], true);
    assert_eq!(v["error_rate"], 1.0);
    assert_eq!(v["latency"], "5ms", "the command line stays in effect");
    assert_eq!(v["jitter"], "10ms");
    assert_eq!(health().await, 503);
    let r = c
        .post(b.url("/api/v1/orders"))
        .bearer_auth("k")
        .json(&market("f-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 503);

    // Absent fields stay as they are.
    let (_, v) = set_faults(&c, &b, r#"{"latency": "1ms"}"#).await;
    assert_eq!(
        (v["unhealthy"].as_bool(), v["error_rate"].as_f64()),
        (Some(true), Some(1.0))
    );
    let shown: Value = c
        .get(b.url("/admin/faults"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown, v);

    let r = c
        .delete(b.url("/admin/faults"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["unhealthy"], false);
    assert_eq!(v["error_rate"], 0.0);
    assert_eq!(v["latency"], "5ms");
    assert_eq!(v["runtime_overrides"], json!([]));
    assert_eq!(health().await, 200);
    let r = c
        .post(b.url("/api/v1/orders"))
        .bearer_auth("k")
        .json(&market("f-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);

    // Behind the admin key like the other admin routes.
    let r = c.get(b.url("/admin/faults")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn bad_runtime_faults_get_400_naming_the_field() {
    let b = PaperBroker::start_capturing_stderr(&["--api-key", "k"]);
    let c = client();
    for (body, field) in [
        (r#"{"error_rate": 2}"#, "error_rate"),
        (r#"{"error_rate": "high"}"#, "error_rate"),
        (r#"{"latency": "50"}"#, "latency"),
        (r#"{"jitter": "soon"}"#, "jitter"),
        (r#"{"stall_for": 3}"#, "stall_for"),
        (r#"{"reject_logins": "yes"}"#, "reject_logins"),
        (r#"{"unhealty": true}"#, "unhealty"),
        ("not json", "invalid faults"),
    ] {
        let (s, v) = set_faults(&c, &b, body).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert!(v["error"].as_str().unwrap().contains(field), "{body}: {v}");
    }
}

#[tokio::test]
async fn reject_logins_answers_401_not_logged_in_while_health_stays_200() {
    let b = PaperBroker::start_capturing_stderr(&["--api-key", "k"]);
    let c = client();
    let (s, _) = set_faults(&c, &b, r#"{"reject_logins": true}"#).await;
    assert_eq!(s, 200);
    for r in [
        c.post(b.url("/api/v1/orders"))
            .bearer_auth("k")
            .json(&market("r-1")),
        c.get(b.url("/api/v1/positions")).bearer_auth("k"),
        c.get(b.url("/api/v1/orders?status=open")).bearer_auth("k"),
    ] {
        let r = r.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401);
        assert_eq!(
            r.json::<Value>().await.unwrap(),
            json!({"error": "not logged in"})
        );
    }
    let r = c.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, v) = set_faults(&c, &b, r#"{"reject_logins": false}"#).await;
    assert_eq!(v["reject_logins"], false);
    let r = c
        .get(b.url("/api/v1/positions"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

#[tokio::test]
async fn a_runtime_stall_holds_health_checks_until_it_ends_or_is_cleared() {
    let b = PaperBroker::start_capturing_stderr(&["--api-key", "k"]);
    let c = client();
    let (s, v) = set_faults(&c, &b, r#"{"stall_for": "1h"}"#).await;
    assert_eq!(s, 200);
    assert!(v["stall_remaining"].is_string(), "{v}");
    // A health check with a short timeout is held by the stall…
    let held = c
        .get(b.url("/healthz"))
        .timeout(Duration::from_millis(500))
        .send()
        .await;
    assert!(held.as_ref().is_err_and(|e| e.is_timeout()), "{held:?}");
    // …while /admin still answers, and clearing the faults ends the stall for new requests.
    let r = c
        .delete(b.url("/admin/faults"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["stall_remaining"],
        Value::Null
    );
    let r = c.get(b.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
