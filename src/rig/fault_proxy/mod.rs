//! A TCP fault proxy ([`FaultProxy`]): a loopback port in front of one dependency, so a drill
//! can take the dependency "down", black-hole it, slow it or cut its connections without a
//! container runtime, root, or touching the dependency itself.
//!
//! The vocabulary is Toxiproxy's, kept small: one [`Fault`] is active at a time, and applying a
//! fault replaces the previous one. [`FaultProxy::heal`] goes back to pass-through.
//!
//! | fault | new connections | existing connections |
//! |---|---|---|
//! | none (healthy) | forwarded to the upstream | forwarded |
//! | [`Fault::Down`] | refused: the listening socket is closed, so `connect()` gets `ECONNREFUSED` | reset (RST) |
//! | [`Fault::Blackhole`] | accepted; client bytes are read and discarded; the upstream is not contacted | stop forwarding in both directions; bytes read are discarded |
//! | [`Fault::Latency`] | every chunk is delayed in each direction | same, from the next chunk read |
//! | [`Fault::ResetAfter`] | reset once N bytes have been forwarded (both directions together) | same, counting from when the fault was applied |
//! | [`Fault::Http`] | the first request is read: a matching, selected one gets a status, a delay or a reset; others are forwarded with `Connection: close` | forwarded as before |
//!
//! After `Down`, healing (or applying any other fault) listens again on the *same* port with
//! `SO_REUSEADDR`, so the dependency's address in the system under test stays valid. A
//! connection accepted while black-holed connects to the upstream once the fault is healed; the
//! bytes it sent meanwhile are lost, as they would be on a real black-holed route.
//!
//! The proxy owns its tasks: the accept loop and one task per connection. They stop on
//! [`FaultProxy::shutdown`], or when the last handle is dropped.

//!
//! Files: `fault` the faults, `shared` the state the handles and the connection tasks share,
//! `conn` the forwarding; this file the handle that starts, steers and stops a proxy.

mod conn;
mod fault;
mod http;
mod shared;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, TcpSocket};
use tokio::sync::{Notify, watch};
use tokio_util::sync::{CancellationToken, DropGuard};

pub use fault::{Fault, HttpEffect, HttpFault, Selection};
pub use shared::UPSTREAM_CONNECT_TIMEOUT;
use shared::{Control, Current, Inner};

/// Longest wait in [`FaultProxy::shutdown`] for connection tasks to finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Listen backlog of the proxy's socket.
const BACKLOG: u32 = 1024;

/// What can go wrong when starting or steering a [`FaultProxy`].
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream is not of the form `host:port`.
    #[error("fault proxy {name:?}: upstream {upstream:?} is not host:port")]
    InvalidUpstream {
        /// The proxy's name.
        name: String,
        /// The rejected upstream.
        upstream: String,
    },
    /// The listening socket could not be created or bound.
    #[error("fault proxy {name:?}: cannot listen on {addr}: {source}")]
    Bind {
        /// The proxy's name.
        name: String,
        /// The address asked for.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// Listening again on the same port after [`Fault::Down`] failed (for example because
    /// another process took the port meanwhile). The proxy stays down.
    #[error("fault proxy {name:?}: cannot listen again on {addr} after `down`: {source}")]
    Rebind {
        /// The proxy's name.
        name: String,
        /// The proxy's address.
        addr: SocketAddr,
        /// The socket error.
        #[source]
        source: io::Error,
    },
    /// The proxy was shut down through another handle.
    #[error("fault proxy {name:?} is shut down")]
    ShutDown {
        /// The proxy's name.
        name: String,
    },
}

/// Counters since the proxy started. Bytes are payload bytes actually written to the other
/// side.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ProxyCounters {
    /// Client connections accepted.
    pub accepted: u64,
    /// Client connections open now.
    pub active: u64,
    /// Client connections reset by a fault ([`Fault::Down`], [`Fault::ResetAfter`]).
    pub reset_by_fault: u64,
    /// Bytes forwarded client → upstream.
    pub bytes_up: u64,
    /// Bytes forwarded upstream → client.
    pub bytes_down: u64,
    /// Bytes read and discarded by [`Fault::Blackhole`] or cut by [`Fault::ResetAfter`].
    pub bytes_discarded: u64,
    /// Connections to the upstream that failed or timed out (the client connection was then
    /// closed).
    pub upstream_connect_failures: u64,
}

/// A snapshot of a proxy: where it is, the active fault and its counters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyState {
    /// The proxy's name.
    pub name: String,
    /// The bound address (the same across `Down` and heal).
    pub addr: SocketAddr,
    /// The upstream, `host:port`.
    pub upstream: String,
    /// The active fault; `None` is healthy pass-through.
    pub fault: Option<Fault>,
    /// Whether the proxy is accepting connections (false while [`Fault::Down`] and after
    /// shutdown).
    pub listening: bool,
    /// Counters since start.
    pub counters: ProxyCounters,
}

/// A TCP proxy on a loopback port in front of one upstream, with one switchable [`Fault`].
///
/// Cheap to clone; every clone steers the same proxy. It stops on [`FaultProxy::shutdown`] or
/// when the last clone is dropped.
#[derive(Clone)]
pub struct FaultProxy {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<DropGuard>,
}

impl fmt::Debug for FaultProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FaultProxy")
            .field("name", &self.inner.name)
            .field("addr", &self.inner.addr)
            .field("upstream", &self.inner.upstream)
            .finish_non_exhaustive()
    }
}

impl FaultProxy {
    /// Listen on `listen` (usually `127.0.0.1:0`) and forward each connection to `upstream`
    /// (`host:port`, resolved at each connection, so the dependency need not be up yet).
    /// Starts healthy.
    ///
    /// # Errors
    /// [`ProxyError::InvalidUpstream`] when `upstream` is not `host:port`;
    /// [`ProxyError::Bind`] when the address cannot be bound.
    pub async fn start(
        name: &str,
        listen: SocketAddr,
        upstream: String,
    ) -> Result<FaultProxy, ProxyError> {
        let valid = upstream
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if !valid {
            return Err(ProxyError::InvalidUpstream {
                name: name.to_string(),
                upstream,
            });
        }
        let listener = bind(listen).map_err(|source| ProxyError::Bind {
            name: name.to_string(),
            addr: listen,
            source,
        })?;
        let addr = listener.local_addr().map_err(|source| ProxyError::Bind {
            name: name.to_string(),
            addr: listen,
            source,
        })?;
        let stop = CancellationToken::new();
        let (fault, _) = watch::channel(Current {
            generation: 0,
            fault: None,
        });
        let inner = Arc::new(Inner {
            name: name.to_string(),
            addr,
            upstream,
            fault,
            control: tokio::sync::Mutex::new(Control {
                listener: None,
                closed: false,
            }),
            stop: stop.clone(),
            listening: AtomicBool::new(false),
            idle: Notify::new(),
            next_conn: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            active: AtomicU64::new(0),
            reset_by_fault: AtomicU64::new(0),
            bytes_up: AtomicU64::new(0),
            bytes_down: AtomicU64::new(0),
            bytes_discarded: AtomicU64::new(0),
            upstream_connect_failures: AtomicU64::new(0),
            http_matched: AtomicU64::new(0),
        });
        inner.control.lock().await.listener = Some(conn::spawn_accept_loop(&inner, listener));
        Ok(FaultProxy {
            inner,
            _stop_on_drop: Arc::new(stop.drop_guard()),
        })
    }

    /// The proxy's name, as given to [`FaultProxy::start`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The bound address (the actual port when started on port 0). It stays the same across
    /// [`Fault::Down`] and heal.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Make `fault` the active fault, replacing the previous one. Returns once the fault is in
    /// effect: after `Down`, the port refuses connections and every open connection has been
    /// reset. Applying any other fault while down listens again first.
    ///
    /// # Errors
    /// [`ProxyError::Rebind`] when listening again after `Down` fails (the proxy stays down);
    /// [`ProxyError::ShutDown`] after shutdown.
    pub async fn apply(&self, fault: Fault) -> Result<(), ProxyError> {
        self.set(Some(fault)).await
    }

    /// Back to healthy pass-through; after [`Fault::Down`], listen again on the same port.
    ///
    /// # Errors
    /// As [`FaultProxy::apply`].
    pub async fn heal(&self) -> Result<(), ProxyError> {
        self.set(None).await
    }

    async fn set(&self, fault: Option<Fault>) -> Result<(), ProxyError> {
        let inner = &self.inner;
        let mut control = inner.control.lock().await;
        if control.closed {
            return Err(ProxyError::ShutDown {
                name: inner.name.clone(),
            });
        }
        if fault == Some(Fault::Down) {
            if let Some(listening) = control.listener.take() {
                inner.listening.store(false, Ordering::SeqCst);
                listening.era.cancel();
                let _ = listening.task.await;
            }
            inner.publish(fault);
            return Ok(());
        }
        // An HTTP fault judges each connection's first request: keep-alive connections open
        // now would never see it, so they are reset (and the port listened on again).
        if matches!(fault, Some(Fault::Http(_)))
            && let Some(listening) = control.listener.take()
        {
            inner.listening.store(false, Ordering::SeqCst);
            listening.era.cancel();
            let _ = listening.task.await;
        }
        // Bind before publishing, so a failed rebind leaves the proxy consistently down; start
        // accepting after publishing, so no connection sees the old fault.
        let rebound = match control.listener {
            Some(_) => None,
            None => Some(bind(inner.addr).map_err(|source| ProxyError::Rebind {
                name: inner.name.clone(),
                addr: inner.addr,
                source,
            })?),
        };
        inner.publish(fault);
        if let Some(listener) = rebound {
            control.listener = Some(conn::spawn_accept_loop(inner, listener));
        }
        Ok(())
    }

    /// The active fault, whether the proxy listens, and the counters.
    pub fn state(&self) -> ProxyState {
        let i = &self.inner;
        let load = |c: &AtomicU64| c.load(Ordering::SeqCst);
        ProxyState {
            name: i.name.clone(),
            addr: i.addr,
            upstream: i.upstream.clone(),
            fault: i.fault.borrow().fault.clone(),
            listening: i.listening.load(Ordering::SeqCst),
            counters: ProxyCounters {
                accepted: load(&i.accepted),
                active: load(&i.active),
                reset_by_fault: load(&i.reset_by_fault),
                bytes_up: load(&i.bytes_up),
                bytes_down: load(&i.bytes_down),
                bytes_discarded: load(&i.bytes_discarded),
                upstream_connect_failures: load(&i.upstream_connect_failures),
            },
        }
    }

    /// Stop listening and close every connection (a normal close, not a reset), waiting up to
    /// 5 s for the connection tasks to end. Other clones then get [`ProxyError::ShutDown`].
    pub async fn shutdown(self) {
        let inner = &self.inner;
        let mut control = inner.control.lock().await;
        control.closed = true;
        inner.stop.cancel();
        if let Some(listening) = control.listener.take() {
            let _ = listening.task.await;
        }
        inner.listening.store(false, Ordering::SeqCst);
        drop(control);
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, async {
            loop {
                let notified = inner.idle.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                if inner.active.load(Ordering::SeqCst) == 0 {
                    return;
                }
                notified.await;
            }
        })
        .await;
    }
}

/// A listening socket with `SO_REUSEADDR`, so the same port can be bound again after `Down`
/// while old connections sit in `TIME_WAIT`.
fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}
