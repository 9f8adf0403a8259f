//! The order client's configuration keys, shared by the `latency` probe and the soak's `order`
//! monitor so that each is declared and checked once.
//!
//! A key that is wrong is a [`KeyError`]: the key's name and what was expected. The probe
//! framework turns it into its own `FieldError` (a `From` conversion), which this layer does
//! not depend on.

/// A configuration error at one key: its name (relative to the table it is in) and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError {
    /// The key, e.g. `transport`.
    pub key: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl KeyError {
    /// An error at `key`.
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> KeyError {
        KeyError {
            key: key.into(),
            message: message.into(),
        }
    }
}
