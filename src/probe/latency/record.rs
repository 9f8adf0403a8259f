//! Latency recording: HdrHistograms (Tene; 3 significant digits, 1 µs … 1 h, values in
//! microseconds) for the coordinated-omission-corrected latency, its uncorrected twin and the
//! schedule lag, plus per-second interval histograms for the `.hlog` interval log.
//!
//! Samples are never kept in a `Vec`: every value goes straight into a histogram (~6 ns). The
//! interval histograms are compressed (V2 + DEFLATE) when each second closes, so memory stays
//! flat however long the run. Exports follow HdrHistogram's own formats:
//! - `.hlog`: interval log with the `#[Histogram log format version 1.3]` header, untagged
//!   intervals for the corrected latency, `Tag=uncorrected` intervals for the twin and
//!   `Tag=target` intervals for the target's part (the corrected latency less the generator's
//!   own send lateness); values are microseconds (HistogramLogProcessor:
//!   `-outputValueUnitRatio 1000` for ms).
//! - `.hgrm`: the percentile distribution text of `Histogram.outputPercentileDistribution`
//!   (values in milliseconds, 5 ticks per half distance).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

/// Highest trackable value: one hour in microseconds.
pub const HIGHEST_US: u64 = 3_600_000_000;
/// Significant decimal digits kept.
pub const SIGFIG: u8 = 3;

/// A histogram with the probe's bounds (1 µs … 1 h, 3 significant digits).
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HIGHEST_US, SIGFIG).expect("static bounds are valid")
}

/// Microseconds of `d`, clamped into the trackable range.
pub fn micros(d: Duration) -> u64 {
    (d.as_micros() as u64).clamp(1, HIGHEST_US)
}

/// The tags of an interval's histograms, in the order they are kept: corrected (untagged),
/// uncorrected, the target's part.
pub const TAGS: [Option<&str>; 3] = [None, Some("uncorrected"), Some("target")];

/// One closed interval, compressed: one histogram per [`TAGS`] entry.
#[derive(Debug)]
struct Interval {
    start: Duration,
    length: Duration,
    hists: [Vec<u8>; 3],
}

/// The histograms of one run.
#[derive(Debug)]
pub struct Recorder {
    /// Latency from the intended send time (coordinated omission corrected), µs.
    pub corrected: Histogram<u64>,
    /// Latency from the actual send time, µs.
    pub uncorrected: Histogram<u64>,
    /// How late each request left against its schedule, µs (0 recorded as 1): all lateness,
    /// the target's (its connection was still busy) and the generator's.
    pub lag: Histogram<u64>,
    /// The generator's own part of the lateness, µs: from the later of the intended send time
    /// and the moment the request's connection became free, to the send.
    pub generator_lag: Histogram<u64>,
    /// The target's part of the lateness, µs: from the intended send time to the moment the
    /// request's connection became free (0 recorded as 1). With [`Recorder::generator_lag`] it
    /// makes up [`Recorder::lag`] request by request.
    pub connection_wait: Histogram<u64>,
    /// The target's part of each corrected latency, µs: the corrected latency less the
    /// request's generator lag (`done − intended − (sent − ready)`), so a request the generator
    /// sent late is not held against the target.
    pub target: Histogram<u64>,
    /// How late each generator thread's runtime ran a task whose timer had fired, µs, sampled
    /// every 1–10 ms (about once per send): a busy or CPU-starved generator reads responses
    /// late, and that lateness would otherwise pass for the target's.
    pub runtime_lag: Histogram<u64>,
    /// Connection set-up times (TCP, and TLS when used), µs; never in the latency figures.
    pub connect: Histogram<u64>,
    /// The open interval's histograms, in [`TAGS`] order.
    interval: [Histogram<u64>; 3],
    interval_start: Duration,
    interval_length: Duration,
    intervals: Vec<Interval>,
}

impl Recorder {
    /// A recorder that closes an interval every `interval_length`.
    pub fn new(interval_length: Duration) -> Recorder {
        Recorder {
            corrected: new_histogram(),
            uncorrected: new_histogram(),
            lag: new_histogram(),
            generator_lag: new_histogram(),
            connection_wait: new_histogram(),
            target: new_histogram(),
            runtime_lag: new_histogram(),
            connect: new_histogram(),
            interval: [new_histogram(), new_histogram(), new_histogram()],
            interval_start: Duration::ZERO,
            interval_length,
            intervals: Vec::new(),
        }
    }

    /// Record one response completed at `at` (since the run's base time): its `corrected`
    /// latency (from the intended send), its `uncorrected` one (from the actual send) and the
    /// part of `corrected` the generator caused (`own_lag`, its send lateness on a free
    /// connection).
    pub fn record(
        &mut self,
        at: Duration,
        corrected: Duration,
        uncorrected: Duration,
        own_lag: Duration,
    ) {
        self.rotate(at);
        let c = micros(corrected);
        let u = micros(uncorrected);
        let t = micros(corrected.saturating_sub(own_lag));
        self.corrected.saturating_record(c);
        self.uncorrected.saturating_record(u);
        self.target.saturating_record(t);
        for (h, v) in self.interval.iter_mut().zip([c, u, t]) {
            h.saturating_record(v);
        }
    }

    /// Record the schedule lag of one send.
    pub fn record_lag(&mut self, lag: Duration) {
        self.lag.saturating_record(micros(lag));
    }

    /// Record how one send's lateness splits: `wait` for a free connection (the target's
    /// part) and the generator's own lateness after that (`own`).
    pub fn record_lateness(&mut self, wait: Duration, own: Duration) {
        self.connection_wait.saturating_record(micros(wait));
        self.generator_lag.saturating_record(micros(own));
    }

    /// Record one sample of the runtime's lateness.
    pub fn record_runtime_lag(&mut self, lag: Duration) {
        self.runtime_lag.saturating_record(micros(lag));
    }

    /// Record one connection's set-up time.
    pub fn record_connect(&mut self, took: Duration) {
        self.connect.saturating_record(micros(took));
    }

    /// Merge the recorders of several generator threads of one run (same base time, same
    /// interval length): each is finished at `end`, then histograms are added and intervals
    /// with the same start combined (adding HdrHistograms is exact).
    ///
    /// # Errors
    /// A message when an interval histogram cannot be decoded or encoded again.
    pub fn merge(parts: Vec<Recorder>, end: Duration) -> Result<Recorder, String> {
        let mut parts = parts.into_iter();
        let Some(mut merged) = parts.next() else {
            return Ok(Recorder::new(Duration::from_secs(1)));
        };
        merged.finish(end);
        let mut rest: Vec<Recorder> = parts.collect();
        if rest.is_empty() {
            return Ok(merged);
        }
        let add = |a: &mut Histogram<u64>, b: &Histogram<u64>| {
            a.add(b).map_err(|e| format!("adding histograms: {e:?}"))
        };
        let mut by_start: BTreeMap<Duration, (Duration, Vec<Histogram<u64>>)> = BTreeMap::new();
        let mut de = Deserializer::new();
        for r in rest.iter_mut() {
            r.finish(end);
            add(&mut merged.corrected, &r.corrected)?;
            add(&mut merged.uncorrected, &r.uncorrected)?;
            add(&mut merged.lag, &r.lag)?;
            add(&mut merged.generator_lag, &r.generator_lag)?;
            add(&mut merged.connection_wait, &r.connection_wait)?;
            add(&mut merged.target, &r.target)?;
            add(&mut merged.runtime_lag, &r.runtime_lag)?;
            add(&mut merged.connect, &r.connect)?;
        }
        for iv in merged
            .intervals
            .drain(..)
            .chain(rest.iter_mut().flat_map(|r| r.intervals.drain(..)))
        {
            let hists = iv
                .hists
                .iter()
                .map(|bytes| {
                    de.deserialize(&mut bytes.as_slice())
                        .map_err(|e| format!("decoding an interval histogram: {e:?}"))
                })
                .collect::<Result<Vec<Histogram<u64>>, String>>()?;
            match by_start.get_mut(&iv.start) {
                Some((len, sums)) => {
                    *len = (*len).max(iv.length);
                    for (sum, h) in sums.iter_mut().zip(&hists) {
                        add(sum, h)?;
                    }
                }
                None => {
                    by_start.insert(iv.start, (iv.length, hists));
                }
            }
        }
        for (start, (length, hists)) in by_start {
            let [c, u, t] = &hists[..] else {
                return Err("an interval without its three histograms".into());
            };
            merged.intervals.push(Interval {
                start,
                length,
                hists: compress([c, u, t])?,
            });
        }
        Ok(merged)
    }

    /// Close intervals that ended before `at`.
    fn rotate(&mut self, at: Duration) {
        while at >= self.interval_start + self.interval_length {
            self.close_interval(self.interval_length);
        }
    }

    fn close_interval(&mut self, length: Duration) {
        if self.interval.iter().any(|h| !h.is_empty()) {
            let [c, u, t] = &self.interval;
            if let Ok(hists) = compress([c, u, t]) {
                self.intervals.push(Interval {
                    start: self.interval_start,
                    length,
                    hists,
                });
            }
            for h in &mut self.interval {
                h.reset();
            }
        }
        self.interval_start += length;
    }

    /// Close the last, partial interval at `end`.
    pub fn finish(&mut self, end: Duration) {
        self.rotate(end);
        let length = end.saturating_sub(self.interval_start);
        self.close_interval(length.max(Duration::from_millis(1)));
    }

    /// Number of closed intervals.
    pub fn interval_count(&self) -> usize {
        self.intervals.len()
    }

    /// The interval log (`.hlog`), with wall-clock base time `base` and `comments` in the
    /// header.
    ///
    /// # Errors
    /// A message when an interval cannot be decoded or encoded again.
    pub fn interval_log(&self, base: SystemTime, comments: &[String]) -> Result<Vec<u8>, String> {
        let mut out = Vec::new();
        for c in comments {
            let _ = writeln!(ByteWriter(&mut out), "#{c}");
        }
        let base_s = base
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        let _ = writeln!(
            ByteWriter(&mut out),
            "#[Histogram log format version 1.3]\n#[StartTime: {base_s:.3} (seconds since epoch)]\n#[BaseTime: {base_s:.3} (seconds since epoch)]\n\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
        );
        let mut serializer = V2DeflateSerializer::new();
        let mut writer = IntervalLogWriterBuilder::new()
            .with_max_value_divisor(1000.0)
            .begin_log_with(&mut out, &mut serializer)
            .map_err(|e| format!("writing the interval log: {e}"))?;
        let mut de = Deserializer::new();
        let tags = TAGS.map(|t| t.map(|t| Tag::new(t).expect("a valid tag")));
        for iv in &self.intervals {
            for (bytes, tag) in iv.hists.iter().zip(tags) {
                let h: Histogram<u64> = de
                    .deserialize(&mut bytes.as_slice())
                    .map_err(|e| format!("decoding an interval histogram: {e:?}"))?;
                writer
                    .write_histogram(&h, iv.start, iv.length, tag)
                    .map_err(|e| format!("writing the interval log: {e}"))?;
            }
        }
        Ok(out)
    }
}

/// The V2 + DEFLATE encodings of `hists`.
fn compress(hists: [&Histogram<u64>; 3]) -> Result<[Vec<u8>; 3], String> {
    let mut serializer = V2DeflateSerializer::new();
    let mut out: [Vec<u8>; 3] = Default::default();
    for (h, bytes) in hists.iter().zip(out.iter_mut()) {
        serializer
            .serialize(*h, bytes)
            .map_err(|e| format!("encoding an interval histogram: {e:?}"))?;
    }
    Ok(out)
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// The percentile distribution text (`.hgrm`) of `h` (values in µs, printed in ms), in the
/// layout of HdrHistogram's `outputPercentileDistribution` with 5 ticks per half distance.
pub fn percentile_text(h: &Histogram<u64>) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:>12} {:>14} {:>10} {:>14}\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    let mut total = 0u64;
    if !h.is_empty() {
        for v in h.iter_quantiles(5) {
            total += v.count_since_last_iteration();
            let value_ms = v.value_iterated_to() as f64 / 1000.0;
            let q = v.quantile_iterated_to();
            if q < 1.0 {
                let _ = writeln!(
                    s,
                    "{value_ms:12.3} {q:2.12} {total:10} {:14.2}",
                    1.0 / (1.0 - q)
                );
            } else {
                let _ = writeln!(s, "{value_ms:12.3} {q:2.12} {total:10}");
            }
        }
    }
    let _ = writeln!(
        s,
        "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
        h.mean() / 1000.0,
        h.stdev() / 1000.0
    );
    let _ = writeln!(
        s,
        "#[Max     = {:12.3}, Total count    = {:12}]",
        h.max() as f64 / 1000.0,
        h.len()
    );
    let sub_buckets = 2u64.pow((2.0 * 10f64.powi(i32::from(SIGFIG))).log2().ceil() as u32);
    let _ = writeln!(
        s,
        "#[Buckets = {:12}, SubBuckets     = {:12}]",
        h.buckets(),
        sub_buckets
    );
    s
}

/// A malformed interval log: the file as given and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}: {message}")]
pub struct LogError {
    /// The file, as given.
    pub name: String,
    /// What is wrong, with the entry or interval number.
    pub message: String,
}

impl LogError {
    fn new(name: &str, message: String) -> LogError {
        LogError {
            name: name.to_string(),
            message,
        }
    }
}

/// What one interval log contributed to a merge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MergedLog {
    /// The file, as given.
    pub name: String,
    /// Intervals of the selected tag read from it.
    pub intervals: usize,
    /// Values recorded in those intervals.
    pub count: u64,
}

/// Merge the intervals tagged `tag` (`None`: the untagged, coordinated-omission-corrected
/// ones) of several `.hlog` interval logs into one histogram: HdrHistogram's own way to combine
/// measurements of the same load from several generator processes or hosts (adding histograms
/// is exact, so the merge equals recording every stream into one histogram).
///
/// `logs` are `(name, bytes)`; the histograms' ranges must fit the probe's (1 µs … 1 h).
///
/// # Errors
/// A message naming the file and the interval when a line is malformed or a histogram cannot be
/// decoded, or the file when it holds no interval of that tag (no data is not a measurement).
pub fn merge_interval_logs(
    logs: &[(String, Vec<u8>)],
    tag: Option<&str>,
) -> Result<(Histogram<u64>, Vec<MergedLog>), LogError> {
    use base64::Engine as _;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};
    let mut merged = new_histogram();
    let mut per_log = Vec::new();
    let mut de = Deserializer::new();
    for (name, bytes) in logs {
        let mut m = MergedLog {
            name: name.clone(),
            intervals: 0,
            count: 0,
        };
        for (n, entry) in IntervalLogIterator::new(bytes).enumerate() {
            let iv = match entry {
                Ok(LogEntry::Interval(iv)) => iv,
                Ok(_) => continue,
                Err(e) => {
                    return Err(LogError::new(
                        name,
                        format!("entry {}: malformed interval log: {e:?}", n + 1),
                    ));
                }
            };
            if iv.tag().map(|t| t.as_str()) != tag {
                continue;
            }
            let raw = base64::engine::general_purpose::STANDARD
                .decode(iv.encoded_histogram())
                .map_err(|e| {
                    LogError::new(
                        name,
                        format!("interval {}: not base64: {e}", m.intervals + 1),
                    )
                })?;
            let h: Histogram<u64> = de
                .deserialize(&mut raw.as_slice())
                .map_err(|e| LogError::new(name, format!("interval {}: {e:?}", m.intervals + 1)))?;
            merged
                .add(&h)
                .map_err(|e| LogError::new(name, format!("interval {}: {e:?}", m.intervals + 1)))?;
            m.intervals += 1;
            m.count += h.len();
        }
        if m.intervals == 0 {
            return Err(LogError::new(
                name,
                format!(
                    "no {} interval in this log",
                    tag.map_or("untagged (corrected)".to_string(), |t| format!("Tag={t}"))
                ),
            ));
        }
        per_log.push(m);
    }
    Ok((merged, per_log))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

    #[test]
    fn interval_log_round_trips_through_the_reader() {
        let mut r = Recorder::new(Duration::from_secs(1));
        for i in 0..3000u64 {
            let at = Duration::from_millis(i);
            r.record(
                at,
                Duration::from_micros(100 + i),
                Duration::from_micros(100),
                Duration::ZERO,
            );
        }
        r.finish(Duration::from_millis(3000));
        assert_eq!(r.interval_count(), 3);
        let log = r
            .interval_log(
                SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                &["test".into()],
            )
            .unwrap();
        let text = String::from_utf8(log.clone()).unwrap();
        assert!(text.contains("#[Histogram log format version 1.3]"));
        assert!(text.contains("#[BaseTime: 1700000000.000"));
        let mut by_tag: BTreeMap<Option<String>, (usize, u64, u64)> = BTreeMap::new();
        for e in IntervalLogIterator::new(&log) {
            if let Ok(LogEntry::Interval(iv)) = e {
                let mut de = Deserializer::new();
                let bytes = base64_decode(iv.encoded_histogram());
                let h: Histogram<u64> = de.deserialize(&mut bytes.as_slice()).unwrap();
                let e = by_tag
                    .entry(iv.tag().map(|t| t.as_str().to_string()))
                    .or_default();
                e.0 += 1;
                e.1 += h.len();
                e.2 = e.2.max(h.max());
            }
        }
        // Three intervals of each tag, each with every value; the target's part is the
        // corrected latency less the generator's own lateness (none here).
        let get = |t: Option<&str>| by_tag[&t.map(str::to_string)];
        assert_eq!(by_tag.len(), 3, "{by_tag:?}");
        assert_eq!(get(None).0, 3);
        assert_eq!(get(None).1, 3000);
        assert_eq!(get(Some("uncorrected")).1, 3000);
        assert_eq!(get(Some("target")), get(None));
        assert!(get(Some("uncorrected")).2 < get(None).2);
    }

    fn base64_decode(s: &str) -> Vec<u8> {
        const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut buf = 0u32;
        let mut bits = 0;
        for c in s.bytes().filter(|c| *c != b'=') {
            let v = A.iter().position(|a| *a == c).unwrap() as u32;
            buf = (buf << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((buf >> bits) as u8);
                buf &= (1 << bits) - 1;
            }
        }
        out
    }

    fn log_of(values: impl Iterator<Item = u64>) -> Vec<u8> {
        let mut r = Recorder::new(Duration::from_secs(1));
        for (i, v) in values.enumerate() {
            let at = Duration::from_millis(i as u64);
            r.record(
                at,
                Duration::from_micros(v),
                Duration::from_micros(v / 2 + 1),
                Duration::ZERO,
            );
        }
        r.finish(Duration::from_secs(10));
        r.interval_log(SystemTime::UNIX_EPOCH, &[]).unwrap()
    }

    #[test]
    fn merging_two_logs_equals_recording_both_streams_count_for_count() {
        let a: Vec<u64> = (0..4000).map(|i| 50 + (i * 37) % 5000).collect();
        let b: Vec<u64> = (0..2500).map(|i| 400 + (i * 91) % 900_000).collect();
        let logs = vec![
            ("a.hlog".to_string(), log_of(a.iter().copied())),
            ("b.hlog".to_string(), log_of(b.iter().copied())),
        ];
        let (merged, parts) = merge_interval_logs(&logs, None).unwrap();
        let mut both = new_histogram();
        for v in a.iter().chain(&b) {
            both.record(*v).unwrap();
        }
        assert_eq!(merged, both);
        assert_eq!(merged.len(), 6500);
        assert_eq!((parts[0].count, parts[1].count), (4000, 2500));
        let (unc, _) = merge_interval_logs(&logs, Some("uncorrected")).unwrap();
        assert_eq!(unc.len(), 6500);
        assert!(unc.max() < merged.max());
    }

    #[test]
    fn a_log_without_intervals_or_with_garbage_is_an_error_naming_it() {
        let empty = vec![(
            "empty.hlog".to_string(),
            b"#[Histogram log format version 1.3]\n".to_vec(),
        )];
        let e = merge_interval_logs(&empty, None).unwrap_err();
        assert_eq!(e.name, "empty.hlog");
        assert!(e.to_string().starts_with("empty.hlog: no untagged"), "{e}");
        let bad = vec![(
            "bad.hlog".to_string(),
            b"0.000,1.000,1.0,HISTFAAA!!!\n".to_vec(),
        )];
        let e = merge_interval_logs(&bad, None).unwrap_err();
        assert_eq!(e.name, "bad.hlog");
    }

    #[test]
    fn percentile_text_has_hdrhistogram_layout() {
        let mut h = new_histogram();
        for v in 1..=10_000u64 {
            h.record(v).unwrap();
        }
        let t = percentile_text(&h);
        assert!(t.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(t.contains("#[Max     =       10.007, Total count    =        10000]"));
        let last = t.lines().rfind(|l| !l.starts_with('#')).unwrap();
        assert!(last.contains("1.000000000000"), "{last}");
        assert!(t.contains("SubBuckets     =         2048"));
    }
}
