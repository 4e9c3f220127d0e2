//! Embeds the demo schema this crate's seeders need (`migrations/<backend>/`,
//! a link to the workspace's `migrations/`), checked and checksummed at
//! build time.

fn main() {
    if let Err(e) = dbinit_core::migration::embed_all("migrations", "migrations.rs") {
        panic!("cannot embed the demo migrations: {e}");
    }
}
