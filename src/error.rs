//! Error types and the exit-code table.
//!
//! Exit codes are an API (ARCHITECTURE.md, "Errors and exit codes"): scripts and CI systems branch on them, so they are
//! defined here, once, and the README carries the same table.

use std::path::PathBuf;
use std::process::ExitCode;

/// The documented process exit codes of `prodready`.
///
/// | code | meaning |
/// |---|---|
/// | 0 | ready (with or without waivers); for `verify`: every check holds |
/// | 1 | not ready; for `verify`: at least one check failed |
/// | 2 | the checklist, a report, another input file (missing or malformed) or the command line is invalid |
/// | 3 | the harness itself failed (writing, an internal error) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Exit {
    /// The verdict is `ready` or `ready-with-waivers`.
    Ready = 0,
    /// The verdict is `not-ready`.
    NotReady = 1,
    /// The checklist or command line is invalid; nothing ran.
    Invalid = 2,
    /// The harness itself failed.
    Internal = 3,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

/// A position in a source file, 1-based, as editors show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file the error is in.
    pub file: PathBuf,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// Everything that can stop `prodready` before it reaches a verdict.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The checklist (or another input file) is malformed; the message names the place.
    #[error("{location}: {message}")]
    Checklist {
        /// Where in the file.
        location: Location,
        /// What is wrong and what was expected, with the key path.
        message: String,
    },
    /// A command-line argument or input is invalid.
    #[error("{0}")]
    Usage(String),
    /// An input file (report, key, allowed-signers file…) is invalid.
    #[error("{path}: {message}")]
    InvalidInput {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What we were doing ("reading", "writing", "creating").
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Anything else that went wrong inside the harness.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    /// The exit code this error maps to.
    pub fn exit(&self) -> Exit {
        match self {
            Error::Checklist { .. } | Error::Usage(_) | Error::InvalidInput { .. } => Exit::Invalid,
            // An input file that is not there is the caller's mistake, not the harness failing.
            Error::Io {
                action: "reading",
                source,
                ..
            } if source.kind() == std::io::ErrorKind::NotFound => Exit::Invalid,
            Error::Io { .. } | Error::Internal(_) => Exit::Internal,
        }
    }

    /// Print the error once on stderr and return its exit code.
    pub fn report(&self) -> ExitCode {
        let message = self.to_string();
        eprintln!("error: {message}");
        let mut source = std::error::Error::source(self);
        while let Some(s) = source {
            // Causes the message already quotes are not repeated.
            let cause = s.to_string();
            if !message.contains(&cause) {
                eprintln!("  caused by: {cause}");
            }
            source = s.source();
        }
        self.exit().into()
    }

    /// Shorthand for an [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Result alias for the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;
