//! Orders seeders by their dependencies, deterministically.

use std::collections::{BTreeMap, BTreeSet};

use dbinit_core::{CoreError, Seeder};

/// Sorts `seeders` so that every seeder comes after its dependencies; among
/// seeders that are free to run, by name (Kahn's algorithm over a sorted set).
///
/// # Errors
///
/// [`CoreError::MissingSeederDependency`] or [`CoreError::SeederCycle`].
pub(crate) fn order(seeders: Vec<Box<dyn Seeder>>) -> Result<Vec<Box<dyn Seeder>>, CoreError> {
    let mut by_name: BTreeMap<String, Box<dyn Seeder>> = seeders
        .into_iter()
        .map(|s| (s.name().to_owned(), s))
        .collect();
    let mut waiting_on: BTreeMap<String, BTreeSet<&'static str>> = BTreeMap::new();
    for (name, seeder) in &by_name {
        for dep in seeder.depends_on() {
            if !by_name.contains_key(*dep) {
                return Err(CoreError::MissingSeederDependency {
                    seeder: name.clone(),
                    dependency: (*dep).to_owned(),
                });
            }
        }
        waiting_on.insert(name.clone(), seeder.depends_on().iter().copied().collect());
    }
    let mut ordered = Vec::with_capacity(by_name.len());
    while !waiting_on.is_empty() {
        let Some(next) = waiting_on
            .iter()
            .find(|(_, deps)| deps.is_empty())
            .map(|(name, _)| name.clone())
        else {
            return Err(CoreError::SeederCycle {
                seeders: waiting_on.into_keys().collect(),
            });
        };
        waiting_on.remove(&next);
        for deps in waiting_on.values_mut() {
            deps.remove(next.as_str());
        }
        ordered.extend(by_name.remove(&next));
    }
    Ok(ordered)
}

#[cfg(test)]
mod tests {
    use dbinit_core::{async_trait, SeedContext, SeedOutcome};

    use super::*;

    struct Fake(&'static str, &'static [&'static str]);

    #[async_trait]
    impl Seeder for Fake {
        fn name(&self) -> &'static str {
            self.0
        }
        fn depends_on(&self) -> &'static [&'static str] {
            self.1
        }
        async fn is_seeded(&self, _: &mut SeedContext<'_>) -> Result<bool, CoreError> {
            Ok(false)
        }
        async fn seed(&self, _: &mut SeedContext<'_>) -> Result<SeedOutcome, CoreError> {
            Ok(SeedOutcome::default())
        }
    }

    fn names(seeders: Vec<Box<dyn Seeder>>) -> Result<Vec<String>, CoreError> {
        Ok(order(seeders)?
            .iter()
            .map(|s| s.name().to_owned())
            .collect())
    }

    #[test]
    fn dependencies_first_then_by_name() {
        let seeders: Vec<Box<dyn Seeder>> = vec![
            Box::new(Fake("admin", &["roles"])),
            Box::new(Fake("zeta", &[])),
            Box::new(Fake("roles", &["tenant"])),
            Box::new(Fake("tenant", &[])),
            Box::new(Fake("alpha", &["admin"])),
        ];
        assert_eq!(
            names(seeders).unwrap(),
            ["tenant", "roles", "admin", "alpha", "zeta"]
        );
    }

    #[test]
    fn missing_dependency_is_named() {
        let err = names(vec![Box::new(Fake("admin", &["roles"]))]).unwrap_err();
        assert!(
            matches!(&err, CoreError::MissingSeederDependency { seeder, dependency } if seeder == "admin" && dependency == "roles"),
            "{err}"
        );
    }

    #[test]
    fn cycles_are_reported() {
        let err = names(vec![
            Box::new(Fake("a", &["b"])),
            Box::new(Fake("b", &["a"])),
            Box::new(Fake("c", &[])),
        ])
        .unwrap_err();
        assert!(
            matches!(&err, CoreError::SeederCycle { seeders } if seeders == &["a", "b"]),
            "{err}"
        );
    }
}
