//! The example trading agent (`examples/trading_agent.rs`) against the real paper broker, with
//! a Telegram-style notification receiver on an ephemeral loopback port: the four failure
//! scenarios, backup/restore, and that each seeded defect twin really breaks its behaviour.
//!
//! Every wait polls an end state (SQLite state, broker orders, exit status) under a generous
//! deadline; nothing asserts how fast the agent is.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

mod common;

use common::{ChildGuard, PaperBroker, agent_bin};

const DEADLINE: Duration = Duration::from_secs(20);
const API_KEY: &str = "drill-key";

/// A Telegram-style receiver: records the `text` of every `POST …/sendMessage`.
struct Receiver {
    base: String,
    texts: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> Receiver {
        use axum::extract::State;
        let texts: Arc<Mutex<Vec<String>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/{bot}/sendMessage",
                axum::routing::post(
                    |State(t): State<Arc<Mutex<Vec<String>>>>, body: axum::Json<Value>| async move {
                        assert_eq!(body["chat_id"], "ops");
                        t.lock()
                            .unwrap()
                            .push(body["text"].as_str().unwrap_or_default().to_string());
                        axum::Json(json!({"ok": true}))
                    },
                ),
            )
            .with_state(texts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { base, texts }
    }

    fn texts(&self) -> Vec<String> {
        self.texts.lock().unwrap().clone()
    }
}

/// The agent process; its stderr goes to a file shown when a wait fails.
struct Agent {
    child: ChildGuard,
    db: PathBuf,
    log: PathBuf,
    dir: tempfile::TempDir,
}

impl Agent {
    fn start(broker: &str, notify: &str, extra: &[&str]) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("state.db");
        let log = dir.path().join("agent.log");
        let child = Command::new(agent_bin())
            .args(["--broker", broker, "--api-key", API_KEY, "--notify", notify])
            .arg("--state-db")
            .arg(&db)
            .args(["--check-every", "100ms", "--throttle", "1h"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the agent");
        Agent {
            child: ChildGuard(child),
            db,
            log,
            dir,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `(current_state, error_reason, notification_count)`; `None` before the agent made it.
    fn state(&self) -> Option<(String, Option<String>, i64)> {
        let c = rusqlite::Connection::open_with_flags(
            &self.db,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .ok()?;
        c.busy_timeout(Duration::from_secs(5)).ok()?;
        c.query_row(
            "SELECT current_state, error_reason, notification_count FROM operational_state",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .ok()
    }

    fn query_i64(&self, sql: &str) -> i64 {
        let c = rusqlite::Connection::open(&self.db).unwrap();
        c.busy_timeout(Duration::from_secs(5)).unwrap();
        c.query_row(sql, [], |r| r.get(0)).unwrap()
    }

    async fn wait_state(&self, want: &str) -> (String, Option<String>, i64) {
        let t = Instant::now();
        loop {
            if let Some(s) = self.state()
                && s.0 == want
            {
                return s;
            }
            assert!(
                t.elapsed() < DEADLINE,
                "no {want} within {DEADLINE:?}; state {:?}; agent stderr:\n{}",
                self.state(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn signal(&self, s: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), s).unwrap();
    }

    async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let t = Instant::now();
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                t.elapsed() < DEADLINE,
                "still running after {DEADLINE:?}; agent stderr:\n{}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Poll until `f` holds, or fail with `what` and the agent's stderr.
async fn until(agent: &Agent, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let t = Instant::now();
    while !f().await {
        assert!(
            t.elapsed() < DEADLINE,
            "{what}: not within {DEADLINE:?}; agent stderr:\n{}",
            agent.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn broker() -> PaperBroker {
    PaperBroker::start(&["--api-key", API_KEY])
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn faults(b: &PaperBroker, method: reqwest::Method, body: &str) {
    let r = http()
        .request(method, b.url("/admin/faults"))
        .bearer_auth(API_KEY)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}

async fn get(b: &PaperBroker, path: &str) -> Value {
    http()
        .get(b.url(path))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn open_orders(b: &PaperBroker, account: &str) -> usize {
    let v = get(b, &format!("/api/v1/orders?status=open&account={account}")).await;
    v["orders"].as_array().unwrap().len()
}

/// An agent on a healthy broker, ACTIVE with its resting order placed.
async fn active_agent(b: &PaperBroker, r: &Receiver, extra: &[&str]) -> Agent {
    let a = Agent::start(&b.base(), &r.base, extra);
    a.wait_state("ACTIVE").await;
    until(&a, "one open order", async || {
        open_orders(b, "agent").await == 1
    })
    .await;
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_waits_notifying_once_recovers_and_a_repeat_within_the_throttle_is_only_logged() {
    let b = broker();
    let r = Receiver::start().await;
    let a = active_agent(&b, &r, &[]).await;
    let waiting = "WAITING: broker unreachable: GET /healthz: HTTP 503";

    faults(&b, reqwest::Method::POST, r#"{"unhealthy": true}"#).await;
    let (_, reason, _) = a.wait_state("WAITING").await;
    assert_eq!(
        reason.as_deref(),
        Some("broker unreachable: GET /healthz: HTTP 503")
    );
    let occurrences = format!(
        "SELECT occurrence_count FROM error_notifications_log WHERE error_text = '{waiting}'"
    );
    until(&a, "five failed checks while WAITING", async || {
        a.query_i64(&occurrences) >= 5
    })
    .await;
    assert_eq!(r.texts(), [waiting]);
    assert_eq!(a.state().unwrap().2, 1, "notification_count");
    assert!(a.stderr().contains("notification throttled"));

    faults(&b, reqwest::Method::DELETE, "").await;
    let (_, reason, _) = a.wait_state("ACTIVE").await;
    assert_eq!(reason, None);
    until(&a, "the recovery notification", async || {
        r.texts().len() == 2
    })
    .await;
    assert!(r.texts()[1].starts_with("RECOVERED: "), "{:?}", r.texts());
    assert!(
        a.stderr()
            .contains("state ACTIVE -> WAITING: broker unreachable")
    );
    assert!(a.stderr().contains("state WAITING -> ACTIVE"));

    // Scenario 4: the same outage again within the throttle window is counted and logged,
    // not notified, and neither is its recovery.
    let before = a.query_i64(&occurrences);
    faults(&b, reqwest::Method::POST, r#"{"unhealthy": true}"#).await;
    a.wait_state("WAITING").await;
    until(&a, "more occurrences", async || {
        a.query_i64(&occurrences) > before
    })
    .await;
    faults(&b, reqwest::Method::DELETE, "").await;
    a.wait_state("ACTIVE").await;
    let notified = format!(
        "SELECT notification_count FROM error_notifications_log WHERE error_text = '{waiting}'"
    );
    assert_eq!(a.query_i64(&notified), 1);
    assert_eq!(r.texts().len(), 2, "{:?}", r.texts());
    assert_eq!(a.state().unwrap().2, 2, "notification_count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_cancels_own_open_orders_flattens_positions_and_stops() {
    let b = broker();
    let r = Receiver::start().await;
    // Another account's resting order must survive the agent's shutdown.
    let other = http()
        .post(b.url("/api/v1/orders"))
        .bearer_auth(API_KEY)
        .json(
            &json!({"symbol": "AAPL", "side": "buy", "qty": 1, "type": "limit",
                      "limit_price": 1.0, "account": "other"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 200);
    let mut a = active_agent(&b, &r, &[]).await;
    let pos = get(&b, "/api/v1/positions?account=agent").await;
    assert_eq!(pos["positions"][0]["qty"], 1.0);

    a.signal(nix::sys::signal::Signal::SIGTERM);
    let status = a.wait_exit().await;
    assert!(status.success(), "{status:?}\n{}", a.stderr());
    assert_eq!(open_orders(&b, "agent").await, 0);
    assert_eq!(open_orders(&b, "other").await, 1);
    let pos = get(&b, "/api/v1/positions?account=agent").await;
    assert!(
        pos["positions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["qty"] == 0.0),
        "{pos}"
    );
    let (state, reason, _) = a.state().unwrap();
    assert_eq!(state, "STOPPED");
    assert_eq!(
        reason.as_deref(),
        Some("SIGTERM: cancelled 1 open orders, flattened 1 positions")
    );
    assert_eq!(
        r.texts().last().map(String::as_str),
        Some("STOPPED: SIGTERM: cancelled 1 open orders, flattened 1 positions")
    );
    // The buy, the resting limit, and the flattening sell.
    assert_eq!(a.query_i64("SELECT count(*) FROM trades"), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_broker_login_puts_the_agent_in_error_once_and_it_stays_up_idle() {
    let b = broker();
    let r = Receiver::start().await;
    faults(&b, reqwest::Method::POST, r#"{"reject_logins": true}"#).await;
    let mut a = Agent::start(&b.base(), &r.base, &[]);
    let (_, reason, _) = a.wait_state("ERROR").await;
    let reason = reason.unwrap();
    assert!(reason.contains("401 not logged in"), "{reason}");
    until(&a, "the ERROR notification", async || r.texts().len() == 1).await;
    assert_eq!(r.texts(), [format!("ERROR: {reason}")]);
    // Ten check periods later: still running, still ERROR, nothing retried or re-notified.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(a.child.try_wait().unwrap().is_none(), "{}", a.stderr());
    assert_eq!(a.state().unwrap().0, "ERROR");
    assert_eq!(
        a.query_i64("SELECT sum(occurrence_count) FROM error_notifications_log"),
        1
    );
    assert_eq!(r.texts().len(), 1);
    a.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(a.wait_exit().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_at_start_waits_while_the_crash_loop_twin_exits_1() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let r = Receiver::start().await;
    let mut good = Agent::start(&closed, &r.base, &[]);
    let (_, reason, _) = good.wait_state("WAITING").await;
    assert!(reason.unwrap().contains("connection refused"));
    let mut twin = Agent::start(&closed, &r.base, &["--defect", "crash-loop"]);
    let status = twin.wait_exit().await;
    assert_eq!(status.code(), Some(1), "{}", twin.stderr());
    assert!(
        good.child.try_wait().unwrap().is_none(),
        "{}",
        good.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_every_failure_twin_notifies_each_failed_check() {
    let b = broker();
    let r = Receiver::start().await;
    faults(&b, reqwest::Method::POST, r#"{"unhealthy": true}"#).await;
    let a = Agent::start(&b.base(), &r.base, &["--defect", "notify-every-failure"]);
    until(&a, "five notifications", async || r.texts().len() >= 5).await;
    assert!(
        r.texts()
            .iter()
            .all(|t| t.starts_with("WAITING: broker unreachable")),
        "{:?}",
        r.texts()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ignore_sigterm_twin_keeps_running_until_killed() {
    let b = broker();
    let r = Receiver::start().await;
    let mut a = active_agent(&b, &r, &["--defect", "ignore-sigterm"]).await;
    a.signal(nix::sys::signal::Signal::SIGTERM);
    until(&a, "SIGTERM ignored", async || {
        a.stderr().contains("SIGTERM ignored")
    })
    .await;
    assert!(a.child.try_wait().unwrap().is_none());
    assert_eq!(a.state().unwrap().0, "ACTIVE");
    a.signal(nix::sys::signal::Signal::SIGKILL);
    let status = a.wait_exit().await;
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9)
    );
    assert_eq!(open_orders(&b, "agent").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cancel_twin_exits_0_leaving_its_open_order_and_position() {
    let b = broker();
    let r = Receiver::start().await;
    let mut a = active_agent(&b, &r, &["--defect", "no-cancel"]).await;
    a.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(a.wait_exit().await.success());
    assert_eq!(a.state().unwrap().0, "STOPPED");
    assert_eq!(open_orders(&b, "agent").await, 1);
    let pos = get(&b, "/api/v1/positions?account=agent").await;
    assert_eq!(pos["positions"][0]["qty"], 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigusr1_kill_switch_cancels_flattens_halts_notifies_once_and_keeps_running() {
    let b = broker();
    let r = Receiver::start().await;
    let mut a = active_agent(&b, &r, &[]).await;
    a.signal(nix::sys::signal::Signal::SIGUSR1);
    let (_, reason, _) = a.wait_state("HALTED").await;
    assert_eq!(
        reason.as_deref(),
        Some("kill switch (SIGUSR1): cancelled 1 open orders, flattened 1 positions")
    );
    assert_eq!(open_orders(&b, "agent").await, 0);
    let trades_halted = a.query_i64("SELECT count(*) FROM trades");
    // A second trigger changes nothing; the agent keeps checking (every 100 ms) and places
    // no order, though its book is empty again: the count of trades stays as it was.
    a.signal(nix::sys::signal::Signal::SIGUSR1);
    until(&a, "the second trigger logged", async || {
        a.stderr().contains("already engaged")
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(a.query_i64("SELECT count(*) FROM trades"), trades_halted);
    assert_eq!(open_orders(&b, "agent").await, 0);
    let kills: Vec<String> = r
        .texts()
        .into_iter()
        .filter(|t| t.starts_with("KILL SWITCH"))
        .collect();
    assert_eq!(
        kills,
        ["KILL SWITCH: cancelled 1 open orders, flattened 1 positions"]
    );
    a.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(a.wait_exit().await.success(), "{}", a.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_leaves_order_twin_flattens_but_leaves_its_resting_order() {
    let b = broker();
    let r = Receiver::start().await;
    let a = active_agent(&b, &r, &["--defect", "kill-leaves-order"]).await;
    a.signal(nix::sys::signal::Signal::SIGUSR1);
    a.wait_state("HALTED").await;
    assert_eq!(open_orders(&b, "agent").await, 1);
}

/// Trades `(id, symbol, side, qty, price)` in a state database.
fn trades(db: &Path) -> Vec<(i64, String, String, f64, f64)> {
    let c = rusqlite::Connection::open(db).unwrap();
    let mut s = c
        .prepare("SELECT id, symbol, side, qty, price FROM trades ORDER BY id")
        .unwrap();
    s.query_map([], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
    })
    .unwrap()
    .map(Result::unwrap)
    .collect()
}

fn agent_cmd(args: &[&std::ffi::OsStr]) -> std::process::Output {
    Command::new(agent_bin()).args(args).output().unwrap()
}

/// Back up a running agent's database, stop it (a trade more), restore the backup with
/// `defect` (or none) and return (trades in the backup, trades after the restore).
async fn backup_stop_restore(
    defect: Option<&str>,
) -> (
    Vec<(i64, String, String, f64, f64)>,
    Vec<(i64, String, String, f64, f64)>,
) {
    let b = broker();
    let r = Receiver::start().await;
    let mut a = active_agent(&b, &r, &[]).await;
    until(&a, "two trades", async || {
        a.query_i64("SELECT count(*) FROM trades") == 2
    })
    .await;
    let backup = a.dir.path().join("backup.db");
    let out = agent_cmd(&[
        "backup".as_ref(),
        "--state-db".as_ref(),
        a.db.as_os_str(),
        "--to".as_ref(),
        backup.as_os_str(),
    ]);
    assert!(out.status.success(), "{out:?}");
    a.signal(nix::sys::signal::Signal::SIGTERM);
    assert!(a.wait_exit().await.success());
    assert_eq!(
        trades(&a.db).len(),
        3,
        "the flattening sell came after the backup"
    );

    let mut args: Vec<&std::ffi::OsStr> = vec![
        "restore".as_ref(),
        "--from".as_ref(),
        backup.as_os_str(),
        "--state-db".as_ref(),
        a.db.as_os_str(),
    ];
    if let Some(d) = defect {
        args.extend([std::ffi::OsStr::new("--defect"), std::ffi::OsStr::new(d)]);
    }
    let out = agent_cmd(&args);
    assert!(out.status.success(), "{out:?}");
    (trades(&backup), trades(&a.db))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_of_a_running_agent_and_restore_round_trip_its_trades() {
    let (backed_up, restored) = backup_stop_restore(None).await;
    assert_eq!(backed_up.len(), 2);
    assert_eq!(restored, backed_up);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lossy_restore_twin_loses_the_newest_trade() {
    let (backed_up, restored) = backup_stop_restore(Some("lossy-restore")).await;
    assert_eq!(backed_up.len(), 2);
    assert_eq!(restored, backed_up[..1]);
}
