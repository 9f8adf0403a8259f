//! The drill's TOML shape: `[item.probe] kind = "drill"` with `[[item.probe.step]]` tables.
//!
//! A step is kept here as the table it was written as ([`StepTable`]) and read into its typed
//! keys when the drill is validated ([`super::step::RawStep::parse`]): the probe table reaches
//! this type through serde's tagged enum of probe kinds, which drops the key path of any error
//! inside it, while a step read on its own keeps the path of a wrong key down to the key itself
//! (`step[2].hold`). The published schema still describes every step kind with its keys.

use std::borrow::Cow;

use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;

/// `kind = "drill"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawDrillProbe {
    /// The steps, run in order.
    #[serde(default)]
    pub step: Vec<StepTable>,
}

/// One `[[item.probe.step]]` table as written: one action or one expectation with its keys
/// (see the schema, or [`super::step::RawStepKind`]).
#[derive(Debug, Clone)]
pub struct StepTable(pub toml::Table);

impl<'de> Deserialize<'de> for StepTable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<StepTable, D::Error> {
        match toml::Value::deserialize(d)? {
            toml::Value::Table(t) => Ok(StepTable(t)),
            other => Err(serde::de::Error::custom(format!(
                "a step is a table ([[item.probe.step]] or {{ … }}), found {}",
                other.type_str()
            ))),
        }
    }
}

impl JsonSchema for StepTable {
    fn schema_name() -> Cow<'static, str> {
        "DrillStep".into()
    }

    fn json_schema(g: &mut SchemaGenerator) -> Schema {
        super::step::schema(g)
    }
}
