//! A real PostgreSQL server for the `sql` probe's tests: `initdb` into a temporary folder,
//! `postgres` on an ephemeral loopback port, a login role with a password, one database per
//! test. About two seconds per server (most of it `initdb`); each test starts its own, since
//! nextest runs every test in its own process.
//!
//! PostgreSQL refuses to run as root, so as root the folder is handed to the `postgres` user
//! and the binaries run as that user through `setpriv`. The server gets `PR_SET_PDEATHSIG`
//! (SIGINT, PostgreSQL's fast shutdown) so it ends with the test even when the test is killed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

use super::free_port;

/// The role the probe logs in as.
pub const PG_USER: &str = "app";
/// `PG_USER`'s password (a test value, passed to the probe through `${PGPASSWORD}`).
pub const PG_PASSWORD: &str = "pw-7f3a9c-probe";
/// The superuser's password, used only by this helper.
const SUPERUSER_PASSWORD: &str = "pw-super-5b21";

/// A running PostgreSQL server; stopped (fast shutdown) and its folder removed when dropped.
pub struct Postgres {
    child: Child,
    dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
}

/// The PostgreSQL server binary `name` (`initdb`, `postgres`): the newest
/// `/usr/lib/postgresql/<version>/bin/<name>` (Debian's layout), else on `PATH`. Panics, telling
/// to run `./scripts/test`, when PostgreSQL is not installed: a test must not pass because
/// nothing ran.
pub fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin").join(name);
            bin.is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    super::on_path(name).unwrap_or_else(|| {
        panic!(
            "PostgreSQL's {name} is not installed (looked in /usr/lib/postgresql/*/bin and \
                 on PATH): run ./scripts/test, which installs the postgresql package"
        )
    })
}

/// Whether this process's effective uid is 0 (from `/proc/self/status`: `Uid: real effective …`).
fn is_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        == Some("0")
}

/// `bin` run as the `postgres` user when we are root (PostgreSQL refuses root), else as us;
/// either way through `setpriv`, which gives it SIGINT when this thread ends.
fn as_postgres(bin: &Path, dir: &Path) -> Command {
    let mut c = Command::new("setpriv");
    if is_root() {
        c.args(["--reuid=postgres", "--regid=postgres", "--init-groups"]);
    }
    c.args(["--pdeathsig=INT", "--"]).arg(bin).current_dir(dir);
    c
}

/// Run `sql` (one or more statements) as `user` on database `db`; the server's error text on
/// failure.
pub fn exec(port: u16, user: &str, password: &str, db: &str, sql: &str) -> Result<(), String> {
    let url = format!("postgres://{user}:{password}@127.0.0.1:{port}/{db}");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("{e}: {:?}", e.as_db_error()))?;
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .map_err(|e| format!("{e}: {:?}", e.as_db_error()))
    })
}

impl Postgres {
    /// `initdb`, start on a free port and create the [`PG_USER`] role. Panics with the
    /// server's log when it does not come up.
    pub fn start() -> Postgres {
        let dir = if is_root() {
            // The postgres user must reach the folder; root's TMPDIR may be private.
            tempfile::Builder::new()
                .prefix("prodready-pg")
                .tempdir_in("/tmp")
        } else {
            tempfile::Builder::new().prefix("prodready-pg").tempdir()
        }
        .unwrap();
        std::fs::write(dir.path().join("pwfile"), SUPERUSER_PASSWORD).unwrap();
        if is_root() {
            let st = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(st.success(), "chown the PostgreSQL folder to postgres");
        }
        let out = as_postgres(&pg_bin("initdb"), dir.path())
            .args(["-D", "data", "-U", "postgres", "--pwfile=pwfile"])
            .args([
                "-A",
                "scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // A port picked free can be taken before the server binds it: try a few.
        let mut last_log = String::new();
        for _ in 0..3 {
            match Self::spawn(dir.path()) {
                Ok((child, port)) => {
                    let pg = Postgres { child, dir, port };
                    pg.superuser(&format!(
                        "CREATE ROLE {PG_USER} LOGIN PASSWORD '{PG_PASSWORD}'"
                    ));
                    return pg;
                }
                Err(log) => last_log = log,
            }
        }
        panic!("PostgreSQL did not start:\n{last_log}");
    }

    /// Start `postgres` on a free port and wait until it accepts a login; the log when it
    /// exits first.
    fn spawn(dir: &Path) -> Result<(Child, u16), String> {
        let port = free_port();
        let log_path = dir.join(format!("postgres-{port}.log"));
        let mut cmd = as_postgres(&pg_bin("postgres"), dir);
        cmd.args(["-D", "data", "-p", &port.to_string()])
            .arg("-k")
            .arg(dir)
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]);
        // Not a timing assertion: a bound on a hang, far above the usual quarter second.
        super::spawn_until_ready(cmd, &log_path, Duration::from_secs(120), || {
            exec(port, "postgres", SUPERUSER_PASSWORD, "postgres", "SELECT 1").is_ok()
        })
        .map(|child| (child, port))
    }

    fn superuser(&self, sql: &str) {
        exec(self.port, "postgres", SUPERUSER_PASSWORD, "postgres", sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// Create database `name` owned by [`PG_USER`] and run `setup` in it as that user (so
    /// the probe's role owns the tables: a refused write is the read-only transaction's doing,
    /// not a missing privilege).
    pub fn create_db(&self, name: &str, setup: &str) {
        self.superuser(&format!("CREATE DATABASE {name} OWNER {PG_USER}"));
        exec(self.port, PG_USER, PG_PASSWORD, name, setup)
            .unwrap_or_else(|e| panic!("setting up {name}: {e}"));
    }

    /// `postgres://app:<password>@127.0.0.1:<port>/<db>`; `password` as written in the
    /// checklist (e.g. `${PGPASSWORD}`).
    pub fn url(&self, password: &str, db: &str) -> String {
        format!(
            "postgres://{PG_USER}:{password}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// The first column of the first row of `sql`, run as [`PG_USER`] on `db`, as text (to
    /// check what the probe left behind).
    pub fn scalar(&self, db: &str, sql: &str) -> String {
        let url = self.url(PG_PASSWORD, db);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            let messages = client.simple_query(sql).await.unwrap();
            messages
                .iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .unwrap_or_else(|| panic!("{sql}: no value"))
        })
    }

    /// The folder the server lives in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown: roll back sessions, checkpoint, exit.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT);
        let _ = self.child.wait();
    }
}
