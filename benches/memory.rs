//! Costs of the `memory` probe.
//!
//! 1. Cost per sample: reading one process's identity (`/proc/PID/stat`) and memory
//!    (`/proc/PID/status`), as the sampling loop does every interval; and the cost of the
//!    command-line lookup a `process = "…"` target pays when the process disappears.
//! 2. Cost of the analysis (split, Theil–Sen, Hamed–Rao, tail guard) for 10 minutes of 1 s
//!    samples and for the largest series fitted without thinning.
//! 3. The probe's own memory while it samples for 10 minutes: `prodready run` with one memory
//!    item (interval 1 s) on a steady process, its `VmRSS`/`RssAnon` read every 5 s from here,
//!    and the Theil–Sen slope of that series. `PRODREADY_BENCH_SOAK_S` shortens the window
//!    (default 600 s).
//!
//! Run: `cargo bench --bench memory`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use prodready::probe::memory::analysis::{MetricChoice, Sample, Settings, analyze};
use prodready::probe::memory::sample::Reader;
use prodready::probe::memory::stats::theil_sen;

const MIB: f64 = 1024.0 * 1024.0;

fn per_sample_cost() {
    let mut r = Reader::default();
    let me = std::process::id();
    let n = 20_000;
    let t = Instant::now();
    let mut sum = 0u64;
    for _ in 0..n {
        let id = r.identity(me).expect("identity");
        let m = r.read(me).expect("read");
        sum = sum.wrapping_add(id.started ^ m.rss_bytes);
    }
    let per = t.elapsed() / n;
    println!(
        "sample (identity + RssAnon/VmRSS read): {:>9.1} µs per sample = {:.5} % of a 1 s interval  [{}]",
        per.as_secs_f64() * 1e6,
        per.as_secs_f64() * 100.0,
        sum % 2
    );
    let re = regex::Regex::new(r"^no such process \d+$").expect("regex");
    let k = 50;
    let t = Instant::now();
    for _ in 0..k {
        std::hint::black_box(r.find(&re));
    }
    let per = t.elapsed() / k;
    println!(
        "process lookup by command line:         {:>9.1} µs per lookup (only when the process is gone)",
        per.as_secs_f64() * 1e6
    );
}

fn analysis_cost() {
    for n in [600usize, 2000, 7200] {
        let samples: Vec<Sample> = (0..n)
            .map(|i| {
                let t = i as f64;
                let wobble = ((i * 7919) % 97) as f64 * 40_960.0;
                Sample {
                    t_s: t,
                    pid: 1,
                    started: 1,
                    rss_bytes: (120.0 * MIB + wobble + t * 300.0) as u64,
                    anon_bytes: Some((80.0 * MIB + wobble + t * 300.0) as u64),
                }
            })
            .collect();
        let settings = Settings {
            warmup_s: 30.0,
            min_samples: 30,
            metric: MetricChoice::Auto,
            max_growth_bytes_per_hour: 5.0 * MIB,
        };
        let reps = if n > 1000 { 3 } else { 10 };
        let t = Instant::now();
        for _ in 0..reps {
            std::hint::black_box(analyze(&samples, &settings));
        }
        let per = t.elapsed() / reps;
        println!(
            "analysis of {n:>5} samples:              {:>9.1} ms",
            per.as_secs_f64() * 1e3
        );
    }
}

fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn own_memory_while_sampling() {
    let window_s: u64 = std::env::var("PRODREADY_BENCH_SOAK_S")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(600);
    let dir = tempfile_dir();
    let python = String::from_utf8(
        Command::new("python3")
            .args(["-c", "import sys; print(sys.executable)"])
            .output()
            .expect("python3")
            .stdout,
    )
    .expect("utf-8");
    let memproc = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/memory/memproc.py");
    let mut target = Command::new(python.trim())
        .arg(&memproc)
        .args(["steady", "16777216", &(window_s + 60).to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("target");
    let mut line = String::new();
    BufReader::new(target.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("ready");
    let checklist = dir.join("soak.toml");
    std::fs::write(
        &checklist,
        format!(
            "[checklist]\nname = \"bench\"\n\n[[item]]\nid = \"mem\"\nsection = \"P\"\ntitle = \"T\"\nseverity = \"info\"\n\
             timeout = \"{}s\"\n[item.probe]\nkind = \"memory\"\npid = {}\ninterval = \"1s\"\nduration = \"{window_s}s\"\n\
             warmup = \"5s\"\nmax_growth = \"5MiB/h\"\nmin_samples = 10\n",
            window_s + 120,
            target.id()
        ),
    )
    .expect("write checklist");
    let mut run = Command::new(env!("CARGO_BIN_EXE_prodready"))
        .arg("run")
        .arg(&checklist)
        .arg("--out")
        .arg(dir.join("report"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prodready run");
    let pid = run.id();
    let start = Instant::now();
    let mut t = Vec::new();
    let mut rss = Vec::new();
    let mut anon = Vec::new();
    while run.try_wait().expect("try_wait").is_none() {
        if let (Some(r), Some(a)) = (status_kib(pid, "VmRSS:"), status_kib(pid, "RssAnon:")) {
            t.push(start.elapsed().as_secs_f64());
            rss.push(r as f64 * 1024.0);
            anon.push(a as f64 * 1024.0);
        }
        std::thread::sleep(Duration::from_secs(5));
    }
    let _ = target.kill();
    let _ = target.wait();
    // Skip the first 10 s (runtime start-up) when fitting.
    let skip = t.iter().position(|&x| x >= 10.0).unwrap_or(0);
    let fit = theil_sen(&t[skip..], &anon[skip..]);
    let peak = rss.iter().copied().fold(0.0, f64::max);
    println!(
        "own memory over {:.0} s of sampling at 1 s ({} readings every 5 s): VmRSS first {:.1} MiB, last {:.1} MiB, peak {:.1} MiB; RssAnon first {:.1} MiB, last {:.1} MiB",
        start.elapsed().as_secs_f64(),
        t.len(),
        rss.first().copied().unwrap_or(0.0) / MIB,
        rss.last().copied().unwrap_or(0.0) / MIB,
        peak / MIB,
        anon.first().copied().unwrap_or(0.0) / MIB,
        anon.last().copied().unwrap_or(0.0) / MIB,
    );
    if let Some(f) = fit {
        println!(
            "own RssAnon Theil–Sen slope after 10 s: {:+.1} KiB/h (95 % CI {:+.1} … {:+.1} KiB/h)",
            f.slope * 3600.0 / 1024.0,
            f.low_slope * 3600.0 / 1024.0,
            f.high_slope * 3600.0 / 1024.0
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("prodready-memory-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

fn main() {
    // `cargo test --benches` runs bench binaries with `--bench` absent; keep that quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    per_sample_cost();
    analysis_cost();
    if quick {
        println!("(own-memory soak skipped: run with `cargo bench --bench memory`)");
    } else {
        own_memory_while_sampling();
    }
}
