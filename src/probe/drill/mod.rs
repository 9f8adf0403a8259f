//! `kind = "drill"`: a failure drill. An ordered list of steps, each an action (stop, start,
//! restart or signal a `[[service]]`, run a command, send an HTTP request, break or heal a
//! `[[proxy]]`, set faults on the paper broker, wait) or an expectation polled until it holds or its deadline passes
//! (`http`, `exit`, `sql`, `notifications`, `orders`, `log`, `process`, `prometheus`).
//!
//! What the module owns, and why it is ours rather than a chaos tool's: the drill measures the
//! time from each action until each expectation held (time to detect, to recover, to shut
//! down) and gates the release on it, and it always restores what it broke — actions' `undo`s
//! run, stopped services are started again, paused ones continued, proxies healed and broker
//! faults cleared — even when a step fails, the item times out or the run is interrupted.
//! Stopped early, it still says what it did: the steps that ran with their times, the step it
//! stopped at, what was in effect at that moment, and what the restore did, in the report and
//! in `drill.json`.
//!
//! Files, one concern each (no file of the folder imports another that imports it back):
//! - reading: [`raw`] the TOML shape (steps kept as tables), `step/` the step kinds, their keys
//!   and validation into [`Step`]s, and this file the checks across steps (names, `needs`,
//!   `save` before `equals_saved`);
//! - running: `run` the engine (steps in order, stopping, the restore), `action` doing the
//!   actions, `observe` polling the expectations, over `state` (the drill in progress),
//!   `effects` (what it has broken and not undone) and `record` (what it keeps of each step);
//! - reporting: `output`, the checks, tables, summary and `drill.json`.

mod action;
mod chart;
mod effects;
mod log_lines;
mod observe;
mod output;
pub mod raw;
mod record;
mod run;
mod state;
mod step;

use std::collections::BTreeSet;

use crate::model::ProbeOutput;
use crate::probe::{FieldError, ProbeContext, Reference, Validator};
pub use raw::{RawDrillProbe, StepTable};
pub use step::actions::RawBrokerFault;
pub use step::{Action, Observe, RawStep, RawStepKind, Step, StepKind};

/// A validated drill.
#[derive(Debug, Clone)]
pub struct DrillProbe {
    steps: Vec<Step>,
}

impl RawDrillProbe {
    /// Read and validate every step.
    ///
    /// # Errors
    /// A [`FieldError`] at `step[i].<key>`: no steps, a step that is neither one action nor one
    /// expectation, a key that does not apply to the step (naming those that do), a value of
    /// the wrong type, a malformed duration, signal, regex, URL or fault, a duplicate step
    /// name, `needs` naming no earlier step, or `equals_saved` before the step that saves that
    /// name.
    pub fn validate(self, v: &mut Validator) -> Result<DrillProbe, FieldError> {
        if self.step.is_empty() {
            return Err(FieldError::new(
                "step",
                "expected at least one [[item.probe.step]]",
            ));
        }
        let mut steps: Vec<Step> = Vec::with_capacity(self.step.len());
        let mut saved = BTreeSet::new();
        for (i, table) in self.step.into_iter().enumerate() {
            let at = |k: &str| format!("step[{i}]{}{k}", if k.is_empty() { "" } else { "." });
            let s = RawStep::parse(table.0)
                .and_then(|raw| raw.validate(i, v))
                .map_err(|e| FieldError::new(at(&e.key), e.message))?;
            check_order(&s, &steps, &mut saved).map_err(|(k, m)| FieldError::new(at(k), m))?;
            steps.push(s);
        }
        Ok(DrillProbe { steps })
    }
}

/// What step `s` refers to comes before it: the steps it `needs` and the value it compares
/// with (`equals_saved`); its name is new. Records what it saves in `saved`. `Err((key,
/// message))` with the key inside the step.
fn check_order(
    s: &Step,
    before: &[Step],
    saved: &mut BTreeSet<String>,
) -> Result<(), (&'static str, String)> {
    if let Some(n) = s
        .needs
        .iter()
        .find(|n| !before.iter().any(|b| &b.name == *n))
    {
        return Err(("needs", format!("no earlier step named \"{n}\"")));
    }
    if let StepKind::Expect(e) = &s.kind
        && let Some(name) = &e.equals_saved
        && !saved.contains(name)
    {
        return Err((
            "equals_saved",
            format!(
                "nothing is saved as \"{name}\" before this step (use save = \"{name}\" on an earlier expectation)"
            ),
        ));
    }
    if let Some((key, name)) = s
        .saved_uses()
        .into_iter()
        .find(|(_, n)| !saved.contains(*n))
    {
        return Err((
            key,
            format!(
                "${{saved.{name}}}: nothing is saved as \"{name}\" before this step (save it on an earlier http action or expectation)"
            ),
        ));
    }
    saved.extend(s.saves().into_iter().map(str::to_string));
    if before.iter().any(|b| b.name == s.name) {
        return Err(("name", format!("duplicate step name \"{}\"", s.name)));
    }
    Ok(())
}

impl DrillProbe {
    /// The steps, in order.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }

    /// Run the drill: steps in order until the last one, the run's interruption or the item's
    /// deadline, then the restore; the steps run in a background task so the restore happens
    /// even when this future is dropped.
    pub async fn run(&self, ctx: &ProbeContext) -> ProbeOutput {
        run::run(self.steps.clone(), ctx).await
    }
}

impl crate::probe::ProbeKind for DrillProbe {
    type Raw = RawDrillProbe;

    fn validate(raw: RawDrillProbe, v: &mut Validator) -> Result<DrillProbe, FieldError> {
        raw.validate(v)
    }

    async fn run(
        &self,
        ctx: &ProbeContext,
        _until: Option<&tokio_util::sync::CancellationToken>,
    ) -> ProbeOutput {
        DrillProbe::run(self, ctx).await
    }

    fn exclusive(&self) -> bool {
        true
    }

    /// Stopped by the interruption or the item timeout, a drill finishes its action in
    /// progress, restores and writes its record; this bounds all three.
    fn winds_down(&self) -> Option<std::time::Duration> {
        Some(run::WIND_DOWN)
    }

    fn references(&self) -> Vec<Reference<'_>> {
        let mut out = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            for (key, kind, name) in s.references() {
                out.push(Reference {
                    key: format!("step[{i}].{key}"),
                    kind,
                    name,
                });
            }
        }
        out
    }
}
