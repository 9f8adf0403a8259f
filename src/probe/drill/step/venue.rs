//! `expect = "orders"`: open orders and positions at a venue, read over HTTP as JSON. The
//! paper broker is one venue (`broker`, `account`: its `/api/v1/orders?status=open` and
//! `/api/v1/positions`); any other is given by its URLs and JSON pointers (RFC 6901) to the
//! array of open orders, the array of positions and each position's quantity.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::actions::broker_url;
use super::request::{RawRequest, Request, Template};
use crate::expect::check_pointer;
use crate::probe::{FieldError, Validator};
use crate::units::Interpolated;

/// Open orders and positions on the paper broker (`broker`) or any venue (`orders_url`,
/// `positions_url`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Orders {
    /// The paper broker's base URL, e.g. `"http://127.0.0.1:18080"`; excludes `orders_url`
    /// and `positions_url`.
    pub broker: Option<String>,
    /// The paper broker's API key (sent as a Bearer token); `${VAR}`.
    pub api_key: Option<String>,
    /// The paper broker's account. Default `"default"`.
    pub account: Option<String>,
    /// Any venue: a URL answering JSON with the open orders (`GET`); `${VAR}` and
    /// `${saved.NAME}` are put in.
    pub orders_url: Option<String>,
    /// Where the array of open orders is in that answer. Default `""` (the whole answer).
    pub orders_pointer: Option<String>,
    /// Any venue: a URL answering JSON with the positions (`GET`).
    pub positions_url: Option<String>,
    /// Where the array of positions is in that answer. Default `""` (the whole answer).
    pub positions_pointer: Option<String>,
    /// Where a position's quantity is, inside each position. Default `"/qty"`.
    pub quantity_pointer: Option<String>,
    /// Where a position's instrument is, inside each position, to show it. Default
    /// `"/symbol"`.
    pub symbol_pointer: Option<String>,
    /// Request headers for `orders_url` and `positions_url`; values may use `${VAR}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Exactly this many open orders.
    pub open: Option<u64>,
    /// `true` when every position must be flat (quantity 0).
    pub flat: Option<bool>,
}

/// A JSON array read at a URL.
#[derive(Debug, Clone)]
pub struct JsonList {
    /// The `GET` request.
    pub request: Request,
    /// Where the array is in the answer.
    pub pointer: String,
}

/// Where open orders and positions are read.
#[derive(Debug, Clone)]
pub struct Venue {
    /// The open orders.
    pub orders: Option<JsonList>,
    /// The positions.
    pub positions: Option<JsonList>,
    /// A position's quantity, inside each position.
    pub quantity: String,
    /// A position's instrument, inside each position.
    pub symbol: String,
    /// How the venue is shown: `account agent`, or the orders URL.
    pub shown: String,
}

impl Venue {
    /// The saved names its requests refer to, with the key that does.
    pub fn saved_uses(&self) -> Vec<(&'static str, &str)> {
        let mut out = Vec::new();
        for (key, list) in [
            ("orders_url", &self.orders),
            ("positions_url", &self.positions),
        ] {
            if let Some(l) = list {
                out.extend(l.request.saved_names().into_iter().map(|n| (key, n)));
            }
        }
        out
    }
}

/// `GET url` with `headers`.
fn get(url: Interpolated, headers: &[(String, Interpolated)]) -> Request {
    Request {
        method: reqwest::Method::GET,
        url: Template::from(url),
        headers: headers
            .iter()
            .map(|(k, v)| (k.clone(), Template::from(v.clone())))
            .collect(),
        body: None,
    }
}

impl Orders {
    /// The paper broker's endpoints for `account`.
    fn paper(&self, v: &mut Validator, broker: &str) -> Result<Venue, FieldError> {
        let base = broker_url(v, broker)?;
        let account = self.account.clone().unwrap_or_else(|| "default".into());
        let mut headers = Vec::new();
        if let Some(k) = &self.api_key {
            let k = v.interpolate("api_key", k)?;
            headers.push((
                "Authorization".to_string(),
                Interpolated {
                    value: format!("Bearer {}", k.value),
                    display: format!("Bearer {}", k.display),
                },
            ));
        }
        let query = |q: &[(&str, &str)]| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(q)
                .finish()
        };
        let at = |path: &str, q: &str| Interpolated {
            value: format!("{}{path}?{q}", base.value.trim_end_matches('/')),
            display: format!("{}{path}?{q}", base.display.trim_end_matches('/')),
        };
        let open = query(&[("status", "open"), ("account", &account)]);
        let positions = query(&[("account", &account)]);
        Ok(Venue {
            orders: Some(JsonList {
                request: get(at("/api/v1/orders", &open), &headers),
                pointer: "/orders".into(),
            }),
            positions: Some(JsonList {
                request: get(at("/api/v1/positions", &positions), &headers),
                pointer: "/positions".into(),
            }),
            quantity: "/qty".into(),
            symbol: "/symbol".into(),
            shown: format!("account {account}"),
        })
    }

    /// Any venue, by its URLs and pointers.
    fn any(&self, v: &mut Validator) -> Result<Venue, FieldError> {
        let mut list =
            |url_key: &'static str, url: &Option<String>, ptr: (&str, &Option<String>)| {
                let Some(url) = url else {
                    return Ok(None);
                };
                let pointer = ptr.1.clone().unwrap_or_default();
                if !pointer.is_empty() {
                    check_pointer(ptr.0, &pointer)?;
                }
                let request = RawRequest {
                    url_key,
                    url,
                    method: None,
                    headers: &self.headers,
                    body: None,
                }
                .validate(v, "")?;
                Ok::<_, FieldError>(Some(JsonList { request, pointer }))
            };
        let orders = list(
            "orders_url",
            &self.orders_url,
            ("orders_pointer", &self.orders_pointer),
        )?;
        let positions = list(
            "positions_url",
            &self.positions_url,
            ("positions_pointer", &self.positions_pointer),
        )?;
        let quantity = self.quantity_pointer.clone().unwrap_or("/qty".into());
        check_pointer("quantity_pointer", &quantity)?;
        let symbol = self.symbol_pointer.clone().unwrap_or("/symbol".into());
        check_pointer("symbol_pointer", &symbol)?;
        let shown = orders
            .as_ref()
            .or(positions.as_ref())
            .map(|l| l.request.url.display())
            .unwrap_or_default();
        Ok(Venue {
            orders,
            positions,
            quantity,
            symbol,
            shown,
        })
    }
}

impl Orders {
    /// Validate where the orders are read, and that `open` or `flat` is asked for.
    ///
    /// # Errors
    /// A [`FieldError`] at the key: neither `open` nor `flat`, keys of both venue forms, a
    /// URL or pointer that is not one, `open` without `orders_url`, `flat` without
    /// `positions_url`.
    pub fn venue(&self, v: &mut Validator) -> Result<Venue, FieldError> {
        if self.open.is_none() && self.flat.is_none() {
            return Err(FieldError::new(
                "",
                "expect = \"orders\" needs `open` (a count of open orders) or `flat = true`",
            ));
        }
        let any = [
            ("orders_url", self.orders_url.is_some()),
            ("positions_url", self.positions_url.is_some()),
            ("orders_pointer", self.orders_pointer.is_some()),
            ("positions_pointer", self.positions_pointer.is_some()),
            ("quantity_pointer", self.quantity_pointer.is_some()),
            ("symbol_pointer", self.symbol_pointer.is_some()),
            ("headers", !self.headers.is_empty()),
        ];
        let venue = match &self.broker {
            Some(b) => {
                if let Some((k, _)) = any.iter().find(|(_, given)| *given) {
                    return Err(FieldError::new(
                        *k,
                        format!(
                            "`{k}` is for a venue other than the paper broker: it excludes `broker`"
                        ),
                    ));
                }
                self.paper(v, b)?
            }
            None => {
                for (k, given) in [
                    ("api_key", self.api_key.is_some()),
                    ("account", self.account.is_some()),
                ] {
                    if given {
                        return Err(FieldError::new(
                            k,
                            format!(
                                "`{k}` goes with `broker` (the paper broker); another venue takes `headers`"
                            ),
                        ));
                    }
                }
                let venue = self.any(v)?;
                if self.open.is_some() && venue.orders.is_none() {
                    return Err(FieldError::new(
                        "orders_url",
                        "`open` needs `broker` or `orders_url` (where the open orders are read)",
                    ));
                }
                if self.flat == Some(true) && venue.positions.is_none() {
                    return Err(FieldError::new(
                        "positions_url",
                        "`flat` needs `broker` or `positions_url` (where the positions are read)",
                    ));
                }
                venue
            }
        };
        Ok(venue)
    }
}
