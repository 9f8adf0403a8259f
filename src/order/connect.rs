//! Connections: plain TCP or TLS (rustls with the ring provider), with `TCP_NODELAY` and the
//! set-up time measured apart from any request (TCP handshake plus TLS handshake).
//!
//! The trust roots are the Mozilla set (webpki-roots) plus the PEM certificates of `ca_file`,
//! as in the `http` probe. ALPN offers exactly the protocol the caller asks for (`h2` or
//! `http/1.1`, RFC 7301; none for a wire that is not HTTP); a server that picks another is an
//! error, not a silent downgrade.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::clock::{now_ns, since};

/// The HTTP version spoken on every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.1 with keep-alive: one request in flight per connection.
    Http1,
    /// HTTP/2 (RFC 9113): over TLS by ALPN `h2`, over plain TCP with prior knowledge (h2c).
    Http2,
}

impl Version {
    /// The ALPN protocol id (RFC 7301): `http/1.1` or `h2`.
    pub fn alpn(self) -> &'static [u8] {
        match self {
            Version::Http1 => b"http/1.1",
            Version::Http2 => b"h2",
        }
    }
}

/// A connection's byte stream.
pub enum Stream {
    /// Plain TCP.
    Tcp(TcpStream),
    /// TLS over TCP.
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// How to open a connection to the target.
#[derive(Clone)]
pub struct Connector {
    /// Resolved target address.
    pub addr: SocketAddr,
    /// The ALPN protocol offered over TLS and required of the server, if any.
    pub alpn: Option<&'static [u8]>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl std::fmt::Debug for Connector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connector")
            .field("addr", &self.addr)
            .field("alpn", &self.alpn.map(String::from_utf8_lossy))
            .field("tls", &self.tls.as_ref().map(|(_, name)| name))
            .finish()
    }
}

impl Connector {
    /// A plain-TCP connector.
    pub fn plain(addr: SocketAddr) -> Connector {
        Connector {
            addr,
            alpn: None,
            tls: None,
        }
    }

    /// A TLS connector for `host` (the SNI name and the name the certificate must carry),
    /// trusting the Mozilla roots and the certificates in `ca_pem` (PEM, any number), offering
    /// `alpn` (e.g. `b"h2"`; `None` offers nothing and accepts no ALPN answer).
    ///
    /// # Errors
    /// A message when `host` is not a valid server name or `ca_pem` holds no usable
    /// certificate.
    pub fn tls(
        addr: SocketAddr,
        alpn: Option<&'static [u8]>,
        host: &str,
        ca_pem: Option<(&Path, &[u8])>,
    ) -> Result<Connector, String> {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        if let Some((path, pem)) = ca_pem {
            let mut added = 0;
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("CA file {}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("CA file {}: {e}", path.display()))?;
                added += 1;
            }
            if added == 0 {
                return Err(format!(
                    "CA file {}: no PEM certificate in it",
                    path.display()
                ));
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS configuration: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| format!("{host}: not a TLS server name: {e}"))?;
        Ok(Connector {
            addr,
            alpn,
            tls: Some((TlsConnector::from(Arc::new(config)), name)),
        })
    }

    /// `https` rather than `http`.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Open one connection within `timeout`; returns it with its set-up time.
    ///
    /// # Errors
    /// A message naming the address: refused, timed out, a TLS failure, or a server that did
    /// not agree to the ALPN protocol asked for.
    pub async fn connect(&self, timeout: Duration) -> Result<(Stream, Duration), String> {
        let addr = self.addr;
        let t0 = now_ns();
        let open = async {
            let tcp = TcpStream::connect(addr)
                .await
                .map_err(|e| format!("{addr}: {e}"))?;
            let _ = tcp.set_nodelay(true);
            let Some((tls, name)) = &self.tls else {
                return Ok(Stream::Tcp(tcp));
            };
            let s = tls
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("{addr}: TLS handshake: {e}"))?;
            let Some(wanted) = self.alpn else {
                return Ok(Stream::Tls(Box::new(s)));
            };
            match s.get_ref().1.alpn_protocol() {
                Some(p) if p == wanted => {}
                // No ALPN at all: HTTP/1.1 is the default a server may assume.
                None if wanted == Version::Http1.alpn() => {}
                other => {
                    return Err(format!(
                        "{addr}: the server did not agree to {} by ALPN (it chose {})",
                        String::from_utf8_lossy(wanted),
                        other.map_or("nothing".into(), |p| String::from_utf8_lossy(p).to_string())
                    ));
                }
            }
            Ok(Stream::Tls(Box::new(s)))
        };
        match tokio::time::timeout(timeout, open).await {
            Ok(Ok(s)) => Ok((s, since(now_ns(), t0))),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "{addr}: connect timed out after {}",
                crate::units::format_duration(timeout)
            )),
        }
    }
}
