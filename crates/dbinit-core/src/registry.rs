//! The plugin registries, built on `inventory`.
//!
//! This module is the only place that iterates the registrations: it indexes each
//! registry once, sorted by name, and rejects duplicate names rather than
//! picking one. Iteration order of `inventory` is unspecified; nothing here
//! depends on it.
//!
//! Plugins register with [`register!`](crate::register), which also defines
//! the crate's `link()`.
//!
//! ### Warning
//!
//! A registration in a library that nothing references may be dropped by the
//! linker. Every plugin crate exposes a `link()` function; the binary must
//! call it (the runner's `link_builtin_plugins()` does so for built-ins).

use std::sync::OnceLock;

#[cfg(doc)]
use crate::DatabaseUrl;
use crate::{Connector, CoreError, DependencyCheck, HealthCheck, SchemaStep, Seeder};

macro_rules! plugin_registration {
    ($(#[$doc:meta])* $ty:ident, $trait:ident $(, $all:ident, $label:literal)?) => {
        $(#[$doc])*
        ///
        /// The name is the plugin's own `name()`: it is said once, in the
        /// plugin, and read when the registry is indexed.
        pub struct $ty {
            make: fn() -> Box<dyn $trait>,
        }

        impl $ty {
            /// A registration of what `make` builds.
            pub const fn new(make: fn() -> Box<dyn $trait>) -> Self {
                $ty { make }
            }

            /// The registered name: the plugin's `name()`.
            pub fn name(&self) -> String {
                (self.make)().name().to_owned()
            }

            /// Builds the plugin.
            pub fn make(&self) -> Box<dyn $trait> {
                (self.make)()
            }
        }

        impl Named for $ty {
            fn name(&self) -> String {
                $ty::name(self)
            }
        }

        inventory::collect!($ty);

        $(
            #[doc = concat!("Every registered ", $label, ", sorted by name.")]
            ///
            /// # Errors
            ///
            /// [`CoreError::DuplicateRegistration`] when two share a name.
            pub fn $all() -> Result<&'static [&'static $ty], CoreError> {
                static INDEX: OnceLock<Index<$ty>> = OnceLock::new();
                checked(INDEX.get_or_init(build_index), $label)
            }
        )?
    };
}

plugin_registration!(
    /// Registers a [`Connector`]: a backend, chosen by the URL schemes it
    /// claims ([`Connector::schemes`]).
    ConnectorRegistration,
    Connector
);
plugin_registration!(
    /// Registers a [`Seeder`].
    SeederRegistration,
    Seeder,
    seeders,
    "seeder"
);
plugin_registration!(
    /// Registers a [`HealthCheck`].
    HealthCheckRegistration,
    HealthCheck,
    health_checks,
    "health check"
);
plugin_registration!(
    /// Registers a [`DependencyCheck`](crate::DependencyCheck).
    DependencyRegistration,
    DependencyCheck,
    dependency_checks,
    "dependency check"
);
plugin_registration!(
    /// Registers a [`SchemaStep`].
    SchemaStepRegistration,
    SchemaStep,
    schema_steps,
    "schema step"
);

impl ConnectorRegistration {
    /// The URL schemes the connector claims (matched case-insensitively).
    pub fn schemes(&self) -> &'static [&'static str] {
        (self.make)().schemes()
    }
}

/// Registers a crate's plugins with `inventory` and defines the crate's
/// `link()`, which keeps them in the final binary: registrations in a
/// crate that nothing references can be dropped by the linker
/// (cargo#9391). Use it once, at the crate root; the binary calls
/// `link()` (the runner's `link_builtin_plugins` does for built-ins).
///
/// ```ignore
/// dbinit_core::register! {
///     ConnectorRegistration => connector::SqliteConnector,
///     HealthCheckRegistration => health::QuickCheck,
/// }
/// ```
///
/// Each line names a registration type of [`registry`](crate::registry)
/// and an expression that builds the plugin; the plugin's own `name()` is
/// its registered name.
///
/// A crate whose own `link` would say less than it does (the runner, whose
/// `link_builtin_plugins` links others too) names the function and its
/// visibility first: `register! { pub(crate) fn link_checks; … }`.
#[macro_export]
macro_rules! register {
    ($vis:vis fn $link:ident; $($registration:ident => $plugin:expr),+ $(,)?) => {
        $(
            $crate::inventory::submit! {
                $crate::registry::$registration::new(|| ::std::boxed::Box::new($plugin))
            }
        )+

        /// Keeps this crate's registrations in the final binary. Call it
        /// once from `main` (or any code the binary runs); it does nothing
        /// else.
        #[inline(never)]
        $vis fn $link() {}
    };
    ($($registration:ident => $plugin:expr),+ $(,)?) => {
        $crate::register! { pub fn link; $($registration => $plugin),+ }
    };
}

trait Named {
    fn name(&self) -> String;
}

/// A sorted registry, or the name registered twice.
type Index<T> = Result<Vec<&'static T>, String>;

fn build_index<T: Named + inventory::Collect>() -> Index<T> {
    let mut entries: Vec<&'static T> = inventory::iter::<T>.into_iter().collect();
    entries.sort_by_cached_key(|e| e.name());
    match entries.windows(2).find(|w| w[0].name() == w[1].name()) {
        Some(pair) => Err(pair[0].name()),
        None => Ok(entries),
    }
}

fn checked<'a, T>(
    index: &'a Index<T>,
    registry: &'static str,
) -> Result<&'a [&'static T], CoreError> {
    index
        .as_deref()
        .map_err(|name| CoreError::DuplicateRegistration {
            registry,
            name: name.clone(),
        })
}

/// Every registered connector, sorted by name.
///
/// # Errors
///
/// [`CoreError::NoBackends`] when none is linked;
/// [`CoreError::DuplicateRegistration`] when two share a name or a scheme.
pub fn connectors() -> Result<&'static [&'static ConnectorRegistration], CoreError> {
    static INDEX: OnceLock<Index<ConnectorRegistration>> = OnceLock::new();
    let index = INDEX.get_or_init(|| {
        let entries = build_index::<ConnectorRegistration>()?;
        let mut schemes: Vec<String> = entries
            .iter()
            .flat_map(|e| e.schemes().iter().map(|s| s.to_ascii_lowercase()))
            .collect();
        schemes.sort();
        match schemes.windows(2).find(|w| w[0] == w[1]) {
            Some(pair) => Err(format!("scheme {}", pair[0])),
            None => Ok(entries),
        }
    });
    let entries = checked(index, "connector")?;
    if entries.is_empty() {
        return Err(CoreError::NoBackends);
    }
    Ok(entries)
}
