//! A built-in notification receiver ([`Sink`]): an HTTP server on `127.0.0.1:0`, started with
//! the run, that speaks just enough of the Telegram Bot API, Slack incoming webhooks and
//! generic JSON webhooks for a service's alerting code to run unchanged, and records every
//! message it receives. A drill then asserts on what the system under test told its operators
//! ("an alert within 30 s of the broker going down", "at most 3 alerts per minute") without a
//! real chat account or a network.
//!
//! | request | flavor | answer |
//! |---|---|---|
//! | `POST`/`GET /bot<token>/sendMessage` (JSON, form or query string: `chat_id`, `text`) | [`Flavor::Telegram`] | Telegram's `{"ok":true,"result":{message}}`; a missing `chat_id` or `text` is Telegram's 400, not recorded |
//! | `GET`/`POST /bot<token>/getMe` | — | the sink's bot user, not recorded |
//! | any other `/bot<token>/<method>` | — | Telegram's 404 `Not Found` |
//! | `POST /services/<T>/<B>/<X>` (JSON, or form field `payload`) | [`Flavor::Slack`] | `ok` (text/plain); no text: 400 `no_text`; unparseable: 400 `invalid_payload` |
//! | `POST` any other path | [`Flavor::Webhook`] | `{"ok":true}` |
//! | anything else | — | 405 |
//!
//! Bodies above [`MAX_BODY_BYTES`] get 413 and are not recorded. Secrets in paths are
//! redacted before they are stored: the Telegram bot token and the Slack webhook's last
//! segment become `<token>`; query strings are not stored.
//!
//! Memory is bounded: the newest [`MAX_KEPT_MESSAGES`] messages are kept whole. Older ones are
//! evicted and only their receive instants remain, so unfiltered counts stay exact while
//! counts with a regex and [`Sink::messages`] see the kept messages only; [`Sink::dropped`]
//! says how many were evicted, and `seq` numbers keep counting (a gap at the start shows it).

//!
//! Files: `store` the record, `api` the HTTP answers; this file the handle that starts, reads
//! and stops a sink.

mod api;
mod store;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use store::{Flavor, MAX_KEPT_MESSAGES, Message};
use store::{Inner, Store};

/// Largest request body accepted, bytes; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Longest wait in [`Sink::shutdown`] for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What can go wrong when starting a [`Sink`].
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The loopback listening socket could not be bound.
    #[error("sink {name:?}: cannot listen on 127.0.0.1: {source}")]
    Bind {
        /// The sink's name.
        name: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
}

/// A notification receiver on a loopback port that records every message.
///
/// Cheap to clone; every clone reads the same record. It stops on [`Sink::shutdown`] or when
/// the last clone is dropped.
#[derive(Clone)]
pub struct Sink {
    inner: Arc<Inner>,
    _stop_on_drop: Arc<DropGuard>,
}

impl fmt::Debug for Sink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sink")
            .field("name", &self.inner.name)
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl Sink {
    /// Start a sink named `name` on `127.0.0.1` with an ephemeral port.
    ///
    /// # Errors
    /// [`SinkError::Bind`] when no loopback port can be bound.
    pub async fn start(name: &str) -> Result<Sink, SinkError> {
        Sink::start_on(name, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// [`Sink::start`] on a given address (port 0 picks a free one).
    ///
    /// # Errors
    /// As [`Sink::start`].
    pub async fn start_on(name: &str, listen: SocketAddr) -> Result<Sink, SinkError> {
        let bind_error = |source| SinkError::Bind {
            name: name.to_string(),
            source,
        };
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(bind_error)?;
        let addr = listener.local_addr().map_err(bind_error)?;
        let stop = CancellationToken::new();
        let inner = Arc::new(Inner {
            name: name.to_string(),
            addr,
            store: Mutex::new(Store::default()),
            arrivals: watch::channel(0).0,
            stop: stop.clone(),
            server: Mutex::new(None),
        });
        let app = Router::new()
            .fallback(api::handle)
            .with_state(inner.clone())
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES));
        let graceful = stop.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { graceful.cancelled().await })
                .await;
        });
        *inner.server.lock().unwrap_or_else(|e| e.into_inner()) = Some(server);
        Ok(Sink {
            inner,
            _stop_on_drop: Arc::new(stop.drop_guard()),
        })
    }

    /// The sink's name, as given to [`Sink::start`].
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash). A service appends its API's
    /// path: `/bot<token>/sendMessage`, `/services/T/B/X`, or any path for a webhook.
    pub fn url(&self) -> String {
        format!("http://{}", self.inner.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The kept messages, in arrival order.
    pub fn messages(&self) -> Vec<Message> {
        self.inner.store().kept.iter().cloned().collect()
    }

    /// How many messages were evicted to respect [`MAX_KEPT_MESSAGES`].
    pub fn dropped(&self) -> u64 {
        self.inner.store().evicted_at.len() as u64
    }

    /// Messages received at `since ≤ at ≤ until` (no upper bound when `until` is `None`) whose
    /// text matches `re` (every message when `None`). Evicted messages count only without a
    /// regex.
    pub fn count_matching(
        &self,
        re: Option<&regex::Regex>,
        since: Instant,
        until: Option<Instant>,
    ) -> usize {
        let in_range = |at: Instant| at >= since && until.is_none_or(|u| at <= u);
        let store = self.inner.store();
        let kept = store
            .kept
            .iter()
            .filter(|m| in_range(m.at) && re.is_none_or(|re| re.is_match(&m.text)))
            .count();
        let evicted = match re {
            Some(_) => 0,
            None => store.evicted_at.iter().filter(|at| in_range(**at)).count(),
        };
        kept + evicted
    }

    /// Wait until [`Sink::count_matching`]`(re, since, None)` reaches `at_least` or `deadline`
    /// passes, whichever comes first; returns the count then (compare it with `at_least`).
    pub async fn wait_for(
        &self,
        re: Option<&regex::Regex>,
        since: Instant,
        at_least: usize,
        deadline: Instant,
    ) -> usize {
        let mut arrivals = self.inner.arrivals.subscribe();
        let deadline = tokio::time::Instant::from_std(deadline);
        loop {
            arrivals.borrow_and_update();
            let count = self.count_matching(re, since, None);
            if count >= at_least {
                return count;
            }
            match tokio::time::timeout_at(deadline, arrivals.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return self.count_matching(re, since, None),
            }
        }
    }

    /// The kept messages as evidence: one JSON object per line, `{"seq", "received_at"
    /// (RFC 3339), "flavor", "path", "chat", "text"}`, with `redact` applied to `path`,
    /// `chat` and `text`. Every line ends with `\n`; no messages is the empty string.
    pub fn evidence_jsonl(&self, redact: impl Fn(&str) -> String) -> String {
        let mut out = String::new();
        for m in self.inner.store().kept.iter() {
            let line = json!({
                "seq": m.seq,
                "received_at": m.received_at.to_string(),
                "flavor": m.flavor,
                "path": redact(&m.path),
                "chat": m.chat.as_deref().map(&redact),
                "text": redact(&m.text),
            });
            out.push_str(&line.to_string());
            out.push('\n');
        }
        out
    }

    /// Stop the server, letting in-flight requests finish (up to 5 s). The record stays
    /// readable through other clones.
    pub async fn shutdown(self) {
        self.inner.stop.cancel();
        let server = self
            .inner
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(mut server) = server
            && tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
                .await
                .is_err()
        {
            server.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_the_cap_the_oldest_are_evicted_but_still_counted_without_a_regex() {
        let inner = Inner {
            name: "cap".into(),
            addr: "127.0.0.1:9".parse().unwrap(),
            store: Mutex::new(Store::default()),
            arrivals: watch::channel(0).0,
            stop: CancellationToken::new(),
            server: Mutex::new(None),
        };
        let start = Instant::now();
        let extra = 5;
        for i in 0..MAX_KEPT_MESSAGES + extra {
            inner.record(Flavor::Webhook, "/".into(), None, format!("alert {i}"));
        }
        let sink = Sink {
            inner: Arc::new(inner),
            _stop_on_drop: Arc::new(CancellationToken::new().drop_guard()),
        };
        let messages = sink.messages();
        assert_eq!(messages.len(), MAX_KEPT_MESSAGES);
        assert_eq!(messages[0].seq, extra as u64 + 1);
        assert_eq!(messages[0].text, format!("alert {extra}"));
        assert_eq!(sink.dropped(), extra as u64);
        assert_eq!(
            sink.count_matching(None, start, None),
            MAX_KEPT_MESSAGES + extra
        );
        let re = regex::Regex::new(r"^alert [0-4]$").unwrap();
        assert_eq!(sink.count_matching(Some(&re), start, None), 0);
    }
}
