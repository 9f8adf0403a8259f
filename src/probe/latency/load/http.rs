//! HTTP connections: the HTTP wire's [`Driver`], and the HTTP/1.1 keep-alive connection task
//! (one request in flight per connection: each released request is sent when the connection is
//! free). HTTP/2 connections are [`super::h2`]'s; the HTTP/1.1 protocol itself is the order
//! client's ([`crate::order::http1`]).

use std::rc::Rc;
use std::time::Duration;

use super::h2;
use super::plan::{ErrorKind, HttpWire};
use super::shared::{
    Driver, Global, Local, Slot, Times, connection_rng, next_due, on_time_free, reconnect,
    record_http, timeout_message,
};
use crate::order::clock::now_ns;
use crate::order::connect::{Stream, Version};
use crate::order::http1::{ExchangeError, Reader, RequestHead};

/// HTTP connections: HTTP/1.1 keep-alive ([`connection`]) or HTTP/2 ([`h2::connection`]; its
/// handshake happens on the first request).
pub(super) struct Http(pub(super) Rc<HttpWire>);

impl Driver for Http {
    type Conn = Stream;

    async fn open(&self, global: &Global) -> Result<(Stream, Duration), String> {
        global.connector.connect(global.plan.timeout).await
    }

    fn connection(
        &self,
        k: u64,
        slot: Rc<Slot>,
        conn: Option<Stream>,
        local: Rc<Local>,
    ) -> impl Future<Output = ()> + 'static {
        let wire = self.0.clone();
        async move {
            match wire.version {
                Version::Http1 => connection(wire, k, slot, conn, local).await,
                Version::Http2 => h2::connection(wire, k, slot, conn, local).await,
            }
        }
    }
}

/// One HTTP/1.1 connection's task: send each released request when the connection is free,
/// read its response, record.
async fn connection(
    wire: Rc<HttpWire>,
    k: u64,
    slot: Rc<Slot>,
    mut stream: Option<Stream>,
    local: Rc<Local>,
) {
    let plan = &local.global.plan;
    let head = RequestHead::new(&wire.method, &wire.host, &wire.headers);
    let mut rng = connection_rng(plan.seed, k);
    let mut path = String::new();
    let mut body = String::new();
    let mut request = Vec::with_capacity(512);
    let mut reader = Reader::default();
    // When the connection would have become free had the generator sent every request on
    // time: each exchange holds it for the target's service time from the moment it could
    // have been sent ([`on_time_free`]).
    let mut free_since = local.start_ns;
    let mut j = 0u64;
    while let Some((i, intended)) = next_due(&slot, &mut j, &local, k).await {
        if stream.is_none() {
            let connecting = now_ns();
            match reconnect(&local, i).await {
                Ok(s) => {
                    stream = Some(s);
                    free_since = on_time_free(intended, free_since, connecting, now_ns());
                }
                Err(true) => return,
                Err(false) => continue,
            }
        }
        let Some(s) = stream.as_mut() else { continue };
        wire.path.render(i, &mut rng, &mut path);
        let req_body = wire.body.as_ref().map(|t| {
            t.render(i, &mut rng, &mut body);
            body.as_str()
        });
        head.render(&path, req_body, &mut request);
        let sent = now_ns();
        let exchange = async {
            crate::order::http1::write(s, &request).await?;
            reader.read(s, head.head).await
        };
        let result = tokio::time::timeout(plan.timeout, exchange).await;
        let done = now_ns();
        let times = Times {
            i,
            intended,
            ready_at: intended.max(free_since),
            sent,
        };
        free_since = on_time_free(intended, free_since, sent, done);
        let outcome = match result {
            Err(_) => Err((ErrorKind::Timeout, timeout_message(plan.timeout))),
            Ok(Err(ExchangeError::Io(m))) => Err((ErrorKind::Connect, m)),
            Ok(Err(ExchangeError::Protocol(m))) => Err((ErrorKind::Body, m)),
            Ok(Ok(resp)) => Ok(resp),
        };
        match outcome {
            Ok(resp) => {
                if resp.close {
                    stream = None;
                }
                let body = reader.body(&resp);
                record_http(&local, &wire, times, done, Ok((resp.status, body)));
            }
            Err((kind, m)) => {
                stream = None;
                let addr = local.global.connector.addr;
                let m = format!("{addr}: {m}");
                record_http(&local, &wire, times, done, Err((kind, m)));
            }
        }
    }
}
