//! Embeds the demo schema this crate's seeders need (`migrations/<backend>/`,
//! a link to the workspace's `migrations/`) and the demo data files
//! (`seeds/`, a link to the workspace's), checked at build time.

fn main() {
    if let Err(e) = dbinit_core::migration::embed_all("migrations", "migrations.rs") {
        panic!("cannot embed the demo migrations: {e}");
    }
    if let Err(e) = dbinit_datafiles::embed("seeds", "seeds.rs") {
        panic!("cannot embed the demo seeds: {e}");
    }
}
