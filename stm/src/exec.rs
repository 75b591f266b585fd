//! Executing one event against a snapshot, recording what it accessed, and
//! grafting its writes onto a newer state.
//!
//! The property the scheduler relies on (tested in `tests/`): if
//! [`validate`](crate::validate) says an execution's access set still holds
//! after writes `W` committed, then running the event against the newer state
//! gives the same outcome, and its resulting state equals [`graft`] of the
//! execution's writes onto the newer state.
//!
//! **Nock events.** With kernel formula `K`, an event `e` against state `S`
//! computes `*[[e S] K]`, which must be a cell `[effects S']`. The subject is
//! tagged `[Fresh Orig(1)]`, so every axis the [`Tracker`] reports is relative
//! to `S`. Writes come from the provenance of `S'`: a position whose tag is
//! `Orig` of its own axis is untouched; anything else (a value the event
//! built, or a subtree copied from another axis, which also reads its
//! source) is written, even when it happens to equal what was there, since a
//! concurrent writer may have changed it. Descending through a built cell
//! relies on the state still having a cell there (a shape). Effects are
//! inspected as a whole. Any other product, a crash or running out of fuel is
//! the event's error and leaves the state unchanged.

use std::sync::Arc;

use spectree_noun::nock::{nock, nock_with, Limits, NockError};
use spectree_noun::{Axis, Noun};
use thiserror::Error;

use crate::access::{AccessSet, ReadWatch};
use crate::region::Regions;
use crate::state::{NounState, Snapshot, State, StateError, Tx, Writes};
use crate::tracker::{Prov, Tracker};

/// Why an event produced no new state.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum EventError {
    /// The kernel or event computation failed (crash, fuel, memory,
    /// cancellation).
    #[error("nock: {0}")]
    Nock(NockError),
    /// The kernel's product was not a cell `[effects state]`.
    #[error("kernel product is an atom, not [effects state]")]
    BadProduct,
    /// A Nock event ran without a kernel formula.
    #[error("a Nock event needs a kernel formula, and none was given")]
    NoKernel,
    /// A Rust event failed a state access.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// A Rust event refused, with a payload of its own (a code, or any
    /// noun); see [`EventError::failed`].
    #[error("event failed: {}", short_noun(.0))]
    Failed(Noun),
    /// A Rust event panicked; the panic was contained.
    #[error("event panicked: {0}")]
    Panicked(String),
}

impl EventError {
    /// A Rust event's own failure, with `payload` (a number, or any noun
    /// the caller can tell apart: no string matching, no allocation for an
    /// atom).
    ///
    /// ```
    /// use spectree_stm::EventError;
    /// const INSUFFICIENT_FUNDS: u64 = 1;
    /// let e = EventError::failed(INSUFFICIENT_FUNDS);
    /// assert_eq!(e.code(), Some(INSUFFICIENT_FUNDS));
    /// ```
    pub fn failed(payload: impl Into<Noun>) -> EventError {
        EventError::Failed(payload.into())
    }

    /// The payload of [`EventError::Failed`] as a number, when it is one.
    pub fn code(&self) -> Option<u64> {
        match self {
            EventError::Failed(n) => n.as_u64(),
            _ => None,
        }
    }
}

fn short_noun(n: &Noun) -> String {
    spectree_noun::to_text_within(n, 200)
        .unwrap_or_else(|| format!("(a noun with mug {:#x})", n.mug()))
}

/// How to run one event: its limits (fuel, memory budget, cancellation),
/// and whether to record its accesses.
///
/// ```
/// use spectree_noun::nock::Limits;
/// use spectree_stm::Options;
/// let serial = Options::direct(Limits::fuel(1_000_000));
/// let speculative = Options::tracked(Limits::fuel(1_000_000));
/// # let _ = (serial, speculative);
/// ```
#[derive(Clone)]
pub struct Options {
    limits: Limits,
    tracked: bool,
    watch: Option<Arc<dyn ReadWatch>>,
    end_state: bool,
}

impl std::fmt::Debug for Options {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Options")
            .field("limits", &self.limits)
            .field("tracked", &self.tracked)
            .field("watched", &self.watch.is_some())
            .field("end_state", &self.end_state)
            .finish()
    }
}

impl Options {
    /// Record reads, shapes and writes (for validation and graft), and
    /// build the end state.
    pub fn tracked(limits: Limits) -> Options {
        Options {
            limits,
            tracked: true,
            watch: None,
            end_state: true,
        }
    }

    /// Record nothing: what serial execution does, and what an execution
    /// that commits directly does. The execution's access set is empty.
    pub fn direct(limits: Limits) -> Options {
        Options {
            tracked: false,
            ..Options::tracked(limits)
        }
    }

    /// Tell `watch` of each region as the execution first reads it
    /// (tracked executions only).
    #[must_use]
    pub fn watch(mut self, watch: Arc<dyn ReadWatch>) -> Options {
        self.watch = Some(watch);
        self
    }

    /// Do not build the end state of a successful tracked Rust event: its
    /// writes are to be grafted elsewhere (the execution's `state` is then
    /// the snapshot). Saves building a version nobody uses.
    #[must_use]
    pub fn without_end_state(mut self) -> Options {
        self.end_state = false;
        self
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }
}

/// One execution of one event against one snapshot.
#[derive(Debug, Clone)]
pub struct Execution<S: State> {
    /// The effects, or why there are none.
    pub outcome: Result<Noun, EventError>,
    /// What the execution read, relied on and wrote (empty when run
    /// [direct](Options::direct)).
    pub access: AccessSet<S::Key>,
    /// The writes with their values: disjoint or, where one lies inside
    /// another, listed after it with a value consistent with it (empty when
    /// run direct).
    pub writes: Writes<S::Key>,
    /// The state the execution left, built on its own snapshot (the
    /// snapshot itself when the event failed); `None` when built
    /// [without the end state](Options::without_end_state).
    pub state: Option<S>,
}

impl<S: State> Execution<S> {
    /// The execution's resulting state, built on `base`.
    ///
    /// # Errors
    /// [`StateError`] if a write's path does not exist in `base` (never for
    /// a base against which the execution validates).
    pub fn apply(&self, base: &S) -> Result<S, StateError> {
        graft(base, &self.writes)
    }
}

/// Apply `writes` to `state`, in order; time proportional to the number of
/// writes times their depth.
///
/// # Errors
/// [`StateError`] if a write's path does not exist.
pub fn graft<S: State>(state: &S, writes: &[(S::Key, Noun)]) -> Result<S, StateError> {
    let mut s = state.clone();
    for (k, v) in writes {
        s = s.put(k, v.clone())?;
    }
    Ok(s)
}

/// Run Nock event `event` under kernel `kernel` against `state`: the
/// subject is `[event state]` and the product must be `[effects state']`.
pub fn execute_nock<'a>(
    kernel: &Noun,
    event: &Noun,
    state: impl Into<Snapshot<'a, NounState>>,
    regions: &dyn Regions<Axis>,
    options: &Options,
) -> Execution<NounState> {
    let state = state.into();
    let state = state.get();
    let subject = Noun::cell(event.clone(), state.0.clone());
    if !options.tracked {
        let (outcome, end) = match nock(subject, kernel, &options.limits) {
            Err(e) => (Err(EventError::Nock(e)), state.clone()),
            Ok(Noun::Atom(_)) => (Err(EventError::BadProduct), state.clone()),
            Ok(Noun::Cell(c)) => (Ok(c.head().clone()), NounState(c.tail().clone())),
        };
        return Execution {
            outcome,
            access: AccessSet::empty(),
            writes: Vec::new(),
            state: Some(end),
        };
    }
    let mut tracker = Tracker::new(regions);
    tracker.access.set_watch(options.watch.clone());
    let tag = Prov::pair(Prov::Fresh, Prov::Orig(Axis::ROOT));
    let run = nock_with(subject, tag, kernel, &options.limits, &mut tracker);
    let mut writes = Vec::new();
    let mut end = None;
    let outcome = match run {
        Err(e) => Err(EventError::Nock(e)),
        Ok(traced) => match &traced.product {
            Noun::Atom(_) => {
                tracker.read_all(&traced.tag);
                Err(EventError::BadProduct)
            }
            Noun::Cell(c) => {
                let (effects_tag, state_tag) = split(&mut tracker, &traced.tag);
                tracker.read_all(&effects_tag);
                extract_writes(&mut tracker, &state.0, c.tail(), state_tag, &mut writes);
                if options.end_state {
                    end = Some(NounState(c.tail().clone()));
                }
                Ok(c.head().clone())
            }
        },
    };
    let mut access = tracker.access;
    access.set_watch(None);
    access.normalize();
    if end.is_none() && options.end_state {
        end = Some(state.clone());
    }
    Execution {
        outcome,
        access,
        writes,
        state: end,
    }
}

/// The provenance of a product's head and tail; splitting a value taken
/// from the state relies on it being a cell.
fn split(tracker: &mut Tracker<'_>, tag: &Prov) -> (Prov, Prov) {
    use spectree_noun::nock::Hook;
    let two = spectree_noun::Atom::new(2);
    let three = spectree_noun::Atom::new(3);
    (tracker.slot(tag, &two), tracker.slot(tag, &three))
}

/// Walk the provenance of the new state, recording writes (and the reads of
/// copied sources and the shapes that descending relies on).
fn extract_writes(
    tracker: &mut Tracker<'_>,
    old: &Noun,
    new: &Noun,
    tag: Prov,
    writes: &mut Vec<(Axis, Noun)>,
) {
    // (position, new subtree, its provenance, old subtree there)
    let mut stack: Vec<(Axis, &Noun, Prov, &Noun)> = vec![(Axis::ROOT, new, tag, old)];
    // A pair node met again (the new state shares a subtree) is written
    // whole at its second position: descending again could take time
    // exponential in the state's size.
    let mut seen = crate::tracker::Seen::default();
    while let Some((at, value, prov, before)) = stack.pop() {
        let again = seen.revisit(&prov);
        match (prov, value, before) {
            (Prov::Orig(a), _, _) if a == at => {}
            (Prov::Pair(p), Noun::Cell(v), Noun::Cell(b)) if !again => {
                // The writes below rely on `at` still being a cell.
                tracker.shape(at.head());
                stack.push((at.tail(), v.tail(), p.1.clone(), b.tail()));
                stack.push((at.head(), v.head(), p.0.clone(), b.head()));
            }
            (other, _, _) => {
                tracker.read_all(&other);
                tracker.write(at.clone());
                writes.push((at, value.clone()));
            }
        }
    }
    writes.sort_by(|a, b| a.0.cmp(&b.0));
}

/// A Rust event: user code run against a [`Tx`].
///
/// The contract, for the event:
/// - it is a deterministic function of what it reads through the `Tx` (no
///   clocks, randomness, globals or I/O), which is what makes a validated
///   speculative execution equal to a serial one;
/// - it may be run against a state that serial order never gives it (a
///   stale snapshot): there it must not have effects outside its result,
///   and it should end; where its running time or recursion depth depends
///   on what it read, it should poll [`Tx::aborted`] (a relaxed load) and
///   return early when it is set.
///
/// What spectree guarantees: such an execution is discarded before
/// anything it computed is used; it cannot see or change its own tracking;
/// the commit path never waits for it (a doomed frontier is executed again
/// against the committed state), and it never runs on the thread that
/// called the processor. An execution that neither ends nor polls keeps its
/// pool thread busy until it ends; the run finishes without it.
pub trait RustEvent<S: State>: Send + Sync {
    /// Apply the event, returning its effects.
    ///
    /// # Errors
    /// Any [`EventError`]; the state is then left unchanged.
    fn apply(&self, tx: &mut Tx<'_, S>) -> Result<Noun, EventError>;
}

/// Run a Rust event against `state`; a panic becomes the event's error
/// ([`EventError::Panicked`]), and a failed event leaves the state
/// unchanged and writes nothing.
/// The state may be borrowed (`&state`: a shared snapshot, left as it is)
/// or owned (`state`: consumed, and a successful direct execution edits it
/// in place, which for a state nobody else holds costs no copying).
pub fn execute_rust<'a, S: State>(
    event: &dyn RustEvent<S>,
    state: impl Into<Snapshot<'a, S>>,
    regions: &'a dyn Regions<S::Key>,
    options: &Options,
) -> Execution<S> {
    let cancel = options.limits.cancel.clone();
    if !options.tracked {
        let mut tx = Tx::untracked(state.into(), regions).with_cancel(cancel);
        let outcome = apply_contained(event, &mut tx);
        let end = match &outcome {
            Ok(_) => tx.into_state(),
            Err(_) => tx.into_unchanged(),
        };
        return Execution {
            outcome,
            access: AccessSet::empty(),
            writes: Vec::new(),
            state: Some(end),
        };
    }
    let mut tx = Tx::new(state.into(), regions).with_cancel(cancel);
    if let Some(access) = tx.access_mut() {
        access.set_watch(options.watch.clone());
    }
    let outcome = apply_contained(event, &mut tx);
    if outcome.is_err() {
        // A failed event leaves the state unchanged and writes nothing, so
        // no later event conflicts with what it tried to write.
        let (mut access, _) = tx.finish_writes();
        access.clear_writes();
        return Execution {
            outcome,
            access,
            writes: Vec::new(),
            state: options.end_state.then(|| tx.into_unchanged()),
        };
    }
    let (end, access, writes) = if options.end_state {
        let (end, access, writes) = tx.finish();
        (Some(end), access, writes)
    } else {
        let (access, writes) = tx.finish_writes();
        (None, access, writes)
    };
    Execution {
        outcome,
        access,
        writes,
        state: end,
    }
}

fn apply_contained<S: State>(
    event: &dyn RustEvent<S>,
    tx: &mut Tx<'_, S>,
) -> Result<Noun, EventError> {
    crate::contain::contain(|| event.apply(tx)).unwrap_or_else(|m| Err(EventError::Panicked(m)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{validate, RegionMap};

    use crate::testing::{ax, n};

    fn run(kernel: &str, event: &str, state: &str) -> Execution<NounState> {
        let regions = RegionMap::depth(2).unwrap();
        execute_nock(
            &n(kernel),
            &n(event),
            NounState(n(state)),
            &regions,
            &Options::tracked(Limits::fuel(100_000)),
        )
    }

    #[test]
    fn writing_the_value_already_there_is_still_a_write() {
        // Kernel: effects 0, state with axis 6 set to the event.
        let e = run("[[1 0] 10 [6 0 2] 0 3]", "3", "[[1 2] 3 4]");
        assert_eq!(e.outcome, Ok(Noun::ZERO));
        assert_eq!(e.writes, vec![(ax(6), n("3"))]);
        // Another event that committed 6 := 9 first must not be lost under it.
        let newer = NounState(n("[[1 2] 9 4]"));
        assert_eq!(e.apply(&newer).unwrap().0, n("[[1 2] 3 4]"));
    }

    #[test]
    fn copies_read_their_source_and_write_their_destination() {
        // Copy state axis 2 to axis 7: [10 [7 0 6] 0 3] on subject [e S].
        let e = run("[[1 0] 10 [7 0 6] 0 3]", "0", "[5 5 5]");
        assert_eq!(e.access.reads(), &[ax(2)]);
        assert_eq!(e.access.writes(), &[ax(7)]);
        // A committed write to the source invalidates it.
        let regions = RegionMap::depth(2).unwrap();
        let mut theirs = AccessSet::new(&regions);
        theirs.write(ax(2), &regions);
        assert!(!validate(&e.access, [&theirs]));
    }

    #[test]
    fn effects_are_read_and_errors_leave_no_writes() {
        let e = run("[[0 6] 0 3]", "0", "[[1 2] 3 4]");
        assert_eq!(e.outcome, Ok(n("[1 2]")));
        assert_eq!(e.access.reads(), &[ax(2)]);
        assert!(e.writes.is_empty());
        let e = run("[0 2]", "0", "[1 2]");
        assert_eq!(e.outcome, Err(EventError::BadProduct));
        let e = run("[0 14]", "0", "[1 2]");
        assert!(matches!(e.outcome, Err(EventError::Nock(_))));
        assert!(e.writes.is_empty());
    }

    #[test]
    fn a_new_state_sharing_subtrees_is_extracted_in_linear_time() {
        // The new state doubles a built pair 30 times: 2^30 leaves, 31 nodes.
        let mut f = "[[1 5] 0 6]".to_string();
        for _ in 0..30 {
            f = format!("[7 {f} [0 1] 0 1]");
        }
        let e = run(&format!("[[1 0] {f}]"), "0", "[[1 2] 3 4]");
        assert!(e.outcome.is_ok());
        assert!(e.writes.len() < 100, "{} writes", e.writes.len());
    }

    #[test]
    fn a_new_state_of_another_shape_is_written_whole() {
        let e = run("[[1 0] [1 1 2] 0 3]", "0", "5");
        assert_eq!(e.writes, vec![(ax(1), n("[[1 2] 5]"))]);
    }

    struct Panics;
    impl RustEvent<NounState> for Panics {
        fn apply(&self, tx: &mut Tx<'_, NounState>) -> Result<Noun, EventError> {
            tx.put(&ax(2), Noun::atom(1))?;
            panic!("boom");
        }
    }

    #[test]
    fn a_panicking_rust_event_is_contained() {
        let regions = RegionMap::depth(1).unwrap();
        let e = execute_rust(
            &Panics,
            NounState(n("[1 2]")),
            &regions,
            &Options::tracked(Limits::default()),
        );
        assert_eq!(e.outcome, Err(EventError::Panicked("boom".into())));
        assert!(e.writes.is_empty());
        assert!(e.access.writes().is_empty());
        assert!(e.access.write_regions().is_empty());
    }
}
