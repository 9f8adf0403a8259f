//! Sign-off costs: canonical body digest against plain serialization, report loading with the
//! unknown-key check, and SSHSIG sign/verify per key type (keys made by ssh-keygen).
//!
//! Run: `cargo bench --bench signoff`. Prints one line per measurement and the ratios.

use std::process::Command;
use std::time::{Duration, Instant};

use prodready::report::canonical;
use prodready::signoff;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// Time `f` over at least `min` wall time; returns seconds per call.
fn per_call(min: Duration, mut f: impl FnMut()) -> f64 {
    f();
    let mut n = 0u64;
    let start = Instant::now();
    while start.elapsed() < min {
        f();
        n += 1;
    }
    start.elapsed().as_secs_f64() / n as f64
}

/// A report-shaped value with `items` items, each with checks, measured values and a table.
fn synthetic_report(items: usize) -> Value {
    let items: Vec<Value> = (0..items)
        .map(|i| {
            json!({
                "id": format!("item-{i}"), "section": "Performance", "title": format!("Item {i} p99 below 100 ms"),
                "severity": "major", "tags": ["latency"], "kind": "command", "probe_status": "pass",
                "outcome": {
                    "status": "pass", "summary": "exit 0 in 12 ms",
                    "checks": [{"name": "exit", "expected": "0", "measured": "0", "passed": true, "advisory": false}],
                    "measured": {"p50_ms": 1.25 * i as f64, "p99_ms": 7.3, "count": 60000 + i},
                    "tables": [{"title": "Percentiles", "columns": ["p", "ms"],
                                "rows": (0..20).map(|p| vec![format!("p{p}"), format!("{:.3}", p as f64 * 0.37)]).collect::<Vec<_>>()}],
                    "evidence": [], "log_tail": "line\n".repeat(20), "attempts": 1, "duration_ms": 12
                }
            })
        })
        .collect();
    json!({"schema_version": 1, "items": items, "signoff": {"required_roles": ["Technical lead"], "signatures": []}})
}

fn main() {
    let min = Duration::from_millis(800);
    let report = synthetic_report(500);
    let bytes = serde_json::to_vec(&report).unwrap().len();
    let plain = per_call(min, || {
        std::hint::black_box(Sha256::digest(serde_json::to_vec(&report).unwrap()));
    });
    let canon = per_call(min, || {
        std::hint::black_box(canonical::body_sha256(&report));
    });
    println!(
        "body digest, {} KiB report (500 items): plain serde_json+SHA-256 {:.2} ms, canonical {:.2} ms, ratio {:.2}",
        bytes / 1024,
        plain * 1e3,
        canon * 1e3,
        canon / plain
    );

    let dir = tempfile::tempdir().unwrap();
    let message = b"prodready sign-off v1\nreport-body-sha256: 00\n";
    let mut ed_verify = 0.0;
    for (name, kind, bits) in [
        ("ed25519", "ed25519", None),
        ("ecdsa-p256", "ecdsa", Some("256")),
        ("ecdsa-p384", "ecdsa", Some("384")),
        ("rsa-3072", "rsa", Some("3072")),
    ] {
        let path = dir.path().join(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", "", "-C", "bench", "-f"])
            .arg(&path);
        if let Some(b) = bits {
            cmd.args(["-b", b]);
        }
        assert!(cmd.status().unwrap().success());
        let key = signoff::load_private_key(&path).unwrap();
        let armored = signoff::sign_message(&key, message).unwrap();
        let sign = per_call(min, || {
            std::hint::black_box(signoff::sign_message(&key, message).unwrap());
        });
        let verify = per_call(min, || {
            std::hint::black_box(signoff::verify_message(&armored, message).unwrap());
        });
        if name == "ed25519" {
            ed_verify = verify;
        }
        println!(
            "{name:>10}: sign {:8.3} ms, verify {:8.3} ms (verify {:.1}x ed25519)",
            sign * 1e3,
            verify * 1e3,
            verify / ed_verify
        );
    }
}
