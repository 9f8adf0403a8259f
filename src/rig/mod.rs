//! The rig a drill works with besides the system under test: what stands between the
//! services and their dependencies or their operators, and how child processes are run.
//!
//! - [`fault_proxy`]: a TCP proxy in front of a dependency that a drill takes down, black-holes,
//!   slows or cuts, so "the gateway is down" needs no container runtime or root;
//! - [`sink`]: a notification receiver that speaks enough of Telegram, Slack and webhooks for
//!   an agent's alerting to run unchanged, and records what it was told;
//! - [`process`]: child processes in their own process group, stopped as a whole, for
//!   `[[service]]` supervision and the tools and commands probes run.
//!
//! They are started by the run (`[[proxy]]`, `[[sink]]`, `[[service]]`) and steered by drills
//! ([`crate::probe::drill`]); none of them knows about checklists or drills.

pub mod fault_proxy;
pub mod process;
pub mod sink;
