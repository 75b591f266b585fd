//! Processor configuration, and the builder that makes processors.
//!
//! Invariant: every [`Processor`] and [`SerialProcessor`] comes from a
//! [`ProcessorBuilder`], so the two always run events with the same regions,
//! kernel, fuel and memory budget, and a processor's configuration has been
//! checked before anything runs.

use std::sync::Arc;

use spectree_noun::Noun;
use spectree_stm::Regions;
use thiserror::Error;

use crate::event::{Backend, Executor, States};
use crate::processor::Processor;
use crate::serial::SerialProcessor;

/// Most threads a processor may use.
pub const MAX_THREADS: usize = 1024;

/// Largest speculation window.
pub const MAX_WINDOW: usize = 65536;

/// How a [`Processor`] runs (read it with [`Processor::config`]; set it
/// with the [`ProcessorBuilder`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Threads executing events (1 to [`MAX_THREADS`]): with more than one,
    /// the pool's workers; the calling thread coordinates besides.
    pub threads: usize,
    /// Fuel per Nock event (formula evaluations, plus size charges; see
    /// [`Limits`](spectree_noun::nock::Limits)).
    pub fuel: u64,
    /// Memory budget per Nock event, in bytes.
    pub memory: u64,
    /// Most events in flight at once beyond the last committed one: the
    /// speculation window and the bound on buffered outputs (2 to
    /// [`MAX_WINDOW`]); `None` picks `4 * threads`, at least 8.
    pub window: Option<usize>,
    /// Narrow speculation when it does not pay and widen it when it does.
    /// Without it the processor always speculates across the whole window
    /// (useful for testing).
    pub adaptive: bool,
    /// Which committed states a stream's sink receives.
    pub states: States,
}

impl Default for Config {
    /// All available cores, fuel 10^8, memory 1 GiB per Nock event,
    /// automatic window, adaptive.
    fn default() -> Self {
        Config {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            fuel: 100_000_000,
            memory: spectree_noun::nock::DEFAULT_MEMORY,
            window: None,
            adaptive: true,
            states: States::None,
        }
    }
}

impl Config {
    /// Check the configuration without building anything.
    ///
    /// # Errors
    /// [`BuildError::Threads`] or [`BuildError::Window`] when out of range.
    pub fn check(&self) -> Result<(), BuildError> {
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(BuildError::Threads(self.threads));
        }
        if let Some(w) = self.window {
            if !(2..=MAX_WINDOW).contains(&w) {
                return Err(BuildError::Window(w));
            }
        }
        Ok(())
    }

    /// The window size in use.
    pub fn effective_window(&self) -> usize {
        self.window.unwrap_or((4 * self.threads).max(8))
    }
}

/// Why a processor could not be built.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Threads must be between 1 and [`MAX_THREADS`].
    #[error("threads must be between 1 and {MAX_THREADS}, not {0}")]
    Threads(usize),
    /// The window must be between 2 and [`MAX_WINDOW`].
    #[error("window must be between 2 and {MAX_WINDOW} events, not {0}")]
    Window(usize),
    /// The thread pool could not be built (a thread could not start).
    #[error("cannot start the thread pool")]
    Pool(#[source] rayon::ThreadPoolBuildError),
}

/// Builds a [`Processor`] (or its [`SerialProcessor`] oracle), as rayon's
/// `ThreadPoolBuilder` builds pools.
///
/// ```
/// use spectree::{Event, NounState, Processor};
/// use spectree::stm::RegionMap;
///
/// // Kernel: effects 0; write the event at state axis 2.
/// let processor = Processor::builder(RegionMap::depth(1)?)
///     .kernel("[[1 0] 10 [2 0 2] 0 3]".parse()?)
///     .threads(2)
///     .build()?;
/// let events = || (0..100).map(|n| Event::nock(n.into()));
/// let state = NounState("[0 0]".parse()?);
/// let run = processor.run(state.clone(), events());
/// let serial = processor.serial().run(state, events());
/// assert_eq!((run.state, run.outcomes), (serial.state, serial.outcomes));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ProcessorBuilder<S: Backend> {
    regions: Arc<dyn Regions<S::Key>>,
    kernel: Option<Noun>,
    config: Config,
    /// Whether `threads` was set (otherwise it follows the pool, if any).
    threads_set: bool,
    pool: Option<Arc<rayon::ThreadPool>>,
}

impl<S: Backend> std::fmt::Debug for ProcessorBuilder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorBuilder")
            .field("regions", &self.regions.count())
            .field("kernel", &self.kernel.as_ref().map(Noun::mug))
            .field("config", &self.config)
            .field("pool", &self.pool.as_ref().map(|p| p.current_num_threads()))
            .finish()
    }
}

impl<S: Backend> ProcessorBuilder<S> {
    pub(crate) fn new(regions: Arc<dyn Regions<S::Key>>) -> Self {
        ProcessorBuilder {
            regions,
            kernel: None,
            config: Config::default(),
            threads_set: false,
            pool: None,
        }
    }

    /// The kernel formula Nock events run under (none by default: a Nock
    /// event then fails with [`EventError::NoKernel`](spectree_stm::EventError::NoKernel)).
    ///
    /// The kernel is made immortal ([`Noun::immortalize`]): it is never
    /// freed, so that workers evaluating it in parallel do not contend on
    /// its reference counts. Its cells are leaked once (a kernel already
    /// immortal costs nothing more), so give long-lived processors their
    /// kernel, not a fresh one per short run.
    ///
    /// ```
    /// use spectree::noun::Noun;
    /// use spectree::stm::RegionMap;
    /// use spectree::{NounState, Processor};
    ///
    /// let kernel: Noun = "[[1 0] 10 [2 0 2] 0 3]".parse()?;
    /// let builder = Processor::<NounState>::builder(RegionMap::depth(1)?).kernel(kernel.clone());
    /// assert!(kernel.is_immortal(), "the same cells, now shared for good");
    /// # drop(builder);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[must_use]
    pub fn kernel(mut self, kernel: Noun) -> Self {
        kernel.immortalize();
        self.kernel = Some(kernel);
        self
    }

    /// Threads executing events (default: all cores; with
    /// [`pool`](Self::pool): the pool's threads). With more than one, a
    /// pool of this many workers speculates and commits while the calling
    /// thread feeds events in and hands outputs out (it executes events
    /// only where nothing can make it wait on speculative work: directly,
    /// or the frontier when no worker is there). With one, events run
    /// directly on the calling thread.
    #[must_use]
    pub fn threads(mut self, threads: usize) -> Self {
        self.config.threads = threads;
        self.threads_set = true;
        self
    }

    /// Fuel per Nock event (default 10^8).
    #[must_use]
    pub fn fuel(mut self, fuel: u64) -> Self {
        self.config.fuel = fuel;
        self
    }

    /// Memory budget per Nock event in bytes (default 1 GiB).
    #[must_use]
    pub fn memory(mut self, bytes: u64) -> Self {
        self.config.memory = bytes;
        self
    }

    /// The speculation window (default: `4 * threads`, at least 8).
    #[must_use]
    pub fn window(mut self, window: usize) -> Self {
        self.config.window = Some(window);
        self
    }

    /// Adapt the speculation width to what pays (default true).
    #[must_use]
    pub fn adaptive(mut self, adaptive: bool) -> Self {
        self.config.adaptive = adaptive;
        self
    }

    /// Run on the caller's rayon pool instead of a pool of the processor's
    /// own. Call [`Processor::stream`] from outside the pool's threads: the
    /// calling thread coordinates and waits (on a condition variable, with a
    /// short timeout) when idle. Speculative Rust executions then run on
    /// that pool's stacks (see [`WORKER_STACK`](crate::WORKER_STACK)).
    #[must_use]
    pub fn pool(mut self, pool: Arc<rayon::ThreadPool>) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Which committed states the sink of [`Processor::stream`] receives
    /// (default: none; asking for states costs copying where the state
    /// could otherwise be edited in place).
    #[must_use]
    pub fn states(mut self, states: States) -> Self {
        self.config.states = states;
        self
    }

    /// All of the configuration at once.
    #[must_use]
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self.threads_set = true;
        self
    }

    fn executor(&self) -> Executor<S> {
        Executor {
            regions: self.regions.clone(),
            kernel: self.kernel.clone(),
            fuel: self.config.fuel,
            memory: self.config.memory,
            states: self.config.states,
        }
    }

    /// Build the processor (and its thread pool, unless one was given).
    ///
    /// # Errors
    /// [`BuildError`] for an out-of-range configuration, or when the pool's
    /// threads cannot start.
    pub fn build(mut self) -> Result<Processor<S>, BuildError> {
        if let (Some(pool), false) = (&self.pool, self.threads_set) {
            self.config.threads = pool.current_num_threads().min(MAX_THREADS);
        }
        self.config.check()?;
        let pool = match self.pool.clone() {
            Some(p) => Some(p),
            None if self.config.threads > 1 => Some(Arc::new(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(self.config.threads)
                    .stack_size(crate::processor::WORKER_STACK)
                    .thread_name(|i| format!("spectree-{i}"))
                    .build()
                    .map_err(BuildError::Pool)?,
            )),
            None => None,
        };
        Ok(Processor::from_parts(self.executor(), self.config, pool))
    }

    /// Build the serial oracle with the same regions, kernel, fuel and
    /// memory budget.
    pub fn build_serial(self) -> SerialProcessor<S> {
        SerialProcessor::from_executor(self.executor())
    }
}
