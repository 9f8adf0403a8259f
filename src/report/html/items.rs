//! One article per item: status, expectation and measured figures, checks, the probe's
//! tables, its charts inline, its evidence linked, and its log tail.

use maud::{Markup, PreEscaped, html};

use super::svg::{self, Chart};
use super::{Context, anchor, badge, duration, is_local_path, table};
use crate::model::{Check, Evidence};
use crate::report::{ItemReport, Report};

/// The media type of the evidence that is drawn inline.
const SVG: &str = "image/svg+xml";

/// The items section.
pub fn items(r: &Report, cx: &Context<'_>) -> Markup {
    html! {
        section id="items" aria-labelledby="items-h" {
            h2 id="items-h" { "Items" }
            @for it in &r.items { (item(it, cx)) }
        }
    }
}

/// One item's article.
fn item(it: &ItemReport, cx: &Context<'_>) -> Markup {
    let o = &it.outcome;
    let waived = (it.probe_status != o.status)
        .then(|| format!(" (probe status {}, waived)", it.probe_status.as_str()));
    html! {
        article class="item" id=(anchor(&it.id)) data-item=(it.id) aria-labelledby={ (anchor(&it.id)) "-h" } {
            h3 id={ (anchor(&it.id)) "-h" } { (badge(o.status)) " " (it.title) }
            p class="meta" {
                code { (it.id) } " · " (it.section) " · " (it.severity.as_str()) " · "
                (it.kind) " probe · " (o.attempts) " attempt(s) · " (duration(o.duration_ms))
                @if let Some(w) = &waived { (w) }
            }
            @if let Some(d) = &it.description { p { (d) } }
            p class="outcome" { (o.summary) }
            (checks(&o.checks))
            @if !o.measured.is_empty() { (measured(o)) }
            @for t in &o.tables {
                (table(Some(&t.title), &t.columns.iter().map(String::as_str).collect::<Vec<_>>(), &t.rows))
            }
            @for ev in o.evidence.iter().filter(|e| e.media_type == SVG) { (chart(ev, cx)) }
            (evidence(&o.evidence))
            @if let Some(log) = &o.log_tail {
                details { summary { "Log tail" } pre { (log) } }
            }
        }
    }
}

/// The checks: expected beside measured, and whether each held, in words.
fn checks(checks: &[Check]) -> Markup {
    if checks.is_empty() {
        return html! {};
    }
    html! {
        table class="checks" {
            caption { "Checks" }
            thead { tr {
                th scope="col" { "Check" } th scope="col" { "Expected" }
                th scope="col" { "Measured" } th scope="col" { "Result" }
            } }
            tbody {
                @for ch in checks {
                    @let (word, class) = match (ch.passed, ch.advisory) {
                        (true, _) => ("held", "s-pass"),
                        (false, true) => ("missed (advisory)", "s-warn"),
                        (false, false) => ("missed", "s-fail"),
                    };
                    tr {
                        th scope="row" { (ch.name) }
                        td { (ch.expected) } td { (ch.measured) }
                        td { span class={ "badge " (class) } { (word) } }
                    }
                }
            }
        }
    }
}

/// The measured figures for machines (`measured` in report.json), one row each.
fn measured(o: &crate::model::Outcome) -> Markup {
    let rows: Vec<Vec<String>> = o
        .measured
        .iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            vec![k.clone(), v]
        })
        .collect();
    html! {
        details class="measured" {
            summary { "Measured figures (" (rows.len()) ")" }
            (table(None, &["Figure", "Value"], &rows))
        }
    }
}

/// A chart: the SVG inline when it can be, otherwise a note and the link.
fn chart(ev: &Evidence, cx: &Context<'_>) -> Markup {
    match svg::load(cx.dir, ev) {
        Chart::Inline(svg) => html! {
            figure class="chart" {
                div role="img" aria-label=(ev.label) { (PreEscaped(svg)) }
                figcaption { (ev.label) " — " (link(ev)) }
            }
        },
        Chart::Linked(why) => html! {
            p class="chart muted" { "Chart " (link(ev)) " is not shown inline: " (why) "." }
        },
    }
}

/// A link to an evidence file by its relative path, or its path as text when it is not a
/// plain path inside the report folder.
fn link(ev: &Evidence) -> Markup {
    if is_local_path(&ev.path) {
        html! { a href=(ev.path) { (ev.label) } }
    } else {
        html! { (ev.label) " (" code { (ev.path) } ")" }
    }
}

/// Every evidence file, charts included, with its size and SHA-256.
fn evidence(evidence: &[Evidence]) -> Markup {
    if evidence.is_empty() {
        return html! {};
    }
    html! {
        h4 { "Evidence" }
        ul class="evidence" {
            @for ev in evidence {
                li {
                    (link(ev)) " — " (crate::units::format_bytes(ev.bytes)) ", " (ev.media_type)
                    br; span class="sha" { "SHA-256 " (ev.sha256) }
                }
            }
        }
    }
}
