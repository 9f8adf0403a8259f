//! The open-model load generator: requests leave on a fixed schedule (`start + i / rate`),
//! whatever the responses do, over a pool of connections, and the generator tells its own
//! lateness apart from the target's.
//!
//! This is the measurement; talking to the venue is the order client's ([`crate::order`]).
//! The schedule, the histograms and the accounting are shared by every wire ([`Wire`]): HTTP/1.1
//! keep-alive (`http`: one request in flight per connection), HTTP/2 (`h2`: multiplexed
//! streams), and the pipelined order transports (`pipeline`: every order sent at once and
//! matched to its answer by a correlation id): WebSocket ([`websocket`]) and FIX
//! ([`crate::order::fix`]).
//!
//! The design follows wrk2 (Tene's fork of wrk): connection `k` of `N` owns the intended
//! send times of requests `k, k + N, k + 2N, …`, so no request waits for a central permit or
//! crosses a thread. The connections are spread over `threads` OS threads, each running a
//! current-thread tokio runtime with one precise timer (`clock`): a thread sleeps until its
//! earliest due send, marks every send that has come due, and its connection tasks write them.
//! Requests are rendered into reused buffers and responses parsed without allocating
//! ([`crate::order::http1`]). Each thread records into its own histograms; they are merged
//! once, at the end.
//!
//! The files, from the top down (each imports only those below it):
//! - `engine`: [`run`], the generator threads, the driver releasing sends on schedule, the
//!   runtime-lag heartbeat, and the dispatch to each wire's `Driver`;
//! - `http` (with `h2`) and `pipeline`: the connection tasks of each kind of wire;
//! - `shared`: what they all share: a thread's state, a connection's slot, the recording of a
//!   finished request;
//! - `plan`: what a run is given ([`Plan`], [`Wire`]) and what it produces ([`LoadResult`]);
//! - [`websocket`] and `clock`: the WebSocket wire and the generator's timer.
//!
//! Every request gets three times (ns of `CLOCK_MONOTONIC`): `intended`, `sent` and `done`.
//! - corrected latency = done − intended (coordinated omission corrected, as wrk2 does);
//! - uncorrected latency = done − sent (what a closed-loop tool reports);
//! - schedule lag = sent − intended: all lateness, whoever caused it;
//! - generator lag = sent − max(intended, the moment its connection would have become free
//!   had the generator sent every earlier request on time: the target's service times laid
//!   end to end from the schedule). When the connection was still busy with an earlier
//!   response, the wait is the target's (it stays in the corrected latency, as the correction
//!   requires); whatever remains is the generator's own: a late timer, a busy runtime thread,
//!   a starved CPU;
//! - the target's part of the corrected latency = corrected − generator lag, recorded per
//!   response beside the corrected figure, so a verdict can tell whose lateness failed a gate
//!   (the probe's verdict rule is in `super::verdict`).

mod clock;
mod engine;
mod h2;
mod http;
mod pipeline;
mod plan;
mod shared;
pub mod websocket;

pub use engine::run;
pub use plan::{ErrorKind, HttpWire, LoadResult, Plan, Stall, Wire};
