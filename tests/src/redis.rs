//! A throwaway `redis-server` (Debian's, installed by `cargo xtask test`)
//! on 127.0.0.1 and a free port, with a password, no persistence. It can be
//! killed and started again on the same port. A missing `redis-server` is
//! an error, never a skip.

use std::process::{Child, Command, Stdio};

use crate::pg::free_port;

/// The password the server requires.
pub const PASSWORD: &str = "Redis-Secret-7";

/// A redis-server that may be running or killed.
pub struct Redis {
    port: u16,
    extra: Vec<String>,
    child: Option<Child>,
}

impl Redis {
    /// Starts one on a free port.
    ///
    /// # Panics
    ///
    /// When it cannot be started: Redis tests never skip.
    pub fn start() -> Redis {
        Redis::start_with(&[])
    }

    /// Starts one with more `redis-server` arguments.
    ///
    /// # Panics
    ///
    /// When it cannot be started.
    pub fn start_with(extra: &[&str]) -> Redis {
        let mut redis = Redis {
            port: free_port(),
            extra: extra.iter().map(|s| (*s).to_owned()).collect(),
            child: None,
        };
        redis.restart();
        redis
    }

    /// `redis://:PASSWORD@127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://:{PASSWORD}@127.0.0.1:{}/0", self.port)
    }

    /// Kills it (SIGKILL: like a crash) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (killing it first if running) and
    /// waits until it accepts connections.
    ///
    /// # Panics
    ///
    /// When it does not start within 30 s.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port", &port, "--bind", "127.0.0.1", "--requirepass", PASSWORD, "--save", "",
                "--appendonly", "no", "--daemonize", "no",
            ])
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot start redis-server ({e}): run the suite with `cargo xtask test`, which installs it")
            });
        let child = self.child.insert(child);
        crate::pg::wait_until_listening(self.port, child, "redis-server", String::new);
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}
