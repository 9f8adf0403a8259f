//! [`SqlError`]: why a query produced no rows to judge. Shared by the drivers (`sqlite`,
//! `postgres`) and by [`super::query`], which dispatches to them, so neither side imports the
//! other for it.

use std::time::Duration;

/// Why a query produced no rows to judge. Every message starts with the database's display
/// name; query errors quote the query and carry the engine's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SqlError {
    /// The SQLite file is not there (it is never created).
    #[error("{db}: no such database file")]
    NoFile {
        /// The database as displayed.
        db: String,
    },
    /// The database could not be opened, or the server could not be reached or refused the
    /// login.
    #[error("{db}: cannot connect: {cause}")]
    Connect {
        /// The database as displayed.
        db: String,
        /// The engine's message, with its causes (flattened: tokio-postgres puts the
        /// server's text in a source).
        cause: String,
    },
    /// The query did not prepare or run (a syntax error, a write refused by the read-only
    /// transaction, a statement timeout…).
    #[error("{db}: query \"{query}\": {cause}")]
    Query {
        /// The database as displayed.
        db: String,
        /// The query as written.
        query: String,
        /// The engine's message, with its causes.
        cause: String,
    },
    /// No answer at all within the bound (a hung network or server).
    #[error("{db}: query \"{query}\": no answer within {}", humantime::format_duration(*.after))]
    Timeout {
        /// The database as displayed.
        db: String,
        /// The query as written.
        query: String,
        /// How long we waited.
        after: Duration,
    },
}
