//! What a query returned and what it must look like: [`Rows`], the one shape both engines
//! produce, and [`check`], the one place expectations are judged. A value is a JSON value:
//! integers and reals are numbers, text is a string, SQL NULL is `null`, a PostgreSQL
//! boolean is a boolean and a SQLite BLOB is `"<N bytes>"`.

use serde_json::Value;

use crate::model::Check;
use crate::probe::compare_range;

/// A query's result: column names and every row's cells, in the order the engine gave them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rows {
    /// Column names as the query labels them.
    pub columns: Vec<String>,
    /// Every row, each with one cell per column.
    pub rows: Vec<Vec<Value>>,
}

impl Rows {
    /// The *value*: the first column of the first row, if there is a row.
    pub fn value(&self) -> Option<&Value> {
        self.rows.first().and_then(|r| r.first())
    }

    /// The value as people read it: JSON (`"ACTIVE"`, `3`, `null`), or `no rows`.
    pub fn shown_value(&self) -> String {
        self.value()
            .map_or_else(|| "no rows".to_string(), Value::to_string)
    }
}

/// What the rows must look like; at least one field is set (the probe's validation sees to
/// it).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Expect {
    /// Exact number of rows (`empty = true` is `Some(0)`).
    pub rows: Option<u64>,
    /// The value equals this string, number or boolean ([`same_value`]).
    pub equals: Option<Value>,
    /// The value is a number at least this.
    pub min: Option<f64>,
    /// The value is a number at most this.
    pub max: Option<f64>,
}

/// Judge `rows` against `expect`: one [`Check`] per expectation, named `rows` or `value`,
/// in the order rows, equals, min/max. No rows where a value is expected fails with
/// `no rows` as the measurement.
pub fn check(rows: &Rows, expect: &Expect) -> Vec<Check> {
    let mut checks = Vec::new();
    let count = rows.rows.len();
    if let Some(n) = expect.rows {
        checks.push(Check::new(
            "rows",
            format!("= {n}"),
            count.to_string(),
            count as u64 == n,
        ));
    }
    let value = rows.value();
    if let Some(want) = &expect.equals {
        checks.push(Check::new(
            "value",
            format!("= {want}"),
            rows.shown_value(),
            value.is_some_and(|v| same_value(v, want)),
        ));
    }
    if expect.min.is_some() || expect.max.is_some() {
        let number = value.and_then(Value::as_f64).unwrap_or(f64::NAN);
        let (expected, ok) = compare_range(expect.min, expect.max, number);
        checks.push(Check::new("value", expected, rows.shown_value(), ok));
    }
    checks
}

/// A cell against a TOML value: numbers compare as numbers (`1` = `1.0`), a boolean equals
/// itself or the number SQLite stores for it (1 and 0), text compares as text, NULL never
/// equals anything.
pub fn same_value(got: &Value, want: &Value) -> bool {
    let as_number = |v: &Value| match v {
        Value::Number(n) => n.as_f64(),
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    };
    match (got, want) {
        (Value::Null, _) => false,
        (Value::Number(_), Value::Number(_) | Value::Bool(_))
        | (Value::Bool(_), Value::Number(_)) => as_number(got) == as_number(want),
        (a, b) => a == b,
    }
}

/// A cell for people: text without quotes, NULL as `NULL`.
pub fn display_cell(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "NULL".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn one(v: Value) -> Rows {
        Rows {
            columns: vec!["v".into()],
            rows: vec![vec![v]],
        }
    }

    #[test]
    fn numbers_compare_as_numbers_and_booleans_as_zero_or_one() {
        assert!(same_value(&json!(1), &json!(1.0)));
        assert!(same_value(&json!(1), &json!(true)));
        assert!(same_value(&json!(true), &json!(1)));
        assert!(same_value(&json!(false), &json!(false)));
        assert!(!same_value(&json!("1"), &json!(1)));
        assert!(!same_value(&Value::Null, &json!("")));
    }

    #[test]
    fn a_value_expected_from_no_rows_fails_as_no_rows() {
        let expect = Expect {
            equals: Some(json!("ACTIVE")),
            min: Some(0.0),
            ..Expect::default()
        };
        let checks = check(&Rows::default(), &expect);
        assert_eq!(checks.len(), 2);
        assert!(checks.iter().all(|c| !c.passed && c.measured == "no rows"));
    }

    #[test]
    fn bounds_hold_for_numbers_only() {
        let expect = Expect {
            min: Some(1.0),
            max: Some(3.0),
            ..Expect::default()
        };
        assert!(check(&one(json!(2.5)), &expect)[0].passed);
        assert!(!check(&one(json!(4)), &expect)[0].passed);
        assert!(!check(&one(json!("2")), &expect)[0].passed);
        assert!(!check(&one(Value::Null), &expect)[0].passed);
    }
}
