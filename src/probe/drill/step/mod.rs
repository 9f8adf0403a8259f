//! Drill steps: the registry of step kinds, a step as written ([`RawStep`]: the keys every
//! step has and one [`RawStepKind`] variant with that kind's own keys), and the validated
//! [`Step`] the run executes.
//!
//! Files: `keys` reads a step table into those parts; [`actions`] and [`expectations`] hold
//! each kind's keys, how they validate and what they validate into. A new kind of step is its
//! keys struct and validation there, one line in the registry below, and how it is done or
//! observed (`drill/action.rs` or `drill/observe.rs`).

pub(crate) mod actions;
pub(crate) mod expectations;
mod http_fault;
mod keys;
mod observed;
pub(crate) mod request;
pub(crate) mod venue;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

use crate::probe::{FieldError, RefKind, Validator};
pub use actions::Action;
use actions::ActionKeys;
pub use expectations::{Count, Expect, Expectation, LogFrom, Observe, Since, Timing};
use keys::{Kind, Reader, Select};
pub use request::MARKER_KEY;

/// The keys every step may carry.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Name shown in the report and used by `needs`; default: a description of the step.
    pub name: Option<String>,
    /// Names of earlier steps this one depends on: when one of them did not succeed, this step
    /// is `not run`, with the reason.
    #[serde(default)]
    pub needs: Vec<String>,
}

/// `[[item.probe.step]]` as written: the keys every step has, and its kind with its own keys.
#[derive(Debug)]
pub struct RawStep {
    /// `name`, `needs`.
    pub common: Common,
    /// The action or expectation.
    pub kind: RawStepKind,
}

/// The registry: one line per step kind, `Variant(keys type) = "key"` for an action told by
/// its key, `= "key" with "tag" = "value"` for one told apart by a second key, and `Variant(keys
/// type) = "kind"` for `expect = "kind"`. It generates [`RawStepKind`], how a step table is
/// recognised and read ([`kinds`]), the validation dispatch and the schema's `oneOf`.
macro_rules! steps {
    (
        actions { $($(#[$ad:meta])* $av:ident($at:ty) = $ak:literal $(with $tk:literal = $tv:literal)?,)* }
        expectations { $($(#[$ed:meta])* $ev:ident($et:ty) = $ek:literal,)* }
    ) => {
        /// One step's kind, with its own keys.
        #[derive(Debug)]
        pub enum RawStepKind {
            $($(#[$ad])* $av($at),)*
            $($(#[$ed])* $ev(Expect<$et>),)*
        }

        /// Every step kind: how it is recognised, read and described.
        fn kinds() -> Vec<Kind<RawStepKind>> {
            vec![
                $(Kind {
                    select: Select { key: $ak, tag: steps!(@tag $($tk, $tv)?) },
                    read: |r| r.finish::<$at>().map(RawStepKind::$av),
                    keys: keys::keys_of::<$at>,
                    schema: keys::schema_of::<$at>,
                    expectation: false,
                },)*
                $(Kind {
                    select: Select { key: "expect", tag: Some(("expect", $ek)) },
                    read: |r| {
                        let timing = r.take::<Timing>()?;
                        let keys = r.finish::<$et>()?;
                        Ok(RawStepKind::$ev(Expect { timing, keys }))
                    },
                    keys: keys::keys_of::<$et>,
                    schema: keys::schema_of::<$et>,
                    expectation: true,
                },)*
            ]
        }

        impl RawStepKind {
            /// Validate the kind's keys into an action or an expectation.
            fn validate(self, v: &mut Validator) -> Result<StepKind, FieldError> {
                Ok(match self {
                    $(RawStepKind::$av(keys) => StepKind::Action(keys.validate(v)?),)*
                    $(RawStepKind::$ev(e) => StepKind::Expect(Box::new(e.validate(v)?)),)*
                })
            }
        }
    };
    (@tag) => { None };
    (@tag $tk:literal, $tv:literal) => { Some(($tk, $tv)) };
}

steps! {
    actions {
        /// `stop = "<service>"`.
        Stop(actions::Stop) = "stop",
        /// `start = "<service>"`.
        Start(actions::Start) = "start",
        /// `restart = "<service>"`.
        Restart(actions::Restart) = "restart",
        /// `signal = "<signal>"`.
        Signal(actions::Signal) = "signal",
        /// `command = [argv]`.
        Command(actions::Command) = "command",
        /// `http = "<url>"`.
        HttpRequest(actions::Http) = "http",
        /// `proxy = "<proxy>"`, `fault = "down"`.
        ProxyDown(actions::ProxyDown) = "proxy" with "fault" = "down",
        /// `proxy = "<proxy>"`, `fault = "blackhole"`.
        ProxyBlackhole(actions::ProxyBlackhole) = "proxy" with "fault" = "blackhole",
        /// `proxy = "<proxy>"`, `fault = "latency"`.
        ProxyLatency(actions::ProxyLatency) = "proxy" with "fault" = "latency",
        /// `proxy = "<proxy>"`, `fault = "reset_after"`.
        ProxyResetAfter(actions::ProxyResetAfter) = "proxy" with "fault" = "reset_after",
        /// `proxy = "<proxy>"`, `fault = "http"`.
        ProxyHttp(http_fault::ProxyHttp) = "proxy" with "fault" = "http",
        /// `proxy = "<proxy>"`, `fault = "heal"`.
        ProxyHeal(actions::ProxyHeal) = "proxy" with "fault" = "heal",
        /// `broker_fault = { … }`.
        BrokerFault(actions::BrokerFault) = "broker_fault",
        /// `wait = "<duration>"`.
        Wait(actions::Wait) = "wait",
    }
    expectations {
        /// `expect = "http"`.
        Http(expectations::Http) = "http",
        /// `expect = "exit"`.
        Exit(expectations::Exit) = "exit",
        /// `expect = "sql"`.
        Sql(expectations::Sql) = "sql",
        /// `expect = "notifications"`.
        Notifications(expectations::Notifications) = "notifications",
        /// `expect = "orders"`.
        Orders(venue::Orders) = "orders",
        /// `expect = "log"`.
        Log(expectations::Log) = "log",
        /// `expect = "process"`.
        Process(expectations::Process) = "process",
        /// `expect = "prometheus"`.
        Prometheus(expectations::Prometheus) = "prometheus",
    }
}

impl RawStep {
    /// Read one step table.
    ///
    /// # Errors
    /// A [`FieldError`] at the key inside the step: no action and no `expect`, two of them, an
    /// unknown expectation or proxy fault, a key that does not apply to the step's kind (naming
    /// those that do), a value of the wrong type, a missing key the kind needs.
    pub fn parse(table: toml::Table) -> Result<RawStep, FieldError> {
        let mut r = Reader::new(table);
        let common = r.take::<Common>()?;
        let kind = r.select(&kinds())?;
        Ok(RawStep { common, kind })
    }

    /// Validate step `i` (0-based, for its default name).
    ///
    /// # Errors
    /// A [`FieldError`] at the key inside the step.
    pub fn validate(self, i: usize, v: &mut Validator) -> Result<Step, FieldError> {
        let kind = self.kind.validate(v)?;
        let name = match self.common.name {
            Some(n) if !n.trim().is_empty() => n,
            Some(_) => return Err(FieldError::new("name", "expected a non-empty name")),
            None => format!("{}. {}", i + 1, kind.describe()),
        };
        Ok(Step {
            name,
            needs: self.common.needs,
            kind,
        })
    }
}

/// The schema of a step table: one of the kinds, each with its own keys, its tag, and the keys
/// every step (and every expectation) takes.
pub fn schema(g: &mut SchemaGenerator) -> Schema {
    let common: fn(&mut SchemaGenerator) -> Schema = keys::schema_of::<Common>;
    let timing: fn(&mut SchemaGenerator) -> Schema = keys::schema_of::<Timing>;
    let variants: Vec<Schema> = kinds()
        .iter()
        .map(|k| {
            let shared: &[fn(&mut SchemaGenerator) -> Schema] = if k.expectation {
                &[timing, common]
            } else {
                &[common]
            };
            keys::kind_schema(g, k, shared)
        })
        .collect();
    schemars::json_schema!({
        "description": "One action (stop, start, restart, signal, command, http, proxy, broker_fault, wait) or one expectation (expect = \"<kind>\"), with the keys of that kind.",
        "oneOf": variants,
    })
}

/// One validated step.
#[derive(Debug, Clone)]
pub struct Step {
    /// Its name (given, or a description of the step).
    pub name: String,
    /// Earlier steps it depends on.
    pub needs: Vec<String>,
    /// What it does.
    pub kind: StepKind,
}

/// An action or an expectation.
#[derive(Debug, Clone)]
pub enum StepKind {
    /// Change something.
    Action(Action),
    /// Wait until something holds.
    Expect(Box<Expectation>),
}

impl StepKind {
    /// `stop agent`, `expect http`: the default name after the step's number.
    fn describe(&self) -> String {
        match self {
            StepKind::Action(a) => a.describe(),
            StepKind::Expect(e) => format!("expect {}", e.observe.kind()),
        }
    }
}

impl Step {
    /// The saved names the step refers to (`${saved.NAME}`), with the key that does.
    pub fn saved_uses(&self) -> Vec<(&'static str, &str)> {
        match &self.kind {
            StepKind::Action(a) => a.saved_uses(),
            StepKind::Expect(e) => e.observe.saved_uses(),
        }
    }

    /// The names the step saves values under.
    pub fn saves(&self) -> Vec<&str> {
        match &self.kind {
            StepKind::Action(a) => a.saves(),
            StepKind::Expect(e) => e.save.as_deref().into_iter().collect(),
        }
    }

    /// The services, sinks and proxies the step names, with the key naming each.
    pub fn references(&self) -> Vec<(&'static str, RefKind, &str)> {
        match &self.kind {
            StepKind::Action(a) => a.references(),
            StepKind::Expect(e) => e.observe.references(),
        }
    }
}

#[cfg(test)]
mod tests;
