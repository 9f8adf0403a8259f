//! The `env` probe: required environment variables are set. Values are never read into any
//! output: only names, and whether each is set and non-empty.

use schemars::JsonSchema;
use serde::Deserialize;

use super::{FieldError, ProbeContext, Validator};
use crate::model::{Check, ProbeOutput};

/// `kind = "env"`: variables that must be set.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawEnvProbe {
    /// Names of required variables.
    pub vars: Vec<String>,
    /// Also require a non-empty value. Default true.
    pub non_empty: Option<bool>,
}

/// A validated `env` probe.
#[derive(Debug, Clone)]
pub struct EnvProbe {
    vars: Vec<String>,
    non_empty: bool,
}

impl RawEnvProbe {
    /// Validate.
    ///
    /// # Errors
    /// A [`FieldError`] for an empty list or an invalid name.
    pub fn validate(self, _v: &mut Validator) -> Result<EnvProbe, FieldError> {
        if self.vars.is_empty() {
            return Err(FieldError::new(
                "vars",
                "expected at least one variable name",
            ));
        }
        for (i, n) in self.vars.iter().enumerate() {
            if n.is_empty() || n.contains('=') || n.contains('\0') {
                return Err(FieldError::new(
                    format!("vars[{i}]"),
                    format!("invalid variable name \"{n}\""),
                ));
            }
        }
        Ok(EnvProbe {
            vars: self.vars,
            non_empty: self.non_empty.unwrap_or(true),
        })
    }
}

impl EnvProbe {
    /// Check the variables.
    pub fn run(&self, _ctx: &ProbeContext) -> ProbeOutput {
        let mut o = ProbeOutput::default();
        let mut missing = Vec::new();
        for name in &self.vars {
            let state = match std::env::var_os(name) {
                None => "unset",
                Some(v) if v.is_empty() && self.non_empty => "empty",
                Some(_) => "set",
            };
            if state != "set" {
                missing.push(format!("{name} ({state})"));
            }
            o.checks.push(Check::new(
                name.clone(),
                if self.non_empty {
                    "set, non-empty"
                } else {
                    "set"
                },
                state,
                state == "set",
            ));
        }
        o.measure("set", (self.vars.len() - missing.len()) as u64);
        o.measure("required", self.vars.len() as u64);
        o.summary = if missing.is_empty() {
            format!("all {} variables set", self.vars.len())
        } else {
            format!("missing: {}", missing.join(", "))
        };
        o
    }
}

crate::probe::probe_kind!(EnvProbe, RawEnvProbe, inline);
