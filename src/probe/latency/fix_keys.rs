//! The latency probe's FIX keys (`transport = "fix"`): the `fix+tcp://` / `fix+tls://` URL,
//! the session (`fix_version`, `sender_comp_id`, `target_comp_id`, `heartbeat`,
//! `reset_seq_num`, `username`, `password`), the NewOrderSingle template (`order`) and
//! `until`, validated into a [`FixWire`]; the session keys are shared with the soak's order
//! monitor. HTTP and WebSocket keys with FIX, and FIX keys with them, are errors: a key that
//! does nothing must not look as if it did.

use std::time::Duration;

use super::RawLatencyProbe;
use crate::fix::{SessionConfig, Version, codec, tag};
use crate::order::fix::{FixWire, Until};
use crate::order::template::Template;
use crate::probe::{FieldError, Validator};

impl RawLatencyProbe {
    /// With HTTP or WebSocket, none of the FIX keys.
    pub(super) fn no_fix_keys(&self) -> Result<(), FieldError> {
        let mut fix_keys = session_keys!(self).given().to_vec();
        fix_keys.extend([
            ("order", self.order.is_some()),
            ("until", self.until.is_some()),
        ]);
        none_given(&fix_keys, |key| {
            format!("`{key}` applies only to transport = \"fix\"")
        })
    }

    /// The FIX wire: the session and the order template; HTTP and WebSocket keys are errors.
    pub(super) fn fix_wire(&self, v: &mut Validator) -> Result<FixWire, FieldError> {
        let other_keys = [
            ("http_version", self.http_version.is_some()),
            ("method", self.method.is_some()),
            ("headers", !self.headers.is_empty()),
            ("body", self.body.is_some()),
            ("match", self.match_response.is_some()),
            ("match_request", self.match_request.is_some()),
            ("status", self.status.is_some()),
            ("body_contains", self.body_contains.is_some()),
            ("json_pointer", self.json_pointer.is_some()),
            ("json_equals", self.json_equals.is_some()),
            ("json_one_of", self.json_one_of.is_some()),
        ];
        none_given(&other_keys, |key| {
            format!(
                "`{key}` does not apply to transport = \"fix\" (the order is `order`, its answer an ExecutionReport)"
            )
        })?;
        let session = session_keys!(self).validate(v)?;
        let (order, tags) = order_template(v, "order", self.order.as_deref())?;
        let until = match self.until.as_deref() {
            None | Some("ack") => Until::Ack,
            Some("fill") => Until::Fill,
            Some(other) => {
                return Err(FieldError::new(
                    "until",
                    format!("expected \"ack\" or \"fill\", found \"{other}\""),
                ));
            }
        };
        Ok(FixWire {
            session,
            order,
            transact_time: !tags.contains(&tag::TRANSACT_TIME),
            until,
            timeout: Duration::from_secs(10),
        })
    }
}

/// An error at the first of `keys` (name, given) that was given, saying `why(name)`: keys that
/// would do nothing with the chosen transport.
///
/// # Errors
/// A [`FieldError`] at that key.
pub fn none_given(keys: &[(&str, bool)], why: impl Fn(&str) -> String) -> Result<(), FieldError> {
    match keys.iter().find(|(_, given)| *given) {
        Some((key, _)) => Err(FieldError::new(*key, why(key))),
        None => Ok(()),
    }
}

/// The FIX session keys shared by the latency probe and the soak's order monitor, as written.
pub struct SessionKeys<'a> {
    /// `fix_version`: `"4.2"` or `"4.4"` (default).
    pub fix_version: Option<&'a str>,
    /// `sender_comp_id`, required.
    pub sender_comp_id: Option<&'a str>,
    /// `target_comp_id`, required.
    pub target_comp_id: Option<&'a str>,
    /// `heartbeat`, whole seconds (default 30 s).
    pub heartbeat: Option<&'a str>,
    /// `reset_seq_num` (default true).
    pub reset_seq_num: Option<bool>,
    /// `username`, `${VAR}` interpolated.
    pub username: Option<&'a str>,
    /// `password`, `${VAR}` interpolated.
    pub password: Option<&'a str>,
}

/// The [`SessionKeys`] of a raw table that has them under their names (`fix_version`,
/// `sender_comp_id`, …): the latency probe's and the order monitor's.
macro_rules! session_keys {
    ($raw:expr) => {
        $crate::probe::latency::fix_keys::SessionKeys {
            fix_version: $raw.fix_version.as_deref(),
            sender_comp_id: $raw.sender_comp_id.as_deref(),
            target_comp_id: $raw.target_comp_id.as_deref(),
            heartbeat: $raw.heartbeat.as_deref(),
            reset_seq_num: $raw.reset_seq_num,
            username: $raw.username.as_deref(),
            password: $raw.password.as_deref(),
        }
    };
}
pub(crate) use session_keys;

impl SessionKeys<'_> {
    /// Each key's name and whether it was given.
    pub fn given(&self) -> [(&'static str, bool); 7] {
        [
            ("fix_version", self.fix_version.is_some()),
            ("sender_comp_id", self.sender_comp_id.is_some()),
            ("target_comp_id", self.target_comp_id.is_some()),
            ("heartbeat", self.heartbeat.is_some()),
            ("reset_seq_num", self.reset_seq_num.is_some()),
            ("username", self.username.is_some()),
            ("password", self.password.is_some()),
        ]
    }

    /// Validate into a session configuration.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(&self, v: &mut Validator) -> Result<SessionConfig, FieldError> {
        let version = Version::parse(self.fix_version.unwrap_or("4.4"))
            .map_err(|m| FieldError::new("fix_version", m))?;
        let comp_id = |key: &str, value: Option<&str>| -> Result<String, FieldError> {
            match value {
                Some(c) if !c.is_empty() && !c.contains(['|', '\u{1}', '=']) => Ok(c.to_string()),
                Some(_) => Err(FieldError::new(
                    key,
                    "expected a non-empty CompID without |, = or SOH",
                )),
                None => Err(FieldError::new(
                    key,
                    "required with transport = \"fix\" (the CompID agreed with the counterparty)",
                )),
            }
        };
        let sender_comp_id = comp_id("sender_comp_id", self.sender_comp_id)?;
        let target_comp_id = comp_id("target_comp_id", self.target_comp_id)?;
        let heartbeat = match self.heartbeat {
            Some(h) => v.duration("heartbeat", h)?,
            None => Duration::from_secs(30),
        };
        if heartbeat.as_secs() == 0 || heartbeat.subsec_nanos() != 0 {
            return Err(FieldError::new(
                "heartbeat",
                "expected whole seconds of at least 1s (HeartBtInt(108) is in seconds)",
            ));
        }
        let mut secret = |key: &str, value: Option<&str>| {
            value
                .map(|t| v.interpolate(key, t).map(|i| i.value))
                .transpose()
        };
        let username = secret("username", self.username)?;
        let password = secret("password", self.password)?;
        Ok(SessionConfig {
            version,
            sender_comp_id,
            target_comp_id,
            heartbeat,
            reset_seq_num: self.reset_seq_num.unwrap_or(true),
            username,
            password,
        })
    }
}

/// An order template at `key` (`${VAR}` interpolated): `tag=value` fields separated by `|`,
/// with ClOrdID(11) holding a placeholder and no header tag. Returns it with its tags.
///
/// # Errors
/// A [`FieldError`] at `key`.
pub fn order_template(
    v: &mut Validator,
    key: &str,
    text: Option<&str>,
) -> Result<(Template, Vec<u32>), FieldError> {
    let text = text.ok_or_else(|| {
        FieldError::new(
            key,
            "required with transport = \"fix\": the NewOrderSingle fields, e.g. \"11={{seq}}|55=NIFTY|54=1|38=1|40=1\"",
        )
    })?;
    let text = v.interpolate(key, text)?.value;
    let tags = codec::template_tags(&text).map_err(|m| FieldError::new(key, m))?;
    order_tags(key, &tags, &text)?;
    let template = Template::parse(&text).map_err(|m| FieldError::new(key, m))?;
    Ok((template, tags))
}

/// The order template's tags: ClOrdID(11) with a placeholder (each order needs its own), and
/// no header or trailer tag (the session writes those).
fn order_tags(key: &str, tags: &[u32], text: &str) -> Result<(), FieldError> {
    const SESSION_TAGS: [u32; 9] = [8, 9, 10, 34, 35, 43, 49, 52, 56];
    if let Some(t) = tags.iter().find(|t| SESSION_TAGS.contains(t)) {
        return Err(FieldError::new(
            key,
            format!("tag {t} is a header or trailer field the session writes; remove it"),
        ));
    }
    let cl_ord_id = text
        .split('|')
        .find_map(|f| f.strip_prefix("11="))
        .ok_or_else(|| {
            FieldError::new(
                key,
                "expected ClOrdID(11), e.g. 11={{seq}}: ExecutionReports are matched to orders by it",
            )
        })?;
    if !cl_ord_id.contains("{{") {
        return Err(FieldError::new(
            key,
            "ClOrdID(11) must differ per order: use a placeholder such as 11={{seq}} or 11={{uuid}}",
        ));
    }
    Ok(())
}
