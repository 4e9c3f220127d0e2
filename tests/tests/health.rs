//! `health --serve` and the Redis dependency, through the real binary: a
//! real redis-server (with a password) killed and started again under two
//! monitors — one that needs Redis, one that declared a fallback — real
//! HTTP requests to the routes, and `/metrics` through a Prometheus
//! text-format parser.

use std::process::Command;

use dbinit_tests::cli::{self, exit_code, stderr, stdout_json};
use dbinit_tests::http::{metric, parse_metrics, Response, Served};
use dbinit_tests::redis::{Redis, PASSWORD};
use dbinit_tests::SqliteFile;

fn dbinit() -> Command {
    cli::command(env!("CARGO_BIN_EXE_dbinit-demo"))
}

/// A migrated SQLite database (no seeding: `seed_data` is disabled).
fn database() -> (SqliteFile, String) {
    let db = SqliteFile::new();
    let url = db.url().expose_secret().to_owned();
    let out = dbinit()
        .args(["init", "--no-seed", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    (db, url)
}

fn serve(url: &str, redis: Option<&str>, extra: &[&str]) -> Served {
    serve_with(dbinit(), url, redis, extra)
}

/// `health --serve` through `cmd` (the binary, or a wrapper that runs it).
fn serve_with(mut cmd: Command, url: &str, redis: Option<&str>, extra: &[&str]) -> Served {
    cmd.args([
        "health",
        "--serve",
        "127.0.0.1:0",
        "--watch",
        "100ms",
        "--no-seed",
        "--database-url",
        url,
    ])
    .args(extra);
    if let Some(redis) = redis {
        cmd.env("REDIS_URL", redis);
    }
    Served::spawn(cmd, "serving health on http://")
}

/// The status of check `name` in a `/health` body.
fn status_of(response: &Response, name: &str) -> String {
    response.json()["checks"]
        .as_array()
        .and_then(|checks| checks.iter().find(|c| c["name"] == name))
        .map(|c| c["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_default()
}

#[test]
fn redis_is_disabled_healthy_then_fallback_or_unhealthy_as_declared_and_healthy_again() {
    let (_db, url) = database();
    // Unset: disabled, and the service is ready.
    let out = dbinit()
        .args(["health", "--json", "--no-seed", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    let summary = stdout_json(&out);
    let redis = summary["checks"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == "redis"))
        .cloned()
        .expect("a redis check");
    assert_eq!(redis["status"], "disabled", "{summary}");

    let mut server = Redis::start();
    let needs = serve(&url, Some(&server.url()), &[]);
    let copes = serve(
        &url,
        Some(&server.url()),
        &["--dependency-fallback", "redis=sessions are kept in memory"],
    );
    for served in [&needs, &copes] {
        let health = served.wait_for("/health", "redis healthy", |r| {
            status_of(r, "redis") == "healthy"
        });
        assert!(
            health.json()["checks"].to_string().contains("PONG in"),
            "{}",
            health.body
        );
        assert_eq!(served.get("/readyz").status, 200);
    }

    // Scraped while healthy: the metrics parse and say so.
    let metrics = needs.get("/metrics");
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .headers
            .to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text"),
        "{}",
        metrics.headers
    );
    let samples = parse_metrics(&metrics.body);
    let status = |check: &str, status: &str| {
        metric(
            &samples,
            "dbinit_health_check_status",
            &[("check", check), ("status", status)],
        )
    };
    assert_eq!(status("redis", "healthy"), 1.0);
    assert_eq!(status("redis", "fallback"), 0.0);
    assert_eq!(status("connectivity", "healthy"), 1.0);
    assert_eq!(status("seed_data", "disabled"), 1.0);
    assert_eq!(metric(&samples, "dbinit_health_ready", &[]), 1.0);
    assert!(
        metric(
            &samples,
            "dbinit_health_check_latency_seconds",
            &[("check", "redis")]
        ) > 0.0
    );
    assert!(metric(&samples, "dbinit_health_ticks_total", &[]) >= 1.0);

    server.kill();
    let down = needs.wait_for("/health", "redis unhealthy", |r| {
        status_of(r, "redis") == "unhealthy"
    });
    assert_eq!(down.status, 503, "{}", down.body);
    let ready = needs.get("/readyz");
    assert_eq!(ready.status, 503);
    let reasons = ready.json()["not_ready"].to_string();
    assert!(reasons.contains("redis:"), "{reasons}");
    assert_eq!(
        needs.get("/livez").status,
        200,
        "liveness never depends on health"
    );
    let fallback = copes.wait_for("/health", "redis fallback", |r| {
        status_of(r, "redis") == "fallback"
    });
    assert_eq!(fallback.json()["status"], "degraded", "{}", fallback.body);
    assert!(
        fallback
            .body
            .contains("running on the fallback: sessions are kept in memory"),
        "{}",
        fallback.body
    );
    assert_eq!(
        copes.get("/readyz").status,
        200,
        "a declared fallback keeps the service ready"
    );
    let samples = parse_metrics(&needs.get("/metrics").body);
    assert_eq!(metric(&samples, "dbinit_health_ready", &[]), 0.0);
    assert_eq!(
        metric(
            &samples,
            "dbinit_health_check_status",
            &[("check", "redis"), ("status", "unhealthy")]
        ),
        1.0
    );

    server.restart();
    for served in [&needs, &copes] {
        served.wait_for("/health", "redis healthy again", |r| {
            status_of(r, "redis") == "healthy"
        });
        assert_eq!(served.get("/readyz").status, 200);
    }

    let bodies = [
        needs.get("/health").body,
        needs.get("/metrics").body,
        copes.get("/health").body,
    ];
    let (needs_log, copes_log) = (needs.stderr(), copes.stderr());
    assert_eq!(needs.terminate(), Some(0), "{needs_log}");
    assert_eq!(copes.terminate(), Some(0), "{copes_log}");
    let count = |log: &str, needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count(&needs_log, "health: healthy → unhealthy: redis (unhealthy)"),
        1,
        "{needs_log}"
    );
    assert_eq!(count(&needs_log, "health: healthy again"), 1, "{needs_log}");
    assert_eq!(
        count(&copes_log, "health: healthy → degraded: redis (fallback)"),
        1,
        "{copes_log}"
    );
    assert_eq!(count(&copes_log, "health: healthy again"), 1, "{copes_log}");
    for text in bodies.iter().chain([&needs_log, &copes_log]) {
        assert!(
            !text.contains(PASSWORD),
            "the Redis password leaked: {text}"
        );
    }
    assert!(needs_log.contains("redis://***@127.0.0.1:"), "{needs_log}");
}

/// Bad configuration is refused before anything is served: exit 13, the
/// reason, never the secret (not even in `--help`).
#[test]
fn bad_dependency_configuration_is_refused_at_startup() {
    let (_db, url) = database();
    let cases: &[(Option<&str>, &[&str], &str)] = &[
        (
            Some("http://:S3cret-x@127.0.0.1:1"),
            &[],
            "not a usable Redis URL",
        ),
        (
            None,
            &["--dependency-fallback", "cache"],
            "`cache` is not a dependency",
        ),
        (
            None,
            &["--depends-on", "redis=tcp://127.0.0.1:1"],
            "two health checks are named `redis`",
        ),
        (
            None,
            &["--depends-on", "queue=ftp://h:21"],
            "is not supported",
        ),
        (
            None,
            &["--depends-on", "q=tcp://u:S3cret-x@127.0.0.1:1"],
            "has credentials",
        ),
        (
            None,
            &["--depends-on", "q=http://u:S3cret-x@[bad"],
            "is not a URL",
        ),
        (
            None,
            &["--depends-on", "http://u:S3cret-x@h:1/x"],
            "is not NAME=URL",
        ),
        (
            None,
            &["--depends-on", "http://u:S3cret-x=V0@h:1/x"],
            "is not NAME=URL",
        ),
        (
            None,
            &["--depends-on", "q=http://S3cret-x@h:1/"],
            "has credentials",
        ),
        (
            None,
            &["--dependency-fallback", "redis://u:S3cret-x@h:1"],
            "a fallback must name a dependency",
        ),
        (
            None,
            &["--skip-check", "S3cret-x-typo"],
            "is not a health check or dependency",
        ),
    ];
    for (redis, args, expect) in cases {
        for mode in [
            &["--watch", "1s", "--ticks", "1"][..],
            &[],
            &["--serve", "127.0.0.1:0"],
        ] {
            let mut cmd = dbinit();
            cmd.args(["health", "--no-seed", "--database-url", &url])
                .args(mode)
                .args(*args);
            if let Some(redis) = redis {
                cmd.env("REDIS_URL", redis);
            }
            let out = cmd.output().unwrap();
            let err = stderr(&out);
            assert_eq!(exit_code(&out), 13, "{args:?} {mode:?}: {err}");
            assert!(err.contains(expect), "{args:?}: {err}");
            // A skipped check's name is echoed (bounded): it is a name.
            if !args.contains(&"--skip-check") {
                assert!(!err.contains("S3cret-x"), "{err}");
            }
        }
    }
    // The same through the variables; their values never shown by --help.
    let out = dbinit()
        .args(["health", "--no-seed", "--database-url", &url])
        .env("DBINIT_DEPENDS_ON", " q=tcp://u:S3cret-x@127.0.0.1:1 ")
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 13, "{}", stderr(&out));
    assert!(!stderr(&out).contains("S3cret-x"), "{}", stderr(&out));
    let out = dbinit()
        .args(["health", "--help"])
        .env("DBINIT_DEPENDS_ON", "q=http://h:1/?token=S3cret-x")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("S3cret-x"));
}

/// A Redis without `HELLO` (older servers, renamed commands) answers the
/// handshake by quoting it, `AUTH` and the password included: never shown.
#[test]
fn a_redis_that_echoes_the_handshake_never_shows_the_password() {
    let (_db, url) = database();
    let redis = Redis::start_with(&["--rename-command", "HELLO", ""]);
    let out = dbinit()
        .args(["health", "--json", "--no-seed", "--database-url", &url])
        .env("REDIS_URL", format!("{}?protocol=resp3", redis.url()))
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert_eq!(exit_code(&out), 60, "{text}");
    assert!(text.contains("unknown command"), "{text}");
    assert!(!text.contains(PASSWORD), "{text}");
}

/// The generic checks: a TCP port and an HTTP endpoint, up and down.
#[test]
fn tcp_and_http_dependencies_are_checked() {
    let (_db, url) = database();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp = listener.local_addr().unwrap();
    // An HTTP dependency: another `health --serve`, whose /livez answers 200
    // and whose /nothing answers 404.
    let other = serve(&url, None, &[]);
    let out = dbinit()
        .args(["health", "--json", "--no-seed", "--database-url", &url])
        .args(["--depends-on", &format!("queue=tcp://{tcp}")])
        .args([
            "--depends-on",
            &format!("search=http://{}/livez", other.addr),
        ])
        .args([
            "--depends-on",
            &format!("broken=http://{}/nothing", other.addr),
        ])
        .output()
        .unwrap();
    let summary = stdout_json(&out);
    let find = |name: &str| {
        summary["checks"]
            .as_array()
            .and_then(|c| c.iter().find(|c| c["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {summary}"))
    };
    assert_eq!(find("queue")["status"], "healthy", "{summary}");
    assert_eq!(find("search")["status"], "healthy", "{summary}");
    assert!(
        find("search")["detail"]
            .as_str()
            .unwrap()
            .starts_with("HTTP 200"),
        "{summary}"
    );
    assert_eq!(find("broken")["status"], "unhealthy", "{summary}");
    assert!(
        find("broken")["detail"]
            .as_str()
            .unwrap()
            .contains("HTTP 404"),
        "{summary}"
    );
    assert_eq!(
        exit_code(&out),
        60,
        "an unhealthy dependency: {}",
        stderr(&out)
    );
    drop(listener);
    // Through the variables: URLs separated by whitespace (they may hold
    // commas), descriptions by `;` (they may too).
    let out = dbinit()
        .args(["health", "--json", "--no-seed", "--database-url", &url])
        .env(
            "DBINIT_DEPENDS_ON",
            format!(
                " queue=tcp://{tcp}\n search=http://{}/livez?fields=a,b ",
                other.addr
            ),
        )
        .env(
            "DBINIT_DEPENDENCY_FALLBACK",
            "queue=jobs run inline, one by one; ",
        )
        .output()
        .unwrap();
    let summary = stdout_json(&out);
    assert_eq!(exit_code(&out), 0, "a fallback is not a failure: {summary}");
    assert_eq!(summary["status"], "degraded", "{summary}");
    let text = summary.to_string();
    assert!(
        text.contains("running on the fallback: jobs run inline, one by one"),
        "{text}"
    );
    assert!(
        text.contains("fields=***"),
        "query values are hidden: {text}"
    );
}

/// A client that never finishes its request does not hold a stopping
/// server past its drain time (an orchestrator's grace period would end in
/// SIGKILL): SIGTERM still exits 0.
#[test]
fn sigterm_stops_the_server_despite_a_client_that_never_finishes() {
    use std::io::Write;
    let (_db, url) = database();
    let served = serve(&url, None, &[]);
    served.wait_for("/readyz", "ready", |r| r.status == 200);
    let mut slow = std::net::TcpStream::connect(&served.addr).unwrap();
    slow.write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(100));
    let log = served.stderr();
    assert_eq!(served.terminate(), Some(0), "{log}");
}

/// Clients cannot take the health server down: too many connections close
/// the oldest (logged once) and `/livez` still answers; a request whose
/// headers never finish, an idle kept-alive connection and one that stops
/// in the middle of its body are closed within the timeouts. The cap stays
/// under the descriptor limit (160 here: a cap of 96).
#[test]
fn the_health_server_bounds_slow_idle_and_too_many_clients() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let (_db, url) = database();
    let mut limited = dbinit_tests::cli::command("prlimit");
    limited.args(["--nofile=160", "--", env!("CARGO_BIN_EXE_dbinit-demo")]);
    let served = serve_with(limited, &url, None, &[]);
    served.wait_for("/readyz", "ready", |r| r.status == 200);
    let connect = || {
        let stream = TcpStream::connect(&served.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        stream
    };
    // Gone: the server closed it (end of stream or a reset), not a timeout.
    let closed = |stream: &mut TcpStream| {
        let mut byte = [0u8; 256];
        loop {
            match stream.read(&mut byte) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(e) => {
                    return !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    )
                }
            }
        }
    };
    // Many more than the cap, doing nothing: the oldest make room.
    let crowd: Vec<TcpStream> = (0..300).map(|_| connect()).collect();
    for _ in 0..5 {
        let live = served.get("/livez");
        assert_eq!(live.status, 200, "{}", served.stderr());
    }
    let log = served.stderr();
    assert_eq!(
        log.matches("connection cap reached: 96 connections open")
            .count(),
        1,
        "{log}"
    );
    drop(crowd);

    let mut slowloris = connect();
    slowloris
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let mut stalled_body = connect();
    stalled_body
        .write_all(b"POST /livez HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123")
        .unwrap();
    let mut kept_alive = connect();
    kept_alive
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    for (name, stream) in [
        ("slow headers", &mut slowloris),
        ("a stalled body", &mut stalled_body),
        ("an idle kept-alive connection", &mut kept_alive),
    ] {
        assert!(closed(stream), "{name} was not closed");
        let after = started.elapsed();
        assert!(
            (Duration::from_secs(8)..Duration::from_secs(16)).contains(&after),
            "{name} closed after {after:?}, not by its timeout (10 s)"
        );
    }
    assert_eq!(served.get("/livez").status, 200);
    assert_eq!(served.terminate(), Some(0), "{log}");
}
