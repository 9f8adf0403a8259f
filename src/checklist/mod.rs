//! Checklist loading: the raw TOML mirror ([`raw`]), validation into domain types
//! ([`Checklist`], [`Item`]; services and waivers are [`crate::service::Service`] and
//! [`crate::waiver::Waiver`]) and errors that name the file, line, column, entry and key.
//!
//! Loading is two-stage: serde reads the raw mirror, denying unknown keys; then validation
//! checks ids, units, references and `${VAR}` interpolation once, so the rest of the program
//! never sees an unvalidated value (ARCHITECTURE.md, "Invariants"). Positions come from a
//! spanned parse of the same text (toml_edit), looked up by key path.
//!
//! By concern: `types` (the validated checklist), `locate` (key paths and where they are in the
//! file), `parse` (text to the raw mirror, serde errors reworded), `validate` (section by
//! section, then references across sections) and `resources` (`[[proxy]]`, `[[sink]]`).

mod hint;
mod locate;
mod parse;
pub mod raw;
mod regression;
mod resources;
mod types;
mod validate;

use raw::RawChecklist;

pub use locate::Seg;
pub use parse::{load, parse};
pub use regression::Regression;
pub use resources::{ProxySpec, SinkSpec};
pub use types::{Checklist, Item, Meta};
// Waivers have their own module; re-exported because a checklist holds them.
pub use crate::waiver::{Waiver, WaiverSignature};

/// The JSON Schema of the checklist format (draft 2020-12), generated from [`raw`].
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(RawChecklist)).expect("schema serializes")
}
