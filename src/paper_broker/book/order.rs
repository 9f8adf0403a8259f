//! What the venue's orders are made of: the order a client sends ([`NewOrder`]), the order as
//! stored ([`Order`]) and acknowledged ([`Ack`]), its lifecycle ([`OrderStatus`]), positions,
//! the counters and the status filter of a listing. Types only; [`super::Book`] applies the
//! rules.

use serde::{Deserialize, Serialize};

/// Buy or sell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    /// Buy.
    Buy,
    /// Sell.
    Sell,
}

/// Market or limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderType {
    /// Fill now at the simulated mid price.
    Market,
    /// Fill at the mid price once it reaches the limit; rest until then.
    Limit,
}

/// How long an order stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeInForce {
    /// Rest until filled or cancelled (this venue has no session end).
    #[default]
    Day,
    /// Good till cancelled.
    Gtc,
    /// Immediate or cancel: a limit order that cannot fill now is rejected.
    Ioc,
}

/// The JSON body of `POST /api/v1/orders`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    /// Instrument, e.g. `NIFTY`.
    pub symbol: String,
    /// `buy` or `sell`.
    pub side: Side,
    /// Quantity in units, > 0.
    #[serde(alias = "quantity")]
    pub qty: f64,
    /// `market` or `limit`.
    #[serde(rename = "type", alias = "order_type")]
    pub order_type: OrderType,
    /// Limit price; required for limit orders.
    #[serde(default, alias = "price")]
    pub limit_price: Option<f64>,
    /// The client's own id; a second order with the same id is rejected.
    #[serde(default)]
    pub client_order_id: Option<String>,
    /// Time in force; default `day`.
    #[serde(default)]
    pub time_in_force: Option<TimeInForce>,
    /// The trading account, 1 to 64 characters; default [`DEFAULT_ACCOUNT`]. Positions are
    /// kept per account and symbol.
    #[serde(default)]
    pub account: Option<String>,
}

/// The account of an order that names none.
pub const DEFAULT_ACCOUNT: &str = "default";

/// Lifecycle state of an order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OrderStatus {
    /// Resting (limit order not yet crossed).
    Accepted,
    /// Filled completely.
    Filled,
    /// Cancelled by the client.
    Cancelled,
    /// Refused; see the reason.
    Rejected,
}

impl OrderStatus {
    /// True while the order rests in the book (not filled, cancelled or rejected).
    pub fn is_open(self) -> bool {
        self == OrderStatus::Accepted
    }

    /// Lowercase name, as in JSON and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "accepted",
            OrderStatus::Filled => "filled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Rejected => "rejected",
        }
    }
}

/// One order as stored and returned by `GET /api/v1/orders/{id}`.
#[derive(Debug, Clone, Serialize)]
pub struct Order {
    /// Venue order id, `ord-00000001`.
    pub order_id: String,
    /// The client's id, if given.
    pub client_order_id: Option<String>,
    /// Instrument.
    pub symbol: String,
    /// Buy or sell.
    pub side: Side,
    /// Quantity.
    pub qty: f64,
    /// Market or limit.
    #[serde(rename = "type")]
    pub order_type: OrderType,
    /// Limit price for limit orders.
    pub limit_price: Option<f64>,
    /// Time in force.
    pub time_in_force: TimeInForce,
    /// Current state.
    pub status: OrderStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Fill price once filled.
    pub filled_price: Option<f64>,
    /// Milliseconds since the broker started when the order arrived.
    pub created_ms: u64,
    /// The trading account.
    pub account: String,
}

/// The acknowledgement returned by `POST /api/v1/orders`.
#[derive(Debug, Clone, Serialize)]
pub struct Ack {
    /// Venue order id (absent for a duplicate, which creates no order).
    pub order_id: Option<String>,
    /// The client's id, echoed.
    pub client_order_id: Option<String>,
    /// `accepted` (resting), `filled` or `rejected`.
    pub status: OrderStatus,
    /// Why it was rejected.
    pub reason: Option<String>,
    /// Fill price when filled.
    pub filled_price: Option<f64>,
}

/// Net position of one account in one symbol.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Position {
    /// The trading account.
    pub account: String,
    /// Instrument.
    pub symbol: String,
    /// Net quantity (buys minus sells).
    pub qty: f64,
    /// Units bought.
    pub bought: f64,
    /// Units sold.
    pub sold: f64,
    /// Cash flow: sell notional minus buy notional.
    pub cash: f64,
    /// Current simulated mid price.
    pub mid: f64,
}

/// Counters for metrics and the shutdown summary.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Acknowledged as resting (a counter: it does not go down when they fill later).
    pub accepted: u64,
    /// Filled (at once or later).
    pub filled: u64,
    /// Rejected (duplicates, IOC not marketable).
    pub rejected: u64,
    /// Cancelled by clients.
    pub cancelled: u64,
}

/// Why a new order is invalid (answered with HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Which orders `GET /api/v1/orders?status=…` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Every kept order (no `status` parameter).
    All,
    /// Resting orders: not filled, cancelled or rejected (`status=open`).
    Open,
    /// Orders in exactly this state (`status=filled`, …).
    Exactly(OrderStatus),
}

impl StatusFilter {
    /// Parse the `status` query value: `open`, `all`, `accepted`, `filled`, `cancelled` or
    /// `rejected`.
    ///
    /// # Errors
    /// A message naming the value and the accepted ones.
    pub fn parse(text: &str) -> Result<StatusFilter, String> {
        Ok(match text {
            "all" => StatusFilter::All,
            "open" => StatusFilter::Open,
            "accepted" => StatusFilter::Exactly(OrderStatus::Accepted),
            "filled" => StatusFilter::Exactly(OrderStatus::Filled),
            "cancelled" => StatusFilter::Exactly(OrderStatus::Cancelled),
            "rejected" => StatusFilter::Exactly(OrderStatus::Rejected),
            other => {
                return Err(format!(
                    "status: unknown value \"{other}\" (expected one of: open, all, accepted, filled, cancelled, rejected)"
                ));
            }
        })
    }

    pub(super) fn admits(self, status: OrderStatus) -> bool {
        match self {
            StatusFilter::All => true,
            StatusFilter::Open => status.is_open(),
            StatusFilter::Exactly(s) => s == status,
        }
    }
}
