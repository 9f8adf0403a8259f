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
pub mod keys;
pub mod template;
pub mod transport;
