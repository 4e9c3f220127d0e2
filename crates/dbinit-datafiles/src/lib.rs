//! Data files: rows in CSV or JSON under `seeds/<environment>/`, upserted
//! by a natural key into the table a manifest names, once per content.
//!
//! ```text
//! seeds/
//!   common/          loaded in every environment, first
//!     seeds.toml
//!     plans.csv
//!   development/     only with --env development
//!     seeds.toml
//!     demo_tenants.csv
//!     demo_users.jsonl
//!   production/ test/
//! ```
//!
//! `seeds.toml` lists the files of its directory, in load order:
//!
//! ```toml
//! [[file]]
//! path = "demo_tenants.csv"   # .csv (with a header row), .json (an array of
//! table = "tenants"           # objects) or .jsonl (one object per line)
//! key = ["slug"]              # a primary key or unique index on exactly these
//! version = 1                 # optional: bump to load an unchanged file again
//! ```
//!
//! Each file is a [`Seeder`](dbinit_core::Seeder) named `<dir>/<path>`, run once
//! per content ([`SeedPolicy::Once`](dbinit_core::SeedPolicy::Once) with a
//! checksum of the file and its manifest entry): an edited file is loaded
//! again on the next run, an unchanged one is skipped without reading its
//! table. Rules, checked before anything is written (see
//! `docs/seeding.md`): every data file is listed, every listed file exists,
//! no directory other than `common` and the environments, every column of
//! the file exists in the table and every key column is in the file, no
//! key twice in a file, every value converts to its column's type.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod convert;
mod datafile;
mod embed;
mod files;
mod read;
mod seeder;

pub use embed::embed;
pub use files::{EmbeddedFile, SeedFiles, COMMON, MANIFEST};
