//! HTTP/2 connections: requests are multiplexed, so a connection sends each released request
//! at once as its own stream, without waiting for earlier responses. The only wait the target
//! can impose is its stream limit (`SETTINGS_MAX_CONCURRENT_STREAMS`) and flow control: the
//! request's turn starts when the connection is ready to open a stream, and any wait before
//! that is the target's.
//!
//! The protocol is the order client's ([`crate::order::h2`]); here each response is awaited in
//! a task of its own and recorded.

use std::cell::Cell;
use std::rc::Rc;

use tokio::sync::Notify;

use super::plan::{ErrorKind, HttpWire};
use super::shared::{
    Local, Slot, Times, connection_rng, failed, next_due, reconnect, record_http, timeout_message,
};
use crate::order::clock::now_ns;
use crate::order::connect::Stream;
use crate::order::h2::{Sender, Target, build_request, handshake, read_response, send};

/// Requests of one connection still waiting for their response.
#[derive(Default)]
struct InFlight {
    count: Cell<u64>,
    idle: Notify,
}

/// An HTTP/2 session on `stream` (opened now when `None`); its connection task runs beside.
/// `Err(true)`: the run is hopeless and was stopped; `Err(false)`: this request failed.
async fn session(
    local: &Local,
    stream: Option<Stream>,
    i: u64,
    intended: u64,
) -> Result<Sender, bool> {
    let s = match stream {
        Some(s) => s,
        None => reconnect(local, i).await?,
    };
    handshake(s).await.map_err(|m| {
        failed(local, i, intended, ErrorKind::Connect, m);
        false
    })
}

/// Await one response and its whole body in a task of its own, then record it.
fn await_response(
    wire: Rc<HttpWire>,
    local: Rc<Local>,
    inflight: Rc<InFlight>,
    times: Times,
    response: h2::client::ResponseFuture,
) {
    inflight.count.set(inflight.count.get() + 1);
    tokio::task::spawn_local(async move {
        let timeout = local.global.plan.timeout;
        let result = tokio::time::timeout(timeout, read_response(response)).await;
        let done = now_ns();
        let outcome = match &result {
            Ok(Ok((status, bytes))) => Ok((*status, bytes.as_slice())),
            Ok(Err(e)) => Err((ErrorKind::Connect, format!("HTTP/2: {e}"))),
            Err(_) => Err((ErrorKind::Timeout, timeout_message(timeout))),
        };
        record_http(&local, &wire, times, done, outcome);
        inflight.count.set(inflight.count.get() - 1);
        if inflight.count.get() == 0 {
            inflight.idle.notify_one();
        }
    });
}

/// Wait for the session to take a new stream for request `i`: the target's backpressure. A
/// broken session or no free stream within the timeout fails the request (`None`).
async fn free_stream(local: &Local, open: Sender, i: u64, intended: u64) -> Option<Sender> {
    let timeout = local.global.plan.timeout;
    match tokio::time::timeout(timeout, open.ready()).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            let m = format!("HTTP/2: {e}");
            failed(local, i, intended, ErrorKind::Connect, m);
            None
        }
        Err(_) => {
            failed(
                local,
                i,
                intended,
                ErrorKind::Timeout,
                timeout_message(timeout),
            );
            None
        }
    }
}

/// One HTTP/2 connection's task: open a stream for each released request as soon as the
/// connection allows one, and leave the response to a task of its own.
pub(super) async fn connection(
    wire: Rc<HttpWire>,
    k: u64,
    slot: Rc<Slot>,
    stream: Option<Stream>,
    local: Rc<Local>,
) {
    let plan = &local.global.plan;
    let mut rng = connection_rng(plan.seed, k);
    let (mut path, mut body) = (String::new(), String::new());
    let mut sender: Option<Sender> = None;
    let mut pending_stream = stream;
    let inflight = Rc::new(InFlight::default());
    let target = Target {
        scheme: if local.global.connector.is_tls() {
            "https"
        } else {
            "http"
        },
        host: &wire.host,
        method: &wire.method,
        headers: &wire.headers,
    };
    let mut j = 0u64;
    while let Some((i, intended)) = next_due(&slot, &mut j, &local, k).await {
        // Opening the session and waiting for a free stream are the target's; whatever
        // lateness came before this moment is the generator's own.
        let waiting = now_ns();
        let open = match sender.take() {
            Some(s) => s,
            None => match session(&local, pending_stream.take(), i, intended).await {
                Ok(s) => s,
                Err(true) => break,
                Err(false) => continue,
            },
        };
        let Some(mut ready) = free_stream(&local, open, i, intended).await else {
            continue;
        };
        let ready_at = intended + now_ns().saturating_sub(waiting.max(intended));
        wire.path.render(i, &mut rng, &mut path);
        let req_body = wire.body.as_ref().map(|t| {
            t.render(i, &mut rng, &mut body);
            body.as_str()
        });
        let (request, req_body) = match build_request(target, &path, req_body) {
            Ok(r) => r,
            Err(m) => {
                local.global.halt(format!("request {i}: {m}"));
                break;
            }
        };
        let sent = now_ns();
        let times = Times {
            i,
            intended,
            ready_at,
            sent,
        };
        match send(&mut ready, request, req_body) {
            Ok(response) => {
                sender = Some(ready);
                let (w, l) = (wire.clone(), local.clone());
                await_response(w, l, inflight.clone(), times, response);
            }
            // The session is broken: the next request opens a new one.
            Err(e) => record_http(
                &local,
                &wire,
                times,
                now_ns(),
                Err((ErrorKind::Connect, format!("HTTP/2: {e}"))),
            ),
        }
    }
    while inflight.count.get() > 0 {
        inflight.idle.notified().await;
    }
}
