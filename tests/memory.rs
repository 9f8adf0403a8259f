//! The `memory` probe against real processes: a Python process that really leaks, processes
//! with a real allocator sawtooth, a target that restarts mid-window, sampling `during` another
//! item, fail-closed cases, and (once the paper broker is merged) the broker with an injected
//! leak. Every process here exits by itself within a bounded lifetime and is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod common;

// A child process, killed when dropped.
use common::ChildGuard as Proc;
use common::{bin, measured, outcome};

const MIB: f64 = 1024.0 * 1024.0;

fn memproc() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/memory/memproc.py")
}

/// The real Python interpreter (not a version-manager shim), so the PID we start is the PID
/// that allocates.
fn python() -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .expect("python3 is installed");
    assert!(out.status.success(), "python3 -c failed");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .trim()
        .to_string()
}

impl Proc {
    fn pid(&self) -> u32 {
        self.0.id()
    }
}

/// Start `memproc.py` with `args` and wait for its "ready" line.
fn start(args: &[&str]) -> Proc {
    let mut child = Command::new(python())
        .arg(memproc())
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn memproc.py");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("read ready line");
    assert!(line.starts_with("ready "), "memproc.py said {line:?}");
    Proc(child)
}

/// Write `toml` as a checklist in `dir`, run it, and return the exit code and report.json.
fn run(dir: &Path, toml: &str) -> (i32, serde_json::Value) {
    let path = dir.join("checklist.toml");
    std::fs::write(&path, toml).expect("write checklist");
    let out_dir = dir.join("report");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(bin())
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .expect("run prodready");
    let code = out.status.code().expect("exit code");
    let text = std::fs::read_to_string(out_dir.join("report.json")).unwrap_or_else(|e| {
        panic!(
            "no report.json ({e}); exit {code}; stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (
        code,
        serde_json::from_str(&text).expect("report.json parses"),
    )
}

fn status(o: &serde_json::Value) -> &str {
    o["status"].as_str().expect("status")
}

const HEAD: &str = "[checklist]\nname = \"memory test\"\n\n";

/// The details of item `id` in report.md: from its anchor to the next item's (or the end).
fn md_item(dir: &Path, id: &str) -> String {
    let md = std::fs::read_to_string(dir.join("report/report.md")).expect("report.md");
    let start = md
        .find(&format!("<a id=\"item-{id}\"></a>"))
        .unwrap_or_else(|| panic!("no details of {id} in report.md"));
    let rest = &md[start + 1..];
    let end = rest
        .find("<a id=\"item-")
        .map_or(md.len(), |e| start + 1 + e);
    md[start..end].to_string()
}

/// A checklist with a `load` item that runs `sleep SECS` and a memory item sampling `pid`
/// during it, every second, with the default warm-up and min_samples (20).
fn during_load(pid: u32, secs: u64) -> String {
    format!(
        "{HEAD}[[item]]\nid = \"load\"\nsection = \"Performance\"\ntitle = \"Load\"\nseverity = \"major\"\n\
         probe = {{ kind = \"command\", command = [\"sleep\", \"{secs}\"] }}\n\n{}",
        memory_item(
            "mem",
            &format!("pid = {pid}"),
            "during = \"load\"\nmax_growth = \"10MiB/h\""
        )
    )
}

/// Nothing in the outcome or the item's report.md section projects growth or claims it is
/// ruled out.
fn assert_no_finding(dir: &Path, o: &serde_json::Value, id: &str) {
    let json = o.to_string();
    assert!(!json.contains("in 24 h"), "a projection: {o:#}");
    assert!(
        o["measured"].get("projected_growth_24h_bytes").is_none(),
        "{o:#}"
    );
    let checks = o["checks"].as_array().expect("checks");
    assert!(
        !checks.iter().any(|c| c["name"] == "leak ruled out"),
        "{o:#}"
    );
    let md = md_item(dir, id);
    assert!(!md.contains("in 24 h"), "{md}");
    assert!(!md.contains("leak ruled out"), "{md}");
    assert!(!md.contains("✅"), "{md}");
}

fn memory_item(id: &str, target: &str, extra: &str) -> String {
    format!(
        "[[item]]\nid = \"{id}\"\nsection = \"Performance\"\ntitle = \"No memory leak ({id})\"\nseverity = \"major\"\n\
         [item.probe]\nkind = \"memory\"\n{target}\ninterval = \"1s\"\n{extra}\n\n"
    )
}

#[test]
fn python_leak_of_30_mib_per_minute_is_flagged_with_its_rate() {
    // 1 MiB retained every 2 s: 30 MiB/min = 1800 MiB/h.
    let leak = start(&["leak", "1048576", "2", "80"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "{HEAD}{}",
        memory_item(
            "leak",
            &format!("pid = {}", leak.pid()),
            "duration = \"45s\"\nwarmup = \"5s\"\nmax_growth = \"100MiB/h\"\nmin_samples = 30"
        )
    );
    let (code, report) = run(dir.path(), &toml);
    let o = outcome(&report, "leak");
    assert_eq!(status(o), "fail", "{o:#}");
    assert_eq!(code, 1, "a failing major item makes the run not ready");
    let slope = measured(o, "slope_bytes_per_hour") / MIB;
    assert!(
        (slope / 1800.0 - 1.0).abs() < 0.25,
        "slope {slope:.0} MiB/h should be within 25 % of the injected 1800 MiB/h"
    );
    let low = measured(o, "slope_low_bytes_per_hour") / MIB;
    assert!(low > 100.0 && low <= slope, "lower bound {low}");
    assert_eq!(o["measured"]["mann_kendall_trend"], "increasing");
    assert_eq!(o["measured"]["metric"], "RssAnon");
    assert!(measured(o, "projected_growth_24h_bytes") > 24.0 * 1000.0 * MIB);
    // An established growth is projected, and the projection says what it rests on: the
    // growth seen over the fitted span, from the samples fitted.
    assert_eq!(o["measured"]["growth_established"], true);
    let seen = measured(o, "projected_from_growth_bytes");
    assert!(seen > 10.0 * MIB, "seen {seen}");
    let summary = o["summary"].as_str().unwrap_or("");
    let basis = format!(
        "in 24 h, projected from {} seen over",
        prodready::units::format_byte_rate(seen).trim_end_matches("/h")
    );
    assert!(summary.contains(&basis), "{basis:?} in {summary}");
    assert!(
        summary.contains(&format!("({} samples)", measured(o, "samples_fitted"))),
        "{summary}"
    );
    assert!(
        o["checks"][0]["measured"]
            .as_str()
            .unwrap_or("")
            .contains(&basis)
    );
    // Evidence: the samples CSV and the chart, both written and referenced with digests.
    let ev = o["evidence"].as_array().expect("evidence");
    let paths: Vec<&str> = ev
        .iter()
        .map(|e| e["path"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(
        paths,
        [
            "evidence/leak/samples.csv",
            "evidence/leak/memory-trend.svg"
        ]
    );
    let csv = std::fs::read_to_string(dir.path().join("report").join(paths[0])).expect("csv");
    assert!(csv.starts_with("t_s,pid,rss_bytes,anon_bytes,segment,fitted\n"));
    assert!(
        csv.lines().count() >= 40,
        "about one sample per second:\n{csv}"
    );
    let md = std::fs::read_to_string(dir.path().join("report/report.md")).expect("report.md");
    assert!(
        md.contains("evidence/leak/memory-trend.svg"),
        "chart embedded"
    );
    assert!(md.contains("memory growth"));
}

#[test]
fn allocator_sawtooth_is_not_flagged_across_repeated_runs() {
    // Three processes that allocate and free real memory in cycles of 3, 5 and 7 s.
    let procs = [
        start(&["sawtooth", "25165824", "3", "150"]),
        start(&["sawtooth", "41943040", "5", "150"]),
        start(&["sawtooth", "16777216", "7", "150"]),
    ];
    let dir = tempfile::tempdir().expect("tempdir");
    let mut toml = HEAD.to_string();
    for (i, p) in procs.iter().enumerate() {
        toml.push_str(&memory_item(
            &format!("saw{i}"),
            &format!("pid = {}", p.pid()),
            "duration = \"45s\"\nwarmup = \"5s\"\nmax_growth = \"100MiB/h\"\nmin_samples = 30",
        ));
    }
    for round in 0..2 {
        let (code, report) = run(dir.path(), &toml);
        for i in 0..procs.len() {
            let o = outcome(&report, &format!("saw{i}"));
            eprintln!("round {round}, saw{i}: {}", o["summary"]);
            // Not flagged: the growth check holds. A 45 s window cannot rule out slow growth
            // under a sawtooth this large, which the advisory check says (pass or warn).
            assert!(
                ["pass", "warn"].contains(&status(o)),
                "round {round}, saw{i}: {o:#}"
            );
            let growth = &o["checks"][0];
            assert_eq!(growth["name"], "memory growth");
            assert_eq!(growth["passed"], true, "round {round}, saw{i}: {o:#}");
            // Growth is projected only when established; a warn is called inconclusive.
            if o["measured"]["growth_established"] == false {
                assert!(!o.to_string().contains("in 24 h"), "{o:#}");
                assert!(o["measured"].get("projected_growth_24h_bytes").is_none());
            }
            if status(o) == "warn" {
                assert!(
                    o["summary"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("inconclusive: growth at 100MiB/h cannot be ruled out"),
                    "{o:#}"
                );
            }
            // Judged on the whole window after warm-up: a drop of more than half (glibc's
            // release of a freed mapping) within the same process never splits the series.
            assert_eq!(measured(o, "restarts"), 0.0, "{o:#}");
            let after_warmup = measured(o, "samples") - measured(o, "warmup_s") - 1.0;
            assert!(measured(o, "samples_fitted") >= after_warmup, "{o:#}");
        }
        assert_eq!(code, 0, "round {round}");
    }
}

#[test]
fn target_that_restarts_mid_window_is_followed_and_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("worker.pid");
    // The worker script is started through a link in this test's own folder, so the `process`
    // regex below matches this test's workers only, never those of a suite running beside it.
    let worker = dir.path().join("memproc.py");
    std::os::unix::fs::symlink(memproc(), &worker).expect("link the worker script");
    // A supervisor: the worker runs 15 s, exits, and a new worker runs 60 s.
    let script = format!(
        "'{py}' '{m}' steady 33554432 15.25 & echo $! > '{f}'; wait; '{py}' '{m}' steady 50331648 60.25 & echo $! > '{f}'; wait",
        py = python(),
        m = worker.display(),
        f = pid_file.display()
    );
    let _supervisor = Proc(
        Command::new("sh")
            .args(["-c", &script])
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn sh"),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while !pid_file.exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let extra = "duration = \"40s\"\nwarmup = \"2s\"\nmax_growth = \"100MiB/h\"\nmin_samples = 10";
    let toml = format!(
        "{HEAD}{}{}",
        memory_item(
            "by-pid-file",
            &format!("pid_file = \"{}\"", pid_file.display()),
            extra
        ),
        memory_item(
            "by-name",
            &format!(
                "process = '^\\S*python\\S* {}/memproc\\.py steady \\d+ (15|60)\\.25$'",
                regex::escape(&dir.path().display().to_string())
            ),
            extra,
        ),
    );
    let (code, report) = run(dir.path(), &toml);
    for id in ["by-pid-file", "by-name"] {
        let o = outcome(&report, id);
        // A restart is reported (advisory), both lifetimes are judged, and neither leaks.
        assert_eq!(status(o), "warn", "{id}: {o:#}");
        assert_eq!(measured(o, "restarts"), 1.0, "{id}");
        let checks = o["checks"].as_array().expect("checks");
        let restart = checks
            .iter()
            .find(|c| c["name"] == "restarts")
            .expect("restart check");
        assert!(
            restart["measured"]
                .as_str()
                .unwrap_or("")
                .contains("replaced by pid"),
            "{restart:#}"
        );
        let growth: Vec<_> = checks
            .iter()
            .filter(|c| {
                c["name"]
                    .as_str()
                    .unwrap_or("")
                    .starts_with("memory growth")
            })
            .collect();
        assert_eq!(growth.len(), 2, "{id}: one growth check per lifetime");
        assert!(growth.iter().all(|c| c["passed"] == true));
        let rows = o["tables"][0]["rows"].as_array().expect("segment rows");
        assert_eq!(rows.len(), 2, "{id}");
        assert!(o["summary"].as_str().unwrap_or("").contains("1 restart"));
    }
    assert_eq!(code, 0, "warnings do not block");
}

#[test]
fn sampling_during_another_item_stops_when_it_finishes() {
    // A 30 s load item sampled once a second with the defaults (no warmup, no min_samples):
    // the default warm-up with `during` must leave a series to judge.
    let steady = start(&["steady", "16777216", "90"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "{HEAD}[[item]]\nid = \"load\"\nsection = \"Performance\"\ntitle = \"Load\"\nseverity = \"major\"\n\
         probe = {{ kind = \"command\", command = [\"sleep\", \"30\"] }}\n\n{}",
        memory_item(
            "mem",
            &format!("pid = {}", steady.pid()),
            "during = \"load\"\nmax_growth = \"10MiB/h\""
        )
    );
    let (code, report) = run(dir.path(), &toml);
    let o = outcome(&report, "mem");
    assert_eq!(status(o), "pass", "{o:#}");
    // Sampling stopped with the load item: the window is the load item's run time, measured
    // in the same run (to within a sampling interval either way).
    let load_s = outcome(&report, "load")["duration_ms"]
        .as_f64()
        .expect("duration_ms")
        / 1000.0;
    let window = measured(o, "window_s");
    assert!(
        window <= load_s + 1.0 && window >= load_s - 1.0,
        "sampled {window} s while the {load_s} s item ran"
    );
    // The default warm-up is a tenth of the window; everything after it is fitted.
    let warmup = measured(o, "warmup_s");
    assert!((warmup - window / 10.0).abs() < 0.01, "warm-up {warmup} s");
    assert!(measured(o, "samples_fitted") >= 20.0, "{o:#}");
    assert!(measured(o, "samples_fitted") < measured(o, "samples"));
    assert!(
        o["summary"]
            .as_str()
            .unwrap_or("")
            .contains("sampled while \"load\" ran")
    );
    // Both ran together: the whole run took less than the two one after the other.
    let run_s = report["run"]["duration_ms"].as_f64().expect("run duration") / 1000.0;
    assert!(run_s < load_s + window, "run took {run_s} s");
    assert_eq!(code, 0);
}

#[test]
fn target_that_exits_early_or_never_existed_is_an_error_not_a_pass() {
    let short = start(&["steady", "8388608", "4"]);
    let mut gone = Command::new("true").spawn().expect("spawn true");
    gone.wait().expect("wait");
    let dir = tempfile::tempdir().expect("tempdir");
    let extra = "duration = \"30s\"\nwarmup = \"1s\"\nmax_growth = \"10MiB/h\"\nmin_samples = 20";
    let toml = format!(
        "{HEAD}{}{}",
        memory_item("short", &format!("pid = {}", short.pid()), extra),
        memory_item("gone", &format!("pid = {}", gone.id()), extra),
    );
    let (code, report) = run(dir.path(), &toml);
    let o = outcome(&report, "short");
    assert_eq!(status(o), "error", "{o:#}");
    let summary = o["summary"].as_str().unwrap_or("");
    assert!(summary.contains("too few samples"), "{summary}");
    assert!(summary.contains("exited after"), "{summary}");
    // 1 s of warm-up and 20 samples at 1 s, one to spare: 22 s.
    assert!(
        summary
            .contains("a target that stays up for at least 22 s of sampling gives the 20 needed"),
        "{summary}"
    );
    assert_no_finding(dir.path(), o, "short");
    let o = outcome(&report, "gone");
    assert_eq!(status(o), "error", "{o:#}");
    assert!(
        o["summary"]
            .as_str()
            .unwrap_or("")
            .contains("is not running")
    );
    assert_eq!(code, 1);
}

#[test]
fn too_few_samples_is_an_error_that_names_what_would_be_enough() {
    let steady = start(&["steady", "16777216", "90"]);
    let dir = tempfile::tempdir().expect("tempdir");
    // A 12 s load sampled every second: after the default warm-up (a tenth of the window)
    // about 10 samples, fewer than the default 20.
    let (code, report) = run(dir.path(), &during_load(steady.pid(), 12));
    let o = outcome(&report, "mem");
    assert_eq!(status(o), "error", "{o:#}");
    assert_eq!(code, 1);
    assert_no_finding(dir.path(), o, "mem");
    assert!(o["measured"].get("slope_bytes_per_hour").is_none(), "{o:#}");
    let got = measured(o, "samples_after_warmup");
    assert!(got < 20.0, "{o:#}");
    // 20 samples and one to spare after a warm-up of a tenth of the window: 21 / 0.9 s.
    let need = measured(o, "window_needed_s");
    assert_eq!(need, 24.0);
    let summary = o["summary"].as_str().unwrap_or("");
    for part in [
        "too few samples to judge a trend: after the ".to_string(),
        format!(" warm-up, {got} samples at 1.00 s (min_samples = 20); "),
        "a load of at least 24 s (\"load\" ran".to_string(),
        "gives the 20 needed".to_string(),
    ] {
        assert!(summary.contains(&part), "{part:?} in {summary}");
    }
    // No interval of 1 s or more fits 21 samples into 12 s: none is offered.
    assert!(!summary.contains("interval ="), "{summary}");

    // The advice holds: a load as long as it says leaves enough samples to judge.
    let (code, report) = run(dir.path(), &during_load(steady.pid(), need as u64));
    let o = outcome(&report, "mem");
    assert_ne!(status(o), "error", "{o:#}");
    assert!(measured(o, "samples_fitted") >= 20.0, "{o:#}");
    assert_eq!(code, 0, "{o:#}");
}

#[test]
fn a_steady_window_projects_nothing() {
    let steady = start(&["steady", "16777216", "60"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "{HEAD}{}",
        memory_item(
            "steady",
            &format!("pid = {}", steady.pid()),
            "duration = \"15s\"\nwarmup = \"2s\"\nmax_growth = \"10MiB/h\"\nmin_samples = 10"
        )
    );
    let (code, report) = run(dir.path(), &toml);
    let o = outcome(&report, "steady");
    assert_eq!(status(o), "pass", "{o:#}");
    assert_eq!(code, 0);
    assert_eq!(o["measured"]["growth_established"], false, "{o:#}");
    assert!(
        o["measured"].get("projected_growth_24h_bytes").is_none(),
        "{o:#}"
    );
    assert!(
        o["measured"].get("projected_from_growth_bytes").is_none(),
        "{o:#}"
    );
    let summary = o["summary"].as_str().unwrap_or("");
    assert!(summary.starts_with("no leak detected: "), "{summary}");
    assert!(
        summary.contains("growth not established, no projection"),
        "{summary}"
    );
    assert!(!o.to_string().contains("in 24 h"), "{o:#}");
    let md = md_item(dir.path(), "steady");
    assert!(!md.contains("in 24 h"), "{md}");
    assert!(md.contains("growth not established"), "{md}");
}

#[test]
fn example_checklist_samples_its_service_during_load_and_is_ready() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("checklists/examples/memory.toml");
    let dir = tempfile::tempdir().expect("tempdir");
    let out = Command::new(bin())
        .arg("run")
        .arg(&example)
        .arg("--out")
        .arg(dir.path())
        .output()
        .expect("run prodready");
    let text = std::fs::read_to_string(dir.path().join("report.json")).expect("report.json");
    let report: serde_json::Value = serde_json::from_str(&text).expect("parses");
    let o = outcome(&report, "worker-memory");
    assert!(["pass", "warn"].contains(&status(o)), "{o:#}");
    assert_eq!(o["checks"][0]["name"], "memory growth");
    assert_eq!(o["checks"][0]["passed"], true, "{o:#}");
    assert!(
        o["summary"]
            .as_str()
            .unwrap_or("")
            .contains("sampled while \"load\" ran")
    );
    assert!(measured(o, "samples_fitted") >= 40.0);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn during_item_not_selected_and_no_duration_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "{HEAD}[[item]]\nid = \"load\"\nsection = \"P\"\ntitle = \"Load\"\nseverity = \"major\"\n\
         probe = {{ kind = \"command\", command = [\"true\"] }}\n\n{}",
        memory_item(
            "mem",
            &format!("pid = {}", std::process::id()),
            "during = \"load\"\nmax_growth = \"5MiB/h\""
        )
    );
    let path = dir.path().join("checklist.toml");
    std::fs::write(&path, toml).expect("write");
    let out = Command::new(bin())
        .arg("run")
        .arg(&path)
        .args(["--only", "mem", "--out"])
        .arg(dir.path().join("report"))
        .output()
        .expect("run");
    let text = std::fs::read_to_string(dir.path().join("report/report.json")).expect("report");
    let report: serde_json::Value = serde_json::from_str(&text).expect("parses");
    let o = outcome(&report, "mem");
    assert_eq!(status(o), "error", "{o:#}");
    assert!(
        o["summary"]
            .as_str()
            .unwrap_or("")
            .contains("\"load\" is not running (not selected?) and no `duration` is set"),
        "{o:#}"
    );
    assert_eq!(out.status.code(), Some(1));
}

fn check(dir: &Path, toml: &str) -> (i32, String) {
    let path = dir.join("checklist.toml");
    std::fs::write(&path, toml).expect("write");
    let out = Command::new(bin())
        .arg("check")
        .arg(&path)
        .output()
        .expect("run");
    (
        out.status.code().expect("code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_memory_configuration_is_rejected_at_its_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let load = "[[item]]\nid = \"load\"\nsection = \"P\"\ntitle = \"Load\"\nseverity = \"major\"\nprobe = { kind = \"command\", command = [\"true\"] }\n\n";
    let cases = [
        (
            memory_item("m", "pid = 1", "during = \"lod\"\nmax_growth = \"5MiB/h\""),
            ":20:1: item \"m\": probe.during: no item with id \"lod\"",
        ),
        (
            memory_item("m", "pid = 1", "during = \"m\"\nmax_growth = \"5MiB/h\""),
            ":20:1: item \"m\": probe.during: item \"m\" cannot run during itself",
        ),
        (
            memory_item("m", "service = \"broker\"", "max_growth = \"5MiB/h\""),
            ":18:1: item \"m\": probe.service: no [[service]] named \"broker\"",
        ),
        (
            memory_item("m", "pid = 1", "max_growth = \"5MiB\""),
            ":20:1: item \"m\": probe.max_growth: invalid growth rate",
        ),
        (
            memory_item("m", "pid = 1", "max_growht = \"5MiB/h\""),
            ":20:1: item \"m\": probe: unknown key \"max_growht\"",
        ),
    ];
    for (item, want) in cases {
        let (code, stderr) = check(dir.path(), &format!("{HEAD}{load}{item}"));
        assert_eq!(code, 2, "{stderr}");
        assert!(stderr.contains(want), "expected {want:?} in:\n{stderr}");
    }
    // `during` must point at the item that drives the load, not at another follower.
    let chain = format!(
        "{HEAD}{load}{}{}",
        memory_item(
            "m1",
            "pid = 1",
            "during = \"load\"\nmax_growth = \"5MiB/h\""
        ),
        memory_item("m2", "pid = 1", "during = \"m1\"\nmax_growth = \"5MiB/h\""),
    );
    let (code, stderr) = check(dir.path(), &chain);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(
            ":32:1: item \"m2\": probe.during: item \"m1\" itself runs `during` another item"
        ),
        "{stderr}"
    );
    // The interval floor: sampling faster than 1 s is refused.
    let (code, stderr) = check(
        dir.path(),
        &format!(
            "{HEAD}{}",
            memory_item("m", "pid = 1", "max_growth = \"5MiB/h\"")
        )
        .replace("\"1s\"", "\"200ms\""),
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("item \"m\": probe.interval: interval 200.0 ms is below the minimum of 1s"),
        "{stderr}"
    );
}

/// Send one order over a fresh HTTP/1.1 connection; true on a 2xx answer.
fn post_order(addr: &str, seq: u64) -> bool {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let body = format!(
        "{{\"symbol\":\"NIFTY\",\"side\":\"buy\",\"qty\":1,\"type\":\"market\",\"client_order_id\":\"mem-{seq}\"}}"
    );
    let req = format!(
        "POST /api/v1/orders HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    resp.starts_with("HTTP/1.1 2")
}

#[test]
fn paper_broker_with_injected_leak_is_flagged_with_the_injected_rate() {
    const LEAK_PER_ORDER: f64 = 256.0 * 1024.0;
    const RATE_PER_S: u64 = 10;
    // An ephemeral port picked by the kernel (the broker prints the address it listens on).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("ephemeral port")
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new(bin())
        .args([
            "paper-broker",
            "--listen",
            &listen,
            "--leak-per-order",
            "256KiB",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .expect("start the paper broker");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    let broker = Proc(child);

    // Drive orders at a fixed rate from a plain HTTP client, bounded in count and time.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let driver = {
        let (addr, stop) = (addr.clone(), stop.clone());
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut accepted = 0u64;
            for seq in 0..(RATE_PER_S * 90) {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let due = start + Duration::from_millis(seq * 1000 / RATE_PER_S);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                accepted += u64::from(post_order(&addr, seq));
            }
            (accepted, start.elapsed())
        })
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let toml = format!(
        "{HEAD}{}",
        memory_item(
            "broker-memory",
            &format!("pid = {}", broker.pid()),
            "duration = \"60s\"\nwarmup = \"5s\"\nmax_growth = \"50MiB/h\"\nmin_samples = 40"
        )
    );
    let (code, report) = run(dir.path(), &toml);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (accepted, elapsed) = driver.join().expect("driver");
    let injected_per_hour = accepted as f64 / elapsed.as_secs_f64() * LEAK_PER_ORDER * 3600.0;
    assert!(
        accepted > RATE_PER_S * 50,
        "only {accepted} orders accepted"
    );
    let o = outcome(&report, "broker-memory");
    assert_eq!(status(o), "fail", "{o:#}");
    assert_eq!(code, 1);
    let slope = measured(o, "slope_bytes_per_hour");
    assert!(
        (slope / injected_per_hour - 1.0).abs() < 0.25,
        "slope {:.0} MiB/h vs injected {:.0} MiB/h",
        slope / MIB,
        injected_per_hour / MIB
    );
}
