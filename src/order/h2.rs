//! HTTP/2 (RFC 9113, the `h2` crate) on one connection: the session's handshake, a request
//! built from its parts, and a response read whole.
//!
//! Requests are multiplexed: the caller sends each as its own stream without waiting for the
//! earlier responses, and awaits each response apart. Unlike the HTTP/1.1 path ([`super::http1`]),
//! each request builds an `http::Request` (a few small allocations): the `h2` crate's API needs
//! them.

use bytes::Bytes;
use http::header::{HeaderName, HeaderValue};

use super::connect::Stream;

/// An open HTTP/2 session: where requests are sent.
pub type Sender = h2::client::SendRequest<Bytes>;

/// Open an HTTP/2 session on `stream`; its connection task runs beside it on the current
/// thread (`spawn_local`: the caller runs in a `LocalSet`).
///
/// # Errors
/// The handshake's failure, as text.
pub async fn handshake(stream: Stream) -> Result<Sender, String> {
    match h2::client::handshake(stream).await {
        Ok((send, conn)) => {
            tokio::task::spawn_local(async move {
                let _ = conn.await;
            });
            Ok(send)
        }
        Err(e) => Err(format!("HTTP/2 handshake: {e}")),
    }
}

/// The parts every request of a connection shares.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The authority (`host` or `host:port`).
    pub host: &'a str,
    /// The method.
    pub method: &'a http::Method,
    /// Extra headers.
    pub headers: &'a [(HeaderName, HeaderValue)],
}

/// The request for `path` (origin form) on `target`: its head and, if any, its body.
///
/// # Errors
/// A message when `path` is not a valid request target.
pub fn build_request(
    target: Target<'_>,
    path: &str,
    body: Option<&str>,
) -> Result<(http::Request<()>, Option<Bytes>), String> {
    let mut builder = http::Request::builder()
        .method(target.method.clone())
        .uri(format!("{}://{}{path}", target.scheme, target.host));
    for (name, value) in target.headers {
        builder = builder.header(name, value);
    }
    let request = builder
        .body(())
        .map_err(|_| format!("{path} is not a valid request target"))?;
    Ok((request, body.map(|b| Bytes::copy_from_slice(b.as_bytes()))))
}

/// Send `request` and its body, if any, as a new stream of a ready session; the response to
/// await.
///
/// # Errors
/// The session is broken: the caller opens a new one.
pub fn send(
    sender: &mut Sender,
    request: http::Request<()>,
    body: Option<Bytes>,
) -> Result<h2::client::ResponseFuture, h2::Error> {
    sender
        .send_request(request, body.is_none())
        .and_then(|(response, mut stream)| match body {
            Some(b) => stream.send_data(b, true).map(|()| response),
            None => Ok(response),
        })
}

/// Await a response and read its whole body (releasing flow-control capacity as it goes):
/// its status and body.
///
/// # Errors
/// The stream or the session failed.
pub async fn read_response(
    response: h2::client::ResponseFuture,
) -> Result<(u16, Vec<u8>), h2::Error> {
    let resp = response.await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    Ok((status, bytes))
}
