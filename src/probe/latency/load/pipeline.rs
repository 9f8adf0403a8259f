//! Pipelined order transports (WebSocket, FIX): one connection carries many orders at once, and
//! each answer names the order it belongs to.
//!
//! Unlike HTTP/1.1, a connection never waits for an answer before sending: each order released
//! by the schedule is rendered and written at once (like an HTTP/2 stream), then kept in an
//! in-flight map keyed by its correlation id (the `client_order_id` the template rendered, or
//! ClOrdID(11) for FIX). The connection's reader decodes every inbound message; one that names
//! an order in flight completes it (an acknowledgement, or a reject counted by kind), anything
//! else (market data, heartbeats, an answer that came after its timeout) is ignored. A sweep
//! fails, as `timeout`, each order whose answer has not come within the request timeout: it is
//! counted, never silently dropped.
//!
//! A connection that closes, or that the transport gives up on (a garbled message, a close
//! frame, a logout), fails every order in flight as `closed` with the reason; the next order due
//! opens a new connection, whose set-up (TCP, TLS, the transport's handshake or logon) is
//! recorded apart from the order latencies, as for the first one.
//!
//! One task per connection does all of it: it waits for whichever comes first (a send due, an
//! inbound message, the earliest deadline, a housekeeping tick), so a transport's session needs
//! no locks and no second task. That is why [`OrderTransport::recv`] must be cancel-safe.

use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::time::Duration;

use super::plan::ErrorKind;
use super::shared::{
    Driver, Global, Local, Slot, Times, connection_rng, failed, next_due, no_answer, on_time_free,
    record, reopen, timeout_message,
};
use crate::order::clock::{now_ns, since};
use crate::order::pipelined::{Inbound, OrderTransport, TICK};
use crate::order::template::Rng;

/// The engine's [`Driver`] for any [`OrderTransport`].
pub(super) struct Pipelined<T>(pub T);

/// Open a connection and its session: TCP, TLS, then the transport's handshake, timed
/// together as the connection's set-up.
async fn open_session<T: OrderTransport>(
    t: &T,
    global: &Global,
) -> Result<(T::Session, Duration), String> {
    let started = now_ns();
    let timeout = global.plan.timeout;
    let (stream, _) = global.connector.connect(timeout).await?;
    let addr = global.connector.addr;
    match tokio::time::timeout(timeout, t.open(stream)).await {
        Ok(Ok(s)) => Ok((s, since(now_ns(), started))),
        Ok(Err(e)) => Err(format!("{addr}: {e}")),
        Err(_) => Err(format!(
            "{addr}: handshake timed out after {}",
            crate::units::format_duration(timeout)
        )),
    }
}

impl<T: OrderTransport> Driver for Pipelined<T> {
    type Conn = T::Session;

    async fn open(&self, global: &Global) -> Result<(T::Session, Duration), String> {
        open_session(&self.0, global).await
    }

    fn connection(
        &self,
        k: u64,
        slot: Rc<Slot>,
        conn: Option<T::Session>,
        local: Rc<Local>,
    ) -> impl Future<Output = ()> + 'static {
        connection(self.0.clone(), k, slot, conn, local)
    }
}

/// The orders of one connection waiting for their answer.
#[derive(Default)]
struct InFlight {
    /// By correlation id.
    orders: HashMap<String, Times>,
    /// Deadlines (ns) in send order, so the earliest is first; ids already answered are
    /// skipped when their deadline comes.
    deadlines: VecDeque<(u64, String)>,
}

impl InFlight {
    /// The earliest deadline of an order still in flight (answered ones are dropped here).
    fn next_deadline(&mut self) -> Option<u64> {
        while let Some((at, id)) = self.deadlines.front() {
            if self.orders.contains_key(id) {
                return Some(*at);
            }
            self.deadlines.pop_front();
        }
        None
    }

    /// Remove and return every order whose deadline is at or before `now`.
    fn expired(&mut self, now: u64) -> Vec<Times> {
        let mut out = Vec::new();
        while let Some((at, _)) = self.deadlines.front() {
            if *at > now {
                break;
            }
            if let Some((_, id)) = self.deadlines.pop_front()
                && let Some(t) = self.orders.remove(&id)
            {
                out.push(t);
            }
        }
        out
    }

    /// Remove every order (the connection is gone).
    fn drain(&mut self) -> Vec<Times> {
        self.deadlines.clear();
        self.orders.drain().map(|(_, t)| t).collect()
    }
}

/// What woke a connection's task.
enum Event {
    /// The next order released to the connection (`None`: the schedule is done).
    Due(Option<(u64, u64)>),
    /// An inbound message.
    Inbound(Inbound),
    /// The earliest deadline passed.
    Deadline,
    /// Time for housekeeping.
    Tick,
}

/// Fail every order in flight as `closed` with `why`.
fn fail_all(local: &Local, inflight: &mut InFlight, why: &str) {
    let done = now_ns();
    let addr = local.global.connector.addr;
    for t in inflight.drain() {
        let m = format!("{addr}: {why}");
        record(local, t, done, no_answer(ErrorKind::Closed, m));
    }
}

/// Complete the order in flight that the answer names, accepted or rejected with the
/// transport's kind; an answer naming no order in flight is counted as unmatched.
fn answered(
    local: &Local,
    inflight: &mut InFlight,
    id: &str,
    outcome: Result<(), (&'static str, String)>,
) {
    let done = now_ns();
    match inflight.orders.remove(id) {
        Some(times) => {
            let verdict = move || outcome.map_err(|(kind, m)| (ErrorKind::Reject(kind), m));
            record(local, times, done, Ok((None, verdict)));
        }
        None => local.stats.borrow_mut().unmatched += 1,
    }
}

/// Fail, as `timeout`, every order in flight whose deadline has passed.
fn expire(local: &Local, inflight: &mut InFlight) {
    let done = now_ns();
    for times in inflight.expired(done) {
        let m = timeout_message(local.global.plan.timeout);
        record(local, times, done, no_answer(ErrorKind::Timeout, m));
    }
}

/// One pipelined connection's task: send each released order at once, match answers to the
/// orders in flight, time out the rest, reconnect after a close.
async fn connection<T: OrderTransport>(
    t: T,
    k: u64,
    slot: Rc<Slot>,
    mut session: Option<T::Session>,
    local: Rc<Local>,
) {
    let plan = &local.global.plan;
    let mut rng = connection_rng(plan.seed, k);
    let (mut message, mut id) = (String::new(), String::new());
    let mut inflight = InFlight::default();
    let mut free_since = local.start_ns;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut j, mut scheduled) = (0u64, true);
    loop {
        if !scheduled && inflight.next_deadline().is_none() {
            break;
        }
        let deadline = inflight.next_deadline();
        let event = tokio::select! {
            biased;
            due = next_due(&slot, &mut j, &local, k), if scheduled => Event::Due(due),
            _ = sleep_until_ns(deadline.unwrap_or(0)), if deadline.is_some() => Event::Deadline,
            m = recv_or_pending(&t, session.as_mut()) => Event::Inbound(m),
            _ = tick.tick(), if session.is_some() => Event::Tick,
        };
        match event {
            Event::Due(None) => scheduled = false,
            Event::Due(Some((i, intended))) => {
                let order = Order { i, intended };
                let bufs = (&mut rng, &mut message, &mut id);
                let sent = send_due(
                    &t,
                    &local,
                    &mut session,
                    &mut inflight,
                    bufs,
                    &mut free_since,
                    order,
                );
                if !sent.await {
                    return;
                }
            }
            Event::Inbound(Inbound::Match { id, outcome }) => {
                answered(&local, &mut inflight, &id, outcome);
            }
            Event::Inbound(Inbound::Ignore) => local.stats.borrow_mut().ignored += 1,
            Event::Inbound(Inbound::Fatal(why)) => {
                session = None;
                fail_all(&local, &mut inflight, &why);
            }
            Event::Deadline => expire(&local, &mut inflight),
            Event::Tick => {
                let Some(s) = session.as_mut() else { continue };
                if let Err(why) = t.tick(s).await {
                    session = None;
                    fail_all(&local, &mut inflight, &why);
                }
            }
        }
    }
    if let Some(s) = session {
        let _ = tokio::time::timeout(plan.timeout, t.close(s)).await;
    }
}

/// An order released by the schedule: its index and intended send time (ns).
#[derive(Clone, Copy)]
struct Order {
    i: u64,
    intended: u64,
}

/// Send one released order on the connection (opening a session first when there is none)
/// and put it in flight. `false` when the run is over for this connection: the target is
/// hopeless, or the template gave an id already in flight.
async fn send_due<T: OrderTransport>(
    t: &T,
    local: &Local,
    session: &mut Option<T::Session>,
    inflight: &mut InFlight,
    (rng, message, id): (&mut Rng, &mut String, &mut String),
    free_since: &mut u64,
    Order { i, intended }: Order,
) -> bool {
    let plan = &local.global.plan;
    if session.is_none() {
        let opening = now_ns();
        match reopen(local, i, open_session(t, &local.global)).await {
            Ok(s) => {
                *session = Some(s);
                *free_since = on_time_free(intended, *free_since, opening, now_ns());
            }
            Err(true) => return false,
            Err(false) => return true,
        }
    }
    let Some(s) = session.as_mut() else {
        return true;
    };
    if let Err(m) = t.encode(s, i, rng, message, id) {
        local.global.halt(format!("order {i}: {m}"));
        return false;
    }
    if inflight.orders.contains_key(id.as_str()) {
        local.global.halt(format!(
            "order {i}: correlation id \"{id}\" is already in flight; the template must give each order its own id (e.g. {{{{seq}}}} or {{{{uuid}}}})"
        ));
        return false;
    }
    let sent = now_ns();
    let times = Times {
        i,
        intended,
        ready_at: intended.max(*free_since),
        sent,
    };
    if let Err(m) = t.send(s, message).await {
        *session = None;
        fail_all(local, inflight, &format!("sending: {m}"));
        let addr = local.global.connector.addr;
        failed(
            local,
            i,
            intended,
            ErrorKind::Closed,
            format!("{addr}: {m}"),
        );
        return true;
    }
    inflight
        .deadlines
        .push_back((sent + plan.timeout.as_nanos() as u64, id.clone()));
    inflight.orders.insert(id.clone(), times);
    true
}

/// The next inbound message of `session`; never completes without a session.
async fn recv_or_pending<T: OrderTransport>(t: &T, session: Option<&mut T::Session>) -> Inbound {
    match session {
        Some(s) => t.recv(s).await,
        None => std::future::pending().await,
    }
}

/// Sleep until `at_ns` of `CLOCK_MONOTONIC` (tokio's timer: millisecond resolution, enough for
/// timeouts).
async fn sleep_until_ns(at_ns: u64) {
    let now = now_ns();
    if at_ns > now {
        tokio::time::sleep(Duration::from_nanos(at_ns - now)).await;
    }
}
