//! Property tests of URL parsing with every backend linked, each reading
//! the URLs it claims (fixed seed, so a failure reproduces): it never
//! panics, redaction holds for every input and every backend's form, and
//! valid URLs round-trip through their display.

use dbinit_runner::dbinit_core::{redact, DatabaseUrl, ErrorKind};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

fn config() -> Config {
    Config {
        cases: 4000,
        rng_seed: RngSeed::Fixed(0x0db1_1417),
        failure_persistence: None,
        ..Config::default()
    }
}

/// A password that cannot occur by accident elsewhere in the URL.
fn password() -> impl Strategy<Value = String> {
    let part = "[a-z0-9!$%&'()*+,;=~._/:@?#-]{0,12}";
    (part, part).prop_map(|(a, b)| format!("Zq{a}Mk{b}Xv"))
}

fn word() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9_]{0,11}"
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn never_panics(input in any::<String>()) {
        dbinit_tests::link();
        let _ = DatabaseUrl::parse(&input);
        let _ = redact(&input);
    }

    #[test]
    fn never_panics_on_url_shaped_noise(input in "(sqlite|file|postgres|postgresql|mysql|mariadb)?:?/{0,3}[ -~]{0,40}") {
        dbinit_tests::link();
        if let Ok(url) = DatabaseUrl::parse(&input) {
            let _ = (url.to_string(), format!("{url:?}"), url.is_keywords(), url.scheme());
        }
    }

    #[test]
    fn passwords_in_urls_are_never_shown(
        scheme in prop_oneof!["postgres", "postgresql", "mysql", "mariadb"],
        user in word(),
        host in word(),
        db in word(),
        pw in password(),
    ) {
        dbinit_tests::link();
        let encoded: String = url::form_urlencoded::byte_serialize(pw.as_bytes()).collect();
        for input in [
            format!("{scheme}://{user}:{encoded}@{host}:5432/{db}"),
            format!("{scheme}://{user}@{host}/{db}?password={encoded}"),
            format!("{scheme}://{user}:{pw}@{host}/{db}"),
        ] {
            let shown = match DatabaseUrl::parse(&input) {
                Ok(url) => format!("{url} {url:?} {}", url.scheme()),
                Err(e) => format!("{e} {e:?}"),
            };
            // The markers are upper case; nothing else in the URL is, so
            // any part of the password that leaks carries one of them.
            let redacted = redact(&input);
            for marker in ["Zq", "Mk", "Xv"] {
                prop_assert!(!shown.contains(marker), "{input} -> {shown}");
                prop_assert!(!redacted.contains(marker), "{input} -> {redacted}");
            }
        }
    }

    #[test]
    fn passwords_in_conninfo_are_never_shown(host in word(), db in word(), pw in "[A-Za-z0-9 '=\\\\-]{1,16}") {
        dbinit_tests::link();
        let pw = format!("Zq{pw}Xv");
        let quoted = format!("'{}'", pw.replace('\\', "\\\\").replace('\'', "\\'"));
        let input = format!("host={host} dbname={db} password={quoted} user=app");
        let shown = match DatabaseUrl::parse(&input) {
            Ok(url) => format!("{url} {url:?} {}", url.scheme()),
            Err(e) => format!("{e}"),
        };
        for marker in ["Zq", "Xv"] {
            prop_assert!(!shown.contains(marker), "{input} -> {shown}");
        }
    }

    #[test]
    fn valid_urls_round_trip(user in word(), host in word(), db in word(), port in 1u16..) {
        dbinit_tests::link();
        let input = format!("postgres://{user}@{host}:{port}/{db}?sslmode=require");
        let url = DatabaseUrl::parse(&input).unwrap();
        let again = DatabaseUrl::parse(&url.to_string()).unwrap();
        prop_assert_eq!(url.scheme(), again.scheme());
        prop_assert_eq!(url.to_string(), again.to_string());
        let path = format!("sqlite://data/{db}.db");
        let sqlite = DatabaseUrl::parse(&path).unwrap();
        let sqlite_again = DatabaseUrl::parse(&sqlite.to_string()).unwrap();
        prop_assert_eq!(sqlite_again.to_string(), sqlite.to_string());
    }
}

/// What each backend's reading adds to the standard one.
#[test]
fn each_backend_reads_its_own_forms() {
    dbinit_tests::link();
    let parse = |s: &str| DatabaseUrl::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
    let conninfo = parse("host=127.0.0.1 port=5433 dbname='my db' user=app password='p w\\'d'");
    assert_eq!(conninfo.scheme(), "postgres");
    assert!(conninfo.is_keywords());
    assert_eq!(
        conninfo.to_string(),
        "host=127.0.0.1 port=5433 dbname='my db' user=app password=***"
    );
    let separators = parse("host=h password=Sec://ret-1234 application_name=http://svc");
    assert!(separators.is_keywords());
    assert!(!separators.to_string().contains("ret-1234"), "{separators}");
    assert!(!parse("postgres://h/db").is_keywords());
    assert_eq!(parse("SQLite:app.db").scheme(), "sqlite");
    for refused in [
        "sqlite:",
        "sqlite://",
        "postgres://",
        "host='unterminated password=x",
        "sqlite://user:Zqzz-secret@/tmp/x.db",
        "file://u:Zqzz-secret@/tmp/x.db",
        "mariadb://",
        "mysql://u:Zqzz-secret@h",
        "mysql://u:Zqzz-secret@h/db?ssl-mode=sometimes",
        "mysql://u@h/db?password=Zqzz-secret",
    ] {
        let err = DatabaseUrl::parse(refused).expect_err(refused);
        assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{refused}: {err}");
        assert!(!err.to_string().contains("Zqzz"), "{refused}: {err}");
    }
    let maria = parse("mariadb://app:Secret1@db:3307/app?ssl-mode=VERIFY_IDENTITY&charset=utf8mb4");
    assert_eq!(maria.scheme(), "mariadb");
    assert!(!format!("{maria} {maria:?}").contains("Secret1"));
    let sqlcipher = parse("sqlite://app.db?key=Secret1&mode=rwc");
    assert!(!format!("{sqlcipher} {sqlcipher:?}").contains("Secret1"));
    assert!(sqlcipher.expose_secret().contains("Secret1"));
}
