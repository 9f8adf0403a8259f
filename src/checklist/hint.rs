//! How to write a value that serde rejected for its type. A number where the checklist wants
//! text is nearly always a duration or a size written without its unit and quotes
//! (`duration = 20`); the message then shows the line to write instead (`duration = "20s"`).
//! What the key holds is read from the checklist's own JSON Schema, generated from the raw
//! mirror's documentation: durations are documented as humantime, and sizes with an example.

use serde_json::Value;

use super::locate::{Locator, Seg, key};

/// For serde's "invalid type: integer `20`, expected a string" at `path`: a message saying how
/// to write the value; `None` for any other message.
pub(super) fn unquoted_number(loc: &Locator<'_>, path: &[Seg], message: &str) -> Option<String> {
    let re =
        regex::Regex::new(r"^invalid type: (integer|floating point) `([^`]*)`, expected a string$")
            .expect("static regex");
    let c = re.captures(message)?;
    let (integer, n) = (&c[1] == "integer", &c[2]);
    let Some(Seg::Key(name)) = path.last() else {
        return None;
    };
    let description = description(loc, path).unwrap_or_default();
    let example = quoted_example(&description);
    Some(if description.contains("humantime") {
        if integer {
            format!(
                "expected a duration with a unit, in quotes: {name} = \"{n}s\" (or \"{n}ms\", \"{n}m\"), not {name} = {n}"
            )
        } else {
            format!(
                "expected a duration with a unit, in quotes (e.g. {name} = \"250ms\", \"30s\" or \"5m\"), not {name} = {n}"
            )
        }
    } else if let Some(example) = example.filter(|e| crate::units::parse_bytes(e).is_ok()) {
        format!(
            "expected a size with a unit, in quotes (e.g. {name} = \"{example}\"), not {name} = {n}"
        )
    } else if let Some(example) = example {
        format!("expected text in quotes (e.g. {name} = \"{example}\"), not {name} = {n}")
    } else {
        format!("expected text in quotes: {name} = \"{n}\", not {name} = {n}")
    })
}

/// The first quoted example in a description: `"512MiB"` in ``e.g. `"512MiB"` ``.
fn quoted_example(description: &str) -> Option<&str> {
    let re = regex::Regex::new(r#"`"([^"`]+)"`"#).expect("static regex");
    re.captures(description)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str())
}

/// The schema's description of the key at `path`. Where a table is one of several kinds (a
/// probe, a monitor check), the `kind` written in the file picks the alternative.
fn description(loc: &Locator<'_>, path: &[Seg]) -> Option<String> {
    let root = super::json_schema();
    let mut node = &root;
    for (depth, seg) in path.iter().enumerate() {
        let mut kind_at = path[..depth].to_vec();
        kind_at.push(key("kind"));
        let kind = loc.index.string_at(&kind_at);
        node = shapes(&root, node, kind)
            .into_iter()
            .find_map(|shape| match seg {
                Seg::Key(k) => shape.get("properties")?.get(k),
                Seg::Index(_) => shape.get("items"),
            })?;
    }
    node.get("description")
        .or_else(|| deref(&root, node).get("description"))?
        .as_str()
        .map(str::to_string)
}

/// `node` with its `$ref` followed.
fn deref<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    let target = node
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| root.get("$defs")?.get(name));
    match target {
        Some(t) => deref(root, t),
        None => node,
    }
}

/// `node` and every alternative it allows (`oneOf`, `anyOf`, `allOf`, through `$ref`s),
/// leaving out alternatives tagged with another `kind` than `kind`.
fn shapes<'a>(root: &'a Value, node: &'a Value, kind: Option<&str>) -> Vec<&'a Value> {
    let node = deref(root, node);
    let mut out = vec![node];
    for list in ["oneOf", "anyOf", "allOf"]
        .iter()
        .filter_map(|k| node.get(*k)?.as_array())
    {
        for alt in list {
            let tagged = deref(root, alt)
                .pointer("/properties/kind/const")
                .and_then(Value::as_str);
            if matches!((kind, tagged), (Some(k), Some(t)) if k != t) {
                continue;
            }
            out.extend(shapes(root, alt, kind));
        }
    }
    out
}
