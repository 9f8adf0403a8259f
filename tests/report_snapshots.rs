//! The reports as a reader sees them: insta snapshots of `report.md` and `junit.xml` from a real
//! `prodready run` of a small deterministic checklist (file, env and command items: passes, a
//! failure that blocks, a minor failure and a waived item). A change to the report's layout or
//! wording shows up in review as a snapshot diff.
//!
//! What differs from run to run is normalised before the comparison: timestamps, durations,
//! SHA-256 digests, the host line and prodready's version.

mod common;

use common::*;

/// Six items in three sections: a file with the headings a runbook needs (pass), a set and an
/// unset variable (pass, major fail), a command whose output matches (pass), a minor failing
/// command, and a failing blocker that a waiver covers.
const CHECKLIST: &str = r#"[checklist]
name = "report snapshot"
system = "paper venue"
environment = "test"

[[item]]
id = "runbook"
section = "Operations"
title = "Runbook has rollback and contacts"
severity = "major"
probe = { kind = "file", path = "runbook.md", min_size = "10B", headings = ["Rollback", "Contacts"] }

[[item]]
id = "env-set"
section = "Configuration"
title = "Venue credentials are set"
severity = "blocker"
probe = { kind = "env", vars = ["PRODREADY_SNAPSHOT_VENUE_KEY"] }

[[item]]
id = "env-missing"
section = "Configuration"
title = "Kill-switch variable is set"
severity = "major"
probe = { kind = "env", vars = ["PRODREADY_SNAPSHOT_KILL_SWITCH"] }

[[item]]
id = "unit-tests"
section = "Tests"
title = "Unit tests pass"
severity = "blocker"
probe = { kind = "command", command = ["sh", "-c", "echo 12 passed"], stdout_matches = "passed" }

[[item]]
id = "lint"
section = "Tests"
title = "Lint is clean"
severity = "minor"
probe = { kind = "command", command = ["sh", "-c", "echo 'warning: unused'; exit 1"] }

[[item]]
id = "legacy"
section = "Tests"
title = "Legacy adapter tests pass"
severity = "blocker"
probe = { kind = "command", command = ["false"] }

[[waiver]]
item = "legacy"
reason = "Legacy adapter excluded until the Q1 refactor"
approved_by = "Technical lead"
expires = 2999-01-31
"#;

const RUNBOOK: &str =
    "# Runbook\n\n## Rollback\n\nRevert the deploy.\n\n## Contacts\n\nOn-call: trading-ops.\n";

/// Run the checklist in a fresh folder; returns `(report.md, junit.xml)`.
fn reports() -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.toml", CHECKLIST);
    write(dir.path(), "runbook.md", RUNBOOK);
    let out = run_in(
        dir.path(),
        &["run", "c.toml", "--no-step-summary", "--out", "out"],
        &[("PRODREADY_SNAPSHOT_VENUE_KEY", "present")],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let read = |name: &str| {
        let text = std::fs::read_to_string(dir.path().join("out").join(name)).unwrap();
        let tmp = dir.path().to_string_lossy();
        assert!(!text.contains(&*tmp), "{name} names the run's folder {tmp}");
        text
    };
    (read("report.md"), read("junit.xml"))
}

/// Replace what varies between runs with placeholders.
fn normalised(f: impl FnOnce()) {
    insta::with_settings!({
        filters => vec![
            (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z", "[timestamp]"),
            (r"\b\d+(?:\.\d+)? (?:ns|µs|ms|s)\b", "[duration]"),
            (r#"time="\d+(?:\.\d+)?""#, r#"time="[seconds]""#),
            (r"\b[0-9a-f]{64}\b", "[sha256]"),
            (r"\| Host \| [^\n]* \|", "| Host | [host] |"),
            (r"\| prodready \| [^|\n]+ \|", "| prodready | [version] |"),
        ],
    }, {
        f();
    });
}

#[test]
fn report_md_and_junit_xml() {
    let (md, junit) = reports();
    normalised(|| {
        insta::assert_snapshot!("report_md", md);
        insta::assert_snapshot!("junit_xml", junit);
    });
}
