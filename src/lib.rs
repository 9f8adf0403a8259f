//! prodready: a production-readiness validation harness for trading systems.
//!
//! A TOML checklist ([`checklist`]) lists items, each backed by one automated probe
//! ([`probe`]). The [`runner`] executes them around the checklist's services ([`service`]),
//! and one report model ([`report`]) feeds the JSON, Markdown and JUnit renderers. The exit
//! code is the verdict ([`error::Exit`]).

pub mod checklist;
pub mod cli;
pub mod cmd;
pub mod compare;
pub mod error;
pub mod expect;
pub mod facts;
pub mod field;
pub mod fix;
pub mod keys;
pub mod model;
pub mod order;
pub mod paper_broker;
pub mod probe;
pub mod report;
pub mod rig;
pub mod rt;
pub mod runner;
pub mod service;
pub mod signoff;
pub mod soak;
pub mod stats;
pub mod store;
pub mod ui;
pub mod units;
pub mod waiver;

pub use cmd::{cancel_on_signals, run, slug};
// The rig's modules at their former paths, for the code that still names them there.
pub use rig::{fault_proxy, process, sink};
pub use rt::runtime;
