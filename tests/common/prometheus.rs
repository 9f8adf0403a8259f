//! A real Prometheus server for the `prometheus` probe's tests: Debian's `prometheus` binary
//! with a generated configuration (scrape and rule evaluation every second), a temporary TSDB
//! and an ephemeral loopback port. The server gets `PR_SET_PDEATHSIG` (SIGKILL) through
//! `setpriv`, so it ends with the test even when the test is killed; dropping it kills it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::free_port;

/// Scrape and rule evaluation interval of the test server, seconds.
pub const SCRAPE_INTERVAL_S: f64 = 1.0;

/// `name` (`prometheus`, `promtool`) on `PATH`. Panics, telling to run `./scripts/test`, when
/// it is not installed: a test must not pass because nothing ran.
pub fn prom_bin(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "{name} is not installed (looked on PATH): run ./scripts/test, which installs \
                 the prometheus package (it ships prometheus and promtool)"
            )
        })
}

/// A running Prometheus; killed and its folder removed when dropped.
pub struct Prometheus {
    child: Child,
    dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

/// One scrape job: its name and the `host:port` of its `/metrics`.
pub struct Job<'a> {
    /// `job` label.
    pub name: &'a str,
    /// `127.0.0.1:PORT`.
    pub target: &'a str,
}

impl Prometheus {
    /// Start with these scrape jobs and rule files; panics with the server's log when it does
    /// not become ready.
    pub fn start(jobs: &[Job<'_>], rule_files: &[&Path]) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("prodready-prom")
            .tempdir()
            .unwrap();
        let mut config = format!(
            "global:\n  scrape_interval: {SCRAPE_INTERVAL_S}s\n  scrape_timeout: 800ms\n  evaluation_interval: {SCRAPE_INTERVAL_S}s\nrule_files:\n"
        );
        for f in rule_files {
            config.push_str(&format!("  - {:?}\n", f.display().to_string()));
        }
        config.push_str("scrape_configs:\n");
        for j in jobs {
            config.push_str(&format!(
                "  - job_name: {:?}\n    static_configs:\n      - targets: [{:?}]\n",
                j.name, j.target
            ));
        }
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let mut last_log = String::new();
        for _ in 0..3 {
            let port = free_port();
            let log_path = dir.path().join(format!("prometheus-{port}.log"));
            let log = std::fs::File::create(&log_path).unwrap();
            let mut child = Command::new("setpriv")
                .args(["--pdeathsig=KILL", "--"])
                .arg(prom_bin("prometheus"))
                .arg(format!(
                    "--config.file={}",
                    dir.path().join("prometheus.yml").display()
                ))
                .arg(format!(
                    "--storage.tsdb.path={}",
                    dir.path().join("data").display()
                ))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("start prometheus");
            // Not a timing assertion: a bound on a hang, far above the usual second.
            let give_up = Instant::now() + Duration::from_secs(60);
            loop {
                if get(port, "/-/ready").is_ok_and(|(code, _)| code == 200) {
                    return Prometheus { child, dir, port };
                }
                if child.try_wait().unwrap().is_some() || Instant::now() > give_up {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_log = std::fs::read_to_string(&log_path).unwrap_or_default();
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        panic!("Prometheus did not start:\n{last_log}");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The folder holding the configuration and the TSDB.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// An instant query's `data.result`; panics on an API error.
    pub fn query(&self, expr: &str) -> serde_json::Value {
        let q: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("query", expr)
            .finish();
        let (code, body) = get(self.port, &format!("/api/v1/query?{q}")).expect("query");
        let v: serde_json::Value = serde_json::from_str(&body).expect("JSON answer");
        assert_eq!(code, 200, "query {expr}: {body}");
        v["data"]["result"].clone()
    }

    /// The single value of an instant query, if it returned one series.
    pub fn value(&self, expr: &str) -> Option<f64> {
        let r = self.query(expr);
        let series = r.as_array()?;
        if series.len() != 1 {
            return None;
        }
        series[0]["value"][1].as_str()?.parse().ok()
    }

    /// Poll `expr` every 200 ms until `ok` holds for its single value; panics after `bound`
    /// (a bound on a hang, not a timing assertion).
    pub fn wait_for(&self, expr: &str, bound: Duration, ok: impl Fn(f64) -> bool) -> f64 {
        let give_up = Instant::now() + bound;
        loop {
            if let Some(v) = self.value(expr)
                && ok(v)
            {
                return v;
            }
            assert!(
                Instant::now() < give_up,
                "`{expr}` did not reach the expected value within {bound:?}: {}",
                self.query(expr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `GET path` on 127.0.0.1:port with HTTP/1.0: the status code and the body.
pub fn get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |p| p.1).to_string();
    Ok((code, body))
}
