//! From text to the raw mirror: TOML syntax, then serde into [`RawChecklist`] with the key path
//! of any error, reworded and placed at its key.

use std::path::Path;

use super::hint;
use super::locate::{Locator, Seg, SpanIndex, key, parse_key_path};
use super::raw::RawChecklist;
use super::types::Checklist;
use super::validate::validate;
use crate::error::{Error, Location, Result};
use crate::probe::RawProbe;
use crate::soak::check::RawMonitorCheck;

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
    let mut raw: RawChecklist = serde_path_to_error::deserialize(de).map_err(|e| {
        let mut segs: Vec<Seg> = Vec::new();
        for s in e.path().iter() {
            match s {
                serde_path_to_error::Segment::Seq { index } => segs.push(Seg::Index(*index)),
                serde_path_to_error::Segment::Map { key } => segs.push(Seg::Key(key.clone())),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        let span = e.inner().span().map(|s| s.start);
        serde_error(&loc, segs, e.inner().message(), span)
    })?;
    let probes = typed_probes(&loc, &mut raw)?;
    let checks = typed_monitor_checks(&loc, &mut raw)?;
    validate(path, text, &loc, raw, probes, checks)
}

/// Each item's probe table typed by its `kind`, in item order; an error keeps its key path
/// inside the table (a key in the second `[[item.probe.step]]` is placed at its own line).
fn typed_probes(loc: &Locator<'_>, raw: &mut RawChecklist) -> Result<Vec<RawProbe>> {
    let mut probes = Vec::with_capacity(raw.item.len());
    for (i, it) in raw.item.iter_mut().enumerate() {
        let table = std::mem::take(&mut it.probe);
        probes.push(RawProbe::from_table(table).map_err(|fe| {
            let mut segs = vec![key("item"), Seg::Index(i), key("probe")];
            segs.extend(parse_key_path(&fe.key));
            serde_error(loc, segs, &fe.message, None)
        })?);
    }
    Ok(probes)
}

/// Each monitor's check table typed by its `kind`, in monitor order, as [`typed_probes`] does
/// for probes.
fn typed_monitor_checks(loc: &Locator<'_>, raw: &mut RawChecklist) -> Result<Vec<RawMonitorCheck>> {
    let mut checks = Vec::with_capacity(raw.monitor.len());
    for (i, m) in raw.monitor.iter_mut().enumerate() {
        let table = std::mem::take(&mut m.check);
        checks.push(RawMonitorCheck::from_table(table).map_err(|fe| {
            let mut segs = vec![key("monitor"), Seg::Index(i), key("check")];
            segs.extend(parse_key_path(&fe.key));
            serde_error(loc, segs, &fe.message, None)
        })?);
    }
    Ok(checks)
}

/// serde's `message` about the value at `segs` as our error: reworded, and placed at the
/// unknown key it names, else where the deserializer saw it (`span`, when it knows), else at
/// the deepest part of `segs` in the file.
fn serde_error(loc: &Locator<'_>, mut segs: Vec<Seg>, message: &str, span: Option<usize>) -> Error {
    let find = |segs: &[Seg]| loc.index.find(segs).map(|s| s.start);
    if let Some(hint) = hint::unquoted_number(loc, &segs, message) {
        let offset = span.or_else(|| find(&segs)).unwrap_or(0);
        return loc.error(offset, &segs, hint);
    }
    let (message, unknown_key) = humanize_serde(message);
    match unknown_key {
        // Point at the offending key itself; the message names it.
        Some(k) => {
            if segs.last() == Some(&Seg::Key(k.clone())) {
                segs.pop();
            }
            let shown = segs.clone();
            segs.push(Seg::Key(k));
            loc.error(find(&segs).or(span).unwrap_or(0), &shown, message)
        }
        None => {
            let offset = span.or_else(|| find(&segs)).unwrap_or(0);
            loc.error(offset, &segs, message)
        }
    }
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
            e.starts_with("c.toml:12:1: item \"a\": probe: unknown key \"varz\""),
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
            e.starts_with("c.toml:12:1: item \"a\": probe.timeout: invalid duration"),
            "{e}"
        );
    }

    #[test]
    fn a_number_for_a_duration_says_how_to_write_it() {
        let e = err(
            "[checklist]\nname = \"t\"\ntimeout = 600\n\n[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\nprobe = { kind = \"env\", vars = [\"A\"] }\n",
        );
        assert!(
            e.starts_with("c.toml:3:11: checklist.timeout: expected a duration with a unit, in quotes: timeout = \"600s\""),
            "{e}"
        );
        let e = err(&format!(
            "{HEAD}[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\n[item.probe]\nkind = \"memory\"\npid = 1\nmax_growth = \"1MiB/h\"\nmax_rss = 512\n"
        ));
        assert!(
            e.starts_with("c.toml:13:1: item \"a\": probe.max_rss: expected a size with a unit, in quotes (e.g. max_rss = \"512MiB\"), not max_rss = 512"),
            "{e}"
        );
    }

    #[test]
    fn duplicate_ids_are_rejected_with_both_places() {
        let item = "[[item]]\nid = \"a\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\nprobe = { kind = \"env\", vars = [\"A\"] }\n";
        let e = err(&format!("{HEAD}{item}{item}"));
        assert!(
            e.starts_with(
                "c.toml:11:1: item \"a\": id: duplicate id \"a\" (first defined at line 5)"
            ),
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
