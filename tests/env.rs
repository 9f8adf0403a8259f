//! The `env` probe's `matches`: a value against a regular expression, shown as matches or
//! not, never the value.

mod common;

use common::*;

const ENV_ITEM: OneItem = OneItem {
    checklist: "env test",
    id: "account",
    section: "Configuration",
    title: "Paper account",
    severity: "blocker",
    timeout: None,
    kind: "env",
};

#[test]
fn values_are_matched_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let probe = "matches = { IB_ACCOUNT = \"^DU\", TRADING_MODE = \"^READ_ONLY$\" }";
    let env = [("IB_ACCOUNT", "DU7391846"), ("TRADING_MODE", "READ_ONLY")];
    let (code, o) = run_item(dir.path(), &ENV_ITEM, probe, &env);
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
    let env = [("IB_ACCOUNT", "U7391846"), ("TRADING_MODE", "READ_ONLY")];
    let (code, o) = run_item(dir.path(), &ENV_ITEM, probe, &env);
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    assert_eq!(
        o["summary"], "not matching: IB_ACCOUNT (does not match)",
        "{o:#}"
    );
    assert!(
        !std::fs::read_to_string(dir.path().join("out/report.md"))
            .unwrap()
            .contains("U7391846")
    );
    assert!(!o.to_string().contains("U7391846"));
    let (code, o) = run_item(
        dir.path(),
        &ENV_ITEM,
        probe,
        &[("TRADING_MODE", "READ_ONLY")],
    );
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    assert_eq!(o["summary"], "not matching: IB_ACCOUNT (unset)", "{o:#}");
}
