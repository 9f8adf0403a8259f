//! Field errors and key refusal: the vocabulary every table of a checklist is validated with
//! (probe tables, `[[service]]`, `[[monitor]]`, order checks). A leaf: it knows units and
//! `${VAR}` interpolation ([`crate::units`]) and nothing else of ours, so any layer may use it.

use crate::units::{Interpolated, Redactor};

/// A configuration error inside one table (a probe table, a service, a monitor): the key
/// relative to that table, dotted (e.g. `headers.Authorization`, `step[2].within`), and what
/// was expected. The checklist loader turns it into file:line:col.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// Dotted key path relative to the table; empty for the table itself.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl FieldError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Shared state for validating a checklist's tables: collects interpolated secrets.
#[derive(Debug, Default)]
pub struct Validator {
    /// Secrets seen so far.
    pub redactor: Redactor,
    /// The item-level `during` of the item whose probe is being validated, for probes whose
    /// behaviour depends on it (memory sizes its window and warm-up from the load item).
    pub item_during: Option<String>,
}

impl Validator {
    /// Interpolate `${VAR}` in the value of `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when a variable is unset.
    pub fn interpolate(&mut self, key: &str, text: &str) -> Result<Interpolated, FieldError> {
        self.redactor
            .interpolate(text)
            .map_err(|m| FieldError::new(key, m))
    }

    /// Interpolate `${VAR}` in an http:// or https:// URL at `key` and parse it.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when a variable is unset, the URL does not parse or its
    /// scheme is another.
    pub fn http_url(
        &mut self,
        key: &str,
        text: &str,
    ) -> Result<(Interpolated, reqwest::Url), FieldError> {
        let url = self.interpolate(key, text)?;
        let parsed = reqwest::Url::parse(&url.value)
            .map_err(|e| FieldError::new(key, format!("invalid URL: {e}")))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(FieldError::new(key, "expected an http:// or https:// URL"));
        }
        Ok((url, parsed))
    }

    /// Parse a humantime duration at `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when malformed.
    pub fn duration(&self, key: &str, text: &str) -> Result<std::time::Duration, FieldError> {
        crate::units::parse_duration(text).map_err(|m| FieldError::new(key, m))
    }

    /// Parse a byte size at `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when malformed.
    pub fn bytes(&self, key: &str, text: &str) -> Result<u64, FieldError> {
        crate::units::parse_bytes(text).map_err(|m| FieldError::new(key, m))
    }

    /// Compile a regular expression at `key`.
    ///
    /// # Errors
    /// A [`FieldError`] at `key` when the pattern does not compile.
    pub fn regex(&self, key: &str, pattern: &str) -> Result<regex::Regex, FieldError> {
        regex::Regex::new(pattern)
            .map_err(|e| FieldError::new(key, format!("invalid regular expression: {e}")))
    }
}

/// Refuse the first key that is set among `keys` (`(key, is set)`), with `message` at it: keys
/// that belong to another mode of the same table.
///
/// # Errors
/// A [`FieldError`] at the first key set.
pub fn refuse_keys(keys: &[(&str, bool)], message: &str) -> Result<(), FieldError> {
    match keys.iter().find(|(_, set)| *set) {
        Some((key, _)) => Err(FieldError::new(*key, message)),
        None => Ok(()),
    }
}

/// Deserialize a table as written into `T`, keeping where an error is: its key is the dotted
/// path inside the table (e.g. `step[1]` for an unknown key in the second step, `duration` for
/// a number where text was expected) and its message is serde's wording, for the checklist
/// loader to reword and place. Used where a table's type depends on one of its keys (a probe's
/// `kind`), which serde's tagged enums would deserialize without the path.
///
/// The table is written back as TOML and read with toml's document deserializer: toml's
/// `Value` deserializer hands dates over as strings, which `toml::value::Datetime` fields
/// (an audit ignore's `expires`) refuse.
///
/// # Errors
/// The first error, at its path.
pub fn deserialize_table<T: serde::de::DeserializeOwned>(
    table: toml::Table,
) -> Result<T, FieldError> {
    let text = toml::to_string(&table).map_err(|e| FieldError::new("", e.to_string()))?;
    let de = toml::Deserializer::parse(&text).map_err(|e| FieldError::new("", e.message()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        FieldError::new(key, e.inner().message())
    })
}

/// Take a tagged table's `kind` out of `table`, one of `kinds`: the tag of a table typed by
/// its kind afterwards (a probe, a monitor check), so that an error inside it keeps its key
/// path, which serde's internally tagged enums lose.
///
/// # Errors
/// At `kind`: not a string, or not one of `kinds` (serde's "unknown variant" wording, with the
/// list); at the table itself when `kind` is missing.
pub fn take_kind(
    table: &mut toml::Table,
    kinds: &'static [&'static str],
) -> Result<String, FieldError> {
    let kind = match table.remove("kind") {
        Some(toml::Value::String(kind)) => kind,
        Some(other) => {
            return Err(FieldError::new(
                "kind",
                format!("invalid type: {}, expected a string", other.type_str()),
            ));
        }
        None => return Err(FieldError::new("", "missing field `kind`")),
    };
    if !kinds.contains(&kind.as_str()) {
        let e = <toml::de::Error as serde::de::Error>::unknown_variant(&kind, kinds);
        return Err(FieldError::new("kind", e.message()));
    }
    Ok(kind)
}

/// A serde path as a dotted key path: `step[2].broker_fault.x` (enum and unknown segments
/// are skipped).
pub fn key_path(path: &serde_path_to_error::Path) -> String {
    let mut key = String::new();
    for seg in path.iter() {
        match seg {
            serde_path_to_error::Segment::Seq { index } => key.push_str(&format!("[{index}]")),
            serde_path_to_error::Segment::Map { key: k } => {
                if !key.is_empty() {
                    key.push('.');
                }
                key.push_str(k);
            }
            serde_path_to_error::Segment::Enum { .. } | serde_path_to_error::Segment::Unknown => {}
        }
    }
    key
}
