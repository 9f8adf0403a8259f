//! How fast the coverage probe reads a large LCOV tracefile, next to `lcov --summary` (lcov's
//! own reader) on the same file. The file is the real gcc + lcov 1.16 fixture
//! (tests/fixtures/coverage/lcov-gcc.info) repeated under distinct `SF` paths, so every record
//! type (FN/FNDA, DA, BRDA with "-") is present at scale. Prints times and the ratio; asserts
//! only that both readers agree on the totals.
//!
//!   cargo bench --bench coverage_parse [-- FILES]

use std::process::Command;
use std::time::{Duration, Instant};

fn main() {
    let files: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let fixture = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/coverage/lcov-gcc.info"
    ))
    .expect("fixture");
    let mut big = String::with_capacity(fixture.len() * files);
    for i in 0..files {
        big.push_str(&fixture.replace("orders.c", &format!("orders_{i}.c")));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("big.info");
    std::fs::write(&path, &big).expect("write");
    println!(
        "LCOV tracefile: {files} files, {} lines, {:.1} MiB",
        big.lines().count(),
        big.len() as f64 / 1048576.0
    );

    let mut ours = Vec::new();
    let mut totals = None;
    for _ in 0..5 {
        let t = Instant::now();
        let bytes = std::fs::read(&path).expect("read");
        let data = prodready::probe::coverage::read("big.info", &bytes, None).expect("parse");
        let sum = data.totals(|_| true);
        ours.push(t.elapsed());
        totals = Some(sum);
    }
    ours.sort();
    let ours_median = ours[ours.len() / 2];
    let t = totals.expect("ran");
    println!(
        "prodready: median {:>8.1} ms  ({:.0} MiB/s); lines {}/{}, functions {}/{}, branches {}/{}",
        ms(ours_median),
        big.len() as f64 / 1048576.0 / ours_median.as_secs_f64(),
        t.lines.hit,
        t.lines.found,
        t.functions.hit,
        t.functions.found,
        t.branches.hit,
        t.branches.found
    );

    let mut theirs = Vec::new();
    let mut summary = String::new();
    for _ in 0..3 {
        let t0 = Instant::now();
        let out = match Command::new("lcov")
            .args(["--summary", "--rc", "lcov_branch_coverage=1"])
            .arg(&path)
            .output()
        {
            Ok(o) => o,
            Err(e) => {
                println!(
                    "lcov not runnable ({e}); install it with `apt-get install -y lcov` for the comparison"
                );
                return;
            }
        };
        theirs.push(t0.elapsed());
        summary = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
    }
    theirs.sort();
    let theirs_median = theirs[theirs.len() / 2];
    println!("lcov --summary: median {:>8.1} ms", ms(theirs_median));
    for l in summary.lines().filter(|l| l.contains("....")) {
        println!("  {}", l.trim());
    }
    let expect = format!("({} of {} lines)", t.lines.hit, t.lines.found);
    assert!(summary.contains(&expect), "lcov disagrees: {summary}");
    println!(
        "ratio: prodready is {:.1}x faster than lcov --summary",
        theirs_median.as_secs_f64() / ours_median.as_secs_f64()
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
