//! Validation, section by section: `[checklist]`, `[[proxy]]` and `[[sink]]`, `[[service]]`,
//! `[[item]]` with its probe, `[[waiver]]`, `[[monitor]]`, then the references between them.
//! Each table's own rules live with its type (probes, services, monitors); what needs the
//! whole file (unique names, `during`, references by name) is checked here.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::locate::{Locator, Seg, key, parse_key_path};
use super::raw::{self, RawChecklist};
use super::resources;
use super::types::{Checklist, Item, Meta};
use crate::error::Result;
use crate::field::{FieldError, Validator};
use crate::probe::RawProbe;
use crate::service::Service;
use crate::units::parse_duration;
use crate::waiver::{Waiver, WaiverSignature};

/// Validate the raw mirror of the text read from `path` into a [`Checklist`].
pub(super) fn validate(
    path: &Path,
    text: &str,
    loc: &Locator<'_>,
    raw: RawChecklist,
    probes: Vec<RawProbe>,
    checks: Vec<crate::soak::check::RawMonitorCheck>,
) -> Result<Checklist> {
    let mut v = Validator::default();
    let meta = validate_meta(loc, raw.checklist)?;
    let (proxies, sinks) = resources::validate_resources(loc, raw.proxy, raw.sink, &mut v)?;
    let (services, service_names) = validate_services(loc, raw.service, &mut v)?;
    let (items, ids) = validate_items(loc, raw.item, probes, meta.timeout, &mut v)?;
    if items.is_empty() {
        return Err(loc.at(&[], "expected at least one [[item]]"));
    }
    let names = Names {
        services: service_names,
        sinks: sinks.iter().map(|s| s.name.clone()).collect(),
        proxies: proxies.iter().map(|p| p.name.clone()).collect(),
        http_proxies: proxies
            .iter()
            .filter(|p| p.http)
            .map(|p| p.name.clone())
            .collect(),
    };
    check_references(loc, &items, &names)?;
    let waivers = validate_waivers(loc, path, raw.waiver, &ids)?;
    let monitors = validate_monitors(loc, raw.monitor, checks, &mut v)?;
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
        baseline: m.baseline.map(std::path::PathBuf::from),
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

/// `[[item]]` tables with their probes (typed by kind, in item order); returns them with the
/// index of each id.
fn validate_items(
    loc: &Locator<'_>,
    raw: Vec<raw::RawItem>,
    probes: Vec<RawProbe>,
    default_timeout: Duration,
    v: &mut Validator,
) -> Result<(Vec<Item>, BTreeMap<String, usize>)> {
    let mut items = Vec::new();
    let mut ids: BTreeMap<String, usize> = BTreeMap::new();
    for (i, (it, probe)) in raw.into_iter().zip(probes).enumerate() {
        let at = |k: &str| vec![key("item"), Seg::Index(i), key(k)];
        check_id(loc, i, &it.id, &ids)?;
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
        let probe = probe.validate(v).map_err(probe_at)?;
        let during = it.during.or_else(|| probe.during().map(str::to_string));
        let regression = it
            .regression
            .map(|r| super::regression::validate(r, probe.kind()))
            .transpose()
            .map_err(|(k, m)| {
                let mut p = at("regression");
                p.extend(parse_key_path(&k));
                loc.at(&p, m)
            })?;
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
            regression,
        });
    }
    Ok((items, ids))
}

/// Item `i`'s id: letters, digits, `-`, `_`, `.`, and not taken by an earlier item.
fn check_id(loc: &Locator<'_>, i: usize, id: &str, ids: &BTreeMap<String, usize>) -> Result<()> {
    static ID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]*$").expect("static regex")
    });
    let at = [key("item"), Seg::Index(i), key("id")];
    if !ID.is_match(id) {
        return Err(loc.at(
            &at,
            format!("invalid id \"{id}\": expected letters, digits, '-', '_' or '.'"),
        ));
    }
    if let Some(first) = ids.get(id) {
        let first_line = loc
            .index
            .find(&[key("item"), Seg::Index(*first), key("id")])
            .map(|s| loc.location(s.start).line)
            .unwrap_or(0);
        return Err(loc.at(
            &at,
            format!("duplicate id \"{id}\" (first defined at line {first_line})"),
        ));
    }
    Ok(())
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
    checks: Vec<crate::soak::check::RawMonitorCheck>,
    v: &mut Validator,
) -> Result<Vec<crate::soak::config::Monitor>> {
    let mut monitors = Vec::new();
    let mut monitor_names = HashSet::new();
    for (i, (m, check)) in raw.into_iter().zip(checks).enumerate() {
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
            m.validate(check, v)
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
    http_proxies: HashSet<String>,
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
                crate::probe::RefKind::HttpProxy => names.http_proxies.contains(r.name),
            };
            if r.kind == crate::probe::RefKind::HttpProxy
                && !known
                && names.proxies.contains(r.name)
            {
                let mut p = vec![key("item"), Seg::Index(i), key("probe")];
                p.extend(parse_key_path(&r.key));
                return Err(loc.at(
                    &p,
                    format!(
                        "[[proxy]] \"{}\" is a TCP proxy: an HTTP fault needs protocol = \"http\" on it",
                        r.name
                    ),
                ));
            }
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
