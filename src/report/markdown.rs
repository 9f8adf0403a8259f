//! `report.md`: the report people read in the sign-off meeting, on GitHub or printed.
//!
//! Order: verdict first, then a summary per section, a table per section (item, severity,
//! status, expected, measured), details with charts, waivers, services, and the sign-off
//! table with the report digest. All text that came from probes is escaped so a `|`, a
//! newline or HTML in command output cannot break a table.

use std::collections::BTreeMap;
use std::io::{self, Write};

use super::{Report, Verdict, WaiverState};
use crate::model::Status;

/// Escape text for a Markdown table cell (GitHub-flavoured Markdown).
pub fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '|' => out.push_str("\\|"),
            '\\' => out.push_str("\\\\"),
            '*' | '_' | '[' | ']' | '`' | '#' | '~' => {
                out.push('\\');
                out.push(ch);
            }
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\r' => {}
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

/// Escape text for a Markdown paragraph (same rules as a cell).
pub fn text(t: &str) -> String {
    cell(t)
}

/// A fenced code block whose fence is longer than any backtick run inside.
pub fn fenced(body: &str, info: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        if c == '`' {
            run += 1;
            longest = longest.max(run);
        } else {
            run = 0;
        }
    }
    let fence = "`".repeat((longest + 1).max(3));
    format!("{fence}{info}\n{}\n{fence}\n", body.trim_end_matches('\n'))
}

/// The status as shown in tables: a symbol that survives printing in black and white, and
/// the word.
pub fn status_badge(s: Status) -> &'static str {
    match s {
        Status::Pass => "✅ pass",
        Status::Fail => "❌ fail",
        Status::Warn => "⚠️ warn",
        Status::Error => "⛔ error",
        Status::Pending => "⏳ pending",
        Status::Skipped => "⏭️ skipped",
        Status::Waived => "🟡 waived",
    }
}

fn verdict_line(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "✅ **READY**",
        Verdict::ReadyWithWaivers => "🟡 **READY WITH WAIVERS**",
        Verdict::NotReady => "❌ **NOT READY**",
    }
}

fn anchor(id: &str) -> String {
    format!("item-{}", id.to_lowercase().replace(['.', '_'], "-"))
}

/// Render the whole report.
///
/// # Errors
/// Whatever the writer returns.
pub fn render<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    write_header(w, r)?;
    write_sections(w, r)?;
    writeln!(w, "## Details")?;
    writeln!(w)?;
    for it in &r.items {
        write_item(w, it)?;
    }
    write_waivers(w, r)?;
    write_services(w, r)?;
    write_signoff(w, r)
}

/// Title, verdict with its reasons, counts and the run's metadata table.
fn write_header<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    write_verdict(w, r)?;
    write_run_table(w, r)
}

/// Title, verdict (partial or interrupted runs say so), its reasons and the counts.
fn write_verdict<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    writeln!(w, "# Readiness report: {}", text(&r.run.checklist.name))?;
    writeln!(w)?;
    match r.partial_scope() {
        None => writeln!(w, "## Verdict: {}", verdict_line(r.verdict))?,
        Some(p) => {
            writeln!(
                w,
                "## Verdict: {} {}",
                verdict_line(r.verdict),
                p.verdict_suffix()
            )?;
            writeln!(w)?;
            writeln!(
                w,
                "> **Partial run.** The filters ({}) selected {} of {} items; this verdict is \
                 theirs, not the checklist's. Not run: {}.",
                cell(&p.filters),
                p.ran,
                p.total,
                p.not_run
                    .iter()
                    .map(|id| format!("`{id}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )?;
        }
    }
    writeln!(w)?;
    if r.run.interrupted {
        writeln!(
            w,
            "> **Interrupted.** The run was stopped before every item finished; this report is partial."
        )?;
        writeln!(w)?;
    }
    for reason in &r.reasons {
        writeln!(w, "- {}", text(reason))?;
    }
    if !r.reasons.is_empty() {
        writeln!(w)?;
    }
    writeln!(
        w,
        "{} Failures at **{}** or above block.",
        r.counts_text(),
        r.run.fail_on.as_str()
    )?;
    writeln!(w)?;
    Ok(())
}

/// The run's metadata (system, environment, checklist, commit, host, times, filters) and the
/// checklist's description.
fn write_run_table<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    let c = &r.run.checklist;
    writeln!(w, "| | |")?;
    writeln!(w, "|---|---|")?;
    if let Some(s) = &c.system {
        writeln!(w, "| System | {} |", cell(s))?;
    }
    if let Some(e) = &c.environment {
        writeln!(w, "| Environment | {} |", cell(e))?;
    }
    writeln!(
        w,
        "| Checklist | `{}` (SHA-256 `{}`) |",
        c.path.replace('`', "'"),
        &c.sha256
    )?;
    if let Some(g) = &r.run.git {
        writeln!(
            w,
            "| Commit | `{}`{} |",
            g.commit,
            if g.dirty {
                " (uncommitted changes)"
            } else {
                ""
            }
        )?;
    }
    let h = &r.run.host;
    writeln!(
        w,
        "| Host | {} — {}, kernel {}, {}, {} CPUs, {} |",
        cell(&h.hostname),
        cell(&h.os),
        cell(&h.kernel),
        cell(&h.arch),
        h.cpus,
        crate::units::format_bytes(h.memory_bytes)
    )?;
    writeln!(w, "| Started | {} |", r.run.started_at)?;
    writeln!(
        w,
        "| Duration | {} |",
        crate::units::format_duration(std::time::Duration::from_millis(r.run.duration_ms))
    )?;
    writeln!(w, "| prodready | {} |", cell(&r.run.prodready_version))?;
    if !r.run.filters.is_empty() {
        writeln!(w, "| Filters | {} |", cell(&r.run.filters.join(" ")))?;
    }
    writeln!(w)?;
    if let Some(d) = &c.description {
        writeln!(w, "{}", text(d))?;
        writeln!(w)?;
    }
    Ok(())
}

/// The summary by section and one table per section (item, severity, status, expected, measured).
fn write_sections<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    // Summary per section.
    let mut sections: Vec<&str> = Vec::new();
    for it in &r.items {
        if !sections.contains(&it.section.as_str()) {
            sections.push(&it.section);
        }
    }
    writeln!(w, "## Summary by section")?;
    writeln!(w)?;
    writeln!(w, "| Section | Items | Pass | Fail | Error | Other |")?;
    writeln!(w, "|---|---:|---:|---:|---:|---:|")?;
    for s in &sections {
        let items: Vec<_> = r.items.iter().filter(|i| i.section == *s).collect();
        let n = |st: Status| items.iter().filter(|i| i.outcome.status == st).count();
        let other = items.len() - n(Status::Pass) - n(Status::Fail) - n(Status::Error);
        writeln!(
            w,
            "| {} | {} | {} | {} | {} | {} |",
            cell(s),
            items.len(),
            n(Status::Pass),
            n(Status::Fail),
            n(Status::Error),
            other
        )?;
    }
    writeln!(w)?;

    for s in &sections {
        writeln!(w, "## {}", text(s))?;
        writeln!(w)?;
        writeln!(w, "| Item | Severity | Status | Expected | Measured |")?;
        writeln!(w, "|---|---|---|---|---|")?;
        for it in r.items.iter().filter(|i| i.section == *s) {
            let expected = it.outcome.expected_text();
            let measured = if it.outcome.checks.is_empty() {
                it.outcome.summary.clone()
            } else {
                it.outcome.measured_text()
            };
            writeln!(
                w,
                "| [{}](#{}) `{}` | {} | {} | {} | {} |",
                cell(&it.title),
                anchor(&it.id),
                it.id,
                it.severity.as_str(),
                status_badge(it.outcome.status),
                cell(&expected),
                cell(&measured)
            )?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// The item's checks as a table (expected, measured, ✅/⚠️/❌).
fn write_checks<W: Write>(w: &mut W, checks: &[crate::model::Check]) -> io::Result<()> {
    if checks.is_empty() {
        return Ok(());
    }
    writeln!(w, "| Check | Expected | Measured | Result |")?;
    writeln!(w, "|---|---|---|---|")?;
    for ch in checks {
        let result = match (ch.passed, ch.advisory) {
            (true, _) => "✅",
            (false, true) => "⚠️",
            (false, false) => "❌",
        };
        writeln!(
            w,
            "| {} | {} | {} | {} |",
            cell(&ch.name),
            cell(&ch.expected),
            cell(&ch.measured),
            result
        )?;
    }
    writeln!(w)
}

/// One of the probe's tables, with its title.
fn write_table<W: Write>(w: &mut W, t: &crate::model::Table) -> io::Result<()> {
    writeln!(w, "**{}**", text(&t.title))?;
    writeln!(w)?;
    writeln!(
        w,
        "| {} |",
        t.columns
            .iter()
            .map(|c| cell(c))
            .collect::<Vec<_>>()
            .join(" | ")
    )?;
    writeln!(w, "|{}", "---|".repeat(t.columns.len()))?;
    for row in &t.rows {
        writeln!(
            w,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        )?;
    }
    writeln!(w)
}

/// Charts (SVG evidence) embedded as images, then every other evidence file as a link with its
/// size and SHA-256.
fn write_evidence<W: Write>(w: &mut W, evidence: &[crate::model::Evidence]) -> io::Result<()> {
    for ev in evidence.iter().filter(|e| e.media_type == "image/svg+xml") {
        writeln!(w, "![{}]({})", cell(&ev.label), ev.path)?;
        writeln!(w)?;
    }
    let files: Vec<_> = evidence
        .iter()
        .filter(|e| e.media_type != "image/svg+xml")
        .collect();
    if files.is_empty() {
        return Ok(());
    }
    writeln!(w, "Evidence:")?;
    writeln!(w)?;
    for ev in files {
        writeln!(
            w,
            "- [{}]({}) — {} bytes, SHA-256 `{}`",
            cell(&ev.label),
            ev.path,
            ev.bytes,
            ev.sha256
        )?;
    }
    writeln!(w)
}

/// One item's details: status, description, summary, checks, tables, charts, evidence, log.
fn write_item<W: Write>(w: &mut W, it: &super::ItemReport) -> io::Result<()> {
    writeln!(w, "<a id=\"{}\"></a>", anchor(&it.id))?;
    writeln!(w)?;
    writeln!(
        w,
        "### {} — {}",
        text(&it.title),
        status_badge(it.outcome.status)
    )?;
    writeln!(w)?;
    let waived = if it.probe_status != it.outcome.status {
        format!(" (probe status {}, waived)", it.probe_status.as_str())
    } else {
        String::new()
    };
    writeln!(
        w,
        "`{}` · {} · {} probe · {} attempt(s) · {}{}",
        it.id,
        it.severity.as_str(),
        it.kind,
        it.outcome.attempts,
        crate::units::format_duration(std::time::Duration::from_millis(it.outcome.duration_ms)),
        waived
    )?;
    writeln!(w)?;
    if let Some(d) = &it.description {
        writeln!(w, "{}", text(d))?;
        writeln!(w)?;
    }
    writeln!(w, "{}", text(&it.outcome.summary))?;
    writeln!(w)?;
    write_checks(w, &it.outcome.checks)?;
    for t in &it.outcome.tables {
        write_table(w, t)?;
    }
    write_evidence(w, &it.outcome.evidence)?;
    if let Some(log) = &it.outcome.log_tail {
        writeln!(w, "<details><summary>Log tail</summary>")?;
        writeln!(w)?;
        write!(w, "{}", fenced(log, "text"))?;
        writeln!(w)?;
        writeln!(w, "</details>")?;
        writeln!(w)?;
    }
    Ok(())
}

/// The waivers, applied or not.
fn write_waivers<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    if !r.waivers.is_empty() {
        writeln!(w, "## Waivers")?;
        writeln!(w)?;
        writeln!(w, "| Item | Reason | Approved by | Expires | State |")?;
        writeln!(w, "|---|---|---|---|---|")?;
        for wv in &r.waivers {
            let state = match wv.state {
                WaiverState::Applied => "applied",
                WaiverState::NotNeeded => "not needed (item did not fail)",
                WaiverState::Expired => "**expired** — no longer applies",
                WaiverState::NotRun => "item not run",
            };
            writeln!(
                w,
                "| `{}` | {} | {} | {} | {} |",
                wv.item,
                cell(&wv.reason),
                match &wv.signer {
                    Some(signer) => cell(&format!("{} (signed by {signer})", wv.approved_by)),
                    None => cell(&wv.approved_by),
                },
                wv.expires,
                state
            )?;
        }
        writeln!(w)?;
    }
    Ok(())
}

/// The services started around the run.
fn write_services<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    if !r.services.is_empty() {
        writeln!(w, "## Services")?;
        writeln!(w)?;
        writeln!(w, "| Service | Command | Ready | Ended |")?;
        writeln!(w, "|---|---|---|---|")?;
        for s in &r.services {
            let ready = match (s.ready, s.ready_ms) {
                (true, Some(ms)) => format!("✅ in {ms} ms"),
                (true, None) => "✅".to_string(),
                (false, _) => format!("❌ {}", s.message),
            };
            writeln!(
                w,
                "| {} | {} | {} | {} |",
                cell(&s.name),
                cell(&s.command),
                cell(&ready),
                cell(s.exit.as_deref().unwrap_or("-"))
            )?;
        }
        writeln!(w)?;
        for s in r.services.iter().filter(|s| !s.log_tail.is_empty()) {
            writeln!(
                w,
                "<details><summary>{} output tail</summary>",
                cell(&s.name)
            )?;
            writeln!(w)?;
            write!(w, "{}", fenced(&s.log_tail, "text"))?;
            writeln!(w)?;
            writeln!(w, "</details>")?;
            writeln!(w)?;
        }
    }
    Ok(())
}

/// The sign-off section: the report body digest and a row per required role.
fn write_signoff<W: Write>(w: &mut W, r: &Report) -> io::Result<()> {
    writeln!(w, "## Sign-off")?;
    writeln!(w)?;
    writeln!(w, "Report body SHA-256: `{}`", r.body_sha256())?;
    writeln!(w)?;
    writeln!(
        w,
        "Each role signs with `prodready sign report.json --role ROLE --key KEY`; check with \
         `prodready verify report.json --allowed-signers FILE`."
    )?;
    writeln!(w)?;
    let mut by_role: BTreeMap<&str, Vec<&super::Signature>> = BTreeMap::new();
    for s in &r.signoff.signatures {
        by_role.entry(s.role.as_str()).or_default().push(s);
    }
    writeln!(
        w,
        "| Role | Decision | Signer | Key | Signed at | Comment |"
    )?;
    writeln!(w, "|---|---|---|---|---|---|")?;
    let mut roles: Vec<&str> = r
        .signoff
        .required_roles
        .iter()
        .map(String::as_str)
        .collect();
    for role in by_role.keys() {
        if !roles.contains(role) {
            roles.push(role);
        }
    }
    for role in roles {
        match by_role.get(role) {
            None => writeln!(w, "| {} | _not signed_ | | | | |", cell(role))?,
            Some(sigs) => {
                for s in sigs {
                    writeln!(
                        w,
                        "| {} | {} | {} | `{}` | {} | {} |",
                        cell(role),
                        if s.decision == super::Decision::Approve {
                            cell(s.decision.as_str())
                        } else {
                            format!("**{}**", cell(s.decision.as_str()))
                        },
                        cell(&s.signer),
                        cell(&s.key_fingerprint),
                        cell(&s.signed_at),
                        cell(&s.comment)
                    )?;
                }
            }
        }
    }
    writeln!(w)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_cannot_break_tables_or_inject_html() {
        assert_eq!(cell("a|b\nc<script>"), "a\\|b<br>c&lt;script&gt;");
    }

    #[test]
    fn fences_outgrow_backticks_inside() {
        let f = fenced("x ```` y", "");
        assert!(f.starts_with("`````\n"), "{f}");
    }
}
