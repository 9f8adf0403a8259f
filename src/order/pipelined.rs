//! The contract of a pipelined order transport (WebSocket, FIX): one connection carries many
//! orders at once, and each answer names the order it belongs to by a correlation id.
//!
//! A transport opens its session on a connected stream, encodes each order (and says its
//! correlation id), writes it, and decodes inbound messages into answers to orders, messages
//! that answer none, or the end of the session ([`Inbound`]). What to do with the orders in
//! flight, their deadlines and the reconnects is the caller's: the latency probe's pipelined
//! engine drives any [`OrderTransport`] the same way.

use std::time::Duration;

use super::connect::Stream;
use super::template::Rng;

/// How often a connection calls [`OrderTransport::tick`] (heartbeats and the like).
pub const TICK: Duration = Duration::from_millis(250);

/// One decoded inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// The answer to the order whose correlation id is `id`: accepted, or rejected with the
    /// transport's kind of reject (e.g. `"rejected"`) and a message saying why.
    Match {
        /// The order's correlation id, as [`OrderTransport::encode`] returned it.
        id: String,
        /// `Ok` for an acknowledgement, `Err((kind, message))` for a reject.
        outcome: Result<(), (&'static str, String)>,
    },
    /// Not an answer to any order (market data, a heartbeat, a status message): skipped.
    Ignore,
    /// The session is over: the peer closed the connection or broke the protocol. Every order
    /// in flight fails as `closed` with this message.
    Fatal(String),
}

/// A pipelined order transport: the part of a wire that differs between WebSocket and FIX.
///
/// The methods run on one current-thread runtime (the generator thread's), so their futures
/// need not be `Send`.
pub trait OrderTransport: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// An open session: the stream after the handshake or logon, and its state.
    type Session: 'static;

    /// The names of the rejects this transport counts, in report order; each is reported as
    /// a reject of that kind (the latency probe counts it as `errors_<name>`). Every name [`OrderTransport::recv`] returns
    /// must be among them.
    fn reject_kinds(&self) -> &'static [&'static str];

    /// Run the handshake (WebSocket upgrade, FIX logon) on a freshly connected `stream`.
    ///
    /// # Errors
    /// Why the session could not be opened (an upgrade refused with its status, a logon
    /// rejected with the peer's text); counted as a `connect` error.
    fn open(&self, stream: Stream) -> impl Future<Output = Result<Self::Session, String>>;

    /// Render order `i` (the schedule's index, warm-up included) with `rng` into `message`
    /// (cleared first) and write its correlation id into `id` (cleared first).
    ///
    /// # Errors
    /// A message when the order cannot be rendered (e.g. the rendered text has no
    /// correlation id); it stops the run, since every order would fail the same way.
    fn encode(
        &self,
        session: &mut Self::Session,
        i: u64,
        rng: &mut Rng,
        message: &mut String,
        id: &mut String,
    ) -> Result<(), String>;

    /// Write one encoded order.
    ///
    /// # Errors
    /// Why the write failed; the session is then dropped and its orders in flight fail.
    fn send(
        &self,
        session: &mut Self::Session,
        message: &str,
    ) -> impl Future<Output = Result<(), String>>;

    /// Read and decode the next inbound message. Must be cancel-safe: the connection drops this
    /// future whenever a send comes due first, and calls it again afterwards, so no message
    /// may be lost by that (read into a buffer the session owns).
    fn recv(&self, session: &mut Self::Session) -> impl Future<Output = Inbound>;

    /// Housekeeping, called every [`TICK`] while the session is open (e.g. a FIX Heartbeat
    /// after HeartBtInt of silence). The default does nothing.
    ///
    /// # Errors
    /// Why the session is no longer usable; handled like [`Inbound::Fatal`].
    fn tick(&self, session: &mut Self::Session) -> impl Future<Output = Result<(), String>> {
        let _ = session;
        async { Ok(()) }
    }

    /// End the session gracefully (WebSocket close handshake, FIX Logout) once no order is in
    /// flight. Bounded by the caller's timeout; failures are not errors of any order.
    fn close(&self, session: Self::Session) -> impl Future<Output = ()>;
}
