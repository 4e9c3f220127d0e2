//! A plain HTTP/1.1 GET for tests of the services' routes.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A response: status code and body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, one `name: value` per line, as sent.
    pub headers: String,
    /// The body.
    pub body: String,
}

impl Response {
    /// The body as JSON.
    ///
    /// # Panics
    ///
    /// When it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// `GET path` on `addr` (`127.0.0.1:PORT`), with `Connection: close`.
///
/// # Panics
///
/// When the connection or the response fails (a 5 s timeout).
pub fn get(addr: &str, path: &str) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("response");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let (status_line, headers) = head.split_once("\r\n").unwrap_or((head, ""));
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {status_line:?}"));
    Response {
        status,
        headers: headers.to_owned(),
        body: body.to_owned(),
    }
}

/// A server process under test: the address it printed on stdout, its
/// stderr collected as it runs. Killed on drop.
pub struct Served {
    child: std::process::Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Served {
    /// Spawns `command` and waits for its stdout line `{prefix}ADDR`.
    ///
    /// # Panics
    ///
    /// When it exits or prints something else first.
    pub fn spawn(mut command: std::process::Command, prefix: &str) -> Served {
        use std::io::BufRead;
        use std::process::Stdio;

        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the server");
        let stderr = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        std::thread::spawn({
            let stderr = stderr.clone();
            move || {
                for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
                    if let Ok(mut s) = stderr.lock() {
                        s.push_str(&line);
                        s.push('\n');
                    }
                }
            }
        });
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout");
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let Some(addr) = line.trim().strip_prefix(prefix) else {
            let _ = child.kill();
            let _ = child.wait();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "the server did not start: {line:?}\n{}",
                stderr.lock().unwrap()
            );
        };
        Served {
            addr: addr.to_owned(),
            child,
            stderr,
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Response {
        get(&self.addr, path)
    }

    /// Polls `GET path` every 20 ms until `done` holds; its response.
    ///
    /// # Panics
    ///
    /// After 60 s, with the last response and the server's stderr.
    pub fn wait_for(&self, path: &str, what: &str, done: impl Fn(&Response) -> bool) -> Response {
        let started = std::time::Instant::now();
        loop {
            let response = self.get(path);
            if done(&response) {
                return response;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "{what}: not within 60 s; last {path}: {response:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM and waits; the exit code.
    pub fn terminate(mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let status = self.child.wait().ok()?;
        // Let the reader thread drain the pipe.
        std::thread::sleep(Duration::from_millis(50));
        status.code()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Checks `text` as the Prometheus text format with the `prometheus-parse`
/// parser: every line must be a sample, a `# HELP`/`# TYPE` (or
/// OpenMetrics' `# UNIT`/`# EOF`), none ignored. Returns the samples.
///
/// # Panics
///
/// On a line the parser does not understand.
pub fn parse_metrics(text: &str) -> Vec<prometheus_parse::Sample> {
    use prometheus_parse::LineInfo;
    for line in text.lines() {
        let openmetrics = line == "# EOF" || line.starts_with("# UNIT ");
        assert!(
            openmetrics || !matches!(LineInfo::parse(line), LineInfo::Ignored),
            "not Prometheus text: {line:?}\n{text}"
        );
    }
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned())))
        .expect("parse metrics")
        .samples
}

/// The value of the sample `name` whose labels include `labels`.
///
/// # Panics
///
/// When there is no such sample, or it is not a plain number.
pub fn metric(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let sample = samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .unwrap_or_else(|| panic!("no sample {name} {labels:?} in {samples:#?}"));
    match sample.value {
        prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Untyped(v) => v,
        ref other => panic!("{name}: {other:?}"),
    }
}
