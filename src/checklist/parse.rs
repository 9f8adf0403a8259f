//! From text to the raw mirror: TOML syntax, then serde into [`RawChecklist`] with the key path
//! of any error, reworded and placed at its key.

use std::path::Path;

use super::locate::{Locator, Seg, SpanIndex, path_text};
use super::raw::RawChecklist;
use super::types::Checklist;
use super::validate::validate;
use crate::error::{Error, Location, Result};

/// Rewrite serde's wording into ours: `unknown field `x`, expected one of `a`, `b`` becomes
/// `unknown key "x" (expected one of: a, b)`.
fn humanize_serde(message: &str) -> (String, Option<String>) {
    let unknown =
        regex::Regex::new(r"^unknown (field|variant) `([^`]*)`, (expected|there are no)(.*)$")
            .expect("static regex");
    if let Some(c) = unknown.captures(message) {
        let what = if &c[1] == "field" { "key" } else { "value" };
        let name = c[2].to_string();
        let rest = c[4].replace('`', "");
        let rest = rest.trim();
        let expected = if &c[3] == "there are no" {
            "no keys are allowed here".to_string()
        } else {
            let list = rest
                .strip_prefix("one of ")
                .unwrap_or(rest)
                .replace(" or ", ", ");
            format!("expected one of: {list}")
        };
        let key = (what == "key").then(|| name.clone());
        return (format!("unknown {what} \"{name}\" ({expected})"), key);
    }
    let missing = regex::Regex::new(r"^missing field `([^`]*)`$").expect("static regex");
    if let Some(c) = missing.captures(message) {
        return (format!("missing required key \"{}\"", &c[1]), None);
    }
    (message.replace('`', "\""), None)
}

/// Read and validate a checklist file.
///
/// # Errors
/// [`Error::Io`] when unreadable; [`Error::Checklist`] (exit 2) naming file:line:col, the key
/// path and what was expected for any malformed, unknown, duplicate or unresolvable value.
pub fn load(path: &Path) -> Result<Checklist> {
    let bytes = std::fs::read(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::Usage(format!("{}: no such checklist file", path.display()))
        }
        _ => Error::io("reading", path, e),
    })?;
    let text = String::from_utf8(bytes).map_err(|e| Error::Checklist {
        location: Location {
            file: path.to_path_buf(),
            line: 1,
            column: 1,
        },
        message: format!("not valid UTF-8: {e}"),
    })?;
    parse(path, &text)
}

/// Validate checklist text read from `path`.
///
/// # Errors
/// As [`load`].
pub fn parse(path: &Path, text: &str) -> Result<Checklist> {
    let loc = Locator {
        file: path,
        text,
        index: SpanIndex::new(text),
    };
    let de = toml::Deserializer::parse(text).map_err(|e| {
        let offset = e.span().map(|s| s.start).unwrap_or(0);
        Error::Checklist {
            location: loc.location(offset),
            message: format!("invalid TOML: {}", e.message().trim()),
        }
    })?;
    let raw: RawChecklist = serde_path_to_error::deserialize(de).map_err(|e| {
        let mut segs: Vec<Seg> = Vec::new();
        for s in e.path().iter() {
            match s {
                serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let (message, unknown_key) = humanize_serde(e.inner().message());
        let span_offset = e.inner().span().map(|s| s.start);
        match unknown_key {
            // Point at the offending key itself when the file has it at that path.
            Some(k)
                if loc
                    .index
                    .find(&[segs.clone(), vec![Seg::Key(k.clone())]].concat())
                    .is_some() =>
            {
                let mut p = segs.clone();
                p.push(Seg::Key(k));
                let offset = loc.index.find(&p).map(|s| s.start).unwrap_or(0);
                Error::Checklist {
                    location: loc.location(offset),
                    message: format!("{}: {message}", path_text(&segs)),
                }
            }
            _ => {
                let offset = span_offset
                    .or_else(|| loc.index.find(&segs).map(|s| s.start))
                    .unwrap_or(0);
                let shown = path_text(&segs);
                Error::Checklist {
                    location: loc.location(offset),
                    message: if shown.is_empty() {
                        message
                    } else {
                        format!("{shown}: {message}")
                    },
                }
            }
        }
    })?;
    validate(path, text, &loc, raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(Path::new("c.toml"), text).unwrap_err().to_string()
    }

    const HEAD: &str = "[checklist]\nname = \"t\"\n\n";

    #[test]
    fn unknown_probe_key_points_at_the_key() {
        let e = err(&format!(
            "{HEAD}[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\n[item.probe]\nkind = \"env\"\nvars = [\"A\"]\nvarz = 1\n"
        ));
        assert!(
            e.starts_with("c.toml:12:1: item[0].probe: unknown key \"varz\""),
            "{e}"
        );
        assert!(e.contains("expected one of: vars, non_empty"), "{e}");
    }

    #[test]
    fn bad_duration_points_at_the_value_key() {
        let e = err(&format!(
            "{HEAD}[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\n[item.probe]\nkind = \"command\"\ncommand = [\"true\"]\ntimeout = \"10\"\n"
        ));
        assert!(
            e.starts_with("c.toml:12:1: item[0].probe.timeout: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_ids_are_rejected_with_both_places() {
        let item = "[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\nprobe = { kind = \"env\", vars = [\"A\"] }\n";
        let e = err(&format!("{HEAD}{item}{item}"));
        assert!(
            e.starts_with("c.toml:11:1: item[1].id: duplicate id \"a\" (first defined at line 5)"),
            "{e}"
        );
    }

    #[test]
    fn unknown_kind_is_rejected_with_the_known_ones() {
        let e = err(&format!(
            "{HEAD}[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\nprobe = {{ kind = \"telepathy\" }}\n"
        ));
        assert!(e.contains("unknown value \"telepathy\""), "{e}");
        assert!(e.contains("command, http, file, env, host, latency, memory, uptime, coverage, audit, attestation"), "{e}");
    }
}
