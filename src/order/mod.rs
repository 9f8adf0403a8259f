//! The order client: how prodready talks to a venue, apart from what it measures or judges.
//!
//! The `latency` probe and the soak's `order` monitor both send orders; this module is what
//! they share, so an order is rendered, sent and recognised the same way by both:
//! - [`template`]: the order templates (`{{seq}}`, `{{uuid}}`, …) and the crate's one random
//!   generator ([`template::Rng`]).
//!
//! It depends on nothing above it: the probes and the soak use it, never the reverse (see
//! ARCHITECTURE.md).

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
