//! How a [`crate::SqliteTable`] opens its database.

use quper_core::ports::StoreError;
use std::str::FromStr;
use std::time::Duration;

/// Environment variable that picks [`Synchronous`] for [`SqliteOptions::from_env`].
pub const SYNCHRONOUS_ENV: &str = "QUPER_SQLITE_SYNCHRONOUS";

/// How hard SQLite works to make a commit durable. The database always runs in
/// WAL journal mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// `synchronous=NORMAL`: a commit is written to the WAL file before it is
    /// acknowledged but not fsynced, so it survives the process being killed
    /// (`kill -9`, a panic, an OOM kill) because the data is already in the OS
    /// page cache. A power loss or kernel crash may drop the last commits.
    #[default]
    Normal,
    /// `synchronous=FULL`: every commit fsyncs the WAL, so it also survives
    /// power loss. Each write then costs one fsync.
    Full,
}

impl Synchronous {
    /// The value for `PRAGMA synchronous`.
    pub(crate) fn pragma_value(self) -> &'static str {
        match self {
            Synchronous::Normal => "NORMAL",
            Synchronous::Full => "FULL",
        }
    }
}

impl FromStr for Synchronous {
    type Err = StoreError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "normal" => Ok(Synchronous::Normal),
            "full" => Ok(Synchronous::Full),
            other => Err(StoreError::Invalid(format!(
                "{SYNCHRONOUS_ENV} must be `full` or `normal`, got `{other}`"
            ))),
        }
    }
}

/// Options for [`crate::SqliteTable::open_with`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteOptions {
    pub synchronous: Synchronous,
    /// Read-only connections serving `get`, `query` and `ping` next to the one
    /// writer connection. At least one is always opened.
    pub readers: usize,
    /// How long a statement waits for a lock held by another connection (or
    /// another process) before failing with `StoreError::Unavailable`.
    pub busy_timeout: Duration,
    /// Which items `get` and `get_many` answer from memory kept true by the
    /// writer thread (`remembered`).
    pub remember: Remember,
}

/// Which items a [`crate::SqliteTable`] answers from memory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Remember {
    /// None: every read goes to SQLite.
    #[default]
    Nothing,
    /// The items with one of these sort keys (`quper serve`: the
    /// open-incident markers, read on every alert).
    SortKeys(Vec<String>),
    /// Every item (the conformance suite, to hold memory to the port's
    /// contract on every case).
    Everything,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::default(),
            readers: 4,
            busy_timeout: Duration::from_secs(5),
            remember: Remember::Nothing,
        }
    }
}

impl SqliteOptions {
    /// The defaults, with `synchronous` taken from `QUPER_SQLITE_SYNCHRONOUS`
    /// (`full` or `normal`) when it is set. An unrecognised value is an error
    /// rather than a silent fallback, so a durability setting is never lost
    /// to a typo.
    pub fn from_env() -> Result<Self, StoreError> {
        let mut options = Self::default();
        match std::env::var(SYNCHRONOUS_ENV) {
            Ok(value) if !value.trim().is_empty() => options.synchronous = value.parse()?,
            Ok(_) | Err(std::env::VarError::NotPresent) => {}
            Err(std::env::VarError::NotUnicode(_)) => {
                return Err(StoreError::Invalid(format!("{SYNCHRONOUS_ENV} is not valid UTF-8")));
            }
        }
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_synchronous_case_insensitively() {
        assert_eq!("FULL".parse::<Synchronous>(), Ok(Synchronous::Full));
        assert_eq!(" normal ".parse::<Synchronous>(), Ok(Synchronous::Normal));
        assert!("off".parse::<Synchronous>().is_err());
    }
}
