//! The order client: how prodready talks to a venue, apart from what it measures or judges.
//!
//! The `latency` probe and the soak's `order` monitor both send orders; this module is what
//! they share, so an order is rendered, sent and recognised the same way by both:
//! - [`transport`]: the `transport` key (`http`, `websocket`, `fix`) and the URLs of each;
//! - [`keys`]: the configuration keys both declare once (the FIX session, the FIX order
//!   template), with their own error type, [`keys::KeyError`];
//! - [`template`]: the order templates (`{{seq}}`, `{{uuid}}`, …) and the crate's one random
//!   generator ([`template::Rng`]);
//! - [`connect`]: connections, plain TCP or TLS with ALPN, their set-up timed on [`clock`];
//! - the wire clients: [`http1`] (HTTP/1.1 at the cost floor), [`h2`] (HTTP/2),
//!   [`websocket`] (the handshake and messages), [`fix`] (the pipelined FIX order wire, on the
//!   session of [`crate::fix`]);
//! - [`pipelined`]: the contract of a pipelined order transport ([`pipelined::OrderTransport`]),
//!   which [`fix`] and the latency probe's WebSocket wire implement and its engine drives.
//!
//! What an answer must hold to count (an HTTP status, a JSON pointer's value) is the caller's
//! rule, not the client's: the latency probe judges it with the rules of `probe::expect`.
//!
//! It depends only on [`crate::fix`] and [`crate::units`]: the probes and the soak use it,
//! never the reverse, and it knows nothing of how they measure (see ARCHITECTURE.md).

pub mod clock;
pub mod connect;
pub mod fix;
pub mod h2;
pub mod http1;
pub mod keys;
pub mod pipelined;
pub mod template;
pub mod transport;
pub mod websocket;

/// A short one-line excerpt of a response body for error messages.
pub fn snippet(bytes: &[u8]) -> String {
    let t = String::from_utf8_lossy(bytes);
    let one_line: String = t
        .chars()
        .take(160)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().to_string()
}
