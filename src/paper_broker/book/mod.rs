//! The paper broker's order book: orders by id, client order ids, positions per account and
//! symbol, and the venue's rules for a new order and for a fill.
//!
//! Everything here is synchronous and lives behind one mutex in [`super::State`]; the HTTP
//! layer only translates requests into calls on [`Book`]. The order types are in `order` and
//! the deterministic simulated mid price in `market`, both re-exported here.

mod market;
mod order;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::Duration;

pub use market::{AMPLITUDE, Market};
pub use order::{
    Ack, Counts, DEFAULT_ACCOUNT, Invalid, NewOrder, Order, OrderStatus, OrderType, Position, Side,
    StatusFilter, TimeInForce,
};

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
