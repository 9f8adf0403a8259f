//! Placing one order, the same for every order entry (HTTP, WebSocket): the added latency and
//! the error rate of the faults first, then the book; what it came to, counted in the metrics.

use super::State;
use super::book::{self, NewOrder};

/// What placing one order came to, for any order entry (HTTP or WebSocket).
pub(super) enum Placed {
    /// The injected error rate drew this order: it was not looked at.
    Injected,
    /// The order is malformed; why.
    Invalid(String),
    /// The acknowledgement; `true` for a duplicate `client_order_id` (no order created).
    Ack(book::Ack, bool),
}

/// Place one order from its JSON: the added latency, the error rate, then the book. Counts
/// injected errors, invalid orders and retained memory.
pub(super) async fn place(state: &State, order: serde_json::Result<NewOrder>) -> Placed {
    if let Some(wait) = state.faults.added_latency() {
        tokio::select! {
            _ = super::faults::added_delay(wait) => {}
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
