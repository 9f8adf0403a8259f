//! The soak `order` monitor over FIX (`transport = "fix"`): each check opens a session (Logon
//! with ResetSeqNumFlag by default), sends one NewOrderSingle (35=D) from the `place`
//! template, checks the first ExecutionReport (35=8) for its ClOrdID(11) against the accepted
//! OrdStatus(39) values, optionally cancels a resting order with an OrderCancelRequest (35=F)
//! whose ExecutionReport must say Canceled (39=4) or PendingCancel (39=6), and logs out.
//!
//! A Reject (35=3), BusinessMessageReject (35=j), OrderCancelReject (35=9) or OrdStatus=8
//! fails the check with the counterparty's Text(58).
//!
//! The session keys and the order template are checked by the order client's rules
//! ([`crate::order::keys`]), shared with the `latency` probe, and the session runs over its
//! connections ([`crate::order::connect`]).

use std::time::Duration;

use refix_message::RawMessage;
use tokio::io::AsyncWriteExt;

use super::order::{RawCancel, RawOrderCheck};
use crate::fix::session::{self, Event, Role, Session, SessionConfig};
use crate::fix::{Fields, FixError, Reader, codec, msg_type as mt, tag};
use crate::order::connect::{Connector, Stream};
use crate::order::keys::{order_template, session_keys};
use crate::order::template::{Rng, Template};
use crate::order::transport::split_fix_url;
use crate::probe::{FieldError, Validator, refuse_keys};

/// A validated FIX order check.
#[derive(Debug, Clone)]
pub struct FixOrderCheck {
    url_display: String,
    host: String,
    port: u16,
    tls: bool,
    session: SessionConfig,
    place: Template,
    transact_time: bool,
    accept: Vec<String>,
    cancel: bool,
}

impl RawOrderCheck {
    /// With HTTP or WebSocket, none of the FIX keys.
    ///
    /// # Errors
    /// A [`FieldError`] at the first FIX key given.
    pub fn no_fix_keys(&self) -> Result<(), FieldError> {
        let mut keys = session_keys!(self).given().to_vec();
        keys.push(("ack_ord_status", self.ack_ord_status.is_some()));
        refuse_keys(&keys, "applies only to transport = \"fix\"")
    }

    /// Validate a `transport = "fix"` check: the session keys, the `place` template, the
    /// accepted OrdStatus values and `cancel = true`; HTTP and WebSocket keys are errors.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate_fix(&self, v: &mut Validator) -> Result<FixOrderCheck, FieldError> {
        let json_keys = [
            ("api_key", self.api_key.is_some()),
            ("match", self.match_pointer.is_some()),
            ("ack", self.ack.is_some()),
            ("cancel_ack", self.cancel_ack.is_some()),
            ("order_id", self.order_id.is_some()),
        ];
        refuse_keys(
            &[&json_keys[..], &self.paper_order_keys()[..]].concat(),
            "does not apply to transport = \"fix\" (the order is `place`, its acknowledgement's OrdStatus `ack_ord_status`)",
        )?;
        let cancel = match &self.cancel {
            None | Some(RawCancel::Flag(false)) => false,
            Some(RawCancel::Flag(true)) => true,
            Some(RawCancel::Template(_)) => {
                return Err(FieldError::new(
                    "cancel",
                    "over FIX, cancel = true: the OrderCancelRequest (35=F) is built from the order",
                ));
            }
        };
        let url = v.interpolate("url", &self.url)?;
        let (tls, host, port) = split_fix_url(&url.value).map_err(|m| FieldError::new("url", m))?;
        let session = session_keys!(self).validate(&mut v.redactor)?;
        let (place, tags) = order_template(&mut v.redactor, "place", self.place.as_deref())?;
        let accept = ord_statuses(self.ack_ord_status.as_deref())?;
        Ok(FixOrderCheck {
            url_display: url.display,
            host,
            port,
            tls,
            session,
            place,
            transact_time: !tags.contains(&tag::TRANSACT_TIME),
            accept,
            cancel,
        })
    }
}

/// `ack_ord_status`: one-character OrdStatus(39) values; default New, PartiallyFilled, Filled.
fn ord_statuses(given: Option<&[String]>) -> Result<Vec<String>, FieldError> {
    let accept: Vec<String> = match given {
        Some([]) => {
            return Err(FieldError::new(
                "ack_ord_status",
                "expected at least one OrdStatus(39) value",
            ));
        }
        Some(list) => list.to_vec(),
        None => vec!["0".into(), "1".into(), "2".into()],
    };
    if let Some(bad) = accept
        .iter()
        .find(|s| s.len() != 1 || !s.chars().all(|c| c.is_ascii_alphanumeric()))
    {
        return Err(FieldError::new(
            "ack_ord_status",
            format!(
                "\"{bad}\" is not an OrdStatus(39) value (one character, e.g. \"0\" New, \"2\" Filled)"
            ),
        ));
    }
    Ok(accept)
}

/// A session's parts for one check.
struct Conn {
    stream: Stream,
    session: Session,
    reader: Reader,
    out: Vec<u8>,
}

impl FixOrderCheck {
    /// `fix+tcp://HOST:PORT` as written (secrets hidden).
    pub fn shown(&self) -> &str {
        &self.url_display
    }

    /// Place one order (and cancel it when asked) within `timeout`. `Ok(ops)`: the operations
    /// done (1, or 2 with a cancel); `Err((message, ops, failed ops))`.
    pub async fn run(&self, seq: u64, timeout: Duration) -> Result<u32, (String, u32, u32)> {
        let shown = &self.url_display;
        let mut conn = self
            .open(timeout)
            .await
            .map_err(|e| (format!("{shown}: {e}"), 1, 1))?;
        let placed = tokio::time::timeout(timeout, self.place_and_cancel(&mut conn, seq)).await;
        let result = match placed {
            Ok(r) => r,
            Err(_) => Err((
                format!(
                    "no answer within {}",
                    crate::units::format_duration(timeout)
                ),
                1,
                1,
            )),
        };
        let _ = session::logout(
            &mut conn.session,
            &mut conn.reader,
            &mut conn.stream,
            Duration::from_secs(2),
            |_| {},
        )
        .await;
        result.map_err(|(m, ops, failed)| (format!("{shown}: {m}"), ops, failed))
    }

    /// Connect and log on.
    async fn open(&self, timeout: Duration) -> Result<Conn, String> {
        let addr = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|e| format!("cannot resolve {}: {e}", self.host))?
            .next()
            .ok_or_else(|| format!("{} has no address", self.host))?;
        let connector = if self.tls {
            Connector::tls(addr, None, &self.host, None)?
        } else {
            Connector::plain(addr)
        };
        let (mut stream, _) = connector.connect(timeout).await?;
        let mut s = Session::new(self.session.clone(), Role::Initiator);
        let mut reader = Reader::new();
        session::initiate(&mut s, &mut reader, &mut stream, timeout)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Conn {
            stream,
            session: s,
            reader,
            out: Vec::new(),
        })
    }

    async fn place_and_cancel(&self, c: &mut Conn, seq: u64) -> Result<u32, (String, u32, u32)> {
        let mut text = String::new();
        let mut rng = Rng::new(seq ^ jiff::Timestamp::now().as_nanosecond() as u64);
        self.place.render(seq, &mut rng, &mut text);
        let mut body = Vec::new();
        codec::pipes_to_soh(&text, &mut body);
        if self.transact_time {
            body.extend_from_slice(format!("60={}\u{1}", crate::fix::utc_timestamp()).as_bytes());
        }
        let id = String::from_utf8_lossy(codec::find(&body, tag::CL_ORD_ID).unwrap_or_default())
            .into_owned();
        let ack = send_and_wait(c, mt::NEW_ORDER_SINGLE, &body, &id)
            .await
            .map_err(|m| (m, 1, 1))?;
        let status = codec::text(&ack, tag::ORD_STATUS).to_string();
        if !self.accept.contains(&status) {
            return Err((
                format!(
                    "order {id}: OrdStatus(39)={status} (expected one of {:?}) Text(58) \"{}\"",
                    self.accept,
                    codec::text(&ack, tag::TEXT)
                ),
                1,
                1,
            ));
        }
        if !(self.cancel && status == "0") {
            return Ok(1);
        }
        let cxl_id = format!("{id}-cxl");
        let mut f = Fields::new();
        f.add(tag::ORIG_CL_ORD_ID, &id).add(tag::CL_ORD_ID, &cxl_id);
        for t in [tag::SYMBOL, tag::SIDE, tag::ORDER_QTY] {
            if let Some(v) = codec::find(&body, t) {
                f.add(t, String::from_utf8_lossy(v));
            }
        }
        f.add(tag::TRANSACT_TIME, crate::fix::utc_timestamp());
        let cxl = send_and_wait(c, mt::ORDER_CANCEL_REQUEST, f.as_bytes(), &cxl_id)
            .await
            .map_err(|m| (m, 2, 1))?;
        match codec::text(&cxl, tag::ORD_STATUS) {
            "4" | "6" => Ok(2),
            other => Err((
                format!(
                    "cancel of order {id}: OrdStatus(39)={other}, expected 4 (Canceled) or 6 (PendingCancel)"
                ),
                2,
                1,
            )),
        }
    }
}

/// Send one message and wait for the ExecutionReport of `id`; a reject of it is an error
/// with its Text(58).
async fn send_and_wait(
    c: &mut Conn,
    kind: &str,
    body: &[u8],
    id: &str,
) -> Result<RawMessage, String> {
    let seq = c.session.write(kind, body, &mut c.out) as i64;
    write(&mut c.stream, &c.out).await?;
    loop {
        let m = c
            .reader
            .next(&mut c.stream)
            .await
            .map_err(|e| e.to_string())?;
        let event = c
            .session
            .inbound(&m, &mut c.out)
            .map_err(|e| e.to_string())?;
        write(&mut c.stream, &c.out).await?;
        let app = match event {
            Event::App(app) => app,
            Event::Logout(t) => {
                return Err(FixError::LoggedOut(format!("Text(58) \"{t}\"")).to_string());
            }
            Event::Admin | Event::Logon => continue,
        };
        let text = codec::text(&m, tag::TEXT);
        let refers = codec::int(&m, tag::REF_SEQ_NUM) == Some(seq);
        match app.as_str() {
            mt::EXECUTION_REPORT if codec::text(&m, tag::CL_ORD_ID) == id => return Ok(m),
            mt::ORDER_CANCEL_REJECT if codec::text(&m, tag::CL_ORD_ID) == id => {
                return Err(format!(
                    "OrderCancelReject (35=9) of {id}: Text(58) \"{text}\""
                ));
            }
            mt::REJECT | mt::BUSINESS_MESSAGE_REJECT if refers => {
                return Err(format!(
                    "{} (35={app}) of {id}: Text(58) \"{text}\"",
                    session::name(&app)
                ));
            }
            _ => {}
        }
    }
}

async fn write(stream: &mut Stream, out: &[u8]) -> Result<(), String> {
    if out.is_empty() {
        return Ok(());
    }
    stream
        .write_all(out)
        .await
        .map_err(|e| format!("writing: {e}"))
}
