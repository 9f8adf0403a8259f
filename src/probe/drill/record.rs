//! What the drill keeps of each step (its outcome, when it started, what it measured and
//! saw) and of how the steps ended (stopped early or not, what was in effect, what the
//! restore did): the run writes it, the output reads it.

use std::time::Duration;

use super::effects::Effect;
use super::step::{Step, StepKind};

/// How one step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StepOutcome {
    /// An action that completed.
    Done,
    /// An expectation that held.
    Held,
    /// An expectation that did not hold, or an action that failed.
    Failed,
    /// Skipped: it needs a step that did not succeed.
    NotRun,
    /// In progress when the drill was stopped (interrupted, timed out).
    Stopped,
    /// After the step in progress when the drill was stopped.
    NotReached,
}

impl StepOutcome {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            StepOutcome::Done => "done",
            StepOutcome::Held => "held",
            StepOutcome::Failed => "FAILED",
            StepOutcome::NotRun => "not run",
            StepOutcome::Stopped => "stopped",
            StepOutcome::NotReached => "not reached",
        }
    }
}

/// Why the steps stopped before the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stopped {
    /// The run was interrupted (ctrl-c, SIGTERM).
    Interrupted,
    /// The item's deadline passed.
    TimedOut,
    /// The runner dropped the probe.
    Abandoned,
}

impl Stopped {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Stopped::Interrupted => "interrupted",
            Stopped::TimedOut => "timed out",
            Stopped::Abandoned => "abandoned",
        }
    }

    /// `was interrupted`, `timed out`, `was abandoned`.
    pub(super) fn verb(self) -> &'static str {
        match self {
            Stopped::Interrupted => "was interrupted",
            Stopped::TimedOut => "timed out",
            Stopped::Abandoned => "was abandoned",
        }
    }
}

/// One step's record.
#[derive(Debug, Clone)]
pub(super) struct StepRecord {
    pub(super) name: String,
    pub(super) kind: String,
    pub(super) result: StepOutcome,
    /// When it started, from the drill's start (`None`: it did not start).
    pub(super) at: Option<Duration>,
    /// Expectations: from the last action until it held; actions: how long they took; a
    /// stopped step: how long it had run.
    pub(super) measured: Option<Duration>,
    pub(super) within: Option<Duration>,
    pub(super) hold: Option<Duration>,
    pub(super) detail: String,
}

impl StepRecord {
    /// A step that did not start.
    pub(super) fn unstarted(step: &Step, result: StepOutcome, detail: String) -> StepRecord {
        StepRecord {
            name: step.name.clone(),
            kind: kind_of(step),
            result,
            at: None,
            measured: None,
            within: None,
            hold: None,
            detail,
        }
    }
}

/// `action` or `expect <kind>`.
pub(super) fn kind_of(step: &Step) -> String {
    match &step.kind {
        StepKind::Action(_) => "action".to_string(),
        StepKind::Expect(e) => format!("expect {}", e.observe.kind()),
    }
}

/// What the restore did: `(what, Ok(what was done) | Err(why it failed or was not done))`.
pub(super) type Restored = Vec<(String, Result<String, String>)>;

/// How the steps ended, for the record.
pub(super) struct Ending<'a> {
    /// Why they stopped early; `None` after the last step.
    pub(super) stopped: Option<Stopped>,
    /// When, from the drill's start.
    pub(super) after: Duration,
    /// In effect at that moment.
    pub(super) in_effect: &'a [Effect],
    /// What the restore did.
    pub(super) restored: &'a Restored,
    /// How long the restore took.
    pub(super) restore_took: Duration,
}
