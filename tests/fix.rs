//! FIX end to end, with the real binary on ephemeral loopback ports:
//! - interoperability with an engine written elsewhere: QuickFIX (C++), through two small
//!   programs in `tests/fixtures/fix/` built here with g++ against Debian's libquickfix-dev.
//!   Our initiator sends 1 000 orders to a QuickFIX acceptor, and a QuickFIX initiator sends
//!   1 000 orders to the paper broker's acceptor; neither session log holds a reject;
//! - the coordinated-omission check of `tests/latency.rs`, over FIX: a 1 s stall in the
//!   paper broker;
//! - FIX over TLS (`fix+tls://`) with a private CA;
//! - rejects counted by kind, and the errors that end a session: a refused logon with the
//!   acceptor's Text(58), a sequence gap and a garbled message from a counterparty that a
//!   raw TCP server in this file plays.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde_json::Value;

mod common;

use common::{PaperBroker as Broker, free_port, measured, run_latency_item};

/// The QuickFIX test programs (`acceptor`, `initiator`), built once per test binary with g++.
/// Fails, never skips, when g++ or libquickfix-dev is missing.
fn quickfix(program: &str) -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    let dir = DIR.get_or_init(|| {
        assert!(
            Path::new("/usr/include/quickfix/Session.h").exists(),
            "libquickfix-dev is not installed (/usr/include/quickfix/Session.h is missing); scripts/test installs it"
        );
        let dir = std::env::temp_dir().join(format!("prodready-quickfix-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/fix");
        for name in ["acceptor", "initiator"] {
            let out = Command::new("g++")
                .args(["-std=c++14", "-O1", "-w", "-o"])
                .arg(dir.join(name))
                .arg(src.join(format!("{name}.cpp")))
                .args(["-lquickfix", "-lpthread"])
                .output()
                .expect("g++ is installed (scripts/test installs it)");
            assert!(
                out.status.success(),
                "building {name}.cpp with g++: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dir
    });
    dir.join(program)
}

/// A QuickFIX config file from `tests/fixtures/fix/`.
fn quickfix_config(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/fix/{name}"))
}

/// [`run_latency_item`] over FIX: `transport = "fix"` before the keys `probe`.
fn run_fix_item(dir: &Path, probe: &str) -> (i32, Value) {
    run_latency_item(dir, &format!("transport = \"fix\"\n{probe}"), &[])
}

fn summary(o: &Value) -> String {
    o["summary"].as_str().unwrap_or_default().to_string()
}

/// The first example of error `kind` in the outcome's "Errors by kind" table.
fn error_example(o: &Value, kind: &str) -> String {
    o["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["title"] == "Errors by kind")
        .and_then(|t| t["rows"].as_array().unwrap().iter().find(|r| r[0] == kind))
        .unwrap_or_else(|| panic!("no {kind} row in {o:#}"))[2]
        .as_str()
        .unwrap()
        .to_string()
}

/// The session's messages log of QuickFIX under `dir/log`, for `begin_string`.
fn quickfix_messages(dir: &Path, begin_string: &str) -> String {
    let log = dir.join("log");
    let file = std::fs::read_dir(&log)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let n = p.file_name().unwrap().to_string_lossy();
            n.starts_with(begin_string) && n.ends_with("messages.current.log")
        })
        .unwrap_or_else(|| panic!("no {begin_string} messages log in {}", log.display()));
    std::fs::read_to_string(file).unwrap()
}

/// Count the messages of MsgType `kind` in a QuickFIX messages log.
fn count(log: &str, kind: &str) -> usize {
    log.lines()
        .filter(|l| l.contains(&format!("\u{1}35={kind}\u{1}")))
        .count()
}

/// Our initiator → QuickFIX's acceptor: logon, 1 000 orders, logout, no reject either way.
fn orders_reach_a_quickfix_acceptor(version: &str, begin_string: &str, extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut acceptor = Command::new(quickfix("acceptor"))
        .arg(quickfix_config("acceptor.cfg"))
        .arg(port.to_string())
        .arg(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(acceptor.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "ready");
    let (code, o) = run_fix_item(
        dir.path(),
        &format!(
            "url = \"fix+tcp://127.0.0.1:{port}\"\nfix_version = \"{version}\"\nsender_comp_id = \"PRODREADY\"\ntarget_comp_id = \"QF_EXECUTOR\"\norder = \"11=qf-{{{{seq}}}}|{extra}55=NIFTY|54={{{{choice 1 2}}}}|38={{{{rand_int 1 10}}}}|40=2|44=101.25\"\nuntil = \"fill\"\nrate = 500\ncount = 1000\np99 = \"1s\"\n"
        ),
    );
    drop(acceptor.stdin.take());
    line.clear();
    stdout.read_line(&mut line).unwrap();
    acceptor.wait().unwrap();
    assert_eq!(code, 0, "{o:#}");
    assert_eq!(o["status"], "pass", "{o:#}");
    assert_eq!(measured(&o, "ok"), 1000.0, "{o:#}");
    assert!(line.contains("orders=1000"), "{line}");
    assert!(
        line.contains(
            "logons=1 logouts=1 rejects_sent=0 rejects_received=0 business_rejects_sent=0"
        ),
        "{line}"
    );
    let log = quickfix_messages(dir.path(), begin_string);
    assert_eq!(count(&log, "D"), 1000);
    assert_eq!(count(&log, "8"), 1000);
    assert_eq!(count(&log, "3") + count(&log, "j"), 0, "rejects in the log");
    // The session logged out: our Logout and its answer.
    assert_eq!(count(&log, "5"), 2);
}

#[test]
fn our_initiator_sends_1000_orders_to_a_quickfix_acceptor_without_a_reject() {
    orders_reach_a_quickfix_acceptor("4.4", "FIX.4.4", "");
}

#[test]
fn our_fix_4_2_initiator_sends_1000_orders_to_a_quickfix_acceptor_without_a_reject() {
    orders_reach_a_quickfix_acceptor("4.2", "FIX.4.2", "21=1|");
}

#[test]
fn a_quickfix_initiator_sends_1000_orders_to_the_paper_broker_without_a_reject() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with_fix(&[]);
    let port = broker
        .fix_addr
        .as_ref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    let out = Command::new(quickfix("initiator"))
        .arg(quickfix_config("initiator.cfg"))
        .arg(port)
        .arg(dir.path())
        .arg("1000")
        .output()
        .unwrap();
    let line = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{line}");
    assert!(
        line.contains("sent=1000 acks=1000 fills=1000 rejected=0"),
        "{line}"
    );
    assert!(line.contains("rejects_sent=0 rejects_received=0"), "{line}");
    let log = quickfix_messages(dir.path(), "FIX.4.4");
    assert_eq!(count(&log, "D"), 1000);
    // New, then Trade, for each market order.
    assert_eq!(count(&log, "8"), 2000);
    assert_eq!(count(&log, "3") + count(&log, "j"), 0, "rejects in the log");
    assert_eq!(count(&log, "5"), 2, "Logout and its answer");
    let events = std::fs::read_dir(dir.path().join("log"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.to_string_lossy()
                .ends_with("FIX.4.4-QF_TRADER-PAPER.event.current.log")
        })
        .map(|p| std::fs::read_to_string(p).unwrap())
        .unwrap();
    assert!(events.contains("Received logout response"), "{events}");
    assert!(!events.to_lowercase().contains("reject"), "{events}");
}

/// The keys of a session to the paper broker with a market order.
fn paper_session(broker: &Broker) -> String {
    format!(
        "url = \"{}\"\nsender_comp_id = \"PRODREADY\"\ntarget_comp_id = \"PAPER\"\norder = \"11=o-{{{{seq}}}}|55=NIFTY|54=1|38=1|40=1\"\n",
        broker.fix_url()
    )
}

/// One injected 1 s stall in a 20 s run at 1 000 orders/s, as in `tests/latency.rs`. An order
/// intended at offset s into the stall is answered when it ends: corrected latency 1 s − s
/// plus the drain after it. The slowest 1 % of 20 000 orders are those of the first 0.8 s of
/// the stall, so the corrected p99 is about 0.8 s: at least 1 s × (1 − 0.01 × 20) less 50 ms
/// of slack, and at most the run's own max − 0.2 s plus that slack and the largest schedule
/// lag (the first stalled order, the max, waited the whole stall; the drain adds to the others
/// at most what it added to the first, and a late send at most its lateness).
///
/// FIX sends every order on schedule, without waiting for answers, so nothing is omitted:
/// the schedule lag stays far below the stall, and the uncorrected twin (from the actual
/// send) sees the stall too, unlike HTTP/1.1's, whose queued requests left after it.
#[test]
fn stall_of_one_second_shows_in_corrected_p99_and_pipelining_leaves_nothing_to_correct() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with_fix(&["--stall-after", "8s", "--stall-for", "1s"]);
    let (_, o) = run_fix_item(
        dir.path(),
        &format!(
            "{}rate = 1000\nduration = \"20s\"\n",
            paper_session(&broker)
        ),
    );
    assert_ne!(o["status"], "error", "{o:#}");
    assert_eq!(measured(&o, "ok"), 20_000.0, "{o:#}");
    let (p99, unc_p99, max, lag) = (
        measured(&o, "p99_ms"),
        measured(&o, "uncorrected_p99_ms"),
        measured(&o, "max_ms"),
        measured(&o, "schedule_lag_max_ms"),
    );
    let msg =
        format!("p99 {p99} ms, uncorrected {unc_p99} ms, max {max} ms, schedule lag max {lag} ms");
    assert!(
        max >= 990.0,
        "the first stalled order waits the whole stall: {msg}"
    );
    assert!(p99 >= 1000.0 * (1.0 - 0.01 * 20.0) - 50.0, "{msg}");
    assert!(p99 <= max - 200.0 + 50.0 + lag, "{msg}");
    assert!(lag * 10.0 <= p99, "orders left on schedule: {msg}");
    assert!(unc_p99 >= p99 - lag - 0.05 * p99, "nothing omitted: {msg}");
}

#[test]
fn rejects_are_counted_by_kind() {
    // The broker's error rate answers orders with ExecutionReport OrdStatus(39)=8.
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with_fix(&["--error-rate", "0.3"]);
    let (code, o) = run_fix_item(
        dir.path(),
        &format!("{}rate = 500\ncount = 500\n", paper_session(&broker)),
    );
    assert_eq!(code, 1, "{o:#}");
    assert_eq!(o["status"], "fail", "{o:#}");
    let rejected = measured(&o, "errors_rejected");
    assert!(rejected > 50.0 && rejected < 450.0, "{o:#}");
    assert_eq!(rejected + measured(&o, "ok"), 500.0, "{o:#}");
    let table = o["tables"].to_string();
    assert!(
        table.contains("OrdStatus(39)=8") && table.contains("injected fault"),
        "{table}"
    );

    // An order without Symbol(55) gets a session-level Reject (35=3) naming the tag.
    let dir = tempfile::tempdir().unwrap();
    let (_, o) = run_fix_item(
        dir.path(),
        &format!(
            "url = \"{}\"\nsender_comp_id = \"PRODREADY\"\ntarget_comp_id = \"PAPER\"\norder = \"11=o-{{{{seq}}}}|54=1|38=1|40=1\"\nrate = 200\ncount = 200\n",
            broker.fix_url()
        ),
    );
    assert_eq!(measured(&o, "errors_session_reject"), 200.0, "{o:#}");
    assert!(o["tables"].to_string().contains("Symbol(55)"), "{o:#}");
}

#[test]
fn a_logon_to_the_wrong_comp_id_is_an_error_with_the_acceptors_text() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Broker::start_with_fix(&[]);
    let (code, o) = run_fix_item(
        dir.path(),
        &format!(
            "url = \"{}\"\nsender_comp_id = \"PRODREADY\"\ntarget_comp_id = \"NOT_PAPER\"\norder = \"11={{{{seq}}}}|55=NIFTY|54=1|38=1|40=1\"\nrate = 100\ncount = 100\n",
            broker.fix_url()
        ),
    );
    assert_eq!(code, 1, "{o:#}");
    assert_eq!(o["status"], "error", "{o:#}");
    let s = summary(&o);
    assert!(
        s.contains(r#"logon rejected by the counterparty: Logout (35=5): Text(58) "unknown TargetCompID(56) "NOT_PAPER": this acceptor is "PAPER"""#),
        "{s}"
    );
}

/// `fix+tls://`: the paper broker serving its FIX acceptor over TLS with a certificate for
/// `localhost` from a private CA (the openssl CLI). With the CA in `ca_file` every order is
/// acknowledged and the session's set-up (TCP, TLS, logon) is measured apart; without it the
/// handshake fails and the item is an error naming the certificate.
#[test]
fn fix_over_tls_logs_on_with_the_ca_file_and_refuses_an_untrusted_certificate() {
    let dir = tempfile::tempdir().unwrap();
    common::make_certs(dir.path(), 2);
    let (cert, key) = (dir.path().join("leaf.pem"), dir.path().join("leaf.key"));
    let broker = Broker::start_with_fix(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let port = broker
        .fix_addr
        .as_deref()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap();
    let session = format!(
        "url = \"fix+tls://localhost:{port}\"\nsender_comp_id = \"PRODREADY\"\ntarget_comp_id = \"PAPER\"\norder = \"11=o-{{{{seq}}}}|55=NIFTY|54=1|38=1|40=1\"\nrate = 200\ncount = 300\n"
    );
    let ca = dir.path().join("ca.pem");
    let (code, o) = run_fix_item(dir.path(), &format!("{session}ca_file = {ca:?}\n"));
    assert_eq!(code, 0, "{o:#}");
    assert_eq!(o["status"], "pass", "{o:#}");
    assert_eq!(measured(&o, "ok"), 300.0, "{o:#}");
    assert_eq!(measured(&o, "connects"), 1.0, "{o:#}");
    assert!(measured(&o, "connect_p50_ms") > 0.0, "{o:#}");

    let (code, o) = run_fix_item(dir.path(), &session);
    assert_eq!(code, 1, "{o:#}");
    assert_eq!(o["status"], "error", "{o:#}");
    let s = summary(&o).to_lowercase();
    assert!(s.contains("certificate"), "{s}");
}

/// One FIX message from `fields` (`tag=value` separated by `|`) with BodyLength and CheckSum.
fn frame(begin: &str, fields: &str) -> Vec<u8> {
    let body = fields.replace('|', "\u{1}");
    let mut m = format!("8={begin}\u{1}9={}\u{1}{body}", body.len()).into_bytes();
    let sum = m.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    m.extend_from_slice(format!("10={sum:03}\u{1}").as_bytes());
    m
}

/// The value of `tag` in a raw message.
fn field(msg: &[u8], tag: &str) -> String {
    String::from_utf8_lossy(msg)
        .split('\u{1}')
        .find_map(|f| f.strip_prefix(&format!("{tag}=")).map(str::to_string))
        .unwrap_or_default()
}

/// A counterparty played by hand: it answers the Logon, then calls `on_order` with each
/// NewOrderSingle's MsgSeqNum and ClOrdID and its own next MsgSeqNum, and writes what it
/// returns. It serves one connection.
fn scripted_acceptor(
    on_order: impl Fn(u64, &str, u64) -> Vec<u8> + Send + 'static,
) -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return;
        };
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut seq = 1u64;
        loop {
            let Ok(n) = s.read(&mut chunk) else { return };
            if n == 0 {
                return;
            }
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = find_end(&buf) {
                let msg: Vec<u8> = buf.drain(..end).collect();
                let reply = match field(&msg, "35").as_str() {
                    "A" => frame(
                        "FIX.4.4",
                        &format!(
                            "35=A|49=RAW|56=PRODREADY|34={seq}|52=20260101-00:00:00.000|98=0|108=30|141=Y|"
                        ),
                    ),
                    "D" => {
                        let their: u64 = field(&msg, "34").parse().unwrap_or(0);
                        on_order(their, &field(&msg, "11"), seq)
                    }
                    "5" => frame(
                        "FIX.4.4",
                        &format!("35=5|49=RAW|56=PRODREADY|34={seq}|52=20260101-00:00:00.000|"),
                    ),
                    _ => continue,
                };
                seq += 1;
                if s.write_all(&reply).is_err() {
                    return;
                }
            }
        }
    });
    addr
}

/// The end of the first complete message in `buf` (after `10=NNN<SOH>`).
fn find_end(buf: &[u8]) -> Option<usize> {
    let at = buf.windows(4).position(|w| w == b"\x0110=")?;
    (buf.len() >= at + 8).then_some(at + 8)
}

fn scripted_probe(addr: std::net::SocketAddr) -> String {
    format!(
        "url = \"fix+tcp://{addr}\"\nsender_comp_id = \"PRODREADY\"\ntarget_comp_id = \"RAW\"\norder = \"11={{{{seq}}}}|55=NIFTY|54=1|38=1|40=1\"\nrate = 100\ncount = 100\nconnections = 1\ntimeout = \"2s\"\n"
    )
}

#[test]
fn a_sequence_gap_ends_the_session_and_fails_its_orders_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The third order's answer skips three MsgSeqNums.
    let addr = scripted_acceptor(|_, id, seq| {
        let seq = if id == "2" { seq + 3 } else { seq };
        frame(
            "FIX.4.4",
            &format!(
                "35=8|49=RAW|56=PRODREADY|34={seq}|52=20260101-00:00:00.000|37=X|11={id}|17=E{id}|150=0|39=0|55=NIFTY|54=1|38=1|151=1|14=0|6=0|"
            ),
        )
    });
    let (code, o) = run_fix_item(dir.path(), &scripted_probe(addr));
    assert_eq!(code, 1, "{o:#}");
    assert_ne!(o["status"], "pass", "{o:#}");
    let closed = error_example(&o, "closed");
    assert!(
        closed.contains("sequence gap: expected MsgSeqNum(34) 4, received 7 in ExecutionReport (35=8); 3 message(s) lost"),
        "{closed}"
    );
    // The two orders answered before the gap count; the session's end failed the rest.
    assert_eq!(measured(&o, "ok"), 2.0, "{o:#}");
}

#[test]
fn a_garbled_message_ends_the_session_and_fails_its_orders_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // The first answer's CheckSum is off by one.
    let addr = scripted_acceptor(|_, id, seq| {
        let mut m = frame(
            "FIX.4.4",
            &format!(
                "35=8|49=RAW|56=PRODREADY|34={seq}|52=20260101-00:00:00.000|37=X|11={id}|17=E{id}|150=0|39=0|55=NIFTY|54=1|38=1|151=1|14=0|6=0|"
            ),
        );
        let n = m.len();
        m[n - 2] = if m[n - 2] == b'9' { b'0' } else { m[n - 2] + 1 };
        m
    });
    let (code, o) = run_fix_item(dir.path(), &scripted_probe(addr));
    assert_eq!(code, 1, "{o:#}");
    assert_eq!(measured(&o, "ok"), 0.0, "{o:#}");
    let closed = error_example(&o, "closed");
    assert!(
        closed.contains("garbled message from the counterparty (CheckSum(10) does not match the bytes): 8=FIX.4.4|9="),
        "{closed}"
    );
}

#[test]
fn business_message_rejects_are_counted_and_unanswered_orders_time_out() {
    let dir = tempfile::tempdir().unwrap();
    // Even orders get a BusinessMessageReject (35=j); odd ones no answer at all.
    let addr = scripted_acceptor(|their, id, seq| {
        if id.parse::<u64>().unwrap_or(1) % 2 == 0 {
            frame(
                "FIX.4.4",
                &format!(
                    "35=j|49=RAW|56=PRODREADY|34={seq}|52=20260101-00:00:00.000|45={their}|372=D|380=4|58=not authorized|"
                ),
            )
        } else {
            frame(
                "FIX.4.4",
                &format!("35=0|49=RAW|56=PRODREADY|34={seq}|52=20260101-00:00:00.000|"),
            )
        }
    });
    let (code, o) = run_fix_item(
        dir.path(),
        &format!("{}min_samples = 50\n", scripted_probe(addr)),
    );
    assert_eq!(code, 1, "{o:#}");
    assert_eq!(o["status"], "fail", "{o:#}");
    assert_eq!(measured(&o, "errors_business_reject"), 50.0, "{o:#}");
    assert_eq!(measured(&o, "errors_timeout"), 50.0, "{o:#}");
    let table = o["tables"].to_string();
    assert!(table.contains("Text(58) \\\"not authorized\\\""), "{table}");
    assert!(
        error_example(&o, "timeout").contains("no complete response within 2.00 s"),
        "{table}"
    );
}
