//! [`Session`]: one connection to a database, handed to every step, and
//! the capabilities it is made of.

use std::any::Any;

use crate::introspect::Introspect;
use crate::load::BulkLoad;
use crate::lock::Locking;
use crate::query::Query;
use crate::script::MigrationScripts;

/// One connection to a database. Steps receive it as an argument: there is no
/// global "current connection".
///
/// A backend implements it in capabilities, each with its own defaults,
/// like refinery's `AsyncMigrate` over `AsyncQuery`: [`Query`] (statements,
/// queries, transactions), [`Locking`] (the init lock), [`Introspect`]
/// (tables, columns, indexes), [`BulkLoad`] (loads; defaults row by row) and
/// [`MigrationScripts`] (defaults: a script is one batch). The migration
/// engine ([`crate::engine`]), seeding and health checks are written once
/// over them.
pub trait Session: Query + Locking + Introspect + BulkLoad + MigrationScripts {
    /// The escape hatch to the native session type, for downcasting.
    fn as_any_mut(&mut self) -> &mut dyn Any;
}
