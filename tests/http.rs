//! The `http` probe against real servers on 127.0.0.1: Python's http.server for status, body and
//! JSON pointer checks, and `openssl s_server` with a CA-signed certificate for certificate days.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

// A server process, killed when dropped.
use common::ChildGuard as Server;

fn wait_port(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server on port {port} did not start");
}

fn python_server(root: &Path) -> (Server, u16) {
    let port = free_port();
    let child = Command::new("python3")
        .args([
            "-m",
            "http.server",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--directory",
        ])
        .arg(root)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 is installed");
    wait_port(port);
    (Server(child), port)
}

#[test]
fn status_body_and_json_pointer_checks() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "www/healthz",
        r#"{"status":"ok","checks":{"broker":"logged-in","db":"up"}}"#,
    );
    let (_srv, port) = python_server(&dir.path().join("www"));
    let base = format!("http://127.0.0.1:{port}");
    let text = format!(
        "{HEAD}{}{}{}{}{}",
        item(
            "ok",
            "major",
            &format!(
                r#"{{ kind = "http", url = "{base}/healthz", json_pointer = "/checks/broker", json_equals = "logged-in", body_contains = "status", max_latency = "5s" }}"#
            )
        ),
        item(
            "wrong-value",
            "major",
            &format!(
                r#"{{ kind = "http", url = "{base}/healthz", json_pointer = "/checks/db", json_equals = "down" }}"#
            )
        ),
        item(
            "missing",
            "major",
            &format!(r#"{{ kind = "http", url = "{base}/nope" }}"#)
        ),
        item(
            "expect-404",
            "major",
            &format!(r#"{{ kind = "http", url = "{base}/nope", status = [404, 410] }}"#)
        ),
        item(
            "refused",
            "major",
            &format!(
                r#"{{ kind = "http", url = "http://127.0.0.1:{}/", timeout = "2s" }}"#,
                free_port()
            )
        )
    );
    write(dir.path(), "h.toml", &text);
    let out = run_in(dir.path(), &["run", "h.toml", "--out", "out"], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "ok"), "pass", "{r}");
    assert_eq!(status_of(&r, "wrong-value"), "fail");
    assert_eq!(status_of(&r, "missing"), "fail");
    assert_eq!(status_of(&r, "expect-404"), "pass");
    assert_eq!(status_of(&r, "refused"), "error");
    let refused = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "refused")
        .unwrap();
    assert!(
        refused["outcome"]["summary"]
            .as_str()
            .unwrap()
            .contains("connection failed"),
        "{refused}"
    );
}

#[test]
fn certificate_days_left_are_measured_over_https() {
    let dir = tempfile::tempdir().unwrap();
    make_certs(dir.path(), 30);
    let port = free_port();
    let mut child = Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-cert",
            "leaf.pem",
            "-key",
            "leaf.key",
            "-www",
            "-quiet",
        ])
        .current_dir(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let _stdout = child
        .stdout
        .take()
        .map(BufReader::new)
        .map(|r| std::thread::spawn(move || r.lines().count()));
    let _srv = Server(child);
    wait_port(port);
    let url = format!("https://127.0.0.1:{port}/");
    let text = format!(
        "{HEAD}{}{}{}",
        item(
            "cert-ok",
            "major",
            &format!(
                r#"{{ kind = "http", url = "{url}", ca_file = "ca.pem", min_cert_days = 20 }}"#
            )
        ),
        item(
            "cert-soon",
            "major",
            &format!(
                r#"{{ kind = "http", url = "{url}", ca_file = "ca.pem", min_cert_days = 45 }}"#
            )
        ),
        item(
            "untrusted",
            "major",
            &format!(r#"{{ kind = "http", url = "{url}", min_cert_days = 1 }}"#)
        )
    );
    write(dir.path(), "tls.toml", &text);
    let out = run_in(
        dir.path(),
        &["run", "tls.toml", "--out", "out", "--jobs", "1"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", describe(&out));
    let r = report_json(&dir.path().join("out"));
    assert_eq!(status_of(&r, "cert-ok"), "pass", "{r}");
    assert_eq!(status_of(&r, "cert-soon"), "fail");
    assert_eq!(
        status_of(&r, "untrusted"),
        "error",
        "an untrusted certificate cannot be measured"
    );
    let ok = r["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == "cert-ok")
        .unwrap();
    let days = ok["outcome"]["measured"]["cert_days_left"]
        .as_i64()
        .unwrap();
    assert!(
        (28..=30).contains(&days),
        "30-day certificate has {days} days left"
    );
}
