//! The `tcp` probe against real sockets on 127.0.0.1: a listening port is open, a released
//! one is closed, and a listening port outside the allowlist fails with its address.

mod common;

use common::*;

const TCP_ITEM: OneItem = OneItem {
    checklist: "tcp test",
    id: "ports",
    section: "Security",
    title: "Ports",
    severity: "major",
    timeout: None,
    kind: "tcp",
};

#[test]
fn a_listening_port_is_open_and_a_released_one_is_closed() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (code, o) = run_item(
        dir.path(),
        &TCP_ITEM,
        &format!("address = \"127.0.0.1:{port}\""),
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
    let (code, o) = run_item(
        dir.path(),
        &TCP_ITEM,
        &format!("address = \"127.0.0.1:{port}\"\nopen = false"),
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    drop(listener);
    let (code, o) = run_item(
        dir.path(),
        &TCP_ITEM,
        &format!("address = \"127.0.0.1:{port}\"\nopen = false"),
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
}

#[test]
fn a_listening_port_outside_the_allowlist_fails_with_its_address() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // Every port but ours is allowed, so whatever else listens on this machine cannot
    // change the verdict.
    let allow = format!(
        "listening_allow = [\"1-{}\", \"{}-65535\"]",
        port - 1,
        port + 1
    );
    let (code, o) = run_item(dir.path(), &TCP_ITEM, &allow, &[]);
    assert_eq!((code, o["status"].as_str()), (1, Some("fail")), "{o:#}");
    assert_eq!(measured(&o, "outside_allowlist"), 1.0, "{o:#}");
    let summary = o["summary"].as_str().unwrap();
    assert!(summary.contains(&format!("127.0.0.1:{port}")), "{summary}");
    let (code, o) = run_item(
        dir.path(),
        &TCP_ITEM,
        &format!("listening_allow = [{port}, \"1-65535\"]"),
        &[],
    );
    assert_eq!((code, o["status"].as_str()), (0, Some("pass")), "{o:#}");
    assert!(measured(&o, "listening") >= 1.0, "{o:#}");
    drop(listener);
}
