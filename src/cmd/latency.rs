//! `prodready latency merge`: one latency distribution from the `.hlog` interval logs of several
//! generators (HdrHistogram's way to measure beyond one machine's generator).

use std::io::Write;

use crate::cli::LatencyMergeArgs;
use crate::error::{Error, Exit, Result};
use crate::probe::latency::record::{merge_interval_logs, percentile_text};

/// Merge the logs and print (or write) the merged `.hgrm` with a one-line summary per input on
/// standard error.
///
/// # Errors
/// [`Error::InvalidInput`] (exit 2) naming the file when a log is malformed or holds no
/// interval of the chosen kind; I/O errors reading or writing.
pub fn cmd_latency_merge(args: LatencyMergeArgs) -> Result<Exit> {
    let mut logs = Vec::new();
    for path in &args.logs {
        let bytes = std::fs::read(path).map_err(|e| Error::io("reading", path, e))?;
        logs.push((path.display().to_string(), bytes));
    }
    let tag = args.uncorrected.then_some("uncorrected");
    let (merged, parts) = merge_interval_logs(&logs, tag).map_err(|e| Error::InvalidInput {
        path: e.name.into(),
        message: e.message,
    })?;
    for p in &parts {
        eprintln!("{}: {} intervals, {} values", p.name, p.intervals, p.count);
    }
    let ms = |q: f64| merged.value_at_quantile(q) as f64 / 1000.0;
    eprintln!(
        "merged: {} values; p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, p99.9 {:.3} ms, max {:.3} ms",
        merged.len(),
        ms(0.5),
        ms(0.9),
        ms(0.99),
        ms(0.999),
        merged.max() as f64 / 1000.0
    );
    let text = percentile_text(&merged);
    match &args.output {
        Some(path) => std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))?,
        None => std::io::stdout()
            .write_all(text.as_bytes())
            .map_err(|e| Error::io("writing", std::path::Path::new("-"), e))?,
    }
    Ok(Exit::Ready)
}
