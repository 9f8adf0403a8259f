//! Reading drill steps as a user meets it: `prodready check` refuses a key that does not
//! apply to a step at that key's line, naming the keys that do, and the published schema
//! describes the same steps (the shipped drills validate against it).

use std::path::Path;

mod common;

use common::{HEAD, run_in, write};

/// A drill written as `[[item.probe.step]]` tables whose third step carries `line` too.
fn drill_with(line: &str) -> String {
    format!(
        "{HEAD}[[service]]\nname = \"agent\"\ncommand = [\"sleep\", \"60\"]\n\n[[proxy]]\nname = \"gw\"\nupstream = \"127.0.0.1:9\"\n\n\
         [[item]]\nid = \"d\"\nsection = \"Drills\"\ntitle = \"Drill\"\nseverity = \"major\"\n[item.probe]\nkind = \"drill\"\n\n\
         [[item.probe.step]]\nproxy = \"gw\"\nfault = \"down\"\n\n\
         [[item.probe.step]]\nwait = \"1s\"\n\n\
         [[item.probe.step]]\nname = \"agent still runs\"\nexpect = \"process\"\nservice = \"agent\"\nwithin = \"1s\"\n{line}\n"
    )
}

/// `prodready check` on `text`: its exit code and its message.
fn check(text: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "c.toml", text);
    let out = run_in(dir.path(), &["check", "c.toml"], &[]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).trim().to_string(),
    )
}

#[test]
fn a_key_that_does_not_apply_to_a_step_is_refused_at_its_line_naming_the_keys_that_do() {
    let (code, ok) = check(&drill_with(""));
    assert_eq!(code, Some(0), "{ok}");
    let text = drill_with("hodl = \"2s\"");
    let line = text.lines().position(|l| l.starts_with("hodl")).unwrap() + 1;
    let (code, message) = check(&text);
    assert_eq!(code, Some(2), "{message}");
    assert_eq!(
        message,
        format!(
            "error: c.toml:{line}:1: item \"d\": probe.step[2].hodl: `hodl` does not apply to an `expect = \"process\"` step (it takes: expect, service, running, unchanged, max_restarts, within, hold, interval, save, equals_saved, name, needs)"
        )
    );
    // A key of the right name with a value of the wrong type, at the same place.
    let (_, message) = check(&drill_with("hold = 2"));
    assert_eq!(
        message,
        format!(
            "error: c.toml:{line}:1: item \"d\": probe.step[2].hold: invalid type: integer \"2\", expected a string"
        )
    );
    // A key of another fault of the same proxy step.
    let text = drill_with("").replace("fault = \"down\"\n", "fault = \"down\"\nbytes = 10\n");
    let line = text.lines().position(|l| l.starts_with("bytes")).unwrap() + 1;
    let (_, message) = check(&text);
    assert_eq!(
        message,
        format!(
            "error: c.toml:{line}:1: item \"d\": probe.step[0].bytes: `bytes` does not apply to a `proxy` step with `fault = \"down\"` (it takes: proxy, fault, name, needs)"
        )
    );
}

#[test]
fn the_published_schema_accepts_the_shipped_drills_and_refuses_a_key_that_does_not_apply() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let schema: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("schema/checklist.schema.json")).unwrap(),
    )
    .unwrap();
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let text = std::fs::read_to_string(root.join("checklists/drills.toml")).unwrap();
    let drills: serde_json::Value = toml::from_str(&text).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&drills)
        .map(|e| format!("{e} at {}", e.instance_path))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let mut bad = drills.clone();
    bad["item"][0]["probe"]["step"][0]["grace"] = serde_json::json!("1s");
    assert!(!validator.is_valid(&bad));
}
