//! What an expectation observes once validated ([`Observe`], one variant per kind) with its
//! deadline and polling ([`Expectation`]): the run polls these (`drill/observe.rs`); the keys as
//! written and their validation are `step/expectations.rs`'s.

use std::time::Duration;

use super::request::Request;
use super::venue::Venue;
use crate::probe::RefKind;
use crate::probe::expect::HttpExpect;
use crate::probe::prometheus::api::Server;
use crate::probe::sql::{Database, Expect as SqlExpect};

/// An expectation with its deadline and polling.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// What to observe.
    pub observe: Observe,
    /// Deadline from the last action.
    pub within: Duration,
    /// How long it must keep holding once it holds.
    pub hold: Option<Duration>,
    /// Poll interval.
    pub interval: Duration,
    /// Save the observed value under this name.
    pub save: Option<String>,
    /// Hold only when the observed value equals this saved one.
    pub equals_saved: Option<String>,
}

/// Where an `expect = "log"` reads its lines.
#[derive(Debug, Clone)]
pub enum LogFrom {
    /// A `[[service]]`'s captured output.
    Service(String),
    /// Files, a journal or a command's output, read whole on every poll.
    Read(Box<crate::probe::log::Reader>),
}

/// Where counting starts for `notifications` and `log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// The last action.
    Action,
    /// The drill's start.
    Drill,
}

/// A count expectation: exact, or bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Count {
    /// At least.
    pub min: u64,
    /// At most.
    pub max: Option<u64>,
}

impl Count {
    /// Whether `n` is accepted.
    pub fn accepts(&self, n: u64) -> bool {
        n >= self.min && self.max.is_none_or(|m| n <= m)
    }

    /// `exactly 1`, `≥ 1`, `≤ 3`, `1 to 3`.
    pub fn describe(&self) -> String {
        match (self.min, self.max) {
            (lo, Some(hi)) if lo == hi => format!("exactly {lo}"),
            (0, Some(hi)) => format!("≤ {hi}"),
            (lo, Some(hi)) => format!("{lo} to {hi}"),
            (lo, None) => format!("≥ {lo}"),
        }
    }
}

/// What an `expect = "prometheus"` step checks.
#[derive(Debug, Clone)]
pub enum PromCheck {
    /// Every sample of an instant query within bounds.
    Query {
        /// PromQL.
        expr: String,
        /// At least.
        min: Option<f64>,
        /// At most.
        max: Option<f64>,
        /// Equal to.
        equals: Option<f64>,
    },
    /// An alerting rule firing or not.
    Alert {
        /// Its name.
        name: String,
        /// Firing (`true`) or not.
        firing: bool,
    },
}

/// What an expectation observes.
#[derive(Debug, Clone)]
pub enum Observe {
    /// An HTTP response.
    Http {
        /// The request.
        request: Request,
        /// The expectation (the http probe's rules).
        expect: HttpExpect,
        /// `false`: no response is what holds.
        reachable: bool,
    },
    /// A Prometheus query or alert.
    Prometheus {
        /// The server.
        server: Server,
        /// What must hold.
        check: PromCheck,
    },
    /// A service's exit.
    Exit {
        /// The service.
        service: String,
        /// Expected exit code.
        code: i32,
    },
    /// Rows of a query.
    Sql {
        /// The database.
        db: Database,
        /// The query.
        query: String,
        /// The expectation on rows (`None` with only `save`/`equals_saved`).
        expect: Option<SqlExpect>,
    },
    /// Messages a sink received.
    Notifications {
        /// The sink.
        sink: String,
        /// Messages must match this.
        matches: Option<regex::Regex>,
        /// How many.
        count: Count,
        /// Counted from.
        since: Since,
    },
    /// Open orders and positions at a venue.
    Orders {
        /// Where they are read.
        venue: Venue,
        /// Exactly this many open orders.
        open: Option<u64>,
        /// Every position flat.
        flat: bool,
    },
    /// Lines a service wrote, or lines of the aggregated log.
    Log {
        /// Where the lines are read.
        from: LogFrom,
        /// Lines must match this.
        matches: Option<regex::Regex>,
        /// Lines must carry the drill's marker.
        marker: bool,
        /// How many.
        count: Count,
        /// Counted from.
        since: Since,
    },
    /// A service's process.
    Process {
        /// The service.
        service: String,
        /// It runs.
        running: bool,
        /// Same PID as when the drill started.
        unchanged: bool,
        /// At most this many starts since the drill started.
        max_restarts: Option<u32>,
    },
}

impl Observe {
    /// The expectation kind as written.
    pub fn kind(&self) -> &'static str {
        match self {
            Observe::Http { .. } => "http",
            Observe::Prometheus { .. } => "prometheus",
            Observe::Exit { .. } => "exit",
            Observe::Sql { .. } => "sql",
            Observe::Notifications { .. } => "notifications",
            Observe::Orders { .. } => "orders",
            Observe::Log { .. } => "log",
            Observe::Process { .. } => "process",
        }
    }

    /// The services and sinks it names, with the key naming each.
    pub fn references(&self) -> Vec<(&'static str, RefKind, &str)> {
        match self {
            Observe::Exit { service, .. }
            | Observe::Log {
                from: LogFrom::Service(service),
                ..
            }
            | Observe::Process { service, .. } => {
                vec![("service", RefKind::Service, service.as_str())]
            }
            Observe::Log { .. } => Vec::new(),
            Observe::Notifications { sink, .. } => vec![("sink", RefKind::Sink, sink.as_str())],
            Observe::Http { .. }
            | Observe::Prometheus { .. }
            | Observe::Sql { .. }
            | Observe::Orders { .. } => Vec::new(),
        }
    }

    /// The saved names it refers to (`${saved.NAME}`), with the key that does.
    pub fn saved_uses(&self) -> Vec<(&'static str, &str)> {
        match self {
            Observe::Http { request, .. } => request
                .saved_names()
                .into_iter()
                .map(|n| ("url", n))
                .collect(),
            Observe::Orders { venue, .. } => venue.saved_uses(),
            _ => Vec::new(),
        }
    }
}
