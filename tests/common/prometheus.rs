//! A real Prometheus server for the `prometheus` probe's tests: Debian's `prometheus` binary
//! with a generated configuration (scrape and rule evaluation every second), a temporary TSDB
//! and an ephemeral loopback port. The server gets `PR_SET_PDEATHSIG` (SIGKILL) through
//! `setpriv`, so it ends with the test even when the test is killed; dropping it kills it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::free_port;

/// Scrape and rule evaluation interval of the test server, seconds.
pub const SCRAPE_INTERVAL_S: f64 = 1.0;

/// `name` (`prometheus`, `promtool`) on `PATH`. Panics, telling to run `./scripts/test`, when
/// it is not installed: a test must not pass because nothing ran.
pub fn prom_bin(name: &str) -> PathBuf {
    super::on_path(name).unwrap_or_else(|| {
        panic!(
            "{name} is not installed (looked on PATH): run ./scripts/test, which installs \
                 the prometheus package (it ships prometheus and promtool)"
        )
    })
}

/// A running Prometheus; killed and its folder removed when dropped.
pub struct Prometheus {
    child: super::ChildGuard,
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

/// The basic-auth user of [`Prometheus::start_with_basic_auth`].
pub const BASIC_USER: &str = "prober";
/// Its password (a test value).
pub const BASIC_PASSWORD: &str = "pw-prom-test";
/// bcrypt hash of [`BASIC_PASSWORD`] (cost 4), as Prometheus's web configuration wants it;
/// made with `python3 -c "import crypt; print(crypt.crypt('pw-prom-test',
/// crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))"`.
const BASIC_HASH: &str = "$2b$04$Qe7IDiBGJLUnXRUGYsqWJeBk35tymk/M8Oo9x6BRriQXGn3KhkS8i";

impl Prometheus {
    /// Start with these scrape jobs and rule files; panics with the server's log when it does
    /// not become ready.
    pub fn start(jobs: &[Job<'_>], rule_files: &[&Path]) -> Prometheus {
        Self::start_inner(jobs, rule_files, None)
    }

    /// Start with no jobs, its HTTP API behind basic auth ([`BASIC_USER`], [`BASIC_PASSWORD`]).
    pub fn start_with_basic_auth() -> Prometheus {
        let web = format!("basic_auth_users:\n  {BASIC_USER}: {BASIC_HASH:?}\n");
        Self::start_inner(&[], &[], Some((web, 401)))
    }

    /// Start with no jobs, serving HTTPS with `cert` and `key` (PEM files).
    pub fn start_with_tls(cert: &Path, key: &Path) -> Prometheus {
        let web = format!(
            "tls_server_config:\n  cert_file: {:?}\n  key_file: {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        // Plain HTTP to an HTTPS port: Go's server answers 400.
        Self::start_inner(&[], &[], Some((web, 400)))
    }

    /// `web`: a web configuration file's text and the status a plain, unauthenticated
    /// `GET /-/ready` gets once the server is up behind it.
    fn start_inner(
        jobs: &[Job<'_>],
        rule_files: &[&Path],
        web: Option<(String, u16)>,
    ) -> Prometheus {
        let dir = tempfile::Builder::new()
            .prefix("prodready-prom")
            .tempdir()
            .unwrap();
        let web_file = dir.path().join("web.yml");
        let ready_code = match &web {
            Some((text, code)) => {
                std::fs::write(&web_file, text).unwrap();
                *code
            }
            None => 200,
        };
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
            let mut cmd = Command::new("setpriv");
            cmd.args(["--pdeathsig=KILL", "--"])
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
                .args(
                    web.as_ref()
                        .map(|_| format!("--web.config.file={}", web_file.display())),
                );
            // Not a timing assertion: a bound on a hang, far above the usual second.
            let ready = || get(port, "/-/ready").is_ok_and(|(code, _)| code == ready_code);
            match super::spawn_until_ready(cmd, &log_path, Duration::from_secs(60), ready) {
                Ok(child) => {
                    return Prometheus {
                        child: super::ChildGuard(child),
                        dir,
                        port,
                    };
                }
                Err(log) => last_log = log,
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
