//! `prodready run --baseline`: items with a `regression` table judged against a baseline
//! report inside the run, end to end on real runs of the real binary:
//! - the paper broker measured, then measured again with `--latency 5ms`: the latency item
//!   fails with a `baseline` check naming the shift; unchanged, it passes;
//! - coverage from two LCOV reports (tests/fixtures/coverage/) with `coverage = "-1pt"`;
//! - a truncated baseline (through `[checklist] baseline`) and a foreign one: exit 2, nothing
//!   run.

use std::path::{Path, PathBuf};
use std::process::Output;

use serde_json::Value;

mod common;

use common::{PaperBroker, describe, keygen, outcome, report_json, run_in, status_of};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// `prodready run checklist.toml --out OUT` in `dir` with `extra` flags and `env`.
fn run(dir: &Path, out: &str, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut args = vec!["run", "--no-step-summary", "--out", out, "checklist.toml"];
    args.extend_from_slice(extra);
    run_in(dir, &args, env)
}

/// The `baseline` check of item `id` in the report of `dir`.
fn baseline_check(dir: &Path, id: &str) -> Value {
    let report = report_json(dir);
    outcome(&report, id)["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "baseline")
        .cloned()
        .unwrap_or_else(|| panic!("no baseline check in {report:#}"))
}

/// A baseline run of the unchanged broker, then a run against it with `broker_args`.
fn baseline_then(regression: &str, broker_args: &[&str]) -> (tempfile::TempDir, Output) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("checklist.toml"),
        common::broker_latency_checklist(
            "baseline test",
            "4s",
            &format!("regression = {regression}\n"),
        ),
    )
    .unwrap();
    let broker = PaperBroker::start(&[]);
    let o = run(dir.path(), "base", &[], &[("BROKER_ADDR", &broker.addr)]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    drop(broker);
    let broker = PaperBroker::start(broker_args);
    let o = run(
        dir.path(),
        "now",
        &["--baseline", "base"],
        &[("BROKER_ADDR", &broker.addr)],
    );
    (dir, o)
}

#[test]
fn added_latency_fails_the_item_with_the_shift_named() {
    let (dir, o) = baseline_then(r#"{ p50 = "+10%" }"#, &["--latency", "5ms"]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let report = report_json(&dir.path().join("now"));
    assert_eq!(status_of(&report, "order-latency"), "fail");
    let c = baseline_check(&dir.path().join("now"), "order-latency");
    assert_eq!(c["passed"], false, "{c:#}");
    assert!(
        c["expected"]
            .as_str()
            .unwrap()
            .contains("p50 shift ≤ +10 %"),
        "{c:#}"
    );
    let measured = c["measured"].as_str().unwrap();
    eprintln!("with 5 ms added: {measured}");
    assert!(
        measured.contains("latency shift +") && measured.contains("beyond the allowance"),
        "{measured}"
    );
    // The chart of both runs' percentiles is evidence of the run, listed with its digest.
    let ev = outcome(&report, "order-latency")["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "evidence/order-latency/baseline-latency.svg")
        .cloned()
        .unwrap_or_else(|| panic!("no baseline chart in {report:#}"));
    let svg =
        std::fs::read_to_string(dir.path().join("now").join(ev["path"].as_str().unwrap())).unwrap();
    assert!(
        svg.starts_with("<svg") && svg.contains("baseline"),
        "{ev:#}"
    );
    assert_eq!(ev["bytes"].as_u64(), Some(svg.len() as u64));
    // The verdict follows the item through the usual path.
    assert!(
        report["reasons"].to_string().contains("order-latency"),
        "{report:#}"
    );
}

#[test]
fn unchanged_broker_passes_its_baseline_check() {
    // An A/A pair on a debug build sharing 2 cores with other builds: the medians of two
    // unchanged runs move with the machine's load by tens of percent, and thousands of samples
    // make such a move significant. A +300 % allowance cannot be reached by that noise, while
    // the check is still made (the other test shows +10 % catching 5 ms).
    let (dir, o) = baseline_then(r#"{ p50 = "+300%", alpha = 0.01 }"#, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    let c = baseline_check(&dir.path().join("now"), "order-latency");
    assert_eq!(c["passed"], true, "{c:#}");
    let measured = c["measured"].as_str().unwrap();
    eprintln!("unchanged: {measured}");
    assert!(
        measured.starts_with("p50 ") && measured.contains(" → ") && measured.contains("shift"),
        "{measured}"
    );
}

const COVERAGE_CHECKLIST: &str = "[checklist]\nname = \"coverage baseline\"\n\n[[item]]\nid = \"cov\"\nsection = \"Testing\"\ntitle = \"Coverage\"\nseverity = \"major\"\nregression = { coverage = \"-1pt\" }\n[item.probe]\nkind = \"coverage\"\nreport = \"coverage.info\"\nlines = 0\n";

/// Two runs of the coverage checklist: cargo-llvm-cov's report as the baseline, lcov's now.
fn coverage_runs(dir: &Path) -> Output {
    std::fs::write(dir.join("checklist.toml"), COVERAGE_CHECKLIST).unwrap();
    let cov = fixtures().join("coverage");
    // cargo-llvm-cov: 62.2 % of lines; lcov (gcc): 56.5 % (their own summaries).
    std::fs::copy(cov.join("cargo-llvm-cov.info"), dir.join("coverage.info")).unwrap();
    let o = run(dir, "before", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    // Without a baseline the allowance was never applied: said, and the item only warns.
    let before = report_json(&dir.join("before"));
    assert_eq!(status_of(&before, "cov"), "warn", "{before:#}");
    let c = baseline_check(&dir.join("before"), "cov");
    assert!(
        c["measured"]
            .as_str()
            .unwrap()
            .starts_with("not compared: no baseline given"),
        "{c:#}"
    );
    std::fs::copy(cov.join("lcov-gcc.info"), dir.join("coverage.info")).unwrap();
    run(dir, "after", &["--baseline", "before/report.json"], &[])
}

#[test]
fn coverage_drop_beyond_a_point_fails_against_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let o = coverage_runs(dir.path());
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let after = dir.path().join("after");
    assert_eq!(status_of(&report_json(&after), "cov"), "fail");
    let c = baseline_check(&after, "cov");
    assert_eq!(c["passed"], false);
    assert_eq!(c["expected"], "vs baseline: coverage ≥ −1 points");
    let measured = c["measured"].as_str().unwrap();
    assert!(
        measured.starts_with("line 62.16 → 56.52 %")
            && measured.contains("line coverage 56.52 % fell 5.64 points from 62.16 %"),
        "{measured}"
    );
    // The report row shows it beside the item's own checks.
    let md = std::fs::read_to_string(after.join("report.md")).unwrap();
    assert!(md.contains("62.16 → 56.52"), "{md}");
}

#[test]
fn truncated_or_foreign_baseline_is_an_input_error_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    coverage_runs(dir.path());
    // Truncated, named by `[checklist] baseline` (relative to the checklist).
    let path = dir.path().join("before/report.json");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let with_key = COVERAGE_CHECKLIST.replace(
        "name = \"coverage baseline\"\n",
        "name = \"coverage baseline\"\nbaseline = \"before\"\n",
    );
    std::fs::write(dir.path().join("checklist.toml"), with_key).unwrap();
    let o = run(dir.path(), "cut", &[], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("before/report.json") && err.contains("not a valid prodready report"),
        "{err}"
    );
    assert!(!dir.path().join("cut").exists(), "an item ran");
    // Foreign: "after" was written by the checklist before the `baseline` key was added.
    let o = run(dir.path(), "foreign", &["--baseline", "after"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("after/report.json")
            && err.contains("not a baseline of this report")
            && err.contains("--allow-other-checklist"),
        "{err}"
    );
    assert!(!dir.path().join("foreign").exists(), "an item ran");
}

#[test]
fn an_item_the_baseline_lacks_is_not_compared_and_only_warns() {
    let dir = tempfile::tempdir().unwrap();
    coverage_runs(dir.path());
    let extra = COVERAGE_CHECKLIST.to_string()
        + &COVERAGE_CHECKLIST[COVERAGE_CHECKLIST.find("[[item]]").unwrap()..]
            .replace("id = \"cov\"", "id = \"cov-new\"");
    std::fs::write(dir.path().join("checklist.toml"), extra).unwrap();
    // Another checklist digest now: accepted only on request.
    let o = run(
        dir.path(),
        "grown",
        &["--baseline", "before", "--allow-other-checklist"],
        &[],
    );
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let grown = dir.path().join("grown");
    let report = report_json(&grown);
    assert_eq!(status_of(&report, "cov"), "fail");
    assert_eq!(status_of(&report, "cov-new"), "warn");
    let c = baseline_check(&grown, "cov-new");
    assert_eq!(
        (&c["passed"], &c["advisory"], &c["measured"]),
        (
            &Value::Bool(false),
            &Value::Bool(true),
            &Value::String("not compared: no baseline item".into())
        ),
        "{c:#}"
    );
}

#[test]
fn a_new_advisory_fails_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // The item's own gate lets everything through, so only the baseline check can fail it.
    let checklist = |allowed: u32| {
        format!(
            "[checklist]\nname = \"audit baseline\"\n\n[[item]]\nid = \"deps\"\nsection = \"Security\"\ntitle = \"Dependencies\"\nseverity = \"major\"\nregression = {{ new_advisories = {allowed} }}\n[item.probe]\nkind = \"audit\"\nreport = \"audit.json\"\nmax_severity = \"critical\"\n"
        )
    };
    std::fs::write(dir.path().join("checklist.toml"), checklist(0)).unwrap();
    let audit = fixtures().join("audit");
    // Real cargo-audit output: a clean lock, then one that adds smallvec 1.6.0.
    std::fs::copy(
        audit.join("cargo-audit-clean.json"),
        dir.path().join("audit.json"),
    )
    .unwrap();
    let o = run(dir.path(), "clean", &[], &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    std::fs::copy(
        audit.join("cargo-audit-vulnerable.json"),
        dir.path().join("audit.json"),
    )
    .unwrap();
    let o = run(dir.path(), "added", &["--baseline", "clean"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let c = baseline_check(&dir.path().join("added"), "deps");
    let measured = c["measured"].as_str().unwrap();
    assert!(
        c["passed"] == false
            && measured.starts_with("advisories added 1, fixed 0")
            && measured.contains("RUSTSEC-2021-0003 (smallvec, critical)"),
        "{c:#}"
    );
    // One new advisory allowed (another checklist digest now, accepted on request).
    std::fs::write(dir.path().join("checklist.toml"), checklist(1)).unwrap();
    let args = ["--baseline", "clean", "--allow-other-checklist"];
    let o = run(dir.path(), "allowed", &args, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    assert_eq!(
        baseline_check(&dir.path().join("allowed"), "deps")["passed"],
        true
    );
}

#[test]
fn a_signed_baseline_edited_after_signing_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    coverage_runs(d);
    keygen(d, "lead", "lead@example.com");
    let sign = [
        "sign",
        "before/report.json",
        "--role",
        "Technical lead",
        "--key",
        "lead",
    ];
    let o = run_in(d, &sign, &[]);
    assert_eq!(o.status.code(), Some(0), "{}", describe(&o));
    // Signed and intact: loaded, and the drop is judged.
    let o = run(d, "signed", &["--baseline", "before"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    assert_eq!(baseline_check(&d.join("signed"), "cov")["passed"], false);
    // Raise the baseline's coverage after signing.
    let path = d.join("before/report.json");
    let mut report: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    report["items"][0]["outcome"]["measured"]["line_percent"] = serde_json::json!(99.0);
    std::fs::write(&path, serde_json::to_vec_pretty(&report).unwrap()).unwrap();
    let o = run(d, "tampered", &["--baseline", "before"], &[]);
    assert_eq!(o.status.code(), Some(2), "{}", describe(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("before/report.json") && err.contains("refusing a tampered report"),
        "{err}"
    );
    assert!(!d.join("tampered").exists(), "an item ran");
}

#[test]
fn a_baseline_item_that_did_not_measure_makes_the_item_an_error_never_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("checklist.toml"), COVERAGE_CHECKLIST).unwrap();
    // No coverage report yet: the baseline's item is an error.
    let o = run(d, "before", &[], &[]);
    assert_eq!(
        status_of(&report_json(&d.join("before")), "cov"),
        "error",
        "{}",
        describe(&o)
    );
    std::fs::copy(
        fixtures().join("coverage/cargo-llvm-cov.info"),
        d.join("coverage.info"),
    )
    .unwrap();
    let o = run(d, "after", &["--baseline", "before"], &[]);
    assert_eq!(o.status.code(), Some(1), "{}", describe(&o));
    let after = d.join("after");
    assert_eq!(status_of(&report_json(&after), "cov"), "error");
    let c = baseline_check(&after, "cov");
    assert_eq!(c["passed"], false);
    assert_eq!(
        c["measured"],
        "not compared: the baseline item did not measure (status error)"
    );
}
