//! One FIX session's state, for either side (FIX Session Protocol): the outbound header
//! (SenderCompID(49), TargetCompID(56), MsgSeqNum(34), SendingTime(52)), the inbound checks
//! (BeginString, CompIDs, MsgSeqNum), and the administrative replies: a Heartbeat to a
//! TestRequest, a SequenceReset-GapFill to a ResendRequest (this side never resends
//! application messages: orders are not replayed), and the heartbeat and TestRequest timers.
//!
//! A gap in the inbound sequence (messages lost) or a MsgSeqNum lower than expected without
//! PossDupFlag is a [`FixError::Sequence`]: the probe measures order round trips, and a session
//! that lost messages cannot say which orders were answered. The caller owns the socket; a
//! [`Session`] only fills buffers, so it runs in any runtime.

use std::time::Duration;

use refix_message::RawMessage;
use tokio::time::Instant;

use super::codec::{self, Fields};
use super::{FixError, Version, msg_type as mt, tag};

/// Which side of the connection this session is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Opens the connection and sends the first Logon.
    Initiator,
    /// Accepts the connection and answers the Logon.
    Acceptor,
}

/// Everything a session is configured with.
#[derive(Clone)]
pub struct SessionConfig {
    /// BeginString(8).
    pub version: Version,
    /// Our SenderCompID(49).
    pub sender_comp_id: String,
    /// The counterparty's CompID: our TargetCompID(56).
    pub target_comp_id: String,
    /// HeartBtInt(108).
    pub heartbeat: Duration,
    /// Send ResetSeqNumFlag(141)=Y on Logon: both sides start again at 1.
    pub reset_seq_num: bool,
    /// Username(553) on Logon (FIX 4.4; sent as given in 4.2).
    pub username: Option<String>,
    /// Password(554) on Logon; never shown.
    pub password: Option<String>,
}

impl std::fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionConfig")
            .field("version", &self.version)
            .field("sender_comp_id", &self.sender_comp_id)
            .field("target_comp_id", &self.target_comp_id)
            .field("heartbeat", &self.heartbeat)
            .field("reset_seq_num", &self.reset_seq_num)
            .field("username", &self.username.as_ref().map(|_| "…"))
            .field("password", &self.password.as_ref().map(|_| "…"))
            .finish()
    }
}

/// What an inbound message meant to the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A session message, handled (any reply is in the output buffer).
    Admin,
    /// The counterparty's Logon.
    Logon,
    /// An application message (ExecutionReport, Reject, BusinessMessageReject, orders…) for
    /// the caller; its MsgType(35).
    App(String),
    /// The counterparty's Logout with its Text(58).
    Logout(String),
}

/// The state of one session.
pub struct Session {
    /// The configuration (the acceptor fills the counterparty's CompID in at Logon).
    pub config: SessionConfig,
    role: Role,
    next_out: u64,
    next_in: u64,
    fields: Fields,
    last_sent: Instant,
    last_received: Instant,
    test_request_sent: Option<Instant>,
}

impl Session {
    /// A session before Logon, both sequence numbers at 1.
    pub fn new(config: SessionConfig, role: Role) -> Session {
        let now = Instant::now();
        Session {
            config,
            role,
            next_out: 1,
            next_in: 1,
            fields: Fields::new(),
            last_sent: now,
            last_received: now,
            test_request_sent: None,
        }
    }

    /// The MsgSeqNum(34) the next outbound message gets.
    pub fn next_out(&self) -> u64 {
        self.next_out
    }

    /// Write one message of `msg_type` with the standard header and `body` (wire-form fields)
    /// into `out` (cleared first); returns its MsgSeqNum(34).
    pub fn write(&mut self, msg_type: &str, body: &[u8], out: &mut Vec<u8>) -> u64 {
        let seq = self.next_out;
        self.next_out += 1;
        self.encode(seq, false, msg_type, body, out);
        seq
    }

    /// Encode one message with MsgSeqNum(34) `seq` (and PossDupFlag(43)=Y when `poss_dup`).
    fn encode(&mut self, seq: u64, poss_dup: bool, msg_type: &str, body: &[u8], out: &mut Vec<u8>) {
        self.fields.clear();
        self.fields
            .add(tag::SENDER_COMP_ID, &self.config.sender_comp_id)
            .add(tag::TARGET_COMP_ID, &self.config.target_comp_id)
            .add(tag::MSG_SEQ_NUM, seq);
        if poss_dup {
            self.fields.add(tag::POSS_DUP_FLAG, "Y");
        }
        self.fields
            .add(tag::SENDING_TIME, super::utc_timestamp())
            .extend_raw(body);
        codec::encode(
            self.config.version.begin_string(),
            msg_type,
            self.fields.as_bytes(),
            out,
        );
        self.last_sent = Instant::now();
    }

    /// The Logon (35=A): EncryptMethod(98)=0, HeartBtInt(108), and ResetSeqNumFlag(141),
    /// Username(553), Password(554) when configured. The acceptor's reply echoes the
    /// initiator's HeartBtInt and reset flag.
    pub fn logon(&mut self, out: &mut Vec<u8>) {
        let mut body = Fields::new();
        body.add(tag::ENCRYPT_METHOD, 0).add(
            tag::HEART_BT_INT,
            super::heartbeat_seconds(self.config.heartbeat),
        );
        if self.config.reset_seq_num {
            body.add(tag::RESET_SEQ_NUM_FLAG, "Y");
        }
        if self.role == Role::Initiator {
            if let Some(u) = &self.config.username {
                body.add(tag::USERNAME, u);
            }
            if let Some(p) = &self.config.password {
                body.add(tag::PASSWORD, p);
            }
        }
        self.write(mt::LOGON, body.as_bytes(), out);
    }

    /// A Logout (35=5), with Text(58) when given.
    pub fn logout(&mut self, text: Option<&str>, out: &mut Vec<u8>) {
        let mut body = Fields::new();
        if let Some(t) = text {
            body.add(tag::TEXT, t);
        }
        self.write(mt::LOGOUT, body.as_bytes(), out);
    }

    /// A session-level Reject (35=3) of inbound message `ref_seq` with Text(58).
    pub fn reject(&mut self, ref_seq: i64, reason: &str, out: &mut Vec<u8>) {
        let mut body = Fields::new();
        body.add(tag::REF_SEQ_NUM, ref_seq).add(tag::TEXT, reason);
        self.write(mt::REJECT, body.as_bytes(), out);
    }

    /// Take one inbound message: check it, keep the sequence, and put any administrative
    /// reply into `out` (left empty when there is none).
    ///
    /// # Errors
    /// [`FixError::Protocol`] for a wrong BeginString or CompID or a missing MsgSeqNum,
    /// [`FixError::Sequence`] for a gap or a MsgSeqNum that went backwards.
    pub fn inbound(&mut self, msg: &RawMessage, out: &mut Vec<u8>) -> Result<Event, FixError> {
        out.clear();
        self.last_received = Instant::now();
        self.test_request_sent = None;
        let kind = codec::text(msg, tag::MSG_TYPE);
        if kind == mt::LOGOUT {
            return Ok(Event::Logout(codec::text(msg, tag::TEXT).to_string()));
        }
        self.check_header(msg)?;
        let seq = codec::int(msg, tag::MSG_SEQ_NUM)
            .filter(|s| *s > 0)
            .ok_or_else(|| {
                FixError::Protocol(format!(
                    "{} (35={kind}) without a valid MsgSeqNum(34)",
                    name(kind)
                ))
            })? as u64;
        if kind == mt::LOGON && codec::text(msg, tag::RESET_SEQ_NUM_FLAG) == "Y" {
            self.next_in = seq;
        }
        if kind == mt::SEQUENCE_RESET {
            return self.sequence_reset(msg, seq);
        }
        if seq < self.next_in {
            if codec::text(msg, tag::POSS_DUP_FLAG) == "Y" {
                return Ok(Event::Admin);
            }
            return Err(FixError::Sequence(format!(
                "MsgSeqNum(34) too low: expected {}, received {seq} in {} (35={kind}) without PossDupFlag(43)",
                self.next_in,
                name(kind)
            )));
        }
        if seq > self.next_in {
            return Err(FixError::Sequence(format!(
                "sequence gap: expected MsgSeqNum(34) {}, received {seq} in {} (35={kind}); {} message(s) lost",
                self.next_in,
                name(kind),
                seq - self.next_in
            )));
        }
        self.next_in = seq + 1;
        Ok(match kind {
            mt::LOGON => Event::Logon,
            mt::HEARTBEAT => Event::Admin,
            mt::TEST_REQUEST => {
                let mut body = Fields::new();
                body.add(tag::TEST_REQ_ID, codec::text(msg, tag::TEST_REQ_ID));
                self.write(mt::HEARTBEAT, body.as_bytes(), out);
                Event::Admin
            }
            mt::RESEND_REQUEST => {
                // Orders are never replayed: fill the whole requested range with a gap fill
                // that moves the counterparty to our next number.
                let begin = codec::int(msg, tag::BEGIN_SEQ_NO).unwrap_or(1).max(1);
                let mut body = Fields::new();
                body.add(tag::GAP_FILL_FLAG, "Y")
                    .add(tag::NEW_SEQ_NO, self.next_out);
                // A gap fill carries the first requested number, without moving ours.
                self.encode(begin as u64, true, mt::SEQUENCE_RESET, body.as_bytes(), out);
                Event::Admin
            }
            other => Event::App(other.to_string()),
        })
    }

    /// SequenceReset (35=4): GapFill moves the expected number forward; Reset sets it.
    fn sequence_reset(&mut self, msg: &RawMessage, seq: u64) -> Result<Event, FixError> {
        let new = codec::int(msg, tag::NEW_SEQ_NO)
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                FixError::Protocol("SequenceReset (35=4) without a valid NewSeqNo(36)".into())
            })? as u64;
        let gap_fill = codec::text(msg, tag::GAP_FILL_FLAG) == "Y";
        if gap_fill && seq > self.next_in {
            return Err(FixError::Sequence(format!(
                "sequence gap: expected MsgSeqNum(34) {}, received {seq} in SequenceReset-GapFill (35=4)",
                self.next_in
            )));
        }
        if new < self.next_in && gap_fill {
            return Err(FixError::Sequence(format!(
                "SequenceReset-GapFill (35=4) moves NewSeqNo(36) back from {} to {new}",
                self.next_in
            )));
        }
        self.next_in = new;
        Ok(Event::Admin)
    }

    /// BeginString(8) and the CompIDs: the counterparty's SenderCompID must be our target and
    /// its TargetCompID us.
    fn check_header(&self, msg: &RawMessage) -> Result<(), FixError> {
        let begin = codec::text(msg, tag::BEGIN_STRING);
        let want = self.config.version.begin_string();
        if begin != want {
            return Err(FixError::Protocol(format!(
                "BeginString(8) is \"{begin}\", expected \"{want}\""
            )));
        }
        let sender = codec::text(msg, tag::SENDER_COMP_ID);
        let target = codec::text(msg, tag::TARGET_COMP_ID);
        if sender != self.config.target_comp_id || target != self.config.sender_comp_id {
            return Err(FixError::Protocol(format!(
                "wrong CompID: the message is from SenderCompID(49) \"{sender}\" to TargetCompID(56) \"{target}\", this session is \"{}\" to \"{}\"",
                self.config.target_comp_id, self.config.sender_comp_id
            )));
        }
        Ok(())
    }

    /// Keep the session alive: a Heartbeat after HeartBtInt without sending, a TestRequest
    /// after HeartBtInt + 20 % without receiving. Writes into `out` (empty when nothing is
    /// due); returns when it should be called next.
    ///
    /// # Errors
    /// [`FixError::Timeout`] when a TestRequest went unanswered for another HeartBtInt.
    pub fn tick(&mut self, now: Instant, out: &mut Vec<u8>) -> Result<Instant, FixError> {
        out.clear();
        let hb = self.config.heartbeat;
        let grace = hb + hb / 5;
        if let Some(sent) = self.test_request_sent
            && now >= sent + grace
        {
            return Err(FixError::Timeout(format!(
                "no message from the counterparty for {} (HeartBtInt {} s), TestRequest (35=1) unanswered",
                crate::units::format_duration(now - self.last_received),
                super::heartbeat_seconds(hb)
            )));
        }
        if self.test_request_sent.is_none() && now >= self.last_received + grace {
            let mut body = Fields::new();
            body.add(tag::TEST_REQ_ID, format!("TEST-{}", self.next_out));
            self.write(mt::TEST_REQUEST, body.as_bytes(), out);
            self.test_request_sent = Some(now);
        } else if now >= self.last_sent + hb {
            self.write(mt::HEARTBEAT, b"", out);
        }
        let next_hb = self.last_sent + hb;
        let next_check = match self.test_request_sent {
            Some(sent) => sent + grace,
            None => self.last_received + grace,
        };
        Ok(next_hb.min(next_check))
    }
}

/// The standard name of a MsgType(35).
pub fn name(msg_type: &str) -> &'static str {
    match msg_type {
        mt::HEARTBEAT => "Heartbeat",
        mt::TEST_REQUEST => "TestRequest",
        mt::RESEND_REQUEST => "ResendRequest",
        mt::REJECT => "Reject",
        mt::SEQUENCE_RESET => "SequenceReset",
        mt::LOGOUT => "Logout",
        mt::EXECUTION_REPORT => "ExecutionReport",
        mt::ORDER_CANCEL_REJECT => "OrderCancelReject",
        mt::LOGON => "Logon",
        mt::NEW_ORDER_SINGLE => "NewOrderSingle",
        mt::ORDER_CANCEL_REQUEST => "OrderCancelRequest",
        mt::BUSINESS_MESSAGE_REJECT => "BusinessMessageReject",
        _ => "message",
    }
}

/// Log on as the initiator on `stream`: send Logon, wait up to `timeout` for the acceptor's.
///
/// # Errors
/// [`FixError::LogonRejected`] with the acceptor's Text(58) when it answers with Logout or
/// Reject; any [`FixError`] from reading or checking the answer; [`FixError::Timeout`].
pub async fn initiate<S>(
    session: &mut Session,
    reader: &mut codec::Reader,
    stream: &mut S,
    timeout: Duration,
) -> Result<(), FixError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    session.logon(&mut out);
    let exchange = async {
        stream
            .write_all(&out)
            .await
            .map_err(|e| FixError::Io(format!("sending Logon: {e}")))?;
        loop {
            let msg = reader.next(stream).await.map_err(|e| match e {
                FixError::Io(m) => {
                    FixError::LogonRejected(format!("no Logon (35=A) in reply: {m}"))
                }
                other => other,
            })?;
            let kind = codec::text(&msg, tag::MSG_TYPE).to_string();
            if kind == mt::REJECT {
                return Err(FixError::LogonRejected(format!(
                    "Reject (35=3): Text(58) \"{}\"",
                    codec::text(&msg, tag::TEXT)
                )));
            }
            match session.inbound(&msg, &mut out)? {
                Event::Logon => return Ok(()),
                Event::Logout(text) => {
                    return Err(FixError::LogonRejected(format!(
                        "Logout (35=5): Text(58) \"{text}\""
                    )));
                }
                _ => {
                    if !out.is_empty() {
                        stream
                            .write_all(&out)
                            .await
                            .map_err(|e| FixError::Io(format!("writing: {e}")))?;
                    }
                }
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(FixError::Timeout(format!(
            "no Logon (35=A) in reply within {}",
            crate::units::format_duration(timeout)
        ))),
    }
}

/// Log out as either side: send Logout and wait up to `timeout` for the counterparty's
/// (messages still arriving meanwhile are passed to `on_app`). A counterparty that closes the
/// connection instead is accepted.
///
/// # Errors
/// [`FixError::Timeout`] when no Logout came back in time; write errors.
pub async fn logout<S>(
    session: &mut Session,
    reader: &mut codec::Reader,
    stream: &mut S,
    timeout: Duration,
    mut on_app: impl FnMut(&RawMessage),
) -> Result<(), FixError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::AsyncWriteExt;
    let mut out = Vec::new();
    session.logout(None, &mut out);
    let exchange = async {
        stream
            .write_all(&out)
            .await
            .map_err(|e| FixError::Io(format!("sending Logout: {e}")))?;
        loop {
            let msg = match reader.next(stream).await {
                Ok(m) => m,
                Err(FixError::Io(_)) => return Ok(()),
                Err(e) => return Err(e),
            };
            match session.inbound(&msg, &mut out)? {
                Event::Logout(_) => return Ok(()),
                Event::App(_) => on_app(&msg),
                _ => {}
            }
            if !out.is_empty() {
                let _ = stream.write_all(&out).await;
            }
        }
    };
    match tokio::time::timeout(timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(FixError::Timeout(format!(
            "no Logout (35=5) in reply within {}",
            crate::units::format_duration(timeout)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fix::Version;

    fn pair() -> (Session, Session) {
        let config = |sender: &str, target: &str| SessionConfig {
            version: Version::Fix44,
            sender_comp_id: sender.into(),
            target_comp_id: target.into(),
            heartbeat: Duration::from_secs(30),
            reset_seq_num: true,
            username: None,
            password: None,
        };
        (
            Session::new(config("CLIENT", "VENUE"), Role::Initiator),
            Session::new(config("VENUE", "CLIENT"), Role::Acceptor),
        )
    }

    /// Encode on `from`, read back through the codec's reader.
    fn deliver(bytes: &[u8]) -> RawMessage {
        let mut r = codec::Reader::new();
        let mut stream: &[u8] = bytes;
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(r.next(&mut stream)).unwrap()
    }

    #[test]
    fn test_requests_get_heartbeats_and_resend_requests_a_gap_fill() {
        let (mut client, mut venue) = pair();
        let (mut wire, mut out) = (Vec::new(), Vec::new());
        client.write(mt::NEW_ORDER_SINGLE, b"11=1\x01", &mut wire);
        client.write(mt::NEW_ORDER_SINGLE, b"11=2\x01", &mut wire);
        let mut body = Fields::new();
        body.add(tag::TEST_REQ_ID, "T1");
        venue.write(mt::TEST_REQUEST, body.as_bytes(), &mut wire);
        assert_eq!(client.inbound(&deliver(&wire), &mut out), Ok(Event::Admin));
        let hb = deliver(&out);
        assert_eq!(codec::text(&hb, tag::MSG_TYPE), mt::HEARTBEAT);
        assert_eq!(codec::text(&hb, tag::TEST_REQ_ID), "T1");
        // The venue lost both orders: they are gap-filled, never replayed.
        let mut body = Fields::new();
        body.add(tag::BEGIN_SEQ_NO, 1).add(tag::END_SEQ_NO, 0);
        venue.write(mt::RESEND_REQUEST, body.as_bytes(), &mut wire);
        assert_eq!(client.inbound(&deliver(&wire), &mut out), Ok(Event::Admin));
        let fill = deliver(&out);
        assert_eq!(codec::text(&fill, tag::MSG_TYPE), mt::SEQUENCE_RESET);
        assert_eq!(codec::int(&fill, tag::MSG_SEQ_NUM), Some(1));
        assert_eq!(codec::text(&fill, tag::GAP_FILL_FLAG), "Y");
        assert_eq!(codec::text(&fill, tag::POSS_DUP_FLAG), "Y");
        // Two orders and the Heartbeat went out: the next number is 4.
        assert_eq!(codec::int(&fill, tag::NEW_SEQ_NO), Some(4));
        assert_eq!(client.next_out(), 4);
    }

    #[test]
    fn gaps_backward_numbers_and_wrong_comp_ids_are_errors() {
        let (mut client, mut venue) = pair();
        let (mut wire, mut out) = (Vec::new(), Vec::new());
        venue.write(mt::HEARTBEAT, b"", &mut wire);
        venue.write(mt::HEARTBEAT, b"", &mut wire);
        let e = client.inbound(&deliver(&wire), &mut out).unwrap_err();
        assert!(
            e.to_string()
                .contains("expected MsgSeqNum(34) 1, received 2"),
            "{e}"
        );
        // A SequenceReset (not gap fill) moves the expected number to its NewSeqNo.
        let mut body = Fields::new();
        body.add(tag::NEW_SEQ_NO, 10);
        venue.write(mt::SEQUENCE_RESET, body.as_bytes(), &mut wire);
        assert_eq!(client.inbound(&deliver(&wire), &mut out), Ok(Event::Admin));
        venue.write(mt::HEARTBEAT, b"", &mut wire);
        let e = client.inbound(&deliver(&wire), &mut out).unwrap_err();
        assert!(
            e.to_string()
                .contains("MsgSeqNum(34) too low: expected 10, received 4"),
            "{e}"
        );
        let (_, mut stranger) = pair();
        stranger.config.sender_comp_id = "OTHER".into();
        stranger.write(mt::HEARTBEAT, b"", &mut wire);
        let e = client.inbound(&deliver(&wire), &mut out).unwrap_err();
        assert!(e.to_string().contains("wrong CompID"), "{e}");
    }
}
