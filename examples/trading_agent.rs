//! `trading_agent`: a small but real trading agent, the system under test of the failure drills.
//!
//! It owns what a deployment guide's four failure scenarios check, so a drill can stop its
//! broker, inject faults and read what it did:
//!
//! 1. **Dependency down**: after `--failures-before-wait` consecutive failed health checks it
//!    goes to `WAITING`, notifies once, keeps checking every `--check-every`, never exits; when
//!    the broker is back it goes `ACTIVE` and notifies the recovery.
//! 2. **Broker not logged in**: an authenticated call answered 401 puts it in `ERROR`, notifies
//!    once, and it stays up, idle.
//! 3. **Graceful shutdown**: SIGTERM or SIGINT cancels its account's open orders, flattens its
//!    positions, records `STOPPED`, sends a final notification and exits 0.
//! 4. **Notification throttling**: the same text is notified at most once per `--throttle`;
//!    repeats are logged to stderr and counted in `error_notifications_log`.
//! 5. **Kill switch**: SIGUSR1 or `POST /kill` on `--listen` cancels its account's open
//!    orders, flattens its positions, records `HALTED`, sends one notification and places no
//!    order again until the process is restarted (it keeps running and checking).
//!
//! With `--listen ADDR` it serves `GET /livez` (200 while the process runs), `GET /healthz`
//! (200 when ACTIVE, 503 otherwise, with the state), `GET /version` (`{"version": …, "state":
//! …}`, the version from `--release`) and `POST /kill`; a request carrying `X-Request-Id` is
//! logged to stderr with that ID and the answer's status (`request GET /healthz id=… -> 200`).
//!
//! State lives in SQLite (`--state-db`, WAL, one transaction per change): `operational_state`
//! (one row), `trades` (every acknowledged order) and `error_notifications_log`. The `backup`
//! and `restore` subcommands copy it for a backup/restore drill. `--defect NAME` seeds exactly
//! one broken behaviour, so a drill can prove it would catch it.
//!
//! Every state change is one stderr line, `state ACTIVE -> WAITING: broker unreachable: …`.
//! Exit codes: 0 stopped gracefully or subcommand done, 1 failed (or the `crash-loop` defect),
//! 2 usage.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// The command line: run the agent, or back up / restore its state database.
#[derive(Debug, Parser)]
#[command(
    name = "trading_agent",
    about = "Example trading agent for failure drills",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    #[command(flatten)]
    run: RunArgs,
    /// Seed exactly one defect, so a drill can show it catches it.
    #[arg(long, value_enum, global = true)]
    defect: Option<Defect>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Copy the state database to a new file while the agent may be running (`VACUUM INTO`:
    /// one consistent snapshot).
    Backup {
        /// The agent's state database.
        #[arg(long)]
        state_db: PathBuf,
        /// The backup file to create; must not exist.
        #[arg(long)]
        to: PathBuf,
    },
    /// Replace the state database by a backup (stop the agent first).
    Restore {
        /// The backup file.
        #[arg(long)]
        from: PathBuf,
        /// The state database to replace.
        #[arg(long)]
        state_db: PathBuf,
    },
}

/// Flags of the agent itself.
#[derive(Debug, Clone, clap::Args)]
struct RunArgs {
    /// Broker base URL: health at `{broker}/healthz`, orders at `{broker}/api/v1/…`.
    #[arg(long, required = true)]
    broker: Option<String>,
    /// Broker API key, sent as `Authorization: Bearer KEY`.
    #[arg(long)]
    api_key: Option<String>,
    /// The trading account of every order.
    #[arg(long, default_value = "agent")]
    account: String,
    /// SQLite state database (created if missing).
    #[arg(long, required = true)]
    state_db: Option<PathBuf>,
    /// Telegram-style base URL; notifications are POSTed to `{notify}/bot{token}/sendMessage`.
    /// Without it notifications are only logged.
    #[arg(long)]
    notify: Option<String>,
    /// Bot token in the notification URL.
    #[arg(long, default_value = "TEST:TOKEN")]
    notify_token: String,
    /// Period of health checks, in every state but ERROR.
    #[arg(long, default_value = "5m", value_parser = prodready::units::parse_duration)]
    check_every: Duration,
    /// Consecutive failed health checks before WAITING.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..))]
    failures_before_wait: u32,
    /// The same notification text is sent at most once per this window.
    #[arg(long, default_value = "1h", value_parser = prodready::units::parse_duration)]
    throttle: Duration,
    /// Instrument traded.
    #[arg(long, default_value = "AAPL")]
    symbol: String,
    /// Serve `/livez`, `/healthz`, `/version` and `POST /kill` on this address.
    #[arg(long)]
    listen: Option<std::net::SocketAddr>,
    /// The release this process reports at `/version`.
    #[arg(long, default_value = "1.0.0")]
    release: String,
}

/// Seeded defects: each breaks exactly one behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Defect {
    /// Exit 1 when the broker is down instead of WAITING.
    CrashLoop,
    /// No throttling: notify on every failed health check.
    NotifyEveryFailure,
    /// Ignore SIGTERM (only SIGKILL or SIGINT stop it).
    IgnoreSigterm,
    /// On SIGTERM, exit 0 without cancelling open orders or flattening positions.
    NoCancel,
    /// `restore` drops the newest trade row.
    LossyRestore,
    /// The kill switch flattens positions but leaves resting orders open.
    KillLeavesOrder,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.cmd {
        Some(Cmd::Backup { state_db, to }) => store::backup(&state_db, &to),
        Some(Cmd::Restore { from, state_db }) => {
            store::restore(&from, &state_db, cli.defect == Some(Defect::LossyRestore))
        }
        None => run(cli.run, cli.defect),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("trading_agent: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: RunArgs, defect: Option<Defect>) -> Result<ExitCode, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    rt.block_on(async move {
        let mut signals = Signals::new(defect == Some(Defect::IgnoreSigterm))?;
        let status = control::Status::new(&args.release);
        let (kill_tx, kill_rx) = tokio::sync::mpsc::channel(4);
        if let Some(addr) = args.listen {
            control::serve(addr, status.clone(), kill_tx).await?;
        }
        let mut agent = agent::Agent::new(args, defect, status)?;
        Ok(agent.run(&mut signals, kill_rx).await)
    })
}

/// What interrupts the agent's loop: a stopping signal or a kill-switch trigger.
pub enum Event {
    /// SIGTERM or SIGINT.
    Stop(&'static str),
    /// SIGUSR1 or `POST /kill`.
    Kill(&'static str),
}

/// SIGTERM and SIGINT, the one way to stop the agent, and SIGUSR1, its kill switch.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    ignore_term: bool,
}

impl Signals {
    fn new(ignore_term: bool) -> Result<Signals, String> {
        use tokio::signal::unix::{SignalKind, signal};
        let listen = |k| signal(k).map_err(|e| format!("listening for signals: {e}"));
        Ok(Signals {
            term: listen(SignalKind::terminate())?,
            int: listen(SignalKind::interrupt())?,
            usr1: listen(SignalKind::user_defined1())?,
            ignore_term,
        })
    }

    /// The next stopping signal or kill-switch trigger (`kills`: `POST /kill`).
    async fn recv(&mut self, kills: &mut tokio::sync::mpsc::Receiver<&'static str>) -> Event {
        loop {
            tokio::select! {
                _ = self.term.recv() => {
                    if !self.ignore_term {
                        return Event::Stop("SIGTERM");
                    }
                    eprintln!("SIGTERM ignored");
                }
                _ = self.int.recv() => return Event::Stop("SIGINT"),
                _ = self.usr1.recv() => return Event::Kill("SIGUSR1"),
                Some(by) = kills.recv() => return Event::Kill(by),
            }
        }
    }
}

/// The agent's states, as stored in `operational_state.current_state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Starting,
    Active,
    Waiting,
    Error,
    Halted,
    Stopped,
}

impl State {
    fn as_str(self) -> &'static str {
        match self {
            State::Starting => "STARTING",
            State::Active => "ACTIVE",
            State::Waiting => "WAITING",
            State::Error => "ERROR",
            State::Halted => "HALTED",
            State::Stopped => "STOPPED",
        }
    }
}

mod agent {
    //! The state machine: checks, transitions, notifications, opening and closing positions.

    use std::process::ExitCode;
    use std::time::{Duration, Instant};

    use super::broker::{ApiError, Broker, Side};
    use super::control::Status;
    use super::notify::Notifier;
    use super::store::Store;
    use super::{Defect, Event, RunArgs, Signals, State};

    /// What one round of checks found.
    pub enum Check {
        Healthy,
        Down(String),
        LoggedOut(String),
    }

    pub struct Agent {
        args: RunArgs,
        defect: Option<Defect>,
        store: Store,
        broker: Broker,
        notifier: Notifier,
        state: State,
        failures: u32,
        bought: bool,
        rested: bool,
        outage_notified: bool,
        waiting_since: Option<Instant>,
        /// What `/healthz` and `/version` show.
        status: Status,
    }

    impl Agent {
        pub fn new(args: RunArgs, defect: Option<Defect>, status: Status) -> Result<Agent, String> {
            let db = args.state_db.clone().unwrap_or_default();
            let store = Store::open(&db).map_err(|e| format!("{}: {e}", db.display()))?;
            let broker = Broker::new(
                args.broker.clone().unwrap_or_default(),
                args.api_key.clone(),
                args.account.clone(),
            )?;
            let notifier = Notifier::new(args.notify.as_deref(), &args.notify_token)?;
            let state = store.state().map_err(|e| format!("reading state: {e}"))?;
            let new = state.is_none();
            let state = state.unwrap_or(State::Starting);
            let mut a = Agent {
                args,
                defect,
                store,
                broker,
                notifier,
                state,
                failures: 0,
                bought: false,
                rested: false,
                outage_notified: false,
                waiting_since: None,
                status,
            };
            a.status.set(a.state.as_str());
            if new {
                eprintln!("state NEW -> STARTING: new state database");
            } else {
                a.transition(State::Starting, Some("process start"));
            }
            Ok(a)
        }

        /// Check, act, sleep; until a stopping signal (or the crash-loop defect). A kill-switch
        /// trigger halts trading and the loop goes on.
        pub async fn run(
            &mut self,
            signals: &mut Signals,
            mut kills: tokio::sync::mpsc::Receiver<&'static str>,
        ) -> ExitCode {
            loop {
                let idle = self.state == State::Error;
                let checked = tokio::select! {
                    e = signals.recv(&mut kills) => match e {
                        Event::Stop(s) => return self.shutdown(s).await,
                        Event::Kill(by) => { self.kill(by).await; continue; }
                    },
                    c = self.check(), if !idle => c,
                };
                if let Some(code) = self.apply(checked).await {
                    return code;
                }
                tokio::select! {
                    e = signals.recv(&mut kills) => match e {
                        Event::Stop(s) => return self.shutdown(s).await,
                        Event::Kill(by) => self.kill(by).await,
                    },
                    _ = tokio::time::sleep(self.args.check_every) => {}
                }
            }
        }

        /// The kill switch: cancel, flatten, HALTED, one notification; no order after it. A
        /// second trigger only logs.
        async fn kill(&mut self, by: &str) {
            if self.state == State::Halted {
                eprintln!("kill switch ({by}) already engaged");
                return;
            }
            let leave_orders = self.defect == Some(Defect::KillLeavesOrder);
            let summary =
                match tokio::time::timeout(Duration::from_secs(8), self.close_out(leave_orders))
                    .await
                {
                    Ok(Ok((c, f))) => format!("cancelled {c} open orders, flattened {f} positions"),
                    Ok(Err(e)) => format!("cleanup incomplete: {e}"),
                    Err(_) => "cleanup incomplete: the broker did not answer within 8s".into(),
                };
            // The book is closed: only the halt keeps the strategy from opening it again.
            self.bought = false;
            self.rested = false;
            let reason = format!("kill switch ({by}): {summary}");
            self.transition(State::Halted, Some(&reason));
            self.send(&format!("KILL SWITCH: {summary}")).await;
        }

        /// Health, then login (an authenticated read). Read-only, so a signal may cut it short.
        async fn check(&self) -> Check {
            if let Err(e) = self.broker.health().await {
                return Check::Down(e);
            }
            match self.broker.positions().await {
                Ok(_) => Check::Healthy,
                Err(ApiError::NotLoggedIn(m)) => Check::LoggedOut(m),
                Err(ApiError::Failed(m)) => Check::Down(m),
            }
        }

        async fn apply(&mut self, c: Check) -> Option<ExitCode> {
            match c {
                Check::Healthy if self.state == State::Halted => self.failures = 0,
                Check::Healthy => {
                    self.failures = 0;
                    if matches!(self.state, State::Starting | State::Waiting) {
                        let was = self.state;
                        self.transition(State::Active, None);
                        if was == State::Waiting {
                            self.recovered().await;
                        }
                    }
                    if self.state == State::Active {
                        self.open_positions().await;
                    }
                }
                Check::LoggedOut(m) => self.logged_out(&m).await,
                Check::Down(m) => return self.down(&m).await,
            }
            None
        }

        async fn logged_out(&mut self, m: &str) {
            let reason = format!("broker not logged in: {m}");
            self.transition(State::Error, Some(&reason));
            self.alert(&format!("ERROR: {reason}")).await;
        }

        async fn down(&mut self, m: &str) -> Option<ExitCode> {
            self.failures += 1;
            let text = format!("WAITING: broker unreachable: {m}");
            if self.state == State::Waiting {
                eprintln!("health check failed, still WAITING: {m}");
                self.alert(&text).await;
                return None;
            }
            let n = self.args.failures_before_wait;
            if self.state == State::Halted {
                eprintln!("health check failed while HALTED: {m}");
                return None;
            }
            if self.failures < n {
                eprintln!("health check failed ({}/{n}): {m}", self.failures);
                if self.defect == Some(Defect::NotifyEveryFailure) {
                    self.alert(&text).await;
                }
                return None;
            }
            if self.defect == Some(Defect::CrashLoop) {
                eprintln!("fatal: broker unreachable after {n} checks: {m}; exiting");
                return Some(ExitCode::FAILURE);
            }
            self.transition(State::Waiting, Some(&format!("broker unreachable: {m}")));
            self.waiting_since = Some(Instant::now());
            self.outage_notified = false;
            self.alert(&text).await;
            None
        }

        async fn recovered(&mut self) {
            let outage = self
                .waiting_since
                .take()
                .map(|t| humantime::format_duration(round_ms(t.elapsed())).to_string())
                .unwrap_or_default();
            let text = format!("RECOVERED: broker reachable again after {outage}");
            if self.outage_notified {
                self.send(&text).await;
            } else {
                eprintln!("not notified (the outage was not notified either): {text}");
            }
        }

        /// Notify an error, at most once per `--throttle` for the same text (no throttle with
        /// the notify-every-failure defect); every occurrence is counted.
        async fn alert(&mut self, text: &str) {
            let now_ms = jiff::Timestamp::now().as_millisecond();
            let last = match self.store.note_occurrence(text) {
                Ok(last) => last,
                Err(e) => {
                    eprintln!("recording a notification: {e}");
                    None
                }
            };
            let window_ms = self.args.throttle.as_millis() as i64;
            if self.defect != Some(Defect::NotifyEveryFailure)
                && let Some(last) = last
                && now_ms - last < window_ms
            {
                let ago = Duration::from_millis((now_ms - last).max(0) as u64);
                eprintln!(
                    "notification throttled (same text sent {} ago, within --throttle {}): {text}",
                    humantime::format_duration(round_ms(ago)),
                    humantime::format_duration(self.args.throttle),
                );
                return;
            }
            if self.send(text).await {
                if let Err(e) = self.store.mark_notified(text, now_ms) {
                    eprintln!("recording a notification: {e}");
                }
                if self.state == State::Waiting {
                    self.outage_notified = true;
                }
            }
        }

        /// Send one notification; true when the receiver took it (and then it is counted).
        async fn send(&mut self, text: &str) -> bool {
            let sent = self.notifier.send(text).await;
            if sent && let Err(e) = self.store.count_notification() {
                eprintln!("counting a notification: {e}");
            }
            sent
        }

        fn transition(&mut self, to: State, reason: Option<&str>) {
            let from = self.state;
            match self.store.transition(to, reason) {
                Ok(()) => {
                    self.state = to;
                    self.status.set(to.as_str());
                    eprintln!(
                        "state {} -> {}: {}",
                        from.as_str(),
                        to.as_str(),
                        reason.unwrap_or("ok")
                    );
                }
                Err(e) => eprintln!("recording state {}: {e}", to.as_str()),
            }
        }

        /// Once ACTIVE: a small filled position and one resting limit order far below the
        /// market. Each is retried on the next healthy check until acknowledged.
        async fn open_positions(&mut self) {
            let symbol = self.args.symbol.clone();
            if !self.bought {
                match self.broker.place(&symbol, Side::Buy, 1.0, None).await {
                    Ok(ack) => {
                        self.bought = true;
                        self.record_trade(&symbol, Side::Buy, 1.0, ack.price);
                    }
                    Err(e) => return self.order_failed(e).await,
                }
            }
            if !self.rested {
                let mid = self.broker.quote(&symbol).await.unwrap_or(100.0);
                let limit = (mid * 50.0).round() / 100.0;
                match self
                    .broker
                    .place(&symbol, Side::Buy, 1.0, Some(limit))
                    .await
                {
                    Ok(ack) => {
                        self.rested = true;
                        self.record_trade(&symbol, Side::Buy, 1.0, ack.price);
                    }
                    Err(e) => self.order_failed(e).await,
                }
            }
        }

        async fn order_failed(&mut self, e: ApiError) {
            match e {
                ApiError::NotLoggedIn(m) => self.logged_out(&m).await,
                ApiError::Failed(m) => eprintln!("order failed (retried on the next check): {m}"),
            }
        }

        fn record_trade(&mut self, symbol: &str, side: Side, qty: f64, price: f64) {
            if let Err(e) = self.store.record_trade(symbol, side.as_str(), qty, price) {
                eprintln!("recording a trade: {e}");
            }
        }

        /// Cancel, flatten, record STOPPED, notify; within 8 s whatever the broker does.
        async fn shutdown(&mut self, signal: &str) -> ExitCode {
            eprintln!("{signal} received; shutting down");
            let summary = if self.defect == Some(Defect::NoCancel) {
                "open orders and positions left as they are".to_string()
            } else {
                match tokio::time::timeout(Duration::from_secs(8), self.close_out(false)).await {
                    Ok(Ok((cancelled, flattened))) => format!(
                        "cancelled {cancelled} open orders, flattened {flattened} positions"
                    ),
                    Ok(Err(e)) => format!("cleanup incomplete: {e}"),
                    Err(_) => "cleanup incomplete: the broker did not answer within 8s".into(),
                }
            };
            let reason = format!("{signal}: {summary}");
            self.transition(State::Stopped, Some(&reason));
            self.send(&format!("STOPPED: {reason}")).await;
            ExitCode::SUCCESS
        }

        /// Cancel every open order of the account (none with `leave_orders`, the seeded
        /// defect), then trade every position back to flat. Returns (orders cancelled,
        /// positions flattened).
        async fn close_out(&mut self, leave_orders: bool) -> Result<(usize, usize), String> {
            let mut cancelled = 0;
            let open = if leave_orders {
                Vec::new()
            } else {
                self.broker.open_orders().await.map_err(|e| e.to_string())?
            };
            for id in open {
                self.broker.cancel(&id).await.map_err(|e| e.to_string())?;
                cancelled += 1;
            }
            let mut flattened = 0;
            for (symbol, qty) in self.broker.positions().await.map_err(|e| e.to_string())? {
                if qty == 0.0 {
                    continue;
                }
                let side = if qty > 0.0 { Side::Sell } else { Side::Buy };
                let ack = self
                    .broker
                    .place(&symbol, side, qty.abs(), None)
                    .await
                    .map_err(|e| e.to_string())?;
                self.record_trade(&symbol, side, qty.abs(), ack.price);
                flattened += 1;
            }
            Ok((cancelled, flattened))
        }
    }

    fn round_ms(d: Duration) -> Duration {
        Duration::from_millis(d.as_millis() as u64)
    }
}

mod control {
    //! The control endpoint (`--listen`): liveness, health by state, the release, the kill
    //! switch.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State as Shared;
    use axum::http::StatusCode;
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    /// The release and the state, as the endpoint shows them.
    #[derive(Clone)]
    pub struct Status(Arc<(String, Mutex<&'static str>)>);

    impl Status {
        pub fn new(release: &str) -> Status {
            Status(Arc::new((release.to_string(), Mutex::new("STARTING"))))
        }

        pub fn set(&self, state: &'static str) {
            *self.0.1.lock().unwrap_or_else(|e| e.into_inner()) = state;
        }

        fn get(&self) -> (&str, &'static str) {
            (
                &self.0.0,
                *self.0.1.lock().unwrap_or_else(|e| e.into_inner()),
            )
        }
    }

    type App = (Status, tokio::sync::mpsc::Sender<&'static str>);

    async fn health(Shared((status, _)): Shared<App>) -> (StatusCode, axum::Json<Value>) {
        let (_, state) = status.get();
        let code = if state == "ACTIVE" {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (code, axum::Json(json!({"state": state})))
    }

    async fn version(Shared((status, _)): Shared<App>) -> axum::Json<Value> {
        let (release, state) = status.get();
        axum::Json(json!({"version": release, "state": state}))
    }

    async fn kill(Shared((_, kills)): Shared<App>) -> (StatusCode, axum::Json<Value>) {
        match kills.send("POST /kill").await {
            Ok(()) => (
                StatusCode::ACCEPTED,
                axum::Json(json!({"kill_switch": "triggered"})),
            ),
            Err(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": "the agent is stopping"})),
            ),
        }
    }

    /// Log each request that carries an `X-Request-Id` (a caller tracing its request through
    /// the logs), with the answer's status.
    async fn access_log(
        req: axum::extract::Request,
        next: axum::middleware::Next,
    ) -> axum::response::Response {
        let id = req
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let line = format!("{} {}", req.method(), req.uri().path());
        let resp = next.run(req).await;
        if let Some(id) = id {
            eprintln!("request {line} id={id} -> {}", resp.status().as_u16());
        }
        resp
    }

    /// Bind `addr` and serve in the background.
    pub async fn serve(
        addr: std::net::SocketAddr,
        status: Status,
        kills: tokio::sync::mpsc::Sender<&'static str>,
    ) -> Result<(), String> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("--listen {addr}: {e}"))?;
        let app = Router::new()
            .route("/livez", get(|| async { "ok" }))
            .route("/healthz", get(health))
            .route("/version", get(version))
            .route("/kill", post(kill))
            .layer(axum::middleware::from_fn(access_log))
            .with_state((status, kills));
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                eprintln!("control endpoint: {e}");
            }
        });
        Ok(())
    }
}

mod broker {
    //! The broker's HTTP API as the agent uses it: health, orders, positions, quotes.

    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use serde_json::{Value, json};

    /// Health checks give up after this long.
    const HEALTH_TIMEOUT: Duration = Duration::from_secs(1);
    /// Authenticated calls give up after this long.
    const API_TIMEOUT: Duration = Duration::from_secs(2);

    #[derive(Debug, Clone, Copy)]
    pub enum Side {
        Buy,
        Sell,
    }

    impl Side {
        pub fn as_str(self) -> &'static str {
            match self {
                Side::Buy => "buy",
                Side::Sell => "sell",
            }
        }
    }

    /// Why an authenticated call failed: a 401 (permanent until someone logs in) or anything
    /// else (transient).
    #[derive(Debug)]
    pub enum ApiError {
        NotLoggedIn(String),
        Failed(String),
    }

    impl std::fmt::Display for ApiError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                ApiError::NotLoggedIn(m) => write!(f, "not logged in: {m}"),
                ApiError::Failed(m) => f.write_str(m),
            }
        }
    }

    /// An acknowledged order's price: the fill price, or the limit price while it rests.
    pub struct Ack {
        pub price: f64,
    }

    pub struct Broker {
        http: reqwest::Client,
        base: String,
        key: Option<String>,
        account: String,
        client_prefix: String,
        seq: u64,
    }

    impl Broker {
        pub fn new(base: String, key: Option<String>, account: String) -> Result<Broker, String> {
            let http = reqwest::Client::builder()
                .connect_timeout(HEALTH_TIMEOUT)
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))?;
            let started_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or_default();
            Ok(Broker {
                http,
                base: base.trim_end_matches('/').to_string(),
                client_prefix: format!("{account}-{started_ms}"),
                key,
                account,
                seq: 0,
            })
        }

        /// `GET /healthz`: Ok on 2xx; otherwise why not (refused, timeout, status).
        pub async fn health(&self) -> Result<(), String> {
            let url = format!("{}/healthz", self.base);
            match self.http.get(&url).timeout(HEALTH_TIMEOUT).send().await {
                Ok(r) if r.status().is_success() => Ok(()),
                Ok(r) => Err(format!("GET /healthz: HTTP {}", r.status().as_u16())),
                Err(e) => Err(format!("GET /healthz: {}", describe(&e))),
            }
        }

        async fn call(&self, req: reqwest::RequestBuilder, what: &str) -> Result<Value, ApiError> {
            let req = match &self.key {
                Some(k) => req.bearer_auth(k),
                None => req,
            };
            let r = req
                .timeout(API_TIMEOUT)
                .send()
                .await
                .map_err(|e| ApiError::Failed(format!("{what}: {}", describe(&e))))?;
            let status = r.status().as_u16();
            let body: Value = r.json().await.unwrap_or(Value::Null);
            let msg = || {
                let e = body["error"].as_str().unwrap_or("");
                format!("{what}: HTTP {status} {e}").trim_end().to_string()
            };
            match status {
                200..=299 => Ok(body),
                401 => Err(ApiError::NotLoggedIn(msg())),
                _ => Err(ApiError::Failed(msg())),
            }
        }

        /// This account's net positions: (symbol, quantity).
        pub async fn positions(&self) -> Result<Vec<(String, f64)>, ApiError> {
            let req = self
                .http
                .get(format!("{}/api/v1/positions", self.base))
                .query(&[("account", &self.account)]);
            let v = self.call(req, "GET /api/v1/positions").await?;
            Ok(v["positions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| Some((p["symbol"].as_str()?.to_string(), p["qty"].as_f64()?)))
                .collect())
        }

        /// Ids of this account's open orders.
        pub async fn open_orders(&self) -> Result<Vec<String>, ApiError> {
            let req = self
                .http
                .get(format!("{}/api/v1/orders", self.base))
                .query(&[("status", "open"), ("account", &self.account)]);
            let v = self.call(req, "GET /api/v1/orders").await?;
            Ok(v["orders"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|o| o["order_id"].as_str().map(str::to_string))
                .collect())
        }

        pub async fn cancel(&self, id: &str) -> Result<(), ApiError> {
            let req = self
                .http
                .delete(format!("{}/api/v1/orders/{id}", self.base));
            self.call(req, &format!("DELETE /api/v1/orders/{id}"))
                .await
                .map(|_| ())
        }

        /// The simulated mid price.
        pub async fn quote(&self, symbol: &str) -> Result<f64, ApiError> {
            let req = self
                .http
                .get(format!("{}/api/v1/quotes/{symbol}", self.base));
            let v = self.call(req, "GET /api/v1/quotes").await?;
            v["mid"]
                .as_f64()
                .ok_or_else(|| ApiError::Failed("quote without a mid price".into()))
        }

        /// A market order (`limit` None) or a resting day limit order; Ok once acknowledged
        /// as filled or accepted.
        pub async fn place(
            &mut self,
            symbol: &str,
            side: Side,
            qty: f64,
            limit: Option<f64>,
        ) -> Result<Ack, ApiError> {
            self.seq += 1;
            let cid = format!("{}-{}", self.client_prefix, self.seq);
            let mut body = json!({"symbol": symbol, "side": side.as_str(), "qty": qty,
                "type": "market", "client_order_id": cid, "account": self.account});
            if let Some(p) = limit {
                body["type"] = json!("limit");
                body["limit_price"] = json!(p);
            }
            let req = self
                .http
                .post(format!("{}/api/v1/orders", self.base))
                .json(&body);
            let ack = self.call(req, "POST /api/v1/orders").await?;
            let status = ack["status"].as_str().unwrap_or("");
            let price = ack["filled_price"].as_f64().or(limit).unwrap_or(0.0);
            if status != "filled" && status != "accepted" {
                return Err(ApiError::Failed(format!(
                    "order {cid} {status}: {}",
                    ack["reason"]
                )));
            }
            eprintln!(
                "order {status}: {} {qty} {symbol} at {price} ({})",
                side.as_str(),
                ack["order_id"].as_str().unwrap_or("?")
            );
            Ok(Ack { price })
        }
    }

    /// Connection refused, timeout, or the error's text.
    fn describe(e: &reqwest::Error) -> String {
        if e.is_timeout() {
            "timed out".into()
        } else if e.is_connect() {
            "connection refused or unreachable".into()
        } else {
            e.to_string()
        }
    }
}

mod notify {
    //! Telegram-style notifications: `POST {base}/bot{token}/sendMessage` with
    //! `{"chat_id": "ops", "text": …}`.

    use std::time::Duration;

    pub struct Notifier {
        http: reqwest::Client,
        url: Option<String>,
    }

    impl Notifier {
        pub fn new(base: Option<&str>, token: &str) -> Result<Notifier, String> {
            let http = reqwest::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .map_err(|e| format!("building the HTTP client: {e}"))?;
            let url = base.map(|b| format!("{}/bot{token}/sendMessage", b.trim_end_matches('/')));
            Ok(Notifier { http, url })
        }

        /// True when the receiver answered 2xx.
        pub async fn send(&self, text: &str) -> bool {
            let Some(url) = &self.url else {
                eprintln!("not notified (no --notify): {text}");
                return false;
            };
            let body = serde_json::json!({"chat_id": "ops", "text": text});
            match self.http.post(url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    eprintln!("notified: {text}");
                    true
                }
                Ok(r) => {
                    eprintln!("notification failed: HTTP {}: {text}", r.status().as_u16());
                    false
                }
                Err(e) => {
                    eprintln!("notification failed: {e}: {text}");
                    false
                }
            }
        }
    }
}

mod store {
    //! The SQLite state database: schema, one transaction per change, backup and restore.

    use std::path::Path;
    use std::process::ExitCode;

    use rusqlite::{Connection, OptionalExtension, params};

    use super::State;

    const SCHEMA: &str = "
        CREATE TABLE IF NOT EXISTS operational_state (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            current_state TEXT NOT NULL,
            error_reason TEXT,
            notification_count INTEGER NOT NULL DEFAULT 0,
            updated_at TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS trades (
            id INTEGER PRIMARY KEY,
            symbol TEXT NOT NULL,
            side TEXT NOT NULL,
            qty REAL NOT NULL,
            price REAL NOT NULL,
            ts TEXT NOT NULL
        );
        CREATE TABLE IF NOT EXISTS error_notifications_log (
            error_text TEXT PRIMARY KEY,
            occurrence_count INTEGER NOT NULL,
            notification_count INTEGER NOT NULL DEFAULT 0,
            first_occurrence TEXT NOT NULL,
            last_occurrence TEXT NOT NULL,
            last_notified_ms INTEGER
        );";

    fn now() -> String {
        jiff::Timestamp::now().to_string()
    }

    pub struct Store {
        conn: Connection,
        created: bool,
    }

    impl Store {
        /// Open (creating) the database: WAL, synchronous FULL, the schema, the state row.
        pub fn open(path: &Path) -> rusqlite::Result<Store> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            conn.pragma_update(None, "synchronous", "FULL")?;
            conn.execute_batch(SCHEMA)?;
            let created = conn.execute(
                "INSERT OR IGNORE INTO operational_state
                 (id, current_state, error_reason, notification_count, updated_at)
                 VALUES (1, 'STARTING', NULL, 0, ?1)",
                [now()],
            )? == 1;
            Ok(Store { conn, created })
        }

        /// The stored state; `None` for a database this process just created.
        pub fn state(&self) -> rusqlite::Result<Option<State>> {
            if self.created {
                return Ok(None);
            }
            let s: String = self.conn.query_row(
                "SELECT current_state FROM operational_state WHERE id = 1",
                [],
                |r| r.get(0),
            )?;
            Ok(Some(match s.as_str() {
                "ACTIVE" => State::Active,
                "WAITING" => State::Waiting,
                "ERROR" => State::Error,
                "HALTED" => State::Halted,
                "STOPPED" => State::Stopped,
                _ => State::Starting,
            }))
        }

        pub fn transition(&mut self, to: State, reason: Option<&str>) -> rusqlite::Result<()> {
            let tx = self.conn.transaction()?;
            tx.execute(
                "UPDATE operational_state SET current_state = ?1, error_reason = ?2,
                 updated_at = ?3 WHERE id = 1",
                params![to.as_str(), reason, now()],
            )?;
            tx.commit()
        }

        pub fn count_notification(&mut self) -> rusqlite::Result<()> {
            self.conn.execute(
                "UPDATE operational_state SET notification_count = notification_count + 1,
                 updated_at = ?1 WHERE id = 1",
                [now()],
            )?;
            Ok(())
        }

        /// Count one occurrence of `text`; returns when it was last notified (Unix ms).
        pub fn note_occurrence(&mut self, text: &str) -> rusqlite::Result<Option<i64>> {
            let tx = self.conn.transaction()?;
            let t = now();
            tx.execute(
                "INSERT INTO error_notifications_log
                 (error_text, occurrence_count, notification_count, first_occurrence,
                  last_occurrence)
                 VALUES (?1, 1, 0, ?2, ?2)
                 ON CONFLICT (error_text) DO UPDATE SET
                   occurrence_count = occurrence_count + 1, last_occurrence = ?2",
                params![text, t],
            )?;
            let last = tx
                .query_row(
                    "SELECT last_notified_ms FROM error_notifications_log WHERE error_text = ?1",
                    [text],
                    |r| r.get::<_, Option<i64>>(0),
                )
                .optional()?
                .flatten();
            tx.commit()?;
            Ok(last)
        }

        pub fn mark_notified(&mut self, text: &str, at_ms: i64) -> rusqlite::Result<()> {
            self.conn.execute(
                "UPDATE error_notifications_log SET notification_count = notification_count + 1,
                 last_notified_ms = ?2 WHERE error_text = ?1",
                params![text, at_ms],
            )?;
            Ok(())
        }

        pub fn record_trade(
            &mut self,
            symbol: &str,
            side: &str,
            qty: f64,
            price: f64,
        ) -> rusqlite::Result<()> {
            self.conn.execute(
                "INSERT INTO trades (symbol, side, qty, price, ts) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![symbol, side, qty, price, now()],
            )?;
            Ok(())
        }
    }

    fn trades(conn: &Connection) -> rusqlite::Result<i64> {
        conn.query_row("SELECT count(*) FROM trades", [], |r| r.get(0))
    }

    /// `VACUUM INTO`: one consistent snapshot, taken while the agent may be writing.
    pub fn backup(db: &Path, to: &Path) -> Result<ExitCode, String> {
        if to.exists() {
            return Err(format!("{} exists; not overwriting it", to.display()));
        }
        if !db.exists() {
            return Err(format!("{}: no such state database", db.display()));
        }
        let conn = Connection::open(db).map_err(|e| format!("{}: {e}", db.display()))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| conn.execute("VACUUM INTO ?1", [to.to_string_lossy()]))
            .map_err(|e| format!("backing up {} to {}: {e}", db.display(), to.display()))?;
        let n = Connection::open(to)
            .and_then(|c| trades(&c))
            .map_err(|e| format!("{}: {e}", to.display()))?;
        eprintln!(
            "backed up {} ({n} trades) to {}",
            db.display(),
            to.display()
        );
        Ok(ExitCode::SUCCESS)
    }

    /// Copy the backup to a temporary file next to the database, check it, then rename it
    /// over the database (dropping the old WAL), so a failed restore leaves the old state.
    pub fn restore(from: &Path, db: &Path, lossy: bool) -> Result<ExitCode, String> {
        if !from.exists() {
            return Err(format!("{}: no such backup", from.display()));
        }
        let tmp = db.with_extension("restore-tmp");
        let _ = std::fs::remove_file(&tmp);
        let err = |e: rusqlite::Error| format!("restoring {}: {e}", from.display());
        let src = Connection::open(from).map_err(err)?;
        src.execute("VACUUM INTO ?1", [tmp.to_string_lossy()])
            .map_err(err)?;
        let copy = Connection::open(&tmp).map_err(err)?;
        let ok: String = copy
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .map_err(err)?;
        if ok != "ok" {
            return Err(format!("{}: integrity check: {ok}", from.display()));
        }
        if lossy {
            copy.execute(
                "DELETE FROM trades WHERE id = (SELECT max(id) FROM trades)",
                [],
            )
            .map_err(err)?;
        }
        let n = trades(&copy).map_err(err)?;
        drop(copy);
        for suffix in ["-wal", "-shm"] {
            let mut p = db.as_os_str().to_owned();
            p.push(suffix);
            let _ = std::fs::remove_file(p);
        }
        std::fs::rename(&tmp, db).map_err(|e| format!("replacing {}: {e}", db.display()))?;
        eprintln!(
            "restored {} ({n} trades) into {}",
            from.display(),
            db.display()
        );
        Ok(ExitCode::SUCCESS)
    }
}
