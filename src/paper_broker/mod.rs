//! `prodready paper-broker`: the built-in paper-trading venue.
//!
//! A small but real HTTP/JSON venue on tokio + axum, so the example checklist runs end to end
//! on a fresh machine and the integration tests have a real system under test:
//!
//! | route | what |
//! |---|---|
//! | `POST /api/v1/orders` | place an order (optionally for an `account`, default `"default"`); the acknowledgement is `{"order_id", "client_order_id", "status": "accepted"\|"filled"\|"rejected", "reason", "filled_price"}` |
//! | `GET /api/v1/orders?status=open&account=X` | `{"orders": [order, …]}`, oldest first; both parameters optional |
//! | `GET /api/v1/orders/{id}` | the order and its state |
//! | `DELETE /api/v1/orders/{id}` | cancel a resting order |
//! | `GET /api/v1/positions?account=X` | net positions per account and symbol; without `account`, of every account |
//! | `GET /api/v1/quotes/{symbol}` | the simulated mid price |
//! | `GET /ws/orders` | WebSocket order entry ([`ws`](self#websocket-order-entry)): order messages in, acknowledgements out, with market data |
//! | `POST /admin/ws/close` | close every open WebSocket with code 1012 (service restart) |
//! | `GET /healthz` | 200 `ok`, or 503 when turned unhealthy |
//! | `GET /metrics` | Prometheus text format: orders by status, latency histogram, open orders |
//! | `POST /admin/unhealthy`, `POST /admin/healthy` | turn health off and on (SIGUSR1 toggles too) |
//! | `POST /admin/faults`, `GET /admin/faults`, `DELETE /admin/faults` | set, show and clear runtime faults ([`faults::FaultUpdate`]) |
//!
//! With `--fix-listen` the same book takes orders over FIX 4.4 (and 4.2) too: NewOrderSingle
//! and OrderCancelRequest answered with ExecutionReports, under the same faults (see the
//! `fix` module); with `--tls-cert` those sessions are TLS as well.
//! # WebSocket order entry
//!
//! `/ws/orders` (RFC 6455, behind the API key like `/api`) takes one JSON text message per
//! request: an order as for `POST /api/v1/orders` (optionally with `"action": "place"`), or
//! `{"action": "cancel", "order_id": "ord-…"}`. Each gets one answer on the same socket: the
//! order's acknowledgement with `"type": "ack"`, `{"type": "cancel", "order_id", "status":
//! "cancelled"}`, or `{"type": "error", "error", "client_order_id"?, "order_id"?}`. Orders are
//! handled concurrently and answered as they finish (match answers by `client_order_id`), with
//! the same book and the same faults as HTTP: a stall holds every message that arrives during
//! it, added latency delays each order, and the error rate answers with an `error` message.
//! Unrelated market data (`{"type": "quote", "symbol", "mid", "t_ms"}`) is sent every
//! `--ws-quote-interval`, so clients must match their answers.
//!
//! Fault injection ([`faults`]) is off by default: added latency with jitter, periodic stalls,
//! an error rate and memory retained per order (a real leak); drills change faults at runtime
//! through `/admin/faults`. SIGTERM or ctrl-c stop accepting,
//! let in-flight requests finish (cutting injected waits short), log a summary and exit within
//! 10 s.

pub mod book;
pub mod faults;
mod fix;
mod metrics;
pub mod tls;
mod ws;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Request, State as AxState};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Exit, Result};
use book::{Book, Market, NewOrder, StatusFilter};
use faults::{FaultUpdate, Faults};

/// Command-line options of `prodready paper-broker`.
#[derive(Debug, Clone, clap::Args)]
pub struct PaperBrokerArgs {
    /// Address to listen on (loopback by default). Port 0 picks a free port; the bound address
    /// is printed as the first stdout line: `listening on 127.0.0.1:NNNNN`.
    #[arg(long, default_value = "127.0.0.1:18080")]
    pub listen: SocketAddr,
    /// Require `Authorization: Bearer KEY` on /api and /admin routes.
    #[arg(long)]
    pub api_key: Option<String>,
    /// Added latency per API request (e.g. "2ms").
    #[arg(long, value_parser = parse_duration_arg)]
    pub latency: Option<Duration>,
    /// Uniform random extra latency from 0 to this, on top of --latency (e.g. "1ms").
    #[arg(long, value_parser = parse_duration_arg)]
    pub jitter: Option<Duration>,
    /// Time after start of the first stall (e.g. "20s"). Needs --stall-for.
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_after: Option<Duration>,
    /// Length of each stall: every request arriving during it is held until it ends.
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_for: Option<Duration>,
    /// Repeat the stall with this period (the first one at --stall-after, default one period).
    #[arg(long, value_parser = parse_duration_arg)]
    pub stall_every: Option<Duration>,
    /// Fraction of order requests answered with HTTP 503 (0 to 1).
    #[arg(long, value_parser = parse_fraction_arg)]
    pub error_rate: Option<f64>,
    /// Memory retained per accepted order, really allocated and written (e.g. "64KiB").
    #[arg(long, value_parser = parse_bytes_arg)]
    pub leak_per_order: Option<u64>,
    /// Seed of the simulated prices, jitter and error draws.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Period of one full oscillation of the simulated mid price (±0.5 %).
    #[arg(long, default_value = "60s", value_parser = parse_duration_arg)]
    pub price_period: Duration,
    /// Finished (filled, cancelled, rejected) orders kept for lookups and duplicate
    /// client_order_id detection; older ones are evicted so memory stays bounded. Open orders
    /// are always kept.
    #[arg(long, default_value_t = 1000)]
    pub order_history: usize,
    /// Serve HTTPS (HTTP/1.1 and HTTP/2 by ALPN) with this PEM certificate chain. Needs
    /// --tls-key. Without it the broker speaks plain HTTP/1.1 and HTTP/2 with prior knowledge.
    #[arg(long, requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The PEM private key of --tls-cert.
    #[arg(long, requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Also accept FIX 4.4 / 4.2 sessions on this address (port 0 picks a free port; the bound
    /// address is printed as the second stdout line: `fix listening on 127.0.0.1:NNNNN`).
    /// With --tls-cert the sessions are TLS too (`fix+tls://`).
    #[arg(long)]
    pub fix_listen: Option<SocketAddr>,
    /// The FIX acceptor's CompID: a Logon must name it as TargetCompID(56).
    #[arg(long, default_value = "PAPER")]
    pub fix_comp_id: String,
    /// Period of the market-data quotes sent on every /ws/orders socket (e.g. "50ms").
    #[arg(long, default_value = "50ms", value_parser = parse_duration_arg)]
    pub ws_quote_interval: Duration,
}

fn parse_duration_arg(s: &str) -> std::result::Result<Duration, String> {
    crate::units::parse_duration(s)
}

fn parse_bytes_arg(s: &str) -> std::result::Result<u64, String> {
    crate::units::parse_bytes(s)
}

fn parse_fraction_arg(s: &str) -> std::result::Result<f64, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("invalid fraction \"{s}\": expected a number from 0 to 1"))?;
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(format!(
            "invalid fraction {v}: expected a number from 0 to 1"
        ))
    }
}

/// Shared state of a running broker.
#[derive(Debug)]
pub struct State {
    started: Instant,
    book: Mutex<Book>,
    faults: Faults,
    api_key: Option<String>,
    healthy: AtomicBool,
    metrics: metrics::Metrics,
    shutdown: CancellationToken,
    /// Period of the quotes on each WebSocket.
    ws_quote_interval: Duration,
    /// Bumped by `POST /admin/ws/close`: every open WebSocket closes.
    ws_close: tokio::sync::watch::Sender<u64>,
}

impl State {
    fn since_start(&self) -> Duration {
        self.started.elapsed()
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Flip health; returns the new value.
    fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::SeqCst);
        eprintln!(
            "paper broker: health set to {}",
            if healthy { "healthy" } else { "unhealthy" }
        );
    }
}

/// Run the broker until SIGTERM / ctrl-c.
///
/// # Errors
/// [`Error::Usage`] for inconsistent fault options, [`Error::Internal`] when the address
/// cannot be bound.
pub fn run(args: PaperBrokerArgs) -> Result<Exit> {
    let faults = Faults::from_args(&args).map_err(Error::Usage)?;
    let rt = crate::runtime()?;
    rt.block_on(serve(args, faults))?;
    Ok(Exit::Ready)
}

/// The broker's routes: the order API and admin routes behind the API key, `/healthz`, and
/// `/metrics` outside the stall middleware.
fn router(state: Arc<State>) -> Router {
    let api = Router::new()
        .route("/api/v1/orders", post(place_order).get(list_orders))
        .route("/api/v1/orders/{id}", get(get_order).delete(cancel_order))
        .route("/api/v1/positions", get(positions))
        .route("/api/v1/quotes/{symbol}", get(quote))
        .route("/ws/orders", get(ws::orders))
        .route("/admin/ws/close", post(ws::admin_close))
        .route("/admin/unhealthy", post(admin_unhealthy))
        .route("/admin/healthy", post(admin_healthy))
        .route(
            "/admin/faults",
            get(admin_faults)
                .post(admin_set_faults)
                .delete(admin_clear_faults),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), auth));
    Router::new()
        .route("/healthz", get(healthz))
        .merge(api)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), stall))
        .route("/metrics", get(metrics_text))
        .with_state(state)
}

async fn serve(args: PaperBrokerArgs, faults: Faults) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|e| Error::Internal(format!("binding {}: {e}", args.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::Internal(format!("reading the bound address: {e}")))?;
    println!("listening on {addr}");
    let fix_listener = bind_fix(&args).await?;
    let acceptor = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key).map_err(Error::Usage)?),
        _ => None,
    };
    eprintln!(
        "paper broker: listening on {addr} ({}); auth {}; faults: {}",
        if acceptor.is_some() { "https" } else { "http" },
        if args.api_key.is_some() { "on" } else { "off" },
        faults.describe()
    );
    let shutdown = CancellationToken::new();
    let state = Arc::new(State {
        started: Instant::now(),
        book: Mutex::new(Book::new(
            Market::new(args.seed, args.price_period),
            args.order_history,
        )),
        faults,
        api_key: args.api_key.clone().filter(|k| !k.is_empty()),
        healthy: AtomicBool::new(true),
        metrics: metrics::Metrics::default(),
        shutdown: shutdown.clone(),
        ws_quote_interval: args.ws_quote_interval.max(Duration::from_millis(1)),
        ws_close: tokio::sync::watch::Sender::new(0),
    });
    spawn_signal_handlers(state.clone());
    spawn_matcher(state.clone());
    if let Some(l) = fix_listener {
        tokio::spawn(fix::serve(
            l,
            args.fix_comp_id.clone(),
            state.clone(),
            acceptor.clone(),
        ));
    }

    let server = http_server(listener, acceptor, router(state.clone()), shutdown.clone())?;
    let deadline = async {
        shutdown.cancelled().await;
        tokio::time::sleep(Duration::from_secs(8)).await;
    };
    let stopped_at;
    tokio::select! {
        r = server => {
            stopped_at = Instant::now();
            r.map_err(|e| Error::Internal(format!("serving: {e}")))?;
        }
        _ = deadline => {
            stopped_at = Instant::now();
            eprintln!("paper broker: in-flight requests did not finish within 8 s; closing them");
        }
    }
    let c = state.book().counts;
    let open = state.book().open_orders();
    eprintln!(
        "paper broker: stopped after {}: {} orders (filled {}, accepted {}, rejected {}, cancelled {}), {} open, {} injected errors, shutdown took {}",
        crate::units::format_duration(state.since_start()),
        c.filled + c.accepted + c.rejected,
        c.filled,
        c.accepted,
        c.rejected,
        c.cancelled,
        open,
        state.metrics.injected_errors(),
        crate::units::format_duration(
            stopped_at
                .saturating_duration_since(state.metrics.shutdown_started().unwrap_or(stopped_at))
        ),
    );
    Ok(())
}

/// Bind the FIX acceptor's listener when `--fix-listen` asks for one, and announce it (the
/// bound address as the second stdout line).
async fn bind_fix(args: &PaperBrokerArgs) -> Result<Option<tokio::net::TcpListener>> {
    let Some(a) = args.fix_listen else {
        return Ok(None);
    };
    let (l, bound) = fix::bind(a).await.map_err(Error::Internal)?;
    println!("fix listening on {bound}");
    eprintln!(
        "paper broker: FIX acceptor on {bound} (CompID \"{}\")",
        args.fix_comp_id
    );
    Ok(Some(l))
}

/// The HTTP server on `listener` (HTTPS with `acceptor`), stopping gracefully on `shutdown`.
///
/// # Errors
/// `Error::Internal` when the TLS listener cannot start.
fn http_server(
    listener: tokio::net::TcpListener,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: axum::Router,
    shutdown: CancellationToken,
) -> Result<std::pin::Pin<Box<dyn Future<Output = std::io::Result<()>> + Send>>> {
    let graceful = async move {
        shutdown.cancelled().await;
    };
    Ok(match acceptor {
        Some(acceptor) => {
            let tls = tls::TlsListener::new(listener, acceptor)
                .map_err(|e| Error::Internal(format!("listening: {e}")))?;
            Box::pin(
                axum::serve(tls, app)
                    .with_graceful_shutdown(graceful)
                    .into_future(),
            )
        }
        // TCP_NODELAY: a WebSocket answer written right after another small message (a
        // quote, an earlier answer) must not wait for the client's delayed ACK (Nagle).
        None => Box::pin(
            axum::serve(
                axum::serve::ListenerExt::tap_io(listener, |tcp| {
                    let _ = tcp.set_nodelay(true);
                }),
                app,
            )
            .with_graceful_shutdown(graceful)
            .into_future(),
        ),
    })
}

fn spawn_signal_handlers(state: Arc<State>) {
    use tokio::signal::unix::{SignalKind, signal};
    let s = state.clone();
    tokio::spawn(async move {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => eprintln!("paper broker: SIGTERM; stopping"),
            _ = tokio::signal::ctrl_c() => eprintln!("paper broker: interrupted; stopping"),
        }
        s.metrics.mark_shutdown();
        s.shutdown.cancel();
    });
    tokio::spawn(async move {
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            return;
        };
        while usr1.recv().await.is_some() {
            let now = state.healthy.load(Ordering::SeqCst);
            state.set_healthy(!now);
        }
    });
}

/// Fill resting limit orders as the simulated price moves (every 50 ms).
fn spawn_matcher(state: Arc<State>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = state.shutdown.cancelled() => return,
            }
            let t = state.since_start();
            state.book().match_resting(t);
        }
    });
}

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, axum::Json(json!({ "error": message }))).into_response()
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, "no such route")
}

/// Bearer-token check on /api and /admin routes when an API key is configured.
async fn auth(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if let Some(key) = &state.api_key {
        let ok = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|given| constant_time_eq(given.trim().as_bytes(), key.as_bytes()));
        if !ok {
            let mut r = json_error(StatusCode::UNAUTHORIZED, "missing or invalid API key");
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    }
    if state.faults.rejects_logins() && req.uri().path().starts_with("/api/") {
        return json_error(StatusCode::UNAUTHORIZED, "not logged in");
    }
    next.run(req).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Hold every request (except /admin and /metrics) that arrives during a stall (scheduled or
/// set at runtime) until the stall ends, or until shutdown starts.
async fn stall(AxState(state): AxState<Arc<State>>, req: Request, next: Next) -> Response {
    if !req.uri().path().starts_with("/admin/")
        && let Some(wait) = state
            .faults
            .stall_remaining(state.since_start(), Instant::now())
    {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
    next.run(req).await
}

async fn healthz(AxState(state): AxState<Arc<State>>) -> Response {
    if state.healthy.load(Ordering::SeqCst) && !state.shutdown.is_cancelled() {
        (StatusCode::OK, "ok\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy\n").into_response()
    }
}

async fn admin_unhealthy(AxState(state): AxState<Arc<State>>) -> Response {
    state.set_healthy(false);
    (StatusCode::OK, axum::Json(json!({ "healthy": false }))).into_response()
}

async fn admin_healthy(AxState(state): AxState<Arc<State>>) -> Response {
    state.set_healthy(true);
    (StatusCode::OK, axum::Json(json!({ "healthy": true }))).into_response()
}

async fn admin_faults(AxState(state): AxState<Arc<State>>) -> Response {
    (StatusCode::OK, axum::Json(faults_json(&state))).into_response()
}

/// The runtime faults with health: [`Faults::effective_json`] plus `"unhealthy": bool`.
fn faults_json(state: &State) -> serde_json::Value {
    let mut v = state.faults.effective_json(Instant::now());
    v["unhealthy"] = json!(!state.healthy.load(Ordering::SeqCst));
    v
}

async fn admin_set_faults(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let update = match FaultUpdate::from_json(&body) {
        Ok(u) => u,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    state.faults.apply(&update, Instant::now());
    if let Some(unhealthy) = update.unhealthy {
        state.set_healthy(!unhealthy);
    }
    let v = faults_json(&state);
    eprintln!("paper broker: runtime faults set: {v}");
    (StatusCode::OK, axum::Json(v)).into_response()
}

async fn admin_clear_faults(AxState(state): AxState<Arc<State>>) -> Response {
    state.faults.clear_runtime();
    state.set_healthy(true);
    eprintln!("paper broker: runtime faults cleared");
    (StatusCode::OK, axum::Json(faults_json(&state))).into_response()
}

async fn metrics_text(AxState(state): AxState<Arc<State>>) -> Response {
    let (counts, open) = {
        let b = state.book();
        (b.counts, b.open_orders())
    };
    let body = state.metrics.render(
        counts,
        open,
        state.faults.retained_bytes(),
        state.healthy.load(Ordering::SeqCst),
    );
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

async fn place_order(AxState(state): AxState<Arc<State>>, body: Bytes) -> Response {
    let started = Instant::now();
    let r = place_order_inner(&state, &body).await;
    state.metrics.observe_order(started.elapsed());
    r
}

/// What placing one order came to, for any order entry (HTTP or WebSocket).
enum Placed {
    /// The injected error rate drew this order: it was not looked at.
    Injected,
    /// The order is malformed; why.
    Invalid(String),
    /// The acknowledgement; `true` for a duplicate `client_order_id` (no order created).
    Ack(book::Ack, bool),
}

/// Place one order from its JSON: the added latency, the error rate, then the book. Counts
/// injected errors, invalid orders and retained memory.
async fn place(state: &State, order: serde_json::Result<NewOrder>) -> Placed {
    if let Some(wait) = state.faults.added_latency() {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
    if state.faults.draw_error() {
        state.metrics.count_injected_error();
        return Placed::Injected;
    }
    let order = match order {
        Ok(o) => o,
        Err(e) => {
            state.metrics.count_invalid();
            return Placed::Invalid(e.to_string());
        }
    };
    let t = state.since_start();
    let placed = state.book().place(order, t);
    match placed {
        Err(book::Invalid(m)) => {
            state.metrics.count_invalid();
            Placed::Invalid(m)
        }
        Ok((ack, duplicate)) => {
            if !duplicate && ack.status != book::OrderStatus::Rejected {
                state.faults.retain_for_order();
            }
            Placed::Ack(ack, duplicate)
        }
    }
}

async fn place_order_inner(state: &State, body: &[u8]) -> Response {
    match place(state, serde_json::from_slice(body)).await {
        Placed::Injected => json_error(StatusCode::SERVICE_UNAVAILABLE, "injected fault"),
        Placed::Invalid(m) => json_error(StatusCode::BAD_REQUEST, &format!("invalid order: {m}")),
        Placed::Ack(ack, true) => (StatusCode::CONFLICT, axum::Json(ack)).into_response(),
        Placed::Ack(ack, false) => (StatusCode::OK, axum::Json(ack)).into_response(),
    }
}

async fn get_order(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    let t = state.since_start();
    let mut b = state.book();
    b.match_resting(t);
    match b.get(&id) {
        Some(o) => (StatusCode::OK, axum::Json(o.clone())).into_response(),
        None => json_error(StatusCode::NOT_FOUND, "no such order"),
    }
}

async fn cancel_order(AxState(state): AxState<Arc<State>>, Path(id): Path<String>) -> Response {
    let t = state.since_start();
    let mut b = state.book();
    b.match_resting(t);
    match b.cancel(&id) {
        Ok(o) => (StatusCode::OK, axum::Json(o)).into_response(),
        Err(None) => json_error(StatusCode::NOT_FOUND, "no such order"),
        Err(Some(status)) => json_error(
            StatusCode::CONFLICT,
            &format!("order is {}, not open", status.as_str()),
        ),
    }
}

/// Split a query string into decoded `(name, value)` pairs (`+` is a space, `%XX` a byte).
fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    fn decode(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'+', _) => out.push(b' '),
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 2;
                }
                (b, _) => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (decode(k), decode(v))
        })
        .collect()
}

/// The query parameters of a listing: `account` and, where `allow_status`, `status`.
///
/// # Errors
/// A message naming an unknown parameter or a bad `status` value.
fn listing_query(
    query: Option<&str>,
    allow_status: bool,
) -> std::result::Result<(Option<String>, StatusFilter), String> {
    let mut account = None;
    let mut status = StatusFilter::All;
    for (k, v) in query_pairs(query) {
        match k.as_str() {
            "account" => account = Some(v),
            "status" if allow_status => status = StatusFilter::parse(&v)?,
            other => {
                let expected = if allow_status {
                    "account, status"
                } else {
                    "account"
                };
                return Err(format!(
                    "unknown query parameter \"{other}\" (expected: {expected})"
                ));
            }
        }
    }
    Ok((account, status))
}

async fn list_orders(AxState(state): AxState<Arc<State>>, uri: axum::http::Uri) -> Response {
    let (account, filter) = match listing_query(uri.query(), true) {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let t = state.since_start();
    let mut b = state.book();
    b.match_resting(t);
    let orders = b.orders(account.as_deref(), filter);
    (StatusCode::OK, axum::Json(json!({ "orders": orders }))).into_response()
}

async fn positions(AxState(state): AxState<Arc<State>>, uri: axum::http::Uri) -> Response {
    let (account, _) = match listing_query(uri.query(), false) {
        Ok(q) => q,
        Err(e) => return json_error(StatusCode::BAD_REQUEST, &e),
    };
    let t = state.since_start();
    let mut b = state.book();
    b.match_resting(t);
    (
        StatusCode::OK,
        axum::Json(json!({ "positions": b.positions(t, account.as_deref()) })),
    )
        .into_response()
}

async fn quote(AxState(state): AxState<Arc<State>>, Path(symbol): Path<String>) -> Response {
    let t = state.since_start();
    let mid = state.book().mid(&symbol, t);
    (
        StatusCode::OK,
        axum::Json(json!({ "symbol": symbol, "mid": mid, "t_ms": t.as_millis() as u64 })),
    )
        .into_response()
}
