//! Who may read the tracker's pages, and how they are served: a loopback address by default;
//! any other address only with `--auth` (a bearer token or HTTP basic credentials, RFC 6750
//! and RFC 7617, given as `${VAR}` so the secret never stands on the command line), and on
//! every answer the security headers a page with no script needs (CSP `default-src 'none'`,
//! `nosniff`, `frame-ancestors 'none'`, no referrer, no caching).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};
use crate::units::Redactor;

/// Credentials a request must present.
#[derive(Clone)]
pub enum Auth {
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic base64(user:password)`.
    Basic(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Bearer(_) => "Auth::Bearer(<redacted>)",
            Auth::Basic(_) => "Auth::Basic(<redacted>)",
        })
    }
}

impl Auth {
    /// Parse `--auth`: `bearer:${VAR}` or `basic:USER:${VAR}`. The secret must come from an
    /// environment variable (a literal would show in `ps` and shell history).
    ///
    /// # Errors
    /// A message naming the expected forms, an unset variable, or a literal secret.
    pub fn parse(spec: &str) -> Result<Auth, String> {
        let secret = |text: &str| -> Result<String, String> {
            if !text.contains("${") {
                return Err(
                    "--auth: give the secret as ${VAR} (e.g. 'bearer:${SOAK_TOKEN}', \
                            single-quoted), not literally: a literal shows in ps and shell history"
                        .to_string(),
                );
            }
            let v = Redactor::default()
                .interpolate(text)
                .map_err(|e| format!("--auth: {e}"))?;
            if v.value.is_empty() {
                return Err("--auth: the secret is empty".into());
            }
            Ok(v.value)
        };
        match spec.split_once(':') {
            Some(("bearer", rest)) => Ok(Auth::Bearer(secret(rest)?)),
            Some(("basic", rest)) => match rest.split_once(':') {
                Some((user, pass)) if !user.is_empty() => {
                    Ok(Auth::Basic(format!("{user}:{}", secret(pass)?)))
                }
                _ => Err("--auth basic: expected basic:USER:${VAR}".into()),
            },
            _ => Err("--auth: expected 'bearer:${VAR}' or 'basic:USER:${VAR}'".to_string()),
        }
    }

    /// Whether `headers` carry these credentials (compared as SHA-256 digests, so the time
    /// taken does not depend on how much of the secret matched).
    pub fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let expected = match self {
            Auth::Bearer(t) => format!("Bearer {t}"),
            Auth::Basic(up) => {
                use base64::Engine as _;
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(up)
                )
            }
        };
        Sha256::digest(given.trim().as_bytes()) == Sha256::digest(expected.as_bytes())
    }

    fn challenge(&self) -> &'static str {
        match self {
            Auth::Bearer(_) => "Bearer realm=\"prodready soak\"",
            Auth::Basic(_) => "Basic realm=\"prodready soak\", charset=\"UTF-8\"",
        }
    }
}

/// Check `addr` before binding: a loopback address (`127.0.0.0/8`, `::1`, `localhost`) is
/// always allowed; any other needs `auth`.
///
/// # Errors
/// The reason, naming the address and how to allow it.
pub fn check_bind(addr: &str, auth: Option<&Auth>) -> Result<(), String> {
    let loopback = match addr.parse::<SocketAddr>() {
        Ok(sa) => sa.ip().is_loopback(),
        Err(_) => match addr.rsplit_once(':') {
            Some((host, _)) => {
                host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
            }
            None => false,
        },
    };
    if loopback || auth.is_some() {
        return Ok(());
    }
    Err(format!(
        "--listen {addr}: not a loopback address, and the status page, its API and /metrics \
         would be open to anyone who can reach it; add --auth 'bearer:${{VAR}}' or --auth \
         'basic:USER:${{VAR}}', or listen on 127.0.0.1"
    ))
}

/// The security headers of every answer.
pub fn secure_headers(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "x-frame-options", "DENY");
    set(headers, "referrer-policy", "no-referrer");
    set(headers, "cache-control", "no-store");
}

/// Middleware: refuse a request without the credentials (401 with a challenge), then add the
/// security headers to whatever is answered.
pub async fn guard(auth: Option<Auth>, req: Request, next: Next) -> Response {
    let mut resp = match &auth {
        Some(a) if !a.admits(req.headers()) => {
            let mut r = (StatusCode::UNAUTHORIZED, "authorization required\n").into_response();
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(a.challenge()),
            );
            r
        }
        _ => next.run(req).await,
    };
    secure_headers(resp.headers_mut());
    resp
}

/// Bind `addr` (checked by [`check_bind`]), print `listening on ADDR` as the first stdout line,
/// and serve until `cancel`: `/` (the status page), `/api/v1/status` (its JSON),
/// `/api/v1/schema` (the JSON's schema), `/metrics` (Prometheus) and `/healthz`. Each request
/// reads the store on a blocking thread with its own read connection.
///
/// # Errors
/// [`Error::Usage`] when the address is refused, invalid or cannot be bound.
pub async fn serve(
    addr: &str,
    state: PathBuf,
    auth: Option<Auth>,
    window_ms: i64,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<()>> {
    check_bind(addr, auth.as_ref()).map_err(Error::Usage)?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Error::Usage(format!("--listen {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Error::Usage(format!("--listen {addr}: {e}")))?;
    println!("listening on {local}");
    let read = move |render: fn(&Path, i64) -> Result<(&'static str, String)>| {
        let state = state.clone();
        move || {
            let state = state.clone();
            async move {
                match tokio::task::spawn_blocking(move || render(&state, window_ms)).await {
                    Ok(Ok((ctype, body))) => {
                        (StatusCode::OK, [(header::CONTENT_TYPE, ctype)], body).into_response()
                    }
                    Ok(Err(e)) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response()
                    }
                    Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
                }
            }
        }
    };
    let app = Router::new()
        .route(
            "/",
            get(read(|s, w| {
                Ok((HTML, super::html::page(&super::snapshot(s, w)?)))
            })),
        )
        .route(
            "/api/v1/status",
            get(read(|s, w| Ok((JSON, to_json(&super::snapshot(s, w)?))))),
        )
        .route(
            "/api/v1/schema",
            get(read(|_, _| Ok((JSON, to_json(&super::json_schema()))))),
        )
        .route(
            "/metrics",
            get(read(|s, _| Ok((METRICS, crate::soak::metrics::render(s)?)))),
        )
        .route("/healthz", get(|| async { "ok\n" }))
        .layer(axum::middleware::from_fn(move |req, next| {
            guard(auth.clone(), req, next)
        }));
    Ok(tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { cancel.cancelled().await })
            .await;
    }))
}

const HTML: &str = "text/html; charset=utf-8";
const JSON: &str = "application/json";
const METRICS: &str = "text/plain; version=0.0.4; charset=utf-8";

fn to_json(v: &impl serde::Serialize) -> String {
    serde_json::to_string_pretty(v).expect("status serializes")
}
