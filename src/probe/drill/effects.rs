//! What a drill has changed and not undone yet, and what its restore has to look at.
//!
//! Every action that breaks something records an [`Effect`] (the service stopped, the proxy
//! down, the broker's faults); a later step that undoes it (start, heal, clear, `CONT`)
//! removes it. When the steps stop — after the last one, at an interruption or at the item
//! timeout — the effects still present are what was in effect at that moment, and the restore
//! checks the services, proxies and brokers the drill touched and undoes only what is still
//! broken.

use serde_json::{Value, json};

use super::step::actions::Undo;
use crate::units::Interpolated;

/// What an effect is on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    /// A `[[service]]`, by name.
    Service(String),
    /// A `[[proxy]]`, by name.
    Proxy(String),
    /// What an action's `undo` will undo, by the action's step name.
    Undo(String),
    /// A paper broker, by base URL (`value` as interpolated, `shown` with secrets masked).
    Broker {
        /// The URL used.
        value: String,
        /// The URL as written, for people.
        shown: String,
    },
}

impl Target {
    /// The broker at `url`.
    pub(super) fn broker(url: &Interpolated) -> Target {
        Target::Broker {
            value: url.value.trim_end_matches('/').to_string(),
            shown: url.display.trim_end_matches('/').to_string(),
        }
    }

    /// `service agent`, `proxy gw`, `broker http://127.0.0.1:18080`.
    pub(super) fn label(&self) -> String {
        match self {
            Target::Service(s) => format!("service {s}"),
            Target::Proxy(p) => format!("proxy {p}"),
            Target::Undo(step) => format!("step \"{step}\""),
            Target::Broker { shown, .. } => format!("broker {shown}"),
        }
    }
}

/// How a service was left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ServiceState {
    /// Stopped by a `stop` step.
    Stopped,
    /// A `restart` step stopped it and did not see it ready again.
    Restarting,
    /// Paused by `signal = "STOP"`, not continued yet.
    Paused,
    /// Sent this signal (one that may end it: `TERM`, `INT`, `KILL`, `HUP`, `USR1`, `USR2`).
    Signalled(nix::sys::signal::Signal),
}

/// The state of one effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum State {
    /// A service's.
    Service(ServiceState),
    /// A proxy's active fault, as shown (`down`, `latency 200ms ± 0s`).
    Proxy(String),
    /// Broker faults set, as JSON bodies in the order they were posted.
    Broker(Vec<Value>),
    /// An action with an `undo` not run yet, as shown (`undo: run rollback.sh`).
    Undo(String),
}

impl State {
    /// `stopped`, `paused (SIGSTOP)`, `down`, `faults {"unhealthy":true}`.
    pub(super) fn describe(&self) -> String {
        match self {
            State::Service(ServiceState::Stopped) => "stopped".into(),
            State::Service(ServiceState::Restarting) => {
                "stopped by a restart, not ready again".into()
            }
            State::Service(ServiceState::Paused) => "paused (SIGSTOP)".into(),
            State::Service(ServiceState::Signalled(s)) => format!("sent {}", s.as_str()),
            State::Proxy(f) | State::Undo(f) => f.clone(),
            State::Broker(bodies) => format!(
                "faults {}",
                bodies
                    .iter()
                    .map(Value::to_string)
                    .collect::<Vec<_>>()
                    .join(" then ")
            ),
        }
    }
}

/// One change the drill made that no later step undid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Effect {
    /// What it is on.
    pub target: Target,
    /// Its state.
    pub state: State,
    /// The name of the step that made it (the last one, when several did).
    pub step: String,
}

impl Effect {
    /// `service broker stopped`.
    pub(super) fn describe(&self) -> String {
        format!("{} {}", self.target.label(), self.state.describe())
    }

    /// `{"what", "state", "step"}` for `drill.json` and the report's measured values.
    pub(super) fn to_json(&self) -> Value {
        json!({
            "what": self.target.label(),
            "state": self.state.describe(),
            "step": self.step,
        })
    }
}

/// What the drill broke: the effects in force, and everything it touched, for the restore.
#[derive(Debug, Default)]
pub(super) struct Broken {
    /// In force now, in the order they were first made; one per target.
    effects: Vec<Effect>,
    /// Services stopped, started, restarted or signalled, in the order first touched.
    services: Vec<String>,
    /// Proxies given a fault, in the order first touched.
    proxies: Vec<String>,
    /// Brokers given faults, with their API key.
    brokers: Vec<(Interpolated, Option<Interpolated>)>,
    /// Undos to run at restore time, with the step of each, in the order their actions ran.
    undos: Vec<(String, Undo)>,
}

impl Broken {
    /// `target` is now in `state`, by step `step`.
    pub(super) fn set(&mut self, target: Target, state: State, step: &str) {
        match &target {
            Target::Service(s) if !self.services.contains(s) => self.services.push(s.clone()),
            Target::Proxy(p) if !self.proxies.contains(p) => self.proxies.push(p.clone()),
            _ => {}
        }
        match self.effects.iter_mut().find(|e| e.target == target) {
            Some(e) => {
                e.state = state;
                e.step = step.to_string();
            }
            None => self.effects.push(Effect {
                target,
                state,
                step: step.to_string(),
            }),
        }
    }

    /// Faults `body` posted to the broker at `url`: added to those already in force there.
    pub(super) fn broker_faults(
        &mut self,
        url: &Interpolated,
        api_key: Option<&Interpolated>,
        body: &Value,
        step: &str,
    ) {
        let target = Target::broker(url);
        if !self
            .brokers
            .iter()
            .any(|(b, _)| Target::broker(b) == target)
        {
            self.brokers.push((url.clone(), api_key.cloned()));
        }
        let mut bodies = match self.state(&target) {
            Some(State::Broker(b)) => b.clone(),
            _ => Vec::new(),
        };
        bodies.push(body.clone());
        self.set(target, State::Broker(bodies), step);
    }

    /// Step `step` starts an action whose `undo` runs at restore time.
    pub(super) fn undo(&mut self, step: &str, undo: Undo) {
        let state = State::Undo(format!("undo pending: {}", undo.describe()));
        self.set(Target::Undo(step.to_string()), state, step);
        self.undos.push((step.to_string(), undo));
    }

    /// The undos to run at restore time, the last action's first.
    pub(super) fn undos(&self) -> Vec<(String, Undo)> {
        self.undos.iter().rev().cloned().collect()
    }

    /// The drill touched service `name` without breaking it (a `start`): the restore still
    /// checks that it runs.
    pub(super) fn touch_service(&mut self, name: &str) {
        if !self.services.iter().any(|s| s == name) {
            self.services.push(name.to_string());
        }
    }

    /// A later step undid what was in force on `target`.
    pub(super) fn clear(&mut self, target: &Target) {
        self.effects.retain(|e| &e.target != target);
    }

    /// `CONT` reached service `name`: a pause is over (a stop is not).
    pub(super) fn continued(&mut self, name: &str) {
        let target = Target::Service(name.to_string());
        if self.state(&target) == Some(&State::Service(ServiceState::Paused)) {
            self.clear(&target);
        }
    }

    /// What is in force on `target`.
    pub(super) fn state(&self, target: &Target) -> Option<&State> {
        self.effects
            .iter()
            .find(|e| &e.target == target)
            .map(|e| &e.state)
    }

    /// Whether service `name` is paused by the drill.
    pub(super) fn paused(&self, name: &str) -> bool {
        self.state(&Target::Service(name.to_string()))
            == Some(&State::Service(ServiceState::Paused))
    }

    /// The effects in force, in the order they were made.
    pub(super) fn in_effect(&self) -> Vec<Effect> {
        self.effects.clone()
    }

    /// The services the restore checks.
    pub(super) fn services(&self) -> &[String] {
        &self.services
    }

    /// The proxies the restore checks.
    pub(super) fn proxies(&self) -> &[String] {
        &self.proxies
    }

    /// The brokers whose faults are still in force, with their API key.
    pub(super) fn brokers_in_effect(&self) -> Vec<(Interpolated, Option<Interpolated>)> {
        self.brokers
            .iter()
            .filter(|(b, _)| self.state(&Target::broker(b)).is_some())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;

    fn url(u: &str) -> Interpolated {
        Interpolated {
            value: u.into(),
            display: u.into(),
        }
    }

    #[test]
    fn a_later_start_heal_or_clear_takes_the_effect_out_of_force() {
        let mut b = Broken::default();
        let svc = Target::Service("broker".into());
        let gw = Target::Proxy("gw".into());
        b.set(
            svc.clone(),
            State::Service(ServiceState::Stopped),
            "1. stop",
        );
        b.set(gw.clone(), State::Proxy("down".into()), "2. down");
        b.broker_faults(
            &url("http://h:1/"),
            None,
            &json!({"unhealthy": true}),
            "3. faults",
        );
        let shown: Vec<String> = b.in_effect().iter().map(Effect::describe).collect();
        assert_eq!(
            shown,
            [
                "service broker stopped",
                "proxy gw down",
                "broker http://h:1 faults {\"unhealthy\":true}"
            ]
        );
        b.clear(&svc);
        b.clear(&gw);
        b.clear(&Target::broker(&url("http://h:1")));
        assert!(b.in_effect().is_empty());
        // The restore still looks at what was touched, and clears no broker.
        assert_eq!(b.services(), ["broker"]);
        assert_eq!(b.proxies(), ["gw"]);
        assert!(b.brokers_in_effect().is_empty());
    }

    #[test]
    fn cont_ends_a_pause_but_not_a_stop_and_faults_accumulate() {
        let mut b = Broken::default();
        b.set(
            Target::Service("a".into()),
            State::Service(ServiceState::Paused),
            "1",
        );
        b.set(
            Target::Service("s".into()),
            State::Service(ServiceState::Stopped),
            "2",
        );
        assert!(b.paused("a"));
        b.continued("a");
        b.continued("s");
        assert!(!b.paused("a"));
        let shown: Vec<String> = b.in_effect().iter().map(Effect::describe).collect();
        assert_eq!(shown, ["service s stopped"]);
        let u = url("http://h:1");
        b.broker_faults(&u, None, &json!({"unhealthy": true}), "3");
        b.broker_faults(&u, None, &json!({"error_rate": 1.0}), "4");
        let e = b.in_effect().pop().unwrap();
        assert_eq!(
            e.describe(),
            "broker http://h:1 faults {\"unhealthy\":true} then {\"error_rate\":1.0}"
        );
        assert_eq!(e.step, "4");
        assert_eq!(b.brokers_in_effect().len(), 1);
        b.set(
            Target::Service("s".into()),
            State::Service(ServiceState::Signalled(Signal::SIGTERM)),
            "5",
        );
        assert_eq!(b.in_effect()[0].describe(), "service s sent SIGTERM");
    }
}
