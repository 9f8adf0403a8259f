//! How orders travel (`transport = "http" | "websocket" | "fix"`) and the URLs of each: the
//! schemes a transport accepts and the splitting of a URL into TLS or not, host, port and the
//! path (whose placeholders must survive, so no URL library parses it).

use super::keys::KeyError;

/// How orders travel (`transport`), for the `latency` probe and the soak's `order` monitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP/1.1 or HTTP/2 requests.
    Http,
    /// JSON messages on a WebSocket (RFC 6455).
    WebSocket,
    /// FIX 4.2 / 4.4 tag=value sessions.
    Fix,
}

impl Transport {
    /// Parse the `transport` key: `"http"` (the default), `"websocket"` or `"fix"`.
    ///
    /// # Errors
    /// A [`KeyError`] on `transport` for anything else.
    pub fn parse(text: Option<&str>) -> Result<Transport, KeyError> {
        match text {
            None | Some("http") => Ok(Transport::Http),
            Some("websocket") => Ok(Transport::WebSocket),
            Some("fix") => Ok(Transport::Fix),
            Some(other) => Err(KeyError::new(
                "transport",
                format!("expected \"http\", \"websocket\" or \"fix\", found \"{other}\""),
            )),
        }
    }

    /// `expected an http:// or https:// URL` and the like, for a URL of another scheme.
    pub fn expected_url(self) -> String {
        let (plain, secure) = self.schemes();
        let article = if self == Transport::Http { "an" } else { "a" };
        format!("expected {article} {plain}:// or {secure}:// URL")
    }

    /// The URL schemes: plain, then TLS.
    pub fn schemes(self) -> (&'static str, &'static str) {
        match self {
            Transport::Http => ("http", "https"),
            Transport::WebSocket => ("ws", "wss"),
            Transport::Fix => ("fix+tcp", "fix+tls"),
        }
    }
}

/// Split a URL of the transport's schemes (`http://`/`https://`, `ws://`/`wss://`) into TLS or
/// not, host, port and the raw path-and-query text (placeholders intact; `url::Url` would
/// percent-encode the braces).
///
/// # Errors
/// A message saying what was expected.
pub fn split_url(url: &str, transport: Transport) -> Result<(bool, String, u16, String), String> {
    let (plain, secure) = transport.schemes();
    let (tls, rest) = if let Some(r) = url.strip_prefix(&format!("{plain}://")) {
        (false, r)
    } else if let Some(r) = url.strip_prefix(&format!("{secure}://")) {
        (true, r)
    } else {
        let hint = match transport {
            Transport::Http if url.starts_with("ws") => {
                " (ws:// and wss:// need transport = \"websocket\")"
            }
            _ => "",
        };
        return Err(format!("{}{hint}", transport.expected_url()));
    };
    let cut = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..cut];
    let mut path = rest[cut..].to_string();
    if path.is_empty() {
        path = "/".into();
    } else if path.starts_with('?') {
        path = format!("/{path}");
    }
    if path.contains('#') {
        return Err("a URL fragment (#…) is never sent; remove it".into());
    }
    let scheme = if tls { secure } else { plain };
    let parsed = reqwest::Url::parse(&format!("{scheme}://{authority}/"))
        .map_err(|e| format!("invalid URL: {e}"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| "expected a host in the URL".to_string())?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("credentials in the URL are not supported; use headers".into());
    }
    let port = parsed
        .port_or_known_default()
        .unwrap_or(if tls { 443 } else { 80 });
    Ok((tls, host, port, path))
}

/// A `fix+tcp://HOST:PORT` or `fix+tls://HOST:PORT` URL: TLS or not, host, port.
///
/// # Errors
/// A message saying what was expected.
pub fn split_fix_url(url: &str) -> Result<(bool, String, u16), String> {
    let (tls, host, port, path) = split_url(url, Transport::Fix)?;
    if path != "/" {
        return Err("a FIX URL is fix+tcp://HOST:PORT with nothing after the port".into());
    }
    // FIX has no well-known port, so the URL must name one.
    let authority = url
        .split_once("://")
        .map_or("", |(_, a)| a.trim_end_matches('/'));
    if authority
        .rsplit_once(':')
        .is_none_or(|(_, p)| p.parse::<u16>().is_err())
    {
        return Err("expected a port: FIX has no default port (e.g. :9878)".into());
    }
    Ok((tls, host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_path_keeps_placeholders_and_host_port() {
        let http = Transport::Http;
        let (tls, h, port, path) =
            split_url("http://localhost:8080/a/{{seq}}?q={{uuid}}", http).unwrap();
        assert_eq!(
            (tls, h.as_str(), port, path.as_str()),
            (false, "localhost", 8080, "/a/{{seq}}?q={{uuid}}")
        );
        assert_eq!(split_url("http://h", http).unwrap().3, "/");
        let (tls, _, port, _) = split_url("https://h/", http).unwrap();
        assert_eq!((tls, port), (true, 443));
        assert!(split_url("ftp://h/", http).is_err());
        assert!(split_url("ws://h/", http).is_err());
        let (tls, _, port, _) = split_url("wss://h/ws/orders", Transport::WebSocket).unwrap();
        assert_eq!((tls, port), (true, 443));
    }
}
