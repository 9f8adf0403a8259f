//! The paper broker's order book: orders by id, client order ids, positions per account and
//! symbol, and the deterministic simulated mid price.
//!
//! Everything here is synchronous and lives behind one mutex in [`super::State`]; the HTTP
//! layer only translates requests into calls on [`Book`]. The mid price is a pure function of
//! the symbol, the seed and the time since start, so two brokers started with the same seed
//! quote the same prices at the same offsets, and tests can predict fills.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

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

/// The simulated market: a mid price per symbol that oscillates deterministically.
#[derive(Debug, Clone)]
pub struct Market {
    seed: u64,
    /// Period of one full price oscillation.
    pub period: Duration,
}

/// Relative amplitude of the oscillation around the base price (0.5 %).
pub const AMPLITUDE: f64 = 0.005;

impl Market {
    /// A market with this seed and oscillation period.
    pub fn new(seed: u64, period: Duration) -> Market {
        Market { seed, period }
    }

    /// Mid price of `symbol` at `t` since start, rounded to a 0.01 tick:
    /// `base · (1 + 0.5 % · sin(2π t / period + φ))`, with base in 100.00..199.99 and phase φ
    /// both derived from an FNV-1a hash of the symbol and the seed.
    pub fn mid(&self, symbol: &str, t: Duration) -> f64 {
        let h = fnv1a(symbol.as_bytes(), self.seed);
        let base = 100.0 + (h % 10_000) as f64 / 100.0;
        let phase = ((h >> 20) % 6283) as f64 / 1000.0;
        let x = std::f64::consts::TAU * t.as_secs_f64() / self.period.as_secs_f64().max(1e-3);
        let p = base * (1.0 + AMPLITUDE * (x + phase).sin());
        (p * 100.0).round() / 100.0
    }
}

fn fnv1a(bytes: &[u8], seed: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ seed;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Why a new order is invalid (answered with HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid(pub String);

/// Orders, client ids and positions.
///
/// Open (resting) orders are kept until they fill or are cancelled; finished orders (filled,
/// cancelled, rejected) are kept for `GET /api/v1/orders/{id}` and duplicate `client_order_id`
/// detection up to a bounded history, oldest evicted first, so memory stays flat however long
/// the venue runs (a 30-day soak at 200 orders/s would otherwise hold half a billion orders).
#[derive(Debug)]
pub struct Book {
    market: Market,
    next_id: u64,
    orders: HashMap<String, Order>,
    by_client: HashMap<String, String>,
    resting: BTreeMap<String, ()>,
    /// By (account, symbol).
    positions: BTreeMap<(String, String), Position>,
    finished: VecDeque<String>,
    history: usize,
    /// Counters.
    pub counts: Counts,
}

impl Book {
    /// An empty book on `market` keeping at most `history` finished orders (at least 1).
    pub fn new(market: Market, history: usize) -> Book {
        Book {
            market,
            next_id: 0,
            orders: HashMap::new(),
            by_client: HashMap::new(),
            resting: BTreeMap::new(),
            positions: BTreeMap::new(),
            finished: VecDeque::new(),
            history: history.max(1),
            counts: Counts::default(),
        }
    }

    /// The simulated mid price of `symbol` at `t`.
    pub fn mid(&self, symbol: &str, t: Duration) -> f64 {
        self.market.mid(symbol, t)
    }

    /// Number of resting (open) orders.
    pub fn open_orders(&self) -> usize {
        self.resting.len()
    }

    /// Place an order at `t` since start.
    ///
    /// # Errors
    /// [`Invalid`] for an order that breaks the venue's rules (HTTP 400). A duplicate client
    /// order id is not an error here: it returns a `rejected` acknowledgement (HTTP 409).
    pub fn place(&mut self, o: NewOrder, t: Duration) -> Result<(Ack, bool), Invalid> {
        let (symbol, account) = validate(&o)?;
        if let Some(c) = &o.client_order_id
            && self.by_client.contains_key(c)
        {
            self.counts.rejected += 1;
            return Ok((
                Ack {
                    order_id: None,
                    client_order_id: Some(c.clone()),
                    status: OrderStatus::Rejected,
                    reason: Some("duplicate client_order_id".into()),
                    filled_price: None,
                },
                true,
            ));
        }
        self.next_id += 1;
        let order_id = format!("ord-{:08}", self.next_id);
        let tif = o.time_in_force.unwrap_or_default();
        let mid = self.market.mid(&symbol, t);
        let crosses = match (o.order_type, o.limit_price) {
            (OrderType::Market, _) => true,
            (OrderType::Limit, Some(p)) => crosses(o.side, p, mid),
            (OrderType::Limit, None) => false,
        };
        let (status, reason, filled_price) = if crosses {
            (OrderStatus::Filled, None, Some(mid))
        } else if tif == TimeInForce::Ioc {
            (
                OrderStatus::Rejected,
                Some("immediate-or-cancel limit order not marketable".to_string()),
                None,
            )
        } else {
            (OrderStatus::Accepted, None, None)
        };
        let order = Order {
            order_id: order_id.clone(),
            client_order_id: o.client_order_id.clone(),
            symbol,
            side: o.side,
            qty: o.qty,
            order_type: o.order_type,
            limit_price: o.limit_price,
            time_in_force: tif,
            status,
            reason: reason.clone(),
            filled_price,
            created_ms: t.as_millis() as u64,
            account,
        };
        self.record(order, mid);
        Ok((
            Ack {
                order_id: Some(order_id),
                client_order_id: o.client_order_id,
                status,
                reason,
                filled_price,
            },
            false,
        ))
    }

    /// Store a new order: count it, apply a fill at `mid`, rest it or finish it.
    fn record(&mut self, order: Order, mid: f64) {
        let id = order.order_id.clone();
        match order.status {
            OrderStatus::Filled => {
                self.counts.filled += 1;
                self.apply_fill(&order, mid);
            }
            OrderStatus::Accepted => {
                self.counts.accepted += 1;
                self.resting.insert(id.clone(), ());
            }
            _ => self.counts.rejected += 1,
        }
        if let Some(c) = &order.client_order_id {
            self.by_client.insert(c.clone(), id.clone());
        }
        let open = order.status.is_open();
        self.orders.insert(id.clone(), order);
        if !open {
            self.finish(id);
        }
    }

    fn apply_fill(&mut self, order: &Order, price: f64) {
        let p = self
            .positions
            .entry((order.account.clone(), order.symbol.clone()))
            .or_insert_with(|| Position {
                account: order.account.clone(),
                symbol: order.symbol.clone(),
                ..Position::default()
            });
        match order.side {
            Side::Buy => {
                p.qty += order.qty;
                p.bought += order.qty;
                p.cash -= order.qty * price;
            }
            Side::Sell => {
                p.qty -= order.qty;
                p.sold += order.qty;
                p.cash += order.qty * price;
            }
        }
    }

    /// Fill every resting limit order that the mid price at `t` crosses; returns how many.
    pub fn match_resting(&mut self, t: Duration) -> usize {
        let ids: Vec<String> = self.resting.keys().cloned().collect();
        let mut filled = 0;
        for id in ids {
            let Some(o) = self.orders.get(&id) else {
                continue;
            };
            let mid = self.market.mid(&o.symbol, t);
            let Some(limit) = o.limit_price else { continue };
            if crosses(o.side, limit, mid) {
                let mut o = o.clone();
                o.status = OrderStatus::Filled;
                o.filled_price = Some(mid);
                self.apply_fill(&o, mid);
                self.orders.insert(id.clone(), o);
                self.resting.remove(&id);
                self.counts.filled += 1;
                filled += 1;
                self.finish(id);
            }
        }
        filled
    }

    /// The venue id of the order with this client order id, while it is kept.
    pub fn order_id_of(&self, client_order_id: &str) -> Option<&str> {
        self.by_client.get(client_order_id).map(String::as_str)
    }

    /// The order with this venue id.
    pub fn get(&self, id: &str) -> Option<&Order> {
        self.orders.get(id)
    }

    /// Cancel a resting order. `Ok` with the cancelled order; `Err(None)` when unknown;
    /// `Err(Some(status))` when it is no longer open.
    pub fn cancel(&mut self, id: &str) -> Result<Order, Option<OrderStatus>> {
        let Some(o) = self.orders.get_mut(id) else {
            return Err(None);
        };
        if o.status != OrderStatus::Accepted {
            return Err(Some(o.status));
        }
        o.status = OrderStatus::Cancelled;
        let cancelled = o.clone();
        self.resting.remove(id);
        self.counts.cancelled += 1;
        self.finish(id.to_string());
        Ok(cancelled)
    }

    /// Record that order `id` reached a final state; evict the oldest finished orders (and
    /// their client ids) beyond the history bound.
    fn finish(&mut self, id: String) {
        self.finished.push_back(id);
        while self.finished.len() > self.history {
            let Some(old) = self.finished.pop_front() else {
                break;
            };
            if let Some(o) = self.orders.remove(&old)
                && let Some(c) = o.client_order_id
                && self.by_client.get(&c) == Some(&old)
            {
                self.by_client.remove(&c);
            }
        }
    }

    /// Finished orders currently kept.
    pub fn finished_orders(&self) -> usize {
        self.finished.len()
    }

    /// Positions with the current mid price at `t`, of one account or (`None`) of all,
    /// ordered by account and symbol.
    pub fn positions(&self, t: Duration, account: Option<&str>) -> Vec<Position> {
        self.positions
            .values()
            .filter(|p| account.is_none_or(|a| p.account == a))
            .map(|p| Position {
                mid: self.market.mid(&p.symbol, t),
                ..p.clone()
            })
            .collect()
    }

    /// The orders still kept (every open one, finished ones up to the history bound), oldest
    /// first, filtered by account and by `filter`.
    pub fn orders(&self, account: Option<&str>, filter: StatusFilter) -> Vec<Order> {
        let mut out: Vec<Order> = self
            .orders
            .values()
            .filter(|o| account.is_none_or(|a| o.account == a) && filter.admits(o.status))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.order_id.cmp(&b.order_id));
        out
    }
}

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

    fn admits(self, status: OrderStatus) -> bool {
        match self {
            StatusFilter::All => true,
            StatusFilter::Open => status.is_open(),
            StatusFilter::Exactly(s) => s == status,
        }
    }
}

/// Check the venue's rules on a new order; returns its trimmed symbol and its account.
fn validate(o: &NewOrder) -> Result<(String, String), Invalid> {
    let symbol = o.symbol.trim().to_string();
    if symbol.is_empty() || symbol.len() > 32 {
        return Err(Invalid("symbol must be 1 to 32 characters".into()));
    }
    if !(o.qty.is_finite() && o.qty > 0.0) {
        return Err(Invalid("qty must be a positive number".into()));
    }
    match (o.order_type, o.limit_price) {
        (OrderType::Limit, None) => {
            return Err(Invalid("a limit order needs limit_price".into()));
        }
        (OrderType::Limit, Some(p)) if !(p.is_finite() && p > 0.0) => {
            return Err(Invalid("limit_price must be a positive number".into()));
        }
        (OrderType::Market, Some(_)) => {
            return Err(Invalid("a market order takes no limit_price".into()));
        }
        _ => {}
    }
    if let Some(c) = &o.client_order_id
        && (c.is_empty() || c.len() > 64)
    {
        return Err(Invalid("client_order_id must be 1 to 64 characters".into()));
    }
    let account = o.account.as_deref().unwrap_or(DEFAULT_ACCOUNT).trim();
    if account.is_empty() || account.len() > 64 {
        return Err(Invalid("account must be 1 to 64 characters".into()));
    }
    Ok((symbol, account.to_string()))
}

/// A buy crosses when the mid is at or below its limit; a sell when at or above.
fn crosses(side: Side, limit: f64, mid: f64) -> bool {
    match side {
        Side::Buy => mid <= limit,
        Side::Sell => mid >= limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order(side: Side, t: OrderType, price: Option<f64>, cid: &str) -> NewOrder {
        NewOrder {
            symbol: "NIFTY".into(),
            side,
            qty: 2.0,
            order_type: t,
            limit_price: price,
            client_order_id: Some(cid.into()),
            time_in_force: None,
            account: None,
        }
    }

    #[test]
    fn mid_price_is_deterministic_and_stays_within_the_amplitude() {
        let m = Market::new(7, Duration::from_secs(60));
        let a = m.mid("NIFTY", Duration::from_millis(1234));
        assert_eq!(a, m.mid("NIFTY", Duration::from_millis(1234)));
        let base = m.mid("NIFTY", Duration::ZERO);
        for s in 0..120 {
            let p = m.mid("NIFTY", Duration::from_secs(s));
            assert!((100.0..=201.0).contains(&p), "{p}");
            assert!((p - base).abs() <= base * 2.0 * AMPLITUDE + 0.02);
        }
    }

    #[test]
    fn resting_limit_fills_once_the_mid_crosses_it() {
        let market = Market::new(1, Duration::from_secs(10));
        let mut b = Book::new(market.clone(), 10_000);
        let t0 = Duration::ZERO;
        let lowest = (0..1000)
            .map(|ms| market.mid("NIFTY", Duration::from_millis(ms * 10)))
            .fold(f64::MAX, f64::min);
        let (ack, _) = b
            .place(order(Side::Buy, OrderType::Limit, Some(lowest), "a"), t0)
            .unwrap();
        let id = ack.order_id.unwrap();
        assert_eq!(b.get(&id).unwrap().status, OrderStatus::Accepted);
        let mut filled = false;
        for ms in 0..1000 {
            if b.match_resting(Duration::from_millis(ms * 10)) > 0 {
                filled = true;
                break;
            }
        }
        assert!(filled);
        assert_eq!(b.get(&id).unwrap().status, OrderStatus::Filled);
        assert_eq!(b.positions(t0, None)[0].qty, 2.0);
        assert_eq!(b.positions(t0, None)[0].account, DEFAULT_ACCOUNT);
    }

    #[test]
    fn duplicate_client_order_id_is_rejected_and_creates_no_order() {
        let mut b = Book::new(Market::new(0, Duration::from_secs(60)), 10_000);
        let (a, dup) = b
            .place(
                order(Side::Sell, OrderType::Market, None, "x"),
                Duration::ZERO,
            )
            .unwrap();
        assert!(!dup);
        assert_eq!(a.status, OrderStatus::Filled);
        let (a2, dup2) = b
            .place(
                order(Side::Sell, OrderType::Market, None, "x"),
                Duration::ZERO,
            )
            .unwrap();
        assert!(dup2);
        assert_eq!(a2.status, OrderStatus::Rejected);
        assert_eq!(a2.order_id, None);
        assert_eq!(b.counts.filled, 1);
        assert_eq!(b.counts.rejected, 1);
    }

    #[test]
    fn invalid_orders_are_refused_with_a_reason() {
        let mut b = Book::new(Market::new(0, Duration::from_secs(60)), 10_000);
        let e = b
            .place(
                order(Side::Buy, OrderType::Limit, None, "l"),
                Duration::ZERO,
            )
            .unwrap_err();
        assert!(e.0.contains("limit_price"));
        let mut o = order(Side::Buy, OrderType::Market, None, "q");
        o.qty = 0.0;
        assert!(b.place(o, Duration::ZERO).is_err());
    }

    #[test]
    fn finished_orders_are_evicted_beyond_the_history_bound() {
        let mut b = Book::new(Market::new(0, Duration::from_secs(60)), 3);
        for i in 0..10 {
            let (ack, dup) = b
                .place(
                    order(Side::Buy, OrderType::Market, None, &format!("c{i}")),
                    Duration::ZERO,
                )
                .unwrap();
            assert!(!dup && ack.status == OrderStatus::Filled);
        }
        assert_eq!(b.finished_orders(), 3);
        assert!(b.get("ord-00000001").is_none(), "oldest evicted");
        assert!(b.get("ord-00000010").is_some(), "newest kept");
        // Within the history a duplicate client id is still rejected…
        let (ack, dup) = b
            .place(
                order(Side::Buy, OrderType::Market, None, "c9"),
                Duration::ZERO,
            )
            .unwrap();
        assert!(dup && ack.status == OrderStatus::Rejected);
        // …and a resting order is never evicted.
        let (rest, _) = b
            .place(
                order(Side::Buy, OrderType::Limit, Some(1.0), "resting"),
                Duration::ZERO,
            )
            .unwrap();
        for i in 10..20 {
            b.place(
                order(Side::Buy, OrderType::Market, None, &format!("c{i}")),
                Duration::ZERO,
            )
            .unwrap();
        }
        assert!(b.get(rest.order_id.as_deref().unwrap()).is_some());
    }
}
