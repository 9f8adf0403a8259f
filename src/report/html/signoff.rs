//! The people's part of the report: waivers with their expiry, attestations, and the sign-off
//! (each role signed or not, by whom, deciding what, and whether the signature was verified
//! when this page was written).

use std::collections::BTreeMap;

use maud::{Markup, html};

use super::{Context, Verified, anchor, badge, table};
use crate::report::{Report, Signature, WaiverState};

/// The waivers, applied or not, with who approved them, whether they are signed, and when
/// they expire.
pub fn waivers(r: &Report) -> Markup {
    if r.waivers.is_empty() {
        return html! {};
    }
    let rows: Vec<Vec<String>> = r
        .waivers
        .iter()
        .map(|w| {
            let state = match w.state {
                WaiverState::Applied => "applied",
                WaiverState::NotNeeded => "not needed (the item did not fail)",
                WaiverState::Expired => "EXPIRED: no longer applies",
                WaiverState::NotRun => "the item did not run",
            };
            let signed = match &w.signer {
                Some(s) => format!("signed by {s}"),
                None => "not signed".to_string(),
            };
            vec![
                w.item.clone(),
                w.reason.clone(),
                w.approved_by.clone(),
                signed,
                w.expires.clone(),
                state.to_string(),
            ]
        })
        .collect();
    html! {
        section id="waivers" aria-labelledby="waivers-h" {
            h2 id="waivers-h" { "Waivers" }
            (table(None, &["Item", "Reason", "Approved by", "Signature", "Expires", "State"], &rows))
        }
    }
}

/// The attestation items: who attested what, when, until when, on which evidence.
pub fn attestations(r: &Report) -> Markup {
    let items: Vec<_> = r.items.iter().filter(|i| i.kind == "attestation").collect();
    if items.is_empty() {
        return html! {};
    }
    let text = |it: &crate::report::ItemReport, key: &str| {
        it.outcome
            .measured
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or("-")
            .to_string()
    };
    html! {
        section id="attestations" aria-labelledby="attestations-h" {
            h2 id="attestations-h" { "Attestations" }
            table {
                thead { tr {
                    th scope="col" { "Item" } th scope="col" { "Status" } th scope="col" { "Signer" }
                    th scope="col" { "Attested at" } th scope="col" { "Expires" }
                    th scope="col" { "Evidence" } th scope="col" { "Detail" }
                } }
                tbody {
                    @for it in &items {
                        tr {
                            th scope="row" { a href={ "#" (anchor(&it.id)) } { (it.title) } " " code { (it.id) } }
                            td { (badge(it.outcome.status)) }
                            td { (text(it, "signer")) } td { (text(it, "attested_at")) }
                            td { (text(it, "expires")) } td { code { (text(it, "evidence")) } }
                            td { (it.outcome.summary) }
                        }
                    }
                }
            }
        }
    }
}

/// The sign-off: the digest signatures cover, one row per role (required roles first, signed
/// or not), and the verification when one was made for this page.
pub fn signoff(r: &Report, cx: &Context<'_>) -> Markup {
    let mut by_role: BTreeMap<String, Vec<(usize, &Signature)>> = BTreeMap::new();
    for (i, s) in r.signoff.signatures.iter().enumerate() {
        by_role
            .entry(s.role.to_lowercase())
            .or_default()
            .push((i, s));
    }
    let mut roles: Vec<String> = r.signoff.required_roles.clone();
    for s in &r.signoff.signatures {
        if !roles.iter().any(|x| x.eq_ignore_ascii_case(&s.role)) {
            roles.push(s.role.clone());
        }
    }
    html! {
        section id="signoff" aria-labelledby="signoff-h" {
            h2 id="signoff-h" { "Sign-off" }
            p { "Report body SHA-256: " code { (r.body_sha256()) } }
            p {
                "Each role signs with " code { "prodready sign report.json --role ROLE --key KEY" }
                "; anyone checks with " code { "prodready verify report.json --allowed-signers FILE" } "."
            }
            @if roles.is_empty() { p { "The checklist requires no sign-off role, and nobody has signed." } }
            @else {
                table class="signatures" {
                    thead { tr {
                        th scope="col" { "Role" } th scope="col" { "Signed" } th scope="col" { "Decision" }
                        th scope="col" { "Signer" } th scope="col" { "Key" } th scope="col" { "Signed at" }
                        th scope="col" { "Comment" } th scope="col" { "Verified" }
                    } }
                    tbody {
                        @for role in &roles {
                            @match by_role.get(&role.to_lowercase()) {
                                None => tr { th scope="row" { (role) } td { span class="badge s-pending" { "not signed" } } td colspan="6" { "-" } },
                                Some(sigs) => @for (i, s) in sigs { (signature_row(*i, s, cx.verification)) },
                            }
                        }
                    }
                }
            }
            (verification(cx.verification))
        }
    }
}

/// One signature's row.
fn signature_row(i: usize, s: &Signature, v: Option<&Verified>) -> Markup {
    let decision_class = match s.decision {
        crate::report::Decision::Approve => "s-pass",
        crate::report::Decision::Reject => "s-fail",
    };
    html! {
        tr {
            th scope="row" { (s.role) }
            td { "signed" }
            td { span class={ "badge " (decision_class) } { (s.decision.as_str()) } }
            td { (s.signer) } td { code { (s.key_fingerprint) } } td { (s.signed_at) }
            td { (s.comment) }
            td { (verified_cell(i, v)) }
        }
    }
}

/// Whether signature `i` (0-based, report order) was verified: `prodready verify` names its
/// rows `signature N: …` with N from 1.
fn verified_cell(i: usize, v: Option<&Verified>) -> Markup {
    let Some(v) = v else {
        return html! { span class="badge s-skipped" { "not verified" } " when this page was written" };
    };
    let prefix = format!("signature {}:", i + 1);
    match v.rows.iter().find(|r| r.check.starts_with(&prefix)) {
        Some(row) if row.holds == Some(true) => {
            html! { span class="badge s-pass" { "verified" } " " (row.detail) }
        }
        Some(row) => html! { span class="badge s-fail" { "NOT verified" } " " (row.detail) },
        None => {
            html! { span class="badge s-fail" { "NOT verified" } " no check of this signature" }
        }
    }
}

/// The whole verification, when one was made for this page.
fn verification(v: Option<&Verified>) -> Markup {
    let Some(v) = v else {
        return html! {
            p class="muted" {
                "The signatures were not verified when this page was written. Verify them with "
                code { "prodready verify" } ", or write this page with "
                code { "prodready report report.json --format html --allowed-signers FILE" } "."
            }
        };
    };
    html! {
        table class="verification" {
            caption { "Verification against " (v.allowed_signers) " on " (v.on) }
            thead { tr { th scope="col" { "Check" } th scope="col" { "Result" } th scope="col" { "Detail" } } }
            tbody {
                @for row in &v.rows {
                    @let (word, class) = match row.holds {
                        Some(true) => ("ok", "s-pass"), Some(false) => ("FAIL", "s-fail"), None => ("info", "s-skipped"),
                    };
                    tr { th scope="row" { (row.check) } td { span class={ "badge " (class) } { (word) } } td { (row.detail) } }
                }
            }
        }
    }
}
