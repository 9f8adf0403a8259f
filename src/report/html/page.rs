//! The page's frame: the verdict banner, the run's facts, the summary table and the services.

use maud::{Markup, html};

use super::{anchor, badge, duration, table, verdict_words};
use crate::report::Report;

/// The verdict banner: the checklist and its description, the verdict in words (partial and interrupted runs say
/// so), its reasons and the counts per status.
pub fn banner(r: &Report) -> Markup {
    let counts = format!(
        "{} Failures at {} or above block.",
        r.counts_text(),
        r.run.fail_on.as_str()
    );
    let scope = r.partial_scope();
    html! {
        header class={ "banner v-" (r.verdict.as_str()) } id="verdict" {
            p class="kicker" { "Readiness report" }
            h1 { (r.run.checklist.name) }
            @if let Some(d) = &r.run.checklist.description { p class="description" { (d) } }
            p class="verdict" {
                "Verdict: " strong { (verdict_words(r.verdict)) }
                @if let Some(p) = &scope { " " (p.verdict_suffix()) }
            }
            @if let Some(p) = &scope {
                p {
                    strong { "Partial run." }
                    " The filters (" (p.filters) ") selected " (p.ran) " of " (p.total)
                    " items; this verdict is theirs, not the checklist's. Not run: "
                    (p.not_run_list(20)) "."
                }
            }
            @if r.run.interrupted {
                p { strong { "Interrupted." } " The run was stopped before every item finished; this report is partial." }
            }
            @if !r.reasons.is_empty() {
                ul class="reasons" { @for reason in &r.reasons { li { (reason) } } }
            }
            p { (counts) }
        }
    }
}

/// The run's facts: system, environment, checklist and its digest, commit, host, times,
/// duration, version and filters (the body digest signatures cover is in the sign-off).
pub fn run_facts(r: &Report) -> Markup {
    let c = &r.run.checklist;
    let h = &r.run.host;
    let mut rows: Vec<(&str, String)> = vec![
        ("System", c.system.clone().unwrap_or_else(|| "-".into())),
        (
            "Environment",
            c.environment.clone().unwrap_or_else(|| "-".into()),
        ),
        ("Checklist", c.path.clone()),
        ("Checklist SHA-256", c.sha256.clone()),
    ];
    if let Some(g) = &r.run.git {
        let dirty = if g.dirty {
            " (uncommitted changes)"
        } else {
            ""
        };
        rows.push(("Commit", format!("{}{dirty}", g.commit)));
    }
    rows.push((
        "Host",
        format!(
            "{} — {}, kernel {}, {}, {} CPUs, {}",
            h.hostname,
            h.os,
            h.kernel,
            h.arch,
            h.cpus,
            crate::units::format_bytes(h.memory_bytes)
        ),
    ));
    rows.push(("Started", r.run.started_at.clone()));
    rows.push(("Finished", r.run.finished_at.clone()));
    rows.push(("Duration", duration(r.run.duration_ms)));
    rows.push(("prodready", r.run.prodready_version.clone()));
    if !r.run.filters.is_empty() {
        rows.push(("Filters", r.run.filters.join(" ")));
    }
    html! {
        section id="run" aria-labelledby="run-h" {
            h2 id="run-h" { "Run" }
            table class="facts" {
                @for (k, v) in &rows { tr { th scope="row" { (k) } td { (v) } } }
            }
        }
    }
}

/// The summary: one row per item (title and id, section, severity, status, expected,
/// measured), in checklist order.
pub fn summary(r: &Report) -> Markup {
    html! {
        section id="summary" aria-labelledby="summary-h" {
            h2 id="summary-h" { "Summary" }
            table class="summary" {
                caption { (r.items.len()) " items, in checklist order" }
                thead { tr {
                    th scope="col" { "Item" } th scope="col" { "Section" }
                    th scope="col" { "Severity" } th scope="col" { "Status" }
                    th scope="col" { "Expected" } th scope="col" { "Measured" }
                } }
                tbody {
                    @for it in &r.items {
                        @let measured = if it.outcome.checks.is_empty() {
                            it.outcome.summary.clone()
                        } else {
                            it.outcome.measured_text()
                        };
                        tr data-item=(it.id) data-status=(it.outcome.status.as_str()) {
                            th scope="row" {
                                a href={ "#" (anchor(&it.id)) } { (it.title) }
                                " " code { (it.id) }
                            }
                            td { (it.section) }
                            td class="nw" { (it.severity.as_str()) }
                            td class="nw" { (badge(it.outcome.status)) }
                            td { (it.outcome.expected_text()) }
                            td { (measured) }
                        }
                    }
                }
            }
        }
    }
}

/// The services started around the run, with their output tails.
pub fn services(r: &Report) -> Markup {
    if r.services.is_empty() {
        return html! {};
    }
    let rows: Vec<Vec<String>> = r
        .services
        .iter()
        .map(|s| {
            let ready = match (s.ready, s.ready_ms) {
                (true, Some(ms)) => format!("ready in {ms} ms"),
                (true, None) => "ready".to_string(),
                (false, _) => format!("NOT ready: {}", s.message),
            };
            vec![
                s.name.clone(),
                s.command.clone(),
                ready,
                s.exit.clone().unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    html! {
        section id="services" aria-labelledby="services-h" {
            h2 id="services-h" { "Services" }
            (table(None, &["Service", "Command", "Ready", "Ended"], &rows))
            @for s in r.services.iter().filter(|s| !s.log_tail.is_empty()) {
                details {
                    summary { (s.name) " output tail" }
                    pre { (s.log_tail) }
                }
            }
        }
    }
}
