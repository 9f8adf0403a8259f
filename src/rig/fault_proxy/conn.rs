//! Forwarding: the accept loop and one task per connection, each direction read in chunks
//! whose fate (forwarded, delayed, discarded, reset) the fault active at that moment decides.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::fault::Fault;
use super::shared::{Current, Inner, Listening, UPSTREAM_CONNECT_TIMEOUT};
use crate::order::template::Rng as SplitMix64;

/// Bytes read per chunk; a chunk is the unit that [`Fault::Latency`] delays.
const CHUNK_BYTES: usize = 16 * 1024;

/// Chunks queued per direction between reading and (delayed) writing.
const QUEUE_CHUNKS: usize = 64;

/// Start accepting on `listener`: a new listening period.
pub(super) fn spawn_accept_loop(inner: &Arc<Inner>, listener: TcpListener) -> Listening {
    let era = CancellationToken::new();
    inner.listening.store(true, Ordering::SeqCst);
    let task = tokio::spawn(accept_loop(inner.clone(), listener, era.clone()));
    Listening { era, task }
}

async fn accept_loop(inner: Arc<Inner>, listener: TcpListener, era: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = era.cancelled() => return,
            _ = inner.stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _peer)) => {
                inner.accepted.fetch_add(1, Ordering::SeqCst);
                inner.active.fetch_add(1, Ordering::SeqCst);
                let guard = ActiveGuard(inner.clone());
                tokio::spawn(connection(guard, client, era.clone()));
            }
            // Out of file descriptors and the like: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Decrements `active` when a connection task ends, however it ends.
struct ActiveGuard(Arc<Inner>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
        self.0.idle.notify_waiters();
    }
}

/// How a connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// Both directions finished (or shutdown): close normally.
    Close,
    /// A fault resets it: RST, counted.
    FaultReset,
    /// An I/O error on either side: RST toward the client too, not counted as a fault.
    Abort,
}

async fn connection(guard: ActiveGuard, mut client: TcpStream, era: CancellationToken) {
    let inner = guard.0.clone();
    let _ = client.set_nodelay(true);
    let end = tokio::select! {
        biased;
        _ = era.cancelled() => End::FaultReset,
        _ = inner.stop.cancelled() => End::Close,
        end = proxy(&inner, &mut client) => end,
    };
    match end {
        End::Close => {}
        End::FaultReset | End::Abort => {
            if end == End::FaultReset {
                inner.reset_by_fault.fetch_add(1, Ordering::SeqCst);
            }
            let _ = client.set_zero_linger();
        }
    }
    drop(client);
    drop(guard);
}

async fn proxy(inner: &Arc<Inner>, client: &mut TcpStream) -> End {
    let mut faults = inner.fault.subscribe();
    if matches!(faults.borrow_and_update().fault, Some(Fault::Blackhole))
        && let Some(end) = hold_blackholed(inner, client, &mut faults).await
    {
        return end;
    }
    let http = match &faults.borrow().fault {
        Some(Fault::Http(h)) => Some(h.clone()),
        _ => None,
    };
    if let Some(h) = http {
        return match super::http::serve(inner, client, &h).await {
            super::http::Ended::Close => End::Close,
            super::http::Ended::Reset => End::FaultReset,
        };
    }
    let mut upstream = match tokio::time::timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(&inner.upstream),
    )
    .await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(_)) | Err(_) => {
            inner
                .upstream_connect_failures
                .fetch_add(1, Ordering::SeqCst);
            return End::Close;
        }
    };
    let _ = upstream.set_nodelay(true);
    let id = inner.next_conn.fetch_add(1, Ordering::Relaxed);
    let link = Link {
        budget: Mutex::new((u64::MAX, 0)),
        reset: CancellationToken::new(),
    };
    let (client_read, client_write) = client.split();
    let (upstream_read, upstream_write) = upstream.split();
    let up = pump(
        inner,
        &link,
        Direction::Up,
        client_read,
        upstream_write,
        inner.fault.subscribe(),
        seed(id, 1),
    );
    let down = pump(
        inner,
        &link,
        Direction::Down,
        upstream_read,
        client_write,
        inner.fault.subscribe(),
        seed(id, 2),
    );
    tokio::select! {
        _ = link.reset.cancelled() => End::FaultReset,
        result = async { tokio::try_join!(up, down) } => match result {
            Ok(_) => End::Close,
            Err(()) => End::Abort,
        },
    }
}

/// A connection accepted while black-holed: discard what the client sends until the fault
/// changes. `Some(end)` when the connection ended meanwhile.
async fn hold_blackholed(
    inner: &Inner,
    client: &mut TcpStream,
    faults: &mut watch::Receiver<Current>,
) -> Option<End> {
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        tokio::select! {
            read = client.read(&mut buf) => match read {
                Ok(0) => return Some(End::Close),
                Ok(n) => {
                    inner.bytes_discarded.fetch_add(n as u64, Ordering::SeqCst);
                }
                Err(_) => return Some(End::Abort),
            },
            changed = faults.changed() => {
                if changed.is_err() {
                    return Some(End::Close);
                }
                if !matches!(faults.borrow_and_update().fault, Some(Fault::Blackhole)) {
                    return None;
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Direction {
    /// Client → upstream.
    Up,
    /// Upstream → client.
    Down,
}

/// State shared by a connection's two directions.
struct Link {
    /// `(fault generation, bytes forwarded under it)` for [`Fault::ResetAfter`].
    budget: Mutex<(u64, u64)>,
    /// Cancelled when the connection must be reset.
    reset: CancellationToken,
}

impl Link {
    /// Of `n` bytes just read under `generation` with a budget of `limit`, how many may pass,
    /// and whether the budget is now used up.
    fn take(&self, generation: u64, limit: u64, n: u64) -> (u64, bool) {
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        if budget.0 != generation {
            *budget = (generation, 0);
        }
        let allowed = n.min(limit.saturating_sub(budget.1));
        budget.1 += allowed;
        (allowed, budget.1 >= limit)
    }
}

enum Chunk {
    /// Write these bytes at that instant.
    Data(Instant, Vec<u8>),
    /// Everything before has been written: reset the connection.
    Reset,
}

fn seed(id: u64, direction: u64) -> u64 {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    now ^ id.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ direction
}

/// Forward one direction: a reader decides each chunk's fate under the current fault and
/// queues it with its delivery instant; a writer delivers in order. `Err` on an I/O error.
async fn pump(
    inner: &Inner,
    link: &Link,
    direction: Direction,
    from: ReadHalf<'_>,
    to: WriteHalf<'_>,
    faults: watch::Receiver<Current>,
    seed: u64,
) -> Result<(), ()> {
    let (tx, rx) = mpsc::channel::<Chunk>(QUEUE_CHUNKS);
    let read = read_chunks(inner, link, from, tx, faults, seed);
    let write = write_chunks(inner, link, direction, rx, to);
    tokio::try_join!(read, write).map(|_| ())
}

/// Read chunks from `from` and queue each as the fault in effect at that moment has it:
/// forwarded now, forwarded later, discarded, or cut short and followed by a reset.
async fn read_chunks(
    inner: &Inner,
    link: &Link,
    mut from: ReadHalf<'_>,
    tx: mpsc::Sender<Chunk>,
    mut faults: watch::Receiver<Current>,
    seed: u64,
) -> Result<(), ()> {
    let mut rng = SplitMix64::new(seed);
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = from.read(&mut buf).await.map_err(|_| ())?;
        if n == 0 {
            return Ok(());
        }
        let current = faults.borrow_and_update().clone();
        let now = Instant::now();
        let chunk = match current.fault {
            // An HTTP fault judges requests on new connections only (its apply resets these).
            None | Some(Fault::Http(_)) => Chunk::Data(now, buf[..n].to_vec()),
            Some(Fault::Down | Fault::Blackhole) => {
                inner.bytes_discarded.fetch_add(n as u64, Ordering::SeqCst);
                continue;
            }
            Some(Fault::Latency { latency, jitter }) => {
                let delay = jittered(latency, jitter, &mut rng);
                Chunk::Data(now + delay, buf[..n].to_vec())
            }
            Some(Fault::ResetAfter { bytes: limit }) => {
                let (allowed, exhausted) = link.take(current.generation, limit, n as u64);
                let allowed = allowed as usize;
                inner
                    .bytes_discarded
                    .fetch_add((n - allowed) as u64, Ordering::SeqCst);
                if allowed > 0
                    && tx
                        .send(Chunk::Data(now, buf[..allowed].to_vec()))
                        .await
                        .is_err()
                {
                    return Ok(());
                }
                if exhausted {
                    let _ = tx.send(Chunk::Reset).await;
                    return Ok(());
                }
                continue;
            }
        };
        if tx.send(chunk).await.is_err() {
            return Ok(());
        }
    }
}

/// Deliver the queued chunks in order, each at its instant; a reset chunk resets the
/// connection once everything before it is written.
async fn write_chunks(
    inner: &Inner,
    link: &Link,
    direction: Direction,
    mut rx: mpsc::Receiver<Chunk>,
    mut to: WriteHalf<'_>,
) -> Result<(), ()> {
    while let Some(chunk) = rx.recv().await {
        match chunk {
            Chunk::Data(at, bytes) => {
                tokio::time::sleep_until(at).await;
                to.write_all(&bytes).await.map_err(|_| ())?;
                let counter = match direction {
                    Direction::Up => &inner.bytes_up,
                    Direction::Down => &inner.bytes_down,
                };
                counter.fetch_add(bytes.len() as u64, Ordering::SeqCst);
            }
            Chunk::Reset => {
                let _ = to.flush().await;
                link.reset.cancel();
                // The connection task drops this future on reset.
                std::future::pending::<()>().await;
            }
        }
    }
    // The source closed its sending side: pass the half-close on.
    let _ = to.shutdown().await;
    Ok(())
}

/// `latency` plus a uniform draw in `[-jitter, +jitter]`, never below zero.
fn jittered(latency: Duration, jitter: Duration, rng: &mut SplitMix64) -> Duration {
    if jitter.is_zero() {
        return latency;
    }
    let offset = jitter.as_secs_f64() * (2.0 * rng.next_unit() - 1.0);
    Duration::from_secs_f64((latency.as_secs_f64() + offset).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_within_its_band_and_never_goes_negative() {
        let mut rng = SplitMix64::new(7);
        let (latency, jitter) = (Duration::from_millis(100), Duration::from_millis(30));
        let draws: Vec<Duration> = (0..1000)
            .map(|_| jittered(latency, jitter, &mut rng))
            .collect();
        assert!(
            draws
                .iter()
                .all(|d| *d >= latency - jitter && *d <= latency + jitter)
        );
        assert!(draws.iter().any(|d| *d < latency) && draws.iter().any(|d| *d > latency));
        let wide = (0..1000).map(|_| {
            jittered(
                Duration::from_millis(1),
                Duration::from_millis(50),
                &mut rng,
            )
        });
        assert!(wide.into_iter().any(|d| d.is_zero()));
    }

    #[test]
    fn reset_budget_is_shared_by_both_directions_and_restarts_with_a_new_fault() {
        let link = Link {
            budget: Mutex::new((u64::MAX, 0)),
            reset: CancellationToken::new(),
        };
        assert_eq!(link.take(1, 10, 6), (6, false));
        assert_eq!(link.take(1, 10, 6), (4, true));
        assert_eq!(link.take(1, 10, 6), (0, true));
        assert_eq!(link.take(2, 10, 3), (3, false));
    }
}
