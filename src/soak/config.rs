//! The `[[monitor]]` table: the raw serde mirror (unknown keys are errors) and the validated
//! [`Monitor`] with its check, schedule, consecutive-failure threshold and maintenance windows.
//!
//! Maintenance windows are either one-off (`start`/`end`) or recurring (`days`, `at`,
//! `duration`), both in an IANA time zone (`tz`, default UTC) read from the system tz
//! database by jiff, so a window at 02:00 Europe/London stays at 02:00 across DST changes.

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::{Date, DateTime, Time, Weekday};
use jiff::tz::TimeZone;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::field::{FieldError, Validator};
use crate::soak::check::{MonitorCheck, RawMonitorCheck};

/// `[[monitor]]`: a periodic health check run by `prodready soak`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMonitor {
    /// Unique name (letters, digits, `-`, `_`, `.`); the `uptime` probe's `monitor` refers to it.
    pub name: String,
    /// Time between check starts (humantime). Default `"10s"`.
    pub interval: Option<String>,
    /// A check slower than this fails (humantime). Default: the interval, at most `"10s"`.
    pub timeout: Option<String>,
    /// Consecutive failed checks before the monitor is `down`. Default 1. The down time then
    /// starts at the first failure of the streak; every failure is recorded either way.
    pub failures_before_down: Option<u32>,
    /// Availability target in percent for `/metrics` (budget remaining, burn rate). Default 99.9.
    pub target: Option<f64>,
    /// Maintenance windows: time inside them is excluded from availability and listed.
    #[serde(default)]
    pub maintenance: Vec<RawMaintenance>,
    /// What to check.
    // Read as a table and typed by its `kind` afterwards (`RawMonitorCheck::from_table`), so
    // an error inside it keeps its key path; its schema is `RawMonitorCheck`'s.
    #[schemars(with = "RawMonitorCheck")]
    pub check: toml::Table,
}

/// A maintenance window: one-off `{ start, end }` or recurring `{ days, at, duration }`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawMaintenance {
    /// Why (shown in reports).
    pub reason: String,
    /// One-off: start, a civil date-time in `tz` (`"2026-12-05T02:00"`) or an RFC 3339 timestamp.
    pub start: Option<String>,
    /// One-off: end, same forms as `start`.
    pub end: Option<String>,
    /// Recurring: weekdays (`"mon"` … `"sun"`); empty or absent means every day.
    #[serde(default)]
    pub days: Vec<String>,
    /// Recurring: local start time in `tz`, `"HH:MM"`.
    pub at: Option<String>,
    /// Recurring: length (humantime, at most `"24h"`).
    pub duration: Option<String>,
    /// IANA time zone, e.g. `"Europe/London"`, `"Asia/Kolkata"`. Default `"UTC"`.
    pub tz: Option<String>,
}

/// A validated maintenance window.
#[derive(Debug, Clone)]
pub enum Maintenance {
    /// `[start, end)` once.
    Once {
        /// Why.
        reason: String,
        /// Start, ms since the Unix epoch.
        start_ms: i64,
        /// End, ms since the Unix epoch.
        end_ms: i64,
    },
    /// Every listed weekday at a local time, for a duration.
    Recurring {
        /// Why.
        reason: String,
        /// Weekdays; empty means every day.
        days: Vec<Weekday>,
        /// Local start time.
        at: Time,
        /// Length.
        duration: Duration,
        /// Time zone of `at` and `days`.
        tz: TimeZone,
    },
}

impl Maintenance {
    /// The reason of this window.
    pub fn reason(&self) -> &str {
        match self {
            Maintenance::Once { reason, .. } | Maintenance::Recurring { reason, .. } => reason,
        }
    }

    /// True when the instant `ms` (Unix epoch milliseconds) falls inside the window.
    pub fn contains(&self, ms: i64) -> bool {
        match self {
            Maintenance::Once {
                start_ms, end_ms, ..
            } => (*start_ms..*end_ms).contains(&ms),
            Maintenance::Recurring {
                days,
                at,
                duration,
                tz,
                ..
            } => {
                let Ok(ts) = Timestamp::from_millisecond(ms) else {
                    return false;
                };
                let today = ts.to_zoned(tz.clone()).date();
                // A window that started yesterday may still be open (at most 24 h long).
                for date in [today, today.yesterday().unwrap_or(today)] {
                    if !days.is_empty() && !days.contains(&date.weekday()) {
                        continue;
                    }
                    let Ok(start) = tz.to_ambiguous_zoned(date.to_datetime(*at)).compatible()
                    else {
                        continue;
                    };
                    let s = start.timestamp().as_millisecond();
                    if ms >= s && ms < s + duration.as_millis() as i64 {
                        return true;
                    }
                }
                false
            }
        }
    }
}

/// A validated monitor.
#[derive(Debug, Clone)]
pub struct Monitor {
    /// Unique name.
    pub name: String,
    /// Time between check starts.
    pub interval: Duration,
    /// Per-check timeout.
    pub timeout: Duration,
    /// Consecutive failures before `down`.
    pub failures_before_down: u32,
    /// Availability target, percent.
    pub target_percent: f64,
    /// Maintenance windows.
    pub maintenance: Vec<Maintenance>,
    /// The check.
    pub check: MonitorCheck,
}

impl Monitor {
    /// The reason of the maintenance window covering `ms`, if any.
    pub fn maintenance_at(&self, ms: i64) -> Option<&str> {
        self.maintenance
            .iter()
            .find(|m| m.contains(ms))
            .map(Maintenance::reason)
    }

    /// The longest time one sample may stand for before the rest of a gap counts as unknown:
    /// one period (the interval, or the timeout when a check takes that long) plus one interval
    /// of scheduling slack.
    pub fn max_span_ms(&self) -> i64 {
        (self.interval.max(self.timeout) + self.interval).as_millis() as i64
    }
}

fn parse_weekday(s: &str) -> Option<Weekday> {
    Some(match s.to_ascii_lowercase().get(..3)? {
        "mon" => Weekday::Monday,
        "tue" => Weekday::Tuesday,
        "wed" => Weekday::Wednesday,
        "thu" => Weekday::Thursday,
        "fri" => Weekday::Friday,
        "sat" => Weekday::Saturday,
        "sun" => Weekday::Sunday,
        _ => return None,
    })
}

fn parse_instant(key: &str, text: &str, tz: &TimeZone) -> Result<i64, FieldError> {
    if let Ok(ts) = text.parse::<Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let dt: DateTime = text.parse().map_err(|e| {
        FieldError::new(
            key,
            format!(
                "invalid date-time \"{text}\": {e} (expected e.g. \"2026-12-05T02:00\" or \"2026-12-05T02:00:00Z\")"
            ),
        )
    })?;
    let z = tz
        .to_ambiguous_zoned(dt)
        .compatible()
        .map_err(|e| FieldError::new(key, format!("\"{text}\": {e}")))?;
    Ok(z.timestamp().as_millisecond())
}

impl RawMaintenance {
    fn validate(self, v: &Validator) -> Result<Maintenance, FieldError> {
        let tz = match &self.tz {
            None => TimeZone::UTC,
            Some(name) => TimeZone::get(name).map_err(|e| {
                FieldError::new(
                    "tz",
                    format!("unknown time zone \"{name}\": {e} (expected an IANA name such as \"Europe/London\")"),
                )
            })?,
        };
        if self.reason.trim().is_empty() {
            return Err(FieldError::new("reason", "expected non-empty text"));
        }
        let once = self.start.is_some() || self.end.is_some();
        let recurring = self.at.is_some() || self.duration.is_some() || !self.days.is_empty();
        match (once, recurring) {
            (true, false) => {
                let (Some(s), Some(e)) = (&self.start, &self.end) else {
                    return Err(FieldError::new(
                        if self.start.is_none() { "start" } else { "end" },
                        "a one-off window needs both start and end",
                    ));
                };
                let start_ms = parse_instant("start", s, &tz)?;
                let end_ms = parse_instant("end", e, &tz)?;
                if end_ms <= start_ms {
                    return Err(FieldError::new("end", "expected end after start"));
                }
                Ok(Maintenance::Once {
                    reason: self.reason,
                    start_ms,
                    end_ms,
                })
            }
            (false, true) => {
                let at = self.at.as_deref().ok_or_else(|| {
                    FieldError::new("at", "a recurring window needs at = \"HH:MM\"")
                })?;
                let at: Time = at.parse().map_err(|e| {
                    FieldError::new(
                        "at",
                        format!("invalid time \"{at}\": {e} (expected \"HH:MM\")"),
                    )
                })?;
                let duration = self.duration.as_deref().ok_or_else(|| {
                    FieldError::new(
                        "duration",
                        "a recurring window needs a duration, e.g. \"30m\"",
                    )
                })?;
                let duration = v.duration("duration", duration)?;
                if duration.is_zero() || duration > Duration::from_secs(86_400) {
                    return Err(FieldError::new(
                        "duration",
                        "expected a duration above 0 and at most 24h",
                    ));
                }
                let mut days = Vec::new();
                for (i, d) in self.days.iter().enumerate() {
                    days.push(parse_weekday(d).ok_or_else(|| {
                        FieldError::new(
                            format!("days[{i}]"),
                            format!("invalid weekday \"{d}\" (expected mon, tue, wed, thu, fri, sat or sun)"),
                        )
                    })?);
                }
                Ok(Maintenance::Recurring {
                    reason: self.reason,
                    days,
                    at,
                    duration,
                    tz,
                })
            }
            _ => Err(FieldError::new(
                "",
                "expected either start and end (one-off) or at and duration (recurring)",
            )),
        }
    }
}

impl RawMonitor {
    /// Validate, with its `check` table already typed by kind
    /// ([`RawMonitorCheck::from_table`]).
    ///
    /// # Errors
    /// A [`FieldError`] naming the key (relative to the monitor table).
    pub fn validate(
        self,
        check: RawMonitorCheck,
        v: &mut Validator,
    ) -> Result<Monitor, FieldError> {
        let name_re = regex::Regex::new(r"^[A-Za-z0-9][A-Za-z0-9._-]*$").expect("static regex");
        if !name_re.is_match(&self.name) {
            return Err(FieldError::new(
                "name",
                format!(
                    "invalid name \"{}\": expected letters, digits, '-', '_' or '.'",
                    self.name
                ),
            ));
        }
        let interval = match &self.interval {
            Some(t) => v.duration("interval", t)?,
            None => Duration::from_secs(10),
        };
        if interval < Duration::from_millis(50) {
            return Err(FieldError::new("interval", "expected at least 50ms"));
        }
        let timeout = match &self.timeout {
            Some(t) => v.duration("timeout", t)?,
            None => interval.min(Duration::from_secs(10)),
        };
        if timeout.is_zero() {
            return Err(FieldError::new("timeout", "expected a duration above 0"));
        }
        let failures_before_down = self.failures_before_down.unwrap_or(1);
        if failures_before_down == 0 {
            return Err(FieldError::new(
                "failures_before_down",
                "expected at least 1",
            ));
        }
        let target_percent = self.target.unwrap_or(99.9);
        if !(target_percent > 0.0 && target_percent < 100.0) {
            return Err(FieldError::new(
                "target",
                "expected a percentage above 0 and below 100, e.g. 99.9",
            ));
        }
        let mut maintenance = Vec::new();
        for (i, m) in self.maintenance.into_iter().enumerate() {
            maintenance.push(m.validate(v).map_err(|e| {
                let key = if e.key.is_empty() {
                    format!("maintenance[{i}]")
                } else {
                    format!("maintenance[{i}].{}", e.key)
                };
                FieldError::new(key, e.message)
            })?);
        }
        let check = check.validate(v, timeout).map_err(|e| {
            FieldError::new(
                if e.key.is_empty() {
                    "check".to_string()
                } else {
                    format!("check.{}", e.key)
                },
                e.message,
            )
        })?;
        Ok(Monitor {
            name: self.name,
            interval,
            timeout,
            failures_before_down,
            target_percent,
            maintenance,
            check,
        })
    }
}

/// Every occurrence start of a recurring window on `date` (used by docs and tests).
pub fn occurrence_on(m: &Maintenance, date: Date) -> Option<Timestamp> {
    match m {
        Maintenance::Recurring { days, at, tz, .. } => {
            if !days.is_empty() && !days.contains(&date.weekday()) {
                return None;
            }
            tz.to_ambiguous_zoned(date.to_datetime(*at))
                .compatible()
                .ok()
                .map(|z| z.timestamp())
        }
        Maintenance::Once { start_ms, .. } => {
            let ts = Timestamp::from_millisecond(*start_ms).ok()?;
            (ts.to_zoned(TimeZone::UTC).date() == date).then_some(ts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recurring(days: &[&str], at: &str, dur: &str, tz: &str) -> Maintenance {
        RawMaintenance {
            reason: "patching".into(),
            start: None,
            end: None,
            days: days.iter().map(|s| s.to_string()).collect(),
            at: Some(at.into()),
            duration: Some(dur.into()),
            tz: Some(tz.into()),
        }
        .validate(&Validator::default())
        .unwrap()
    }

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn recurring_window_follows_the_time_zone_across_dst() {
        // Sundays 02:30–03:00 London: 01:30Z in summer (BST), 02:30Z in winter (GMT).
        let m = recurring(&["sun"], "02:30", "30m", "Europe/London");
        assert!(m.contains(ms("2026-07-05T01:45:00Z")));
        assert!(!m.contains(ms("2026-07-05T02:45:00Z")));
        assert!(m.contains(ms("2026-11-22T02:45:00Z")));
        assert!(
            !m.contains(ms("2026-11-23T02:45:00Z")),
            "Monday is not listed"
        );
    }

    #[test]
    fn recurring_window_crossing_midnight_stays_open_after_it() {
        let m = recurring(&[], "23:30", "1h", "Asia/Kolkata");
        // 23:45 IST = 18:15Z; 00:15 IST next day = 18:45Z.
        assert!(m.contains(ms("2026-11-22T18:15:00Z")));
        assert!(m.contains(ms("2026-11-22T18:45:00Z")));
        assert!(!m.contains(ms("2026-11-22T19:05:00Z")));
    }

    #[test]
    fn one_off_window_in_a_zone_and_bad_zone_is_rejected() {
        let m = RawMaintenance {
            reason: "broker upgrade".into(),
            start: Some("2026-12-05T02:00".into()),
            end: Some("2026-12-05T03:00".into()),
            days: vec![],
            at: None,
            duration: None,
            tz: Some("America/New_York".into()),
        }
        .validate(&Validator::default())
        .unwrap();
        assert!(m.contains(ms("2026-12-05T07:30:00Z")));
        assert!(!m.contains(ms("2026-12-05T02:30:00Z")));
        let bad = RawMaintenance {
            reason: "x".into(),
            start: None,
            end: None,
            days: vec![],
            at: Some("02:00".into()),
            duration: Some("1h".into()),
            tz: Some("Mars/Olympus".into()),
        }
        .validate(&Validator::default())
        .unwrap_err();
        assert_eq!(bad.key, "tz");
    }
}
