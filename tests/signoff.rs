//! Sign-off end to end: real reports from `prodready run`, real keys from `ssh-keygen` in a
//! temporary folder per test, signatures checked both ways with `ssh-keygen -Y`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_prodready");

/// A temporary workspace with keys, an allowed_signers file and reports.
struct Lab {
    dir: tempfile::TempDir,
}

impl Lab {
    fn new() -> Lab {
        Lab {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// `ssh-keygen -t TYPE [-b BITS] -N PASS -C COMMENT -f NAME`; returns the private key path.
    fn keygen(
        &self,
        name: &str,
        kind: &str,
        bits: Option<&str>,
        pass: &str,
        comment: &str,
    ) -> PathBuf {
        let key = self.path(name);
        let mut cmd = Command::new("ssh-keygen");
        cmd.args(["-q", "-t", kind, "-N", pass, "-C", comment, "-f"])
            .arg(&key);
        if let Some(b) = bits {
            cmd.args(["-b", b]);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("ssh-keygen runs");
        assert!(
            out.status.success(),
            "ssh-keygen: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        key
    }

    /// The `keytype base64` part of NAME.pub.
    fn public(&self, name: &str) -> String {
        let text = std::fs::read_to_string(self.path(&format!("{name}.pub"))).unwrap();
        text.split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// A checklist with env/file/command items, two sign-off roles and optionally an
    /// attestation item.
    fn checklist(&self, attestation: bool) -> PathBuf {
        self.write("runbook.md", "# Runbook\n\n## Rollback\n\nSteps.\n");
        let mut text = String::from(
            r#"[checklist]
name = "signoff test"
system = "order-router"
signoff = ["Technical lead", "Security review"]

[[item]]
id = "env-home"
section = "Config"
title = "HOME is set"
severity = "major"
probe = { kind = "env", vars = ["HOME"] }

[[item]]
id = "runbook"
section = "Docs"
title = "Runbook has a rollback section"
severity = "major"
probe = { kind = "file", path = "runbook.md", headings = ["Rollback"] }

[[item]]
id = "true-exits-0"
section = "Tools"
title = "A command exits 0"
severity = "minor"
probe = { kind = "command", command = ["true"] }
"#,
        );
        if attestation {
            text.push_str(
                r#"
[[item]]
id = "team-trained"
section = "Operations"
title = "Team trained on platform operation"
severity = "major"
probe = { kind = "attestation", file = "attestations.toml", allowed_signers = "allowed_signers" }
"#,
            );
        }
        self.write("checklist.toml", &text)
    }

    /// `prodready run CHECKLIST --out OUT`; returns OUT/report.json.
    fn run(&self, checklist: &Path, out: &str) -> PathBuf {
        let o = prodready(&[
            "run".as_ref(),
            checklist.as_os_str(),
            "--out".as_ref(),
            self.path(out).as_os_str(),
            "--no-step-summary".as_ref(),
        ]);
        assert!(
            o.status.code() == Some(0),
            "run failed: {}\n{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        self.path(out).join("report.json")
    }

    /// alice (ed25519, Technical lead) and bob (ecdsa p256, Security review), mapped by role.
    fn team(&self) -> (PathBuf, PathBuf, PathBuf) {
        let alice = self.keygen("alice", "ed25519", None, "", "alice@example.com");
        let bob = self.keygen("bob", "ecdsa", Some("256"), "", "bob@example.com");
        let signers = self.write(
            "allowed_signers",
            &format!(
                "# principals options key comment\n\
                 alice@example.com namespaces=\"prodready\" {} alice prodready-roles=\"Technical lead\"\n\
                 bob@example.com {} prodready-roles=\"Security review\"\n",
                self.public("alice"),
                self.public("bob")
            ),
        );
        (alice, bob, signers)
    }
}

fn prodready<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Output {
    prodready_env(args, None)
}

fn prodready_env<S: AsRef<std::ffi::OsStr>>(args: &[S], passphrase: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .env_remove("PRODREADY_KEY_PASSPHRASE")
        .env_remove("GITHUB_STEP_SUMMARY")
        .stdin(Stdio::null());
    if let Some(p) = passphrase {
        cmd.env("PRODREADY_KEY_PASSPHRASE", p);
    }
    cmd.output().expect("prodready runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn sign(report: &Path, role: &str, key: &Path) -> Output {
    prodready(&[
        "sign".as_ref(),
        report.as_os_str(),
        "--role".as_ref(),
        role.as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
    ])
}

fn verify(report: &Path, signers: &Path, extra: &[&str]) -> Output {
    let mut args: Vec<&std::ffi::OsStr> = vec![
        "verify".as_ref(),
        report.as_os_str(),
        "--allowed-signers".as_ref(),
        signers.as_os_str(),
    ];
    args.extend(extra.iter().map(|s| std::ffi::OsStr::new(*s)));
    prodready(&args)
}

fn assert_ok(o: &Output) {
    assert_eq!(o.status.code(), Some(0), "{}", text(o));
}

fn load(report: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(report).unwrap()).unwrap()
}

/// `ssh-keygen -Y verify` of signature `i` in the report, over its stored statement.
fn ssh_keygen_verify(lab: &Lab, report: &Path, signers: &Path, i: usize) -> Output {
    let r = load(report);
    let s = &r["signoff"]["signatures"][i];
    let msg = lab.write(
        &format!("statement-{i}.txt"),
        s["statement"].as_str().unwrap(),
    );
    let sig = lab.write(
        &format!("statement-{i}.txt.sig"),
        s["signature"].as_str().unwrap(),
    );
    Command::new("ssh-keygen")
        .args(["-Y", "verify", "-n", "prodready", "-f"])
        .arg(signers)
        .arg("-I")
        .arg(s["signer"].as_str().unwrap())
        .arg("-s")
        .arg(&sig)
        .stdin(std::fs::File::open(&msg).unwrap())
        .output()
        .expect("ssh-keygen runs")
}

#[test]
fn prodready_signature_verifies_with_ssh_keygen_and_prodready() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let report = lab.run(&lab.checklist(false), "r");
    let md_at_run = std::fs::read_to_string(report.with_file_name("report.md")).unwrap();
    // The role is matched case-insensitively and stored as the checklist spells it.
    assert_ok(&sign(&report, "technical LEAD", &alice));
    assert_ok(&sign(&report, "Security review", &bob));

    for i in 0..2 {
        let o = ssh_keygen_verify(&lab, &report, &signers, i);
        assert!(o.status.success(), "ssh-keygen -Y verify: {}", text(&o));
        assert!(
            text(&o).contains("Good \"prodready\" signature"),
            "{}",
            text(&o)
        );
    }
    let r = load(&report);
    let digest = r["signoff"]["signatures"][0]["body_sha256"]
        .as_str()
        .unwrap();
    assert_eq!(digest.len(), 64);
    assert!(
        r["signoff"]["signatures"][0]["statement"]
            .as_str()
            .unwrap()
            .contains(&format!("report-body-sha256: {digest}\n"))
    );
    // The digest report.md showed at run time is the one the signers signed.
    assert!(
        md_at_run.contains(&format!("Report body SHA-256: `{digest}`")),
        "{md_at_run}"
    );
    // report.md was re-rendered with the signatures and the same digest.
    let md = std::fs::read_to_string(report.with_file_name("report.md")).unwrap();
    assert!(
        md.contains(&format!("Report body SHA-256: `{digest}`")),
        "{md}"
    );
    assert!(
        md.contains("| Technical lead | approve | alice@example.com |"),
        "{md}"
    );

    let o = verify(&report, &signers, &[]);
    assert_ok(&o);
    assert!(text(&o).contains("verified: all"), "{}", text(&o));
}

#[test]
fn ssh_keygen_signature_is_accepted_by_verify() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let report = lab.run(&lab.checklist(false), "r");
    let o = prodready(&[
        "sign".as_ref(),
        report.as_os_str(),
        "--role".as_ref(),
        "Security review".as_ref(),
        "--signer".as_ref(),
        "bob@example.com".as_ref(),
        "--comment".as_ref(),
        "pen test closed".as_ref(),
        "--print-statement".as_ref(),
    ]);
    assert_ok(&o);
    let statement = lab.write("statement.txt", &String::from_utf8(o.stdout).unwrap());
    let o = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "prodready", "-f"])
        .arg(&bob)
        .arg(&statement)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(o.status.success(), "ssh-keygen -Y sign: {}", text(&o));
    let o = prodready(&[
        "sign".as_ref(),
        report.as_os_str(),
        "--statement".as_ref(),
        statement.as_os_str(),
        "--signature".as_ref(),
        lab.path("statement.txt.sig").as_os_str(),
    ]);
    assert_ok(&o);
    assert_ok(&sign(&report, "Technical lead", &alice));
    let o = verify(&report, &signers, &[]);
    assert_ok(&o);
    assert!(
        text(&o).contains("approved by bob@example.com"),
        "{}",
        text(&o)
    );
    assert_eq!(
        load(&report)["signoff"]["signatures"][0]["comment"],
        "pen test closed"
    );
}

#[test]
fn rsa_and_ecdsa_keys_sign_and_verify_both_ways() {
    let lab = Lab::new();
    let report = lab.run(&lab.checklist(false), "r");
    let keys = [
        ("rsa", "rsa", Some("3072")),
        ("p256", "ecdsa", Some("256")),
        ("p384", "ecdsa", Some("384")),
        ("p521", "ecdsa", Some("521")),
        ("ed", "ed25519", None),
    ];
    let mut lines = String::new();
    for (name, kind, bits) in keys {
        lab.keygen(name, kind, bits, "", &format!("{name}@example.com"));
        lines.push_str(&format!("{name}@example.com {}\n", lab.public(name)));
    }
    let signers = lab.write("allowed_signers", &lines);
    for (i, (name, _, _)) in keys.iter().enumerate() {
        let role = if i % 2 == 0 {
            "Technical lead"
        } else {
            "Security review"
        };
        assert_ok(&sign(&report, role, &lab.path(name)));
        let o = ssh_keygen_verify(&lab, &report, &signers, i);
        assert!(o.status.success(), "{name}: {}", text(&o));
    }
    let o = verify(&report, &signers, &[]);
    assert_ok(&o);
    let out = text(&o);
    for alg in [
        "ssh-rsa",
        "ecdsa-sha2-nistp256",
        "ecdsa-sha2-nistp384",
        "ecdsa-sha2-nistp521",
        "ssh-ed25519",
    ] {
        assert!(
            out.contains(&format!("valid {alg} signature")),
            "{alg}: {out}"
        );
    }
}

#[test]
fn passphrase_protected_key_reads_the_passphrase_from_the_environment() {
    let lab = Lab::new();
    let key = lab.keygen(
        "carol",
        "ed25519",
        None,
        "correct horse",
        "carol@example.com",
    );
    let signers = lab.write(
        "allowed_signers",
        &format!("carol@example.com {}\n", lab.public("carol")),
    );
    let report = lab.run(&lab.checklist(false), "r");
    let args = [
        "sign".as_ref(),
        report.as_os_str(),
        "--role".as_ref(),
        "Technical lead".as_ref(),
        "--key".as_ref(),
        key.as_os_str(),
    ];
    let o = prodready_env(&args, None);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("PRODREADY_KEY_PASSPHRASE"),
        "{}",
        text(&o)
    );
    let o = prodready_env(&args, Some("wrong"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("wrong passphrase"), "{}", text(&o));
    assert_ok(&prodready_env(&args, Some("correct horse")));
    assert!(
        ssh_keygen_verify(&lab, &report, &signers, 0)
            .status
            .success()
    );
}

/// A fully signed report and its allowed_signers.
fn signed_report(lab: &Lab, out: &str) -> (PathBuf, PathBuf) {
    let (alice, bob, signers) = lab.team();
    let report = lab.run(&lab.checklist(false), out);
    assert_ok(&sign(&report, "Technical lead", &alice));
    assert_ok(&sign(&report, "Security review", &bob));
    assert_ok(&verify(&report, &signers, &[]));
    (report, signers)
}

#[test]
fn one_changed_byte_of_the_body_fails_verify() {
    let lab = Lab::new();
    let (report, signers) = signed_report(&lab, "r");
    let original = std::fs::read_to_string(&report).unwrap();
    let tampered = original.replacen("\"signoff test\"", "\"signoff tesT\"", 1);
    assert_eq!(tampered.len(), original.len());
    assert_ne!(tampered, original);
    std::fs::write(&report, tampered).unwrap();
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("report body changed after signing"),
        "{}",
        text(&o)
    );
    assert!(text(&o).contains("NOT verified"), "{}", text(&o));
}

#[test]
fn a_key_added_to_the_report_is_rejected_as_invalid_input() {
    let lab = Lab::new();
    let (report, signers) = signed_report(&lab, "r");
    let mut r = load(&report);
    r["items"][0]["note"] = Value::String("added later".into());
    std::fs::write(&report, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("/items/0/note: not part of the report format"),
        "{}",
        text(&o)
    );
}

#[test]
fn signature_swapped_between_two_reports_fails_verify() {
    let lab = Lab::new();
    let (a, signers) = signed_report(&lab, "a");
    let b = lab.run(&lab.checklist(false), "b");
    assert_ok(&sign(&b, "Technical lead", &lab.path("alice")));
    // Give report b the Security review signature of report a.
    let mut rb = load(&b);
    let stolen = load(&a)["signoff"]["signatures"][1].clone();
    assert_eq!(stolen["role"], "Security review");
    rb["signoff"]["signatures"]
        .as_array_mut()
        .unwrap()
        .push(stolen);
    std::fs::write(&b, serde_json::to_string_pretty(&rb).unwrap()).unwrap();
    let o = verify(&b, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("signature belongs to another report"), "{out}");
    assert!(out.contains("missing required role"), "{out}");
}

#[test]
fn signer_not_in_allowed_signers_fails_verify() {
    let lab = Lab::new();
    let (alice, _bob, signers) = lab.team();
    let mallory = lab.keygen("mallory", "ed25519", None, "", "bob@example.com");
    let report = lab.run(&lab.checklist(false), "r");
    assert_ok(&sign(&report, "Technical lead", &alice));
    assert_ok(&sign(&report, "Security review", &mallory));
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("signer \"bob@example.com\" is not allowed: key SHA256:"),
        "{out}"
    );
    assert!(out.contains("is not in"), "{out}");
    // ssh-keygen agrees.
    assert!(
        !ssh_keygen_verify(&lab, &report, &signers, 1)
            .status
            .success()
    );
}

#[test]
fn signer_allowed_only_for_another_role_fails_verify() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let report = lab.run(&lab.checklist(false), "r");
    assert_ok(&sign(&report, "Technical lead", &bob));
    assert_ok(&sign(&report, "Security review", &alice));
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(
            "may sign only for prodready-roles=\"Security review\", not \"Technical lead\""
        ),
        "{}",
        text(&o)
    );
}

#[test]
fn missing_required_role_and_a_rejection_fail_verify() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let report = lab.run(&lab.checklist(false), "r");
    assert_ok(&sign(&report, "Technical lead", &alice));
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("missing required role: not signed"),
        "{}",
        text(&o)
    );

    let o = prodready(&[
        "sign".as_ref(),
        report.as_os_str(),
        "--role".as_ref(),
        "Security review".as_ref(),
        "--key".as_ref(),
        bob.as_os_str(),
        "--decision".as_ref(),
        "reject".as_ref(),
        "--comment".as_ref(),
        "open critical finding".as_ref(),
    ]);
    assert_ok(&o);
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("rejected by bob@example.com"),
        "{}",
        text(&o)
    );

    // Relabelling the rejection as an approval breaks the signature.
    let mut r = load(&report);
    r["signoff"]["signatures"][1]["decision"] = "approve".into();
    std::fs::write(&report, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("record altered after signing: decision is \"approve\""),
        "{}",
        text(&o)
    );
}

#[test]
fn attestation_satisfies_its_item_until_it_expires() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let checklist = lab.checklist(true);

    // No attestation yet: the item fails and the run is not ready.
    let o = prodready(&[
        "run".as_ref(),
        checklist.as_os_str(),
        "--out".as_ref(),
        lab.path("r0").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r0 = load(&lab.path("r0/report.json"));
    assert_eq!(r0["items"][3]["outcome"]["status"], "error");
    assert!(
        r0["items"][3]["outcome"]["summary"]
            .as_str()
            .unwrap()
            .contains("prodready attest team-trained")
    );

    let o = prodready(&[
        "attest".as_ref(),
        "team-trained".as_ref(),
        "--checklist".as_ref(),
        checklist.as_os_str(),
        "--key".as_ref(),
        alice.as_os_str(),
        "--evidence".as_ref(),
        "https://wiki.example.com/training-2026".as_ref(),
        "--expires".as_ref(),
        "30d".as_ref(),
    ]);
    assert_ok(&o);
    let report = lab.run(&checklist, "r1");
    let r = load(&report);
    let item = &r["items"][3];
    assert_eq!(item["outcome"]["status"], "pass", "{item}");
    assert_eq!(item["outcome"]["measured"]["signer"], "alice@example.com");
    let md = std::fs::read_to_string(report.with_file_name("report.md")).unwrap();
    assert!(
        md.contains("| alice@example.com | Team trained on platform operation |"),
        "{md}"
    );
    assert!(
        md.contains("https://wiki.example.com/training-2026"),
        "{md}"
    );

    assert_ok(&sign(&report, "Technical lead", &alice));
    assert_ok(&sign(&report, "Security review", &bob));
    let o = verify(&report, &signers, &[]);
    assert_ok(&o);
    assert!(
        text(&o).contains("attested by alice@example.com"),
        "{}",
        text(&o)
    );

    // The same report, checked as of a day after the attestation expires.
    let expires = item["outcome"]["measured"]["expires"].as_str().unwrap();
    let later: jiff::civil::Date = expires
        .parse::<jiff::civil::Date>()
        .unwrap()
        .tomorrow()
        .unwrap();
    let o = verify(&report, &signers, &["--on", &later.to_string()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("attestation expired on {expires}")),
        "{}",
        text(&o)
    );
}

#[test]
fn edited_attestation_no_longer_counts() {
    let lab = Lab::new();
    let (alice, _bob, _signers) = lab.team();
    let checklist = lab.checklist(true);
    let o = prodready(&[
        "attest".as_ref(),
        "team-trained".as_ref(),
        "--file".as_ref(),
        lab.path("attestations.toml").as_os_str(),
        "--statement".as_ref(),
        "Half the team trained".as_ref(),
        "--key".as_ref(),
        alice.as_os_str(),
        "--evidence".as_ref(),
        "https://wiki.example.com/t".as_ref(),
        "--expires".as_ref(),
        "2099-01-01".as_ref(),
    ]);
    assert_ok(&o);
    let file = lab.path("attestations.toml");
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("Half the team trained", "Whole team trained");
    std::fs::write(&file, edited).unwrap();
    let o = prodready(&[
        "run".as_ref(),
        checklist.as_os_str(),
        "--out".as_ref(),
        lab.path("r").as_os_str(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let r = load(&lab.path("r/report.json"));
    let summary = r["items"][3]["outcome"]["summary"].as_str().unwrap();
    assert!(
        summary.contains("does not match the signed text"),
        "{summary}"
    );
}

#[test]
fn waiver_approver_signature_is_checked_by_verify() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let mallory = lab.keygen("mallory", "ed25519", None, "", "alice@example.com");
    lab.write("runbook.md", "# Runbook\n");
    let base = r#"[checklist]
name = "waived"
signoff = ["Technical lead"]

[[item]]
id = "runbook"
section = "Docs"
title = "Runbook has a rollback section"
severity = "major"
probe = { kind = "file", path = "runbook.md", headings = ["Rollback"] }

[[waiver]]
item = "runbook"
reason = "Rollback section is being written"
approved_by = "Technical lead"
expires = 2099-12-31
"#;
    let checklist = lab.write("waived.toml", base);
    for (key, out) in [(&alice, "good"), (&mallory, "bad")] {
        let o = prodready(&[
            "sign-waiver".as_ref(),
            checklist.as_os_str(),
            "runbook".as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--output".as_ref(),
            lab.path(&format!("{out}.sig")).as_os_str(),
        ]);
        assert_ok(&o);
        assert!(text(&o).contains("signature_file = "), "{}", text(&o));
        lab.write(
            "waived.toml",
            &format!("{base}signer = \"alice@example.com\"\nsignature_file = \"{out}.sig\"\n"),
        );
        let report = lab.run(&checklist, out);
        assert_eq!(load(&report)["verdict"], "ready-with-waivers");
        assert_ok(&sign(&report, "Technical lead", &alice));
        let o = verify(&report, &signers, &[]);
        if out == "good" {
            assert_ok(&o);
            assert!(
                text(&o).contains("signed by alice@example.com"),
                "{}",
                text(&o)
            );
        } else {
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            assert!(
                text(&o).contains("approver signature by \"alice@example.com\" not accepted"),
                "{}",
                text(&o)
            );
        }
    }
    let _ = bob;
}

#[test]
fn malformed_inputs_exit_2_naming_the_place() {
    let lab = Lab::new();
    let (alice, _bob, _signers) = lab.team();
    let report = lab.run(&lab.checklist(false), "r");
    let bad = lab.write(
        "bad_signers",
        &format!(
            "# ok\nalice@example.com {}\nbob@example.com ssh-ed25519 not-base64!\n",
            lab.public("alice")
        ),
    );
    let o = verify(&report, &bad, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("bad_signers: line 3: invalid ssh-ed25519 public key"),
        "{}",
        text(&o)
    );

    let not_key = lab.write("not_a_key", "hello\n");
    let o = sign(&report, "Technical lead", &not_key);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not an OpenSSH private key"),
        "{}",
        text(&o)
    );

    let o = sign(&report, "Tech lead", &alice);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("is not a sign-off role of this report"),
        "{}",
        text(&o)
    );

    let truncated = lab.write("truncated.json", "{\n  \"schema_version\": 1,\n");
    let o = verify(&truncated, &bad, &[]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("truncated.json: 3:"), "{}", text(&o));
}

#[test]
fn json_attestations_file_works_and_signed_report_matches_the_published_schema() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let checklist = lab.checklist(true);
    let text = std::fs::read_to_string(&checklist)
        .unwrap()
        .replace("attestations.toml", "attestations.json");
    std::fs::write(&checklist, text).unwrap();
    for expires in ["2099-01-01", "2098-06-30"] {
        let o = prodready(&[
            "attest".as_ref(),
            "team-trained".as_ref(),
            "--checklist".as_ref(),
            checklist.as_os_str(),
            "--key".as_ref(),
            bob.as_os_str(),
            "--evidence".as_ref(),
            "https://tickets.example.com/OPS-17".as_ref(),
            "--expires".as_ref(),
            expires.as_ref(),
        ]);
        assert_ok(&o);
    }
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(lab.path("attestations.json")).unwrap())
            .unwrap();
    assert_eq!(file["attestation"].as_array().unwrap().len(), 2);

    let report = lab.run(&checklist, "r");
    assert_ok(&sign(&report, "Technical lead", &alice));
    assert_ok(&sign(&report, "Security review", &bob));
    let r = load(&report);
    // The attestation that lasts longest is the one the item rests on.
    assert_eq!(
        r["items"][3]["outcome"]["measured"]["expires"],
        "2099-01-01"
    );
    assert_eq!(
        r["items"][3]["outcome"]["tables"][0]["rows"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_ok(&verify(&report, &signers, &[]));

    let schema: Value =
        serde_json::from_slice(&prodready(&["schema", "report"]).stdout).expect("schema is JSON");
    let validator = jsonschema::validator_for(&schema).expect("schema compiles");
    let errors: Vec<String> = validator.iter_errors(&r).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{errors:?}");
}

/// OpenSSH stores some ECDSA scalars shorter than the field size (fixtures made by
/// tests/fixtures/signoff/make-short-scalar-keys.sh); they must sign like any other key.
#[test]
fn ecdsa_p521_key_with_a_short_scalar_signs_plain_and_encrypted() {
    let lab = Lab::new();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/signoff");
    let public = std::fs::read_to_string(fixtures.join("p521-short.pub")).unwrap();
    let public: Vec<&str> = public.split_whitespace().take(2).collect();
    let signers = lab.write(
        "allowed_signers",
        &format!("short@example.com {}\n", public.join(" ")),
    );
    let report = lab.run(&lab.checklist(false), "r");
    for (i, (name, pass, role)) in [
        ("p521-short", None, "Technical lead"),
        (
            "p521-short-enc",
            Some("fixture passphrase"),
            "Security review",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let key = lab.path(name);
        std::fs::copy(fixtures.join(name), &key).unwrap();
        let o = prodready_env(
            &[
                "sign".as_ref(),
                report.as_os_str(),
                "--role".as_ref(),
                role.as_ref(),
                "--key".as_ref(),
                key.as_os_str(),
            ],
            pass,
        );
        assert_ok(&o);
        let o = ssh_keygen_verify(&lab, &report, &signers, i);
        assert!(o.status.success(), "{name}: {}", text(&o));
    }
    assert_ok(&verify(&report, &signers, &[]));
}

#[test]
fn copies_signed_on_different_machines_merge_and_a_foreign_copy_is_refused() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let report = lab.run(&lab.checklist(false), "r");
    let copy = lab.path("copy-for-bob.json");
    std::fs::copy(&report, &copy).unwrap();
    assert_ok(&sign(&report, "Technical lead", &alice));
    assert_ok(&sign(&copy, "Security review", &bob));
    let merge = |into: &Path, from: &Path| {
        prodready(&[
            "sign".as_ref(),
            into.as_os_str(),
            "--merge-from".as_ref(),
            from.as_os_str(),
        ])
    };
    let o = merge(&report, &copy);
    assert_ok(&o);
    assert!(text(&o).contains("1 signature(s) merged"), "{}", text(&o));
    assert_ok(&verify(&report, &signers, &[]));
    // Merging again adds nothing.
    assert!(text(&merge(&report, &copy)).contains("0 signature(s) merged"));

    let other = lab.run(&lab.checklist(false), "other");
    let o = merge(&other, &copy);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("not a copy of the same report"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_partial_report_is_signed_only_when_allowed_and_verify_says_partial() {
    let lab = Lab::new();
    let (alice, bob, signers) = lab.team();
    let checklist = lab.checklist(false);
    let o = prodready(&[
        "run".as_ref(),
        checklist.as_os_str(),
        "--out".as_ref(),
        lab.path("r").as_os_str(),
        "--only".as_ref(),
        "env-home".as_ref(),
        "--no-step-summary".as_ref(),
    ]);
    assert_ok(&o);
    let report = lab.path("r").join("report.json");
    let before = std::fs::read_to_string(&report).unwrap();

    // Refused, in every way a signature gets in, with the reason and the way out.
    let o = sign(&report, "Technical lead", &alice);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let refusal = text(&o);
    for part in [
        "is a partial report: the run was filtered (--only env-home), so its verdict (ready) \
         is for 1 of 3 items; not run: runbook, true-exits-0.",
        "pass --allow-partial to sign this partial report knowingly",
    ] {
        assert!(refusal.contains(part), "{part:?} in {refusal}");
    }
    let o = prodready(&[
        "sign".as_ref(),
        report.as_os_str(),
        "--role".as_ref(),
        "Security review".as_ref(),
        "--signer".as_ref(),
        "bob@example.com".as_ref(),
        "--print-statement".as_ref(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--allow-partial"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&report).unwrap(), before);

    // Allowed when asked for: the signatures verify, and verify says the report is partial.
    for (role, key) in [("Technical lead", &alice), ("Security review", &bob)] {
        let o = prodready(&[
            "sign".as_ref(),
            report.as_os_str(),
            "--role".as_ref(),
            role.as_ref(),
            "--key".as_ref(),
            key.as_os_str(),
            "--allow-partial".as_ref(),
        ]);
        assert_ok(&o);
        assert!(
            text(&o).contains("; a partial report: ready for 1 of 3 items (2 not run)"),
            "{}",
            text(&o)
        );
    }
    let o = verify(&report, &signers, &[]);
    assert_ok(&o);
    let out = text(&o);
    assert!(out.contains("verified: all"), "{out}");
    assert!(
        out.contains("verdict ready for 1 of 3 items (2 not run)"),
        "{out}"
    );
    assert!(
        out.contains("partial report") && out.contains("not run: runbook, true-exits-0"),
        "{out}"
    );
    assert!(
        out.contains("report.json: a partial report: ready for 1 of 3 items (2 not run)"),
        "{out}"
    );
    let o = ssh_keygen_verify(&lab, &report, &signers, 0);
    assert!(o.status.success(), "{}", text(&o));

    // `partial` is inside the signed body: dropping it breaks every signature.
    let mut r = load(&report);
    r.as_object_mut().unwrap().remove("partial");
    r.as_object_mut().unwrap().remove("not_run");
    std::fs::write(&report, serde_json::to_string_pretty(&r).unwrap()).unwrap();
    let o = verify(&report, &signers, &[]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("report body changed after signing"),
        "{}",
        text(&o)
    );
}
