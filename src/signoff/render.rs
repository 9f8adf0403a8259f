//! The verification table for people (comfy-table).

use super::*;

/// Render the verification as a table (comfy-table) followed by a one-line summary.
pub fn render_verification(v: &Verification, report: &Path) -> String {
    let mut t = comfy_table::Table::new();
    t.load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
        .set_header(vec!["Check", "Result", "Detail"]);
    // On a terminal, cells wrap to its width; in logs and pipes lines stay whole (greppable).
    for row in &v.rows {
        t.add_row(vec![
            row.check.as_str(),
            row.state.as_str(),
            row.detail.as_str(),
        ]);
    }
    let failed = v
        .rows
        .iter()
        .filter(|r| r.state == CheckState::Fail)
        .count();
    let checks = v
        .rows
        .iter()
        .filter(|r| r.state != CheckState::Info)
        .count();
    let summary = if failed == 0 {
        format!("{}: verified: all {checks} checks hold", report.display())
    } else {
        format!(
            "{}: NOT verified: {failed} of {checks} checks failed",
            report.display()
        )
    };
    match &v.partial {
        Some(verdict) => format!(
            "{t}\n{summary}\n{}: a partial report: {verdict}; its signatures approve the \
             items that ran, not the checklist\n",
            report.display()
        ),
        None => format!("{t}\n{summary}\n"),
    }
}
