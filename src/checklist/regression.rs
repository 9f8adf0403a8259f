//! An item's `regression` table: how far it may move from the baseline report of
//! `prodready run --baseline` before it fails. Each key applies to one probe kind:
//! `p50`, `p99` and `alpha` to `latency`, `coverage` to `coverage`, `new_advisories` to
//! `audit`, `availability` to `uptime`. A rise is written `"+10%"` (of the baseline's value),
//! a drop `"-1pt"` (percentage points).

use schemars::JsonSchema;
use serde::Deserialize;

/// `regression = { … }` on an item.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRegression {
    /// Latency: allowed rise of the centre (the Hodges–Lehmann shift), in percent of the
    /// baseline median, e.g. `"+10%"`.
    pub p50: Option<String>,
    /// Latency: allowed rise of p99, in percent of the baseline's p99, e.g. `"+10%"`.
    pub p99: Option<String>,
    /// Latency: significance level of the tests (one-sided Mann–Whitney U), between 0 and
    /// 0.5. Default 0.01.
    pub alpha: Option<f64>,
    /// Coverage: allowed drop of line or branch coverage, in points, e.g. `"-1pt"`.
    pub coverage: Option<String>,
    /// Audit: advisories allowed that the baseline did not have. `0`: none.
    pub new_advisories: Option<u32>,
    /// Uptime: allowed drop of availability, in points, e.g. `"-0.05pt"`.
    pub availability: Option<String>,
}

/// An item's allowances against the baseline. Each is the largest harmless change in the
/// harmful direction; `None`: that figure is not gated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Regression {
    /// Latency: allowed centre shift (Hodges–Lehmann), percent of the baseline median.
    pub p50_percent: Option<f64>,
    /// Latency: allowed rise of p99, percent of the baseline's.
    pub p99_percent: Option<f64>,
    /// Latency: significance level of the tests.
    pub alpha: Option<f64>,
    /// Coverage: allowed drop of line or branch coverage, points.
    pub coverage_points: Option<f64>,
    /// Audit: advisories allowed that the baseline did not have.
    pub new_advisories: Option<u32>,
    /// Uptime: allowed drop of availability, points.
    pub availability_points: Option<f64>,
}

/// The keys of each probe kind.
const KEYS: [(&str, &str); 6] = [
    ("p50", "latency"),
    ("p99", "latency"),
    ("alpha", "latency"),
    ("coverage", "coverage"),
    ("new_advisories", "audit"),
    ("availability", "uptime"),
];

/// Validate `r` for an item of probe `kind`. Errors are `(key, message)`, the key relative
/// to the `regression` table (empty: the table itself).
pub(super) fn validate(r: RawRegression, kind: &str) -> Result<Regression, (String, String)> {
    let given = [
        r.p50.is_some(),
        r.p99.is_some(),
        r.alpha.is_some(),
        r.coverage.is_some(),
        r.new_advisories.is_some(),
        r.availability.is_some(),
    ];
    for ((key, applies), set) in KEYS.iter().zip(given) {
        if set && *applies != kind {
            let fits: Vec<&str> = KEYS
                .iter()
                .filter(|(_, k)| *k == kind)
                .map(|(k, _)| *k)
                .collect();
            let fits = if fits.is_empty() {
                format!("{kind} items have no regression keys")
            } else {
                format!("{kind} items take {}", fits.join(", "))
            };
            return Err((
                (*key).to_string(),
                format!("`{key}` applies to {applies} items, not {kind} ones ({fits})"),
            ));
        }
    }
    let gated = given
        .iter()
        .zip(KEYS)
        .any(|(set, (k, _))| *set && k != "alpha");
    if !gated {
        return Err((
            String::new(),
            "expected at least one allowance: p50 or p99 (latency), coverage, new_advisories (audit) or availability (uptime)".into(),
        ));
    }
    if let Some(a) = r.alpha
        && !(a > 0.0 && a < 0.5)
    {
        return Err((
            "alpha".into(),
            format!("{a}: expected a significance level between 0 and 0.5, e.g. 0.01"),
        ));
    }
    let rise = |key: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| allowance(s, '+', "%").map_err(|m| (key.to_string(), m)))
            .transpose()
    };
    let drop = |key: &str, v: &Option<String>| {
        v.as_deref()
            .map(|s| allowance(s, '-', "pt").map_err(|m| (key.to_string(), m)))
            .transpose()
    };
    Ok(Regression {
        p50_percent: rise("p50", &r.p50)?,
        p99_percent: rise("p99", &r.p99)?,
        alpha: r.alpha,
        coverage_points: drop("coverage", &r.coverage)?,
        new_advisories: r.new_advisories,
        availability_points: drop("availability", &r.availability)?,
    })
}

/// `"+10%"` (sign `+`, unit `%`) or `"-0.05pt"` (sign `-`, unit `pt`) to its size.
fn allowance(text: &str, sign: char, unit: &str) -> Result<f64, String> {
    let what = if sign == '+' {
        "a rise in percent such as \"+10%\""
    } else {
        "a drop in percentage points such as \"-1pt\""
    };
    let bad = || format!("\"{text}\": expected {what}");
    let number = text
        .trim()
        .strip_prefix(sign)
        .and_then(|t| t.strip_suffix(unit))
        .ok_or_else(bad)?;
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowances_need_their_sign_and_unit() {
        assert_eq!(allowance("+10%", '+', "%"), Ok(10.0));
        assert_eq!(allowance("-0.05pt", '-', "pt"), Ok(0.05));
        assert!(allowance("10%", '+', "%").is_err());
        assert!(allowance("-1%", '-', "pt").is_err());
        assert!(allowance("+x%", '+', "%").is_err());
    }
}
