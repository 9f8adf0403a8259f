//! HTTP/1.1 on a keep-alive connection, at the cost floor: one request written with one
//! `write`, one response read into a buffer that lives as long as the connection.
//!
//! The status line and headers are parsed by `httparse` (the parser under hyper) into an array
//! on the stack; the body is framed here by `Content-Length`, `Transfer-Encoding: chunked`
//! (RFC 9112 §7.1, decoded into a second reused buffer) or the connection's close (RFC 9112
//! §6.3). Interim 1xx responses are skipped. After the first few requests of a connection
//! nothing on this path allocates: the request is rendered into the same `Vec`, the response
//! read into the same buffer.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Most header lines a response may have.
const MAX_HEADERS: usize = 64;
/// Largest response (head and body) accepted: 16 MiB.
pub const MAX_RESPONSE: usize = 16 << 20;
/// Initial size of a connection's read buffer.
const INITIAL_BUFFER: usize = 16 << 10;

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// The connection failed or closed before a complete response (a reset, EOF, a write error).
    Io(String),
    /// The response is not HTTP/1.x, or its framing is malformed or too large.
    Protocol(String),
}

/// The constant parts of every request: method, `Host`, the configured headers and
/// `Content-Length` framing, so that rendering one request is two template expansions and a
/// few copies.
#[derive(Debug, Clone)]
pub struct RequestHead {
    method: Vec<u8>,
    /// `\r\nHost: …\r\n` plus the configured headers, each ending in `\r\n`.
    fixed: Vec<u8>,
    /// HEAD requests get no body in the response.
    pub head: bool,
}

impl RequestHead {
    /// The constant parts for `method`, the `Host` value and `headers` (already validated).
    pub fn new(
        method: &http::Method,
        host: &str,
        headers: &[(http::header::HeaderName, http::header::HeaderValue)],
    ) -> RequestHead {
        let mut fixed = Vec::with_capacity(128);
        fixed.extend_from_slice(b" HTTP/1.1\r\nHost: ");
        fixed.extend_from_slice(host.as_bytes());
        fixed.extend_from_slice(b"\r\nUser-Agent: prodready\r\n");
        for (k, v) in headers {
            fixed.extend_from_slice(k.as_str().as_bytes());
            fixed.extend_from_slice(b": ");
            fixed.extend_from_slice(v.as_bytes());
            fixed.extend_from_slice(b"\r\n");
        }
        RequestHead {
            method: method.as_str().as_bytes().to_vec(),
            fixed,
            head: method == http::Method::HEAD,
        }
    }

    /// Write the whole request (`path` in origin form, `body` if any) into `out`, replacing what
    /// it held.
    pub fn render(&self, path: &str, body: Option<&str>, out: &mut Vec<u8>) {
        out.clear();
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(path.as_bytes());
        out.extend_from_slice(&self.fixed);
        if let Some(b) = body {
            // Formatting into a Vec does not allocate once it has the capacity.
            let _ =
                std::io::Write::write_fmt(out, format_args!("Content-Length: {}\r\n\r\n", b.len()));
            out.extend_from_slice(b.as_bytes());
        } else {
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// How the body of the current response is framed.
#[derive(Debug, Clone, Copy)]
enum Framing {
    None,
    Length(usize),
    Chunked,
    UntilClose,
}

/// One response, read: its status, whether the connection must close after it, and where
/// its body is.
#[derive(Debug, Clone, Copy)]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// The server closes (or asked to close) the connection after this response.
    pub close: bool,
    body_start: usize,
    body_end: usize,
    chunked: bool,
}

/// A connection's read side: the buffer responses are read into and the body of a chunked
/// response, both reused for the life of the connection.
pub struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
    dechunked: Vec<u8>,
}

impl Default for Reader {
    fn default() -> Self {
        Reader {
            buf: vec![0; INITIAL_BUFFER],
            start: 0,
            end: 0,
            dechunked: Vec::new(),
        }
    }
}

impl Reader {
    /// The body of `r`, the response [`Reader::read`] returned last.
    pub fn body(&self, r: &Response) -> &[u8] {
        if r.chunked {
            &self.dechunked
        } else {
            &self.buf[r.body_start..r.body_end]
        }
    }

    /// Read one more byte run from `io` into the buffer; `false` at EOF.
    async fn fill<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<bool, ExchangeError> {
        if self.end == self.buf.len() {
            if self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            } else if self.buf.len() >= MAX_RESPONSE {
                return Err(ExchangeError::Protocol(format!(
                    "response larger than {} MiB",
                    MAX_RESPONSE >> 20
                )));
            } else {
                let len = (self.buf.len() * 2).min(MAX_RESPONSE);
                self.buf.resize(len, 0);
            }
        }
        let n = io
            .read(&mut self.buf[self.end..])
            .await
            .map_err(|e| ExchangeError::Io(e.to_string()))?;
        self.end += n;
        Ok(n > 0)
    }

    /// Make sure `self.start + need` bytes are buffered (the buffer may move).
    async fn need<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        need: usize,
    ) -> Result<(), ExchangeError> {
        if need > MAX_RESPONSE {
            return Err(ExchangeError::Protocol(format!(
                "response larger than {} MiB",
                MAX_RESPONSE >> 20
            )));
        }
        while self.end - self.start < need {
            if self.start + need > self.buf.len() && self.start > 0 {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            if need > self.buf.len() {
                self.buf
                    .resize(need.next_power_of_two().min(MAX_RESPONSE), 0);
            }
            if !self.fill(io).await? {
                return Err(ExchangeError::Io(
                    "connection closed before the response was complete".into(),
                ));
            }
        }
        Ok(())
    }

    /// Read the next complete response for a request (`head`: it was a HEAD request).
    ///
    /// # Errors
    /// [`ExchangeError::Io`] when the connection fails or closes early,
    /// [`ExchangeError::Protocol`] when the bytes are not a well-framed HTTP/1.x response.
    pub async fn read<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        head: bool,
    ) -> Result<Response, ExchangeError> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        loop {
            let (head_len, status, framing, close) = self.head(io, head).await?;
            self.start += head_len;
            if (100..200).contains(&status) && status != 101 {
                continue;
            }
            return self.body_of(io, status, framing, close).await;
        }
    }

    /// Parse the status line and headers, reading until they are complete.
    async fn head<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        head_request: bool,
    ) -> Result<(usize, u16, Framing, bool), ExchangeError> {
        loop {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let mut resp = httparse::Response::new(&mut headers);
            match resp.parse(&self.buf[self.start..self.end]) {
                Ok(httparse::Status::Complete(len)) => {
                    let status = resp.code.unwrap_or(0);
                    let mut close = resp.version == Some(0);
                    let mut length = None;
                    let mut chunked = false;
                    for h in resp.headers.iter() {
                        if h.name.eq_ignore_ascii_case("content-length") {
                            let v = std::str::from_utf8(h.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .ok_or_else(|| {
                                    ExchangeError::Protocol("invalid Content-Length".into())
                                })?;
                            length = Some(v);
                        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                            chunked = ends_with_token(h.value, b"chunked");
                        } else if h.name.eq_ignore_ascii_case("connection") {
                            if contains_token(h.value, b"close") {
                                close = true;
                            } else if contains_token(h.value, b"keep-alive") {
                                close = false;
                            }
                        }
                    }
                    let no_body = head_request
                        || status == 204
                        || status == 304
                        || (100..200).contains(&status);
                    let framing = if no_body {
                        Framing::None
                    } else if chunked {
                        Framing::Chunked
                    } else if let Some(n) = length {
                        Framing::Length(n)
                    } else {
                        close = true;
                        Framing::UntilClose
                    };
                    return Ok((len, status, framing, close));
                }
                Ok(httparse::Status::Partial) => {
                    if !self.fill(io).await? {
                        return Err(ExchangeError::Io(if self.start == self.end {
                            "connection closed before a response".into()
                        } else {
                            "connection closed in the middle of the response head".into()
                        }));
                    }
                }
                Err(e) => {
                    return Err(ExchangeError::Protocol(format!(
                        "not an HTTP/1.x response: {e}"
                    )));
                }
            }
        }
    }

    /// Read the body as framed; the buffer's start moves past it.
    async fn body_of<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
        status: u16,
        framing: Framing,
        close: bool,
    ) -> Result<Response, ExchangeError> {
        let mut r = Response {
            status,
            close,
            body_start: self.start,
            body_end: self.start,
            chunked: false,
        };
        match framing {
            Framing::None => {}
            Framing::Length(n) => {
                self.need(io, n).await?;
                r.body_start = self.start;
                r.body_end = self.start + n;
                self.start += n;
            }
            Framing::UntilClose => {
                while self.fill(io).await? {}
                r.body_start = self.start;
                r.body_end = self.end;
                self.start = self.end;
            }
            Framing::Chunked => {
                self.dechunk(io).await?;
                r.chunked = true;
            }
        }
        Ok(r)
    }

    /// Decode a chunked body into `dechunked` (RFC 9112 §7.1), trailers skipped.
    async fn dechunk<S: AsyncRead + Unpin>(&mut self, io: &mut S) -> Result<(), ExchangeError> {
        self.dechunked.clear();
        loop {
            let (used, size) = loop {
                match httparse::parse_chunk_size(&self.buf[self.start..self.end]) {
                    Ok(httparse::Status::Complete((used, size))) => break (used, size as usize),
                    Ok(httparse::Status::Partial) => {
                        if !self.fill(io).await? {
                            return Err(ExchangeError::Io(
                                "connection closed in a chunked body".into(),
                            ));
                        }
                    }
                    Err(_) => {
                        return Err(ExchangeError::Protocol("invalid chunk size line".into()));
                    }
                }
            };
            self.start += used;
            if size == 0 {
                return self.skip_trailers(io).await;
            }
            if self.dechunked.len() + size > MAX_RESPONSE {
                return Err(ExchangeError::Protocol(format!(
                    "response larger than {} MiB",
                    MAX_RESPONSE >> 20
                )));
            }
            self.need(io, size + 2).await?;
            self.dechunked
                .extend_from_slice(&self.buf[self.start..self.start + size]);
            if &self.buf[self.start + size..self.start + size + 2] != b"\r\n" {
                return Err(ExchangeError::Protocol(
                    "chunk data not followed by CRLF".into(),
                ));
            }
            self.start += size + 2;
        }
    }

    /// Skip the trailer section after the last chunk, up to and including its empty line.
    async fn skip_trailers<S: AsyncRead + Unpin>(
        &mut self,
        io: &mut S,
    ) -> Result<(), ExchangeError> {
        loop {
            let line_end = self.buf[self.start..self.end]
                .windows(2)
                .position(|w| w == b"\r\n");
            match line_end {
                Some(0) => {
                    self.start += 2;
                    return Ok(());
                }
                Some(n) => self.start += n + 2,
                None => {
                    if !self.fill(io).await? {
                        return Err(ExchangeError::Io(
                            "connection closed in the chunked trailer".into(),
                        ));
                    }
                }
            }
        }
    }
}

/// `value`'s last comma-separated token is `token` (case-insensitive).
fn ends_with_token(value: &[u8], token: &[u8]) -> bool {
    value
        .rsplit(|b| *b == b',')
        .next()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// One of `value`'s comma-separated tokens is `token` (case-insensitive).
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|b| *b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Write all of `request` to `io`.
///
/// # Errors
/// [`ExchangeError::Io`] with the write error.
pub async fn write<S: AsyncWrite + Unpin>(io: &mut S, request: &[u8]) -> Result<(), ExchangeError> {
    io.write_all(request)
        .await
        .map_err(|e| ExchangeError::Io(e.to_string()))?;
    io.flush()
        .await
        .map_err(|e| ExchangeError::Io(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(parts: &[&[u8]], head: bool) -> Vec<Result<(u16, bool, Vec<u8>), String>> {
        // A reader fed in the given pieces, as a socket would deliver them.
        let mut builder = tokio_test_io(parts);
        let mut reader = Reader::default();
        let mut out = Vec::new();
        loop {
            match reader.read(&mut builder, head).await {
                Ok(r) => {
                    let close = r.close;
                    out.push(Ok((r.status, r.close, reader.body(&r).to_vec())));
                    if close {
                        break;
                    }
                }
                Err(e) => {
                    out.push(Err(format!("{e:?}")));
                    break;
                }
            }
        }
        out
    }

    fn tokio_test_io(parts: &[&[u8]]) -> std::io::Cursor<Vec<u8>> {
        std::io::Cursor::new(parts.concat())
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn content_length_chunked_and_interim_responses_are_framed() {
        let out = run(read_all(
            &[
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-T: 1\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\n\r\n",
                b"HTTP/1.0 200 OK\r\n\r\nuntil close",
            ],
            false,
        ));
        assert_eq!(
            out,
            vec![
                Ok((200, false, b"hello".to_vec())),
                Ok((201, false, b"abcde".to_vec())),
                Ok((204, false, Vec::new())),
                Ok((200, true, b"until close".to_vec())),
            ]
        );
    }

    #[test]
    fn truncated_and_malformed_responses_are_errors_of_their_kind() {
        let out = run(read_all(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort"],
            false,
        ));
        assert!(matches!(&out[0], Err(e) if e.starts_with("Io")), "{out:?}");
        let out = run(read_all(&[b"SSH-2.0-OpenSSH\r\n\r\n"], false));
        assert!(
            matches!(&out[0], Err(e) if e.starts_with("Protocol")),
            "{out:?}"
        );
        let out = run(read_all(&[b""], false));
        assert!(
            matches!(&out[0], Err(e) if e.contains("closed before a response")),
            "{out:?}"
        );
    }

    #[test]
    fn a_head_response_has_no_body_whatever_its_length_says() {
        let out = run(read_all(
            &[b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"],
            true,
        ));
        assert_eq!(out, vec![Ok((200, true, Vec::new()))]);
    }

    #[test]
    fn a_body_larger_than_the_initial_buffer_is_read_whole() {
        let body = vec![b'x'; INITIAL_BUFFER * 3 + 7];
        let head = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
        let out = run(read_all(
            &[
                head.as_bytes(),
                &body,
                b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
            ],
            false,
        ));
        assert_eq!(out[0], Ok((200, false, body)));
        assert_eq!(out[1], Ok((200, true, Vec::new())));
    }

    #[test]
    fn requests_are_rendered_with_host_headers_and_length() {
        let name = http::header::HeaderName::from_static("x-api-key");
        let value = http::header::HeaderValue::from_static("k");
        let head = RequestHead::new(&http::Method::POST, "h:8080", &[(name, value)]);
        let mut out = Vec::new();
        head.render("/o?x=1", Some("{\"q\":1}"), &mut out);
        assert_eq!(
            String::from_utf8(out.clone()).unwrap(),
            "POST /o?x=1 HTTP/1.1\r\nHost: h:8080\r\nUser-Agent: prodready\r\nx-api-key: k\r\nContent-Length: 7\r\n\r\n{\"q\":1}"
        );
        let get = RequestHead::new(&http::Method::GET, "h", &[]);
        get.render("/", None, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "GET / HTTP/1.1\r\nHost: h\r\nUser-Agent: prodready\r\n\r\n"
        );
    }
}
