//! Doing a drill's actions: stop, start, restart and signal services, run commands, set
//! proxy and broker faults, wait. Each records what it broke in the drill's effects before
//! (or, for what it undoes, after) doing it, so the restore knows what to undo even when the
//! action is cut short.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::effects::{ServiceState, State, Target};
use super::record::{StepOutcome, StepRecord, kind_of};
use super::state::{Drill, excerpt, lock, mark_of};
use super::step::actions::{HttpCall, Undo};
use super::step::{Action, Step};
use crate::units::{Interpolated, format_duration};

impl Drill {
    pub(super) async fn act(&self, step: &Step, action: &Action) -> bool {
        let began = Instant::now();
        if !matches!(action, Action::Wait(_)) {
            *lock(&self.mark) = mark_of(&self.ctx.services);
        }
        let outcome = self.perform(&step.name, action).await;
        let ok = outcome.is_ok();
        // An action cut short by the stop (a start that gave up waiting) did not fail.
        let result = match (ok, self.stop.is_cancelled()) {
            (true, _) => StepOutcome::Done,
            (false, true) => StepOutcome::Stopped,
            (false, false) => StepOutcome::Failed,
        };
        self.record(StepRecord {
            name: step.name.clone(),
            kind: kind_of(step),
            result,
            at: Some(began - self.start.at),
            measured: Some(began.elapsed()),
            within: None,
            hold: None,
            detail: self.redact(&outcome.unwrap_or_else(|e| e)),
        });
        ok
    }

    /// Do one action (of step `step`); `Ok` and `Err` both carry what happened, in one line.
    async fn perform(&self, step: &str, action: &Action) -> Result<String, String> {
        let services = &self.ctx.services;
        let service = |s: &str| Target::Service(s.to_string());
        if let Some(undo) = action.undo() {
            lock(&self.broken).undo(step, undo);
        }
        match action {
            Action::Stop { service: s, grace } => {
                lock(&self.broken).set(service(s), State::Service(ServiceState::Stopped), step);
                let e = services.stop(s, *grace).await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "stopped: {} after {}",
                    e.describe(),
                    format_duration(e.took)
                ))
            }
            Action::Start { service: s } => {
                lock(&self.broken).touch_service(s);
                let t = services
                    .start(s, &self.ctx.cancel)
                    .await
                    .map_err(|e| e.to_string())?;
                lock(&self.broken).clear(&service(s));
                Ok(format!("ready after {}", format_duration(t)))
            }
            Action::Restart { service: s, grace } => {
                let restarting = State::Service(ServiceState::Restarting);
                lock(&self.broken).set(service(s), restarting, step);
                let e = services.stop(s, *grace).await.map_err(|e| e.to_string())?;
                let t = services
                    .start(s, &self.ctx.cancel)
                    .await
                    .map_err(|e| e.to_string())?;
                lock(&self.broken).clear(&service(s));
                Ok(format!(
                    "stopped ({}), ready again after {}",
                    e.describe(),
                    format_duration(t)
                ))
            }
            Action::Signal {
                service,
                signal,
                pause,
            } => self.signal(step, service, *signal, *pause).await,
            Action::Command { run, .. } => self.command(run, &self.context()).await,
            Action::Http { call, save, .. } => self.http_action(call, save).await,
            Action::Proxy { proxy, fault } => self.proxy(step, proxy, fault.clone()).await,
            Action::BrokerFault {
                broker,
                api_key,
                body,
            } => {
                self.set_broker_faults(step, broker, api_key.as_ref(), body.as_ref())
                    .await
            }
            Action::Wait(d) => {
                tokio::time::sleep(*d).await;
                Ok(format!("waited {}", format_duration(*d)))
            }
        }
    }

    pub(super) async fn command(
        &self,
        run: &crate::probe::tool::ToolRun,
        ctx: &crate::probe::ProbeContext,
    ) -> Result<String, String> {
        match run
            .run_with_env(ctx, &[("PRODREADY_DRILL_MARKER", &self.marker)])
            .await
        {
            Ok(out) if out.exit_code == Some(0) => {
                Ok(format!("exit 0 after {}", format_duration(out.elapsed)))
            }
            Ok(out) => Err(format!(
                "`{}` exited with {}: {}",
                run.display(),
                out.exit_code
                    .map_or("a signal".to_string(), |c| c.to_string()),
                crate::rig::process::last_lines(&out.log_tail, 5)
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Send `call`'s request; `Ok` with the status (and what was saved) when it is accepted.
    pub(super) async fn send(&self, call: &HttpCall) -> Result<(String, Vec<u8>), String> {
        let (shown, answer) = self.exchange(&call.request, call.timeout).await?;
        let (status, body) =
            answer.map_err(|e| format!("{shown}: {}", crate::units::error_chain(&e)))?;
        if call.status.accepts(status) {
            Ok((format!("{shown}: {status}"), body))
        } else {
            Err(format!(
                "{shown}: status {status}, expected {}; body: {}",
                call.status.describe(),
                excerpt(&body, 200)
            ))
        }
    }

    /// Send an `http` action's request and keep the values `save` names.
    async fn http_action(
        &self,
        call: &HttpCall,
        save: &[(String, String)],
    ) -> Result<String, String> {
        let (shown, body) = self.send(call).await?;
        if save.is_empty() {
            return Ok(shown);
        }
        let doc: Value = serde_json::from_slice(&body)
            .map_err(|e| format!("{shown}, but the body is not JSON ({e}); nothing saved"))?;
        let mut kept = Vec::new();
        for (name, pointer) in save {
            let v = doc.pointer(pointer).ok_or_else(|| {
                format!("{shown}, but {pointer} is not in the answer (save.{name})")
            })?;
            self.save_secret(name, v.clone());
            kept.push(format!("${{saved.{name}}}"));
        }
        Ok(format!("{shown}; saved {}", kept.join(", ")))
    }

    /// Run an undo at restore time; a command stops when `give_up` is cancelled.
    pub(super) async fn run_undo(
        &self,
        undo: &Undo,
        give_up: &tokio_util::sync::CancellationToken,
    ) -> Result<String, String> {
        match undo {
            Undo::Command(run) => {
                let ctx = crate::probe::ProbeContext {
                    cancel: give_up.clone(),
                    ..self.context()
                };
                self.command(run, &ctx).await
            }
            Undo::Http(call) => self.send(call).await.map(|(shown, _)| shown),
        }
    }

    /// Post `body` to the broker's faults (recorded as in effect first), or clear them.
    async fn set_broker_faults(
        &self,
        step: &str,
        broker: &Interpolated,
        api_key: Option<&Interpolated>,
        body: Option<&Value>,
    ) -> Result<String, String> {
        if let Some(b) = body {
            lock(&self.broken).broker_faults(broker, api_key, b, step);
        }
        let r = self.broker_fault(broker, api_key, body).await;
        if body.is_none() && r.is_ok() {
            lock(&self.broken).clear(&Target::broker(broker));
        }
        r
    }

    async fn signal(
        &self,
        step: &str,
        service: &str,
        signal: nix::sys::signal::Signal,
        pause: Option<Duration>,
    ) -> Result<String, String> {
        use nix::sys::signal::Signal;
        lock(&self.broken).touch_service(service);
        self.ctx
            .services
            .signal(service, signal)
            .await
            .map_err(|e| e.to_string())?;
        {
            let mut broken = lock(&self.broken);
            let target = Target::Service(service.to_string());
            match signal {
                Signal::SIGCONT => broken.continued(service),
                Signal::SIGSTOP => {
                    broken.set(target, State::Service(ServiceState::Paused), step);
                }
                // Any other signal may end it.
                s => broken.set(target, State::Service(ServiceState::Signalled(s)), step),
            }
        }
        if let Some(p) = pause {
            let services = self.ctx.services.clone();
            let name = service.to_string();
            let broken = self.broken.clone();
            let stop = self.stop.clone();
            // Continued after `p`, or by the restore when the drill ends first.
            self.ctx.background.spawn(async move {
                tokio::select! {
                    _ = tokio::time::sleep(p) => {
                        if services.signal(&name, Signal::SIGCONT).await.is_ok() {
                            lock(&broken).continued(&name);
                        }
                    }
                    _ = stop.cancelled() => {}
                }
            });
            return Ok(format!(
                "sent {}; SIGCONT in {}",
                signal.as_str(),
                format_duration(p)
            ));
        }
        Ok(format!("sent {}", signal.as_str()))
    }

    async fn proxy(
        &self,
        step: &str,
        name: &str,
        fault: Option<crate::rig::fault_proxy::Fault>,
    ) -> Result<String, String> {
        let proxy = self
            .ctx
            .proxies
            .get(name)
            .ok_or_else(|| format!("proxy \"{name}\" is not running"))?;
        let target = Target::Proxy(name.to_string());
        match fault {
            Some(f) => {
                let shown = f.to_string();
                lock(&self.broken).set(target, State::Proxy(shown.clone()), step);
                proxy.apply(f).await.map_err(|e| e.to_string())?;
                Ok(format!("{name}: {shown}"))
            }
            None => {
                proxy.heal().await.map_err(|e| e.to_string())?;
                lock(&self.broken).clear(&target);
                Ok(format!("{name}: healed"))
            }
        }
    }

    /// `POST` (or, without a body, `DELETE`) the broker's `/admin/faults`.
    pub(super) async fn broker_fault(
        &self,
        broker: &Interpolated,
        api_key: Option<&Interpolated>,
        body: Option<&Value>,
    ) -> Result<String, String> {
        let url = format!("{}/admin/faults", broker.value.trim_end_matches('/'));
        let mut req = match body {
            Some(b) => self.client.post(&url).json(b),
            None => self.client.delete(&url),
        };
        if let Some(k) = api_key {
            req = req.bearer_auth(&k.value);
        }
        let shown = format!("{}/admin/faults", broker.display.trim_end_matches('/'));
        let resp = req
            .send()
            .await
            .map_err(|e| format!("{shown}: {}", crate::units::error_chain(&e)))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status.is_success() {
            Ok(format!("{shown}: {}", text.trim()))
        } else {
            Err(format!("{shown} answered {status}: {}", text.trim()))
        }
    }
}
