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

use std::collections::VecDeque;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

/// Largest request body accepted, bytes; larger bodies get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Messages kept whole; older ones are evicted (see the module docs).
pub const MAX_KEPT_MESSAGES: usize = 10_000;

/// Longest wait in [`Sink::shutdown`] for in-flight requests.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// The display name of the sink's Telegram bot.
const BOT_FIRST_NAME: &str = "prodready sink";

/// The username of the sink's Telegram bot.
const BOT_USERNAME: &str = "prodready_sink_bot";

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

struct Inner {
    name: String,
    addr: SocketAddr,
    store: Mutex<Store>,
    /// The last recorded seq; wakes [`Sink::wait_for`].
    arrivals: watch::Sender<u64>,
    stop: CancellationToken,
    server: Mutex<Option<JoinHandle<()>>>,
}

#[derive(Default)]
struct Store {
    kept: VecDeque<Message>,
    /// Receive instants of evicted messages, oldest first.
    evicted_at: Vec<Instant>,
    last_seq: u64,
}

impl Inner {
    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Record a message; returns it as stored.
    fn record(&self, flavor: Flavor, path: String, chat: Option<String>, text: String) -> Message {
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
            .fallback(handle)
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

async fn handle(
    State(inner): State<Arc<Inner>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.to_ascii_lowercase());
    let content_type = content_type.as_deref();
    if let Some((token, bot_method)) = telegram_route(path) {
        return telegram(
            &inner,
            &method,
            token,
            bot_method,
            uri.query(),
            content_type,
            &body,
        );
    }
    if method != Method::POST {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, "POST")],
            "POST a message\n",
        )
            .into_response();
    }
    if let Some(rest) = path.strip_prefix("/services/") {
        return slack(&inner, rest, content_type, &body);
    }
    let text = webhook_text(&body);
    inner.record(Flavor::Webhook, path.to_string(), None, text);
    axum::Json(json!({"ok": true})).into_response()
}

/// `/bot<token>/<method>` → `(token, method)`.
fn telegram_route(path: &str) -> Option<(&str, &str)> {
    let (token, method) = path.strip_prefix("/bot")?.split_once('/')?;
    (!token.is_empty()).then_some((token, method))
}

fn telegram_error(status: StatusCode, description: &str) -> Response {
    let body = json!({
        "ok": false,
        "error_code": status.as_u16(),
        "description": description,
    });
    (status, axum::Json(body)).into_response()
}

/// The bot's user: its id is the numeric part of the token (`<id>:<secret>`), as on Telegram.
fn bot_user(token: &str) -> Value {
    let id = token
        .split_once(':')
        .and_then(|(id, _)| id.parse::<u64>().ok())
        .unwrap_or(1);
    json!({
        "id": id,
        "is_bot": true,
        "first_name": BOT_FIRST_NAME,
        "username": BOT_USERNAME,
    })
}

fn telegram(
    inner: &Inner,
    method: &Method,
    token: &str,
    bot_method: &str,
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Response {
    // Bot API method names are case-insensitive.
    let known = ["sendMessage", "getMe"]
        .into_iter()
        .find(|m| m.eq_ignore_ascii_case(bot_method));
    if known.is_none() || (method != Method::GET && method != Method::POST) {
        return telegram_error(StatusCode::NOT_FOUND, "Not Found");
    }
    if known == Some("getMe") {
        let mut user = bot_user(token);
        if let Some(user) = user.as_object_mut() {
            user.insert("can_join_groups".into(), json!(true));
            user.insert("can_read_all_group_messages".into(), json!(false));
            user.insert("supports_inline_queries".into(), json!(false));
        }
        return axum::Json(json!({"ok": true, "result": user})).into_response();
    }
    let Some(params) = telegram_params(query, content_type, body) else {
        return telegram_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: can't parse JSON object",
        );
    };
    let param = |key: &str| match params.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let Some(chat) = param("chat_id") else {
        return telegram_error(StatusCode::BAD_REQUEST, "Bad Request: chat_id is empty");
    };
    let Some(text) = param("text").filter(|t| !t.trim().is_empty()) else {
        return telegram_error(
            StatusCode::BAD_REQUEST,
            "Bad Request: message text is empty",
        );
    };
    let path = format!("/bot<token>/{bot_method}");
    let message = inner.record(Flavor::Telegram, path, Some(chat.clone()), text);
    let chat_id = chat
        .parse::<i64>()
        .map(Value::from)
        .unwrap_or(Value::String(chat));
    let result = json!({
        "message_id": message.seq,
        "from": bot_user(token),
        "chat": {"id": chat_id, "type": "private"},
        "date": message.received_at.as_second(),
        "text": message.text,
    });
    axum::Json(json!({"ok": true, "result": result})).into_response()
}

/// Telegram's parameters: the query string, overridden by a JSON or form body. `None` when a
/// JSON body does not parse as an object.
fn telegram_params(
    query: Option<&str>,
    content_type: Option<&str>,
    body: &[u8],
) -> Option<Map<String, Value>> {
    let mut params = Map::new();
    let form = |params: &mut Map<String, Value>, bytes: &[u8]| {
        for (k, v) in form_urlencoded::parse(bytes) {
            params.insert(k.into_owned(), Value::String(v.into_owned()));
        }
    };
    if let Some(query) = query {
        form(&mut params, query.as_bytes());
    }
    let is = |prefix: &str| content_type.is_some_and(|c| c.starts_with(prefix));
    if is("application/json") {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => params.extend(object),
            _ => return None,
        }
    } else if is("application/x-www-form-urlencoded") {
        form(&mut params, body);
    } else if content_type.is_none() && !body.is_empty() {
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(object)) => params.extend(object),
            _ => form(&mut params, body),
        }
    }
    Some(params)
}

fn slack(inner: &Inner, rest: &str, content_type: Option<&str>, body: &[u8]) -> Response {
    let plain = |status: StatusCode, text: &'static str| {
        (
            status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            text,
        )
            .into_response()
    };
    let payload =
        if content_type.is_some_and(|c| c.starts_with("application/x-www-form-urlencoded")) {
            form_urlencoded::parse(body)
                .find(|(k, _)| k == "payload")
                .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok())
        } else {
            serde_json::from_slice::<Value>(body).ok()
        };
    let Some(payload) = payload.filter(Value::is_object) else {
        return plain(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    let Some(text) = slack_text(&payload) else {
        return plain(StatusCode::BAD_REQUEST, "no_text");
    };
    inner.record(Flavor::Slack, slack_path(rest), None, text);
    plain(StatusCode::OK, "ok")
}

/// `/services/T/B/<token>`: the webhook's last segment is its secret.
fn slack_path(rest: &str) -> String {
    let mut segments: Vec<&str> = rest.split('/').collect();
    if segments.len() >= 3 {
        segments.truncate(2);
        segments.push("<token>");
    }
    format!("/services/{}", segments.join("/"))
}

/// Slack's `text`, else every text field of `blocks` and `attachments` joined by newlines.
fn slack_text(payload: &Value) -> Option<String> {
    if let Some(text) = payload.get("text").and_then(Value::as_str)
        && !text.trim().is_empty()
    {
        return Some(text.to_string());
    }
    let mut parts = Vec::new();
    for key in ["blocks", "attachments"] {
        if let Some(value) = payload.get(key) {
            collect_texts(value, &mut parts);
        }
    }
    let text = parts.join("\n");
    (!text.trim().is_empty()).then_some(text)
}

/// Every string under a `text` key, depth first (keys in alphabetical order within an object).
fn collect_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| collect_texts(v, out)),
        Value::Object(object) => {
            for (key, v) in object {
                match v {
                    Value::String(s) if key == "text" => out.push(s.clone()),
                    _ => collect_texts(v, out),
                }
            }
        }
        _ => {}
    }
}

/// A generic webhook's text: `text`, else `message`, else the compact JSON; a non-JSON body
/// as (lossy) UTF-8.
fn webhook_text(body: &[u8]) -> String {
    match serde_json::from_slice::<Value>(body) {
        Ok(value) => ["text", "message"]
            .into_iter()
            .find_map(|key| value.get(key).and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| value.to_string()),
        Err(_) => String::from_utf8_lossy(body).into_owned(),
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

    #[test]
    fn telegram_routes_need_a_token_and_a_method_segment() {
        assert_eq!(
            telegram_route("/bot123:abc/sendMessage"),
            Some(("123:abc", "sendMessage"))
        );
        assert_eq!(telegram_route("/bot/sendMessage"), None);
        assert_eq!(telegram_route("/botany"), None);
        assert_eq!(telegram_route("/hooks/bot1/x"), None);
    }

    #[test]
    fn slack_paths_lose_their_secret_segment() {
        assert_eq!(slack_path("T000/B000/XXXX"), "/services/T000/B000/<token>");
        assert_eq!(
            slack_path("T000/B000/XXXX/extra"),
            "/services/T000/B000/<token>"
        );
        assert_eq!(slack_path("T000"), "/services/T000");
    }

    #[test]
    fn slack_text_falls_back_to_the_texts_of_blocks() {
        let payload = json!({
            "blocks": [
                {"type": "header", "text": {"type": "plain_text", "text": "Broker down"}},
                {"type": "section", "text": {"type": "mrkdwn", "text": "since 12:00"}},
            ]
        });
        assert_eq!(
            slack_text(&payload).as_deref(),
            Some("Broker down\nsince 12:00")
        );
        assert_eq!(slack_text(&json!({"text": "  "})), None);
        assert_eq!(slack_text(&json!({"blocks": []})), None);
    }

    #[test]
    fn webhook_text_prefers_text_then_message_then_the_whole_body() {
        assert_eq!(webhook_text(br#"{"text":"a","message":"b"}"#), "a");
        assert_eq!(webhook_text(br#"{"message":"b"}"#), "b");
        assert_eq!(
            webhook_text(br#"{ "level" : "error" }"#),
            r#"{"level":"error"}"#
        );
        assert_eq!(webhook_text(b"plain \xff text"), "plain \u{fffd} text");
    }
}
