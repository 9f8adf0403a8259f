//! WebSocket (RFC 6455) for orders: the opening handshake, reading data messages, sending text
//! and finding an order's correlation id in a JSON message.
//!
//! The framing, masking, ping/pong and close handshake are tokio-tungstenite's, run over the
//! order client's own [`Stream`] (TCP, or TLS through the rustls
//! [`Connector`](super::connect::Connector)), so `ws://` and `wss://` share everything but the
//! TLS layer. The opening handshake is an HTTP/1.1 upgrade carrying the configured headers
//! (e.g. `Authorization`); a refusal is an error with the status and body the server sent. A
//! close frame ends the session with its code and reason.

use futures::{SinkExt, StreamExt};
use http::header::{HeaderName, HeaderValue};
use serde_json::Value;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::connect::Stream;
use super::snippet;

/// A WebSocket session over the order client's [`Stream`].
pub type WsStream = WebSocketStream<Stream>;

/// The correlation id at `pointer` in `doc`: a string as it is, a number or boolean as its JSON
/// text; `None` when absent or of another type.
pub fn correlation_id(doc: &Value, pointer: &str) -> Option<String> {
    match doc.pointer(pointer)? {
        Value::String(s) => Some(s.clone()),
        v @ (Value::Number(_) | Value::Bool(_)) => Some(v.to_string()),
        _ => None,
    }
}

/// A close frame for people: `code 1001 (going away), reason "maintenance"`.
pub fn describe_close(frame: Option<&CloseFrame>) -> String {
    match frame {
        None => "closed by the server without a close code".into(),
        Some(f) => {
            let code = u16::from(f.code);
            if f.reason.is_empty() {
                format!("closed by the server: code {code} ({:?})", f.code)
            } else {
                format!(
                    "closed by the server: code {code} ({:?}), reason \"{}\"",
                    f.code,
                    f.reason.as_str()
                )
            }
        }
    }
}

/// The WebSocket opening handshake (RFC 6455 §4) over `stream`, to `url` with `headers`.
///
/// # Errors
/// The status and body of a refused upgrade, or the handshake's failure.
pub async fn handshake(
    url: &str,
    headers: &[(HeaderName, HeaderValue)],
    stream: Stream,
) -> Result<WsStream, String> {
    let mut request = url
        .into_client_request()
        .map_err(|e| format!("WebSocket request: {e}"))?;
    for (name, value) in headers {
        request.headers_mut().insert(name.clone(), value.clone());
    }
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(resp)) => Err(format!(
            "WebSocket upgrade refused: HTTP {}: {}",
            resp.status().as_u16(),
            snippet(resp.body().as_deref().unwrap_or_default())
        )),
        Err(e) => Err(format!("WebSocket handshake: {e}")),
    }
}

/// Read the next data message of `ws` as bytes; `Err` with the reason when the connection is
/// over (a close frame with its code and reason, EOF, a protocol error). Control frames are
/// skipped (tokio-tungstenite answers pings itself). Cancel-safe.
pub async fn next_data(ws: &mut WsStream) -> Result<Vec<u8>, String> {
    loop {
        match ws.next().await {
            None => return Err("connection closed by the server".into()),
            Some(Err(e)) => return Err(format!("WebSocket: {e}")),
            Some(Ok(Message::Text(t))) => return Ok(t.as_bytes().to_vec()),
            Some(Ok(Message::Binary(b))) => return Ok(b.to_vec()),
            Some(Ok(Message::Close(frame))) => return Err(describe_close(frame.as_ref())),
            Some(Ok(_)) => {}
        }
    }
}

/// Send `text` as one text message.
///
/// # Errors
/// Why the write failed.
pub async fn send_text(ws: &mut WsStream, text: &str) -> Result<(), String> {
    ws.send(Message::text(text))
        .await
        .map_err(|e| format!("WebSocket: {e}"))
}
