//! The `config` probe: values inside a TOML, YAML or JSON file, found by JSON Pointer
//! (RFC 6901), checked against `equals`, `min`, `max` or `matches` (risk limits, trading
//! calendars, modes).
//!
//! Every format is read into one JSON value (TOML dates become their RFC 3339 text), so a
//! pointer means the same thing in each. A key that is missing fails its check; a file that
//! cannot be read or parsed is an `error` naming file:line:col where the parser gives one.
//! `matches` shows only whether the value matched, never the value.

use std::path::PathBuf;

use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::{FieldError, ProbeContext, Validator, compare_range};
use crate::model::{Check, ProbeOutput};

/// `kind = "config"`: check values in a configuration file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawConfigProbe {
    /// The file, relative to the checklist's folder.
    pub path: String,
    /// `toml`, `yaml` or `json`. Default: from the extension (`.toml`, `.yaml`/`.yml`,
    /// `.json`).
    pub format: Option<String>,
    /// The checks, e.g. `[{ pointer = "/risk/max_position", max = 100 }]`.
    pub keys: Vec<RawKeyCheck>,
}

/// One value and its expectation.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawKeyCheck {
    /// JSON Pointer (RFC 6901) to the value, e.g. `"/risk/max_daily_loss"`, `"/venues/0/name"`.
    pub pointer: String,
    /// The value must equal this (numbers compare by value: 1 equals 1.0).
    pub equals: Option<Value>,
    /// The value is a number at least this.
    pub min: Option<f64>,
    /// The value is a number at most this.
    pub max: Option<f64>,
    /// The value (a string, or a number or boolean as text) matches this regular expression;
    /// shown as matches or not, never the value.
    pub matches: Option<String>,
}

/// The file formats read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Toml,
    Yaml,
    Json,
}

#[derive(Debug, Clone)]
struct KeyCheck {
    pointer: String,
    equals: Option<Value>,
    min: Option<f64>,
    max: Option<f64>,
    matches: Option<regex::Regex>,
}

/// A validated `config` probe.
#[derive(Debug, Clone)]
pub struct ConfigProbe {
    path: PathBuf,
    format: Format,
    keys: Vec<KeyCheck>,
}

impl RawConfigProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] naming the key.
    pub fn validate(self, v: &mut Validator) -> Result<ConfigProbe, FieldError> {
        let path = v.interpolate("path", &self.path)?.value;
        let by_name = match self.format.as_deref() {
            Some(f) => f.to_string(),
            None => path
                .rsplit('.')
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase(),
        };
        let format = match by_name.as_str() {
            "toml" => Format::Toml,
            "yaml" | "yml" => Format::Yaml,
            "json" => Format::Json,
            other => {
                let key = if self.format.is_some() {
                    "format"
                } else {
                    "path"
                };
                return Err(FieldError::new(
                    key,
                    format!(
                        "unknown format \"{other}\": expected toml, yaml or json (set format for another extension)"
                    ),
                ));
            }
        };
        if self.keys.is_empty() {
            return Err(FieldError::new(
                "keys",
                "expected at least one { pointer = ..., equals/min/max/matches }",
            ));
        }
        let mut keys = Vec::new();
        for (i, k) in self.keys.into_iter().enumerate() {
            let at = |name: &str| format!("keys[{i}].{name}");
            if !(k.pointer.is_empty() || k.pointer.starts_with('/')) {
                return Err(FieldError::new(
                    at("pointer"),
                    "expected a JSON Pointer such as \"/risk/max_position\" (RFC 6901: starts with /)",
                ));
            }
            if k.equals.is_none() && k.min.is_none() && k.max.is_none() && k.matches.is_none() {
                return Err(FieldError::new(
                    format!("keys[{i}]"),
                    "expected a check: equals, min, max or matches",
                ));
            }
            keys.push(KeyCheck {
                matches: k
                    .matches
                    .as_deref()
                    .map(|m| v.regex(&at("matches"), m))
                    .transpose()?,
                pointer: k.pointer,
                equals: k.equals,
                min: k.min,
                max: k.max,
            });
        }
        Ok(ConfigProbe {
            path: PathBuf::from(path),
            format,
            keys,
        })
    }
}

/// `line:col` (1-based) of byte `offset` in `text`.
fn line_col(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    format!("{line}:{col}")
}

/// Parse `text` as `format` into JSON; the error names `shown:line:col` where known.
fn parse(text: &str, format: Format, shown: &str) -> Result<Value, String> {
    match format {
        Format::Json => serde_json::from_str(text)
            .map_err(|e| format!("{shown}:{}:{}: invalid JSON: {e}", e.line(), e.column())),
        Format::Yaml => serde_norway::from_str(text).map_err(|e| match e.location() {
            Some(l) => format!("{shown}:{}:{}: invalid YAML: {e}", l.line(), l.column()),
            None => format!("{shown}: invalid YAML: {e}"),
        }),
        Format::Toml => {
            let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
                let at = e
                    .span()
                    .map(|s| format!(":{}", line_col(text, s.start)))
                    .unwrap_or_default();
                format!("{shown}{at}: invalid TOML: {}", e.message())
            })?;
            Ok(toml_to_json(toml::Value::Table(table)))
        }
    }
}

/// A TOML value as JSON; dates and times become their RFC 3339 text.
fn toml_to_json(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.into_iter().map(|(k, v)| (k, toml_to_json(v))).collect())
        }
    }
}

/// Whether `a` equals `b`, numbers by value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

/// A value as people read it: strings without quotes.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl KeyCheck {
    /// This key's checks on `doc`, values redacted.
    fn checks(&self, doc: &Value, ctx: &ProbeContext, o: &mut ProbeOutput) {
        let name = if self.pointer.is_empty() {
            "/"
        } else {
            self.pointer.as_str()
        };
        let Some(value) = doc.pointer(&self.pointer) else {
            o.checks.push(Check::new(name, "present", "missing", false));
            return;
        };
        let shown = ctx.redactor.redact(&text(value));
        if let Some(want) = &self.equals {
            let expected = format!("= {}", ctx.redactor.redact(&text(want)));
            o.checks
                .push(Check::new(name, expected, shown.clone(), same(value, want)));
        }
        if self.min.is_some() || self.max.is_some() {
            match value.as_f64() {
                Some(n) => {
                    let (expected, ok) = compare_range(self.min, self.max, n);
                    o.checks.push(Check::new(name, expected, shown.clone(), ok));
                }
                None => o.checks.push(Check::new(
                    name,
                    "a number",
                    format!("not a number: {shown}"),
                    false,
                )),
            }
        }
        if let Some(re) = &self.matches {
            let ok = match value {
                Value::String(_) | Value::Number(_) | Value::Bool(_) => re.is_match(&text(value)),
                _ => false,
            };
            let measured = if ok { "matches" } else { "does not match" };
            o.checks
                .push(Check::new(name, format!("matches /{re}/"), measured, ok));
        }
    }
}

impl ConfigProbe {
    /// Read the file and check the keys.
    pub fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        let shown = self.path.display().to_string();
        let text = match std::fs::read_to_string(ctx.resolve(&self.path)) {
            Ok(t) => t,
            Err(e) => return ProbeOutput::error(format!("{shown}: cannot read: {e}")),
        };
        let doc = match parse(&text, self.format, &shown) {
            Ok(d) => d,
            Err(e) => return ProbeOutput::error(ctx.redactor.redact(&e)),
        };
        let mut o = ProbeOutput::default();
        for k in &self.keys {
            k.checks(&doc, ctx, &mut o);
        }
        o.measure("keys", self.keys.len() as u64);
        let failed = o.failed_checks();
        o.summary = if failed.is_empty() {
            format!("{shown}: {} checks hold", o.checks.len())
        } else {
            let list: Vec<String> = o
                .checks
                .iter()
                .filter(|c| !c.passed)
                .map(|c| format!("{} {} (expected {})", c.name, c.measured, c.expected))
                .collect();
            format!("{shown}: {}", list.join("; "))
        };
        o
    }
}

crate::probe::probe_kind!(ConfigProbe, RawConfigProbe, blocking);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_format_reads_to_the_same_pointers_and_errors_name_line_and_column() {
        let toml = "[risk]\nmax_position = 100\nstart = 2026-01-02\n";
        let yaml = "risk:\n  max_position: 100\n  start: \"2026-01-02\"\n";
        let json = r#"{"risk": {"max_position": 100, "start": "2026-01-02"}}"#;
        for (text, f) in [
            (toml, Format::Toml),
            (yaml, Format::Yaml),
            (json, Format::Json),
        ] {
            let doc = parse(text, f, "c").unwrap();
            assert_eq!(doc.pointer("/risk/max_position"), Some(&Value::from(100)));
            assert_eq!(doc.pointer("/risk/start"), Some(&Value::from("2026-01-02")));
        }
        let e = parse("a = 1\nb = = 2\n", Format::Toml, "c.toml").unwrap_err();
        assert!(e.starts_with("c.toml:2:"), "{e}");
        let e = parse("{\n  \"a\": ,\n}", Format::Json, "c.json").unwrap_err();
        assert!(e.starts_with("c.json:2:"), "{e}");
        let e = parse("a: [1, 2\nb: 3\n", Format::Yaml, "c.yaml").unwrap_err();
        assert!(e.starts_with("c.yaml:"), "{e}");
    }
}
