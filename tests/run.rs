//! `prodready run` end to end: exit codes, located checklist errors, timeouts that kill whole
//! process groups, services, interruption, secret redaction, waivers and the report files.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
fn passing_checklist_exits_0_and_writes_three_reports() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}{}",
        item(
            "true",
            "blocker",
            r#"{ kind = "command", command = ["true"] }"#
        ),
        item("env", "major", r#"{ kind = "env", vars = ["PATH"] }"#)
    );
    write(dir.path(), "ok.toml", &text);
    let out = run_in(dir.path(), &["run", "ok.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    for f in ["report.json", "report.md", "report.html", "junit.xml"] {
        assert!(dir.path().join("out").join(f).is_file(), "{f} written");
    }
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["verdict"], "ready");
    assert_eq!(r["counts"]["pass"], 2);
    assert_eq!(r["run"]["checklist"]["name"], "test run");
    assert_eq!(r["run"]["checklist"]["sha256"].as_str().unwrap().len(), 64);
    assert!(String::from_utf8_lossy(&out.stdout).contains("verdict: READY"));
}

#[test]
fn failing_blocker_exits_1_and_minor_failure_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}{}",
        item(
            "minor-fail",
            "minor",
            r#"{ kind = "command", command = ["false"] }"#
        ),
        item(
            "blocker-fail",
            "blocker",
            r#"{ kind = "command", command = ["sh", "-c", "exit 3"] }"#
        )
    );
    write(dir.path(), "c.toml", &text);
    let out = run_in(dir.path(), &["run", "c.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["verdict"], "not-ready");
    assert_eq!(status_of(&r, "blocker-fail"), "fail");
    let reasons = r["reasons"].to_string();
    assert!(reasons.contains("blocker-fail"), "{reasons}");
    assert!(
        !reasons.contains("minor-fail"),
        "minor failures do not block by default: {reasons}"
    );

    // Only the minor item: ready by default, not ready with --fail-on minor.
    let out = run_in(
        dir.path(),
        &["run", "c.toml", "--out", "o2", "--only", "minor-fail"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let out = run_in(
        dir.path(),
        &[
            "run",
            "c.toml",
            "--out",
            "o3",
            "--only",
            "minor-fail",
            "--fail-on",
            "minor",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
}

#[test]
fn malformed_checklist_exits_2_with_file_line_column() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.toml",
        "[checklist]\nname = \"bad\"\n\n[[item]]\nid = \"x\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"critical\"\nprobe = { kind = \"env\", vars = [\"A\"] }\n",
    );
    let out = run_in(dir.path(), &["run", "bad.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    insta::assert_snapshot!("unknown_severity", String::from_utf8_lossy(&out.stderr));

    write(dir.path(), "syntax.toml", "[checklist]\nname = \"bad\n");
    let out = run_in(dir.path(), &["run", "syntax.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    insta::assert_snapshot!("toml_syntax", String::from_utf8_lossy(&out.stderr));
    assert!(
        !dir.path().join("reports").exists(),
        "nothing runs for an invalid checklist"
    );
}

#[test]
fn missing_checklist_file_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(dir.path(), &["run", "nowhere.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nowhere.toml: no such checklist file"));
}

#[test]
fn misspelled_threshold_key_is_rejected_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[[item]]\nid = \"health\"\nsection = \"Monitoring\"\ntitle = \"Health\"\nseverity = \"blocker\"\n[item.probe]\nkind = \"http\"\nurl = \"http://127.0.0.1:9/healthz\"\nmax_latency_ms = 100\n"
    );
    write(dir.path(), "typo.toml", &text);
    let out = run_in(dir.path(), &["run", "typo.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    insta::assert_snapshot!("misspelled_threshold", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn unset_variable_is_an_error_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}",
        item(
            "x",
            "major",
            r#"{ kind = "command", command = ["touch", "ran-${PRODREADY_TEST_UNSET_VAR}"] }"#
        )
    );
    write(dir.path(), "v.toml", &text);
    let out = run_in(dir.path(), &["run", "v.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("v.toml:11:49: item \"x\": probe.command[1]:"),
        "{err}"
    );
    assert!(err.contains("PRODREADY_TEST_UNSET_VAR is not set"), "{err}");
    assert!(!dir.path().join("out").exists());
}

#[test]
fn hanging_command_with_children_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // The shell forks two sleepers and records its pid (= the process group id).
    let text = format!(
        "{HEAD}{}",
        item(
            "hang",
            "major",
            r#"{ kind = "command", command = ["sh", "-c", "echo $$ > pgid; sleep 300 & sleep 300 & wait"], timeout = "1s" }"#
        )
    );
    write(dir.path(), "h.toml", &text);
    let started = Instant::now();
    let out = run_in(dir.path(), &["run", "h.toml", "--out", "out"], &[]);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "timeout honoured"
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "hang"), "error");
    assert!(r.to_string().contains("timed out after 1.00 s"), "{r}");
    let pgid: i32 = std::fs::read_to_string(dir.path().join("pgid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // No process of the group is left running (killed children may linger briefly as zombies
    // until init reaps them; those hold no resources and run nothing).
    let live = live_group_members(pgid);
    assert!(
        live.is_empty(),
        "process group {pgid} still has running members: {live:?}"
    );
}

/// PIDs of processes in group `pgid` that are not zombies, from /proc/PID/stat.
fn live_group_members(pgid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state, ppid, pgrp, ...
        let Some(rest) = stat
            .rsplit_once(')')
            .map(|(_, r)| r.split_whitespace().collect::<Vec<_>>())
        else {
            continue;
        };
        if rest.len() > 2 && rest[2].parse::<i32>() == Ok(pgid) && rest[0] != "Z" && rest[0] != "X"
        {
            out.push(pid);
        }
    }
    out
}

#[test]
fn item_timeout_bounds_any_probe() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[[item]]\nid = \"slow\"\nsection = \"S\"\ntitle = \"T\"\nseverity = \"major\"\ntimeout = \"500ms\"\nprobe = {{ kind = \"command\", command = [\"sleep\", \"30\"] }}\n"
    );
    write(dir.path(), "t.toml", &text);
    let started = Instant::now();
    let out = run_in(dir.path(), &["run", "t.toml", "--out", "out"], &[]);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "slow"), "error");
    assert!(r.to_string().contains("item timeout"), "{r}");
}

#[test]
fn service_that_never_becomes_ready_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[[service]]\nname = \"sut\"\ncommand = [\"sleep\", \"60\"]\nready = {{ tcp = \"127.0.0.1:9\", timeout = \"1s\" }}\nstop_timeout = \"2s\"\n\n{}",
        item(
            "x",
            "blocker",
            r#"{ kind = "command", command = ["true"] }"#
        )
    );
    write(dir.path(), "s.toml", &text);
    let out = run_in(dir.path(), &["run", "s.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["services"][0]["ready"], false);
    let msg = r["services"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("not ready after 1.00 s") && msg.contains("127.0.0.1:9"),
        "{msg}"
    );
    assert!(
        r["reasons"][0]
            .as_str()
            .unwrap()
            .contains("service \"sut\" did not become ready")
    );
    assert_eq!(status_of(&r, "x"), "error");
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("did not become ready"), "{md}");
}

#[test]
fn service_is_started_probed_and_stopped() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "www/healthz", "ok\n");
    // A real HTTP server as the system under test, on a port chosen here.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "{HEAD}[[service]]\nname = \"www\"\ncommand = [\"python3\", \"-m\", \"http.server\", \"{port}\", \"--bind\", \"127.0.0.1\", \"--directory\", \"www\"]\nready = {{ http = \"http://127.0.0.1:{port}/healthz\", timeout = \"20s\" }}\n\n{}",
        item(
            "health",
            "blocker",
            &format!(
                r#"{{ kind = "http", url = "http://127.0.0.1:{port}/healthz", body_contains = "ok", max_latency = "2s" }}"#
            )
        )
    );
    write(dir.path(), "svc.toml", &text);
    let out = run_in(dir.path(), &["run", "svc.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["services"][0]["ready"], true);
    assert_eq!(status_of(&r, "health"), "pass");
    // Stopped afterwards: the port is free again.
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "service stopped"
    );
}

#[test]
fn ctrl_c_mid_run_writes_a_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}{}",
        item(
            "quick",
            "major",
            r#"{ kind = "command", command = ["true"] }"#
        ),
        item(
            "long",
            "major",
            r#"{ kind = "command", command = ["sleep", "60"] }"#
        )
    );
    write(dir.path(), "i.toml", &text);
    let child = std::process::Command::new(bin())
        .args(["run", "i.toml", "--out", "out", "--jobs", "1"])
        .current_dir(dir.path())
        .env("CI", "true")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the long item has started (its evidence folder does not exist yet; poll time).
    std::thread::sleep(Duration::from_millis(1500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "stops promptly"
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["run"]["interrupted"], true);
    assert_eq!(r["verdict"], "not-ready");
    assert_eq!(status_of(&r, "quick"), "pass");
    assert_eq!(status_of(&r, "long"), "error");
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("**Interrupted.**"));
}

#[test]
fn variable_values_never_appear_in_any_report_file() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "s3cr3t-Token-4f9a1c";
    let text = format!(
        "{HEAD}{}{}",
        item(
            "echo",
            "major",
            r#"{ kind = "command", command = ["sh", "-c", "echo token=${PAPER_API_KEY}; echo $TOKEN_COPY >&2"], env = { TOKEN_COPY = "${PAPER_API_KEY}" } }"#
        ),
        item(
            "unreachable",
            "minor",
            r#"{ kind = "http", url = "http://127.0.0.1:9/x", headers = { Authorization = "Bearer ${PAPER_API_KEY}" } }"#
        )
    );
    write(dir.path(), "sec.toml", &text);
    let summary = dir.path().join("summary.md");
    let out = std::process::Command::new(bin())
        .args(["run", "sec.toml", "--out", "out"])
        .current_dir(dir.path())
        .env("CI", "true")
        .env("PAPER_API_KEY", secret)
        .env("GITHUB_STEP_SUMMARY", &summary)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert!(
        r.to_string().contains("token=${PAPER_API_KEY}"),
        "output kept, value redacted"
    );
    let mut files = vec![summary.clone()];
    for e in walk(&dir.path().join("out")) {
        files.push(e);
    }
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(secret),
            "secret leaked into {}",
            f.display()
        );
    }
    assert!(!String::from_utf8_lossy(&out.stdout).contains(secret));
    assert!(!String::from_utf8_lossy(&out.stderr).contains(secret));
}

#[test]
fn waivers_apply_until_they_expire() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}{}[[waiver]]\nitem = \"waived\"\nreason = \"Legacy adapter excluded until Q1 refactor\"\napproved_by = \"Technical lead\"\nexpires = 2999-01-31\n\n[[waiver]]\nitem = \"expired\"\nreason = \"Was accepted last year\"\napproved_by = \"Technical lead\"\nexpires = 2020-01-31\n",
        item(
            "waived",
            "blocker",
            r#"{ kind = "command", command = ["false"] }"#
        ),
        item(
            "expired",
            "minor",
            r#"{ kind = "command", command = ["false"] }"#
        )
    );
    write(dir.path(), "w.toml", &text);
    let out = run_in(dir.path(), &["run", "w.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(r["verdict"], "ready-with-waivers");
    assert_eq!(status_of(&r, "waived"), "waived");
    assert_eq!(status_of(&r, "expired"), "fail");
    assert_eq!(r["waivers"][0]["state"], "applied");
    assert_eq!(r["waivers"][1]["state"], "expired");
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert!(md.contains("**expired** — no longer applies"), "{md}");

    // A waiver naming an unknown item is a checklist error.
    let bad = text.replace("item = \"expired\"", "item = \"expird\"");
    write(dir.path(), "w2.toml", &bad);
    let out = run_in(dir.path(), &["run", "w2.toml"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no item with id \"expird\""));
}

#[test]
fn probe_text_cannot_break_markdown_tables() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}",
        item(
            "pipes",
            "minor",
            r#"{ kind = "command", command = ["sh", "-c", "echo 'a|b <script>alert(1)</script>'; exit 1"], stdout_matches = "never|matches" }"#
        )
    );
    write(dir.path(), "p.toml", &text);
    let out = run_in(dir.path(), &["run", "p.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    // Outside fenced code blocks (where the renderer shows text verbatim), HTML is escaped.
    let mut in_fence = false;
    for line in md.lines() {
        if line.starts_with("```") {
            in_fence = !in_fence;
        } else if !in_fence {
            assert!(!line.contains("<script>"), "unescaped HTML: {line}");
        }
    }
    assert!(md.contains("&lt;script&gt;"), "{md}");
    // Every table row of the section table has exactly 6 unescaped pipes.
    let row = md.lines().find(|l| l.contains("`pipes`")).unwrap();
    let unescaped = row.replace("\\|", "").matches('|').count();
    assert_eq!(unescaped, 6, "{row}");
}

#[test]
fn report_rerenders_from_json_and_junit_has_one_case_per_item() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}{}{}",
        item("a", "major", r#"{ kind = "command", command = ["true"] }"#),
        item("b", "minor", r#"{ kind = "command", command = ["false"] }"#),
        item("c", "info", r#"{ kind = "file", path = "missing.md" }"#)
    );
    write(dir.path(), "j.toml", &text);
    let out = run_in(dir.path(), &["run", "j.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let xml = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
    let doc = roxmltree::Document::parse(&xml).expect("junit.xml is well-formed XML");
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    assert_eq!(cases.len(), 3);
    let names: Vec<_> = cases.iter().map(|c| c.attribute("name").unwrap()).collect();
    assert_eq!(names, ["tests.a", "tests.b", "tests.c"]);
    assert_eq!(
        cases[1]
            .children()
            .filter(|n| n.has_tag_name("failure"))
            .count(),
        1
    );

    let re = run_in(
        dir.path(),
        &["report", "out/report.json", "--format", "junit"],
        &[],
    );
    assert_eq!(re.status.code(), Some(0), "{}", describe(&re));
    assert_eq!(
        String::from_utf8_lossy(&re.stdout),
        xml,
        "junit re-rendered identically"
    );
    let re = run_in(
        dir.path(),
        &["report", "out/report.json", "--format", "md"],
        &[],
    );
    let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&re.stdout),
        md,
        "markdown re-rendered identically"
    );

    // A truncated report is invalid input (exit 2), not a crash.
    let json = std::fs::read_to_string(dir.path().join("out/report.json")).unwrap();
    write(dir.path(), "trunc.json", &json[..json.len() / 2]);
    let re = run_in(dir.path(), &["report", "trunc.json"], &[]);
    assert_eq!(re.status.code(), Some(2), "{}", describe(&re));
    assert!(String::from_utf8_lossy(&re.stderr).contains("trunc.json"));
}

#[test]
fn filters_select_items_and_reject_unknown_ids() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[[item]]\nid = \"a\"\nsection = \"Perf\"\ntitle = \"A\"\nseverity = \"major\"\ntags = [\"fast\"]\nprobe = {{ kind = \"command\", command = [\"true\"] }}\n\n{}",
        item("b", "major", r#"{ kind = "command", command = ["false"] }"#)
    );
    write(dir.path(), "f.toml", &text);
    for args in [
        vec!["--tag", "fast"],
        vec!["--section", "perf"],
        vec!["--only", "a"],
    ] {
        let mut a = vec!["run", "f.toml", "--out", "out"];
        a.extend(args.iter().copied());
        let out = run_in(dir.path(), &a, &[]);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        let r = report_json(&dir.path().join("out"));
        assert_eq!(status_of(&r, "b"), "skipped");
    }
    let out = run_in(dir.path(), &["run", "f.toml", "--only", "nope"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", describe(&out));
}

#[test]
fn a_filtered_run_is_partial_everywhere_and_exits_with_the_verdict_of_what_ran() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}[[item]]\nid = \"a\"\nsection = \"Perf\"\ntitle = \"A\"\nseverity = \"major\"\ntags = [\"fast\"]\nprobe = {{ kind = \"command\", command = [\"true\"] }}\n\n{}{}",
        item("b", "major", r#"{ kind = "command", command = ["true"] }"#),
        item(
            "c",
            "blocker",
            r#"{ kind = "command", command = ["false"] }"#
        )
    );
    write(dir.path(), "p.toml", &text);
    for (args, filters) in [
        (vec!["--only", "a"], "--only a"),
        (vec!["--tag", "fast"], "--tag fast"),
    ] {
        let mut a = vec!["run", "p.toml", "--out", "out"];
        a.extend(args.iter().copied());
        let out = run_in(dir.path(), &a, &[]);
        // The items that ran pass: a CI job gating on a tag on purpose still passes.
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", describe(&out));
        let r = report_json(&dir.path().join("out"));
        assert_eq!(r["verdict"], "ready");
        assert_eq!(r["partial"], true, "{args:?}");
        assert_eq!(r["not_run"], serde_json::json!(["b", "c"]));
        assert_eq!(status_of(&r, "c"), "skipped");
        let md = std::fs::read_to_string(dir.path().join("out/report.md")).unwrap();
        assert!(
            md.contains("## Verdict: ✅ **READY** for 1 of 3 items (2 not run)\n"),
            "{md}"
        );
        assert!(
            md.contains(&format!(
                "> **Partial run.** The filters ({filters}) selected 1 of 3 items; this verdict is theirs, not the checklist's. Not run: `b`, `c`."
            )),
            "{md}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("verdict: READY for 1 of 3 items (2 not run)\n"),
            "{stdout}"
        );
        assert!(
            stdout.contains(&format!("partial run ({filters})"))
                && stdout.contains("not run: b, c"),
            "{stdout}"
        );
        let xml = std::fs::read_to_string(dir.path().join("out/junit.xml")).unwrap();
        let doc = roxmltree::Document::parse(&xml).unwrap();
        let props: Vec<(&str, &str)> = doc
            .descendants()
            .filter(|n| {
                n.has_tag_name("property")
                    && n.parent()
                        .and_then(|p| p.parent())
                        .is_some_and(|s| s.has_tag_name("testsuite"))
            })
            .map(|n| (n.attribute("name").unwrap(), n.attribute("value").unwrap()))
            .collect();
        assert!(props.contains(&("partial", "true")), "{xml}");
        assert!(props.contains(&("not_run", "b,c")), "{xml}");
        assert!(
            props.contains(&("verdict", "ready for 1 of 3 items (2 not run)")),
            "{xml}"
        );
    }

    // A report written before `partial` existed (no such keys) is still read, and a filtered
    // one is still shown as partial: the filters and the items they left out say so.
    let mut old = report_json(&dir.path().join("out"));
    let obj = old.as_object_mut().unwrap();
    obj.remove("partial");
    obj.remove("not_run");
    write(
        dir.path(),
        "old.json",
        &serde_json::to_string_pretty(&old).unwrap(),
    );
    let re = run_in(dir.path(), &["report", "old.json", "--format", "md"], &[]);
    assert_eq!(re.status.code(), Some(0), "{}", describe(&re));
    let md = String::from_utf8_lossy(&re.stdout);
    assert!(
        md.contains("**READY** for 1 of 3 items (2 not run)"),
        "{md}"
    );

    // The full run: no partial key, no partial banner, and the failing blocker decides.
    let out = run_in(dir.path(), &["run", "p.toml", "--out", "full"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("full"));
    assert!(
        r.get("partial").is_none() && r.get("not_run").is_none(),
        "{r}"
    );
    let md = std::fs::read_to_string(dir.path().join("full/report.md")).unwrap();
    assert!(md.contains("## Verdict: ❌ **NOT READY**\n"), "{md}");
    assert!(!md.contains("Partial run"), "{md}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("partial"));
    // Filters that select every item leave nothing out: not partial.
    let out = run_in(
        dir.path(),
        &[
            "run",
            "p.toml",
            "--out",
            "all",
            "--section",
            "perf",
            "--section",
            "tests",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    assert!(
        report_json(&dir.path().join("all"))
            .get("partial")
            .is_none()
    );
}

#[test]
fn command_extracts_a_number_and_fails_closed_without_one() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "{HEAD}{}{}{}",
        item(
            "cov",
            "major",
            r#"{ kind = "command", command = ["echo", "coverage: 91.5%"], extract = { regex = "coverage: ([0-9.]+)%", min = 90, name = "coverage" } }"#
        ),
        item(
            "low",
            "major",
            r#"{ kind = "command", command = ["echo", "coverage: 42%"], extract = { regex = "coverage: ([0-9.]+)%", min = 90 } }"#
        ),
        item(
            "none",
            "major",
            r#"{ kind = "command", command = ["echo", "nothing here"], extract = { regex = "coverage: ([0-9.]+)%", min = 90 } }"#
        )
    );
    write(dir.path(), "x.toml", &text);
    let out = run_in(dir.path(), &["run", "x.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "cov"), "pass");
    assert_eq!(status_of(&r, "low"), "fail");
    assert_eq!(status_of(&r, "none"), "error");
}

#[test]
fn file_probe_checks_headings_size_and_mode() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "runbook.md",
        "# Runbook\n\n## Rollback procedure\n\nSteps.\n\n```\n# Restore\n```\n",
    );
    let env = write(dir.path(), ".env", "KEY=1\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o644)).unwrap();
    let text = format!(
        "{HEAD}{}{}{}",
        item(
            "runbook",
            "major",
            r#"{ kind = "file", path = "runbook.md", headings = ["Rollback procedure"], min_size = "10B" }"#
        ),
        item(
            "restore",
            "major",
            r#"{ kind = "file", path = "runbook.md", headings = ["Restore"] }"#
        ),
        item(
            "dotenv",
            "major",
            r#"{ kind = "file", path = ".env", max_mode = "0600" }"#
        )
    );
    write(dir.path(), "f.toml", &text);
    let out = run_in(dir.path(), &["run", "f.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "runbook"), "pass");
    assert_eq!(
        status_of(&r, "restore"),
        "fail",
        "a heading inside a code block does not count"
    );
    assert_eq!(status_of(&r, "dotenv"), "fail");
    assert!(r.to_string().contains("\"measured\":\"0644\""), "{r}");
}

#[test]
fn reports_hold_no_absolute_path_of_the_machine_that_ran_them() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let sub = root.join("checklists");
    std::fs::create_dir_all(&sub).unwrap();
    // Probes that put absolute paths into their texts: a command printing its working folder
    // (the checklist's) and a missing file, and the report folder given as an absolute path.
    let text = format!(
        "{HEAD}{}{}",
        item(
            "pwd",
            "major",
            r#"{ kind = "command", command = ["sh", "-c", "pwd; echo \"out: $0\"; exit 1"] }"#
        ),
        item(
            "runbook",
            "major",
            r#"{ kind = "file", path = "docs/runbook.md" }"#
        )
    );
    write(&sub, "gate.toml", &text);
    let out_dir = root.join("reports/gate");
    let out = run_in(
        &root,
        &[
            "run",
            "checklists/gate.toml",
            "--out",
            out_dir.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&out_dir);
    assert_eq!(r["run"]["checklist"]["path"], "gate.toml");
    let absolute = root.to_str().unwrap();
    for f in ["report.json", "report.md", "report.html", "junit.xml"] {
        let text = std::fs::read_to_string(out_dir.join(f)).unwrap();
        assert!(!text.contains(absolute), "{f} holds {absolute}:\n{text}");
    }
    // The texts still say where: relative to the checklist's folder.
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("docs/runbook.md"), "{md}");
}

#[test]
fn any_item_can_run_during_another_even_with_one_job() {
    // `wait` passes only when `mark` creates the file while it waits. With `--jobs 1` the two
    // would run one after the other; item-level `during` starts `mark` together with `wait`.
    let dir = tempfile::tempdir().unwrap();
    let wait = r#"{ kind = "command", command = ["sh", "-c", "for i in $(seq 300); do [ -f m ] && exit 0; sleep 0.1; done; exit 1"] }"#;
    let text = format!(
        "{HEAD}{}{}\nduring = \"wait\"\n",
        item("wait", "major", wait),
        item(
            "mark",
            "major",
            r#"{ kind = "command", command = ["touch", "m"] }"#
        )
        .trim_end()
    );
    write(dir.path(), "d.toml", &text);
    let out = run_in(
        dir.path(),
        &["run", "d.toml", "--out", "out", "--jobs", "1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "wait"), "pass");
    assert_eq!(status_of(&r, "mark"), "pass");
}
