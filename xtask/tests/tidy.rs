//! Keeps the tree honest (rust-analyzer's "tidy" idea): documented files, no
//! skipped tests or stubs, lints on everywhere, and CI running the README's
//! test command.

use std::path::PathBuf;

use dbinit_tests::tree::{rust_files, workspace_root};

fn sources() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["crates", "xtask", "tests"] {
        rust_files(&workspace_root().join(dir), &mut files);
    }
    assert!(files.len() > 20, "found only {} files", files.len());
    files
}

#[test]
fn every_rust_file_starts_with_a_module_comment() {
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with `//!`",
            file.display()
        );
    }
}

#[test]
fn no_skipped_tests_or_stubs() {
    // Spelled in pieces so this file does not match itself.
    let banned = [
        ["#[", "ignore"].concat(),
        ["todo", "!("].concat(),
        ["unimplemented", "!("].concat(),
        ["dbg", "!("].concat(),
        ["#[should", "_panic"].concat(),
    ];
    for file in sources() {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in &banned {
            assert!(
                !text.contains(word.as_str()),
                "{} contains {word}",
                file.display()
            );
        }
    }
}

#[test]
fn every_package_uses_the_workspace_lints() {
    let mut manifests = vec![
        workspace_root().join("xtask/Cargo.toml"),
        workspace_root().join("tests/Cargo.toml"),
    ];
    for entry in std::fs::read_dir(workspace_root().join("crates")).unwrap() {
        manifests.push(entry.unwrap().path().join("Cargo.toml"));
    }
    for manifest in manifests {
        let text = std::fs::read_to_string(&manifest).unwrap();
        assert!(
            text.contains("[lints]\nworkspace = true"),
            "{} does not inherit the workspace lints",
            manifest.display()
        );
    }
}

#[test]
fn readme_opens_with_the_two_commands_and_ci_runs_the_test_one() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let commands: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("```"))
        .skip(1)
        .take_while(|l| !l.starts_with("```"))
        .collect();
    assert!(commands[0].starts_with("cargo xtask init"), "{commands:?}");
    assert!(commands[1].starts_with("cargo xtask test"), "{commands:?}");
    let ci = std::fs::read_to_string(workspace_root().join(".ci/run")).unwrap();
    assert!(
        ci.lines().any(|l| l.trim() == "cargo xtask test"),
        ".ci/run must run `cargo xtask test`"
    );
}

/// `cargo tree` of a package with the given cargo arguments, one crate name per line.
fn tree(args: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(args)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn each_backend_builds_without_the_other() {
    let sqlite = tree(&["-p", "dbinit-sqlite"]);
    assert!(sqlite.iter().any(|c| c == "rusqlite"), "{sqlite:?}");
    assert!(!sqlite
        .iter()
        .any(|c| c.starts_with("tokio-postgres") || c == "deadpool-postgres"));
    let postgres = tree(&["-p", "dbinit-postgres"]);
    assert!(
        postgres.iter().any(|c| c == "tokio-postgres"),
        "{postgres:?}"
    );
    assert!(!postgres
        .iter()
        .any(|c| c == "rusqlite" || c == "libsqlite3-sys"));
    let runner_pg = tree(&[
        "-p",
        "dbinit-runner",
        "--no-default-features",
        "--features",
        "postgres",
    ]);
    assert!(!runner_pg.iter().any(|c| c == "rusqlite"), "{runner_pg:?}");
    // A dependency plugin needs the core and its own client only.
    let redis = tree(&["-p", "dbinit-redis"]);
    assert!(redis.iter().any(|c| c == "redis"), "{redis:?}");
    assert!(
        !redis
            .iter()
            .any(|c| c == "rusqlite" || c == "tokio-postgres" || c == "dbinit-runner"),
        "{redis:?}"
    );
    // The contract carries no driver and no file format.
    let core = tree(&["-p", "dbinit-core"]);
    assert!(
        !core.iter().any(
            |c| ["rusqlite", "tokio-postgres", "csv", "toml", "xxhash-rust"].contains(&c.as_str())
        ),
        "{core:?}"
    );
    // Data files are a plugin: the core and their formats, no driver.
    let datafiles = tree(&["-p", "dbinit-datafiles"]);
    assert!(datafiles.iter().any(|c| c == "csv"), "{datafiles:?}");
    assert!(
        !datafiles
            .iter()
            .any(|c| c == "rusqlite" || c == "tokio-postgres" || c == "dbinit-runner"),
        "{datafiles:?}"
    );
}

#[test]
fn release_builds_have_no_crash_points() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args([
            "tree",
            "--offline",
            "-p",
            "xtask",
            "-e",
            "normal,build",
            "-i",
            "dbinit-core",
            "-f",
            "{p} [{f}]",
        ])
        .output()
        .expect("run cargo tree");
    let text = String::from_utf8_lossy(&out.stdout);
    let core = text.lines().next().unwrap_or_default();
    assert!(core.starts_with("dbinit-core"), "{text}");
    assert!(
        !core.contains("fault-injection"),
        "the shipped binary would honour DBINIT_CRASH_AT: {core}"
    );
}

/// The library crates package and build from their packages alone (cargo
/// verifies each one), so they can be depended on from a registry: no build
/// script or `include!` reads outside its crate.
#[test]
fn library_crates_package_and_build_alone() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The verification builds the packaged crates as registry crates of an
    // unchanged version, and cargo treats those as immutable: it does not
    // extract them again (a stale copy stays in CARGO_HOME) nor fingerprint
    // them by content (a stale build stays in the target directory). So:
    // the extracted copies of the packaging registries (unnamed, `-<hash>`)
    // go, and a target directory of its own loses the dbinit crates'
    // fingerprints, keeping the dependencies' builds.
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".cargo")))
        .expect("CARGO_HOME or HOME");
    for kind in ["src", "cache"] {
        let registries = std::fs::read_dir(cargo_home.join("registry").join(kind));
        for registry in registries.into_iter().flatten().flatten() {
            if !registry.file_name().to_string_lossy().starts_with('-') {
                continue;
            }
            for entry in std::fs::read_dir(registry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if entry.file_name().to_string_lossy().starts_with("dbinit-") {
                    let path = entry.path();
                    let removed = if path.is_dir() {
                        std::fs::remove_dir_all(&path)
                    } else {
                        std::fs::remove_file(&path)
                    };
                    removed.expect("remove a stale packaged crate");
                }
            }
        }
    }
    let target = workspace_root().join("target").join("package-verify");
    for profile in ["debug", "release"] {
        let fingerprints = target.join(profile).join(".fingerprint");
        for entry in std::fs::read_dir(&fingerprints)
            .into_iter()
            .flatten()
            .flatten()
        {
            if entry.file_name().to_string_lossy().starts_with("dbinit-") {
                std::fs::remove_dir_all(entry.path()).expect("remove a stale fingerprint");
            }
        }
    }
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .env("CARGO_TARGET_DIR", &target)
        .args(["package", "--offline", "--workspace", "--allow-dirty"])
        .args(["--exclude", "xtask", "--exclude", "dbinit-tests"])
        .args(["--exclude", "dbinit-example-service"])
        .output()
        .expect("run cargo package");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for name in ["core", "sqlite", "postgres", "accounts", "redis", "runner"] {
        assert!(err.contains(&format!("Verifying dbinit-{name} ")), "{err}");
    }
}
