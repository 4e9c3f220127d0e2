//! The example service's health routes while its PostgreSQL server stops
//! and starts again: `/readyz` turns 503 within two monitor ticks, `/livez`
//! stays 200, one log line for the outage and one for the recovery, and
//! `/metrics` (parsed as Prometheus text) reports the init.

use dbinit_tests::http::{metric, parse_metrics, Served};
use dbinit_tests::pg::{Cluster, ClusterOptions};

fn ticks(service: &Served) -> u64 {
    service.get("/health").json()["ticks"]
        .as_u64()
        .expect("ticks")
}

#[test]
fn a_postgres_outage_turns_readyz_503_and_back_while_livez_stays_up() {
    let cluster = Cluster::new(ClusterOptions::default()).expect("initdb");
    cluster.start().expect("start the server");
    let mut command = dbinit_tests::cli::command(env!("CARGO_BIN_EXE_dbinit-example-service"));
    command
        .arg("127.0.0.1:0")
        .env("DATABASE_URL", cluster.url("notes"))
        .env("HEALTH_INTERVAL_MS", "200");
    let service = Served::spawn(command, "listening on ");
    service.wait_for("/readyz", "ready", |r| r.status == 200);

    let samples = parse_metrics(&service.get("/metrics").body);
    assert_eq!(metric(&samples, "dbinit_init_success", &[]), 1.0);
    assert_eq!(metric(&samples, "dbinit_migrations_applied", &[]), 1.0);
    assert!(metric(&samples, "dbinit_init_duration_seconds", &[]) > 0.0);
    assert_eq!(
        metric(
            &samples,
            "dbinit_health_check_status",
            &[("check", "connectivity"), ("status", "healthy")]
        ),
        1.0
    );

    cluster.stop("fast").expect("stop the server");
    let stopped_at = ticks(&service);
    let down = service.wait_for("/readyz", "not ready", |r| r.status == 503);
    let reasons = down.json()["not_ready"].to_string();
    assert!(reasons.contains("connectivity:"), "{reasons}");
    let first_failing = ticks(&service);
    // The tick running as the server stopped may still pass; the next fails.
    assert!(
        first_failing <= stopped_at + 2,
        "503 only at tick {first_failing}, server down after tick {stopped_at}"
    );
    for _ in 0..5 {
        assert_eq!(
            service.get("/livez").status,
            200,
            "liveness never touches the database"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(
        service.get("/notes/welcome").status,
        503,
        "the handlers see the outage too"
    );

    cluster.start().expect("start the server again");
    service.wait_for("/readyz", "ready again", |r| r.status == 200);
    let log = service.stderr();
    let count = |needle: &str| log.lines().filter(|l| l.contains(needle)).count();
    assert_eq!(
        count("health: healthy → unhealthy: connectivity (unhealthy)"),
        1,
        "{log}"
    );
    assert_eq!(count("health: healthy again"), 1, "{log}");
    assert!(!log.contains(dbinit_tests::pg::SUPERUSER_PASSWORD), "{log}");
}
