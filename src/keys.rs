//! Key blocks that several raw (serde) tables take under the same names, declared once:
//! the FIX session (`fix_version`, `sender_comp_id`, `target_comp_id`, `heartbeat`,
//! `reset_seq_num`, `username`, `password`) and the HTTP expectation (`status`,
//! `body_contains`, `body_not_contains`, `json_pointer`, `json_equals`, `json_one_of`).
//!
//! serde cannot flatten a block into a table that refuses unknown keys, and a checklist must
//! refuse them (a typo is an error at its line, never ignored), so the blocks are written into
//! each table by `shared_keys!`. Their rules live with their readers: the session in
//! `order::keys` (`session_keys!` gathers them), the expectation in `expect`
//! (`http_expect!` gathers them).

/// Declare a raw table with its own fields, then the named key blocks: `[fix_session]`,
/// `[http_expect]` or both, e.g.
///
/// ```text
/// shared_keys! {
///     [fix_session, http_expect]
///     #[derive(Debug, Deserialize, JsonSchema)]
///     #[serde(deny_unknown_fields)]
///     pub struct RawLatencyProbe { pub url: String, … }
/// }
/// ```
///
/// The struct's own fields need a trailing comma.
macro_rules! shared_keys {
    ([] $(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $(#[$m])* $vis struct $name { $($body)* }
    };
    ([fix_session $(, $rest:ident)*] $(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $crate::keys::shared_keys! {
            [$($rest),*] $(#[$m])* $vis struct $name {
                $($body)*
                /// FIX: `"4.4"` (default) or `"4.2"`, the BeginString(8).
                pub fix_version: Option<String>,
                /// FIX: our SenderCompID(49). Required with `transport = "fix"`.
                pub sender_comp_id: Option<String>,
                /// FIX: the counterparty's CompID, our TargetCompID(56). Required with
                /// `transport = "fix"`.
                pub target_comp_id: Option<String>,
                /// FIX: HeartBtInt(108), whole seconds (humantime). Default `"30s"`.
                pub heartbeat: Option<String>,
                /// FIX: send ResetSeqNumFlag(141)=Y on Logon, so both sides start at
                /// MsgSeqNum 1. Default true.
                pub reset_seq_num: Option<bool>,
                /// FIX: Username(553) on Logon; use `${VAR}` (redacted in reports).
                pub username: Option<String>,
                /// FIX: Password(554) on Logon; use `${VAR}` (redacted in reports).
                pub password: Option<String>,
            }
        }
    };
    ([http_expect $(, $rest:ident)*] $(#[$m:meta])* $vis:vis struct $name:ident { $($body:tt)* }) => {
        $crate::keys::shared_keys! {
            [$($rest),*] $(#[$m])* $vis struct $name {
                $($body)*
                /// Accepted status code or codes. Default: any 2xx.
                pub status: Option<$crate::expect::StatusSpec>,
                /// A substring the body must contain.
                pub body_contains: Option<String>,
                /// A substring the body must not contain.
                pub body_not_contains: Option<String>,
                /// A JSON pointer (RFC 6901) into the body, e.g. `/status`; alone, the value
                /// there must exist.
                pub json_pointer: Option<String>,
                /// The value expected at `json_pointer`; excludes `json_one_of`.
                pub json_equals: Option<serde_json::Value>,
                /// Values accepted at `json_pointer` (any of them).
                pub json_one_of: Option<Vec<serde_json::Value>>,
            }
        }
    };
}
pub(crate) use shared_keys;

/// The [`crate::expect::RawHttpExpect`] of a raw table declared with `[http_expect]`, its
/// keys cloned.
macro_rules! http_expect {
    ($raw:expr) => {
        $crate::expect::RawHttpExpect {
            status: $raw.status.clone(),
            body_contains: $raw.body_contains.clone(),
            body_not_contains: $raw.body_not_contains.clone(),
            json_pointer: $raw.json_pointer.clone(),
            json_equals: $raw.json_equals.clone(),
            json_one_of: $raw.json_one_of.clone(),
        }
    };
}
pub(crate) use http_expect;
