//! Properties of the contract's parsers and of the bytes that get signed, over generated
//! input (proptest): units and `host:port` survive a round trip, a sign-off statement parses
//! back to itself whatever its free text holds, canonical JSON does not depend on key order,
//! and the checklist loader never panics and always names a place inside the input.

use std::path::Path;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{Map, Value};

use prodready::error::Error;
use prodready::report::canonical::canonical_json;
use prodready::signoff::{Decision, SignoffStatement};
use prodready::units::{HostPort, parse_bytes, parse_duration};

/// A small valid checklist to mutate.
const VALID: &str = r#"[checklist]
name = "props"
timeout = "30s"

[[item]]
id = "health"
section = "Monitoring"
title = "Health endpoint"
severity = "blocker"
[item.probe]
kind = "http"
url = "http://127.0.0.1:8080/healthz"
json_pointer = "/status"
json_equals = "ok"
max_latency = "250ms"

[[item]]
id = "hardware"
section = "Performance"
title = "Hardware"
severity = "major"
probe = { kind = "host", min_cpus = 2, min_memory = "1GiB" }
"#;

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The same value with every object's members inserted in reverse order.
fn reversed(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out = Map::new();
            for (k, x) in m.iter().rev() {
                out.insert(k.clone(), reversed(x));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(reversed).collect()),
        other => other.clone(),
    }
}

proptest! {
    #[test]
    fn durations_round_trip_through_humantime(ms in 1u64..40 * 86_400_000) {
        let d = Duration::from_millis(ms);
        prop_assert_eq!(parse_duration(&humantime::format_duration(d).to_string()), Ok(d));
    }

    #[test]
    fn byte_sizes_parse_to_their_value(n in 0u64..1 << 40, k in 0u64..1 << 20) {
        prop_assert_eq!(parse_bytes(&format!("{n}B")), Ok(n));
        prop_assert_eq!(parse_bytes(&format!("{k}KiB")), Ok(k * 1024));
        prop_assert_eq!(parse_bytes(&format!("{k}MiB")), Ok(k * 1024 * 1024));
        prop_assert_eq!(parse_bytes(&format!("{k}kB")), Ok(k * 1000));
    }

    #[test]
    fn host_port_round_trips(
        host in "[a-z][a-z0-9-]{0,12}(\\.[a-z0-9-]{1,8}){0,3}",
        v6 in any::<std::net::Ipv6Addr>(),
        port in 1u16..,
    ) {
        for h in [host, v6.to_string()] {
            let hp = HostPort { host: h, port };
            prop_assert_eq!(hp.to_string().parse::<HostPort>(), Ok(hp.clone()));
        }
    }

    #[test]
    fn signoff_statement_parses_back_to_itself(
        role in "\\PC{1,30}",
        signer in "\\PC{1,30}",
        comment in any::<String>(),
        approve in any::<bool>(),
        digest in "[0-9a-f]{64}",
    ) {
        let st = SignoffStatement {
            checklist_sha256: digest.clone(),
            run_started_at: "2026-11-22T20:00:00Z".into(),
            body_sha256: digest,
            role,
            decision: if approve { Decision::Approve } else { Decision::Reject },
            signer,
            signed_at: "2026-11-22T20:30:00Z".into(),
            comment,
        };
        prop_assert_eq!(SignoffStatement::parse(&st.to_text()), Ok(st));
    }

    #[test]
    fn canonical_json_ignores_member_order_and_is_a_fixed_point(v in json_value()) {
        let bytes = canonical_json(&v);
        prop_assert_eq!(&canonical_json(&reversed(&v)), &bytes);
        let again: Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(canonical_json(&again), bytes);
    }

    #[test]
    fn the_loader_never_panics_and_names_a_place_inside_the_input(
        at in 0usize..VALID.len(),
        cut in 0usize..8,
        insert in "[ -~\n\"'\\[\\]{}=]{0,6}",
        junk in "\\PC{0,80}",
    ) {
        let mut text = VALID.to_string();
        let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
        let end = (at + cut).min(text.len());
        let end = (end..=text.len()).find(|&i| text.is_char_boundary(i)).unwrap_or(text.len());
        text.replace_range(at..end, &insert);
        for input in [text.as_str(), junk.as_str()] {
            match prodready::checklist::parse(Path::new("c.toml"), input) {
                Ok(_) => {}
                Err(Error::Checklist { location, message }) => {
                    let lines = input.lines().count().max(1);
                    prop_assert!(
                        (1..=lines + 1).contains(&location.line) && location.column >= 1,
                        "{}:{}: {} in {:?}", location.line, location.column, message, input
                    );
                    prop_assert_eq!(location.file, Path::new("c.toml"));
                }
                Err(other) => prop_assert!(false, "not a located error: {other} in {input:?}"),
            }
        }
    }
}
