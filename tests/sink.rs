//! The notification sink as a real HTTP server on an ephemeral loopback port, driven with
//! reqwest the way a service's alerting code would: Telegram (JSON, form, query string),
//! Slack, generic webhooks, the error answers, counting by regex and time, waiting, and the
//! evidence lines.

use std::time::{Duration, Instant};

use prodready::rig::sink::{Flavor, MAX_BODY_BYTES, Sink};
use regex::Regex;
use serde_json::{Value, json};

const TOKEN: &str = "123456789:AAHsecretsecretsecret";

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn send_message_url(sink: &Sink) -> String {
    format!("{}/bot{TOKEN}/sendMessage", sink.url())
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn telegram_json_message_is_recorded_with_the_token_redacted_and_answered_like_telegram() {
    let sink = Sink::start("ops").await.unwrap();
    assert_eq!(sink.name(), "ops");
    assert!(sink.url().starts_with("http://127.0.0.1:"));

    let before = jiff::Timestamp::now().as_second();
    let (status, reply) = json_of(
        client()
            .post(send_message_url(&sink))
            .json(&json!({"chat_id": -100123, "text": "Broker DOWN", "parse_mode": "HTML"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["ok"], json!(true));
    let result = &reply["result"];
    assert_eq!(result["message_id"], json!(1));
    assert_eq!(
        result["from"],
        json!({"id": 123456789, "is_bot": true, "first_name": "prodready sink", "username": "prodready_sink_bot"})
    );
    assert_eq!(result["chat"], json!({"id": -100123, "type": "private"}));
    assert_eq!(result["text"], json!("Broker DOWN"));
    let date = result["date"].as_i64().unwrap();
    assert!(date >= before && date <= jiff::Timestamp::now().as_second());

    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    let m = &messages[0];
    assert_eq!(m.seq, 1);
    assert_eq!(m.flavor, Flavor::Telegram);
    assert_eq!(m.path, "/bot<token>/sendMessage");
    assert_eq!(m.chat.as_deref(), Some("-100123"));
    assert_eq!(m.text, "Broker DOWN");
    sink.shutdown().await;
}

#[tokio::test]
async fn telegram_form_body_and_get_query_string_are_accepted_too() {
    let sink = Sink::start("ops").await.unwrap();
    let c = client();
    let (status, reply) = json_of(
        c.post(send_message_url(&sink))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("chat_id=%40ops_channel&text=order+router+restarted+%E2%9C%85")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["chat"]["id"], json!("@ops_channel"));
    assert_eq!(reply["result"]["text"], json!("order router restarted ✅"));

    let url = format!("{}?chat_id=42&text=from%20a%20GET", send_message_url(&sink));
    let (status, reply) = json_of(c.get(url).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["chat"]["id"], json!(42));
    assert_eq!(reply["result"]["message_id"], json!(2));

    // Method names are case-insensitive on Telegram.
    let url = format!("{}/bot{TOKEN}/sendmessage", sink.url());
    let (status, _) = json_of(
        c.post(url)
            .json(&json!({"chat_id": 7, "text": "lower case"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200);

    let texts: Vec<(Option<String>, String)> = sink
        .messages()
        .into_iter()
        .map(|m| (m.chat, m.text))
        .collect();
    assert_eq!(
        texts,
        [
            (
                Some("@ops_channel".to_string()),
                "order router restarted ✅".to_string()
            ),
            (Some("42".to_string()), "from a GET".to_string()),
            (Some("7".to_string()), "lower case".to_string()),
        ]
    );
    assert!(sink.messages().iter().all(|m| !m.path.contains("secret")));
    sink.shutdown().await;
}

#[tokio::test]
async fn telegram_errors_use_telegrams_words_and_record_nothing() {
    let sink = Sink::start("ops").await.unwrap();
    let c = client();
    let (status, reply) = json_of(
        c.post(send_message_url(&sink))
            .json(&json!({"chat_id": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        reply,
        json!({"ok": false, "error_code": 400, "description": "Bad Request: message text is empty"})
    );

    let (status, reply) = json_of(
        c.post(send_message_url(&sink))
            .json(&json!({"chat_id": 1, "text": ""}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &reply["description"]),
        (400, &json!("Bad Request: message text is empty"))
    );

    let (status, reply) = json_of(
        c.post(send_message_url(&sink))
            .json(&json!({"text": "to nobody"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, &reply["description"]),
        (400, &json!("Bad Request: chat_id is empty"))
    );

    let url = format!("{}/bot{TOKEN}/sendPhoto", sink.url());
    let (status, reply) = json_of(c.post(url).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(
        reply,
        json!({"ok": false, "error_code": 404, "description": "Not Found"})
    );

    // getMe answers (bot libraries call it at start-up) but is not a message.
    let url = format!("{}/bot{TOKEN}/getMe", sink.url());
    let (status, reply) = json_of(c.get(url).send().await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(reply["result"]["username"], json!("prodready_sink_bot"));

    assert!(sink.messages().is_empty());
    sink.shutdown().await;
}

#[tokio::test]
async fn slack_text_and_blocks_are_recorded_and_answered_ok_as_slack_does() {
    let sink = Sink::start("slack").await.unwrap();
    let c = client();
    let url = format!("{}/services/T000/B000/XXXXSECRET", sink.url());

    let response = c
        .post(&url)
        .json(&json!({"text": "p99 above 1 s"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    assert_eq!(response.text().await.unwrap(), "ok");

    let blocks = json!({"blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*Rollback*"}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "error rate 2 %"}]}
    ]});
    let response = c.post(&url).json(&blocks).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);

    let response = c
        .post(&url)
        .json(&json!({"username": "bot"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.text().await.unwrap(), "no_text");

    let response = c.post(&url).body("not json").send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(response.text().await.unwrap(), "invalid_payload");

    let messages = sink.messages();
    let got: Vec<(Flavor, &str, &str)> = messages
        .iter()
        .map(|m| (m.flavor, m.path.as_str(), m.text.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (
                Flavor::Slack,
                "/services/T000/B000/<token>",
                "p99 above 1 s"
            ),
            (
                Flavor::Slack,
                "/services/T000/B000/<token>",
                "*Rollback*\nerror rate 2 %"
            ),
        ]
    );
    assert!(messages.iter().all(|m| m.chat.is_none()));
    sink.shutdown().await;
}

#[tokio::test]
async fn generic_webhook_takes_text_then_message_then_the_body() {
    let sink = Sink::start("hook").await.unwrap();
    let c = client();
    let url = format!("{}/alerts?api_key=hidden", sink.url());
    for body in [
        json!({"text": "first", "message": "ignored"}).to_string(),
        json!({"message": "second"}).to_string(),
        r#"{ "level": "critical", "n": 3 }"#.to_string(),
        "plain text alert".to_string(),
    ] {
        let (status, reply) = json_of(c.post(&url).body(body).send().await.unwrap()).await;
        assert_eq!((status, reply), (200, json!({"ok": true})));
    }
    let response = c.get(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);

    let messages = sink.messages();
    let texts: Vec<&str> = messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(
        texts,
        [
            "first",
            "second",
            r#"{"level":"critical","n":3}"#,
            "plain text alert"
        ]
    );
    assert!(
        messages
            .iter()
            .all(|m| m.flavor == Flavor::Webhook && m.path == "/alerts")
    );
    let seqs: Vec<u64> = messages.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, [1, 2, 3, 4]);
    sink.shutdown().await;
}

#[tokio::test]
async fn a_body_above_the_limit_is_413_and_not_recorded() {
    let sink = Sink::start("hook").await.unwrap();
    let response = client()
        .post(format!("{}/big", sink.url()))
        .body(vec![b'a'; MAX_BODY_BYTES + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    let response = client()
        .post(format!("{}/fits", sink.url()))
        .body(vec![b'a'; MAX_BODY_BYTES])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let messages = sink.messages();
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].path, "/fits");
    sink.shutdown().await;
}

#[tokio::test]
async fn count_matching_filters_by_regex_and_by_time_range() {
    let sink = Sink::start("ops").await.unwrap();
    let c = client();
    let url = format!("{}/hook", sink.url());
    let t0 = Instant::now();
    for text in ["broker DOWN", "heartbeat"] {
        c.post(&url)
            .json(&json!({"text": text}))
            .send()
            .await
            .unwrap();
    }
    let t1 = Instant::now();
    for text in ["broker down again", "broker recovered", "heartbeat"] {
        c.post(&url)
            .json(&json!({"text": text}))
            .send()
            .await
            .unwrap();
    }
    let t2 = Instant::now();

    let down = Regex::new(r"(?i)broker down").unwrap();
    assert_eq!(sink.count_matching(None, t0, None), 5);
    assert_eq!(sink.count_matching(Some(&down), t0, None), 2);
    assert_eq!(sink.count_matching(Some(&down), t0, Some(t1)), 1);
    assert_eq!(sink.count_matching(Some(&down), t1, None), 1);
    assert_eq!(sink.count_matching(None, t1, Some(t2)), 3);
    assert_eq!(sink.count_matching(None, t2, None), 0);
    // The monotonic instants agree with the arrival order.
    let messages = sink.messages();
    assert!(messages.windows(2).all(|w| w[0].at <= w[1].at));
    assert!(messages[1].at <= t1 && t1 <= messages[2].at);
    sink.shutdown().await;
}

#[tokio::test]
async fn wait_for_returns_when_enough_messages_arrive_or_at_the_deadline() {
    let sink = Sink::start("ops").await.unwrap();
    let since = Instant::now();
    let alert = Regex::new("ALERT").unwrap();

    let waiter = {
        let sink = sink.clone();
        let alert = alert.clone();
        tokio::spawn(async move {
            sink.wait_for(
                Some(&alert),
                since,
                2,
                Instant::now() + Duration::from_secs(30),
            )
            .await
        })
    };
    let c = client();
    let url = format!("{}/hook", sink.url());
    for text in ["ALERT one", "noise", "ALERT two"] {
        c.post(&url)
            .json(&json!({"text": text}))
            .send()
            .await
            .unwrap();
    }
    assert_eq!(waiter.await.unwrap(), 2);

    // Not enough by the deadline: the count so far.
    let deadline = Instant::now() + Duration::from_millis(100);
    assert_eq!(sink.wait_for(Some(&alert), since, 3, deadline).await, 2);
    assert!(Instant::now() >= deadline);
    sink.shutdown().await;
}

#[tokio::test]
async fn evidence_lines_parse_as_json_and_are_redacted() {
    let sink = Sink::start("ops").await.unwrap();
    assert_eq!(sink.evidence_jsonl(str::to_string), "");
    let c = client();
    c.post(send_message_url(&sink))
        .json(&json!({"chat_id": 5, "text": "key sk-live-42 leaked"}))
        .send()
        .await
        .unwrap();
    c.post(format!("{}/hook", sink.url()))
        .json(&json!({"message": "second"}))
        .send()
        .await
        .unwrap();

    let evidence = sink.evidence_jsonl(|s| s.replace("sk-live-42", "***"));
    assert!(evidence.ends_with('\n'));
    let lines: Vec<Value> = evidence
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["seq"], json!(1));
    assert_eq!(lines[0]["flavor"], json!("telegram"));
    assert_eq!(lines[0]["path"], json!("/bot<token>/sendMessage"));
    assert_eq!(lines[0]["chat"], json!("5"));
    assert_eq!(lines[0]["text"], json!("key *** leaked"));
    assert_eq!(lines[1]["flavor"], json!("webhook"));
    assert_eq!(lines[1]["chat"], Value::Null);
    for line in &lines {
        let at: jiff::Timestamp = line["received_at"].as_str().unwrap().parse().unwrap();
        assert!(at <= jiff::Timestamp::now());
        assert_eq!(line.as_object().unwrap().len(), 6);
    }
    assert!(!evidence.contains("secret"));
    sink.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_the_server_and_keeps_the_record_for_other_handles() {
    let sink = Sink::start("ops").await.unwrap();
    let reader = sink.clone();
    let url = format!("{}/hook", sink.url());
    client().post(&url).body("x").send().await.unwrap();
    sink.shutdown().await;
    assert!(client().post(&url).body("y").send().await.is_err());
    assert_eq!(reader.messages().len(), 1);
}
