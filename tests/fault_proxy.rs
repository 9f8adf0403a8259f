//! The fault proxy in front of a real echo server on an ephemeral loopback port: pass-through,
//! `down` (refused and reset, then the same port again), black hole, latency, reset after N
//! bytes, an upstream that refuses, and the counters behind each.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod common;

use prodready::rig::fault_proxy::{
    Fault, FaultProxy, HttpEffect, HttpFault, ProxyError, Selection,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Generous bound for things that must happen; never asserted as a timing window.
const PATIENCE: Duration = Duration::from_secs(10);

/// A tokio echo server that counts what it received.
struct Echo {
    addr: SocketAddr,
    connections: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
}

impl Echo {
    async fn start() -> Echo {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let connections = Arc::new(AtomicU64::new(0));
        let received = Arc::new(AtomicU64::new(0));
        let (c, r) = (connections.clone(), received.clone());
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                let r = r.clone();
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => {
                                r.fetch_add(n as u64, Ordering::SeqCst);
                                if stream.write_all(&buf[..n]).await.is_err() {
                                    return;
                                }
                            }
                        }
                    }
                });
            }
        });
        Echo {
            addr,
            connections,
            received,
        }
    }

    fn upstream(&self) -> String {
        self.addr.to_string()
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::SeqCst)
    }
}

async fn proxy_for(echo: &Echo) -> FaultProxy {
    FaultProxy::start("echo", "127.0.0.1:0".parse().unwrap(), echo.upstream())
        .await
        .unwrap()
}

/// Send `msg` and read back exactly its length.
async fn round_trip(stream: &mut TcpStream, msg: &[u8]) -> Vec<u8> {
    stream.write_all(msg).await.unwrap();
    let mut back = vec![0u8; msg.len()];
    tokio::time::timeout(PATIENCE, stream.read_exact(&mut back))
        .await
        .expect("echo within the patience bound")
        .unwrap();
    back
}

/// Read until the connection ends; the bytes read and how it ended.
async fn read_to_end(stream: &mut TcpStream) -> (Vec<u8>, Result<(), ErrorKind>) {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let read = tokio::time::timeout(PATIENCE, stream.read(&mut buf))
            .await
            .expect("the connection ends within the patience bound");
        match read {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) => return (got, Err(e.kind())),
        }
    }
}

/// Wait (bounded) until `f` holds; for counters updated by other tasks.
async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !f() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn pass_through_echoes_and_counts_bytes_both_ways() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    assert_ne!(proxy.addr().port(), 0);
    assert_eq!(proxy.addr().ip().to_string(), "127.0.0.1");

    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"hello").await, b"hello");
    assert_eq!(round_trip(&mut client, b", world").await, b", world");
    client.shutdown().await.unwrap();
    let (rest, end) = read_to_end(&mut client).await;
    assert_eq!((rest.len(), end), (0, Ok(())), "a half-close is passed on");

    eventually("the connection task ends", || {
        proxy.state().counters.active == 0
    })
    .await;
    let state = proxy.state();
    assert_eq!(state.fault, None);
    assert!(state.listening);
    assert_eq!(state.upstream, echo.upstream());
    let c = state.counters;
    assert_eq!((c.accepted, c.bytes_up, c.bytes_down), (1, 12, 12));
    assert_eq!((c.reset_by_fault, c.bytes_discarded), (0, 0));
    assert_eq!(c.upstream_connect_failures, 0);
    assert_eq!(echo.connections(), 1);
    proxy.shutdown().await;
}

#[tokio::test]
async fn down_refuses_new_connections_resets_open_ones_and_heal_reopens_the_same_port() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    let addr = proxy.addr();
    let mut open = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut open, b"before").await, b"before");

    proxy.apply(Fault::Down).await.unwrap();
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ConnectionRefused);
    let (got, end) = read_to_end(&mut open).await;
    assert!(got.is_empty());
    assert_eq!(
        end,
        Err(ErrorKind::ConnectionReset),
        "RST, not a clean close"
    );
    let state = proxy.state();
    assert_eq!(state.fault, Some(Fault::Down));
    assert!(!state.listening);
    assert_eq!(state.counters.reset_by_fault, 1);

    // Down twice is still down.
    proxy.apply(Fault::Down).await.unwrap();
    assert!(TcpStream::connect(addr).await.is_err());

    proxy.heal().await.unwrap();
    assert_eq!(proxy.addr(), addr);
    let mut again = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut again, b"after").await, b"after");
    let state = proxy.state();
    assert_eq!(state.fault, None);
    assert!(state.listening);
    assert_eq!(state.counters.accepted, 2);
    assert_eq!(echo.connections(), 2);
    proxy.shutdown().await;
}

#[tokio::test]
async fn applying_another_fault_while_down_listens_again() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    proxy.apply(Fault::Down).await.unwrap();
    proxy
        .apply(Fault::Latency {
            latency: Duration::from_millis(1),
            jitter: Duration::ZERO,
        })
        .await
        .unwrap();
    assert!(proxy.state().listening);
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, b"up").await, b"up");
    proxy.shutdown().await;
}

#[tokio::test]
async fn blackhole_answers_nothing_and_the_upstream_receives_nothing_until_healed() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut open, b"ping").await, b"ping");
    let received_before = echo.received();

    proxy.apply(Fault::Blackhole).await.unwrap();
    let mut fresh = TcpStream::connect(proxy.addr()).await.unwrap();
    fresh.write_all(b"anyone there?").await.unwrap();
    open.write_all(b"still there?").await.unwrap();
    let mut buf = [0u8; 64];
    let silent = tokio::time::timeout(Duration::from_millis(300), fresh.read(&mut buf)).await;
    assert!(
        silent.is_err(),
        "a new connection got an answer: {silent:?}"
    );
    let silent = tokio::time::timeout(Duration::from_millis(300), open.read(&mut buf)).await;
    assert!(
        silent.is_err(),
        "an open connection got an answer: {silent:?}"
    );
    eventually("both messages are read and discarded", || {
        proxy.state().counters.bytes_discarded == 25
    })
    .await;
    assert_eq!(
        echo.connections(),
        1,
        "the new connection never reached the upstream"
    );
    assert_eq!(echo.received(), received_before);

    proxy.heal().await.unwrap();
    assert_eq!(round_trip(&mut open, b"back").await, b"back");
    assert_eq!(round_trip(&mut fresh, b"hello").await, b"hello");
    assert_eq!(
        echo.connections(),
        2,
        "the held connection connects once healed"
    );
    let c = proxy.state().counters;
    assert_eq!((c.accepted, c.active, c.reset_by_fault), (2, 2, 0));
    assert_eq!(c.bytes_up, c.bytes_down);
    assert_eq!(c.bytes_up, 4 + 4 + 5);
    proxy.shutdown().await;
}

#[tokio::test]
async fn latency_of_200ms_in_each_direction_adds_at_least_400ms_to_a_round_trip() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    round_trip(&mut client, b"warm").await;
    let baseline = started.elapsed();

    proxy
        .apply(Fault::Latency {
            latency: Duration::from_millis(200),
            jitter: Duration::ZERO,
        })
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"slow").await, b"slow");
    let slow = started.elapsed();
    assert!(slow >= Duration::from_millis(400), "round trip {slow:?}");
    assert!(slow > baseline);

    // With jitter, every chunk still waits at least latency − jitter each way.
    proxy
        .apply(Fault::Latency {
            latency: Duration::from_millis(100),
            jitter: Duration::from_millis(50),
        })
        .await
        .unwrap();
    let started = Instant::now();
    assert_eq!(round_trip(&mut client, b"jitter").await, b"jitter");
    assert!(started.elapsed() >= Duration::from_millis(100));

    proxy.heal().await.unwrap();
    assert_eq!(round_trip(&mut client, b"fast").await, b"fast");
    proxy.shutdown().await;
}

#[tokio::test]
async fn latency_keeps_the_order_of_chunks_within_a_connection() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    proxy
        .apply(Fault::Latency {
            latency: Duration::from_millis(20),
            jitter: Duration::from_millis(20),
        })
        .await
        .unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let mut sent = Vec::new();
    for i in 0..50u8 {
        let chunk = [i; 3];
        client.write_all(&chunk).await.unwrap();
        sent.extend_from_slice(&chunk);
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let mut back = vec![0u8; sent.len()];
    tokio::time::timeout(PATIENCE, client.read_exact(&mut back))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(back, sent);
    proxy.shutdown().await;
}

#[tokio::test]
async fn reset_after_10_bytes_cuts_a_100_byte_echo_after_at_most_10_bytes() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    proxy.apply(Fault::ResetAfter { bytes: 10 }).await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    client.write_all(&[b'x'; 100]).await.unwrap();
    let (echoed, end) = read_to_end(&mut client).await;
    assert!(echoed.len() <= 10, "echoed {} bytes", echoed.len());
    assert!(
        matches!(end, Ok(()) | Err(ErrorKind::ConnectionReset)),
        "{end:?}"
    );

    eventually("the upstream gets the 10 forwarded bytes", || {
        echo.received() >= 10
    })
    .await;
    eventually("the connection task ends", || {
        proxy.state().counters.active == 0
    })
    .await;
    assert_eq!(echo.received(), 10);
    let c = proxy.state().counters;
    assert_eq!(c.reset_by_fault, 1);
    assert_eq!(c.bytes_up + c.bytes_down, 10);
    assert_eq!(c.bytes_up, 10);
    assert_eq!(c.bytes_discarded, 90);

    // A fresh connection gets its own budget; healing lifts it.
    proxy.heal().await.unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(round_trip(&mut client, &[b'y'; 100]).await, vec![b'y'; 100]);
    proxy.shutdown().await;
}

#[tokio::test]
async fn an_upstream_that_refuses_closes_the_client_and_is_counted() {
    // A port that was just free: bind, note it, close it.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        listener.local_addr().unwrap()
    };
    let proxy = FaultProxy::start(
        "nothing",
        "127.0.0.1:0".parse().unwrap(),
        closed.to_string(),
    )
    .await
    .unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let (got, end) = read_to_end(&mut client).await;
    assert!(got.is_empty());
    assert_eq!(end, Ok(()), "closed, not reset");
    eventually("the failure is counted", || {
        proxy.state().counters.upstream_connect_failures == 1
    })
    .await;
    let c = proxy.state().counters;
    assert_eq!((c.accepted, c.reset_by_fault), (1, 0));
    proxy.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections_and_the_port_and_other_handles_then_fail() {
    let echo = Echo::start().await;
    let proxy = proxy_for(&echo).await;
    let other = proxy.clone();
    let addr = proxy.addr();
    let mut client = TcpStream::connect(addr).await.unwrap();
    assert_eq!(round_trip(&mut client, b"bye").await, b"bye");
    proxy.shutdown().await;
    let (_, end) = read_to_end(&mut client).await;
    assert_eq!(end, Ok(()));
    assert!(TcpStream::connect(addr).await.is_err());
    assert!(!other.state().listening);
    assert!(matches!(
        other.heal().await,
        Err(ProxyError::ShutDown { .. })
    ));
}

#[tokio::test]
async fn start_rejects_an_upstream_without_a_port_and_names_a_taken_address() {
    let err = FaultProxy::start("db", "127.0.0.1:0".parse().unwrap(), "localhost".into())
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::InvalidUpstream { .. }));
    assert_eq!(
        err.to_string(),
        "fault proxy \"db\": upstream \"localhost\" is not host:port"
    );

    let taken = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let err = FaultProxy::start("db", addr, "127.0.0.1:1".into())
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::Bind { addr: a, .. } if a == addr));
    assert!(err.to_string().contains(&addr.to_string()), "{err}");
}

/// A proxy in front of a real paper broker (an HTTP/1.1 upstream).
async fn http_proxy() -> (common::PaperBroker, FaultProxy, reqwest::Client) {
    let broker = common::PaperBroker::start(&[]);
    let proxy = FaultProxy::start("gw", "127.0.0.1:0".parse().unwrap(), broker.addr.clone())
        .await
        .unwrap();
    // A fresh connection per request: a pooled one that the proxy resets (applying a fault
    // resets the open connections) could be picked for the next request before the client
    // has seen the reset, and fail it for a reason the test is not about.
    let client = reqwest::Client::builder()
        .timeout(PATIENCE)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    (broker, proxy, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_fault_answers_the_first_matching_requests_and_forwards_the_rest() {
    let (_broker, proxy, client) = http_proxy().await;
    let url = |p: &str| format!("http://{}{p}", proxy.addr());
    // A keep-alive connection open before the fault: applying it resets that connection, so
    // that no request on it escapes the fault.
    let mut warm = std::net::TcpStream::connect(proxy.addr()).unwrap();
    warm.set_read_timeout(Some(PATIENCE)).unwrap();
    {
        use std::io::{Read, Write};
        write!(warm, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut buf = [0u8; 512];
        let n = warm.read(&mut buf).unwrap();
        assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    }
    proxy
        .apply(Fault::Http(HttpFault {
            method: Some("GET".into()),
            path: "/health*".into(),
            effect: HttpEffect::Status { status: 429 },
            selection: Selection::Count(2),
        }))
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            client
                .get(url("/healthz"))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    assert_eq!(seen, [429, 429, 200, 200]);
    {
        use std::io::Read;
        let mut buf = [0u8; 64];
        let read = warm.read(&mut buf);
        let closed = match &read {
            Ok(0) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        };
        assert!(
            closed,
            "the connection open before the fault was reset: {read:?}"
        );
    }
    // Another path is forwarded, as is another method.
    let metrics = client.get(url("/metrics")).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_fault_at_a_rate_of_half_drops_every_second_matching_request() {
    let (_broker, proxy, client) = http_proxy().await;
    let url = format!("http://{}/healthz", proxy.addr());
    proxy
        .apply(Fault::Http(HttpFault {
            method: None,
            path: "/healthz".into(),
            effect: HttpEffect::Drop,
            selection: Selection::RatePpm(500_000),
        }))
        .await
        .unwrap();
    let mut answered = Vec::new();
    for _ in 0..6 {
        answered.push(client.get(&url).send().await.is_ok());
    }
    assert_eq!(answered, [true, false, true, false, true, false]);
    assert!(proxy.state().counters.reset_by_fault >= 3);
    proxy.heal().await.unwrap();
    assert!(client.get(&url).send().await.is_ok());
}
