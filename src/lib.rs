//! prodready: a production-readiness validation harness for trading systems.
//!
//! A TOML checklist ([`checklist`]) lists items, each backed by one automated probe
//! ([`probe`]). The [`runner`] executes them around the checklist's services ([`service`]),
//! and one report model ([`report`]) feeds the JSON, Markdown and JUnit renderers. The exit
//! code is the verdict ([`error::Exit`]).

pub mod checklist;
pub mod cli;
pub mod cmd;
pub mod error;
pub mod expect;
pub mod facts;
pub mod fault_proxy;
pub mod field;
pub mod fix;
pub mod model;
pub mod paper_broker;
pub mod probe;
pub mod process;
pub mod report;
pub mod rt;
pub mod runner;
pub mod service;
pub mod signoff;
pub mod sink;
pub mod soak;
pub mod store;
pub mod ui;
pub mod units;
pub mod waiver;

pub use cmd::{cancel_on_signals, run, slug};
pub use rt::runtime;
