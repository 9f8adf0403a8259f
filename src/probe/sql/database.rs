//! Where rows come from: [`Database`] (a SQLite file or a PostgreSQL server), [`query`], the
//! one async entry point that runs a read-only query against either and returns [`Rows`], and
//! [`SqlError`], which names the database and the query. Usable without the item machinery:
//! a drill can build a [`Database`], call [`query`] and judge the rows with
//! [`super::check`].

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use super::{Rows, SqlError, postgres, sqlite};
use crate::units::Interpolated;

/// A database to query, validated.
#[derive(Debug, Clone)]
pub enum Database {
    /// A SQLite file, opened read-only.
    Sqlite {
        /// The file; a relative path resolves against the process's working folder (the
        /// probe resolves it against the checklist's folder first).
        path: PathBuf,
        /// How messages name it: the path as written.
        display: String,
    },
    /// A PostgreSQL server, queried inside a `READ ONLY` transaction.
    Postgres {
        /// Connection settings parsed from the URL (with secrets resolved).
        config: Box<tokio_postgres::Config>,
        /// How messages name it: the URL as written, a literal password masked as `***`.
        display: String,
    },
}

impl Database {
    /// A SQLite file named `display` in messages.
    pub fn sqlite(path: impl Into<PathBuf>, display: impl Into<String>) -> Database {
        Database::Sqlite {
            path: path.into(),
            display: display.into(),
        }
    }

    /// A PostgreSQL server from a `postgres://` or `postgresql://` URL
    /// (`postgres://user:password@host:port/dbname?connect_timeout=…`), as interpolated from
    /// the checklist: `url.value` is connected to, `url.display` is shown with a literal
    /// password masked.
    ///
    /// # Errors
    /// A message for another scheme, a URL tokio-postgres cannot parse, no host, or
    /// `sslmode=require` (TLS to PostgreSQL is not supported yet).
    pub fn postgres(url: &Interpolated) -> Result<Database, String> {
        let display = mask_password(&url.display);
        if !(url.value.starts_with("postgres://") || url.value.starts_with("postgresql://")) {
            return Err(format!(
                "expected a postgres:// or postgresql:// URL, got \"{display}\""
            ));
        }
        let config = tokio_postgres::Config::from_str(&url.value)
            .map_err(|e| format!("{display}: {}", crate::units::error_chain(&e)))?;
        if config.get_hosts().is_empty() {
            return Err(format!(
                "{display}: expected a host, e.g. postgres://user@127.0.0.1:5432/db"
            ));
        }
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(format!(
                "{display}: sslmode=require: TLS to PostgreSQL is not supported yet \
                 (use sslmode=disable or prefer on a trusted network)"
            ));
        }
        Ok(Database::Postgres {
            config: Box::new(config),
            display,
        })
    }

    /// How messages and reports name this database (never with a literal password).
    pub fn display(&self) -> &str {
        match self {
            Database::Sqlite { display, .. } | Database::Postgres { display, .. } => display,
        }
    }

    /// This database with a relative SQLite path resolved against `dir`.
    pub fn resolved(&self, dir: &Path) -> Database {
        match self {
            Database::Sqlite { path, display } if path.is_relative() => {
                Database::sqlite(dir.join(path), display.clone())
            }
            other => other.clone(),
        }
    }
}

/// Run `sql` read-only against `db` and return its rows.
///
/// `timeout` is how long the database may make us wait: for SQLite, the busy timeout on a
/// writer's lock; for PostgreSQL, the connect timeout and the `statement_timeout` (the whole
/// exchange is abandoned after twice this plus 5 s). SQLite work runs on tokio's blocking pool, so
/// dropping the future abandons it.
///
/// # Errors
/// A [`SqlError`] naming the database (and the query once connected).
pub async fn query(db: &Database, sql: &str, timeout: Duration) -> Result<Rows, SqlError> {
    match db {
        Database::Sqlite { path, display } => {
            let (path, display, sql) = (path.clone(), display.clone(), sql.to_string());
            tokio::task::spawn_blocking(move || sqlite::query(&path, &display, &sql, timeout))
                .await
                .unwrap_or_else(|e| {
                    Err(SqlError::Connect {
                        db: db.display().to_string(),
                        cause: format!("the SQLite reader panicked: {e}"),
                    })
                })
        }
        Database::Postgres { config, display } => {
            postgres::query(config, display, sql, timeout).await
        }
    }
}

/// `url` with a literal password masked as `***`, in the user-info (`user:pw@`) and in a
/// `password=` parameter; a `${VAR}` reference is kept, it shows no secret.
fn mask_password(url: &str) -> String {
    let mask = |pw: &str| {
        if pw.starts_with("${") && pw.ends_with('}') {
            pw.to_string()
        } else {
            "***".to_string()
        }
    };
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let authority = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => match userinfo.split_once(':') {
            Some((user, pw)) => format!("{user}:{}@{hosts}", mask(pw)),
            None => authority.to_string(),
        },
        None => authority.to_string(),
    };
    let tail = match tail.split_once('?') {
        Some((path, params)) => {
            let params: Vec<String> = params
                .split('&')
                .map(|p| match p.split_once('=') {
                    Some(("password", pw)) => format!("password={}", mask(pw)),
                    _ => p.to_string(),
                })
                .collect();
            format!("{path}?{}", params.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{scheme}://{authority}{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_literal_password_is_masked_and_a_reference_kept() {
        for (url, shown) in [
            (
                "postgres://app:s3cret@127.0.0.1:5432/db",
                "postgres://app:***@127.0.0.1:5432/db",
            ),
            (
                "postgres://app:${PGPASSWORD}@db:5432/db",
                "postgres://app:${PGPASSWORD}@db:5432/db",
            ),
            (
                "postgresql://app@h/db?password=s3cret&sslmode=disable",
                "postgresql://app@h/db?password=***&sslmode=disable",
            ),
            ("postgres://h", "postgres://h"),
        ] {
            assert_eq!(mask_password(url), shown);
        }
    }

    #[test]
    fn only_postgres_urls_with_a_host_and_without_required_tls_are_accepted() {
        let db = |url: &str| Database::postgres(&Interpolated::literal(url));
        let ok = db("postgresql://app:pw@127.0.0.1:5433/state").unwrap();
        assert_eq!(ok.display(), "postgresql://app:***@127.0.0.1:5433/state");
        assert!(
            db("mysql://app@h/db")
                .unwrap_err()
                .contains("expected a postgres://")
        );
        assert!(
            db("postgres:///db")
                .unwrap_err()
                .contains("expected a host")
        );
        assert!(
            db("postgres://h/db?sslmode=require")
                .unwrap_err()
                .contains("not supported yet")
        );
        let bad_port = db("postgres://app:pw@h:notaport/db").unwrap_err();
        assert!(bad_port.contains("port"), "{bad_port}");
        assert!(!bad_port.contains("pw@"), "{bad_port}");
    }
}
