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

fn xtask() -> Command {
    cli::command(env!("CARGO_BIN_EXE_xtask"))
}

/// A migrated SQLite database (no seeding: `seed_data` is disabled).
fn database() -> (SqliteFile, String) {
    let db = SqliteFile::new();
    let url = db.url().expose_secret().to_owned();
    let out = xtask()
        .args(["init", "--no-seed", "--database-url", &url])
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 0, "{}", stderr(&out));
    (db, url)
}

fn serve(url: &str, redis: Option<&str>, extra: &[&str]) -> Served {
    let mut cmd = xtask();
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
    let out = xtask()
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
    assert!(needs_log.contains("redis://:***@127.0.0.1:"), "{needs_log}");
}

/// Bad configuration is refused before anything is served: exit 13, the
/// reason, never the secret.
#[test]
fn bad_dependency_configuration_is_refused_at_startup() {
    let (_db, url) = database();
    for (redis, args, expect) in [
        (
            Some("http://:S3cret-x@127.0.0.1:1"),
            &[][..],
            "not a usable Redis URL",
        ),
        (
            None,
            &["--dependency-fallback", "cache"][..],
            "`cache` is not a dependency",
        ),
        (
            None,
            &["--depends-on", "redis=tcp://127.0.0.1:1"][..],
            "two health checks are named `redis`",
        ),
    ] {
        let mut cmd = xtask();
        cmd.args([
            "health",
            "--watch",
            "1s",
            "--ticks",
            "1",
            "--no-seed",
            "--database-url",
            &url,
        ])
        .args(args);
        if let Some(redis) = redis {
            cmd.env("REDIS_URL", redis);
        }
        let out = cmd.output().unwrap();
        let err = stderr(&out);
        assert_eq!(exit_code(&out), 13, "{args:?}: {err}");
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(!err.contains("S3cret-x"), "{err}");
    }
    // clap refuses a malformed --depends-on itself (usage error).
    let out = xtask()
        .args([
            "health",
            "--depends-on",
            "queue=ftp://h:21",
            "--database-url",
            &url,
        ])
        .output()
        .unwrap();
    assert_eq!(exit_code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is not supported"),
        "{}",
        stderr(&out)
    );
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
    let out = xtask()
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
    let out = xtask()
        .args(["health", "--json", "--no-seed", "--database-url", &url])
        .args(["--depends-on", &format!("queue=tcp://{tcp}")])
        .args(["--dependency-fallback", "queue=jobs run inline"])
        .output()
        .unwrap();
    let summary = stdout_json(&out);
    assert_eq!(exit_code(&out), 0, "a fallback is not a failure: {summary}");
    assert!(summary.to_string().contains("\"fallback\""), "{summary}");
}
