//! FIX sessions (`transport = "fix"`): each connection logs on before the schedule starts,
//! then sends every released NewOrderSingle (35=D) at once, without waiting for earlier
//! answers, and matches ExecutionReports (35=8) to orders by ClOrdID(11). Session Rejects
//! (35=3) and BusinessMessageRejects (35=j) are matched by RefSeqNum(45). An order with no
//! answer within the timeout is swept as a timeout. At the end the session logs out.
//!
//! The latency of an order ends at its first ExecutionReport (`until = "ack"`) or at the one
//! with OrdStatus(39)=2, filled (`until = "fill"`); OrdStatus=8 is a rejected order. Anything
//! that breaks the session (a garbled message, a sequence gap, a Logout) stops the run with
//! that reason: the remaining orders could not be measured.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use refix_message::RawMessage;
use tokio::io::AsyncWriteExt;

use super::ErrorKind;
use super::clock::now_ns;
use super::engine::{Answer, Local, Slot, Times, connection_rng, next_due, record};
use super::transport::Stream;
use crate::fix::session::{self, Event, Role, Session, SessionConfig};
use crate::fix::{FixError, Reader, codec, msg_type as mt, tag};
use crate::probe::latency::template::Template;

/// When an order's latency ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the first ExecutionReport for its ClOrdID (the venue's acknowledgement).
    Ack,
    /// At the ExecutionReport with OrdStatus(39)=2 (filled).
    Fill,
}

/// What the FIX transport needs besides the shared plan.
#[derive(Debug, Clone)]
pub struct FixPlan {
    /// The session's identity and timers.
    pub session: SessionConfig,
    /// The NewOrderSingle body: `tag=value` fields separated by `|`, with the request
    /// placeholders; it holds ClOrdID(11).
    pub order: Template,
    /// Add TransactTime(60) (the template has none).
    pub transact_time: bool,
    /// When an order's latency ends.
    pub until: Until,
    /// Orders in flight per session at most; a released order waits for a free place.
    pub max_in_flight: usize,
}

/// A logged-on session and its stream.
pub(super) struct Conn {
    stream: Stream,
    session: Session,
    reader: Reader,
}

/// Log on over a fresh stream within `timeout`.
///
/// # Errors
/// The reason, e.g. the acceptor's Logout Text(58).
pub(super) async fn establish(
    mut stream: Stream,
    plan: &FixPlan,
    timeout: Duration,
) -> Result<Conn, String> {
    let mut s = Session::new(plan.session.clone(), Role::Initiator);
    let mut reader = Reader::new();
    session::initiate(&mut s, &mut reader, &mut stream, timeout)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Conn {
        stream,
        session: s,
        reader,
    })
}

/// An order waiting for its answer.
struct Pending {
    times: Times,
    seq: u64,
}

/// A connection's orders in flight.
#[derive(Default)]
struct InFlight {
    by_id: HashMap<String, Pending>,
    /// MsgSeqNum(34) of each order → its ClOrdID, for Reject and BusinessMessageReject.
    by_seq: HashMap<u64, String>,
    /// (deadline ns, ClOrdID, MsgSeqNum) in send order, for the timeout sweep.
    deadlines: VecDeque<(u64, String, u64)>,
}

impl InFlight {
    fn take(&mut self, id: &str) -> Option<Pending> {
        let p = self.by_id.remove(id)?;
        self.by_seq.remove(&p.seq);
        Some(p)
    }

    fn take_seq(&mut self, seq: u64) -> Option<(String, Pending)> {
        let id = self.by_seq.remove(&seq)?;
        let p = self.by_id.remove(&id)?;
        Some((id, p))
    }
}

/// One FIX connection's task.
pub(super) async fn connection(k: u64, slot: Rc<Slot>, conn: Option<Conn>, local: Rc<Local>) {
    let g = &local.global;
    let Some(mut conn) = conn else {
        // This connection never logged on; its share of the orders fails as connect errors.
        let mut j = 0;
        while let Some((i, intended)) = next_due(&slot, &mut j, &local, k).await {
            let now = now_ns();
            let t = Times {
                i,
                intended,
                ready_at: now.max(intended),
                sent: now,
            };
            let m = "the FIX session did not log on".to_string();
            record(&local, t, now, Err((ErrorKind::Connect, m)));
        }
        return;
    };
    if let Err(e) = run(k, &slot, &mut conn, &local).await {
        g.halt(format!("FIX session: {e}"));
        return;
    }
    let timeout = g.plan.timeout;
    let _ = session::logout(
        &mut conn.session,
        &mut conn.reader,
        &mut conn.stream,
        timeout,
        |_| {},
    )
    .await;
}

/// Send and match until every order of this connection is answered or timed out.
async fn run(k: u64, slot: &Slot, conn: &mut Conn, local: &Local) -> Result<(), FixError> {
    let g = &local.global;
    let Some(fix) = g.plan.fix.as_ref() else {
        return Err(FixError::Protocol("no FIX plan".into()));
    };
    let timeout_ns = g.plan.timeout.as_nanos() as u64;
    let mut rng = connection_rng(g.plan.seed, k);
    let (mut text, mut body, mut out) = (String::new(), Vec::new(), Vec::new());
    let mut inflight = InFlight::default();
    let mut free_since = local.start_ns;
    let mut next_tick = tokio::time::Instant::now();
    let (mut j, mut finished) = (0u64, false);
    loop {
        if finished && inflight.by_id.is_empty() {
            return Ok(());
        }
        let full = inflight.by_id.len() >= fix.max_in_flight;
        let sweep_at = inflight.deadlines.front().map(|d| d.0);
        tokio::select! {
            biased;
            _ = g.stop.cancelled() => return Ok(()),
            m = conn.reader.next(&mut conn.stream) => {
                let m = m?;
                let event = conn.session.inbound(&m, &mut out)?;
                write(&mut conn.stream, &out).await?;
                match event {
                    Event::App(kind) => answer(local, fix.until, &kind, &m, &mut inflight)?,
                    Event::Logout(t) => return Err(FixError::LoggedOut(format!("Text(58) \"{t}\""))),
                    Event::Admin | Event::Logon => {}
                }
                if full && inflight.by_id.len() < fix.max_in_flight {
                    free_since = now_ns();
                }
            }
            due = next_due(slot, &mut j, local, k), if !finished && !full => {
                let Some((i, intended)) = due else {
                    finished = true;
                    continue;
                };
                fix.order.render(i, &mut rng, &mut text);
                codec::pipes_to_soh(&text, &mut body);
                if fix.transact_time {
                    body.extend_from_slice(format!("60={}\u{1}", crate::fix::utc_timestamp()).as_bytes());
                }
                let id = codec::find(&body, tag::CL_ORD_ID)
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .unwrap_or_default();
                let ready_at = intended.max(free_since);
                let sent = now_ns();
                let seq = conn.session.write(mt::NEW_ORDER_SINGLE, &body, &mut out);
                write(&mut conn.stream, &out).await?;
                free_since = now_ns();
                let times = Times { i, intended, ready_at, sent };
                inflight.deadlines.push_back((sent + timeout_ns, id.clone(), seq));
                inflight.by_seq.insert(seq, id.clone());
                inflight.by_id.insert(id, Pending { times, seq });
            }
            _ = sleep_until_ns(sweep_at.unwrap_or(0)), if sweep_at.is_some() => {
                sweep(local, &mut inflight);
                if full && inflight.by_id.len() < fix.max_in_flight {
                    free_since = now_ns();
                }
            }
            _ = tokio::time::sleep_until(next_tick) => {
                next_tick = conn.session.tick(tokio::time::Instant::now(), &mut out)?;
                write(&mut conn.stream, &out).await?;
            }
        }
    }
}

/// Write `out` unless it is empty.
async fn write(stream: &mut Stream, out: &[u8]) -> Result<(), FixError> {
    if out.is_empty() {
        return Ok(());
    }
    stream
        .write_all(out)
        .await
        .map_err(|e| FixError::Io(format!("writing: {e}")))
}

/// Sleep until `deadline` ns of `CLOCK_MONOTONIC`.
async fn sleep_until_ns(deadline: u64) {
    let now = now_ns();
    if deadline > now {
        tokio::time::sleep(Duration::from_nanos(deadline - now)).await;
    }
}

/// Record every order whose deadline passed as a timeout.
fn sweep(local: &Local, inflight: &mut InFlight) {
    let now = now_ns();
    while let Some((deadline, _, seq)) = inflight.deadlines.front() {
        if *deadline > now {
            break;
        }
        let seq = *seq;
        inflight.deadlines.pop_front();
        if let Some((id, p)) = inflight.take_seq(seq) {
            let m = format!(
                "no ExecutionReport (35=8) for ClOrdID(11) \"{id}\" within {}",
                crate::units::format_duration(local.global.plan.timeout)
            );
            record(local, p.times, now, Err((ErrorKind::Timeout, m)));
        }
    }
}

/// Match an application message to its order and record the order when it is answered.
fn answer(
    local: &Local,
    until: Until,
    kind: &str,
    m: &RawMessage,
    inflight: &mut InFlight,
) -> Result<(), FixError> {
    let done = now_ns();
    let text = codec::text(m, tag::TEXT);
    match kind {
        mt::EXECUTION_REPORT => {
            let id = codec::text(m, tag::CL_ORD_ID);
            let status = codec::text(m, tag::ORD_STATUS);
            let finished = status == "8" || until == Until::Ack || status == "2";
            if !finished || !inflight.by_id.contains_key(id) {
                return Ok(());
            }
            let Some(p) = inflight.take(id) else {
                return Ok(());
            };
            let verdict = if status == "8" {
                Err((
                    ErrorKind::Rejected,
                    format!(
                        "ExecutionReport OrdStatus(39)=8 for ClOrdID(11) \"{id}\": Text(58) \"{text}\""
                    ),
                ))
            } else {
                Ok(())
            };
            record(local, p.times, done, Ok(Answer::Judged(verdict)));
        }
        mt::REJECT | mt::BUSINESS_MESSAGE_REJECT => {
            let ref_seq = codec::int(m, tag::REF_SEQ_NUM).unwrap_or(0).max(0) as u64;
            let (error, name) = if kind == mt::REJECT {
                (ErrorKind::SessionReject, "Reject (35=3)")
            } else {
                (ErrorKind::BusinessReject, "BusinessMessageReject (35=j)")
            };
            let Some((id, p)) = inflight.take_seq(ref_seq) else {
                return Err(FixError::Protocol(format!(
                    "{name} of MsgSeqNum(34) {ref_seq}, not an order in flight: Text(58) \"{text}\""
                )));
            };
            let message = format!(
                "{name} of the NewOrderSingle with ClOrdID(11) \"{id}\": Text(58) \"{text}\""
            );
            record(
                local,
                p.times,
                done,
                Ok(Answer::Judged(Err((error, message)))),
            );
        }
        _ => {}
    }
    Ok(())
}
