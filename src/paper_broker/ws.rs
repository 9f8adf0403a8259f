//! `/ws/orders`: order entry over WebSocket (RFC 6455, axum's `ws`, tokio-tungstenite under
//! it), the protocol in the [module docs](super#websocket-order-entry).
//!
//! Each socket has a reader (this task), one writer task fed by a channel, and a quote task.
//! Every order message is handled in a task of its own, so a slow or stalled order does not
//! hold up the socket's other orders: their answers go out as they finish, in any order, as a
//! venue's pipelined order entry does.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::State as AxState;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::State;
use super::place::{Placed, place};

/// `GET /ws/orders`: upgrade to a WebSocket order session.
pub(super) async fn orders(AxState(state): AxState<Arc<State>>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| session(state, socket))
}

/// `POST /admin/ws/close`: close every open order socket with 1012 (service restart).
pub(super) async fn admin_close(AxState(state): AxState<Arc<State>>) -> Response {
    state.ws_close.send_modify(|n| *n += 1);
    eprintln!("paper broker: closing every WebSocket (admin)");
    (StatusCode::OK, axum::Json(json!({ "closed": true }))).into_response()
}

/// Serve one socket until the client closes it, the admin closes it, or shutdown.
async fn session(state: Arc<State>, socket: WebSocket) {
    let (mut sink, mut stream) = socket.split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        while let Some(m) = rx.recv().await {
            let last = matches!(m, Message::Close(_));
            if sink.send(m).await.is_err() || last {
                break;
            }
        }
    });
    let quotes = tokio::spawn(quotes(state.clone(), tx.clone()));
    let mut close = state.ws_close.subscribe();
    let closing = loop {
        tokio::select! {
            m = stream.next() => match m {
                Some(Ok(Message::Text(text))) => {
                    let (state, tx) = (state.clone(), tx.clone());
                    tokio::spawn(async move {
                        let reply = handle(&state, text.as_bytes()).await;
                        let _ = tx.send(Message::Text(reply.to_string().into()));
                    });
                }
                Some(Ok(Message::Binary(bytes))) => {
                    let (state, tx) = (state.clone(), tx.clone());
                    tokio::spawn(async move {
                        let reply = handle(&state, &bytes).await;
                        let _ = tx.send(Message::Text(reply.to_string().into()));
                    });
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => break None,
            },
            _ = close.changed() => break Some((close_code::RESTART, "closed by /admin/ws/close")),
            _ = state.shutdown.cancelled() => break Some((close_code::AWAY, "paper broker shutting down")),
        }
    };
    quotes.abort();
    if let Some((code, reason)) = closing {
        let _ = tx.send(Message::Close(Some(CloseFrame {
            code,
            reason: reason.into(),
        })));
    }
    drop(tx);
    let _ = writer.await;
}

/// Send a quote of the default symbol every `ws_quote_interval`.
async fn quotes(state: Arc<State>, tx: mpsc::UnboundedSender<Message>) {
    let mut tick = tokio::time::interval(state.ws_quote_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let t = state.since_start();
        let mid = state.book().mid("NIFTY", t);
        let q =
            json!({ "type": "quote", "symbol": "NIFTY", "mid": mid, "t_ms": t.as_millis() as u64 });
        if tx.send(Message::Text(q.to_string().into())).is_err() {
            return;
        }
    }
}

/// Answer one message: place or cancel, under the same stall, latency and error faults as
/// HTTP orders.
async fn handle(state: &State, bytes: &[u8]) -> Value {
    let started = Instant::now();
    if let Some(wait) = state
        .faults
        .stall_remaining(state.since_start(), Instant::now())
    {
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = state.shutdown.cancelled() => {}
        }
    }
    let mut msg: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => return error(&Value::Null, &format!("invalid message: {e}")),
    };
    let action = msg
        .as_object_mut()
        .and_then(|o| o.remove("action"))
        .unwrap_or_else(|| json!("place"));
    let reply = match action.as_str() {
        Some("place") => {
            let order = serde_json::from_value(msg.clone());
            match place(state, order).await {
                Placed::Injected => error(&msg, "injected fault"),
                Placed::Invalid(m) => error(&msg, &format!("invalid order: {m}")),
                Placed::Ack(ack, duplicate) => {
                    let mut v = json!(ack);
                    v["type"] = json!("ack");
                    if duplicate {
                        v["duplicate"] = json!(true);
                    }
                    v
                }
            }
        }
        Some("cancel") => cancel(state, &msg),
        _ => error(
            &msg,
            &format!("unknown action {action} (expected \"place\" or \"cancel\")"),
        ),
    };
    state.metrics.observe_order(started.elapsed());
    reply
}

/// Cancel the resting order `msg["order_id"]`.
fn cancel(state: &State, msg: &Value) -> Value {
    let Some(id) = msg.get("order_id").and_then(Value::as_str) else {
        return error(msg, "a cancel needs order_id");
    };
    let t = state.since_start();
    let mut b = state.book();
    b.match_resting(t);
    match b.cancel(id) {
        Ok(o) => {
            json!({ "type": "cancel", "order_id": o.order_id, "client_order_id": o.client_order_id, "status": o.status })
        }
        Err(None) => error(msg, "no such order"),
        Err(Some(status)) => error(msg, &format!("order is {}, not open", status.as_str())),
    }
}

/// An error answer, echoing the ids of `msg` so the client can match it.
fn error(msg: &Value, message: &str) -> Value {
    let mut v = json!({ "type": "error", "error": message });
    for key in ["client_order_id", "order_id"] {
        if let Some(id) = msg.get(key) {
            v[key] = id.clone();
        }
    }
    v
}
