//! `report.html`: the report people read on a projector or print for the sign-off meeting.
//!
//! One self-contained file: the stylesheet and every chart are inline, there is no script, no
//! font, no image or style fetched from anywhere, so it reads fully with JavaScript off and can
//! be mailed or attached to a ticket. Evidence other than charts is linked by its path relative
//! to the report folder. Every value is escaped by the template engine (maud); only chart SVG
//! files are inlined as markup, and only when they are still the bytes the report recorded
//! (SHA-256) and hold nothing active (see the `svg` submodule).
//!
//! Order: verdict banner, run facts, summary table, one article per item (expectation and
//! measured figures, checks, tables, charts, evidence, log), waivers, attestations, services,
//! sign-off. Status is always written as a word; its colour only repeats it. The print
//! stylesheet starts each section on a new page, never cuts a row or a chart, and shows link
//! targets. Like every renderer, this one never measures and never decides a verdict.

mod items;
mod page;
mod signoff;
mod svg;

use std::io::{self, Write};
use std::path::Path;

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::{Report, Verdict};
use crate::model::Status;

/// The stylesheet, inlined in `<style>`.
const STYLE: &str = include_str!("style.css");

/// What the HTML renderer may use besides the report itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Context<'a> {
    /// The report folder, where `evidence/…` lives: chart SVGs found there (with the recorded
    /// SHA-256) are inlined. `None` renders links only.
    pub dir: Option<&'a Path>,
    /// A verification of the signatures made for this rendering (`prodready report --format
    /// html --allowed-signers FILE`); `None` says the signatures were not verified here.
    pub verification: Option<&'a Verified>,
}

/// The result of verifying a report's signatures, as the HTML shows it (filled by the caller
/// from `prodready verify`'s checks, which live above this module).
#[derive(Debug, Clone, Default)]
pub struct Verified {
    /// The allowed_signers file the signatures were checked against, as given.
    pub allowed_signers: String,
    /// The day expiries were judged on (YYYY-MM-DD).
    pub on: String,
    /// Every check, in `prodready verify` order.
    pub rows: Vec<VerifiedRow>,
}

/// One check of a [`Verified`].
#[derive(Debug, Clone)]
pub struct VerifiedRow {
    /// What was checked, e.g. `signature 1: Technical lead (approve, alice)`.
    pub check: String,
    /// `Some(true)` holds, `Some(false)` fails, `None` information only.
    pub holds: Option<bool>,
    /// Why, in words.
    pub detail: String,
}

/// Render the whole report as one HTML document.
///
/// # Errors
/// Whatever the writer returns.
pub fn render<W: Write>(w: &mut W, r: &Report, cx: &Context<'_>) -> io::Result<()> {
    let title = format!(
        "Readiness report: {} — {}",
        r.run.checklist.name,
        r.verdict_text()
    );
    let generator = format!("prodready {}", r.run.prodready_version);
    let head = Head {
        title: &title,
        style: STYLE,
        generator: Some(&generator),
        refresh_s: None,
    };
    let doc = document(
        &head,
        html! {
                body {
                    (page::banner(r))
                    main {
                        (page::run_facts(r))
                        (page::summary(r))
                        (items::items(r, cx))
                        (signoff::waivers(r))
                        (signoff::attestations(r))
                        (page::services(r))
                        (signoff::signoff(r, cx))
                    }
                    footer {
                        "Written by prodready " (r.run.prodready_version)
                        " from report.json; the signed record is report.json, this page only shows it."
                    }
                }
        },
    );
    w.write_all(doc.into_string().as_bytes())
}

/// What goes in a page's `<head>` besides the charset, the viewport and the colour scheme.
#[derive(Debug, Clone, Copy)]
pub struct Head<'a> {
    /// The `<title>`.
    pub title: &'a str,
    /// The stylesheet, inlined in `<style>`.
    pub style: &'a str,
    /// `<meta name="generator">`.
    pub generator: Option<&'a str>,
    /// Reload the page every this many seconds (`<meta http-equiv="refresh">`).
    pub refresh_s: Option<u32>,
}

/// A whole HTML5 document (`lang="en"`, UTF-8, a responsive viewport, light and dark colour
/// schemes) with `head` and `body`: the report page and the soak status page share it.
pub fn document(head: &Head<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light dark";
                @if let Some(g) = head.generator { meta name="generator" content=(g); }
                @if let Some(r) = head.refresh_s { meta http-equiv="refresh" content=(r); }
                title { (head.title) }
                style { (PreEscaped(head.style)) }
            }
            (body)
        }
    }
}

/// The status as a badge: the word, upper-cased by the stylesheet, coloured by class.
pub fn badge(s: Status) -> Markup {
    html! { span class={ "badge s-" (s.as_str()) } { (s.as_str()) } }
}

/// The verdict as words for the banner.
pub fn verdict_words(v: Verdict) -> &'static str {
    match v {
        Verdict::Ready => "READY",
        Verdict::ReadyWithWaivers => "READY WITH WAIVERS",
        Verdict::NotReady => "NOT READY",
    }
}

/// The fragment id of an item's article (the same as report.md's anchors).
pub fn anchor(id: &str) -> String {
    format!("item-{}", id.to_lowercase().replace(['.', '_'], "-"))
}

/// A duration in milliseconds as people read it (`1.2s`, `3m 4s`).
pub fn duration(ms: u64) -> String {
    crate::units::format_duration(std::time::Duration::from_millis(ms))
}

/// True when `path` is a plain relative path inside the report folder: no scheme (so never
/// `javascript:` or `https:`), not absolute, no `..`. Only such paths become links or are read.
pub fn is_local_path(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.starts_with('\\')
        && !path.contains(':')
        && !path.split(['/', '\\']).any(|seg| seg == "..")
}

/// A `<table>` from a header row and body rows, every cell escaped; the first cell of each row
/// is its row header.
pub fn table(caption: Option<&str>, columns: &[&str], rows: &[Vec<String>]) -> Markup {
    html! {
        table {
            @if let Some(c) = caption { caption { (c) } }
            thead { tr { @for c in columns { th scope="col" { (c) } } } }
            tbody {
                @for row in rows {
                    tr {
                        @for (i, cell) in row.iter().enumerate() {
                            @if i == 0 { th scope="row" { (cell) } } @else { td { (cell) } }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_local() {
        assert!(is_local_path(
            "evidence/order-latency/latency-percentiles.svg"
        ));
        for bad in [
            "",
            "/etc/passwd",
            "javascript:alert(1)",
            "https://example.com/x.svg",
            "evidence/../../x",
            "..",
        ] {
            assert!(!is_local_path(bad), "{bad}");
        }
    }

    /// `--name: #rrggbb` declarations of one CSS block, as (name, sRGB).
    fn colours(block: &str) -> std::collections::BTreeMap<String, [f64; 3]> {
        let re = regex::Regex::new(r"--([a-z-]+):\s*#([0-9a-f]{6})").unwrap();
        re.captures_iter(block)
            .map(|c| {
                let hex = &c[2];
                let ch = |i: usize| f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap());
                (c[1].to_string(), [ch(0), ch(2), ch(4)])
            })
            .collect()
    }

    /// WCAG 2.1 contrast ratio of two sRGB colours (relative luminance, §1.4.3).
    fn contrast(a: [f64; 3], b: [f64; 3]) -> f64 {
        let lum = |c: [f64; 3]| {
            let lin = |v: f64| {
                let v = v / 255.0;
                if v <= 0.04045 {
                    v / 12.92
                } else {
                    ((v + 0.055) / 1.055).powf(2.4)
                }
            };
            0.2126 * lin(c[0]) + 0.7152 * lin(c[1]) + 0.0722 * lin(c[2])
        };
        let (x, y) = (lum(a) + 0.05, lum(b) + 0.05);
        x.max(y) / x.min(y)
    }

    #[test]
    fn every_text_colour_meets_wcag_aa_in_both_schemes() {
        let dark_at = STYLE.find("prefers-color-scheme: dark").unwrap();
        for block in [&STYLE[..dark_at], &STYLE[dark_at..]] {
            let c = colours(block.split("\n}").next().unwrap());
            let mut pairs = vec![
                ("fg", "bg"),
                ("muted", "bg"),
                ("link", "bg"),
                ("fg", "head"),
                ("fg", "code"),
            ];
            let statuses = [
                "pass", "fail", "warn", "error", "pending", "skipped", "waived",
            ];
            let names: Vec<(String, String)> = statuses
                .iter()
                .map(|s| (format!("{s}-fg"), format!("{s}-bg")))
                .collect();
            pairs.extend(names.iter().map(|(f, b)| (f.as_str(), b.as_str())));
            // The banner writes the body colour on the verdict's background.
            pairs.extend([("fg", "pass-bg"), ("fg", "fail-bg"), ("fg", "waived-bg")]);
            for (f, b) in pairs {
                let ratio = contrast(c[f], c[b]);
                assert!(ratio >= 4.5, "--{f} on --{b}: {ratio:.2}:1 is below 4.5:1");
            }
        }
    }

    #[test]
    fn tables_escape_cells() {
        let t = table(None, &["a"], &[vec!["<script>x</script>".into()]]).into_string();
        assert!(t.contains("&lt;script&gt;"), "{t}");
        assert!(!t.contains("<script>"), "{t}");
    }
}
