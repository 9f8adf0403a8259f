//! The `config` probe on real TOML, YAML and JSON files: values by JSON Pointer against
//! `equals`, `min`, `max` and `matches`, a missing key failing, and an unparsable file an
//! error naming file:line:col.

mod common;

use common::*;

const CONFIG_ITEM: OneItem = OneItem {
    checklist: "config test",
    id: "risk",
    section: "Risk",
    title: "Risk limits",
    severity: "blocker",
    timeout: None,
    kind: "config",
};

const KEYS: &str = r#"keys = [
  { pointer = "/risk/max_position", max = 100 },
  { pointer = "/risk/max_daily_loss", min = 1, max = 5000 },
  { pointer = "/mode", equals = "paper" },
  { pointer = "/account", matches = "^DU" },
  { pointer = "/calendar/holidays/0", equals = "2026-12-25" },
]"#;

#[test]
fn the_same_limits_hold_in_toml_yaml_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "risk.toml",
        "mode = \"paper\"\naccount = \"DU123456\"\n[risk]\nmax_position = 100\nmax_daily_loss = 2500.0\n[calendar]\nholidays = [2026-12-25]\n",
    );
    write(
        d,
        "risk.yaml",
        "mode: paper\naccount: DU123456\nrisk:\n  max_position: 100\n  max_daily_loss: 2500\ncalendar:\n  holidays: [\"2026-12-25\"]\n",
    );
    write(
        d,
        "risk.json",
        r#"{"mode":"paper","account":"DU123456","risk":{"max_position":100,"max_daily_loss":2500},"calendar":{"holidays":["2026-12-25"]}}"#,
    );
    for file in ["risk.toml", "risk.yaml", "risk.json"] {
        let (code, o) = run_item(d, &CONFIG_ITEM, &format!("path = \"{file}\"\n{KEYS}"), &[]);
        assert_eq!(
            (code, o["status"].as_str()),
            (0, Some("pass")),
            "{file}: {o:#}"
        );
        assert_eq!(o["checks"].as_array().unwrap().len(), 5, "{o:#}");
        let account = o["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == "/account")
            .unwrap();
        assert_eq!(
            account["measured"], "matches",
            "the value itself is never shown"
        );
    }
}

#[test]
fn a_limit_too_loose_or_a_missing_key_fails_and_a_broken_file_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "risk.yaml",
        "mode: live\naccount: U999\nrisk:\n  max_position: 5000\n",
    );
    let (code, o) = run_item(
        d,
        &CONFIG_ITEM,
        &format!("path = \"risk.yaml\"\n{KEYS}"),
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    let failed: Vec<(String, String)> = o["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_string(),
                c["measured"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let failed: Vec<(&str, &str)> = failed
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        failed,
        [
            ("/risk/max_position", "5000"),
            ("/risk/max_daily_loss", "missing"),
            ("/mode", "live"),
            ("/account", "does not match"),
            ("/calendar/holidays/0", "missing"),
        ],
        "{o:#}"
    );
    assert!(
        !o.to_string().contains("U999"),
        "a matches value is never shown"
    );
    write(d, "broken.toml", "[risk]\nmax_position = = 100\n");
    let (code, o) = run_item(
        d,
        &CONFIG_ITEM,
        "path = \"broken.toml\"\nkeys = [{ pointer = \"/risk/max_position\", max = 100 }]",
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
    assert!(
        o["summary"].as_str().unwrap().starts_with("broken.toml:2:"),
        "{o:#}"
    );
    write(
        d,
        "broken.json",
        "{\n  \"risk\": {\n    \"max_position\": 100,\n  }\n}\n",
    );
    let (_, o) = run_item(
        d,
        &CONFIG_ITEM,
        "path = \"broken.json\"\nkeys = [{ pointer = \"/risk/max_position\", max = 100 }]",
        &[],
    );
    assert!(
        o["summary"].as_str().unwrap().starts_with("broken.json:4:"),
        "{o:#}"
    );
}
