//! [`Endpoint`]: the generic dependency check for any service reachable
//! over TCP (a TCP connect) or HTTP (a `GET` answered 2xx or 3xx).

use std::time::Duration;

use dbinit_core::{async_trait, CoreError, DependencyCheck, HealthOutcome};
use tokio::time::Instant;

/// A dependency checked by connecting to it (`tcp://host:port`) or by a
/// `GET` (`http://host:port/path`, feature `http`).
///
/// ```
/// use dbinit_runner::dependency::Endpoint;
///
/// let queue = Endpoint::parse("queue=tcp://127.0.0.1:5672")?;
/// let search = Endpoint::parse("search=http://127.0.0.1:9200/_cluster/health");
/// # let _ = (queue, search);
/// # Ok::<(), dbinit_core::CoreError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Endpoint {
    name: String,
    host: String,
    port: u16,
    /// The request target for HTTP (`/path?query`), `None` for TCP.
    path: Option<String>,
    /// The URL as shown: secrets redacted.
    shown: String,
}

impl Endpoint {
    /// `NAME=URL`, the form of the CLI's `--depends-on`.
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidConfig`] for a missing `=`, an invalid name, or
    /// what [`Endpoint::new`] refuses.
    pub fn parse(spec: &str) -> Result<Self, CoreError> {
        match spec.split_once('=') {
            // A `=` inside a URL (a password's base64 padding) is not NAME=.
            Some((name, url)) if !name.contains([':', '/', '@', '?', '#']) => {
                Endpoint::new(name, url)
            }
            _ => Err(invalid(format!(
                "`{}` is not NAME=URL (for example queue=tcp://127.0.0.1:5672)",
                dbinit_core::redact_service_url(spec.trim())
            ))),
        }
    }

    /// A dependency named `name` at `url`: `tcp://host:port`, or
    /// `http://host[:port]/path` (feature `http`; HTTPS is not built in:
    /// check its port with `tcp://`, or write a [`DependencyCheck`]).
    ///
    /// # Errors
    ///
    /// [`CoreError::InvalidConfig`] naming what is wrong: a name other than
    /// letters, digits, `_`, `-` and `.`; an unparsable URL; another
    /// scheme; a missing host or port; credentials in the URL.
    pub fn new(name: &str, url: &str) -> Result<Self, CoreError> {
        let shown = dbinit_core::redact_service_url(url.trim());
        let valid_name = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        if !valid_name {
            // Not echoed: what is not a name may be anything.
            return Err(invalid(
                "a dependency name is 1 to 64 letters, digits, `_`, `-` and `.`".to_owned(),
            ));
        }
        let parsed = url::Url::parse(url.trim())
            .map_err(|e| invalid(format!("{name}: `{shown}` is not a URL ({e})")))?;
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(format!(
                "{name}: `{shown}` has credentials; the built-in check sends none"
            )));
        }
        let host = match parsed.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(invalid(format!("{name}: `{shown}` has no host"))),
        };
        let path = match parsed.scheme() {
            "tcp"
                if !matches!(parsed.path(), "" | "/")
                    || parsed.query().is_some()
                    || parsed.fragment().is_some() =>
            {
                return Err(invalid(format!(
                    "{name}: `{shown}`: a tcp:// dependency is a host and a port, nothing more"
                )))
            }
            "tcp" => None,
            "http" if cfg!(feature = "http") => Some(match parsed.query() {
                Some(q) => format!("{}?{q}", parsed.path()),
                None => parsed.path().to_owned(),
            }),
            "http" => {
                return Err(invalid(format!(
                    "{name}: HTTP checks need dbinit-runner's `http` feature"
                )))
            }
            other => {
                return Err(invalid(format!(
                    "{name}: `{other}://` is not supported: use tcp://host:port or http://host:port/path"
                )))
            }
        };
        let port = parsed
            .port_or_known_default()
            .filter(|p| *p != 0)
            .ok_or_else(|| invalid(format!("{name}: `{shown}` has no port")))?;
        Ok(Endpoint {
            name: name.to_owned(),
            host,
            port,
            path,
            shown,
        })
    }

    async fn probe(&self, timeout: Duration) -> Result<String, String> {
        let started = Instant::now();
        let connect = tokio::net::TcpStream::connect((self.host.as_str(), self.port));
        let stream = match tokio::time::timeout(timeout, connect).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(format!("cannot connect: {e}")),
            Err(_) => return Err(format!("no connection within {}", secs(timeout))),
        };
        let Some(path) = &self.path else {
            return Ok(format!("connected in {}", ms(started.elapsed())));
        };
        let left = timeout.saturating_sub(started.elapsed());
        let status = match tokio::time::timeout(left, self.get(stream, path)).await {
            Ok(result) => result?,
            Err(_) => return Err(format!("no answer within {}", secs(timeout))),
        };
        let elapsed = ms(started.elapsed());
        match status {
            200..=399 => Ok(format!("HTTP {status} in {elapsed}")),
            _ => Err(format!("HTTP {status} in {elapsed}")),
        }
    }

    /// One `GET` on `stream`; the response's status.
    #[cfg(feature = "http")]
    async fn get(&self, stream: tokio::net::TcpStream, path: &str) -> Result<u16, String> {
        use http_body_util::Empty;
        use hyper::body::Bytes;

        let io = hyper_util::rt::TokioIo::new(stream);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| format!("HTTP handshake failed: {e}"))?;
        let connection = tokio::spawn(connection);
        let authority = match self.host.contains(':') {
            true => format!("[{}]:{}", self.host, self.port),
            false => format!("{}:{}", self.host, self.port),
        };
        let request = hyper::Request::get(path)
            .header(hyper::header::HOST, authority)
            .header(hyper::header::USER_AGENT, "dbinit-health")
            .body(Empty::<Bytes>::new())
            .map_err(|e| format!("invalid request: {e}"))?;
        let result = sender.send_request(request).await;
        connection.abort();
        result
            .map(|response| response.status().as_u16())
            .map_err(|e| format!("HTTP request failed: {e}"))
    }

    /// Without the `http` feature [`Endpoint::new`] refuses `http://`.
    #[cfg(not(feature = "http"))]
    async fn get(&self, _: tokio::net::TcpStream, _: &str) -> Result<u16, String> {
        Err("HTTP checks need dbinit-runner's `http` feature".to_owned())
    }
}

#[async_trait]
impl DependencyCheck for Endpoint {
    fn name(&self) -> &str {
        &self.name
    }

    fn target(&self) -> String {
        self.shown.clone()
    }

    async fn check(&self, timeout: Duration) -> HealthOutcome {
        match self.probe(timeout).await {
            Ok(detail) => HealthOutcome::healthy(format!("{detail} ({})", self.shown)),
            Err(detail) => HealthOutcome::unhealthy(format!("{}: {detail}", self.shown)),
        }
    }
}

fn invalid(reason: String) -> CoreError {
    CoreError::InvalidConfig {
        setting: "dependency".to_owned(),
        reason,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn secs(d: Duration) -> String {
    format!("{:.1} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_are_checked_and_never_echo_a_secret() {
        let tcp = Endpoint::parse("queue=tcp://127.0.0.1:5672").unwrap();
        assert_eq!(
            (tcp.host.as_str(), tcp.port, tcp.path),
            ("127.0.0.1", 5672, None)
        );
        let v6 = Endpoint::parse("q=tcp://[::1]:6000").unwrap();
        assert_eq!(v6.host, "::1");
        let spec = "s=http://h:9/x?access_token=Sekr3t&sig=Sekr3t&a";
        #[cfg(feature = "http")]
        {
            let http = Endpoint::parse(spec).unwrap();
            assert_eq!(
                http.path.as_deref(),
                Some("/x?access_token=Sekr3t&sig=Sekr3t&a")
            );
            assert_eq!(http.target(), "http://h:9/x?access_token=***&sig=***&***");
        }
        #[cfg(not(feature = "http"))]
        assert!(Endpoint::parse(spec)
            .unwrap_err()
            .to_string()
            .contains("`http` feature"));
        for (spec, expect) in [
            ("no-equals-sign", "is not NAME=URL"),
            ("=tcp://h:1", "a dependency name is"),
            ("bad name=tcp://h:1", "a dependency name is"),
            ("http://user:Sekr3t=V0@h:1/", "is not NAME=URL"),
            ("q=http://ghp_Sekr3t@h:1/", "has credentials"),
            ("q=tcp://h:1#Sekr3t", "nothing more"),
            ("q=tcp://h", "has no port"),
            ("q=ftp://h:21", "is not supported"),
            ("q=not a url", "is not a URL"),
            ("q=tcp://u:Sekr3t@h:1", "has credentials"),
            ("q=tcp://h:0", "has no port"),
            ("q=tcp://h:1/path", "nothing more"),
            ("q=http://u:Sekr3t@[bad", "is not a URL"),
        ] {
            let err = Endpoint::parse(spec).unwrap_err().to_string();
            assert!(err.contains(expect), "{spec}: {err}");
            assert!(!err.contains("Sekr3t"), "{err}");
        }
    }
}
