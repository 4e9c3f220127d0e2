//! Embeds `migrations/<backend>/`, checked at build time.

fn main() {
    if let Err(e) = dbinit_core::migration::embed_all("migrations", "migrations.rs") {
        panic!("cannot embed the migrations: {e}");
    }
}
