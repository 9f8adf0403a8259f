//! Tidy checks on the source tree, in the spirit of rust-analyzer's: the module structure is
//! part of the design, so a test holds it (ARCHITECTURE.md, "Layers").
//!
//! - No import cycle between the top-level modules of src/, nor between the files and
//!   sub-folders of any folder of src/ (a file's own `mod.rs` is its folder's parent, not a
//!   sibling). An import is a `use` of `crate::…`, `super::…`, `self::…` or a child module,
//!   or a `crate::…` / `super::…` path in code; comments and string literals are skipped,
//!   unit tests count. A path through a re-export (`pub use`) counts for the module that
//!   defines the item, not for the one that re-exports it. Glob imports of a parent
//!   (`use super::*`) name no module and are not followed.
//! - ARCHITECTURE.md's layer list names every top-level module once, and no module imports
//!   one listed above it or beside it on the same line.

mod tree;

use std::collections::{BTreeMap, BTreeSet};

use tree::{Tree, cycles, describe_cycle, expand_use, folder_name, root, strip};

/// Cycles that other branches are removing, as (folder under src/, the modules in the cycle).
/// Each entry must still exist: once a cycle is gone, the test asks for its entry's removal.
const KNOWN_CYCLES: &[(&str, &[&str])] = &[];

/// Modules ARCHITECTURE.md lists before they exist, each arriving with another branch. Once
/// one exists, the test asks for its entry's removal.
const ARRIVING: &[&str] = &[];

#[test]
fn no_import_cycles_between_modules_or_sibling_files() {
    let tree = Tree::load();
    let graphs = tree.graphs();
    let mut problems = Vec::new();
    let mut known_seen = BTreeSet::new();
    for (folder, edges) in &graphs {
        for comp in cycles(edges) {
            let known = KNOWN_CYCLES.iter().position(|(f, nodes)| {
                *f == folder.join("/") && nodes.iter().map(|n| n.to_string()).eq(comp.clone())
            });
            match known {
                Some(k) => {
                    known_seen.insert(k);
                }
                None => problems.push(format!(
                    "import cycle in {}: {}",
                    folder_name(folder),
                    describe_cycle(&comp, edges)
                )),
            }
        }
    }
    for (k, (folder, nodes)) in KNOWN_CYCLES.iter().enumerate() {
        if !known_seen.contains(&k) {
            problems.push(format!(
                "the known cycle between {} in src/{folder}/ is gone: delete its KNOWN_CYCLES entry",
                nodes.join(", ")
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n\n"));
}

/// The layers in ARCHITECTURE.md's fenced `layers` block, top to bottom: each line's modules.
fn layers() -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(root().join("ARCHITECTURE.md")).expect("ARCHITECTURE.md");
    let mut lines = text.lines().skip_while(|l| l.trim() != "```layers");
    assert!(
        lines.next().is_some(),
        "ARCHITECTURE.md has no ```layers block"
    );
    lines
        .take_while(|l| l.trim() != "```")
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| {
            l.split([' ', ','])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|names| !names.is_empty())
        .collect()
}

#[test]
fn the_layers_in_architecture_md_are_the_layers_in_the_code() {
    let tree = Tree::load();
    let layers = layers();
    let mut rank: BTreeMap<String, usize> = BTreeMap::new();
    let mut problems = Vec::new();
    for (i, line) in layers.iter().enumerate() {
        for name in line {
            if rank.insert(name.clone(), i).is_some() {
                problems.push(format!("ARCHITECTURE.md lists `{name}` twice"));
            }
        }
    }
    let top: BTreeSet<String> = tree
        .modules
        .iter()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].clone())
        .collect();
    for m in &top {
        if !rank.contains_key(m) {
            problems.push(format!(
                "src/ has module `{m}`, which ARCHITECTURE.md's layer list does not place"
            ));
        }
        if ARRIVING.contains(&m.as_str()) {
            problems.push(format!(
                "`{m}` has arrived: delete its ARRIVING entry in tests/tidy/main.rs"
            ));
        }
    }
    for name in rank.keys() {
        if !top.contains(name) && !ARRIVING.contains(&name.as_str()) {
            problems.push(format!(
                "ARCHITECTURE.md's layer list names `{name}`, which src/ does not have"
            ));
        }
    }
    let graphs = tree.graphs();
    for ((from, to), u) in graphs.get(&Vec::new()).into_iter().flatten() {
        let (Some(&a), Some(&b)) = (rank.get(from), rank.get(to)) else {
            continue;
        };
        if a >= b {
            let where_ = if a == b { "beside" } else { "above" };
            problems.push(format!(
                "`{from}` imports `{to}`, which ARCHITECTURE.md lists {where_} it: {}:{} {}",
                u.file, u.line, u.path
            ));
        }
    }
    assert!(problems.is_empty(), "\n{}\n", problems.join("\n"));
}

#[test]
fn the_tidy_parser_reads_what_it_should() {
    // Comments and strings name no module; a lifetime is not a character literal.
    let code = strip(
        "// use crate::a;\nlet s = \"crate::b::c\"; let r = r#\"crate::d\"#;\nfn f<'a>(x: &'a str) -> char { '\\'' }\nuse crate::e;",
    );
    assert!(!code.contains("crate::a") && !code.contains("crate::b") && !code.contains("crate::d"));
    assert!(
        code.contains("'a str") && code.contains("use crate::e;"),
        "{code}"
    );
    let paths: Vec<String> = expand_use("crate::{a::{self, B as C}, d::*, e}")
        .into_iter()
        .map(|(p, name, glob)| format!("{} {name:?} {glob}", p.join("::")))
        .collect();
    assert_eq!(
        paths,
        [
            "crate::a Some(\"a\") false",
            "crate::a::B Some(\"C\") false",
            "crate::d None true",
            "crate::e Some(\"e\") false",
        ]
    );
}

/// ARCHITECTURE.md, "Invariants": no probe acts on the system under test except a drill. The
/// measuring code (probes other than drills, the soak, the order client) never stops, starts or
/// signals a service, never touches a `[[proxy]]` and never calls the paper broker's admin API.
#[test]
fn only_a_drill_acts_on_services_proxies_and_broker_faults() {
    let tree = Tree::load();
    let acts = regex::Regex::new(
        r"\bservices\s*\.\s*(start|start_all|stop|stop_all|restart|signal|ensure_running)\s*\(|\.\s*proxies\b",
    )
    .unwrap();
    let admin = regex::Regex::new("/admin/").unwrap();
    let measuring = |file: &str| {
        (file.starts_with("src/probe/") && !file.starts_with("src/probe/drill/"))
            || file.starts_with("src/soak/")
            || file.starts_with("src/order/")
    };
    let mut problems = Vec::new();
    for s in tree.sources.iter().filter(|s| measuring(&s.file)) {
        let raw = std::fs::read_to_string(root().join(&s.file)).unwrap();
        for (code, what) in [(&s.code, &acts), (&raw, &admin)] {
            for m in what.find_iter(code) {
                let line = code[..m.start()].matches('\n').count() + 1;
                problems.push(format!("{}:{line}: {}", s.file, m.as_str()));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "only a drill acts on the system under test:\n{}",
        problems.join("\n")
    );
}

/// ARCHITECTURE.md, "Invariants": the verdict is decided in one function, `report::verdict`.
/// Everywhere else a `Verdict` is only matched (rendered, mapped to an exit code), never made:
/// outside unit tests, a `Verdict::…` value that is not a match pattern stands nowhere but in
/// the body of `pub fn verdict` in src/report/mod.rs.
#[test]
fn the_verdict_is_decided_in_one_function() {
    let tree = Tree::load();
    let variant =
        regex::Regex::new(r"\bVerdict\s*::\s*(Ready|ReadyWithWaivers|NotReady)\b").unwrap();
    let pattern_rest = regex::Regex::new(r"^(\s*\|\s*Verdict\s*::\s*\w+)*\s*(=>|\|)").unwrap();
    let mut made = Vec::new();
    for s in &tree.sources {
        let code = match s.code.find("#[cfg(test)]") {
            Some(at) => &s.code[..at],
            None => &s.code[..],
        };
        // The body of `pub fn verdict` in the report module: from its signature to the first
        // closing brace at the start of a line.
        let allowed = (s.file == "src/report/mod.rs")
            .then(|| code.find("pub fn verdict("))
            .flatten()
            .map(|start| start..start + code[start..].find("\n}").unwrap_or(0));
        for m in variant.find_iter(code) {
            if pattern_rest.is_match(&code[m.end()..]) {
                continue;
            }
            if allowed.as_ref().is_some_and(|r| r.contains(&m.start())) {
                continue;
            }
            let line = code[..m.start()].matches('\n').count() + 1;
            made.push(format!("{}:{line}: {}", s.file, m.as_str()));
        }
    }
    assert!(
        made.is_empty(),
        "a verdict is made outside report::verdict:\n{}",
        made.join("\n")
    );
}
