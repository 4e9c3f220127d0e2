//! Rebuild when a migration file is added, changed or removed:
//! `embed_migrations!` alone does not notice new files (refinery#309).

fn main() {
    println!("cargo:rerun-if-changed=../../migrations");
}
