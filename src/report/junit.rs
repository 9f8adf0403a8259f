//! `junit.xml` for the CI's test tab: one test suite per checklist, one test case per item,
//! named `section.item-id` so names stay stable from run to run. Written with quick-junit.
//! A partial run (filters left items out) names itself in the report name and in the suite's
//! properties (`partial`, `verdict`, `not_run`) and output.

use std::io::{self, Write};
use std::time::Duration;

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use super::{ItemReport, Report};
use crate::model::Status;

/// The stable test-case name of an item: section (lowercased, spaces as `-`) and id.
pub fn case_name(section: &str, id: &str) -> String {
    let s: String = section
        .trim()
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { '-' })
        .collect();
    format!("{s}.{id}")
}

/// Render the report as JUnit XML.
///
/// # Errors
/// Whatever the writer returns, or a serialization failure as `io::Error`.
pub fn render<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    let scope = r.partial_scope();
    let mut report = quick_junit::Report::new(match &scope {
        None => format!("prodready: {}", r.run.checklist.name),
        Some(p) => format!(
            "prodready: {} (partial: {} of {} items, {} not run)",
            r.run.checklist.name,
            p.ran,
            p.total,
            p.not_run.len()
        ),
    });
    let mut suite = TestSuite::new(r.run.checklist.name.clone());
    // A partial run says so where CI tools show suite data; its items that did not run are
    // skipped cases below.
    if let Some(p) = &scope {
        suite.add_property(quick_junit::Property::new("partial", "true"));
        suite.add_property(quick_junit::Property::new("verdict", r.verdict_text()));
        suite.add_property(quick_junit::Property::new("not_run", p.not_run.join(",")));
        suite.set_system_out(format!(
            "partial run ({}): verdict {}; not run: {}",
            p.filters,
            r.verdict_text(),
            p.not_run.join(", ")
        ));
    }
    for it in &r.items {
        suite.add_test_case(test_case(r, it));
    }
    report.add_test_suite(suite);
    report
        .serialize(w)
        .map_err(|e| io::Error::other(e.to_string()))
}

/// The test case of one item: its status (a failure or error with the summary, expected and
/// measured, and the log tail; skipped for pending, skipped and waived), time and properties.
fn test_case(r: &Report, it: &ItemReport) -> TestCase {
    let o = &it.outcome;
    let message = format!(
        "{}{}",
        o.summary,
        if o.checks.is_empty() {
            String::new()
        } else {
            format!(
                " — expected {}; measured {}",
                o.expected_text(),
                o.measured_text()
            )
        }
    );
    let mut status = match o.status {
        Status::Pass | Status::Warn => TestCaseStatus::success(),
        Status::Fail => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
            s.set_message(message.clone());
            s.set_type("fail");
            s
        }
        Status::Error => {
            let mut s = TestCaseStatus::non_success(NonSuccessKind::Error);
            s.set_message(message.clone());
            s.set_type("error");
            s
        }
        Status::Pending | Status::Skipped | Status::Waived => {
            let mut s = TestCaseStatus::skipped();
            s.set_message(format!("{}: {message}", o.status.as_str()));
            s
        }
    };
    if let Some(log) = &o.log_tail
        && let TestCaseStatus::NonSuccess { .. } = status
    {
        status.set_description(log.clone());
    }
    let mut case = TestCase::new(case_name(&it.section, &it.id), status);
    case.set_classname(format!("{}.{}", r.run.checklist.name, it.section));
    case.set_time(Duration::from_millis(o.duration_ms));
    case.add_property(quick_junit::Property::new("severity", it.severity.as_str()));
    case.add_property(quick_junit::Property::new("status", o.status.as_str()));
    if o.status == Status::Warn {
        case.set_system_out(message);
    }
    case
}
