//! Reading steps: every kind is recognised, keys that do not apply are refused with the list
//! of those that do, errors keep their key path, and the schema describes the same keys the
//! reader accepts.

use std::collections::BTreeSet;

use super::*;

fn table(text: &str) -> toml::Table {
    toml::from_str(text).expect("test TOML")
}

fn parse(text: &str) -> Result<RawStep, FieldError> {
    RawStep::parse(table(text))
}

fn step(text: &str) -> Result<Step, FieldError> {
    parse(text)?.validate(0, &mut Validator::default())
}

fn error(text: &str) -> (String, String) {
    let e = step(text).expect_err("an error");
    (e.key, e.message)
}

/// One minimal step of every kind, with the variant it reads into.
const EVERY_KIND: &[(&str, &str)] = &[
    ("stop = \"a\"", "Stop"),
    ("start = \"a\"", "Start"),
    ("restart = \"a\"", "Restart"),
    ("signal = \"TERM\"\nservice = \"a\"", "Signal"),
    ("command = [\"true\"]", "Command"),
    ("http = \"http://127.0.0.1:1/\"", "HttpRequest"),
    ("proxy = \"p\"\nfault = \"down\"", "ProxyDown"),
    ("proxy = \"p\"\nfault = \"blackhole\"", "ProxyBlackhole"),
    (
        "proxy = \"p\"\nfault = \"latency\"\nlatency = \"1s\"",
        "ProxyLatency",
    ),
    (
        "proxy = \"p\"\nfault = \"reset_after\"\nbytes = 10",
        "ProxyResetAfter",
    ),
    ("proxy = \"p\"\nfault = \"http\"\nstatus = 503", "ProxyHttp"),
    ("proxy = \"p\"\nfault = \"heal\"", "ProxyHeal"),
    (
        "broker = \"http://127.0.0.1:1\"\nbroker_fault = { unhealthy = true }",
        "BrokerFault",
    ),
    ("wait = \"1s\"", "Wait"),
    (
        "expect = \"http\"\nurl = \"http://127.0.0.1:1/\"\nwithin = \"1s\"",
        "Http",
    ),
    (
        "expect = \"exit\"\nservice = \"a\"\nwithin = \"1s\"",
        "Exit",
    ),
    (
        "expect = \"sql\"\nsqlite = \"s.db\"\nquery = \"SELECT 1\"\nrows = 1\nwithin = \"1s\"",
        "Sql",
    ),
    (
        "expect = \"notifications\"\nsink = \"s\"\nwithin = \"1s\"",
        "Notifications",
    ),
    (
        "expect = \"orders\"\nbroker = \"http://127.0.0.1:1\"\nflat = true\nwithin = \"1s\"",
        "Orders",
    ),
    (
        "expect = \"log\"\nservice = \"a\"\nmatches = \"x\"\nwithin = \"1s\"",
        "Log",
    ),
    (
        "expect = \"process\"\nservice = \"a\"\nwithin = \"1s\"",
        "Process",
    ),
    (
        "expect = \"prometheus\"\nurl = \"http://127.0.0.1:1\"\nalert = \"A\"\nwithin = \"1s\"",
        "Prometheus",
    ),
];

/// The keys the error message of a refused key lists.
fn listed(message: &str) -> BTreeSet<String> {
    let list = message
        .split("(it takes: ")
        .nth(1)
        .and_then(|l| l.strip_suffix(')'))
        .unwrap_or_else(|| panic!("no list in {message}"));
    list.split(", ").map(str::to_string).collect()
}

#[test]
fn every_kind_reads_into_its_own_variant_and_validates() {
    assert_eq!(EVERY_KIND.len(), kinds().len(), "a kind is missing here");
    for (text, variant) in EVERY_KIND {
        let raw = parse(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
        let shown = format!("{:?}", raw.kind);
        assert!(shown.starts_with(variant), "{text} read as {shown}");
        step(text).unwrap_or_else(|e| panic!("{text}: {e:?}"));
    }
}

#[test]
fn a_key_of_another_kind_is_refused_naming_the_keys_that_apply() {
    let all: BTreeSet<String> = EVERY_KIND
        .iter()
        .flat_map(|(t, _)| table(t).keys().cloned().collect::<Vec<_>>())
        .collect();
    // Keys that choose the kind: adding one makes another error (two actions in one step).
    let choosing: BTreeSet<&str> = kinds()
        .iter()
        .flat_map(|k| [Some(k.select.key), k.select.tag.map(|(t, _)| t)])
        .flatten()
        .collect();
    for (text, _) in EVERY_KIND {
        let own = table(text);
        // A key no kind has, and those of other kinds.
        let mut strangers = vec!["hodl"];
        strangers.extend(
            all.iter()
                .map(String::as_str)
                .filter(|k| !own.contains_key(*k) && !choosing.contains(k)),
        );
        for stranger in strangers {
            let bad = format!("{text}\n{stranger} = 1");
            let Err(e) = parse(&bad) else {
                continue; // an optional key of this kind, given the wrong type below
            };
            if e.message.contains("does not apply") {
                assert_eq!(e.key, stranger, "{bad}");
                let takes = listed(&e.message);
                assert!(!takes.contains(stranger), "{bad}: {}", e.message);
                for k in own.keys() {
                    assert!(takes.contains(k), "{bad}: {} lacks {k}", e.message);
                }
                assert!(takes.contains("name") && takes.contains("needs"));
            } else {
                assert_eq!(e.key, stranger, "{bad}: {}", e.message);
                assert!(e.message.contains("invalid type"), "{bad}: {}", e.message);
            }
        }
    }
}

#[test]
fn no_action_has_a_key_that_chooses_another_kind_and_no_kind_one_that_every_step_takes() {
    // Every step takes the common keys; only expectations take the timing keys (an action may
    // have a key of the same name, such as an `http` action's `save`).
    let every: Vec<&str> = [keys::keys_of::<Common>(), keys::keys_of::<Timing>()].concat();
    let kinds = kinds();
    let mut g = schemars::SchemaGenerator::default();
    for k in &kinds {
        let schema = (k.schema)(&mut g).to_value();
        let own: Vec<&str> = schema["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .map(String::as_str)
            .collect();
        // An expectation may take an action's key (`log` reads a `command`'s output): there
        // `expect` decides. An action may not take another kind's key.
        let chooses = |o: &&Kind<RawStepKind>| !k.expectation || o.expectation;
        for other in kinds
            .iter()
            .filter(|o| o.select.key != k.select.key)
            .filter(chooses)
        {
            assert!(
                !own.contains(&other.select.key),
                "{}: {} would be read as two steps",
                k.select.doing(),
                other.select.key
            );
        }
        if let Some((tag, _)) = k.select.tag {
            assert!(
                !own.contains(&tag),
                "{}: {tag} is the tag",
                k.select.doing()
            );
        }
        let shared = if k.expectation {
            &every[..]
        } else {
            keys::keys_of::<Common>()
        };
        for s in shared {
            assert!(!own.contains(s), "{}: {s} is never read", k.select.doing());
        }
    }
}

#[test]
fn the_schema_has_one_variant_per_kind_with_the_keys_the_reader_takes() {
    let mut g = schemars::SchemaGenerator::default();
    let schema = schema(&mut g).to_value();
    let variants = schema["oneOf"].as_array().expect("oneOf");
    assert_eq!(variants.len(), EVERY_KIND.len());
    for ((text, _), variant) in EVERY_KIND.iter().zip(variants) {
        let e = parse(&format!("{text}\nhodl = 1")).expect_err("hodl");
        let props: BTreeSet<String> = variant["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .cloned()
            .collect();
        assert_eq!(props, listed(&e.message), "{text}");
        assert_eq!(variant["additionalProperties"], false);
    }
}

#[test]
fn errors_point_at_the_key_inside_the_step() {
    assert_eq!(
        error("wait = \"1s\"\nexpect = \"exit\""),
        (
            "expect".into(),
            "a step does one thing: wait and expect exclude each other; split them into two steps"
                .into()
        )
    );
    assert_eq!(
        error("name = \"x\"").1,
        "expected one action (stop, start, restart, signal, command, http, proxy, broker_fault, wait) or expect = \"<kind>\""
    );
    assert_eq!(
        error("expect = \"exits\"\nwithin = \"1s\""),
        (
            "expect".into(),
            "unknown expectation \"exits\": expected http, exit, sql, notifications, orders, log, process or prometheus".into()
        )
    );
    assert_eq!(
        error("proxy = \"p\"\nfault = \"slow\""),
        (
            "fault".into(),
            "unknown proxy fault \"slow\": expected down, blackhole, latency, reset_after, http or heal"
                .into()
        )
    );
    assert_eq!(
        error("proxy = \"p\""),
        ("fault".into(), "proxy needs `fault`".into())
    );
    assert_eq!(
        error("proxy = \"p\"\nfault = \"latency\""),
        (
            "latency".into(),
            "proxy with fault = \"latency\" needs `latency`".into()
        )
    );
    assert_eq!(
        error("expect = \"exit\"\nservice = \"a\"\nwithin = \"1s\"\nhold = 2"),
        (
            "hold".into(),
            "invalid type: integer \"2\", expected a string".into()
        )
    );
    assert_eq!(
        error("command = [\"a\", 2]"),
        (
            "command[1]".into(),
            "invalid type: integer \"2\", expected a string".into()
        )
    );
    let (key, message) =
        error("broker = \"http://127.0.0.1:1\"\nbroker_fault = { latenc = \"1s\" }");
    assert_eq!(key, "broker_fault.latenc");
    assert!(
        message.starts_with("unknown key \"latenc\" (expected one of: unhealthy, error_rate"),
        "{message}"
    );
    assert_eq!(
        error("signal = \"TERM\"\nservice = \"a\"\nfor = \"1s\""),
        (
            "for".into(),
            "`for` applies to signal = \"STOP\" (the service is continued after that long)".into()
        )
    );
}

#[test]
fn steps_without_a_name_are_named_by_their_number_and_what_they_do() {
    let names: Vec<String> = [
        "stop = \"agent\"",
        "proxy = \"gw\"\nfault = \"heal\"",
        "expect = \"exit\"\nservice = \"a\"\nwithin = \"1s\"",
    ]
    .iter()
    .map(|t| step(t).expect("valid").name)
    .collect();
    assert_eq!(
        names,
        ["1. stop agent", "1. heal proxy gw", "1. expect exit"]
    );
}
