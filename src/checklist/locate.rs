//! Where a key is in the file: key paths ([`Seg`]), a spanned parse of the checklist text
//! (toml_edit) looked up by path, and [`Locator`], which turns a path and a message into an
//! [`Error::Checklist`] at file:line:col.
//!
//! A path reaches into tables, inline tables, arrays and arrays of tables alike, so a key in
//! the second `[[item.probe.step]]` of an item is found at its own line. Entries of the
//! arrays people name (`[[item]]` by `id`, `[[service]]`, `[[monitor]]`, `[[proxy]]` and
//! `[[sink]]` by `name`) are shown by that name: `item "order-latency": probe.duration`.

use std::path::Path;

use crate::error::{Error, Location};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

pub(super) fn path_text(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

pub(super) fn parse_key_path(dotted: &str) -> Vec<Seg> {
    let mut out = Vec::new();
    for part in dotted.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Seg::Key(name.to_string()));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Seg::Index(i));
            }
        }
    }
    out
}

/// Byte spans of keys and values in a TOML text, looked up by key path.
pub(super) struct SpanIndex {
    doc: Option<toml_edit::Document<String>>,
}

impl SpanIndex {
    pub(super) fn new(text: &str) -> SpanIndex {
        SpanIndex {
            doc: toml_edit::Document::parse(text.to_string()).ok(),
        }
    }

    /// The span of the deepest key along `path` that exists (the key itself when possible).
    pub(super) fn find(&self, path: &[Seg]) -> Option<Span> {
        let doc = self.doc.as_ref()?;
        find_in_table(doc.as_table(), path, None)
    }

    /// The string written exactly at `path`, if there is one.
    pub(super) fn string_at(&self, path: &[Seg]) -> Option<&str> {
        let doc = self.doc.as_ref()?;
        let (first, rest) = match path.split_first()? {
            (Seg::Key(k), rest) => (doc.as_table().get(k)?, rest),
            (Seg::Index(_), _) => return None,
        };
        let mut item = first;
        for seg in rest {
            item = match seg {
                Seg::Key(k) => item.get(k.as_str())?,
                Seg::Index(i) => item.get(*i)?,
            };
        }
        item.as_str()
    }
}

/// The arrays of tables whose entries people know by a name, with the key that holds it.
const NAMED: [(&str, &str); 5] = [
    ("item", "id"),
    ("service", "name"),
    ("monitor", "name"),
    ("proxy", "name"),
    ("sink", "name"),
];

type Span = std::ops::Range<usize>;

fn find_in_table(table: &toml_edit::Table, rest: &[Seg], best: Option<Span>) -> Option<Span> {
    let Some((Seg::Key(k), tail)) = rest.split_first() else {
        return best;
    };
    let Some((key, value)) = table.get_key_value(k) else {
        return best;
    };
    let best = key.span().or_else(|| value.span()).or(best);
    match value {
        toml_edit::Item::Table(t) => find_in_table(t, tail, best),
        toml_edit::Item::Value(v) => find_in_value(v, tail, best),
        toml_edit::Item::ArrayOfTables(a) => match tail.split_first() {
            Some((Seg::Index(i), tail2)) => match a.get(*i) {
                Some(t) => find_in_table(t, tail2, t.span().or(best)),
                None => best,
            },
            _ => best,
        },
        toml_edit::Item::None => best,
    }
}

fn find_in_value(value: &toml_edit::Value, rest: &[Seg], best: Option<Span>) -> Option<Span> {
    match (value, rest.split_first()) {
        (toml_edit::Value::InlineTable(t), Some((Seg::Key(k), tail))) => match t.get_key_value(k) {
            Some((key, item)) => {
                let here = key.span().or_else(|| item.span()).or(best);
                match item.as_value() {
                    Some(v) => find_in_value(v, tail, here),
                    None => here,
                }
            }
            None => best,
        },
        (toml_edit::Value::Array(a), Some((Seg::Index(i), tail))) => match a.get(*i) {
            Some(v) => find_in_value(v, tail, v.span().or(best)),
            None => best,
        },
        _ => best,
    }
}

/// Turns byte offsets and key paths into [`Error::Checklist`] values.
pub(super) struct Locator<'a> {
    pub(super) file: &'a Path,
    pub(super) text: &'a str,
    pub(super) index: SpanIndex,
}

impl Locator<'_> {
    pub(super) fn location(&self, offset: usize) -> Location {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        let column = self.text[line_start..offset].chars().count() + 1;
        Location {
            file: self.file.to_path_buf(),
            line,
            column,
        }
    }

    /// An error at the key path (the deepest part of it that exists in the file).
    pub(super) fn at(&self, path: &[Seg], message: impl Into<String>) -> Error {
        let offset = self.index.find(path).map(|s| s.start).unwrap_or(0);
        self.error(offset, path, message.into())
    }

    /// An error at byte `offset`, its message prefixed with `path` as people read it.
    pub(super) fn error(&self, offset: usize, path: &[Seg], message: String) -> Error {
        let shown = self.describe(path);
        Error::Checklist {
            location: self.location(offset),
            message: if shown.is_empty() {
                message
            } else {
                format!("{shown}: {message}")
            },
        }
    }

    /// `path` as people read it: an entry of a named array by its name (`item
    /// "order-latency": probe.duration`), anything else as a dotted path (`checklist.timeout`,
    /// `waiver[0].expires`).
    pub(super) fn describe(&self, path: &[Seg]) -> String {
        if let [Seg::Key(table), Seg::Index(i), rest @ ..] = path
            && let Some((_, name_key)) = NAMED.iter().find(|(t, _)| t == table)
            && let Some(name) =
                self.index
                    .string_at(&[Seg::Key(table.clone()), Seg::Index(*i), key(name_key)])
        {
            let entry = format!("{table} \"{name}\"");
            return if rest.is_empty() {
                entry
            } else {
                format!("{entry}: {}", path_text(rest))
            };
        }
        path_text(path)
    }
}

/// A [`Seg::Key`].
pub(super) fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[checklist]\nname = \"t\"\n\n[[item]]\nid = \"drill\"\n[item.probe]\nkind = \"drill\"\n\n[[item.probe.step]]\nstop = \"a\"\n\n[[item.probe.step]]\nexpect = \"http\"\nwithin = \"5s\"\n\n[[item]]\nprobe = { kind = \"env\", vars = [\"A\"] }\n";

    fn locator(text: &str) -> Locator<'_> {
        Locator {
            file: Path::new("c.toml"),
            text,
            index: SpanIndex::new(text),
        }
    }

    #[test]
    fn a_key_in_an_array_of_tables_is_found_at_its_own_line() {
        let loc = locator(TEXT);
        let line = |path: &str| {
            let mut p = vec![key("item"), Seg::Index(0), key("probe")];
            p.extend(parse_key_path(path));
            loc.location(loc.index.find(&p).unwrap().start).line
        };
        assert_eq!(line("step[1].within"), 14);
        assert_eq!(line("step[1]"), 12);
        assert_eq!(line("step[0].stop"), 10);
        // A key that is not there: the deepest part that is, the step's own header.
        assert_eq!(line("step[1].withinn"), 12);
    }

    #[test]
    fn entries_are_shown_by_their_name_when_they_have_one() {
        let loc = locator(TEXT);
        let path = |p: &str| parse_key_path(p);
        assert_eq!(
            loc.describe(&path("item[0].probe.step[1].within")),
            "item \"drill\": probe.step[1].within"
        );
        assert_eq!(loc.describe(&path("item[0]")), "item \"drill\"");
        // The second item has no id: it keeps its index.
        assert_eq!(
            loc.describe(&path("item[1].probe.vars")),
            "item[1].probe.vars"
        );
        assert_eq!(loc.describe(&path("checklist.name")), "checklist.name");
    }

    #[test]
    fn key_paths_parse() {
        assert_eq!(
            parse_key_path("headers.Authorization"),
            vec![Seg::Key("headers".into()), Seg::Key("Authorization".into())]
        );
        assert_eq!(
            parse_key_path("command[2]"),
            vec![Seg::Key("command".into()), Seg::Index(2)]
        );
    }
}
