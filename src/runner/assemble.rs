//! From outcomes to the [`Report`]: waivers applied, the verdict asked of
//! [`report::verdict`], the run's metadata, paths made portable.

use std::collections::BTreeMap;
use std::time::Duration;

use super::RunOptions;
use crate::checklist::Checklist;
use crate::model::{Outcome, Status};
use crate::report::{self, ItemReport, Report, RunMeta, WaiverReport, WaiverState};

/// What a run produced, before waivers and the verdict.
pub(super) struct Ran {
    pub(super) outcomes: BTreeMap<String, Outcome>,
    pub(super) services: Vec<report::ServiceReport>,
    pub(super) interrupted: bool,
    pub(super) started_at: jiff::Timestamp,
    pub(super) duration: Duration,
}

/// Apply the waivers, decide the verdict and assemble the report (paths made portable).
pub(super) fn build_report(checklist: &Checklist, opts: &RunOptions, ran: Ran) -> Report {
    let Ran {
        mut outcomes,
        services,
        interrupted,
        started_at,
        duration,
    } = ran;
    let mut waivers = Vec::new();
    let mut items = Vec::new();
    for it in &checklist.items {
        let mut outcome = outcomes
            .remove(&it.id)
            .unwrap_or_else(|| Outcome::not_run(Status::Skipped, report::NOT_SELECTED));
        let probe_status = outcome.status;
        for w in checklist.waivers.iter().filter(|w| w.item == it.id) {
            waivers.push(apply_waiver(w, &mut outcome, probe_status, opts.today));
        }
        items.push(ItemReport {
            id: it.id.clone(),
            section: it.section.clone(),
            title: it.title.clone(),
            severity: it.severity,
            tags: it.tags.clone(),
            kind: it.probe.kind().to_string(),
            description: it.description.clone(),
            probe_status,
            outcome,
        });
    }
    let (verdict, reasons) = report::verdict(&items, &services, interrupted, opts.fail_on);
    // The items the filters left out: their verdict is not known, so the run's is partial.
    let not_run: Vec<String> = checklist
        .items
        .iter()
        .filter(|it| !opts.selects(it))
        .map(|it| it.id.clone())
        .collect();
    let mut report = Report {
        schema_version: report::SCHEMA_VERSION,
        run: run_meta(checklist, opts, started_at, duration, interrupted),
        verdict,
        partial: !not_run.is_empty(),
        not_run,
        counts: report::count(&items),
        reasons,
        items,
        services,
        waivers,
        signoff: report::Signoff {
            required_roles: checklist.meta.signoff.clone(),
            signatures: Vec::new(),
        },
    };
    let paths = report::portable::PathMap::new(
        &checklist.dir,
        &opts.report_dir,
        std::env::var_os("HOME").map(std::path::PathBuf::from),
    );
    if let Err(e) = paths.apply_to_report(&mut report) {
        report
            .reasons
            .push(format!("internal error making paths portable: {e}"));
    }
    report
}

/// The run's metadata: the checklist as found, git and host facts, times and filters.
fn run_meta(
    checklist: &Checklist,
    opts: &RunOptions,
    started_at: jiff::Timestamp,
    duration: Duration,
    interrupted: bool,
) -> RunMeta {
    let finished_at = jiff::Timestamp::now();
    RunMeta {
        checklist: report::ChecklistInfo {
            name: checklist.meta.name.clone(),
            path: match checklist.path.file_name() {
                Some(name) => crate::facts::repo_relative_path(&checklist.dir, name)
                    .unwrap_or_else(|| name.to_string_lossy().into_owned()),
                None => opts.checklist_arg.clone(),
            },
            sha256: checklist.sha256.clone(),
            system: checklist.meta.system.clone(),
            environment: checklist.meta.environment.clone(),
            description: checklist.meta.description.clone(),
        },
        git: crate::facts::git_info(&checklist.dir),
        host: crate::facts::host_facts(),
        prodready_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: started_at
            .round(jiff::Unit::Millisecond)
            .unwrap_or(started_at)
            .to_string(),
        finished_at: finished_at
            .round(jiff::Unit::Millisecond)
            .unwrap_or(finished_at)
            .to_string(),
        duration_ms: duration.as_millis() as u64,
        interrupted,
        fail_on: opts.fail_on,
        filters: opts.filters(),
    }
}

/// Apply waiver `w` to the outcome of its item, whose probe produced `probe_status`, as of
/// `today` (UTC): an unexpired waiver turns `fail` or `error` into `waived`; `pending` (time
/// will tell) and every other status are left alone. Returns what the waiver did.
pub fn apply_waiver(
    w: &crate::checklist::Waiver,
    outcome: &mut Outcome,
    probe_status: Status,
    today: jiff::civil::Date,
) -> WaiverReport {
    let state = if !w.applies_on(today) {
        WaiverState::Expired
    } else if matches!(probe_status, Status::Fail | Status::Error) {
        outcome.status = Status::Waived;
        WaiverState::Applied
    } else if probe_status == Status::Skipped {
        WaiverState::NotRun
    } else {
        WaiverState::NotNeeded
    };
    WaiverReport {
        item: w.item.clone(),
        reason: w.reason.clone(),
        approved_by: w.approved_by.clone(),
        expires: w.expires.to_string(),
        state,
        signer: w.signature.as_ref().map(|s| s.signer.clone()),
        signature: w.signature.as_ref().map(|s| s.armored.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checklist::Waiver;
    use crate::model::Severity;
    use crate::report::{ItemReport, ServiceReport, Verdict, verdict};

    fn date(s: &str) -> jiff::civil::Date {
        s.parse().unwrap()
    }

    fn waiver(expires: &str) -> Waiver {
        Waiver {
            item: "cov".into(),
            reason: "legacy adapter".into(),
            approved_by: "Technical lead".into(),
            expires: date(expires),
            signature: None,
        }
    }

    fn item(id: &str, severity: Severity, status: Status) -> ItemReport {
        ItemReport {
            id: id.into(),
            section: "S".into(),
            title: id.into(),
            severity,
            tags: Vec::new(),
            kind: "command".into(),
            description: None,
            probe_status: status,
            outcome: Outcome::not_run(status, format!("{id} summary")),
        }
    }

    #[test]
    fn a_waiver_turns_fail_and_error_into_waived_until_it_expires() {
        for status in [Status::Fail, Status::Error] {
            let mut o = Outcome::not_run(status, "x");
            let r = apply_waiver(&waiver("2027-01-31"), &mut o, status, date("2027-01-31"));
            assert_eq!((o.status, r.state), (Status::Waived, WaiverState::Applied));
            let mut o = Outcome::not_run(status, "x");
            let r = apply_waiver(&waiver("2027-01-31"), &mut o, status, date("2027-02-01"));
            assert_eq!((o.status, r.state), (status, WaiverState::Expired));
        }
    }

    #[test]
    fn a_waiver_never_hides_pending_and_says_when_it_was_not_needed() {
        let cases = [
            (Status::Pending, WaiverState::NotNeeded),
            (Status::Pass, WaiverState::NotNeeded),
            (Status::Warn, WaiverState::NotNeeded),
            (Status::Skipped, WaiverState::NotRun),
        ];
        for (status, state) in cases {
            let mut o = Outcome::not_run(status, "x");
            let r = apply_waiver(&waiver("2027-01-31"), &mut o, status, date("2026-12-01"));
            assert_eq!((o.status, r.state), (status, state), "{status:?}");
        }
    }

    #[test]
    fn verdict_blocks_at_and_above_fail_on_and_counts_waivers() {
        let minor_fail = item("m", Severity::Minor, Status::Fail);
        let major_pass = item("p", Severity::Major, Status::Pass);
        let (v, reasons) = verdict(
            &[minor_fail.clone(), major_pass.clone()],
            &[],
            false,
            Severity::Major,
        );
        assert_eq!((v, reasons.len()), (Verdict::Ready, 0));
        let (v, reasons) = verdict(
            std::slice::from_ref(&minor_fail),
            &[],
            false,
            Severity::Minor,
        );
        assert_eq!(v, Verdict::NotReady);
        assert_eq!(
            reasons,
            vec!["minor item \"m\" is fail: m summary".to_string()]
        );
        for status in [Status::Error, Status::Pending] {
            let (v, _) = verdict(
                &[item("b", Severity::Blocker, status)],
                &[],
                false,
                Severity::Major,
            );
            assert_eq!(
                v,
                Verdict::NotReady,
                "{status:?} blocks: no data is not a pass"
            );
        }
        let waived = item("w", Severity::Blocker, Status::Waived);
        let (v, _) = verdict(
            &[waived.clone(), major_pass.clone()],
            &[],
            false,
            Severity::Major,
        );
        assert_eq!(v, Verdict::ReadyWithWaivers);
        let (v, reasons) = verdict(
            std::slice::from_ref(&major_pass),
            &[],
            true,
            Severity::Major,
        );
        assert_eq!(v, Verdict::NotReady);
        assert!(reasons[0].contains("interrupted"));
        let down = ServiceReport {
            name: "broker".into(),
            command: "prodready paper-broker".into(),
            ready: false,
            ready_ms: None,
            message: "not ready after 10 s".into(),
            exit: None,
            log_tail: String::new(),
        };
        let (v, reasons) = verdict(&[major_pass], &[down], false, Severity::Major);
        assert_eq!(v, Verdict::NotReady);
        assert!(reasons[0].contains("service \"broker\" did not become ready"));
    }
}
