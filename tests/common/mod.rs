//! Helpers shared by the integration tests: run the real binary in a temp folder.
#![allow(dead_code)]

pub mod postgres;
pub mod prometheus;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary under test.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_prodready"))
}

/// The common head of a test checklist.
pub const HEAD: &str =
    "[checklist]\nname = \"test run\"\nsystem = \"unit\"\nenvironment = \"test\"\n\n";

/// How [`run_item`] names its one item, and the probe kind the item runs.
pub struct OneItem {
    /// The checklist's name.
    pub checklist: &'static str,
    /// The item's id, section, title and severity.
    pub id: &'static str,
    /// The item's section.
    pub section: &'static str,
    /// The item's title.
    pub title: &'static str,
    /// The item's severity.
    pub severity: &'static str,
    /// The item's `timeout`, when it sets one.
    pub timeout: Option<&'static str>,
    /// `kind` of the item's `[item.probe]`.
    pub kind: &'static str,
}

/// The one `latency` item `order-latency` (a blocker, timeout 5 min) of [`run_latency_item`].
pub const LATENCY_ITEM: OneItem = OneItem {
    checklist: "latency test",
    id: "order-latency",
    section: "Performance",
    title: "Order latency",
    severity: "blocker",
    timeout: Some("5m"),
    kind: "latency",
};

/// Write a checklist holding `item` whose `[item.probe]` body (after `kind`) is `probe` to
/// `dir/checklist.toml` and run it into `dir/out` (cleared first) with extra environment
/// variables; returns the exit code and the item's outcome from report.json, or, when no report
/// was written (a checklist error), prodready's stderr as a JSON string.
pub fn run_item(
    dir: &Path,
    item: &OneItem,
    probe: &str,
    env: &[(&str, &str)],
) -> (i32, serde_json::Value) {
    let timeout = item
        .timeout
        .map(|t| format!("timeout = \"{t}\"\n"))
        .unwrap_or_default();
    let checklist = format!(
        "[checklist]\nname = \"{}\"\n\n[[item]]\nid = \"{}\"\nsection = \"{}\"\ntitle = \"{}\"\nseverity = \"{}\"\n{timeout}[item.probe]\nkind = \"{}\"\n{probe}\n",
        item.checklist, item.id, item.section, item.title, item.severity, item.kind
    );
    let path = dir.join("checklist.toml");
    std::fs::write(&path, checklist).unwrap();
    let out_dir = dir.join("out");
    let _ = std::fs::remove_dir_all(&out_dir);
    let out = Command::new(bin())
        .args(["run", "--no-step-summary", "--out"])
        .arg(&out_dir)
        .arg(&path)
        .env_remove("GITHUB_STEP_SUMMARY")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let code = out.status.code().unwrap_or(-1);
    let Ok(bytes) = std::fs::read(out_dir.join("report.json")) else {
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        return (code, serde_json::Value::String(stderr));
    };
    let report: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    (code, outcome(&report, item.id).clone())
}

/// [`run_item`] with [`LATENCY_ITEM`]: a one-item checklist whose `[item.probe]` is
/// `kind = "latency"` plus `probe`.
pub fn run_latency_item(dir: &Path, probe: &str, env: &[(&str, &str)]) -> (i32, serde_json::Value) {
    run_item(dir, &LATENCY_ITEM, probe, env)
}

/// The outcome's `measured.<key>` as a number; panics naming the key when it is missing.
pub fn measured(o: &serde_json::Value, key: &str) -> f64 {
    o["measured"][key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} missing in {o:#}"))
}

/// A loopback port that was free a moment ago (bind port 0, read it, release it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first `name` on `PATH`, if any.
pub fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// Start `cmd` with its stdout and stderr going to the file `log`, then poll `ready` every
/// 50 ms: the child once `ready` holds, or the log's text once the child exits or `bound`
/// passes (a bound on a hang, not a timing assertion), the child then killed.
pub fn spawn_until_ready(
    mut cmd: Command,
    log: &Path,
    bound: std::time::Duration,
    ready: impl Fn() -> bool,
) -> Result<std::process::Child, String> {
    let file = std::fs::File::create(log).unwrap();
    let mut child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .spawn()
        .unwrap_or_else(|e| panic!("start {cmd:?}: {e}"));
    let give_up = std::time::Instant::now() + bound;
    loop {
        if ready() {
            return Ok(child);
        }
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > give_up {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::fs::read_to_string(log).unwrap_or_default());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Write `text` to `dir/name` and return the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(&p, text).unwrap();
    p
}

/// A `[[item]]` with an inline probe table.
pub fn item(id: &str, severity: &str, probe: &str) -> String {
    format!(
        "[[item]]\nid = \"{id}\"\nsection = \"Tests\"\ntitle = \"Item {id}\"\nseverity = \"{severity}\"\nprobe = {probe}\n\n"
    )
}

/// Run `prodready ARGS` in `cwd` with CI set (no progress bars) and extra env.
pub fn run_in(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(bin());
    c.args(args)
        .current_dir(cwd)
        .env("CI", "true")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run prodready")
}

/// Exit code, stdout and stderr as text, for assertion messages.
pub fn describe(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Parse `dir/report.json`.
pub fn report_json(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("report.json")).expect("report.json written");
    serde_json::from_str(&text).expect("report.json parses")
}

/// The outcome of item `id` in a parsed report.
pub fn outcome<'a>(report: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    &report["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id)
        .unwrap_or_else(|| panic!("item {id} in report"))["outcome"]
}

/// The outcome status of item `id` in a parsed report.
pub fn status_of(report: &serde_json::Value, id: &str) -> String {
    outcome(report, id)["status"].as_str().unwrap().to_string()
}

/// A child process killed and reaped when dropped, whatever the test does. Derefs to the
/// [`std::process::Child`].
pub struct ChildGuard(pub std::process::Child);

impl std::ops::Deref for ChildGuard {
    type Target = std::process::Child;

    fn deref(&self) -> &std::process::Child {
        &self.0
    }
}

impl std::ops::DerefMut for ChildGuard {
    fn deref_mut(&mut self) -> &mut std::process::Child {
        &mut self.0
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `prodready paper-broker` on an ephemeral loopback port; killed when dropped.
pub struct PaperBroker {
    /// The broker process.
    pub child: ChildGuard,
    /// `127.0.0.1:PORT`, from its first stdout line.
    pub addr: String,
    /// The FIX acceptor's `127.0.0.1:PORT` (second stdout line) when started with
    /// `--fix-listen`.
    pub fix_addr: Option<String>,
}

impl PaperBroker {
    /// Start with extra flags; its stderr is discarded.
    pub fn start(args: &[&str]) -> PaperBroker {
        Self::spawn(args, std::process::Stdio::null())
    }

    /// Start with extra flags, keeping stderr readable through `child.stderr`.
    pub fn start_capturing_stderr(args: &[&str]) -> PaperBroker {
        Self::spawn(args, std::process::Stdio::piped())
    }

    /// Start listening on `addr` (e.g. the port of a broker that was stopped, to bring it
    /// back where its scrapers and monitors look).
    pub fn start_at(addr: &str) -> PaperBroker {
        Self::spawn_at(addr, &[], std::process::Stdio::null())
    }

    fn spawn(args: &[&str], stderr: std::process::Stdio) -> PaperBroker {
        Self::spawn_at("127.0.0.1:0", args, stderr)
    }

    fn spawn_at(addr: &str, args: &[&str], stderr: std::process::Stdio) -> PaperBroker {
        use std::io::BufRead;
        let mut child = Command::new(bin())
            .args(["paper-broker", "--listen", addr])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("start the broker");
        let mut line = String::new();
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        stdout.read_line(&mut line).unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        let fix_addr = args.contains(&"--fix-listen").then(|| {
            let mut line = String::new();
            stdout.read_line(&mut line).unwrap();
            line.trim()
                .strip_prefix("fix listening on ")
                .unwrap_or_else(|| panic!("unexpected second line {line:?}"))
                .to_string()
        });
        PaperBroker {
            child: ChildGuard(child),
            addr,
            fix_addr,
        }
    }

    /// Start with the FIX acceptor on a free port besides the given flags.
    pub fn start_with_fix(args: &[&str]) -> PaperBroker {
        let mut all = vec!["--fix-listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        Self::start(&all)
    }

    /// `fix+tcp://127.0.0.1:PORT` of the FIX acceptor.
    pub fn fix_url(&self) -> String {
        format!(
            "fix+tcp://{}",
            self.fix_addr.as_deref().expect("started with --fix-listen")
        )
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` on the broker.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The broker's PID.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

/// Every file below `dir`, recursively.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Run the openssl CLI in `dir`; panics with its stderr when it fails.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`ca.pem`, `ca.key`) and a leaf certificate for `localhost` and 127.0.0.1
/// (`leaf.pem`, `leaf.key`) valid for `days`, made in `dir` with the real openssl CLI.
pub fn make_certs(dir: &Path, days: u32) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "3650",
            "-subj",
            "/CN=prodready test CA",
        ],
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "leaf.pem",
            "-days",
            &days.to_string(),
            "-extfile",
            "ext.cnf",
        ],
    );
}

/// `target/<profile>/examples/trading_agent`, next to this test's `deps/` folder.
///
/// `cargo test --test trading_agent` (and nextest) build only the selected targets, so the
/// example is built here when it is missing or older than its source or the `prodready` binary
/// (which this test build relinks whenever the library changes). The nested cargo runs without
/// the variables cargo and nextest set for tests, which would otherwise make it rebuild
/// dependencies whose build scripts watch the environment.
pub fn agent_bin() -> PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap().to_path_buf();
    let bin = profile_dir.join("examples").join("trading_agent");
    BUILD.call_once(|| {
        let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let newest_input = [
            manifest_dir.join("examples/trading_agent.rs"),
            PathBuf::from(env!("CARGO_BIN_EXE_prodready")),
        ]
        .iter()
        .filter_map(|p| modified(p))
        .max();
        if modified(&bin).is_some_and(|b| newest_input.is_none_or(|i| b >= i)) {
            return;
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "--example", "trading_agent", "--manifest-path"])
            .arg(manifest_dir.join("Cargo.toml"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        if let Some(target) = profile_dir.parent() {
            cmd.arg("--target-dir").arg(target);
        }
        for (k, _) in std::env::vars_os() {
            let k = k.to_string_lossy();
            if (k.starts_with("CARGO_") && k != "CARGO_HOME")
                || k.starts_with("NEXTEST")
                || k.starts_with("RUST_TEST")
                || k == "LD_LIBRARY_PATH"
                || k == "OUT_DIR"
            {
                cmd.env_remove(&*k);
            }
        }
        let status = cmd
            .status()
            .expect("run cargo build --example trading_agent");
        assert!(
            status.success(),
            "cargo build --example trading_agent: {status}"
        );
    });
    bin
}

/// Run headless Chromium on `url` with `args` (a fresh profile in `work`, the flags a closed
/// network needs); returns its stdout and stderr. Panics when it fails or outlives a generous
/// bound.
pub fn chromium(work: &Path, url: &str, args: &[String]) -> (String, String) {
    let profile = tempfile::tempdir_in(work).unwrap();
    let (out, err) = (work.join("chromium.out"), work.join("chromium.err"));
    let mut child = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("chromium is installed (scripts/test installs it)");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish in 180 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let (out, err) = (
        std::fs::read_to_string(out).unwrap(),
        std::fs::read_to_string(err).unwrap(),
    );
    assert!(status.success(), "chromium {args:?}: {status}\n{err}");
    (out, err)
}

/// `ssh-keygen -t ed25519` without a passphrase; returns (private key, "type base64" public).
pub fn keygen(dir: &Path, name: &str, comment: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let o = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&key)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("ssh-keygen runs");
    assert!(o.status.success(), "{}", describe(&o));
    let public = std::fs::read_to_string(dir.join(format!("{name}.pub"))).unwrap();
    (
        key,
        public
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// A checklist named `name` with one latency item, `order-latency`, against `${BROKER_ADDR}`
/// (1 000 orders/s over 16 connections for `duration`), with `extra` lines in the item table
/// (e.g. a `regression` table). The file, and so its digest, stays the same whichever broker a
/// run measures.
pub fn broker_latency_checklist(name: &str, duration: &str, extra: &str) -> String {
    format!(
        r#"[checklist]
name = "{name}"
system = "paper"

[[item]]
id = "order-latency"
section = "Performance"
title = "Order latency"
severity = "major"
timeout = "5m"
{extra}[item.probe]
kind = "latency"
url = "http://${{BROKER_ADDR}}/api/v1/orders"
body = '{{"symbol":"NIFTY","side":"buy","qty":1,"type":"market","client_order_id":"{{{{seq}}}}"}}'
rate = 1000
duration = "{duration}"
connections = 16
"#
    )
}
