//! Embeds the workspace's migrations with refinery's parser and checksums at
//! build time, so that starting a service does not pay for them.

fn main() {
    #[cfg(feature = "sqlite")]
    embed("../../migrations/sqlite", "sqlite_migrations.rs");
    #[cfg(feature = "postgres")]
    embed("../../migrations/postgres", "postgres_migrations.rs");
}

#[allow(dead_code)]
fn embed(dir: &str, out: &str) {
    if let Err(e) = dbinit_core::migration::embed(dir, out) {
        panic!("cannot embed {dir}: {e}");
    }
}
