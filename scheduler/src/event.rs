//! Events, the backends they run on, and how one is executed.
//!
//! Invariant: [`Executor::direct`] and [`Executor::tracked`] give the same
//! outcome and end state for the same event and state; the tracked form also
//! records what the execution read and wrote. Serial execution uses the
//! direct form; speculation uses the tracked one. A Nock event exists only
//! for a backend that can run one: [`Backend::Nock`] is uninhabited
//! ([`NoNock`]) otherwise, so the type system refuses the event.

use std::fmt;
use std::sync::Arc;

use spectree_noun::nock::{CancelToken, Limits};
use spectree_noun::Noun;
use spectree_stm::{
    execute_nock, execute_rust, AccessSet, EventError, Execution, MapKey, MapState, NounState,
    Options, ReadWatch, Regions, RustEvent, State,
};

/// What an event produced: its effects, or why it failed (a failed event
/// leaves the state unchanged).
pub type Outcome = Result<Noun, EventError>;

/// One entry of the log: a Nock event (the kernel runs on `[event state]`)
/// or Rust code run against a transaction.
///
/// ```
/// use spectree::{Event, NounState};
/// use spectree::stm::{EventError, MapState, RustEvent, Tx};
/// use spectree::noun::Noun;
///
/// struct Bump;
/// impl RustEvent<MapState> for Bump {
///     fn apply(&self, _: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
///         Ok(Noun::ZERO)
///     }
/// }
/// let _rust: Event<MapState> = Event::rust(Bump);
/// let _nock: Event<NounState> = Event::nock(Noun::atom(7));
/// ```
///
/// A map state cannot run Nock, so a Nock event for one does not compile:
///
/// ```compile_fail
/// use spectree::Event;
/// use spectree::stm::MapState;
/// let _ = Event::<MapState>::nock(spectree::noun::Noun::ZERO);
/// ```
pub enum Event<S: Backend> {
    /// A Nock event: the kernel formula runs on the subject `[event state]`
    /// and must produce `[effects new-state]`.
    Nock(S::Nock),
    /// Rust code run against a transaction.
    Rust(Arc<dyn RustEvent<S>>),
}

impl<S: Backend> Event<S> {
    /// A Rust event.
    pub fn rust(event: impl RustEvent<S> + 'static) -> Self {
        Event::Rust(Arc::new(event))
    }
}

impl<S: Backend<Nock = Noun>> Event<S> {
    /// A Nock event.
    pub fn nock(event: Noun) -> Self {
        Event::Nock(event)
    }
}

impl<S: Backend> Clone for Event<S> {
    fn clone(&self) -> Self {
        match self {
            Event::Nock(n) => Event::Nock(n.clone()),
            Event::Rust(r) => Event::Rust(r.clone()),
        }
    }
}

impl<S: Backend> fmt::Debug for Event<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Nock(n) => write!(f, "Nock({n:?})"),
            Event::Rust(_) => f.write_str("Rust(..)"),
        }
    }
}

/// The output for one event: its index in the log, its outcome, and (when
/// asked for, see [`States`]) the committed state after it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Committed<S> {
    /// Position in the log, from 0.
    pub index: u64,
    /// The event's effects or error.
    pub outcome: Outcome,
    /// The state after the event, where [`States`] asks for it.
    pub state: Option<S>,
}

impl<S> Committed<S> {
    /// An output (for sinks that pass outputs on, renumbered).
    pub fn new(index: u64, outcome: Outcome, state: Option<S>) -> Self {
        Committed {
            index,
            outcome,
            state,
        }
    }
}

/// Which committed states the sink of a stream receives.
///
/// Handing out the state after an event costs more than an `Arc` count:
/// while anyone holds a version, the next write must copy what it shares
/// with it instead of editing in place. So states are delivered only where
/// asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum States {
    /// No states (the final state is returned by `stream` anyway).
    #[default]
    None,
    /// The state after every `n`-th event (after events `n - 1`,
    /// `2n - 1`, ...); `Every(1)` is every state.
    Every(u64),
    /// The state after event `first`, then after every `every`-th event
    /// from there.
    From {
        /// The first event whose state is delivered.
        first: u64,
        /// Events between delivered states (at least 1).
        every: u64,
    },
}

impl States {
    /// Whether the state after event `index` is delivered.
    #[inline]
    pub fn wants(self, index: u64) -> bool {
        match self {
            States::None => false,
            States::Every(n) => n > 0 && (index + 1).is_multiple_of(n),
            States::From { first, every } => {
                every > 0 && index >= first && (index - first).is_multiple_of(every)
            }
        }
    }
}

/// The Nock event type of a backend that cannot run Nock: it has no
/// values, so no such event can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoNock {}

/// A state backend the processor can run: how it is written to a snapshot
/// as a noun, and whether (and how) it runs Nock events.
pub trait Backend: State {
    /// What a Nock event carries: [`Noun`] for a backend that runs Nock
    /// against a kernel, [`NoNock`] for one that cannot.
    type Nock: Clone + Send + Sync + fmt::Debug + 'static;

    /// The state as one noun (for snapshots); equal states give equal
    /// nouns.
    fn to_noun(&self) -> Noun;

    /// The state a snapshot noun describes, if it describes one.
    fn from_noun(noun: &Noun) -> Option<Self>;

    /// The Nock event a logged noun stands for, where this backend has
    /// Nock events.
    fn nock_event(noun: Noun) -> Option<Self::Nock>;

    /// The noun a Nock event is logged as.
    fn nock_noun(event: &Self::Nock) -> Noun;

    /// Run a Nock event (with `kernel`) against `state`.
    fn execute_nock(
        kernel: Option<&Noun>,
        event: &Self::Nock,
        state: &Self,
        regions: &dyn Regions<Self::Key>,
        options: &Options,
    ) -> Execution<Self>;
}

impl Backend for NounState {
    type Nock = Noun;

    fn to_noun(&self) -> Noun {
        self.0.clone()
    }

    fn from_noun(noun: &Noun) -> Option<Self> {
        Some(NounState(noun.clone()))
    }

    fn nock_event(noun: Noun) -> Option<Noun> {
        Some(noun)
    }

    fn nock_noun(event: &Noun) -> Noun {
        event.clone()
    }

    fn execute_nock(
        kernel: Option<&Noun>,
        event: &Noun,
        state: &Self,
        regions: &dyn Regions<Self::Key>,
        options: &Options,
    ) -> Execution<Self> {
        match kernel {
            Some(k) => execute_nock(k, event, state, regions, options),
            None => Execution {
                outcome: Err(EventError::NoKernel),
                access: AccessSet::empty(),
                writes: Vec::new(),
                state: Some(state.clone()),
            },
        }
    }
}

/// A map state as a noun: the list of `[key value]` pairs in key order. It
/// runs no Nock.
impl Backend for MapState {
    type Nock = NoNock;

    fn to_noun(&self) -> Noun {
        let mut pairs: Vec<(&MapKey, &Noun)> = self.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.into_iter().rev().fold(Noun::ZERO, |list, (k, v)| {
            Noun::cell(Noun::cell(k.0.clone(), v.clone()), list)
        })
    }

    fn from_noun(noun: &Noun) -> Option<Self> {
        let mut pairs = Vec::new();
        let mut cur = noun;
        loop {
            match cur {
                Noun::Atom(a) if a.is_zero() => return Some(pairs.into_iter().collect()),
                Noun::Atom(_) => return None,
                Noun::Cell(c) => {
                    let Noun::Cell(pair) = c.head() else {
                        return None;
                    };
                    pairs.push((MapKey(pair.head().clone()), pair.tail().clone()));
                    cur = c.tail();
                }
            }
        }
    }

    fn nock_event(_: Noun) -> Option<NoNock> {
        None
    }

    fn nock_noun(event: &NoNock) -> Noun {
        match *event {}
    }

    fn execute_nock(
        _: Option<&Noun>,
        event: &NoNock,
        _: &Self,
        _: &dyn Regions<Self::Key>,
        _: &Options,
    ) -> Execution<Self> {
        match *event {}
    }
}

/// What every execution of an event needs besides the event and the state:
/// the region map, the kernel, and the fuel and memory budget per event.
/// Shared by the [`Processor`](crate::Processor) and the
/// [`SerialProcessor`](crate::SerialProcessor).
pub(crate) struct Executor<S: Backend> {
    pub regions: Arc<dyn Regions<S::Key>>,
    pub kernel: Option<Noun>,
    pub fuel: u64,
    pub memory: u64,
    /// Which committed states outputs carry.
    pub states: States,
}

impl<S: Backend> Clone for Executor<S> {
    fn clone(&self) -> Self {
        Executor {
            regions: self.regions.clone(),
            kernel: self.kernel.clone(),
            fuel: self.fuel,
            memory: self.memory,
            states: self.states,
        }
    }
}

impl<S: Backend> Executor<S> {
    fn limits(&self, cancel: Option<CancelToken>) -> Limits {
        Limits::fuel(self.fuel)
            .with_memory(self.memory)
            .with_cancel(cancel)
    }

    /// Run `event` against `state` untracked: its outcome and end state.
    /// The state is consumed, and edited in place where nothing else holds
    /// it.
    pub fn direct(&self, event: &Event<S>, state: S) -> (Outcome, S) {
        let options = Options::direct(self.limits(None));
        let run = match event {
            Event::Nock(e) => {
                S::execute_nock(self.kernel.as_ref(), e, &state, &*self.regions, &options)
            }
            Event::Rust(r) => execute_rust(&**r, state, &*self.regions, &options),
        };
        let end = run.state.expect("a direct run has an end state");
        (run.outcome, end)
    }

    /// Run `event` against `state`, recording its accesses, telling
    /// `watch` of each region first read, and stopping early once `cancel`
    /// is set (the result is then to be discarded). Without `end_state` the
    /// execution has no end state (its writes are to be grafted), which
    /// saves building a version nobody uses.
    pub fn tracked(
        &self,
        event: &Event<S>,
        state: &S,
        cancel: Option<CancelToken>,
        watch: Option<Arc<dyn ReadWatch>>,
        end_state: bool,
    ) -> Execution<S> {
        let mut options = Options::tracked(self.limits(cancel));
        if let Some(w) = watch {
            options = options.watch(w);
        }
        if !end_state {
            options = options.without_end_state();
        }
        match event {
            Event::Nock(e) => {
                S::execute_nock(self.kernel.as_ref(), e, state, &*self.regions, &options)
            }
            Event::Rust(r) => execute_rust(&**r, state, &*self.regions, &options),
        }
    }
}
