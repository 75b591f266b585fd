//! Running with a durable log, and replaying one.
//!
//! Invariant: an event's outcome reaches the sink only after the event is
//! durable in the log (events are appended in groups, one sync per group,
//! by a logger thread while the processor already runs them; outputs wait
//! until their group is durable), and replay of a log gives the state the
//! writing run committed after the same events.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use spectree::noun::Noun;
use spectree::{Backend, Committed, Event, Metrics, Processor, States};
use thiserror::Error;

use crate::backend::LogBackend;
use crate::computations::{Done, Request, Supervisor};
use crate::pipeline::{spawn_logger, Durable};
use crate::replay::Replayed;
use crate::store::LogError;

/// Why a logged run or a replay failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LoggedError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A logged run needs an empty log.
    #[error("event log {path} already holds {events} events; replay it instead")]
    NotEmpty {
        /// The log's file.
        path: PathBuf,
        /// Events in it.
        events: u64,
    },
    /// A logged run must start from the state the log starts from.
    #[error(
        "event log {path} starts from a state with mug {log:#x}, not the given one ({given:#x})"
    )]
    OtherState {
        /// The log's file.
        path: PathBuf,
        /// The mug of the log's initial state.
        log: u32,
        /// The mug of the state given.
        given: u32,
    },
    /// A thread of the run could not start.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The snapshot writer panicked (a bug; contained).
    #[error("the snapshot writer failed: {0}")]
    SnapshotWriter(String),
    /// Computations were outstanding but none could be settled (a bug;
    /// reported instead of spinning).
    #[error("computations were outstanding but none could be settled")]
    Unsettled,
    /// The logger thread stopped without appending everything or
    /// reporting a failure (it panicked: a bug, contained).
    #[error("the logger stopped before every event was durable")]
    LoggerStopped,
    /// A resumed run was given the replay of another length of the log.
    #[error(
        "event log {path} holds {events} events, but the state given was replayed from {replayed}"
    )]
    Stale {
        /// The log's file.
        path: PathBuf,
        /// Events the replay covered.
        replayed: u64,
        /// Events in the log.
        events: u64,
    },
    /// A computation outcome logged by reference cannot be resolved.
    #[error(
        "event log {path}: event {index} is an outcome by reference that does not resolve: {why}"
    )]
    Reference {
        /// The log's file.
        path: PathBuf,
        /// The referring event's number.
        index: u64,
        /// Why.
        why: crate::computations::Unresolved,
    },
    /// The log has no intact snapshot to replay from.
    #[error("event log {path} has no intact snapshot, not even the initial one")]
    NoSnapshot {
        /// The log's file.
        path: PathBuf,
    },
    /// A snapshot is not a state of the replaying backend.
    #[error("event log {path}: the snapshot after {events} events is not a state of this kind")]
    NotAState {
        /// The log's file.
        path: PathBuf,
        /// Events the snapshot includes.
        events: u64,
    },
    /// A logged event does not decode as an event of the replaying run.
    #[error("event log {path}: event {index} is not an event of this log's writer: {source}")]
    Decode {
        /// The log's file.
        path: PathBuf,
        /// The event's number.
        index: u64,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The newest state waiting for the snapshot writer: a new one replaces
/// it (the writer is behind; the skipped one would be stale anyway), so at
/// most two states are held for snapshots, whatever the rate.
struct Mailbox<S> {
    slot: Mutex<(Option<(u64, S)>, bool)>,
    ready: Condvar,
}

impl<S> Mailbox<S> {
    fn new() -> Self {
        Mailbox {
            slot: Mutex::new((None, false)),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (Option<(u64, S)>, bool)> {
        self.slot.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Leave `state` for the writer; returns whether it replaced one.
    fn post(&self, events: u64, state: S) -> bool {
        let replaced = self.lock().0.replace((events, state)).is_some();
        self.ready.notify_one();
        replaced
    }

    fn close(&self) {
        self.lock().1 = true;
        self.ready.notify_one();
    }

    /// The next state to write; `None` once closed and empty.
    fn take(&self) -> Option<(u64, S)> {
        let mut slot = self.lock();
        loop {
            if let Some(next) = slot.0.take() {
                return Some(next);
            }
            if slot.1 {
                return None;
            }
            slot = self.ready.wait(slot).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// How a logged run groups syncs and takes snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// Events per append (one sync each): more amortises the sync, fewer
    /// shortens the wait before outcomes are released.
    pub group: usize,
    /// Take a snapshot after every this many events (0: never, besides the
    /// initial one). When the writer is behind, a newer snapshot replaces
    /// the one waiting.
    pub snapshot_every: u64,
}

impl Default for LogPolicy {
    /// Groups of 1,024 events, a snapshot every 100,000.
    fn default() -> Self {
        LogPolicy {
            group: 1024,
            snapshot_every: 100_000,
        }
    }
}

/// The states a stream starting at log index `offset` must deliver for a
/// snapshot every `every` events of the log (after events `every - 1`,
/// `2 every - 1`, ... of the log).
fn snapshot_states(offset: u64, every: u64) -> States {
    if every == 0 {
        return States::None;
    }
    // The first local index `i` with `offset + i + 1` a multiple of `every`.
    let first = (every - (offset % every) + every - 1) % every;
    States::From { first, every }
}

/// Run `events` (each with its log form) through `processor`, logging
/// them durably first, into a log just made by
/// [`EventLog::create`](crate::EventLog::create) from `state`. Snapshots are written by a
/// background thread, so taking one does not stop processing (the state is
/// persistent: the clone is consistent).
///
/// # Errors
/// [`LoggedError::NotEmpty`] or [`LoggedError::OtherState`] before
/// anything is written, if the log is not empty or starts from another
/// state; [`LoggedError::Log`] if a write fails: processing stops at the
/// first failed append, and nothing after it is released. A failed
/// snapshot write does not stop the run (every event is still logged and
/// released); it is reported when the run ends.
///
/// # Panics
/// If `sink` panics (the snapshot writer is stopped first).
pub fn run_logged<S: Backend>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    state: S,
    events: impl IntoIterator<Item = (Noun, Event<S>)>,
    policy: LogPolicy,
    sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LoggedError> {
    run_with_computations(
        processor,
        log,
        state,
        events,
        policy,
        &mut no_computations(),
        sink,
    )
}

/// Computations that never happen: no requests, so no outcomes.
type NoComputations<S> =
    Computations<fn(u64, &Noun) -> Option<Request>, fn(Noun) -> (Noun, Event<S>)>;

fn no_computations<S: Backend>() -> NoComputations<S> {
    Computations {
        requests: |_, _| None,
        // Never called: with no requests there are no outcomes.
        outcome: |_| unreachable!("no requests, no outcomes"),
        concurrency: 1,
        by_reference: false,
        shutdown: None,
    }
}

impl<R, O> std::fmt::Debug for Computations<R, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Computations")
            .field("concurrency", &self.concurrency)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// How a logged run finds requests for asynchronous computations in
/// effects, and turns their outcomes into events.
pub struct Computations<R, O> {
    /// The request in the effects of event `index`, if any.
    pub requests: R,
    /// The outcome event `[%async id result]` as (log form, event).
    pub outcome: O,
    /// Computations run at once, at most.
    pub concurrency: usize,
    /// Log each outcome **by reference** ([`Done::reference`]): a product
    /// or crash is logged as "the outcome of the request in event n's
    /// effects" with the product's mug, and replay
    /// ([`replay_with_computations`](crate::replay_with_computations()))
    /// recomputes it. Saves the log the size of large products; replay
    /// pays their computation instead.
    pub by_reference: bool,
    /// Set (from any thread) to shut down: no further events are taken,
    /// outstanding computations are cancelled at their next safe point, and
    /// each gets a cancelled outcome event, logged and run, before the run
    /// ends.
    pub shutdown: Option<Arc<AtomicBool>>,
}

/// [`run_logged`], with asynchronous computations: a committed event whose
/// effects hold a request (per `offpath.requests`) starts a computation on
/// the [`Supervisor`]; its outcome is appended to the log as a new event,
/// merged with the remaining events as it arrives, and run like any other.
/// The run ends when the events are exhausted and every computation has
/// produced its outcome event (and that event has run). Replay reads the
/// outcome events from the log and never reruns a computation.
///
/// # Errors
/// As [`run_logged`]; [`LoggedError::Thread`] if a computation thread
/// cannot start.
pub fn run_with_computations<S, R, O>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    state: S,
    events: impl IntoIterator<Item = (Noun, Event<S>)>,
    policy: LogPolicy,
    computations: &mut Computations<R, O>,
    sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LoggedError>
where
    S: Backend,
    R: FnMut(u64, &Noun) -> Option<Request>,
    O: FnMut(Noun) -> (Noun, Event<S>),
{
    // Every refusal before anything is written.
    if !log.is_empty() {
        return Err(LoggedError::NotEmpty {
            path: log.path().to_path_buf(),
            events: log.len(),
        });
    }
    let (initial, _) = log.latest_snapshot()?;
    let given = state.to_noun();
    match initial {
        Some((0, s)) if s == given => {}
        other => {
            return Err(LoggedError::OtherState {
                path: log.path().to_path_buf(),
                log: other.map_or(0, |(_, s)| s.mug()),
                given: given.mug(),
            })
        }
    }
    logged(processor, log, state, events, policy, computations, sink)
}

/// Continue the log `log` (opened for writing) from `recovered`, its
/// replay (see [`replay`](crate::replay())): the events are appended after
/// the ones it holds and numbered on from there, as [`run_logged`] does.
///
/// # Errors
/// [`LoggedError::Stale`] if the log does not hold exactly the events
/// `recovered` replayed (nothing is written); otherwise as [`run_logged`].
pub fn resume_logged<S: Backend>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    recovered: Replayed<S>,
    events: impl IntoIterator<Item = (Noun, Event<S>)>,
    policy: LogPolicy,
    sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LoggedError> {
    if recovered.events != log.len() {
        return Err(LoggedError::Stale {
            path: log.path().to_path_buf(),
            replayed: recovered.events,
            events: log.len(),
        });
    }
    logged(
        processor,
        log,
        recovered.state,
        events,
        policy,
        &mut no_computations(),
        sink,
    )
}

/// The logged run itself, numbering from the log's length; every check
/// has been made.
fn logged<S, R, O>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    state: S,
    events: impl IntoIterator<Item = (Noun, Event<S>)>,
    policy: LogPolicy,
    computations: &mut Computations<R, O>,
    mut sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LoggedError>
where
    S: Backend,
    R: FnMut(u64, &Noun) -> Option<Request>,
    O: FnMut(Noun) -> (Noun, Event<S>),
{
    let group = policy.group.max(1);
    let mut source = events.into_iter().fuse();
    let supervisor =
        RefCell::new(Supervisor::new(computations.concurrency).map_err(LoggedError::Thread)?);
    let failure: RefCell<Option<LoggedError>> = RefCell::new(None);
    let mailbox: Mailbox<S> = Mailbox::new();
    let every = policy.snapshot_every;
    let stopping = computations.shutdown.clone();
    let stopped = || stopping.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    let by_reference = computations.by_reference;
    let computations = RefCell::new(computations);
    // By reference, each request goes to the supervisor under a key of
    // its own (callers' ids may repeat, and outcomes come in any order),
    // mapped back to its id and the event that asked: a reference names
    // that event.
    let askers: RefCell<HashMap<u64, (u64, u64)>> = RefCell::new(HashMap::new());
    let next_key = std::cell::Cell::new(0u64);
    // An outcome as (log form, event).
    let settle = |key: u64, done: Done| -> (Noun, Event<S>) {
        let asker = if by_reference {
            askers.borrow_mut().remove(&key)
        } else {
            None
        };
        match asker {
            Some((id, n)) => {
                let (_, event) = (computations.borrow_mut().outcome)(done.event(id));
                (done.reference(n, id), event)
            }
            None => (computations.borrow_mut().outcome)(done.event(key)),
        }
    };
    let start = log.len();
    let durable = Durable::new(start);
    std::thread::scope(|scope| {
        let mailbox = &mailbox;
        let durable = &durable;
        // Closes the mailbox however this scope ends (a panicking sink
        // included), so the writer never waits forever and the scope can
        // join it.
        struct CloseOnDrop<'m, S>(&'m Mailbox<S>);
        impl<S> Drop for CloseOnDrop<'_, S> {
            fn drop(&mut self) {
                self.0.close();
            }
        }
        let writer = std::thread::Builder::new()
            .name("spectree-snapshots".into())
            .spawn_scoped(scope, move || -> Result<(), LogError> {
                while let Some((n, s)) = mailbox.take() {
                    if let Err(e) = log.write_snapshot(n, &s.to_noun()) {
                        // Drain, so that posting never waits on us.
                        while mailbox.take().is_some() {}
                        return Err(e);
                    }
                }
                Ok(())
            })
            .map_err(LoggedError::Thread)?;
        let closer = CloseOnDrop(mailbox);
        let (groups, logger) = spawn_logger(scope, log, durable).map_err(LoggedError::Thread)?;
        let groups = RefCell::new(Some(groups));
        // Hands a group to the logger; false (and the failure recorded) if
        // the logger has stopped.
        let send = |nouns: Vec<Noun>| -> bool {
            let sent = groups
                .borrow()
                .as_ref()
                .is_some_and(|g| g.send(nouns).is_ok());
            if !sent && failure.borrow().is_none() {
                *failure.borrow_mut() =
                    Some(durable.failure().unwrap_or(LoggedError::LoggerStopped));
            }
            sent
        };
        let mut state = state;
        let mut metrics = Metrics::default();
        let mut offset = start;
        // Outputs wait here until their events are durable.
        let held: RefCell<VecDeque<Committed<S>>> = RefCell::new(VecDeque::new());
        // Every durable output, in log order: start what its effects ask
        // for, snapshot on schedule, release it.
        let release = |upto: u64, sink: &mut dyn FnMut(Committed<S>)| loop {
            let c = {
                let mut held = held.borrow_mut();
                match held.front() {
                    Some(c) if c.index < upto => held.pop_front().expect("a front"),
                    _ => return,
                }
            };
            let index = c.index;
            if let Ok(effects) = &c.outcome {
                if let Some(mut r) = (computations.borrow_mut().requests)(index, effects) {
                    if by_reference {
                        let key = next_key.get();
                        next_key.set(key + 1);
                        askers.borrow_mut().insert(key, (r.id, index));
                        r.id = key;
                    }
                    supervisor.borrow_mut().submit(r);
                }
            }
            let n = index + 1;
            if every > 0 && n.is_multiple_of(every) {
                if let Some(state) = &c.state {
                    mailbox.post(n, state.clone());
                }
            }
            sink(c);
        };
        let sink = RefCell::new(&mut sink as &mut dyn FnMut(Committed<S>));
        // Rounds: a round ends when its input is exhausted; outcomes still
        // due (from events committed late in it) start the next round.
        loop {
            let mut ready: std::vec::IntoIter<Event<S>> = Vec::new().into_iter();
            let mut source_done = false;
            let input = std::iter::from_fn(|| {
                if let Some(e) = ready.next() {
                    return Some(e);
                }
                release(durable.count(), &mut **sink.borrow_mut());
                let mut batch: Vec<(Noun, Event<S>)> = Vec::new();
                while let Some((id, done)) = {
                    let next = supervisor.borrow_mut().next(Duration::ZERO);
                    next
                } {
                    batch.push(settle(id, done));
                }
                if stopped() {
                    source_done = true;
                }
                if !source_done {
                    let room = group.saturating_sub(batch.len()).max(1);
                    let before = batch.len();
                    batch.extend(source.by_ref().take(room));
                    source_done = batch.len() - before < room;
                }
                if batch.is_empty() {
                    return None;
                }
                let (nouns, events): (Vec<Noun>, Vec<Event<S>>) = batch.into_iter().unzip();
                if !send(nouns) {
                    return None;
                }
                ready = events.into_iter();
                ready.next()
            });
            let states = snapshot_states(offset, every);
            let (next_state, m) = processor.stream_with_states(state, input, states, |c| {
                held.borrow_mut()
                    .push_back(Committed::new(offset + c.index, c.outcome, c.state));
                release(durable.count(), &mut **sink.borrow_mut());
            });
            state = next_state;
            offset += m.events;
            metrics.add(&m);
            if failure.borrow().is_none() {
                match durable.wait_for(offset) {
                    Ok(()) => release(offset, &mut **sink.borrow_mut()),
                    Err(e) => *failure.borrow_mut() = Some(e),
                }
            }
            if failure.borrow().is_some() || supervisor.borrow().outstanding() == 0 {
                break;
            }
            // Wait for the next outcome (or shut down): the next round
            // starts with it.
            let firsts: Vec<(u64, Done)> = loop {
                if stopped() {
                    break supervisor.borrow_mut().shutdown();
                }
                if let Some(d) = supervisor.borrow_mut().next(Duration::from_millis(20)) {
                    break vec![d];
                }
            };
            if firsts.is_empty() {
                // Cannot happen (every request settles); never spin on it.
                *failure.borrow_mut() = Some(LoggedError::Unsettled);
                break;
            }
            let (nouns, round): (Vec<Noun>, Vec<Event<S>>) =
                firsts.into_iter().map(|(id, d)| settle(id, d)).unzip();
            if !send(nouns) {
                break;
            }
            // Run them as a round of their own (later outcomes merge in).
            let states = snapshot_states(offset, every);
            let (next_state, m) = processor.stream_with_states(state, round, states, |c| {
                held.borrow_mut()
                    .push_back(Committed::new(offset + c.index, c.outcome, c.state));
                release(durable.count(), &mut **sink.borrow_mut());
            });
            state = next_state;
            offset += m.events;
            metrics.add(&m);
            if let Err(e) = durable.wait_for(offset) {
                *failure.borrow_mut() = Some(e);
                break;
            }
            release(offset, &mut **sink.borrow_mut());
        }
        // Stop the logger (it finishes what it was given) and the writer.
        groups.borrow_mut().take();
        let logged = logger.join();
        drop(closer);
        let written = writer.join();
        if let Err(p) = logged {
            std::panic::resume_unwind(p);
        }
        // An append failure first: it is what stopped the run.
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        written
            .map_err(|p| LoggedError::SnapshotWriter(spectree::stm::contain::message(&*p)))??;
        Ok((state, metrics))
    })
}
