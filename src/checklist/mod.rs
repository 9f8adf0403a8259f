//! Checklist loading: the raw TOML mirror ([`raw`]), validation into domain types
//! ([`Checklist`], [`Item`], [`Waiver`]; services are [`crate::service::Service`]) and errors that name the file, line,
//! column and key path.
//!
//! Loading is two-stage (style rule 2): serde reads the raw mirror, denying unknown keys; then
//! validation checks ids, units, references and `${VAR}` interpolation once, so the rest of
//! the program never sees an unvalidated value. Positions come from a spanned parse of the
//! same text (toml_edit), looked up by key path.

pub mod raw;
mod resources;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::error::{Error, Location, Result};
use crate::field::{FieldError, Validator};
use crate::model::Severity;
use crate::probe::Probe;
use crate::service::Service;
use crate::units::{Redactor, parse_duration};
use raw::RawChecklist;
pub use resources::{ProxySpec, SinkSpec};
// Waivers have their own module; re-exported because a checklist holds them.
pub use crate::waiver::{Waiver, WaiverSignature};

/// A validated checklist.
#[derive(Debug, Clone)]
pub struct Checklist {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its folder; relative paths in probes resolve against it.
    pub dir: PathBuf,
    /// Lowercase hex SHA-256 of the file's bytes.
    pub sha256: String,
    /// `[checklist]` metadata.
    pub meta: Meta,
    /// `[[service]]` entries, in file order.
    pub services: Vec<Service>,
    /// `[[item]]` entries, in file order.
    pub items: Vec<Item>,
    /// `[[waiver]]` entries.
    pub waivers: Vec<Waiver>,
    /// `[[monitor]]` entries (run by `prodready soak`).
    pub monitors: Vec<crate::soak::config::Monitor>,
    /// `[[proxy]]` entries (started by `prodready run`).
    pub proxies: Vec<ProxySpec>,
    /// `[[sink]]` entries (started by `prodready run`).
    pub sinks: Vec<SinkSpec>,
    /// Values of every interpolated `${VAR}`, to scrub from output.
    pub redactor: Redactor,
}

/// `[checklist]` metadata.
#[derive(Debug, Clone)]
pub struct Meta {
    /// Name; also names the report folder.
    pub name: String,
    /// System under test.
    pub system: Option<String>,
    /// Environment (staging, production…).
    pub environment: Option<String>,
    /// Free text.
    pub description: Option<String>,
    /// Roles that must sign off.
    pub signoff: Vec<String>,
    /// Default per-item timeout.
    pub timeout: Duration,
}

/// One checklist item.
#[derive(Debug, Clone)]
pub struct Item {
    /// Unique id.
    pub id: String,
    /// Section heading.
    pub section: String,
    /// One-line title.
    pub title: String,
    /// Severity.
    pub severity: Severity,
    /// Tags.
    pub tags: Vec<String>,
    /// Longer description.
    pub description: Option<String>,
    /// Per-item timeout.
    pub timeout: Duration,
    /// Extra attempts after `fail`/`error`.
    pub retries: u32,
    /// The id of the item this one runs alongside: the item's `during`, or the probe's own
    /// `during` key (memory) — one of the two, never both.
    pub during: Option<String>,
    /// The probe.
    pub probe: Probe,
}

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

fn path_text(path: &[Seg]) -> String {
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

fn parse_key_path(dotted: &str) -> Vec<Seg> {
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
struct SpanIndex {
    doc: Option<toml_edit::Document<String>>,
}

impl SpanIndex {
    fn new(text: &str) -> SpanIndex {
        SpanIndex {
            doc: toml_edit::Document::parse(text.to_string()).ok(),
        }
    }

    /// The span of the deepest key along `path` that exists (the key itself when possible).
    fn find(&self, path: &[Seg]) -> Option<Span> {
        let doc = self.doc.as_ref()?;
        find_in_table(doc.as_table(), path, None)
    }
}

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
struct Locator<'a> {
    file: &'a Path,
    text: &'a str,
    index: SpanIndex,
}

impl Locator<'_> {
    fn location(&self, offset: usize) -> Location {
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
    fn at(&self, path: &[Seg], message: impl Into<String>) -> Error {
        let offset = self.index.find(path).map(|s| s.start).unwrap_or(0);
        let shown = path_text(path);
        let message = message.into();
        Error::Checklist {
            location: self.location(offset),
            message: if shown.is_empty() {
                message
            } else {
                format!("{shown}: {message}")
            },
        }
    }
}

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

fn key(k: &str) -> Seg {
    Seg::Key(k.to_string())
}

fn validate(path: &Path, text: &str, loc: &Locator<'_>, raw: RawChecklist) -> Result<Checklist> {
    let mut v = Validator::default();
    let meta = validate_meta(loc, raw.checklist)?;
    let (proxies, sinks) = resources::validate_resources(loc, raw.proxy, raw.sink, &mut v)?;
    let (services, service_names) = validate_services(loc, raw.service, &mut v)?;
    let (items, ids) = validate_items(loc, raw.item, meta.timeout, &mut v)?;
    if items.is_empty() {
        return Err(loc.at(&[], "expected at least one [[item]]"));
    }
    let names = Names {
        services: service_names,
        sinks: sinks.iter().map(|s| s.name.clone()).collect(),
        proxies: proxies.iter().map(|p| p.name.clone()).collect(),
    };
    check_references(loc, &items, &names)?;
    let waivers = validate_waivers(loc, path, raw.waiver, &ids)?;
    let monitors = validate_monitors(loc, raw.monitor, &mut v)?;
    let dir = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."));
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    Ok(Checklist {
        path: path.to_path_buf(),
        dir,
        sha256: hex::encode(Sha256::digest(text.as_bytes())),
        meta,
        services,
        items,
        waivers,
        monitors,
        proxies,
        sinks,
        redactor: v.redactor,
    })
}

/// `[checklist]`: a name, distinct sign-off roles, the default item timeout (10 min).
fn validate_meta(loc: &Locator<'_>, m: raw::RawMeta) -> Result<Meta> {
    let meta_timeout = match &m.timeout {
        Some(t) => parse_duration(t).map_err(|m| loc.at(&[key("checklist"), key("timeout")], m))?,
        None => Duration::from_secs(600),
    };
    if m.name.trim().is_empty() {
        return Err(loc.at(
            &[key("checklist"), key("name")],
            "expected a non-empty name",
        ));
    }
    let mut roles = HashSet::new();
    for (i, r) in m.signoff.iter().enumerate() {
        if r.trim().is_empty() || !roles.insert(r.to_lowercase()) {
            return Err(loc.at(
                &[key("checklist"), key("signoff"), Seg::Index(i)],
                format!("sign-off role \"{r}\" is empty or listed twice"),
            ));
        }
    }
    let meta = Meta {
        name: m.name,
        system: m.system,
        environment: m.environment,
        description: m.description,
        signoff: m.signoff,
        timeout: meta_timeout,
    };

    Ok(meta)
}

/// `[[service]]` tables ([`crate::service::RawService::validate`]); returns them with their
/// (unique) names.
fn validate_services(
    loc: &Locator<'_>,
    raw: Vec<crate::service::RawService>,
    v: &mut Validator,
) -> Result<(Vec<Service>, HashSet<String>)> {
    let mut services = Vec::new();
    let mut service_names = HashSet::new();
    for (i, s) in raw.into_iter().enumerate() {
        let at = |k: &str| {
            let mut p = vec![key("service"), Seg::Index(i)];
            p.extend(parse_key_path(k));
            p
        };
        if !service_names.insert(s.name.clone()) {
            return Err(loc.at(
                &at("name"),
                format!("duplicate service name \"{}\"", s.name),
            ));
        }
        services.push(
            s.validate(v)
                .map_err(|fe| loc.at(&at(&fe.key), fe.message))?,
        );
    }

    Ok((services, service_names))
}

/// `[[item]]` tables with their probes; returns them with the index of each id.
fn validate_items(
    loc: &Locator<'_>,
    raw: Vec<raw::RawItem>,
    default_timeout: Duration,
    v: &mut Validator,
) -> Result<(Vec<Item>, BTreeMap<String, usize>)> {
    let id_re = regex::Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]*$").expect("static regex");
    let mut items = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, it) in raw.into_iter().enumerate() {
        let at = |k: &str| vec![key("item"), Seg::Index(i), key(k)];
        if !id_re.is_match(&it.id) {
            return Err(loc.at(
                &at("id"),
                format!(
                    "invalid id \"{}\": expected letters, digits, '-', '_' or '.'",
                    it.id
                ),
            ));
        }
        if let Some(first) = ids.get(&it.id) {
            let first_line = loc
                .index
                .find(&[key("item"), Seg::Index(*first), key("id")])
                .map(|s| loc.location(s.start).line)
                .unwrap_or(0);
            return Err(loc.at(
                &at("id"),
                format!(
                    "duplicate id \"{}\" (first defined at line {first_line})",
                    it.id
                ),
            ));
        }
        ids.insert(it.id.clone(), i);
        for (k, val) in [("section", &it.section), ("title", &it.title)] {
            if val.trim().is_empty() {
                return Err(loc.at(&at(k), "expected non-empty text"));
            }
        }
        let timeout = match &it.timeout {
            Some(t) => parse_duration(t).map_err(|m| loc.at(&at("timeout"), m))?,
            None => default_timeout,
        };
        let probe_at = |fe: FieldError| {
            let mut p = at("probe");
            p.extend(parse_key_path(&fe.key));
            loc.at(&p, fe.message)
        };
        v.item_during = it.during.clone();
        let probe = it.probe.validate(v).map_err(probe_at)?;
        let during = it.during.or_else(|| probe.during().map(str::to_string));
        items.push(Item {
            id: it.id,
            section: it.section,
            title: it.title,
            severity: it.severity,
            tags: it.tags,
            description: it.description,
            timeout,
            retries: it.retries.unwrap_or(0),
            during,
            probe,
        });
    }
    Ok((items, ids))
}

/// `[[waiver]]` tables: each names an item, has a reason, an approver and a date, and an
/// optional approver signature read from `signature_file` (relative to the checklist).
fn validate_waivers(
    loc: &Locator<'_>,
    path: &Path,
    raw: Vec<crate::waiver::RawWaiver>,
    ids: &BTreeMap<String, usize>,
) -> Result<Vec<Waiver>> {
    let mut waivers = Vec::new();
    for (i, w) in raw.into_iter().enumerate() {
        let at = |k: &str| vec![key("waiver"), Seg::Index(i), key(k)];
        if !ids.contains_key(&w.item) {
            return Err(loc.at(&at("item"), format!("no item with id \"{}\"", w.item)));
        }
        for (k, val) in [("reason", &w.reason), ("approved_by", &w.approved_by)] {
            if val.trim().is_empty() {
                return Err(loc.at(&at(k), "expected non-empty text"));
            }
        }
        let expires =
            crate::waiver::toml_date(&w.expires).map_err(|m| loc.at(&at("expires"), m))?;
        let signature = match (w.signer, w.signature_file) {
            (None, None) => None,
            (Some(signer), Some(file)) => {
                if signer.trim().is_empty() {
                    return Err(loc.at(&at("signer"), "expected a non-empty principal"));
                }
                let sig_path = path.parent().unwrap_or(Path::new(".")).join(&file);
                let armored = std::fs::read_to_string(&sig_path).map_err(|e| {
                    loc.at(
                        &at("signature_file"),
                        format!("cannot read {}: {e}", sig_path.display()),
                    )
                })?;
                crate::signoff::parse_sshsig(&armored).map_err(|m| {
                    loc.at(
                        &at("signature_file"),
                        format!("{}: {m}", sig_path.display()),
                    )
                })?;
                Some(WaiverSignature { signer, armored })
            }
            (Some(_), None) => {
                return Err(loc.at(&at("signer"), "signer needs signature_file"));
            }
            (None, Some(_)) => {
                return Err(loc.at(&at("signature_file"), "signature_file needs signer"));
            }
        };
        waivers.push(Waiver {
            item: w.item,
            reason: w.reason,
            approved_by: w.approved_by,
            expires,
            signature,
        });
    }

    Ok(waivers)
}

/// `[[monitor]]` tables with unique names.
fn validate_monitors(
    loc: &Locator<'_>,
    raw: Vec<crate::soak::config::RawMonitor>,
    v: &mut Validator,
) -> Result<Vec<crate::soak::config::Monitor>> {
    let mut monitors = Vec::new();
    let mut monitor_names = HashSet::new();
    for (i, m) in raw.into_iter().enumerate() {
        let at = |k: &str| {
            let mut p = vec![key("monitor"), Seg::Index(i)];
            p.extend(parse_key_path(k));
            p
        };
        if !monitor_names.insert(m.name.clone()) {
            return Err(loc.at(
                &at("name"),
                format!("duplicate monitor name \"{}\"", m.name),
            ));
        }
        monitors.push(
            m.validate(v)
                .map_err(|fe| loc.at(&at(&fe.key), fe.message))?,
        );
    }

    Ok(monitors)
}

/// Whether item `i` has its own `during` key (rather than one inside its probe table).
fn written_on_item(loc: &Locator<'_>, i: usize) -> bool {
    let item = [key("item"), Seg::Index(i)];
    let during = [key("item"), Seg::Index(i), key("during")];
    // `find` falls back to the deepest existing ancestor: a different span means the key exists.
    loc.index.find(&during) != loc.index.find(&item)
}

/// Check what probes refer to by name: `during` must name another item that does not itself
/// run `during` something, and a memory probe's `service` must name a `[[service]]`.
/// The names items may refer to.
struct Names {
    services: HashSet<String>,
    sinks: HashSet<String>,
    proxies: HashSet<String>,
}

fn check_references(loc: &Locator<'_>, items: &[Item], names: &Names) -> Result<()> {
    let during_of: BTreeMap<&str, Option<&str>> = items
        .iter()
        .map(|it| (it.id.as_str(), it.during.as_deref()))
        .collect();
    for (i, it) in items.iter().enumerate() {
        let at = |k: &str| vec![key("item"), Seg::Index(i), key("probe"), key(k)];
        // Point at wherever `during` was written: the item, or the probe table.
        let during_at = if it.probe.during().is_some() && !written_on_item(loc, i) {
            at("during")
        } else {
            vec![key("item"), Seg::Index(i), key("during")]
        };
        if let Some(d) = it.during.as_deref() {
            match during_of.get(d) {
                None => {
                    return Err(loc.at(
                        &during_at,
                        format!("no item with id \"{d}\" (expected the id of another item)"),
                    ));
                }
                Some(_) if d == it.id => {
                    return Err(
                        loc.at(&during_at, format!("item \"{d}\" cannot run during itself"))
                    );
                }
                Some(Some(_)) => {
                    return Err(loc.at(
                        &during_at,
                        format!(
                            "item \"{d}\" itself runs `during` another item; point at the item that drives the load"
                        ),
                    ));
                }
                Some(None) => {}
            }
        }
        for r in it.probe.references() {
            let known = match r.kind {
                crate::probe::RefKind::Service => names.services.contains(r.name),
                crate::probe::RefKind::Sink => names.sinks.contains(r.name),
                crate::probe::RefKind::Proxy => names.proxies.contains(r.name),
            };
            if !known {
                let mut p = vec![key("item"), Seg::Index(i), key("probe")];
                p.extend(parse_key_path(&r.key));
                return Err(loc.at(
                    &p,
                    format!("no [[{}]] named \"{}\"", r.kind.table(), r.name),
                ));
            }
        }
    }
    Ok(())
}

/// The JSON Schema of the checklist format (draft 2020-12), generated from [`raw`].
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawChecklist)).expect("schema serializes")
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
