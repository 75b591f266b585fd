//! Events and how one is executed against a state.
//!
//! Invariant: [`Machine::direct`] and [`Machine::tracked`] give the same
//! outcome and end state for the same event and state; the tracked form also
//! records what the execution read and wrote. Serial execution uses the
//! direct form; speculation uses the tracked one.

use std::fmt;
use std::sync::Arc;

use spectree_noun::nock::{CancelToken, Limits};
use spectree_noun::Noun;
use spectree_stm::{
    execute_nock_watched, execute_rust_watched, run_nock_direct, run_rust_direct, EventError,
    Execution, MapKey, MapState, NounState, ReadWatch, Regions, RustEvent, State,
};

/// What an event produced: its effects, or why it failed (a failed event
/// leaves the state unchanged).
pub type Outcome = Result<Noun, EventError>;

/// One entry of the log.
pub enum Event<S: State> {
    /// A Nock event: the kernel formula runs on the subject `[event state]`
    /// and must produce `[effects new-state]`.
    Nock(Noun),
    /// Rust code run against a transaction.
    Rust(Arc<dyn RustEvent<S>>),
}

impl<S: State> Clone for Event<S> {
    fn clone(&self) -> Self {
        match self {
            Event::Nock(n) => Event::Nock(n.clone()),
            Event::Rust(r) => Event::Rust(r.clone()),
        }
    }
}

impl<S: State> fmt::Debug for Event<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Nock(n) => write!(
                f,
                "Nock({})",
                spectree_noun::to_text_within(n, 200).unwrap_or_else(|| "...".into())
            ),
            Event::Rust(_) => f.write_str("Rust(..)"),
        }
    }
}

/// The output for one event: its index in the log, its outcome, and the
/// committed state after it.
#[derive(Debug, Clone)]
pub struct Committed<S> {
    /// Position in the log, from 0.
    pub index: u64,
    /// The event's effects or error.
    pub outcome: Outcome,
    /// The state after the event.
    pub state: S,
}

/// A state backend the processor can run: how it runs Nock events (by
/// default none: each fails with [`EventError::Unsupported`]), and how it
/// is written to a snapshot as a noun.
pub trait Backend: State {
    /// The state as one noun (for snapshots); equal states give equal
    /// nouns.
    fn to_noun(&self) -> Noun;

    /// The state a snapshot noun describes, if it describes one.
    fn from_noun(noun: &Noun) -> Option<Self>;

    /// Run a Nock event with tracking.
    fn nock_tracked(
        kernel: Option<&Noun>,
        event: &Noun,
        state: &Self,
        regions: &dyn Regions<Self::Key>,
        limits: &Limits,
        watch: Option<Arc<dyn ReadWatch>>,
    ) -> Execution<Self> {
        let _ = (kernel, event, limits, watch);
        failed(state, regions, NOT_NOUN)
    }

    /// Run a Nock event without tracking.
    fn nock_direct(
        kernel: Option<&Noun>,
        event: &Noun,
        state: &Self,
        limits: &Limits,
    ) -> (Outcome, Self) {
        let _ = (kernel, event, limits);
        (Err(EventError::Unsupported(NOT_NOUN)), state.clone())
    }
}

const NOT_NOUN: &str = "Nock events need a noun state";

const NO_KERNEL: &str = "a Nock event needs a kernel formula";

impl Backend for NounState {
    fn to_noun(&self) -> Noun {
        self.0.clone()
    }

    fn from_noun(noun: &Noun) -> Option<Self> {
        Some(NounState(noun.clone()))
    }

    fn nock_tracked(
        kernel: Option<&Noun>,
        event: &Noun,
        state: &Self,
        regions: &dyn Regions<Self::Key>,
        limits: &Limits,
        watch: Option<Arc<dyn ReadWatch>>,
    ) -> Execution<Self> {
        match kernel {
            Some(k) => execute_nock_watched(k, event, state, regions, limits, watch),
            None => failed(state, regions, NO_KERNEL),
        }
    }

    fn nock_direct(
        kernel: Option<&Noun>,
        event: &Noun,
        state: &Self,
        limits: &Limits,
    ) -> (Outcome, Self) {
        match kernel {
            Some(k) => run_nock_direct(k, event, state, limits),
            None => (Err(EventError::Unsupported(NO_KERNEL)), state.clone()),
        }
    }
}

/// A map state as a noun: the list of `[key value]` pairs in key order.
impl Backend for MapState {
    fn to_noun(&self) -> Noun {
        let mut pairs: Vec<(&MapKey, &Noun)> = self.0.iter().collect();
        pairs.sort_by(|a, b| a.0.cmp(b.0));
        pairs.into_iter().rev().fold(Noun::ZERO, |list, (k, v)| {
            Noun::cell(Noun::cell(k.0.clone(), v.clone()), list)
        })
    }

    fn from_noun(noun: &Noun) -> Option<Self> {
        let mut map = imbl::HashMap::new();
        let mut cur = noun;
        loop {
            match cur {
                Noun::Atom(a) if a.is_zero() => return Some(MapState(map)),
                Noun::Atom(_) => return None,
                Noun::Cell(c) => {
                    let Noun::Cell(pair) = c.head() else {
                        return None;
                    };
                    map.insert(MapKey(pair.head().clone()), pair.tail().clone());
                    cur = c.tail();
                }
            }
        }
    }
}

fn failed<S: State>(state: &S, regions: &dyn Regions<S::Key>, why: &'static str) -> Execution<S> {
    Execution {
        outcome: Err(EventError::Unsupported(why)),
        access: spectree_stm::AccessSet::new(regions),
        writes: Vec::new(),
        state: state.clone(),
    }
}

/// What every execution of an event needs besides the event and the state:
/// the region map, the kernel and the fuel per event. Shared by the
/// [`Processor`](crate::Processor) and the [`SerialProcessor`](crate::SerialProcessor).
pub struct Machine<S: Backend> {
    /// The state's commutation points.
    pub regions: Arc<dyn Regions<S::Key>>,
    /// The kernel formula for Nock events.
    pub kernel: Option<Noun>,
    /// Fuel per Nock event.
    pub fuel: u64,
    /// Memory budget per Nock event, in bytes.
    pub memory: u64,
}

impl<S: Backend> Machine<S> {
    fn limits(&self, cancel: Option<CancelToken>) -> Limits {
        Limits::fuel(self.fuel)
            .with_memory(self.memory)
            .with_cancel(cancel)
    }

    /// Run `event` against `state` untracked: its outcome and end state.
    pub fn direct(&self, event: &Event<S>, state: &S) -> (Outcome, S) {
        match event {
            Event::Nock(e) => S::nock_direct(self.kernel.as_ref(), e, state, &self.limits(None)),
            Event::Rust(r) => run_rust_direct(&**r, state, &*self.regions),
        }
    }

    /// Run `event` against `state`, recording its accesses, telling
    /// `watch` of each region first read, and stopping early once `cancel`
    /// is set (the result is then to be discarded). Without `end_state` the
    /// execution's `state` may be left as the snapshot (its writes are to be
    /// grafted), which saves building a version nobody uses.
    pub fn tracked(
        &self,
        event: &Event<S>,
        state: &S,
        cancel: Option<CancelToken>,
        watch: Option<Arc<dyn ReadWatch>>,
        end_state: bool,
    ) -> Execution<S> {
        match event {
            Event::Nock(e) => {
                let limits = self.limits(cancel);
                S::nock_tracked(
                    self.kernel.as_ref(),
                    e,
                    state,
                    &*self.regions,
                    &limits,
                    watch,
                )
            }
            Event::Rust(r) => {
                execute_rust_watched(&**r, state, &*self.regions, cancel, watch, end_state)
            }
        }
    }
}
