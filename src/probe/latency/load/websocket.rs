//! Orders over WebSocket (RFC 6455): one JSON text message per order, answers matched by a JSON
//! pointer, on the load generator's pipelined machinery (`pipeline`). The WebSocket client
//! itself (the handshake, reading and writing messages) is the order client's
//! ([`crate::order::websocket`]). A refused upgrade is a `connect` error.
//!
//! This wire stays with the probe because it judges answers by the probe's acknowledgement
//! condition ([`JsonExpect`], from the checklist's `json_pointer` keys).
//!
//! Each order's correlation id is the value its rendered message holds at the request pointer
//! (e.g. `/client_order_id`); an inbound message answers that order when it holds the same
//! value at the response pointer. Anything else on the socket (market data, status messages,
//! text that is not JSON) is ignored. An answer that fails the acknowledgement condition
//! (a JSON pointer and the values accepted there) is a reject of kind `rejected`. A close
//! frame fails the orders in flight with its code and reason.

use futures::StreamExt;
use http::header::{HeaderName, HeaderValue};
use serde_json::Value;

use crate::order::connect::Stream;
use crate::order::pipelined::{Inbound, OrderTransport};
use crate::order::snippet;
use crate::order::template::{Rng, Template};
use crate::order::websocket::{WsStream, correlation_id, handshake, next_data, send_text};
use crate::probe::expect::JsonExpect;

/// The reject kinds of the WebSocket transport.
pub const REJECT_KINDS: &[&str] = &["rejected"];

/// A validated WebSocket order wire.
#[derive(Debug, Clone)]
pub struct WsWire {
    /// The URL of the opening handshake, `ws://` or `wss://` (may hold `${VAR}` values; never
    /// shown).
    pub url: String,
    /// Extra headers of the opening handshake (values may hold secrets; never shown).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// The order message template (JSON once rendered).
    pub message: Template,
    /// RFC 6901 pointer to the correlation id in the rendered order message.
    pub request_match: String,
    /// RFC 6901 pointer to the correlation id in an answer.
    pub response_match: String,
    /// What an acknowledgement must hold; a matched answer failing it is a `rejected` order.
    pub ack: Option<JsonExpect>,
}

impl WsWire {
    /// Decode one inbound data message: an answer to the order it names, or nothing to us.
    pub fn decode(&self, bytes: &[u8]) -> Inbound {
        let Ok(doc) = serde_json::from_slice::<Value>(bytes) else {
            return Inbound::Ignore;
        };
        let Some(id) = correlation_id(&doc, &self.response_match) else {
            return Inbound::Ignore;
        };
        let outcome = match &self.ack {
            None => Ok(()),
            Some(ack) => ack.check_value(&doc).map(|_| ()).map_err(|m| {
                (
                    REJECT_KINDS[0],
                    format!("{m}, expected {}: {}", ack.describe(), snippet(bytes)),
                )
            }),
        };
        Inbound::Match { id, outcome }
    }
}

impl OrderTransport for WsWire {
    type Session = WsStream;

    fn reject_kinds(&self) -> &'static [&'static str] {
        REJECT_KINDS
    }

    async fn open(&self, stream: Stream) -> Result<Self::Session, String> {
        handshake(&self.url, &self.headers, stream).await
    }

    fn encode(
        &self,
        _session: &mut Self::Session,
        i: u64,
        rng: &mut Rng,
        message: &mut String,
        id: &mut String,
    ) -> Result<(), String> {
        self.message.render(i, rng, message);
        let doc: Value = serde_json::from_str(message)
            .map_err(|e| format!("the rendered message is not JSON ({e}): {message}"))?;
        id.clear();
        id.push_str(&correlation_id(&doc, &self.request_match).ok_or_else(|| {
            format!(
                "the rendered message has no string or number at {}: {message}",
                self.request_match
            )
        })?);
        Ok(())
    }

    async fn send(&self, session: &mut Self::Session, message: &str) -> Result<(), String> {
        send_text(session, message).await
    }

    async fn recv(&self, session: &mut Self::Session) -> Inbound {
        match next_data(session).await {
            Ok(bytes) => self.decode(&bytes),
            Err(why) => Inbound::Fatal(why),
        }
    }

    async fn close(&self, mut session: Self::Session) {
        if session.close(None).await.is_ok() {
            // Wait for the server's close frame (RFC 6455 §5.5.1), then the end of the stream.
            while let Some(Ok(_)) = session.next().await {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(ack: Option<JsonExpect>) -> WsWire {
        WsWire {
            url: "ws://127.0.0.1:9/ws".into(),
            headers: Vec::new(),
            message: Template::parse(r#"{"client_order_id":"o-{{seq}}"}"#).unwrap(),
            request_match: "/client_order_id".into(),
            response_match: "/client_order_id".into(),
            ack,
        }
    }

    #[test]
    fn answers_match_by_pointer_and_everything_else_is_ignored() {
        let ack = JsonExpect {
            pointer: "/status".into(),
            one_of: vec![Value::from("accepted"), Value::from("filled")],
        };
        let w = wire(Some(ack));
        assert_eq!(
            w.decode(br#"{"client_order_id":"o-1","status":"filled"}"#),
            Inbound::Match {
                id: "o-1".into(),
                outcome: Ok(())
            }
        );
        let Inbound::Match { id, outcome } =
            w.decode(br#"{"client_order_id":"o-2","status":"rejected"}"#)
        else {
            panic!("a reject is an answer");
        };
        assert_eq!(id, "o-2");
        let (kind, m) = outcome.unwrap_err();
        assert_eq!(kind, "rejected");
        assert!(m.contains("/status = \"rejected\""), "{m}");
        assert_eq!(
            w.decode(br#"{"type":"quote","mid":101.5}"#),
            Inbound::Ignore
        );
        assert_eq!(w.decode(b"not json"), Inbound::Ignore);
        assert_eq!(
            wire(None).decode(br#"{"client_order_id":7}"#),
            Inbound::Match {
                id: "7".into(),
                outcome: Ok(())
            }
        );
    }
}
