//! HTTP/2 connections (RFC 9113, the `h2` crate): requests are multiplexed, so a connection
//! sends each released request at once as its own stream, without waiting for earlier
//! responses. The only wait the target can impose is its stream limit
//! (`SETTINGS_MAX_CONCURRENT_STREAMS`) and flow control: the request's turn starts when the
//! connection is ready to open a stream, and any wait before that is the target's.
//!
//! Unlike the HTTP/1.1 path, each request here builds an `http::Request` and a task of its
//! own (a few small allocations): the `h2` crate's API needs them.

use std::cell::Cell;
use std::rc::Rc;

use bytes::Bytes;
use tokio::sync::Notify;

use super::ErrorKind;
use super::clock::now_ns;
use super::engine::{
    Local, Slot, Times, connection_rng, next_due, reconnect, record, timeout_message,
};
use super::transport::Stream;

/// Requests of one connection still waiting for their response.
#[derive(Default)]
struct InFlight {
    count: Cell<u64>,
    idle: Notify,
}

/// One HTTP/2 connection's task.
pub(super) async fn connection(k: u64, slot: Rc<Slot>, stream: Option<Stream>, local: Rc<Local>) {
    let plan = &local.global.plan;
    let mut rng = connection_rng(plan.seed, k);
    let mut path = String::new();
    let mut body = String::new();
    let mut sender: Option<h2::client::SendRequest<Bytes>> = None;
    let mut pending_stream = stream;
    let inflight = Rc::new(InFlight::default());
    let scheme = if local.global.connector.is_tls() {
        "https"
    } else {
        "http"
    };
    let mut j = 0u64;
    while let Some((i, intended)) = next_due(&slot, &mut j, &local, k).await {
        if sender.is_none() {
            let s = match pending_stream.take() {
                Some(s) => s,
                None => match reconnect(&local, i).await {
                    Ok(s) => s,
                    Err(true) => break,
                    Err(false) => continue,
                },
            };
            match h2::client::handshake(s).await {
                Ok((send, conn)) => {
                    tokio::task::spawn_local(async move {
                        let _ = conn.await;
                    });
                    sender = Some(send);
                }
                Err(e) => {
                    let t = Times {
                        i,
                        intended,
                        ready_at: intended,
                        sent: now_ns(),
                    };
                    record(
                        &local,
                        t,
                        now_ns(),
                        Err((ErrorKind::Connect, format!("HTTP/2 handshake: {e}"))),
                    );
                    continue;
                }
            }
        }
        let Some(send) = sender.take() else { continue };
        // Waiting for a free stream is the target's backpressure.
        let mut send = match tokio::time::timeout(plan.timeout, send.ready()).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                let now = now_ns();
                let t = Times {
                    i,
                    intended,
                    ready_at: now.max(intended),
                    sent: now,
                };
                record(
                    &local,
                    t,
                    now,
                    Err((ErrorKind::Connect, format!("HTTP/2: {e}"))),
                );
                continue;
            }
            Err(_) => {
                let now = now_ns();
                let t = Times {
                    i,
                    intended,
                    ready_at: now.max(intended),
                    sent: now,
                };
                record(
                    &local,
                    t,
                    now,
                    Err((ErrorKind::Timeout, timeout_message(plan.timeout))),
                );
                continue;
            }
        };
        let ready_at = now_ns().max(intended);
        plan.path.render(i, &mut rng, &mut path);
        let req_body = plan.body.as_ref().map(|t| {
            t.render(i, &mut rng, &mut body);
            Bytes::copy_from_slice(body.as_bytes())
        });
        let mut builder = http::Request::builder()
            .method(plan.method.clone())
            .uri(format!("{scheme}://{}{path}", plan.host));
        for (name, value) in &plan.headers {
            builder = builder.header(name, value);
        }
        let Ok(request) = builder.body(()) else {
            local
                .global
                .halt(format!("request {i}: {path} is not a valid request target"));
            break;
        };
        let sent = now_ns();
        let times = Times {
            i,
            intended,
            ready_at,
            sent,
        };
        let (response, mut body_stream) = match send.send_request(request, req_body.is_none()) {
            Ok(r) => r,
            Err(e) => {
                record(
                    &local,
                    times,
                    now_ns(),
                    Err((ErrorKind::Connect, format!("HTTP/2: {e}"))),
                );
                continue;
            }
        };
        if let Some(b) = req_body
            && let Err(e) = body_stream.send_data(b, true)
        {
            record(
                &local,
                times,
                now_ns(),
                Err((ErrorKind::Connect, format!("HTTP/2: {e}"))),
            );
            sender = Some(send);
            continue;
        }
        sender = Some(send);
        inflight.count.set(inflight.count.get() + 1);
        let (local2, inflight2) = (local.clone(), inflight.clone());
        tokio::task::spawn_local(async move {
            let timeout = local2.global.plan.timeout;
            let exchange = async {
                let resp = response.await?;
                let status = resp.status().as_u16();
                let mut body = resp.into_body();
                let mut bytes = Vec::new();
                while let Some(chunk) = body.data().await {
                    let chunk = chunk?;
                    let _ = body.flow_control().release_capacity(chunk.len());
                    bytes.extend_from_slice(&chunk);
                }
                Ok::<_, h2::Error>((status, bytes))
            };
            let result = tokio::time::timeout(timeout, exchange).await;
            let done = now_ns();
            match result {
                Ok(Ok((status, bytes))) => record(&local2, times, done, Ok((status, &bytes))),
                Ok(Err(e)) => record(
                    &local2,
                    times,
                    done,
                    Err((ErrorKind::Connect, format!("HTTP/2: {e}"))),
                ),
                Err(_) => record(
                    &local2,
                    times,
                    done,
                    Err((ErrorKind::Timeout, timeout_message(timeout))),
                ),
            }
            inflight2.count.set(inflight2.count.get() - 1);
            if inflight2.count.get() == 0 {
                inflight2.idle.notify_one();
            }
        });
    }
    while inflight.count.get() > 0 {
        inflight.idle.notified().await;
    }
}
