//! Processor configuration.

use thiserror::Error;

/// How a [`Processor`](crate::Processor) runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Threads working on events, the calling thread included (at least 1).
    pub threads: usize,
    /// Fuel per Nock event (formula evaluations, plus size charges).
    pub fuel: u64,
    /// Memory budget per Nock event, in bytes (see
    /// [`Limits`](spectree_noun::nock::Limits)).
    pub memory: u64,
    /// Most events in flight at once beyond the last committed one: the
    /// speculation window and the bound on buffered outputs. `0` picks
    /// `4 * threads`, at least 8; values below 2 mean 2.
    pub window: usize,
    /// Narrow speculation when it does not pay and widen it when it does.
    /// Without it the processor always speculates across the whole window
    /// (useful for testing).
    pub adaptive: bool,
}

impl Default for Config {
    /// All available cores, fuel 10^8, memory 1 GiB per Nock event,
    /// automatic window, adaptive.
    fn default() -> Self {
        Config {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fuel: 100_000_000,
            memory: spectree_noun::nock::DEFAULT_MEMORY,
            window: 0,
            adaptive: true,
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// Threads must be between 1 and 1024.
    #[error("threads must be between 1 and 1024, not {0}")]
    Threads(usize),
    /// The window must be at most 65536.
    #[error("window must be at most 65536 events, not {0}")]
    Window(usize),
    /// The thread pool could not be built.
    #[error("cannot start the thread pool: {0}")]
    Pool(String),
}

impl Config {
    /// The configuration with `threads` threads and defaults otherwise.
    pub fn threads(threads: usize) -> Self {
        Config {
            threads,
            ..Config::default()
        }
    }

    /// Check the configuration without building anything.
    ///
    /// # Errors
    /// [`ConfigError`] for out-of-range threads or window.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !(1..=1024).contains(&self.threads) {
            return Err(ConfigError::Threads(self.threads));
        }
        if self.window > 65536 {
            return Err(ConfigError::Window(self.window));
        }
        Ok(())
    }

    /// The window size in use.
    pub fn effective_window(&self) -> usize {
        if self.window == 0 {
            (4 * self.threads).max(8)
        } else {
            self.window.max(2)
        }
    }
}
