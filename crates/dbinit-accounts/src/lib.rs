//! System tenant, system roles and admin user seeders for dbinit.
//!
//! This crate uses only the public [`Seeder`](dbinit_core::Seeder) API, exactly
//! as a downstream crate would: it is the proof that the extension point works.
//!
//! | seeder | depends on | writes |
//! |---|---|---|
//! | `system_tenant` | | the `system` tenant |
//! | `system_roles` | `system_tenant` | roles `admin` and `member` |
//! | `admin_user` | `system_roles` | the admin user, with the `admin` role |
//!
//! The admin password is never a default. It comes from
//! `DBINIT_ADMIN_PASSWORD`, or from the file named by
//! `DBINIT_ADMIN_PASSWORD_FILE`; otherwise a strong one is generated and shown
//! once through the [`SecretSink`](dbinit_core::SecretSink) (the terminal,
//! never the log). Only its argon2id hash is stored. The user name and e-mail
//! come from `DBINIT_ADMIN_USERNAME` (default `admin`) and `DBINIT_ADMIN_EMAIL`
//! (default `admin@localhost`).
//!
//! Call [`link`] once from your binary so the linker keeps the registrations.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod admin;
mod password;
mod roles;
mod tenant;

pub use admin::AdminUser;
pub use roles::{SystemRoles, SYSTEM_ROLES};
pub use tenant::{SystemTenant, SYSTEM_TENANT_SLUG};

use dbinit_core::{inventory, SeederRegistration};

inventory::submit! { SeederRegistration::new(|| Box::new(SystemTenant)) }
inventory::submit! { SeederRegistration::new(|| Box::new(SystemRoles)) }
inventory::submit! { SeederRegistration::new(|| Box::new(AdminUser)) }

/// Keeps this crate's registrations in the final binary. Call it once from
/// `main`; it does nothing else.
#[inline(never)]
pub fn link() {}
