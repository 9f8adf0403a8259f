//! What a sink received: the messages kept whole, the receive instants of those evicted, and
//! the arrival counter that wakes waiters.

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// Messages kept whole; older ones are evicted (see the module docs).
pub const MAX_KEPT_MESSAGES: usize = 10_000;

/// Which API a message came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Flavor {
    /// A generic JSON (or plain) webhook: `POST` to any other path.
    Webhook,
    /// Telegram Bot API `sendMessage`.
    Telegram,
    /// Slack incoming webhook.
    Slack,
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Webhook => "webhook",
            Flavor::Telegram => "telegram",
            Flavor::Slack => "slack",
        })
    }
}

/// One recorded message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// 1-based arrival number within this sink.
    pub seq: u64,
    /// Monotonic receive time, for deadlines measured from a drill step.
    #[serde(skip)]
    pub at: Instant,
    /// Wall-clock receive time (RFC 3339 when serialized).
    pub received_at: jiff::Timestamp,
    /// The API it came through.
    pub flavor: Flavor,
    /// The request path with secrets replaced by `<token>`, without the query string.
    pub path: String,
    /// Telegram's `chat_id` as sent (number or `@channel`); `None` for Slack and webhooks.
    pub chat: Option<String>,
    /// The message text (see the module docs for where it is taken from per flavor).
    pub text: String,
}

/// One sink's shared state: the handles read it, the HTTP handlers record into it.
pub(super) struct Inner {
    pub name: String,
    pub addr: SocketAddr,
    pub store: Mutex<Store>,
    /// The last recorded seq; wakes the sink's `wait_for`.
    pub arrivals: watch::Sender<u64>,
    pub stop: CancellationToken,
    pub server: Mutex<Option<JoinHandle<()>>>,
}

/// The record.
#[derive(Default)]
pub(super) struct Store {
    pub kept: VecDeque<Message>,
    /// Receive instants of evicted messages, oldest first.
    pub evicted_at: Vec<Instant>,
    pub last_seq: u64,
}

impl Inner {
    /// The record, locked.
    pub(super) fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a message; returns it as stored.
    pub(super) fn record(
        &self,
        flavor: Flavor,
        path: String,
        chat: Option<String>,
        text: String,
    ) -> Message {
        let message = {
            let mut store = self.store();
            store.last_seq += 1;
            let message = Message {
                seq: store.last_seq,
                at: Instant::now(),
                received_at: jiff::Timestamp::now(),
                flavor,
                path,
                chat,
                text,
            };
            store.kept.push_back(message.clone());
            while store.kept.len() > MAX_KEPT_MESSAGES {
                if let Some(old) = store.kept.pop_front() {
                    store.evicted_at.push(old.at);
                }
            }
            message
        };
        self.arrivals.send_replace(message.seq);
        message
    }
}
