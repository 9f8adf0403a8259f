//! The deployment guides shipped as checklists (`checklists/guides/`) stay valid, tagged, and
//! mapped: every file passes `prodready check`, every item says whether it runs embedded, needs
//! the team's infrastructure or is a manual attestation, `docs/guides.md` names every item of
//! every file and no item that does not exist, and the failure handling guide's embedded items
//! pass against the paper broker and the example trading agent.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

mod common;

use common::{agent_bin, bin, describe, free_port, report_json, run_in, status_of, write};

/// The tags that say where an item can run; every item has exactly one.
const PLACES: [&str; 4] = ["embedded", "infra", "manual", "schedule"];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The guide checklists: `checklists/guides/*.toml`, sorted.
fn guides() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("checklists/guides"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    files
}

/// `(id, kind, tags)` of every item of a checklist file.
fn items(path: &Path) -> Vec<(String, String, Vec<String>)> {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let strs = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    };
    doc["item"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            let id = i["id"].as_str().unwrap().to_string();
            let kind = i["probe"]["kind"].as_str().unwrap().to_string();
            (id, kind, strs(i.get("tags")))
        })
        .collect()
}

#[test]
fn every_guide_checklist_passes_check() {
    let files = guides();
    assert_eq!(files.len(), 5, "five guides, one checklist each: {files:?}");
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let out = std::process::Command::new(bin())
                .arg("check")
                .arg(f)
                .output()
                .unwrap();
            (!out.status.success()).then(|| format!("{}: {}", f.display(), describe(&out)))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn failure_handling_guide_runs_green_where_it_fits() {
    let dir = tempfile::tempdir().unwrap();
    let path = root().join("checklists/guides/failure-handling.toml");
    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("18111", &free_port().to_string())
        .replace(
            "../../target/debug/examples/trading_agent",
            &agent_bin().display().to_string(),
        )
        .replace("../../target/guide-failure-handling.db", "state.db")
        // The guide's 100 ms per query is the checklist's bound; on a busy test machine a
        // descheduled sqlite3 may miss it, so the test only bounds it.
        .replace(
            "name = \"slowest query (s)\", max = 0.1",
            "name = \"slowest query (s)\", max = 5",
        );
    assert!(
        text.contains("max = 5 }"),
        "the query-time bound was not found"
    );
    write(dir.path(), "guide.toml", &text);
    let out = run_in(
        dir.path(),
        &["run", "guide.toml", "--tag", "embedded", "--out", "out"],
        &[],
    );
    let report = report_json(&dir.path().join("out"));
    let ran: Vec<(String, String)> = items(&path)
        .into_iter()
        .map(|(id, _, tags)| {
            let want = if tags.iter().any(|t| t == "embedded") {
                "pass"
            } else {
                "skipped"
            };
            (status_of(&report, &id), want.to_string())
        })
        .collect();
    assert!(
        ran.iter().all(|(got, want)| got == want),
        "{ran:?}\n{}",
        describe(&out)
    );
    assert!(ran.iter().filter(|(got, _)| got == "pass").count() >= 5);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
}

#[test]
fn every_guide_item_says_where_it_runs() {
    for f in guides() {
        for (id, kind, tags) in items(&f) {
            let places: Vec<&String> = tags
                .iter()
                .filter(|t| PLACES.contains(&t.as_str()))
                .collect();
            assert_eq!(places.len(), 1, "{}: item {id}: tags {tags:?}", f.display());
            assert_eq!(
                kind == "attestation",
                places[0] == "manual",
                "{}: item {id}: attestations and only they are `manual`",
                f.display()
            );
        }
    }
}

#[test]
fn the_map_names_every_item_and_only_items_that_exist() {
    let map = std::fs::read_to_string(root().join("docs/guides.md")).unwrap();
    for f in guides() {
        let name = f.file_name().unwrap().to_str().unwrap();
        // The guide's section: from the line naming its file to the next `## ` heading.
        let marker = format!("`checklists/guides/{name}`.");
        let start = map
            .find(&marker)
            .unwrap_or_else(|| panic!("docs/guides.md has no section for {name}"));
        let section = &map[start..];
        let section = &section[..section.find("\n## ").unwrap_or(section.len())];
        let ids: BTreeSet<String> = items(&f).into_iter().map(|(id, _, _)| id).collect();
        // The `item` column of each table row: backticked words naming items.
        let mut named = BTreeSet::new();
        for row in section
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains(" | "))
        {
            let Some(cell) = row.split(" | ").nth(2) else {
                continue;
            };
            for id in cell.split('`').skip(1).step_by(2) {
                if let Some(prefix) = id.strip_suffix('*') {
                    assert!(
                        ids.iter().any(|i| i.starts_with(prefix)),
                        "{name}: `{id}` matches no item"
                    );
                } else if !id.starts_with("--") {
                    named.insert(id.to_string());
                }
            }
        }
        let unknown: Vec<_> = named.difference(&ids).collect();
        assert!(
            unknown.is_empty(),
            "{name}: the map names missing items {unknown:?}"
        );
        let unmapped: Vec<_> = ids.difference(&named).collect();
        assert!(
            unmapped.is_empty(),
            "{name}: items not in the map {unmapped:?}"
        );
    }
}

/// How each line of a guide's table is automated: the first word of its `how` cell.
const CLASSES: [&str; 5] = ["probe", "command", "partial", "none", "manual"];

#[test]
fn the_maps_totals_add_up() {
    let map = std::fs::read_to_string(root().join("docs/guides.md")).unwrap();
    let (guides_part, totals_part) = map.split_once("\n## Totals\n").unwrap();
    // Per guide section, in order: the count of lines of each class.
    let mut counted: Vec<[usize; 5]> = Vec::new();
    for section in guides_part.split("\n## ").skip(1) {
        let mut c = [0; 5];
        for row in section
            .lines()
            .filter(|l| l.starts_with("| ") && l.contains(" | "))
        {
            let cells: Vec<&str> = row.split(" | ").collect();
            if cells.len() < 4 || !cells[0][2..].chars().all(|ch| ch.is_ascii_digit()) {
                continue;
            }
            let how = cells[3];
            let class = CLASSES.iter().position(|k| how.starts_with(k));
            c[class.unwrap_or_else(|| panic!("no class in {row}"))] += 1;
        }
        if c.iter().sum::<usize>() > 0 {
            counted.push(c);
        }
    }
    assert_eq!(counted.len(), guides().len());
    // The totals table: lines, then the classes in CLASSES order; the last row is the sum.
    let rows: Vec<Vec<usize>> = totals_part
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| guide"))
        .take_while(|l| l.starts_with("| "))
        .map(|l| {
            l.split('|')
                .skip(2)
                .filter_map(|c| c.trim().trim_matches('*').parse().ok())
                .collect()
        })
        .collect();
    assert_eq!(rows.len(), counted.len() + 1, "{rows:?}");
    let mut all = [0; 5];
    for (row, c) in rows.iter().zip(&counted) {
        assert_eq!(row[0], c.iter().sum::<usize>(), "lines of {row:?}");
        assert_eq!(&row[1..], c, "classes of {row:?}");
        for (a, n) in all.iter_mut().zip(c) {
            *a += n;
        }
    }
    let last = rows.last().unwrap();
    assert_eq!(last[0], all.iter().sum::<usize>());
    assert_eq!(&last[1..], &all);
}
