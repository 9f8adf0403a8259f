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
//!
//! Where things live: this file holds the shared [`State`] and starts and stops the broker;
//! `args` is its command line, `routes` the router and its middleware, `orders` the HTTP order
//! API, `admin` health, metrics and the fault routes, `place` placing one order for every order
//! entry, [`book`] the order book and `ws` and `fix` the other order entries.

mod admin;
mod args;
pub mod book;
pub mod faults;
mod fix;
mod metrics;
mod orders;
mod place;
mod reply;
mod routes;
pub mod tls;
mod ws;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::error::{Error, Exit, Result};
pub use args::PaperBrokerArgs;
use book::{Book, Market};
use faults::Faults;

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
    /// A fresh broker as `args` configure it, with `faults`, stopping on `shutdown`.
    fn new(args: &PaperBrokerArgs, faults: Faults, shutdown: CancellationToken) -> State {
        State {
            started: Instant::now(),
            book: Mutex::new(Book::new(
                Market::new(args.seed, args.price_period),
                args.order_history,
            )),
            faults,
            api_key: args.api_key.clone().filter(|k| !k.is_empty()),
            healthy: AtomicBool::new(true),
            metrics: metrics::Metrics::default(),
            shutdown,
            ws_quote_interval: args.ws_quote_interval.max(Duration::from_millis(1)),
            ws_close: tokio::sync::watch::Sender::new(0),
        }
    }

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
    let state = Arc::new(State::new(&args, faults, shutdown.clone()));
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

    let server = http_server(
        listener,
        acceptor,
        routes::router(state.clone()),
        shutdown.clone(),
    )?;
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
    log_summary(&state, stopped_at);
    Ok(())
}

/// The shutdown summary on stderr: uptime, orders by outcome, open orders, injected errors and
/// how long the shutdown took until `stopped_at`.
fn log_summary(state: &State, stopped_at: Instant) {
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
