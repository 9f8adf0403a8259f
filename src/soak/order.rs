//! The soak `order` monitor: one synthetic order per check against any venue, over HTTP or
//! WebSocket, its acknowledgement checked, and optionally cancelled with the cancel's
//! acknowledgement checked too. Each order and each cancel is one operation for the error rate.
//!
//! Two forms, one check. Without `place`, the order is the paper broker's (`POST
//! <url>/api/v1/orders` from `symbol`, `side`, `qty`, `type`, `limit_price`; cancelled with
//! `DELETE <url>/api/v1/orders/{order_id}` when `cancel = true` and it rests), so existing soak
//! configurations run unchanged. With `place`, the order is a template (the order client's
//! placeholders, [`crate::order::template`]; `{{uuid}}` for a fresh client id) sent as the HTTP body to `url`, or as one
//! message on a WebSocket at `url`, where the answer is the message whose `match` pointer holds
//! the value the order had there (market data on the socket is skipped). `ack` is the JSON
//! pointer and the values an acknowledgement must hold; the cancel template may use
//! `{{order_id}}`, the value at `order_id` in the acknowledgement.
//!
//! FIX is the third transport (`transport = "fix"`): such a check is validated by
//! [`RawOrderCheck::validate_fix`] into a [`super::fix_order::FixOrderCheck`], which speaks a
//! FIX session instead.
//!
//! The transport key, the connections, the WebSocket client and the templates are the order
//! client's ([`crate::order`]), the same the `latency` probe sends its orders with.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use crate::keys::shared_keys;
use crate::order::connect::{Connector, Version};
use crate::order::template::{Rng, Template};
use crate::order::transport::Transport;
use crate::order::websocket::{WsStream, correlation_id, handshake, next_data, send_text};
use crate::probe::expect::{JsonExpect, RawHttpExpect, check_pointer};
use crate::probe::{FieldError, Validator, refuse_keys};
use crate::units::{Interpolated, Redactor};

shared_keys! {
    [fix_session]
/// `kind = "order"`: a synthetic order and its acknowledgement.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawOrderCheck {
    /// `"http"` (default), `"websocket"`, or `"fix"` (one FIX 4.2 / 4.4 session per check:
    /// Logon, a NewOrderSingle from `place`, an optional OrderCancelRequest, Logout).
    pub transport: Option<String>,
    /// FIX: OrdStatus(39) values of the first ExecutionReport counted as an acknowledgement.
    /// Default `["0", "1", "2"]` (New, PartiallyFilled, Filled).
    pub ack_ord_status: Option<Vec<String>>,
    /// Without `place`: the paper broker's base URL, e.g. `"http://127.0.0.1:18080"`. With
    /// `place`: the URL orders are POSTed to (`http://`, `https://`) or the WebSocket
    /// (`ws://`, `wss://`). `${VAR}` is interpolated.
    pub url: String,
    /// API key sent as `Authorization: Bearer …` (on the WebSocket upgrade too); use `${VAR}`
    /// (redacted in output).
    pub api_key: Option<String>,
    /// The order template: the HTTP body, or the WebSocket message (JSON once rendered), with
    /// the latency probe's placeholders (`{{uuid}}`, `{{seq}}`, `{{now_ms}}`, …). Without it,
    /// the paper broker's order from the keys below. With `transport = "fix"` (required
    /// there): the NewOrderSingle (35=D) fields, `tag=value` separated by `|`, ClOrdID(11)
    /// with a placeholder (`{{uuid}}` keeps it unique across restarts), e.g.
    /// `"11=soak-{{uuid}}|55=NIFTY|54=1|38=1|40=2|44=1"`.
    pub place: Option<String>,
    /// JSON pointer (RFC 6901) of the order's client id, in the rendered order and in its
    /// answers, e.g. `"/client_order_id"`: the answer must echo it (WebSocket: the answer is
    /// the message that holds it). Default `"/client_order_id"` without `place`; required
    /// with `place` over WebSocket.
    #[serde(rename = "match")]
    pub match_pointer: Option<String>,
    /// What an acknowledgement must hold: `{ pointer = "/status", equals = "accepted" }` or
    /// `{ pointer, one_of = [...] }`. Default: `/status` one of `accept`.
    pub ack: Option<RawAck>,
    /// `true`: cancel the paper broker order when it rests (`status` accepted). A string: the
    /// cancel template, sent once the order is acknowledged: over HTTP the URL sent a
    /// `DELETE`, over WebSocket a message; `{{order_id}}` is the acknowledgement's value at
    /// `order_id`. Default: no cancel.
    pub cancel: Option<RawCancel>,
    /// What the cancel's answer must hold (same form as `ack`). Default over WebSocket:
    /// `/status` equals `"cancelled"`; over HTTP a 2xx status is enough.
    pub cancel_ack: Option<RawAck>,
    /// JSON pointer of the venue's order id in the acknowledgement, for `{{order_id}}`.
    /// Default `"/order_id"`.
    pub order_id: Option<String>,
    /// Paper-broker form: instrument. Default `"NIFTY"`.
    pub symbol: Option<String>,
    /// Paper-broker form: `"buy"` (default) or `"sell"`.
    pub side: Option<String>,
    /// Paper-broker form: quantity. Default 1.
    pub qty: Option<u64>,
    /// Paper-broker form: `"market"` (default) or `"limit"`.
    #[serde(rename = "type")]
    pub order_type: Option<String>,
    /// Paper-broker form: limit price; required with `type = "limit"`.
    pub limit_price: Option<f64>,
    /// Acknowledgement statuses counted as success when `ack` is not given. Default
    /// `["accepted", "filled"]`.
    pub accept: Option<Vec<String>>,
}
}

/// An acknowledgement condition: a JSON pointer and the value (or values) accepted there.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAck {
    /// RFC 6901 pointer, e.g. `"/status"`.
    pub pointer: String,
    /// The value expected there; excludes `one_of`.
    pub equals: Option<Value>,
    /// Values accepted there; absent with `equals` = the pointer must only exist.
    pub one_of: Option<Vec<Value>>,
}

/// `cancel = true` (paper broker) or a cancel template.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(
    untagged,
    expecting = "expected true (cancel the paper broker order) or a cancel template (a string)"
)]
pub enum RawCancel {
    /// Cancel the paper broker order when it rests.
    Flag(bool),
    /// A cancel template (HTTP: the URL to `DELETE`; WebSocket: the message).
    Template(String),
}

/// The validated cancel step.
#[derive(Debug, Clone)]
struct Cancel {
    /// The template, `{{order_id}}` not yet substituted.
    template: String,
    /// Only when the acknowledgement holds this (the paper broker form: `/status` accepted).
    only_when: Option<JsonExpect>,
    /// What the cancel's answer must hold.
    ack: Option<JsonExpect>,
}

/// The wires an [`OrderCheck`] speaks; FIX checks are a `fix_order::FixOrderCheck`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wire {
    Http,
    WebSocket,
}

impl Wire {
    fn transport(self) -> Transport {
        match self {
            Wire::Http => Transport::Http,
            Wire::WebSocket => Transport::WebSocket,
        }
    }
}

/// A validated `order` check.
#[derive(Debug, Clone)]
pub struct OrderCheck {
    transport: Wire,
    url: Interpolated,
    api_key: Option<Interpolated>,
    place: Template,
    match_pointer: Option<String>,
    ack: JsonExpect,
    order_id: String,
    cancel: Option<Cancel>,
}

impl RawAck {
    fn validate(self, key: &str) -> Result<JsonExpect, FieldError> {
        let expect = RawHttpExpect {
            json_pointer: Some(self.pointer),
            json_equals: self.equals,
            json_one_of: self.one_of,
            ..RawHttpExpect::default()
        }
        .validate()
        .map_err(|e| {
            let sub = e.key.strip_prefix("json_").unwrap_or(&e.key).to_string();
            FieldError::new(format!("{key}.{sub}"), e.message)
        })?;
        expect
            .json
            .ok_or_else(|| FieldError::new(key, "expected a pointer"))
    }
}

impl RawOrderCheck {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key relative to the check table.
    pub fn validate(self, v: &mut Validator) -> Result<OrderCheck, FieldError> {
        let transport = match Transport::parse(self.transport.as_deref())? {
            Transport::Http => Wire::Http,
            Transport::WebSocket => Wire::WebSocket,
            // `check::RawMonitorCheck` sends FIX checks to `validate_fix`.
            Transport::Fix => {
                return Err(FieldError::new(
                    "transport",
                    "a FIX order check is a fix_order::FixOrderCheck",
                ));
            }
        };
        self.no_fix_keys()?;
        let api_key = self
            .api_key
            .as_deref()
            .map(|k| v.interpolate("api_key", k))
            .transpose()?;
        if self.place.is_some() {
            self.template_form(v, transport, api_key)
        } else {
            self.paper_form(v, transport, api_key)
        }
    }

    /// The paper broker's order, as before `place` existed.
    fn paper_form(
        self,
        v: &mut Validator,
        transport: Wire,
        api_key: Option<Interpolated>,
    ) -> Result<OrderCheck, FieldError> {
        if transport != Wire::Http {
            return Err(FieldError::new(
                "place",
                "transport = \"websocket\" needs place, the order message template",
            ));
        }
        if let Some(RawCancel::Template(_)) = self.cancel {
            return Err(FieldError::new(
                "cancel",
                "a cancel template goes with a place template; without place, cancel = true",
            ));
        }
        let base = v.interpolate("url", self.url.trim_end_matches('/'))?;
        url_of(&base.value, transport).map_err(|m| FieldError::new("url", m))?;
        let place = self.paper_order()?;
        let accept: Vec<Value> = self
            .accept
            .unwrap_or_else(|| vec!["accepted".into(), "filled".into()])
            .into_iter()
            .map(Value::String)
            .collect();
        let ack = match self.ack {
            Some(a) => a.validate("ack")?,
            None => JsonExpect {
                pointer: "/status".into(),
                one_of: accept,
            },
        };
        let cancel = matches!(self.cancel, Some(RawCancel::Flag(true))).then(|| Cancel {
            template: format!("{}/api/v1/orders/{{{{order_id}}}}", base.value),
            only_when: Some(JsonExpect {
                pointer: "/status".into(),
                one_of: vec![Value::from("accepted")],
            }),
            ack: None,
        });
        Ok(OrderCheck {
            transport,
            url: Interpolated {
                value: format!("{}/api/v1/orders", base.value),
                display: format!("{}/api/v1/orders", base.display),
            },
            api_key,
            place,
            match_pointer: Some("/client_order_id".into()),
            ack,
            order_id: "/order_id".into(),
            cancel,
        })
    }

    /// The paper broker's order from `symbol`, `side`, `qty`, `type` and `limit_price`, with a
    /// fresh client id per order.
    fn paper_order(&self) -> Result<Template, FieldError> {
        let side = self.side.as_deref().unwrap_or("buy");
        if !matches!(side, "buy" | "sell") {
            return Err(FieldError::new("side", "expected \"buy\" or \"sell\""));
        }
        let order_type = self.order_type.as_deref().unwrap_or("market");
        let limit = match (order_type, self.limit_price) {
            ("market", None) => String::new(),
            ("market", Some(_)) => {
                return Err(FieldError::new(
                    "limit_price",
                    "a market order takes no limit_price",
                ));
            }
            ("limit", Some(p)) if p > 0.0 && p.is_finite() => format!(",\"limit_price\":{p}"),
            ("limit", _) => {
                return Err(FieldError::new(
                    "limit_price",
                    "a limit order needs a positive limit_price",
                ));
            }
            _ => return Err(FieldError::new("type", "expected \"market\" or \"limit\"")),
        };
        let qty = self.qty.unwrap_or(1);
        if qty == 0 {
            return Err(FieldError::new("qty", "expected at least 1"));
        }
        let symbol =
            serde_json::to_string(self.symbol.as_deref().unwrap_or("NIFTY")).unwrap_or_default();
        let body = format!(
            r#"{{"symbol":{symbol},"side":"{side}","qty":{qty},"type":"{order_type}"{limit},"client_order_id":"soak-{{{{uuid}}}}"}}"#
        );
        Template::parse(&body).map_err(|m| FieldError::new("symbol", m))
    }

    /// The keys of the paper broker's own order (the form without `place`), and whether each
    /// is given.
    pub(super) fn paper_order_keys(&self) -> [(&'static str, bool); 6] {
        [
            ("symbol", self.symbol.is_some()),
            ("side", self.side.is_some()),
            ("qty", self.qty.is_some()),
            ("type", self.order_type.is_some()),
            ("limit_price", self.limit_price.is_some()),
            ("accept", self.accept.is_some()),
        ]
    }

    /// A venue's own order: the `place` template, `match`, `ack` and the cancel template.
    fn template_form(
        self,
        v: &mut Validator,
        transport: Wire,
        api_key: Option<Interpolated>,
    ) -> Result<OrderCheck, FieldError> {
        refuse_keys(
            &self.paper_order_keys(),
            "belongs to the paper broker's order; with place, the order is the template",
        )?;
        let url = v.interpolate("url", &self.url)?;
        url_of(&url.value, transport).map_err(|m| FieldError::new("url", m))?;
        let text = self.place.as_deref().unwrap_or_default();
        let place = Template::parse(&v.interpolate("place", text)?.value)
            .map_err(|m| FieldError::new("place", m))?;
        if let Some(p) = &self.match_pointer {
            check_pointer("match", p)?;
        } else if transport == Wire::WebSocket {
            return Err(FieldError::new(
                "match",
                "transport = \"websocket\" needs match, the JSON pointer of the client id that answers echo (e.g. \"/client_order_id\")",
            ));
        }
        let order_id = self.order_id.unwrap_or_else(|| "/order_id".into());
        check_pointer("order_id", &order_id)?;
        let ack = match self.ack {
            Some(a) => a.validate("ack")?,
            None => JsonExpect {
                pointer: "/status".into(),
                one_of: vec!["accepted".into(), "filled".into()],
            },
        };
        let cancel = match self.cancel {
            None | Some(RawCancel::Flag(false)) => None,
            Some(RawCancel::Flag(true)) => {
                return Err(FieldError::new(
                    "cancel",
                    "with place, cancel is the cancel template (a URL to DELETE over HTTP, a message over WebSocket)",
                ));
            }
            Some(RawCancel::Template(t)) => {
                let t = v.interpolate("cancel", &t)?.value;
                Template::parse(&t.replace("{{order_id}}", ""))
                    .map_err(|m| FieldError::new("cancel", m))?;
                let ack = match (self.cancel_ack, transport) {
                    (Some(a), _) => Some(a.validate("cancel_ack")?),
                    (None, Wire::WebSocket) => Some(JsonExpect {
                        pointer: "/status".into(),
                        one_of: vec!["cancelled".into()],
                    }),
                    (None, Wire::Http) => None,
                };
                Some(Cancel {
                    template: t,
                    only_when: None,
                    ack,
                })
            }
        };
        Ok(OrderCheck {
            transport,
            url,
            api_key,
            place,
            match_pointer: self.match_pointer,
            ack,
            order_id,
            cancel,
        })
    }
}

/// Check `url`'s scheme against the transport: the host and port for WebSocket connections.
fn url_of(url: &str, wire: Wire) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("invalid URL: {e}"))?;
    let transport = wire.transport();
    let (plain, secure) = transport.schemes();
    if parsed.scheme() != plain && parsed.scheme() != secure {
        return Err(transport.expected_url());
    }
    if parsed.host_str().is_none() {
        return Err("expected a host in the URL".into());
    }
    Ok(parsed)
}

/// One check's operations: how many ran, and the first failure (redacted).
pub type OrderResult = (u32, Result<(), String>);

impl OrderCheck {
    /// Place one order (and cancel it when configured) within `timeout`; the operations run
    /// and the first failure. `seq` numbers the checks (`{{seq}}`).
    pub async fn run(
        &self,
        client: &reqwest::Client,
        redactor: &Redactor,
        seq: u64,
        timeout: Duration,
    ) -> OrderResult {
        let now = jiff::Timestamp::now().as_nanosecond() as u64;
        let mut rng = Rng::new(now ^ seq.rotate_left(32));
        let mut order = String::new();
        self.place.render(seq, &mut rng, &mut order);
        let (ops, r) = match self.transport {
            Wire::Http => self.over_http(client, &order).await,
            Wire::WebSocket => {
                match tokio::time::timeout(timeout, self.over_websocket(&order, timeout)).await {
                    Ok(r) => r,
                    Err(_) => (1, Err(format!("{}: no answer in time", self.shown()))),
                }
            }
        };
        (ops, r.map_err(|m| redactor.redact(&m)))
    }

    /// The target as shown (`${VAR}` values hidden).
    fn shown(&self) -> String {
        match self.transport {
            Wire::Http => format!("POST {}", self.url.display),
            Wire::WebSocket => format!("WebSocket {}", self.url.display),
        }
    }

    /// The client id of the rendered order, when `match` is set.
    fn client_id(&self, order: &str) -> Result<Option<String>, String> {
        let Some(p) = &self.match_pointer else {
            return Ok(None);
        };
        let doc: Value = serde_json::from_str(order)
            .map_err(|e| format!("{}: the rendered order is not JSON ({e})", self.shown()))?;
        correlation_id(&doc, p)
            .map(Some)
            .ok_or_else(|| format!("{}: the rendered order has nothing at {p}", self.shown()))
    }

    /// Check the acknowledgement `doc` of the order whose client id is `id`; the cancel
    /// template with `{{order_id}}` filled in when a cancel is due.
    fn judge_ack(&self, doc: &Value, id: Option<&str>) -> Result<Option<String>, String> {
        let shown = self.shown();
        if let (Some(p), Some(id)) = (&self.match_pointer, id)
            && correlation_id(doc, p).as_deref() != Some(id)
        {
            return Err(format!(
                "{shown}: acknowledgement does not echo {p} = {id}: {doc}"
            ));
        }
        self.ack
            .check_value(doc)
            .map_err(|m| format!("{shown}: {m}, expected {}: {doc}", self.ack.describe()))?;
        let Some(c) = &self.cancel else {
            return Ok(None);
        };
        if c.only_when
            .as_ref()
            .is_some_and(|w| w.check_value(doc).is_err())
        {
            return Ok(None);
        }
        let order_id = correlation_id(doc, &self.order_id).ok_or_else(|| {
            format!(
                "{shown}: acknowledgement has no {} to cancel: {doc}",
                self.order_id
            )
        })?;
        let mut text = String::new();
        let t = Template::parse(&c.template.replace("{{order_id}}", &order_id))
            .map_err(|m| format!("cancel template: {m}"))?;
        t.render(0, &mut Rng::new(1), &mut text);
        Ok(Some(text))
    }

    /// The cancel's answer against its condition.
    fn judge_cancel(&self, doc: &Value) -> Result<(), String> {
        match self.cancel.as_ref().and_then(|c| c.ack.as_ref()) {
            Some(a) => a
                .check_value(doc)
                .map(|_| ())
                .map_err(|m| format!("cancel: {m}, expected {}: {doc}", a.describe())),
            None => Ok(()),
        }
    }

    async fn over_http(&self, client: &reqwest::Client, order: &str) -> OrderResult {
        let shown = self.shown();
        let id = match self.client_id(order) {
            Ok(id) => id,
            Err(m) => return (1, Err(m)),
        };
        let mut req = client
            .post(&self.url.value)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(order.to_string());
        if let Some(k) = &self.api_key {
            req = req.bearer_auth(&k.value);
        }
        let doc = match http_json(req, &shown).await {
            Ok(d) => d,
            Err(m) => return (1, Err(m)),
        };
        let cancel_url = match self.judge_ack(&doc, id.as_deref()) {
            Ok(Some(u)) => u,
            Ok(None) => return (1, Ok(())),
            Err(m) => return (1, Err(m)),
        };
        let mut del = client.delete(&cancel_url);
        if let Some(k) = &self.api_key {
            del = del.bearer_auth(&k.value);
        }
        let r = http_json(del, "cancel: DELETE")
            .await
            .and_then(|doc| self.judge_cancel(&doc));
        (2, r)
    }

    async fn over_websocket(&self, order: &str, timeout: Duration) -> OrderResult {
        let shown = self.shown();
        let mut ws = match self.connect(timeout).await {
            Ok(ws) => ws,
            Err(m) => return (1, Err(format!("{shown}: {m}"))),
        };
        let id = match self.client_id(order) {
            Ok(Some(id)) => id,
            Ok(None) => return (1, Err(format!("{shown}: no match pointer"))),
            Err(m) => return (1, Err(m)),
        };
        let doc = match self.exchange(&mut ws, order, &id).await {
            Ok(d) => d,
            Err(m) => return (1, Err(format!("{shown}: {m}"))),
        };
        let cancel = match self.judge_ack(&doc, Some(&id)) {
            Ok(Some(c)) => c,
            Ok(None) => {
                let _ = ws.close(None).await;
                return (1, Ok(()));
            }
            Err(m) => return (1, Err(m)),
        };
        let r = match self.exchange(&mut ws, &cancel, &id).await {
            Ok(doc) => self.judge_cancel(&doc),
            Err(m) => Err(format!("{shown}: cancel: {m}")),
        };
        let _ = ws.close(None).await;
        (2, r)
    }

    /// Open the WebSocket (TLS for `wss://`, Mozilla roots) with the API key.
    async fn connect(&self, timeout: Duration) -> Result<WsStream, String> {
        let url = url_of(&self.url.value, self.transport)?;
        let host = url.host_str().unwrap_or_default().trim_matches(['[', ']']);
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{host} has no address"))?;
        let connector = if url.scheme() == "wss" {
            Connector::tls(addr, Some(Version::Http1.alpn()), host, None)?
        } else {
            Connector::plain(addr)
        };
        let (stream, _) = connector.connect(timeout).await?;
        let headers = match &self.api_key {
            Some(k) => vec![(
                http::header::AUTHORIZATION,
                http::HeaderValue::from_str(&format!("Bearer {}", k.value))
                    .map_err(|_| "the API key is not a valid header value".to_string())?,
            )],
            None => Vec::new(),
        };
        handshake(&self.url.value, &headers, stream).await
    }

    /// Send `message` and wait for the answer holding `id` at `match` (others skipped).
    async fn exchange(&self, ws: &mut WsStream, message: &str, id: &str) -> Result<Value, String> {
        send_text(ws, message).await?;
        let pointer = self.match_pointer.as_deref().unwrap_or("/client_order_id");
        loop {
            let bytes = next_data(ws).await?;
            if let Ok(doc) = serde_json::from_slice::<Value>(&bytes)
                && correlation_id(&doc, pointer).as_deref() == Some(id)
            {
                return Ok(doc);
            }
        }
    }
}

/// Send `req`; its JSON body when the status is a success (an empty body is `null`).
async fn http_json(req: reqwest::RequestBuilder, shown: &str) -> Result<Value, String> {
    let resp = req.send().await.map_err(|e| format!("{shown}: {e}"))?;
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    if !status.is_success() {
        let snippet: String = text.chars().take(200).collect();
        return Err(format!("{shown} → {status}: {snippet}"));
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).map_err(|e| format!("{shown}: answer is not JSON: {e}"))
}
