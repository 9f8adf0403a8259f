//! The HTTP side of a sink: which request is a Telegram, Slack or webhook message, what it
//! answers (as those APIs do), and the text it records.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::store::{Flavor, Inner};

/// The display name of the sink's Telegram bot.
const BOT_FIRST_NAME: &str = "prodready sink";

/// The username of the sink's Telegram bot.
const BOT_USERNAME: &str = "prodready_sink_bot";

/// Answer one request (the router's only handler).
pub(super) async fn handle(
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
