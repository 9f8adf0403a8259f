//! Orders over FIX 4.2 / 4.4 (`transport = "fix"`), pipelined ([`super::pipelined`]): each
//! connection is one session ([`crate::fix`]), logged on as it opens (the logon is part of the
//! connection's set-up, never of an order's latency), and every released NewOrderSingle
//! (35=D) is sent at once. Its correlation id is its ClOrdID(11).
//!
//! Answers: an ExecutionReport (35=8) for the ClOrdID completes the order at the first report
//! (`until = "ack"`) or at the one with OrdStatus(39)=2, filled (`until = "fill"`); OrdStatus=8
//! is a `rejected` order. A Reject (35=3) or BusinessMessageReject (35=j) whose RefSeqNum(45)
//! is an order's MsgSeqNum is a `session_reject` or `business_reject` of it. Anything that ends
//! the session (a garbled message, a sequence gap, a Logout, an unanswered TestRequest) fails
//! the orders in flight as `closed` with that reason, and the next order logs on again.
//!
//! Administrative replies (a Heartbeat to a TestRequest, a gap fill to a ResendRequest) are
//! queued by the reader and written with the next send or tick, so reading stays cancel-safe.

use std::collections::HashMap;

use refix_message::RawMessage;
use tokio::io::AsyncWriteExt;

use super::connect::Stream;
use super::pipelined::{Inbound, OrderTransport};
use super::template::{Rng, Template};
use crate::fix::session::{self, Event, Role, Session, SessionConfig};
use crate::fix::{Reader, codec, msg_type as mt, tag};

/// The reject kinds of the FIX transport, in report order.
pub const REJECT_KINDS: &[&str] = &["rejected", "business_reject", "session_reject"];

/// When an order's latency ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// At the first ExecutionReport for its ClOrdID (the venue's acknowledgement).
    Ack,
    /// At the ExecutionReport with OrdStatus(39)=2 (filled).
    Fill,
}

/// A validated FIX order wire.
#[derive(Debug, Clone)]
pub struct FixWire {
    /// The session's identity and timers.
    pub session: SessionConfig,
    /// The NewOrderSingle body: `tag=value` fields separated by `|`, with the request
    /// placeholders; it holds ClOrdID(11).
    pub order: Template,
    /// Add TransactTime(60) (the template has none).
    pub transact_time: bool,
    /// When an order's latency ends.
    pub until: Until,
    /// The request timeout, which bounds the logon and the logout too.
    pub timeout: std::time::Duration,
}

/// An open FIX session on a connection.
pub struct FixSession {
    stream: Stream,
    session: Session,
    reader: Reader,
    /// Administrative replies not yet written.
    pending: Vec<u8>,
    scratch: Vec<u8>,
    body: Vec<u8>,
    /// MsgSeqNum(34) of each order in flight → its ClOrdID, and back.
    by_seq: HashMap<u64, String>,
    seq_of: HashMap<String, u64>,
}

impl FixSession {
    /// Forget an answered order's sequence number.
    fn answered(&mut self, id: &str) {
        if let Some(seq) = self.seq_of.remove(id) {
            self.by_seq.remove(&seq);
        }
    }

    /// Write the queued administrative replies.
    async fn flush(&mut self) -> Result<(), String> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let r = self.stream.write_all(&self.pending).await;
        self.pending.clear();
        r.map_err(|e| format!("writing: {e}"))
    }
}

impl FixWire {
    /// What an application message means for the orders in flight.
    fn answer(&self, s: &mut FixSession, kind: &str, m: &RawMessage) -> Inbound {
        let text = codec::text(m, tag::TEXT);
        match kind {
            mt::EXECUTION_REPORT => {
                let id = codec::text(m, tag::CL_ORD_ID).to_string();
                let status = codec::text(m, tag::ORD_STATUS);
                let outcome = match status {
                    "8" => Err((
                        REJECT_KINDS[0],
                        format!(
                            "ExecutionReport OrdStatus(39)=8 for ClOrdID(11) \"{id}\": Text(58) \"{text}\""
                        ),
                    )),
                    "2" => Ok(()),
                    _ if self.until == Until::Ack => Ok(()),
                    _ => return Inbound::Ignore,
                };
                s.answered(&id);
                Inbound::Match { id, outcome }
            }
            mt::REJECT | mt::BUSINESS_MESSAGE_REJECT => {
                let ref_seq = codec::int(m, tag::REF_SEQ_NUM).unwrap_or(0).max(0) as u64;
                let Some(id) = s.by_seq.get(&ref_seq).cloned() else {
                    return Inbound::Ignore;
                };
                s.answered(&id);
                let kind = if kind == mt::REJECT {
                    REJECT_KINDS[2]
                } else {
                    REJECT_KINDS[1]
                };
                let name = session::name(codec::text(m, tag::MSG_TYPE));
                Inbound::Match {
                    outcome: Err((
                        kind,
                        format!(
                            "{name} of the NewOrderSingle with ClOrdID(11) \"{id}\": Text(58) \"{text}\""
                        ),
                    )),
                    id,
                }
            }
            _ => Inbound::Ignore,
        }
    }
}

impl OrderTransport for FixWire {
    type Session = FixSession;

    fn reject_kinds(&self) -> &'static [&'static str] {
        REJECT_KINDS
    }

    async fn open(&self, mut stream: Stream) -> Result<FixSession, String> {
        let mut session = Session::new(self.session.clone(), Role::Initiator);
        let mut reader = Reader::new();
        session::initiate(&mut session, &mut reader, &mut stream, self.timeout)
            .await
            .map_err(|e| e.to_string())?;
        Ok(FixSession {
            stream,
            session,
            reader,
            pending: Vec::new(),
            scratch: Vec::new(),
            body: Vec::new(),
            by_seq: HashMap::new(),
            seq_of: HashMap::new(),
        })
    }

    fn encode(
        &self,
        s: &mut FixSession,
        i: u64,
        rng: &mut Rng,
        message: &mut String,
        id: &mut String,
    ) -> Result<(), String> {
        self.order.render(i, rng, message);
        codec::pipes_to_soh(message, &mut s.body);
        if self.transact_time {
            s.body.extend_from_slice(b"60=");
            s.body
                .extend_from_slice(crate::fix::utc_timestamp().as_bytes());
            s.body.push(codec::SOH);
        }
        id.clear();
        let cl_ord_id = codec::find(&s.body, tag::CL_ORD_ID)
            .ok_or_else(|| format!("the rendered order has no ClOrdID(11): {message}"))?;
        id.push_str(&String::from_utf8_lossy(cl_ord_id));
        let seq = s
            .session
            .write(mt::NEW_ORDER_SINGLE, &s.body, &mut s.scratch);
        s.by_seq.insert(seq, id.clone());
        s.seq_of.insert(id.clone(), seq);
        message.clear();
        message.push_str(&String::from_utf8_lossy(&s.scratch));
        Ok(())
    }

    async fn send(&self, s: &mut FixSession, message: &str) -> Result<(), String> {
        s.flush().await?;
        s.stream
            .write_all(message.as_bytes())
            .await
            .map_err(|e| format!("writing: {e}"))
    }

    async fn recv(&self, s: &mut FixSession) -> Inbound {
        loop {
            let m = match s.reader.next(&mut s.stream).await {
                Ok(m) => m,
                Err(e) => return Inbound::Fatal(e.to_string()),
            };
            let event = match s.session.inbound(&m, &mut s.scratch) {
                Ok(e) => e,
                Err(e) => return Inbound::Fatal(e.to_string()),
            };
            s.pending.extend_from_slice(&s.scratch);
            match event {
                Event::App(kind) => return self.answer(s, &kind, &m),
                Event::Logout(text) => {
                    return Inbound::Fatal(format!(
                        "the counterparty logged out: Text(58) \"{text}\""
                    ));
                }
                Event::Admin | Event::Logon => {}
            }
        }
    }

    async fn tick(&self, s: &mut FixSession) -> Result<(), String> {
        s.session
            .tick(tokio::time::Instant::now(), &mut s.scratch)
            .map_err(|e| e.to_string())?;
        s.pending.extend_from_slice(&s.scratch);
        s.flush().await
    }

    async fn close(&self, mut s: FixSession) {
        let _ = s.flush().await;
        let _ = session::logout(
            &mut s.session,
            &mut s.reader,
            &mut s.stream,
            self.timeout,
            |_| {},
        )
        .await;
    }
}
