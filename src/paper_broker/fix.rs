//! The paper broker's FIX acceptor (`--fix-listen`): FIX 4.4 (and 4.2) sessions whose
//! NewOrderSingle (35=D) and OrderCancelRequest (35=F) go to the same simulated [`Book`] as
//! the HTTP API, under the same faults.
//!
//! | inbound | answer |
//! |---|---|
//! | Logon (35=A) to `--fix-comp-id` | Logon, echoing HeartBtInt(108) and ResetSeqNumFlag(141) |
//! | Logon to another TargetCompID, or while logins are rejected | Logout (35=5) with Text(58), then close |
//! | NewOrderSingle | ExecutionReport (35=8) New (OrdStatus(39)=0), then Trade / Fill (39=2) when the order fills at once, or Rejected (39=8) with Text(58) |
//! | NewOrderSingle without a required field or with a bad value | Reject (35=3) with RefTagID(371) |
//! | OrderCancelRequest | ExecutionReport Canceled (39=4), or OrderCancelReject (35=9) |
//! | another application message | BusinessMessageReject (35=j) |
//!
//! Faults (`/admin/faults` and the command line): a stall holds every order that arrives
//! during it until it ends; added latency delays each order; the error rate answers an order
//! with OrdStatus=8 "injected fault" (as HTTP answers 503). Delayed orders are answered by a
//! task of their own, so one delay does not hold the orders behind it, as over HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use refix_message::RawMessage;
use tokio::io::AsyncWriteExt;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::State;
use super::book::{self, Ack, NewOrder, OrderStatus, OrderType, Side, TimeInForce};
use crate::fix::session::{Event, Role, Session, SessionConfig};
use crate::fix::{Fields, FixError, Reader, Version, codec, msg_type as mt, tag};

/// One outbound application message: MsgType(35) and body.
type Outbound = (&'static str, Fields);

/// A session's byte stream: plain TCP, or TLS when the broker has a certificate.
trait Io: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Io for T {}

/// Accept FIX sessions on `listener` until shutdown; over TLS (`fix+tls://`) when `tls` is
/// given (the broker's `--tls-cert`), each handshake in the session's own task.
pub(super) async fn serve(
    listener: TcpListener,
    comp_id: String,
    state: Arc<State>,
    tls: Option<TlsAcceptor>,
) {
    let comp_id: Arc<str> = comp_id.into();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = state.shutdown.cancelled() => return,
        };
        let Ok((tcp, peer)) = accepted else { continue };
        let _ = tcp.set_nodelay(true);
        let (state, comp_id, tls) = (state.clone(), comp_id.clone(), tls.clone());
        tokio::spawn(async move {
            let r = match tls {
                None => session(tcp, &comp_id, &state).await,
                Some(tls) => {
                    match tokio::time::timeout(Duration::from_secs(10), tls.accept(tcp)).await {
                        Ok(Ok(stream)) => session(stream, &comp_id, &state).await,
                        Ok(Err(e)) => Err(FixError::Io(format!("TLS handshake: {e}"))),
                        Err(_) => Err(FixError::Io("no TLS handshake within 10 s".into())),
                    }
                }
            };
            if let Err(e) = r {
                eprintln!("paper broker: FIX session from {peer}: {e}");
            }
        });
    }
}

/// Wait for the Logon and check it: the version, our CompID, logins allowed. Returns the
/// session logged on (our Logon sent).
async fn logon(
    tcp: &mut impl Io,
    reader: &mut Reader,
    comp_id: &str,
    state: &State,
) -> Result<Session, FixError> {
    let first = tokio::time::timeout(Duration::from_secs(10), reader.next(tcp))
        .await
        .map_err(|_| FixError::Timeout("no Logon within 10 s".into()))??;
    let kind = codec::text(&first, tag::MSG_TYPE);
    if kind != mt::LOGON {
        return Err(FixError::Protocol(format!(
            "the first message is 35={kind}, not Logon (35=A)"
        )));
    }
    let version = match codec::text(&first, tag::BEGIN_STRING) {
        "FIX.4.4" => Version::Fix44,
        "FIX.4.2" => Version::Fix42,
        other => {
            return Err(FixError::Protocol(format!(
                "BeginString(8) \"{other}\": this acceptor speaks FIX.4.4 and FIX.4.2"
            )));
        }
    };
    let heartbeat = codec::int(&first, tag::HEART_BT_INT)
        .unwrap_or(30)
        .clamp(1, 3600) as u64;
    let config = SessionConfig {
        version,
        sender_comp_id: comp_id.to_string(),
        target_comp_id: codec::text(&first, tag::SENDER_COMP_ID).to_string(),
        heartbeat: Duration::from_secs(heartbeat),
        reset_seq_num: codec::text(&first, tag::RESET_SEQ_NUM_FLAG) == "Y",
        username: None,
        password: None,
    };
    let mut s = Session::new(config, Role::Acceptor);
    let target = codec::text(&first, tag::TARGET_COMP_ID);
    let refusal = if target != comp_id {
        Some(format!(
            "unknown TargetCompID(56) \"{target}\": this acceptor is \"{comp_id}\""
        ))
    } else if state.faults.rejects_logins() {
        Some("not logged in".to_string())
    } else {
        None
    };
    let mut out = Vec::new();
    if let Some(text) = refusal {
        s.logout(Some(&text), &mut out);
        let _ = tcp.write_all(&out).await;
        return Err(FixError::LogonRejected(text));
    }
    if let Err(e) = s.inbound(&first, &mut out) {
        s.logout(Some(&e.to_string()), &mut out);
        let _ = tcp.write_all(&out).await;
        return Err(e);
    }
    s.logon(&mut out);
    write(tcp, &out).await?;
    Ok(s)
}

/// One session: logon, then orders until Logout, a broken session or shutdown.
async fn session(mut tcp: impl Io, comp_id: &str, state: &Arc<State>) -> Result<(), FixError> {
    let mut reader = Reader::new();
    let mut s = logon(&mut tcp, &mut reader, comp_id, state).await?;
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<Outbound>>();
    let mut out = Vec::new();
    let mut next_tick = tokio::time::Instant::now();
    loop {
        tokio::select! {
            m = reader.next(&mut tcp) => {
                let m = match m {
                    Ok(m) => m,
                    Err(FixError::Io(_)) => return Ok(()),
                    Err(e) => {
                        s.logout(Some(&e.to_string()), &mut out);
                        let _ = tcp.write_all(&out).await;
                        return Err(e);
                    }
                };
                let event = match s.inbound(&m, &mut out) {
                    Ok(ev) => ev,
                    Err(e) => {
                        s.logout(Some(&e.to_string()), &mut out);
                        let _ = tcp.write_all(&out).await;
                        return Err(e);
                    }
                };
                write(&mut tcp, &out).await?;
                match event {
                    Event::Logout(_) => {
                        s.logout(None, &mut out);
                        let _ = tcp.write_all(&out).await;
                        return Ok(());
                    }
                    Event::App(kind) => {
                        let now = application(&kind, &m, state, &tx);
                        send(&mut s, &mut tcp, now, &mut out).await?;
                    }
                    Event::Admin | Event::Logon => {}
                }
            }
            Some(later) = rx.recv() => send(&mut s, &mut tcp, later, &mut out).await?,
            _ = tokio::time::sleep_until(next_tick) => {
                next_tick = s.tick(tokio::time::Instant::now(), &mut out)?;
                write(&mut tcp, &out).await?;
            }
            _ = state.shutdown.cancelled() => {
                s.logout(Some("the paper broker is shutting down"), &mut out);
                let _ = tcp.write_all(&out).await;
                return Ok(());
            }
        }
    }
}

/// Write `out` unless it is empty.
async fn write(tcp: &mut impl Io, out: &[u8]) -> Result<(), FixError> {
    if out.is_empty() {
        return Ok(());
    }
    tcp.write_all(out)
        .await
        .map_err(|e| FixError::Io(format!("writing: {e}")))
}

/// Send application messages, each with the next MsgSeqNum.
async fn send(
    s: &mut Session,
    tcp: &mut impl Io,
    msgs: Vec<Outbound>,
    out: &mut Vec<u8>,
) -> Result<(), FixError> {
    for (kind, body) in msgs {
        s.write(kind, body.as_bytes(), out);
        write(tcp, out).await?;
    }
    Ok(())
}

/// Answer one application message: now (returned), or later through `tx` when a fault delays
/// it.
fn application(
    kind: &str,
    m: &RawMessage,
    state: &Arc<State>,
    tx: &mpsc::UnboundedSender<Vec<Outbound>>,
) -> Vec<Outbound> {
    let seq = codec::int(m, tag::MSG_SEQ_NUM).unwrap_or(0);
    match kind {
        mt::NEW_ORDER_SINGLE => {
            let order = match parse_order(m) {
                Ok(o) => o,
                Err((tag, reason, text)) => return vec![reject(seq, kind, tag, reason, &text)],
            };
            let delay = state
                .faults
                .stall_remaining(state.since_start(), Instant::now())
                .unwrap_or_default()
                + state.faults.added_latency().unwrap_or_default();
            if delay.is_zero() {
                return place(state, order, m);
            }
            let (state, tx, m) = (state.clone(), tx.clone(), m.clone());
            tokio::spawn(async move {
                tokio::select! {
                    _ = super::faults::added_delay(delay) => {}
                    _ = state.shutdown.cancelled() => {}
                }
                let _ = tx.send(place(&state, order, &m));
            });
            Vec::new()
        }
        mt::ORDER_CANCEL_REQUEST => vec![cancel(state, m)],
        other => {
            let mut f = Fields::new();
            f.add(tag::REF_SEQ_NUM, seq)
                .add(372, other)
                .add(tag::BUSINESS_REJECT_REASON, 3)
                .add(
                    tag::TEXT,
                    format!("unsupported message type 35={other}: this venue takes 35=D and 35=F"),
                );
            vec![(mt::BUSINESS_MESSAGE_REJECT, f)]
        }
    }
}

/// A session-level Reject (35=3) of MsgSeqNum `seq`: RefTagID(371), RefMsgType(372),
/// SessionRejectReason(373) and Text(58).
fn reject(seq: i64, kind: &str, ref_tag: u32, reason: u32, text: &str) -> Outbound {
    let mut f = Fields::new();
    f.add(tag::REF_SEQ_NUM, seq)
        .add(371, ref_tag)
        .add(372, kind)
        .add(tag::SESSION_REJECT_REASON, reason)
        .add(tag::TEXT, text);
    (mt::REJECT, f)
}

/// A NewOrderSingle as the book's order, or (RefTagID, SessionRejectReason, Text): 1 is a
/// missing required tag, 5 a value out of range (FIX 4.4 SessionRejectReason).
fn parse_order(m: &RawMessage) -> Result<NewOrder, (u32, u32, String)> {
    let required = |t: u32, name: &str| {
        let v = codec::text(m, t);
        if v.is_empty() {
            Err((t, 1, format!("required tag missing: {name}({t})")))
        } else {
            Ok(v)
        }
    };
    let bad = |t: u32, name: &str, v: &str| {
        (t, 5, format!("value is incorrect for {name}({t}): \"{v}\""))
    };
    let cl_ord_id = required(tag::CL_ORD_ID, "ClOrdID")?;
    let symbol = required(tag::SYMBOL, "Symbol")?;
    let side = match required(tag::SIDE, "Side")? {
        "1" => Side::Buy,
        "2" => Side::Sell,
        v => return Err(bad(tag::SIDE, "Side", v)),
    };
    let qty_text = required(tag::ORDER_QTY, "OrderQty")?;
    let qty: f64 = qty_text
        .parse()
        .map_err(|_| bad(tag::ORDER_QTY, "OrderQty", qty_text))?;
    let order_type = match required(tag::ORD_TYPE, "OrdType")? {
        "1" => OrderType::Market,
        "2" => OrderType::Limit,
        v => return Err(bad(tag::ORD_TYPE, "OrdType", v)),
    };
    let price = match codec::text(m, tag::PRICE) {
        "" => None,
        p => Some(p.parse::<f64>().map_err(|_| bad(tag::PRICE, "Price", p))?),
    };
    let time_in_force = match codec::text(m, tag::TIME_IN_FORCE) {
        "" | "0" => None,
        "1" => Some(TimeInForce::Gtc),
        "3" => Some(TimeInForce::Ioc),
        v => return Err(bad(tag::TIME_IN_FORCE, "TimeInForce", v)),
    };
    let account = match codec::text(m, tag::ACCOUNT) {
        "" => None,
        a => Some(a.to_string()),
    };
    Ok(NewOrder {
        symbol: symbol.to_string(),
        side,
        qty,
        order_type,
        limit_price: price,
        client_order_id: Some(cl_ord_id.to_string()),
        time_in_force,
        account,
    })
}

/// Place the order in the book (or fail it as an injected fault) and return its
/// ExecutionReports.
fn place(state: &State, order: NewOrder, m: &RawMessage) -> Vec<Outbound> {
    let started = Instant::now();
    let version = codec::text(m, tag::BEGIN_STRING);
    let report = Report {
        fix42: version == "FIX.4.2",
        cl_ord_id: order.client_order_id.clone().unwrap_or_default(),
        symbol: order.symbol.clone(),
        side: if order.side == Side::Buy { "1" } else { "2" },
        qty: order.qty,
    };
    let reports = if state.faults.draw_error() {
        state.metrics.count_injected_error();
        vec![report.rejected("NONE", "injected fault")]
    } else {
        let placed = state.book().place(order, state.since_start());
        match placed {
            Err(book::Invalid(text)) => {
                state.metrics.count_invalid();
                vec![report.rejected("NONE", &format!("invalid order: {text}"))]
            }
            Ok((ack, _)) => report.for_ack(&ack),
        }
    };
    state.metrics.observe_order(started.elapsed());
    reports
}

/// Cancel the order with OrigClOrdID(41): ExecutionReport Canceled, or OrderCancelReject.
fn cancel(state: &State, m: &RawMessage) -> Outbound {
    let orig = codec::text(m, tag::ORIG_CL_ORD_ID);
    let cl_ord_id = codec::text(m, tag::CL_ORD_ID);
    let mut b = state.book();
    b.match_resting(state.since_start());
    let order_id = b.order_id_of(orig).map(str::to_string);
    let result = match &order_id {
        Some(id) => b.cancel(id),
        None => Err(None),
    };
    drop(b);
    match result {
        Ok(o) => {
            let mut f = Fields::new();
            f.add(tag::ORDER_ID, &o.order_id)
                .add(tag::CL_ORD_ID, cl_ord_id)
                .add(tag::ORIG_CL_ORD_ID, orig)
                .add(tag::EXEC_ID, format!("{}-cxl", o.order_id));
            if codec::text(m, tag::BEGIN_STRING) == "FIX.4.2" {
                f.add(tag::EXEC_TRANS_TYPE, 0);
            }
            f.add(tag::EXEC_TYPE, 4)
                .add(tag::ORD_STATUS, 4)
                .add(tag::SYMBOL, &o.symbol)
                .add(tag::SIDE, if o.side == Side::Buy { 1 } else { 2 })
                .add(tag::ORDER_QTY, o.qty)
                .add(tag::LEAVES_QTY, 0)
                .add(tag::CUM_QTY, 0)
                .add(tag::AVG_PX, 0)
                .add(tag::TRANSACT_TIME, crate::fix::utc_timestamp());
            (mt::EXECUTION_REPORT, f)
        }
        Err(status) => {
            let (reason, text, ord_status) = match status {
                None => (1, format!("unknown order: OrigClOrdID(41) \"{orig}\""), "8"),
                Some(s) => (
                    0,
                    format!("order is {}, not open", s.as_str()),
                    ord_status(s),
                ),
            };
            let mut f = Fields::new();
            f.add(tag::ORDER_ID, order_id.as_deref().unwrap_or("NONE"))
                .add(tag::CL_ORD_ID, cl_ord_id)
                .add(tag::ORIG_CL_ORD_ID, orig)
                .add(tag::ORD_STATUS, ord_status)
                .add(434, 1)
                .add(102, reason)
                .add(tag::TEXT, text);
            (mt::ORDER_CANCEL_REJECT, f)
        }
    }
}

/// OrdStatus(39) of a book status.
fn ord_status(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Accepted => "0",
        OrderStatus::Filled => "2",
        OrderStatus::Cancelled => "4",
        OrderStatus::Rejected => "8",
    }
}

/// What every ExecutionReport of one order repeats.
struct Report {
    fix42: bool,
    cl_ord_id: String,
    symbol: String,
    side: &'static str,
    qty: f64,
}

impl Report {
    /// The reports for an acknowledgement: New, then Trade (Fill in 4.2) when filled at once;
    /// Rejected with the reason.
    fn for_ack(&self, ack: &Ack) -> Vec<Outbound> {
        let id = ack.order_id.clone().unwrap_or_else(|| "NONE".into());
        match ack.status {
            OrderStatus::Rejected => {
                vec![self.rejected(&id, ack.reason.as_deref().unwrap_or("rejected"))]
            }
            status => {
                let mut v = vec![self.report(&id, 1, "0", "0", self.qty, None)];
                if status == OrderStatus::Filled {
                    let px = ack.filled_price.unwrap_or_default();
                    let trade = if self.fix42 { "2" } else { "F" };
                    v.push(self.report(&id, 2, trade, "2", 0.0, Some(px)));
                }
                v
            }
        }
    }

    /// An ExecutionReport with ExecType(150) and OrdStatus(39) 8 and Text(58).
    fn rejected(&self, order_id: &str, text: &str) -> Outbound {
        let (kind, mut f) = self.report(order_id, 1, "8", "8", 0.0, None);
        f.add(tag::TEXT, text);
        (kind, f)
    }

    /// One ExecutionReport; `fill_px` makes it a fill of the whole quantity.
    fn report(
        &self,
        order_id: &str,
        n: u32,
        exec_type: &str,
        ord_status: &str,
        leaves: f64,
        fill_px: Option<f64>,
    ) -> Outbound {
        let mut f = Fields::new();
        f.add(tag::ORDER_ID, order_id)
            .add(tag::CL_ORD_ID, &self.cl_ord_id)
            .add(tag::EXEC_ID, format!("{order_id}-{n}"));
        if self.fix42 {
            f.add(tag::EXEC_TRANS_TYPE, 0);
        }
        f.add(tag::EXEC_TYPE, exec_type)
            .add(tag::ORD_STATUS, ord_status)
            .add(tag::SYMBOL, &self.symbol)
            .add(tag::SIDE, self.side)
            .add(tag::ORDER_QTY, self.qty)
            .add(tag::LEAVES_QTY, leaves);
        match fill_px {
            Some(px) => {
                f.add(tag::CUM_QTY, self.qty)
                    .add(tag::AVG_PX, format!("{px:.4}"))
                    .add(tag::LAST_QTY, self.qty)
                    .add(tag::LAST_PX, format!("{px:.4}"));
            }
            None => {
                f.add(tag::CUM_QTY, 0).add(tag::AVG_PX, 0);
            }
        }
        f.add(tag::TRANSACT_TIME, crate::fix::utc_timestamp());
        (mt::EXECUTION_REPORT, f)
    }
}

/// Bind the FIX listener; returns it with its address.
///
/// # Errors
/// A message naming the address.
pub(super) async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), String> {
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("binding the FIX listener {addr}: {e}"))?;
    let a = l
        .local_addr()
        .map_err(|e| format!("reading the FIX listener's address: {e}"))?;
    Ok((l, a))
}
