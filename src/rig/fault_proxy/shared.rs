//! The state one proxy's handles and connection tasks share: the active fault (published on a
//! watch channel), the listener in use and the counters.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64};

use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fault::Fault;

/// How long the proxy waits for the upstream to accept a connection before it closes the
/// client connection and counts an upstream connect failure.
pub const UPSTREAM_CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The active fault, numbered so connections can tell a re-applied fault from the old one.
#[derive(Debug, Clone)]
pub(super) struct Current {
    pub generation: u64,
    pub fault: Option<Fault>,
}

/// One proxy's shared state.
pub(super) struct Inner {
    pub name: String,
    pub addr: SocketAddr,
    pub upstream: String,
    pub fault: watch::Sender<Current>,
    /// Serialises apply / heal / shutdown.
    pub control: tokio::sync::Mutex<Control>,
    /// Cancelled by shutdown or when the last handle drops.
    pub stop: CancellationToken,
    pub listening: AtomicBool,
    /// Signalled whenever a connection task ends.
    pub idle: Notify,
    pub next_conn: AtomicU64,
    pub accepted: AtomicU64,
    pub active: AtomicU64,
    pub reset_by_fault: AtomicU64,
    pub bytes_up: AtomicU64,
    pub bytes_down: AtomicU64,
    pub bytes_discarded: AtomicU64,
    pub upstream_connect_failures: AtomicU64,
    /// Requests matched by the HTTP fault in force, counted from when it was applied.
    pub http_matched: AtomicU64,
}

/// What apply, heal and shutdown change, under [`Inner::control`].
pub(super) struct Control {
    /// The accept loop, absent while down or after shutdown.
    pub listener: Option<Listening>,
    pub closed: bool,
}

/// One listening period: cancelling `era` closes the listener and resets the connections it
/// accepted.
pub(super) struct Listening {
    pub era: CancellationToken,
    pub task: JoinHandle<()>,
}

impl Inner {
    /// Make `fault` the active one, under a new generation.
    pub(super) fn publish(&self, fault: Option<Fault>) {
        self.http_matched
            .store(0, std::sync::atomic::Ordering::SeqCst);
        self.fault.send_modify(|current| {
            current.generation += 1;
            current.fault = fault;
        });
    }
}
