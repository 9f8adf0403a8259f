//! HTTP faults: a connection carrying HTTP/1.1 is read up to the end of its first request's
//! head; a request that matches the fault (method, path glob) and is selected (the first
//! `count` matches, or a `rate` of them) gets the fault — an answer with a chosen status, a
//! delay before it is forwarded, or a dropped connection (RST) — and every other request is
//! forwarded. A forwarded request carries `Connection: close`, so the next request comes on a
//! new connection and is judged too (RFC 9112 §9.6).

use std::sync::atomic::Ordering;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fault::{HttpEffect, HttpFault};
use super::shared::{Inner, UPSTREAM_CONNECT_TIMEOUT};

/// The longest request head read before the connection is closed.
const MAX_HEAD: usize = 64 * 1024;

/// How a connection under an HTTP fault ended.
pub(super) enum Ended {
    /// Closed normally.
    Close,
    /// Dropped by the fault: reset it.
    Reset,
}

/// Serve one connection under `fault`: its first request gets the fault or is forwarded.
pub(super) async fn serve(inner: &Inner, client: &mut TcpStream, fault: &HttpFault) -> Ended {
    let mut head = Vec::with_capacity(4096);
    let end = loop {
        if let Some(p) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break p + 4;
        }
        let mut chunk = [0u8; 4096];
        match client.read(&mut chunk).await {
            Ok(0) | Err(_) => return Ended::Close,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
        if head.len() > MAX_HEAD {
            return Ended::Close;
        }
    };
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    let (method, path) = match req.parse(&head[..end]) {
        Ok(_) => (
            req.method.unwrap_or("").to_string(),
            req.path.unwrap_or("").to_string(),
        ),
        Err(_) => (String::new(), String::new()),
    };
    if fault.matches(&method, &path) {
        let n = inner.http_matched.fetch_add(1, Ordering::SeqCst) + 1;
        if fault.selects(n) {
            match &fault.effect {
                HttpEffect::Drop => return Ended::Reset,
                HttpEffect::Status { status } => {
                    let body = format!(
                        "{{\"error\":\"fault injected by the prodready proxy: {status}\"}}"
                    );
                    let reason = http::StatusCode::from_u16(*status)
                        .ok()
                        .and_then(|s| s.canonical_reason())
                        .unwrap_or("Fault");
                    let answer = format!(
                        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = client.write_all(answer.as_bytes()).await;
                    let _ = client.shutdown().await;
                    return Ended::Close;
                }
                HttpEffect::Delay { delay } => tokio::time::sleep(*delay).await,
            }
        }
    }
    forward(inner, client, &head, end).await
}

/// Forward the request (its head with `Connection: close`, and what followed it), then both
/// directions until either side closes.
async fn forward(inner: &Inner, client: &mut TcpStream, head: &[u8], end: usize) -> Ended {
    let mut upstream = match tokio::time::timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(&inner.upstream),
    )
    .await
    {
        Ok(Ok(s)) => s,
        _ => {
            inner
                .upstream_connect_failures
                .fetch_add(1, Ordering::SeqCst);
            return Ended::Close;
        }
    };
    let text = String::from_utf8_lossy(&head[..end - 4]);
    let mut out: Vec<&str> = text
        .split("\r\n")
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            !(l.starts_with("connection:") || l.starts_with("keep-alive:"))
        })
        .collect();
    out.push("Connection: close");
    let mut bytes = out.join("\r\n").into_bytes();
    bytes.extend_from_slice(b"\r\n\r\n");
    bytes.extend_from_slice(&head[end..]);
    if upstream.write_all(&bytes).await.is_err() {
        return Ended::Close;
    }
    let _ = tokio::io::copy_bidirectional(client, &mut upstream).await;
    Ended::Close
}
