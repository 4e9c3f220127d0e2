//! Behaviour 6: a binary that links the runner sees exactly the expected
//! registrations (the `inventory` linker pitfall is handled, not hoped away).

use dbinit_runner::dbinit_core::{registry, CoreError, DatabaseUrl};

fn names<T, N: Into<String>>(entries: &[&T], name: impl Fn(&T) -> N) -> Vec<String> {
    entries.iter().map(|e| name(e).into()).collect()
}

#[test]
fn every_builtin_registration_is_visible_and_nothing_else() {
    dbinit_tests::link();
    let connectors = registry::connectors().expect("connectors");
    assert_eq!(
        names(connectors, |c| c.name()),
        ["mysql", "postgres", "sqlite"]
    );
    assert_eq!(connectors[0].schemes(), ["mysql", "mariadb"]);
    assert_eq!(connectors[1].schemes(), ["postgres", "postgresql"]);
    assert_eq!(connectors[2].schemes(), ["sqlite", "file"]);
    let seeders = registry::seeders().expect("seeders");
    assert_eq!(
        names(seeders, |s| s.name()),
        ["admin_user", "system_roles", "system_tenant"]
    );
    let checks = registry::health_checks().expect("health checks");
    assert_eq!(
        names(checks, |h| h.name()),
        [
            "connectivity",
            "migrations_current",
            "required_tables",
            "seed_data",
            "sqlite_quick_check"
        ]
    );
    let dependencies = registry::dependency_checks().expect("dependency checks");
    assert_eq!(names(dependencies, |d| d.name()), ["redis"]);
    assert!(registry::schema_steps().expect("schema steps").is_empty());
}

#[test]
fn registered_names_match_what_the_plugins_call_themselves() {
    dbinit_tests::link();
    for reg in registry::connectors().unwrap() {
        assert_eq!(reg.make().name(), reg.name());
    }
    for reg in registry::seeders().unwrap() {
        assert_eq!(reg.make().name(), reg.name());
    }
    for reg in registry::health_checks().unwrap() {
        assert_eq!(reg.make().name(), reg.name());
    }
    for reg in registry::dependency_checks().unwrap() {
        assert_eq!(reg.make().name(), reg.name());
    }
}

#[test]
fn unknown_scheme_lists_the_registered_backends() {
    dbinit_tests::link();
    let url = DatabaseUrl::parse("oracle://root:pw@localhost/app").unwrap();
    let err = url.connector().err().expect("no oracle backend");
    assert!(matches!(err, CoreError::UnknownBackend { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        "no backend handles `oracle` urls; registered backends: \
         mysql (mysql, mariadb), postgres (postgres, postgresql), sqlite (sqlite, file)"
    );
    let maria = DatabaseUrl::parse("mariadb://app@localhost/app").unwrap();
    assert_eq!(maria.connector().unwrap().name(), "mysql");
    let pg = DatabaseUrl::parse("host=localhost dbname=app").unwrap();
    assert_eq!(pg.connector().unwrap().name(), "postgres");
    let file = DatabaseUrl::parse("file:app.db").unwrap();
    assert_eq!(file.connector().unwrap().name(), "sqlite");
}
