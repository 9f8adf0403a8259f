//! The canonical report body that sign-off signatures cover, and its SHA-256 digest.
//!
//! The body is the *JSON value* of `report.json` with `signoff.signatures` removed, serialized
//! canonically. Hashing the value parsed from the file — not a typed struct loaded from it —
//! means every key in the file counts: a key added after signing changes the digest even when
//! the report model does not know it (and sign-off's `load_report` rejects such keys anyway).
//!
//! Canonical form, after RFC 8785 (JSON Canonicalization Scheme, JCS):
//! - no insignificant whitespace;
//! - object members sorted by key, compared by Unicode code point (UTF-8 byte order; JCS
//!   compares UTF-16 code units, which differs only for keys mixing characters above U+FFFF
//!   with characters in U+E000–U+FFFF — report keys are ASCII);
//! - strings as serde_json writes them, which matches JCS: `"` and `\` escaped, `\b \f \n \r
//!   \t` short escapes, other control characters as lowercase `\u00xx`, everything else
//!   literal UTF-8;
//! - numbers as serde_json writes them: integers in decimal, other numbers as the shortest
//!   representation that round-trips (ryu). Unlike JCS, a float with an integral value keeps
//!   its fraction (`7.0`, not `7`), so `7` and `7.0` hash differently: stricter, never weaker.
//!
//! The same function serves `prodready sign`, `prodready verify` and the digest printed in
//! `report.md` ([`super::Report::body_sha256`]), so there is one definition. It lives with the
//! report it digests: sign-off depends on the report, never the reverse.

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Serialize `value` canonically (see the module docs) into UTF-8 bytes.
pub fn canonical_json(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value(value, &mut out);
    out
}

fn write_value(value: &Value, out: &mut Vec<u8>) {
    write_value_skipping(value, out, &[]);
}

/// Write `value`, leaving out the member at the object path `skip` (e.g. `["signoff",
/// "signatures"]`) — the same bytes as removing it first, without copying the value.
fn write_value_skipping(value: &Value, out: &mut Vec<u8>, skip: &[&str]) {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            if let [last] = skip {
                keys.retain(|k| k.as_str() != *last);
            }
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("strings serialize");
                out.push(b':');
                match skip {
                    [first, rest @ ..] if !rest.is_empty() && k.as_str() == *first => {
                        write_value_skipping(&map[k], out, rest);
                    }
                    _ => write_value(&map[k], out),
                }
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_value(v, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("scalars serialize"),
    }
}

/// The report body: `report` (the whole `report.json` value) without `signoff.signatures`.
pub fn body(report: &Value) -> Value {
    let mut body = report.clone();
    if let Some(signoff) = body.get_mut("signoff").and_then(Value::as_object_mut) {
        signoff.remove("signatures");
    }
    body
}

/// Canonical bytes of the report body of `report` (the whole `report.json` value): equal to
/// `canonical_json(&body(report))`.
pub fn body_bytes(report: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write_value_skipping(report, &mut out, &["signoff", "signatures"]);
    out
}

/// Lowercase hex SHA-256 (64 characters) of [`body_bytes`]: the digest every sign-off
/// signature covers.
pub fn body_sha256(report: &Value) -> String {
    hex::encode(Sha256::digest(body_bytes(report)))
}

/// The JSON pointer (RFC 6901) of the first place where `a` and `b` differ, or `None` when
/// they are equal. Used to name an unknown key or an altered value in error messages.
pub fn first_difference(a: &Value, b: &Value) -> Option<String> {
    fn walk(a: &Value, b: &Value, path: &mut String) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
                keys.sort();
                keys.dedup();
                for k in keys {
                    let len = path.len();
                    path.push('/');
                    path.push_str(&k.replace('~', "~0").replace('/', "~1"));
                    let found = match (x.get(k), y.get(k)) {
                        (Some(va), Some(vb)) => walk(va, vb, path),
                        _ => Some(path.clone()),
                    };
                    if found.is_some() {
                        return found;
                    }
                    path.truncate(len);
                }
                None
            }
            (Value::Array(x), Value::Array(y)) => {
                for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("/{i}"));
                    if let Some(p) = walk(va, vb, path) {
                        return Some(p);
                    }
                    path.truncate(len);
                }
                (x.len() != y.len()).then(|| format!("{path}/{}", x.len().min(y.len())))
            }
            _ => (a != b).then(|| path.clone()),
        }
    }
    let mut path = String::new();
    walk(a, b, &mut path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keys_are_sorted_and_whitespace_dropped() {
        let v: Value =
            serde_json::from_str(r#"{ "b": [1, 2.5, "x\n"], "a": {"d": null, "c": true} }"#)
                .unwrap();
        assert_eq!(
            String::from_utf8(canonical_json(&v)).unwrap(),
            r#"{"a":{"c":true,"d":null},"b":[1,2.5,"x\n"]}"#
        );
    }

    #[test]
    fn signatures_are_outside_the_body_but_every_other_key_is_inside() {
        let a = json!({"x": 1, "signoff": {"required_roles": ["r"], "signatures": [{"s": 1}]}});
        let b = json!({"x": 1, "signoff": {"required_roles": ["r"], "signatures": []}});
        assert_eq!(body_sha256(&a), body_sha256(&b));
        let c = json!({"x": 1, "extra": 0, "signoff": {"required_roles": ["r"]}});
        assert_ne!(body_sha256(&a), body_sha256(&c));
        // Skipping while writing is the same as removing first; nested "signatures" stay.
        let d = json!({"signatures": 1, "x": {"signoff": {"signatures": 2}}, "signoff": {"signatures": [], "z": 1}});
        assert_eq!(body_bytes(&d), canonical_json(&body(&d)));
        assert_eq!(
            String::from_utf8(body_bytes(&d)).unwrap(),
            r#"{"signatures":1,"signoff":{"z":1},"x":{"signoff":{"signatures":2}}}"#
        );
    }

    #[test]
    fn first_difference_names_the_added_key() {
        let a = json!({"items": [{"id": "a"}]});
        let b = json!({"items": [{"id": "a", "note": 1}]});
        assert_eq!(first_difference(&a, &b).as_deref(), Some("/items/0/note"));
        assert_eq!(first_difference(&a, &a), None);
    }
}
