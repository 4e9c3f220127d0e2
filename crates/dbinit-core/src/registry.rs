//! The plugin registries, built on `inventory`.
//!
//! Plugins contribute with `inventory::submit!` at their crate root. This
//! module is the only place that iterates the registrations: it indexes each
//! registry once, sorted by name, and rejects duplicate names rather than
//! picking one. Iteration order of `inventory` is unspecified; nothing here
//! depends on it.
//!
//! ### Warning
//!
//! A registration in a library that nothing references may be dropped by the
//! linker. Every plugin crate exposes a `link()` function; the binary must
//! call it (the runner's `link_builtin_backends()` does so for built-ins).

use std::sync::OnceLock;

use crate::{Connector, CoreError, DatabaseUrl, DependencyCheck, HealthCheck, SchemaStep, Seeder};

/// Registers a [`Connector`] under a name and the URL schemes it claims.
pub struct ConnectorRegistration {
    name: &'static str,
    schemes: &'static [&'static str],
    make: fn() -> Box<dyn Connector>,
}

impl ConnectorRegistration {
    /// A registration; `schemes` are matched case-insensitively.
    pub const fn new(
        name: &'static str,
        schemes: &'static [&'static str],
        make: fn() -> Box<dyn Connector>,
    ) -> Self {
        ConnectorRegistration {
            name,
            schemes,
            make,
        }
    }

    /// The connector's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The schemes it claims.
    pub fn schemes(&self) -> &'static [&'static str] {
        self.schemes
    }

    /// Builds the connector.
    pub fn make(&self) -> Box<dyn Connector> {
        (self.make)()
    }
}

macro_rules! plugin_registration {
    ($(#[$doc:meta])* $ty:ident, $trait:ident) => {
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
    };
}

plugin_registration!(
    /// Registers a [`Seeder`].
    SeederRegistration,
    Seeder
);
plugin_registration!(
    /// Registers a [`HealthCheck`].
    HealthCheckRegistration,
    HealthCheck
);
plugin_registration!(
    /// Registers a [`DependencyCheck`](crate::DependencyCheck).
    DependencyRegistration,
    DependencyCheck
);
plugin_registration!(
    /// Registers a [`SchemaStep`].
    SchemaStepRegistration,
    SchemaStep
);

impl Named for ConnectorRegistration {
    fn name(&self) -> String {
        self.name.to_owned()
    }
}
inventory::collect!(ConnectorRegistration);

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
            .flat_map(|e| e.schemes.iter().map(|s| s.to_ascii_lowercase()))
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

/// The connector that claims `url`'s scheme.
///
/// # Errors
///
/// [`CoreError::UnknownBackend`] listing the registered backends, or a
/// registry error from [`connectors`].
pub fn connector_for(url: &DatabaseUrl) -> Result<&'static ConnectorRegistration, CoreError> {
    let all = connectors()?;
    all.iter()
        .copied()
        .find(|c| {
            c.schemes
                .iter()
                .any(|s| s.eq_ignore_ascii_case(url.scheme()))
        })
        .ok_or_else(|| CoreError::UnknownBackend {
            scheme: url.scheme().to_owned(),
            registered: all
                .iter()
                .map(|c| format!("{} ({})", c.name, c.schemes.join(", ")))
                .collect(),
        })
}

/// Every registered seeder, sorted by name.
///
/// # Errors
///
/// [`CoreError::DuplicateRegistration`] when two share a name.
pub fn seeders() -> Result<&'static [&'static SeederRegistration], CoreError> {
    static INDEX: OnceLock<Index<SeederRegistration>> = OnceLock::new();
    checked(INDEX.get_or_init(build_index), "seeder")
}

/// Every registered health check, sorted by name.
///
/// # Errors
///
/// [`CoreError::DuplicateRegistration`] when two share a name.
pub fn health_checks() -> Result<&'static [&'static HealthCheckRegistration], CoreError> {
    static INDEX: OnceLock<Index<HealthCheckRegistration>> = OnceLock::new();
    checked(INDEX.get_or_init(build_index), "health check")
}

/// Every registered dependency check, sorted by name.
///
/// # Errors
///
/// [`CoreError::DuplicateRegistration`] when two share a name.
pub fn dependency_checks() -> Result<&'static [&'static DependencyRegistration], CoreError> {
    static INDEX: OnceLock<Index<DependencyRegistration>> = OnceLock::new();
    checked(INDEX.get_or_init(build_index), "dependency check")
}

/// Every registered schema step, sorted by name.
///
/// # Errors
///
/// [`CoreError::DuplicateRegistration`] when two share a name.
pub fn schema_steps() -> Result<&'static [&'static SchemaStepRegistration], CoreError> {
    static INDEX: OnceLock<Index<SchemaStepRegistration>> = OnceLock::new();
    checked(INDEX.get_or_init(build_index), "schema step")
}
