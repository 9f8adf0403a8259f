//! The published JSON Schemas stay current, real reports validate against them, and every
//! shipped checklist is valid.

mod common;

use common::*;

fn published(name: &str) -> serde_json::Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schema")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
}

fn generated(kind: &str) -> serde_json::Value {
    let out = std::process::Command::new(bin())
        .args(["schema", kind])
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn published_schemas_match_the_types() {
    for (kind, file) in [
        ("checklist", "checklist.schema.json"),
        ("report", "report.schema.json"),
        ("compare", "compare.schema.json"),
    ] {
        assert!(
            published(file) == generated(kind),
            "schema/{file} is out of date; regenerate with: cargo run -- schema {kind} > schema/{file}"
        );
    }
}

#[test]
fn real_report_validates_against_the_published_schema() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}signoff = []\n{}{}{}[[waiver]]\nitem = \"b\"\nreason = \"accepted\"\napproved_by = \"Technical lead\"\nexpires = 2999-12-31\n",
        item("a", "major", r#"{ kind = "command", command = ["echo", "hello"] }"#),
        item("b", "major", r#"{ kind = "command", command = ["false"] }"#),
        item("c", "minor", r#"{ kind = "host", min_cpus = 1, min_memory = "1MiB", min_disk_free = "1MiB" }"#)
    )
    .replace("signoff = []\n", "");
    write(dir.path(), "s.toml", &text);
    let out = run_in(dir.path(), &["run", "s.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let report = report_json(&dir.path().join("out"));
    let schema = published("report.schema.json");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator
        .iter_errors(&report)
        .map(|e| format!("{} at {}", e, e.instance_path))
        .collect();
    assert!(
        errors.is_empty(),
        "report.json does not validate: {errors:#?}"
    );

    // And a broken one does not.
    let mut broken = report.clone();
    broken["verdict"] = serde_json::json!("probably-fine");
    assert!(!validator.is_valid(&broken));
}

#[test]
fn shipped_checklists_are_valid() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("checklists");
    let mut checked = 0;
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "toml")
                && std::fs::read_to_string(&p)
                    .unwrap()
                    .lines()
                    .any(|l| l.trim() == "[checklist]")
            {
                let out = std::process::Command::new(bin())
                    .arg("check")
                    .arg(&p)
                    .env("PAPER_API_KEY", "example-key")
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}: {}", p.display(), describe(&out));
                checked += 1;
            }
        }
    }
    assert!(checked >= 1, "no checklists found");
}
