//! The order client's configuration keys, shared by the `latency` probe and the soak's `order`
//! monitor so that each is declared and checked once: the FIX session (`fix_version`,
//! `sender_comp_id`, `target_comp_id`, `heartbeat`, `reset_seq_num`, `username`, `password`,
//! gathered by the `session_keys!` macro; declared in the raw tables by `crate::keys`) and the
//! FIX order template.
//!
//! A key that is wrong is a [`KeyError`]: the key's name and what was expected. It converts
//! into the leaf [`crate::field::FieldError`] every configuration error ends in; `${VAR}` is
//! interpolated through the caller's [`Redactor`].

use std::time::Duration;

use super::template::Template;
use crate::fix::{SessionConfig, Version, codec};
use crate::units::{Redactor, parse_duration};

/// A configuration error at one key: its name (relative to the table it is in) and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key, e.g. `transport`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl KeyError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> KeyError {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// A key of the order client reports its error like every other configuration key.
impl From<KeyError> for crate::field::FieldError {
    fn from(e: KeyError) -> crate::field::FieldError {
        crate::field::FieldError::new(e.key, e.message)
    }
}

/// Interpolate `${VAR}` in the value of `key`: the resolved text.
fn interpolate(redactor: &mut Redactor, key: &str, text: &str) -> Result<String, KeyError> {
    redactor
        .interpolate(text)
        .map(|i| i.value)
        .map_err(|m| KeyError::new(key, m))
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
        $crate::order::keys::SessionKeys {
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

    /// Validate into a session configuration; `${VAR}` in `username` and `password` is
    /// interpolated through `redactor`, which keeps the values secret.
    ///
    /// # Errors
    /// A [`KeyError`] naming the key.
    pub fn validate(&self, redactor: &mut Redactor) -> Result<SessionConfig, KeyError> {
        let version = Version::parse(self.fix_version.unwrap_or("4.4"))
            .map_err(|m| KeyError::new("fix_version", m))?;
        let comp_id = |key: &str, value: Option<&str>| -> Result<String, KeyError> {
            match value {
                Some(c) if !c.is_empty() && !c.contains(['|', '\u{1}', '=']) => Ok(c.to_string()),
                Some(_) => Err(KeyError::new(
                    key,
                    "expected a non-empty CompID without |, = or SOH",
                )),
                None => Err(KeyError::new(
                    key,
                    "required with transport = \"fix\" (the CompID agreed with the counterparty)",
                )),
            }
        };
        let sender_comp_id = comp_id("sender_comp_id", self.sender_comp_id)?;
        let target_comp_id = comp_id("target_comp_id", self.target_comp_id)?;
        let heartbeat = match self.heartbeat {
            Some(h) => parse_duration(h).map_err(|m| KeyError::new("heartbeat", m))?,
            None => Duration::from_secs(30),
        };
        if heartbeat.as_secs() == 0 || heartbeat.subsec_nanos() != 0 {
            return Err(KeyError::new(
                "heartbeat",
                "expected whole seconds of at least 1s (HeartBtInt(108) is in seconds)",
            ));
        }
        let mut secret = |key: &str, value: Option<&str>| {
            value.map(|t| interpolate(redactor, key, t)).transpose()
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

/// A FIX order template at `key` (`${VAR}` interpolated through `redactor`): `tag=value`
/// fields separated by `|`, with ClOrdID(11) holding a placeholder and no header tag. Returns
/// it with its tags.
///
/// # Errors
/// A [`KeyError`] at `key`.
pub fn order_template(
    redactor: &mut Redactor,
    key: &str,
    text: Option<&str>,
) -> Result<(Template, Vec<u32>), KeyError> {
    let text = text.ok_or_else(|| {
        KeyError::new(
            key,
            "required with transport = \"fix\": the NewOrderSingle fields, e.g. \"11={{seq}}|55=NIFTY|54=1|38=1|40=1\"",
        )
    })?;
    let text = interpolate(redactor, key, text)?;
    let tags = codec::template_tags(&text).map_err(|m| KeyError::new(key, m))?;
    order_tags(key, &tags, &text)?;
    let template = Template::parse(&text).map_err(|m| KeyError::new(key, m))?;
    Ok((template, tags))
}

/// The order template's tags: ClOrdID(11) with a placeholder (each order needs its own), and
/// no header or trailer tag (the session writes those).
fn order_tags(key: &str, tags: &[u32], text: &str) -> Result<(), KeyError> {
    const SESSION_TAGS: [u32; 9] = [8, 9, 10, 34, 35, 43, 49, 52, 56];
    if let Some(t) = tags.iter().find(|t| SESSION_TAGS.contains(t)) {
        return Err(KeyError::new(
            key,
            format!("tag {t} is a header or trailer field the session writes; remove it"),
        ));
    }
    let cl_ord_id = text
        .split('|')
        .find_map(|f| f.strip_prefix("11="))
        .ok_or_else(|| {
            KeyError::new(
                key,
                "expected ClOrdID(11), e.g. 11={{seq}}: ExecutionReports are matched to orders by it",
            )
        })?;
    if !cl_ord_id.contains("{{") {
        return Err(KeyError::new(
            key,
            "ClOrdID(11) must differ per order: use a placeholder such as 11={{seq}} or 11={{uuid}}",
        ));
    }
    Ok(())
}
