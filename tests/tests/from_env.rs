//! `Initializer::from_env` applies the CLI's rules, so a service's startup
//! need not copy them. One test in its own binary: it changes the process
//! environment.

use dbinit_runner::dbinit_core::ErrorKind;
use dbinit_runner::Initializer;

fn set(vars: &[(&str, Option<&str>)]) {
    for (key, value) in vars {
        match value {
            Some(v) => std::env::set_var(key, v),
            None => std::env::remove_var(key),
        }
    }
}

#[tokio::test]
async fn from_env_follows_the_cli_rules() {
    dbinit_tests::link();
    let dir = tempfile::tempdir().unwrap();
    let default = format!("sqlite://{}/default.db", dir.path().display());
    let vars = ["DATABASE_URL", "DBINIT_ENV", "DBINIT_FALLBACK_URL"];
    let clear = || set(&vars.map(|v| (v, None)));

    // Unset: the default, and the report says so.
    clear();
    let init = Initializer::from_env(&default).unwrap();
    let report = init.clone().seed(false).run().await.unwrap();
    assert!(report.used_default_url);
    assert!(
        report.to_string().contains("DATABASE_URL is not set"),
        "{report}"
    );

    // Set: the variable, never the default.
    let own = format!("sqlite://{}/own.db", dir.path().display());
    set(&[("DATABASE_URL", Some(&own))]);
    let init = Initializer::from_env(&default).unwrap();
    assert_eq!(init.url().redacted(), own);

    // Set but empty: an error, not the default.
    set(&[("DATABASE_URL", Some(""))]);
    let err = Initializer::from_env(&default).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidUrl, "{err}");

    // Production refuses the default.
    clear();
    set(&[("DBINIT_ENV", Some("production"))]);
    let err = Initializer::from_env(&default).unwrap_err();
    assert!(
        err.to_string().contains("production never falls back"),
        "{err}"
    );

    // An unknown environment is a configuration error of its own.
    set(&[("DBINIT_ENV", Some("staging"))]);
    let err = Initializer::from_env(&default).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");

    // A fallback from the environment is refused in production at run time.
    set(&[
        ("DBINIT_ENV", Some("production")),
        ("DATABASE_URL", Some(&own)),
        ("DBINIT_FALLBACK_URL", Some(&default)),
    ]);
    let init = Initializer::from_env(&default).unwrap();
    let err = init.run().await.unwrap_err();
    assert!(err.to_string().contains("refused in production"), "{err}");
    clear();
}
