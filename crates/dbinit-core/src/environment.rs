//! The deployment environment, which selects seeders and refuses risky options.

use std::fmt;
use std::str::FromStr;

use serde::Serialize;

/// Where the database is being initialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    /// A developer's machine.
    Development,
    /// Automated tests.
    Test,
    /// Production: no fallbacks, no sample data.
    Production,
}

impl Environment {
    /// The environment's lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Development => "development",
            Environment::Test => "test",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "development" | "dev" => Ok(Environment::Development),
            "test" => Ok(Environment::Test),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(format!(
                "unknown environment `{other}` (expected development, test or production)"
            )),
        }
    }
}

/// A set of environments a seeder runs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Environments {
    development: bool,
    test: bool,
    production: bool,
}

impl Environments {
    /// Every environment.
    pub const ALL: Environments = Environments {
        development: true,
        test: true,
        production: true,
    };
    /// Development and test only: sample data that production must never get.
    pub const NON_PRODUCTION: Environments = Environments {
        development: true,
        test: true,
        production: false,
    };

    /// `env` alone.
    pub const fn only(env: Environment) -> Environments {
        Environments {
            development: matches!(env, Environment::Development),
            test: matches!(env, Environment::Test),
            production: matches!(env, Environment::Production),
        }
    }

    /// Whether `env` is in the set.
    pub fn contains(self, env: Environment) -> bool {
        match env {
            Environment::Development => self.development,
            Environment::Test => self.test,
            Environment::Production => self.production,
        }
    }
}
