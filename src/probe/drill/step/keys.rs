//! Reading one `[[item.probe.step]]` table into the typed keys of its kind.
//!
//! A step's kind is told by one key: an action's own key (`stop = "agent"`) or `expect =
//! "<kind>"`; a few actions are told apart further by a second key (`proxy` by `fault`). Each
//! kind's keys are a struct with `deny_unknown_fields`, and the keys every step or every
//! expectation takes (`name`, `needs`; `within`, `hold`, …) are structs of their own, taken out
//! of the table first. serde's tagged enums do not combine with `deny_unknown_fields` and
//! `flatten`, so the table is read here in those parts: [`Reader::take`] a shared part,
//! [`Reader::select`] the kind, [`Reader::finish`] its keys.
//!
//! Every error is a [`FieldError`] at the key path inside the step (`hold`,
//! `broker_fault.latency`, `command[0]`), which the checklist loader turns into the file, line
//! and column of that key. A key the kind does not take is refused naming the keys it does
//! take; those lists come from the structs themselves ([`keys_of`]), not from lists kept by
//! hand.

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::{self, DeserializeOwned, Visitor};
use serde_json::{Value, json};

use crate::probe::FieldError;

/// How a step kind is recognised: `key` is present, and when `tag` is `Some((tag_key,
/// value))`, `tag_key` has that string value (`expect = "http"`, `fault = "down"`). A tag key is
/// only a tag: it is taken out of the table before the kind's keys are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Select {
    /// The key a step of this kind has.
    pub key: &'static str,
    /// The key and value that tell it from other kinds with the same `key`.
    pub tag: Option<(&'static str, &'static str)>,
}

impl Select {
    /// How messages name such a step before `needs`: `stop`, `expect = "http"`, `proxy with
    /// fault = "down"`.
    pub(crate) fn doing(&self) -> String {
        match self.tag {
            None => self.key.to_string(),
            Some((t, v)) if t == self.key => format!("{t} = \"{v}\""),
            Some((t, v)) => format!("{} with {t} = \"{v}\"", self.key),
        }
    }

    /// How messages name such a step as a thing: a `stop` step, an `expect = "http"` step, a
    /// `proxy` step with `fault = "down"`.
    fn a_step(&self) -> String {
        let (head, tail) = match self.tag {
            None => (self.key.to_string(), String::new()),
            Some((t, v)) if t == self.key => (format!("{t} = \"{v}\""), String::new()),
            Some((t, v)) => (self.key.to_string(), format!(" with `{t} = \"{v}\"`")),
        };
        let article = match head.chars().next() {
            Some('a' | 'e' | 'i' | 'o' | 'u') => "an",
            _ => "a",
        };
        format!("{article} `{head}` step{tail}")
    }
}

/// One step kind of a registry: how it is recognised, read and described in the schema.
pub(crate) struct Kind<T> {
    /// How it is recognised.
    pub select: Select,
    /// Read its keys (the shared parts are already taken).
    pub read: fn(&mut Reader) -> Result<T, FieldError>,
    /// Its own keys.
    pub keys: fn() -> &'static [&'static str],
    /// Its own keys' schema, without the shared parts and the tag.
    pub schema: fn(&mut SchemaGenerator) -> Schema,
    /// Whether it is an expectation (it takes the expectation keys too).
    pub expectation: bool,
}

/// A step table while its parts are taken out of it.
pub(crate) struct Reader {
    table: toml::Table,
    /// The kind, once selected.
    select: Option<Select>,
    /// The keys of the shared parts taken so far, in the order taken.
    taken: Vec<&'static [&'static str]>,
}

impl Reader {
    /// Start reading `table`.
    pub(crate) fn new(table: toml::Table) -> Reader {
        Reader {
            table,
            select: None,
            taken: Vec::new(),
        }
    }

    /// How messages name the step: its kind once known, else "a step".
    fn doing(&self) -> String {
        self.select
            .map_or_else(|| "a step".to_string(), |s| s.doing())
    }

    /// Take the keys of `T` out of the table and read them: a part every step (or every
    /// expectation) has.
    pub(crate) fn take<T: DeserializeOwned>(&mut self) -> Result<T, FieldError> {
        let keys = keys_of::<T>();
        self.taken.push(keys);
        let part = keys
            .iter()
            .filter_map(|k| self.table.remove_entry(*k))
            .collect();
        read(part, &self.doing())
    }

    /// Which of `kinds` the step is, with its tag key taken out; then read it.
    ///
    /// # Errors
    /// No kind's key, the keys of two kinds, a tag that is missing, not a string or unknown,
    /// and the errors of reading the kind's keys.
    pub(crate) fn select<T>(&mut self, kinds: &[Kind<T>]) -> Result<T, FieldError> {
        let mut keys: Vec<&'static str> = Vec::new();
        for k in kinds {
            if !keys.contains(&k.select.key) {
                keys.push(k.select.key);
            }
        }
        let present: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| self.table.contains_key(*k))
            .collect();
        let key = match present.as_slice() {
            [one] => *one,
            // An expectation may take a key that is also an action's (`log` reads a
            // `command`'s output): then `expect` decides.
            several if self.expectation_takes(kinds, several) => "expect",
            [] => return Err(FieldError::new("", expected_one(kinds))),
            [first, second, ..] => {
                return Err(FieldError::new(
                    *second,
                    format!(
                        "a step does one thing: {first} and {second} exclude each other; split them into two steps"
                    ),
                ));
            }
        };
        let candidates: Vec<&Kind<T>> = kinds.iter().filter(|k| k.select.key == key).collect();
        let kind = match candidates[0].select.tag {
            None => candidates[0],
            Some((tag, _)) => self.tagged(key, tag, &candidates)?,
        };
        self.select = Some(kind.select);
        if let Some((tag, _)) = kind.select.tag {
            self.table.remove(tag);
        }
        (kind.read)(self)
    }

    /// Whether the step has `expect` naming a kind whose own keys include every other key of
    /// `present`.
    fn expectation_takes<T>(&self, kinds: &[Kind<T>], present: &[&str]) -> bool {
        let Some(toml::Value::String(value)) = self.table.get("expect") else {
            return false;
        };
        kinds
            .iter()
            .find(|k| k.select.key == "expect" && k.select.tag == Some(("expect", value.as_str())))
            .is_some_and(|k| {
                let own = (k.keys)();
                present.iter().all(|p| *p == "expect" || own.contains(p))
            })
    }

    /// The one of `candidates` (all with `key`) whose `tag` has the step's value.
    fn tagged<'k, T>(
        &self,
        key: &str,
        tag: &str,
        candidates: &[&'k Kind<T>],
    ) -> Result<&'k Kind<T>, FieldError> {
        let values: Vec<&str> = candidates
            .iter()
            .filter_map(|k| k.select.tag.map(|(_, v)| v))
            .collect();
        let noun = match () {
            _ if key == "expect" => "expectation".to_string(),
            _ if key == tag => format!("{key} kind"),
            _ => format!("{key} {tag}"),
        };
        let value = match self.table.get(tag) {
            None => return Err(FieldError::new(tag, format!("{key} needs `{tag}`"))),
            Some(toml::Value::String(s)) => s.as_str(),
            Some(other) => {
                return Err(FieldError::new(
                    tag,
                    format!(
                        "expected a string, one of {}; found {}",
                        or_list(&values),
                        other.type_str()
                    ),
                ));
            }
        };
        candidates
            .iter()
            .find(|k| k.select.tag.is_some_and(|(_, v)| v == value))
            .copied()
            .ok_or_else(|| {
                FieldError::new(
                    tag,
                    format!("unknown {noun} \"{value}\": expected {}", or_list(&values)),
                )
            })
    }

    /// Read what is left of the table as the keys of `K`, refusing any key `K` does not have
    /// with the list of the keys this step takes.
    pub(crate) fn finish<K: DeserializeOwned>(&mut self) -> Result<K, FieldError> {
        // The kind's keys are read only from what the shared parts and the tag left.
        let own = keys_of::<K>();
        if let Some(extra) = self.table.keys().find(|k| !own.contains(&k.as_str())) {
            let select = self.select.expect("selected before its keys are read");
            return Err(FieldError::new(
                extra.as_str(),
                format!(
                    "`{extra}` does not apply to {} (it takes: {})",
                    select.a_step(),
                    self.takes(own).join(", ")
                ),
            ));
        }
        read(std::mem::take(&mut self.table), &self.doing())
    }

    /// Every key the step takes: its kind's own keys with the tag after the kind's key, then
    /// the shared parts, the last taken first.
    fn takes(&self, own: &[&'static str]) -> Vec<&'static str> {
        let mut out = Vec::new();
        let tag = self.select.and_then(|s| s.tag).map(|(t, _)| t);
        let key = self.select.map(|s| s.key);
        if own.first().copied() != key {
            out.extend(tag);
        }
        for (i, k) in own.iter().enumerate() {
            out.push(*k);
            if i == 0 && Some(*k) == key {
                out.extend(tag);
            }
        }
        for part in self.taken.iter().rev() {
            out.extend(part.iter().copied());
        }
        out
    }
}

/// `expected one action (stop, start, …) or expect = "<kind>"`.
fn expected_one<T>(kinds: &[Kind<T>]) -> String {
    let mut actions: Vec<&str> = Vec::new();
    for k in kinds.iter().filter(|k| !k.expectation) {
        if !actions.contains(&k.select.key) {
            actions.push(k.select.key);
        }
    }
    format!(
        "expected one action ({}) or expect = \"<kind>\"",
        actions.join(", ")
    )
}

/// `a, b or c`.
fn or_list(values: &[&str]) -> String {
    match values {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// Deserialize `part` into `T`, keeping the key path of an error: a value of the wrong type
/// at `hold`, an unknown key inside `broker_fault`, a missing key the kind needs.
fn read<T: DeserializeOwned>(part: toml::Table, doing: &str) -> Result<T, FieldError> {
    serde_path_to_error::deserialize(toml::Value::Table(part)).map_err(|e| {
        let mut key = crate::field::key_path(e.path());
        let (at, message) = humanize(e.inner().message(), doing);
        // serde_path_to_error's path ends at an unknown key already, not at a missing one.
        if let Some(k) = at.filter(|k| key.rsplit('.').next() != Some(k.as_str())) {
            if !key.is_empty() {
                key.push('.');
            }
            key.push_str(&k);
        }
        FieldError::new(key, message)
    })
}

/// serde's wording in ours, and the key the error is at when serde names it in the message
/// (an unknown or a missing key) rather than in the path.
fn humanize(message: &str, doing: &str) -> (Option<String>, String) {
    let quoted = |s: &str| s.trim_matches('`').to_string();
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (name, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let name = quoted(name);
        let expected = expected
            .trim_start_matches("expected one of ")
            .trim_start_matches("expected ")
            .replace('`', "");
        let expected = match expected.as_str() {
            "" | "there are no fields" => "no keys are allowed here".to_string(),
            list => format!("expected one of: {}", list.replace(" or ", ", ")),
        };
        return (
            Some(name.clone()),
            format!("unknown key \"{name}\" ({expected})"),
        );
    }
    if let Some(name) = message.strip_prefix("missing field ") {
        let name = quoted(name);
        return (Some(name.clone()), format!("{doing} needs `{name}`"));
    }
    let message = message.replace('`', "\"");
    let message = [
        ("expected i32", "expected an integer"),
        ("expected i64", "expected an integer"),
        ("expected u32", "expected a non-negative integer"),
        ("expected u64", "expected a non-negative integer"),
        ("expected f64", "expected a number"),
        ("expected a map", "expected a table"),
        ("expected a sequence", "expected an array"),
    ]
    .iter()
    .fold(message, |m, (from, to)| match m.strip_suffix(from) {
        Some(head) => format!("{head}{to}"),
        None => m,
    });
    (None, message)
}

/// The keys a struct deriving `Deserialize` reads, as its derive lists them (renamed keys as
/// written). Empty for a type that is not a struct.
pub(crate) fn keys_of<T: DeserializeOwned>() -> &'static [&'static str] {
    let mut names = FieldNames(None);
    let _ = T::deserialize(&mut names);
    names.0.unwrap_or(&[])
}

/// A deserializer that only learns the field names a struct asks for.
struct FieldNames(Option<&'static [&'static str]>);

impl<'de> de::Deserializer<'de> for &mut FieldNames {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        Err(de::Error::custom("not a struct"))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        self.0 = Some(fields);
        Err(de::Error::custom("field names only"))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The schema of one step kind: its own keys, its tag as a constant, the keys of `shared`
/// parts, and a title naming how the step is written.
pub(crate) fn kind_schema<T>(
    g: &mut SchemaGenerator,
    kind: &Kind<T>,
    shared: &[fn(&mut SchemaGenerator) -> Schema],
) -> Schema {
    let mut schema = (kind.schema)(g);
    let object = schema.ensure_object();
    object.insert("title".into(), json!(kind.select.doing()));
    if let Some((tag, value)) = kind.select.tag {
        add_keys(
            object,
            json!({
                "properties": { tag: { "const": value } },
                "required": [tag],
            }),
        );
    }
    for part in shared {
        add_keys(object, part(g).to_value());
    }
    schema
}

/// Add the `properties` and `required` of `part` to `object`.
fn add_keys(object: &mut serde_json::Map<String, Value>, part: Value) {
    if let Some(Value::Object(props)) = part.get("properties") {
        let into = object
            .entry("properties")
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("properties is an object");
        for (k, v) in props {
            into.insert(k.clone(), v.clone());
        }
    }
    if let Some(Value::Array(required)) = part.get("required") {
        let into = object
            .entry("required")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("required is an array");
        into.extend(required.iter().cloned());
    }
}

/// The schema of `T` as a function, for [`Kind::schema`] and [`kind_schema`]'s shared parts.
pub(crate) fn schema_of<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    T::json_schema(g)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Two {
        a: String,
        #[serde(rename = "for")]
        b: Option<u64>,
    }

    #[test]
    fn the_keys_of_a_struct_are_its_fields_as_written() {
        assert_eq!(keys_of::<Two>(), ["a", "for"]);
        assert!(keys_of::<String>().is_empty());
    }

    #[test]
    fn errors_keep_the_key_path_and_read_as_ours() {
        let table: toml::Table = toml::from_str("a = 1").unwrap();
        let e = read::<Two>(table, "stop").unwrap_err();
        assert_eq!(e.key, "a");
        assert_eq!(e.message, "invalid type: integer \"1\", expected a string");
        let e = read::<Two>(toml::Table::new(), "stop").unwrap_err();
        assert_eq!(
            (e.key.as_str(), e.message.as_str()),
            ("a", "stop needs `a`")
        );
    }
}
