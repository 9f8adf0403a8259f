//! The tokio runtime, built in one place for every command that needs one (`run`, `soak`, the
//! paper broker). A leaf: commands and the services they start both use it.

use crate::error::{Error, Result};

/// Build the tokio runtime, in one place.
///
/// # Errors
/// [`Error::Internal`] when the runtime cannot start.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("prodready")
        .build()
        .map_err(|e| Error::Internal(format!("starting the async runtime: {e}")))
}
