//! The `log` probe on real files (plain, rotated, gzip-compressed by the real gzip), a real
//! command's output and the real `journalctl`: pattern counts inside a time window, planted
//! credentials found and masked in every output, and fail-closed errors.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

const LOG_ITEM: OneItem = OneItem {
    checklist: "log test",
    id: "logs",
    section: "Observability",
    title: "Logs",
    severity: "major",
    timeout: None,
    kind: "log",
};

/// A UTC time `secs` seconds ago, as `%Y-%m-%d %H:%M:%S`.
fn ago(secs: i64) -> String {
    let t = jiff::Timestamp::now() - jiff::SignedDuration::from_secs(secs);
    t.strftime("%Y-%m-%d %H:%M:%S").to_string()
}

#[test]
fn errors_are_counted_inside_the_window_by_each_lines_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("logs")).unwrap();
    let mut text = String::new();
    for _ in 0..5 {
        text.push_str(&format!("{} ERROR old failure\n", ago(3 * 3600)));
    }
    text.push_str(&format!("{} INFO started\n", ago(1800)));
    text.push_str(&format!("{} ERROR broker timeout\n", ago(1200)));
    text.push_str("    at connect (stack trace line, no time of its own)\n");
    text.push_str(&format!("{} ERROR broker timeout\n", ago(600)));
    write(&d.join("logs"), "app.log", &text);
    let probe = |max: u32| {
        format!(
            "files = [\"logs/app.log*\"]\nsince = \"1h\"\ntimestamp = '^(\\d{{4}}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d)'\ntimestamp_format = \"%Y-%m-%d %H:%M:%S\"\npattern = \"ERROR\"\nmax = {max}\n"
        )
    };
    let (code, o) = run_item(d, &LOG_ITEM, &probe(2), &[]);
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
    assert_eq!(measured(&o, "matches"), 2.0, "{o:#}");
    assert_eq!(measured(&o, "lines"), 4.0, "{o:#}");
    let (code, o) = run_item(d, &LOG_ITEM, &probe(1), &[]);
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    let check = &o["checks"][0];
    assert_eq!(check["measured"], "2", "{o:#}");
    assert_eq!(check["expected"], "≤ 1", "{o:#}");
    let evidence = std::fs::read_to_string(d.join("out/evidence/logs/matches.txt")).unwrap();
    assert_eq!(evidence.lines().count(), 2, "{evidence}");
    assert!(evidence.starts_with("logs/app.log:7: "), "{evidence}");
}

/// Everything a run leaves for people and machines: stdout, stderr and every file written.
fn all_output(dir: &Path, out: &std::process::Output) -> String {
    let mut all = String::from_utf8_lossy(&out.stdout).into_owned();
    all.push_str(&String::from_utf8_lossy(&out.stderr));
    for f in walk(&dir.join("out")) {
        all.push_str(&String::from_utf8_lossy(&std::fs::read(&f).unwrap()));
    }
    all
}

#[test]
fn planted_credentials_are_found_by_place_and_kind_and_masked_in_every_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let logs = d.join("logs");
    std::fs::create_dir(&logs).unwrap();
    // A real private key, dumped into the log the way a careless debug line would.
    openssl(
        &logs,
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:1024",
            "-out",
            "key.pem",
        ],
    );
    let key = std::fs::read_to_string(logs.join("key.pem")).unwrap();
    std::fs::remove_file(logs.join("key.pem")).unwrap();
    let key_body = key.lines().nth(3).unwrap().to_string();
    let token = "tok-live-9f8e7d6c5b4a";
    write(
        &logs,
        "app.log",
        &format!("INFO starting\nDEBUG loaded key\n{key}INFO ready\n"),
    );
    write(
        &logs,
        "app.log.1",
        &format!("INFO login\nERROR broker refused token {token}\n"),
    );
    write(
        &logs,
        "app.log.2",
        "ERROR sts: AKIAIOSFODNN7EXAMPLE expired\nINFO password=*** (placeholder)\n",
    );
    let gz = Command::new("gzip")
        .arg("app.log.2")
        .current_dir(&logs)
        .status()
        .unwrap();
    assert!(gz.success());
    let checklist = format!(
        "{HEAD}{}{}",
        item(
            "broker-token",
            "minor",
            r#"{ kind = "command", command = ["true", "${BROKER_TOKEN}"] }"#
        ),
        item(
            "logs",
            "major",
            r#"{ kind = "log", files = ["logs/app.log*"], secrets = true, pattern = "ERROR", max = 0 }"#
        )
    );
    write(d, "c.toml", &checklist);
    let out = run_in(
        d,
        &["run", "c.toml", "--out", "out"],
        &[("BROKER_TOKEN", token)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let report = report_json(&d.join("out"));
    let o = outcome(&report, "logs");
    assert_eq!(o["status"], "fail", "{o:#}");
    assert_eq!(measured(o, "secrets_found"), 3.0, "{o:#}");
    let rows: Vec<String> = o["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"].as_str().unwrap().starts_with("Secrets"))
        .expect("a secrets table")["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} | {} | {}",
                r[0].as_str().unwrap(),
                r[1].as_str().unwrap(),
                r[2].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            "logs/app.log:3 | private key | -----BEGIN PRIVATE KEY-----",
            "logs/app.log.1:2 | value of ${BROKER_TOKEN} | ${BROKER_TOKEN}",
            "logs/app.log.2.gz:1 | AWS access key id | AKIA[masked 16 chars]",
        ],
        "{o:#}"
    );
    let all = all_output(d, &out);
    assert!(all.contains("${BROKER_TOKEN}"), "the masked form is shown");
    for secret in [token, "IOSFODNN7EXAMPLE", key_body.as_str()] {
        assert!(!all.contains(secret), "{secret} leaked into an output");
    }
    let evidence = std::fs::read_to_string(d.join("out/evidence/logs/matches.txt")).unwrap();
    assert!(
        evidence.contains("logs/app.log.1:2: ERROR broker refused token ${BROKER_TOKEN}"),
        "{evidence}"
    );
}

#[test]
fn a_command_s_output_is_read_and_a_failing_command_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let probe = r#"command = ["sh", "-c", "echo 'INFO a'; echo 'ERROR b' >&2"]
pattern = "ERROR"
max = 0"#;
    let (code, o) = run_item(d, &LOG_ITEM, probe, &[]);
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    assert_eq!(measured(&o, "lines"), 2.0);
    let probe = "command = [\"sh\", \"-c\", \"echo 'INFO a'; exit 3\"]\nsecrets = true";
    let (code, o) = run_item(d, &LOG_ITEM, probe, &[]);
    assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
    assert!(o["summary"].as_str().unwrap().contains("exited"), "{o:#}");
}

#[test]
fn no_line_to_read_is_an_error_not_a_pass() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // No file matches.
    let (code, o) = run_item(
        d,
        &LOG_ITEM,
        "files = [\"logs/*.log\"]\nsecrets = true",
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
    assert!(
        o["summary"].as_str().unwrap().contains("no file matches"),
        "{o:#}"
    );
    // A file last written before the window.
    let old = write(d, "old.log", "ERROR long ago\n");
    let three_hours_ago =
        filetime::FileTime::from_unix_time(jiff::Timestamp::now().as_second() - 3 * 3600, 0);
    filetime::set_file_mtime(&old, three_hours_ago).unwrap();
    let (code, o) = run_item(
        d,
        &LOG_ITEM,
        "files = [\"old.log\"]\nsince = \"1h\"\npattern = \"ERROR\"\nmax = 0",
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
    assert!(
        o["summary"]
            .as_str()
            .unwrap()
            .contains("modified before the window"),
        "{o:#}"
    );
    // An empty file.
    write(d, "empty.log", "");
    let (code, o) = run_item(d, &LOG_ITEM, "files = [\"empty.log\"]\nsecrets = true", &[]);
    assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
}

#[test]
fn the_journal_needs_journalctl_and_lines() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let probe = "unit = \"trading-agent.service\"\nsince = \"1h\"\nsecrets = true";
    // Without journalctl on PATH.
    let empty = d.join("empty-path");
    std::fs::create_dir(&empty).unwrap();
    let (code, o) = run_item(d, &LOG_ITEM, probe, &[("PATH", empty.to_str().unwrap())]);
    assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
    assert!(
        o["summary"]
            .as_str()
            .unwrap()
            .contains("`journalctl` is not installed"),
        "{o:#}"
    );
    // With the real journalctl, a unit with no entries here is an error too.
    if on_path("journalctl").is_some() {
        let (code, o) = run_item(d, &LOG_ITEM, probe, &[]);
        assert_eq!((code, o["status"].as_str()), (1, Some("error")), "{o:#}");
    }
}
