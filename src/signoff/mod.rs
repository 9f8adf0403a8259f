//! Sign-off: SSH-signed readiness reports, attestations and waiver approvals.
//!
//! Every signature is an OpenSSH SSHSIG (PROTOCOL.sshsig) in the namespace `prodready`, made
//! with the `ssh-key` crate (ed25519, RSA with SHA-512, ECDSA P-256/P-384/P-521; encrypted keys
//! are decrypted with a passphrase from [`PASSPHRASE_ENV`] or a terminal prompt) or by
//! `ssh-keygen -Y sign -n prodready` itself.
//!
//! **What is signed.** Not the report body directly but a short UTF-8 *statement* that names
//! it: [`SignoffStatement`] carries the SHA-256 of the canonical body ([`canonical`], defined
//! with the report it digests), the run
//! it belongs to, the role, decision, signer, time and comment. Binding the role and decision
//! into the signed bytes means a `reject` cannot be relabelled `approve` and a signature cannot
//! be moved to another role. The statement is stored verbatim in the record, so anyone can check
//! a signature with `ssh-keygen -Y verify -n prodready` on that text (see
//! docs/signoff.md). Waivers ([`WaiverStatement`]) and attestations
//! ([`attestations::AttestationStatement`]) are signed the same way.
//!
//! The module is split by concern, its public items re-exported here: `statement` (the signed
//! bytes), `keys` (private keys, SSHSIG signing and verifying), `sign` (report load/save,
//! [`sign`], [`import_signature`], merging, waiver signing), `verify` ([`verify`] and its
//! checks) and `render` (the verification table); [`allowed_signers`] parses OpenSSH
//! allowed_signers files with the role mapping; [`attestations`] the attestation file.

pub mod allowed_signers;
pub mod attestations;
mod openssh;

mod keys;
mod render;
mod sign;
mod statement;
mod verify;

pub use keys::*;
pub use render::*;
pub use sign::*;
pub use statement::*;
pub use verify::*;

use std::path::{Path, PathBuf};

use serde_json::Value;
use ssh_key::{HashAlg, LineEnding, PrivateKey, PublicKey, SshSig};

use crate::error::{Error, Result};
use crate::report::{Report, Signature, canonical};
use crate::waiver::Waiver;
pub use allowed_signers::{AllowedSigners, NAMESPACE, RoleNeed};

/// Environment variable read for the passphrase of an encrypted private key.
pub const PASSPHRASE_ENV: &str = "PRODREADY_KEY_PASSPHRASE";

pub use crate::report::Decision;

fn now_rfc3339() -> String {
    jiff::Timestamp::now()
        .round(jiff::Unit::Second)
        .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string())
}

fn parse_time(s: &str) -> std::result::Result<jiff::Timestamp, String> {
    s.parse::<jiff::Timestamp>()
        .map_err(|e| format!("\"{s}\" is not an RFC 3339 time: {e}"))
}

/// Today's date in UTC.
pub fn today_utc() -> jiff::civil::Date {
    jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .date()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signoff_statement_round_trips_and_escapes_newlines() {
        let st = SignoffStatement {
            checklist_sha256: "ab".repeat(32),
            run_started_at: "2026-11-22T20:00:00Z".into(),
            body_sha256: "cd".repeat(32),
            role: "Technical lead".into(),
            decision: Decision::Reject,
            signer: "alice@example.com".into(),
            signed_at: "2026-11-22T20:30:00Z".into(),
            comment: "line one\nrole: Business owner".into(),
        };
        let text = st.to_text();
        assert_eq!(text.lines().count(), 9, "{text}");
        assert!(
            text.contains("comment: \"line one\\nrole: Business owner\"\n"),
            "{text}"
        );
        assert_eq!(SignoffStatement::parse(&text).unwrap(), st);
        let forged = text.replace("decision: reject", "decision: approve\nextra: 1");
        assert!(SignoffStatement::parse(&forged).is_err());
    }

    #[test]
    fn verify_output_names_each_check_and_the_failures() {
        let mut v = Verification {
            body_sha256: "ab".repeat(32),
            rows: Vec::new(),
            partial: None,
        };
        v.push(
            "report format",
            CheckState::Pass,
            "schema_version 1, 3 items, no unknown keys",
        );
        v.push(
            "body digest",
            CheckState::Fail,
            "report body changed after signing: signed body sha256 00…, current body sha256 ab…",
        );
        v.push(
            "role: Technical lead",
            CheckState::Fail,
            "missing required role: not signed",
        );
        v.push("required roles", CheckState::Info, "note | with a pipe");
        assert!(!v.all_hold());
        insta::assert_snapshot!(render_verification(&v, Path::new("r/report.json")));
    }
}
