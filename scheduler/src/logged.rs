//! Running with a durable log, and replaying one.
//!
//! Invariant: an event's outcome reaches the sink only after the event is
//! durable in the log (events are appended in groups, one sync per group,
//! before the processor sees them), and replay of a log gives the state
//! the writing run committed after the same events.

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use spectree_noun::Noun;

use crate::durable::{EventLog, LogError};
use crate::event::{Backend, Committed, Event};
use crate::metrics::Metrics;
use crate::offpath::{Done, Request, Supervisor};
use crate::Processor;

/// How a logged run groups syncs and takes snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPolicy {
    /// Events per append (one sync each): more amortises the sync, fewer
    /// shortens the wait before outcomes are released.
    pub group: usize,
    /// Take a snapshot after every this many events (0: never, besides the
    /// initial one).
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

/// Run `events` (each with its log form) through `processor`, logging
/// them durably first. An empty log first gets a snapshot of the initial
/// state; snapshots are written by a background thread, so taking one does
/// not stop processing (the state is persistent: the clone is consistent).
///
/// # Errors
/// [`LogError`] if the log is not empty or a write fails; processing stops
/// at the first failed append, and nothing after it is released.
pub fn run_logged<S: Backend>(
    processor: &Processor<S>,
    log: &EventLog,
    state: S,
    events: impl IntoIterator<Item = (Noun, Event<S>)>,
    policy: LogPolicy,
    sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LogError> {
    let no_requests = |_: u64, _: &Noun| None;
    let no_outcomes = |n: Noun| (n.clone(), Event::Nock(n));
    run_with_computations(
        processor,
        log,
        state,
        events,
        policy,
        &mut Offpath {
            requests: no_requests,
            outcome: no_outcomes,
            concurrency: 1,
            shutdown: None,
        },
        sink,
    )
}

/// How a logged run finds computation requests in effects and turns their
/// outcomes into events.
pub struct Offpath<R, O> {
    /// The request in the effects of event `index`, if any.
    pub requests: R,
    /// The outcome event `[%async id result]` as (log form, event).
    pub outcome: O,
    /// Computations run at once, at most.
    pub concurrency: usize,
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
/// As [`run_logged`].
pub fn run_with_computations<S, R, O>(
    processor: &Processor<S>,
    log: &EventLog,
    state: S,
    events: impl IntoIterator<Item = (Noun, Event<S>)>,
    policy: LogPolicy,
    offpath: &mut Offpath<R, O>,
    mut sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LogError>
where
    S: Backend,
    R: FnMut(u64, &Noun) -> Option<Request>,
    O: FnMut(Noun) -> (Noun, Event<S>),
{
    if !log.is_empty() {
        return Err(LogError::Store {
            path: "(log)".into(),
            why: format!(
                "the log already holds {} events; replay it instead",
                log.len()
            ),
        });
    }
    log.write_snapshot(0, &state.to_noun())?;
    let group = policy.group.max(1);
    let mut source = events.into_iter().fuse();
    let supervisor = RefCell::new(Supervisor::new(offpath.concurrency));
    let failure: RefCell<Option<LogError>> = RefCell::new(None);
    let (tx, rx) = mpsc::channel::<(u64, S)>();
    let every = policy.snapshot_every;
    let stopping = offpath.shutdown.clone();
    let stopped = || stopping.as_ref().is_some_and(|s| s.load(Ordering::SeqCst));
    let offpath = RefCell::new(offpath);
    std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(), LogError> {
            for (n, s) in rx {
                log.write_snapshot(n, &s.to_noun())?;
            }
            Ok(())
        });
        let mut state = state;
        let mut metrics = Metrics::default();
        let mut offset = 0u64;
        // Every committed output, in log order: start what its effects ask
        // for, snapshot on schedule, release it.
        let mut deliver = |offset: u64, c: Committed<S>| {
            let index = offset + c.index;
            if let Ok(effects) = &c.outcome {
                if let Some(r) = (offpath.borrow_mut().requests)(index, effects) {
                    supervisor.borrow_mut().submit(r);
                }
            }
            let n = index + 1;
            if every > 0 && n % every == 0 {
                let _ = tx.send((n, c.state.clone()));
            }
            sink(Committed {
                index,
                outcome: c.outcome,
                state: c.state,
            });
        };
        // Rounds: a round ends when its input is exhausted; outcomes still
        // due (from events committed late in it) start the next round.
        loop {
            let mut ready: std::vec::IntoIter<Event<S>> = Vec::new().into_iter();
            let mut source_done = false;
            let durable = std::iter::from_fn(|| {
                if let Some(e) = ready.next() {
                    return Some(e);
                }
                let mut batch: Vec<(Noun, Event<S>)> = Vec::new();
                while let Some((_, done)) = {
                    let next = supervisor.borrow_mut().next(Duration::ZERO);
                    next.map(|(id, d)| ((), d.event(id)))
                } {
                    batch.push((offpath.borrow_mut().outcome)(done));
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
                let nouns: Vec<Noun> = batch.iter().map(|(n, _)| n.clone()).collect();
                if let Err(e) = log.append(&nouns) {
                    *failure.borrow_mut() = Some(e);
                    return None;
                }
                ready = batch
                    .into_iter()
                    .map(|(_, e)| e)
                    .collect::<Vec<_>>()
                    .into_iter();
                ready.next()
            });
            let (next_state, m) = processor.stream(state, durable, |c| deliver(offset, c));
            state = next_state;
            offset += m.events;
            add(&mut metrics, &m);
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
                *failure.borrow_mut() = Some(LogError::Store {
                    path: "(log)".into(),
                    why: "computations were outstanding but none could be settled".into(),
                });
                break;
            }
            let (nouns, round): (Vec<Noun>, Vec<Event<S>>) = firsts
                .into_iter()
                .map(|(id, d)| (offpath.borrow_mut().outcome)(d.event(id)))
                .unzip();
            if let Err(e) = log.append(&nouns) {
                *failure.borrow_mut() = Some(e);
                break;
            }
            // Run them as a round of their own (later outcomes merge in).
            let (next_state, m) = processor.stream(state, round, |c| deliver(offset, c));
            state = next_state;
            offset += m.events;
            add(&mut metrics, &m);
        }
        drop(tx);
        let written = writer.join().unwrap_or_else(|_| {
            Err(LogError::Store {
                path: "(log)".into(),
                why: "the snapshot writer panicked".into(),
            })
        });
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        written?;
        Ok((state, metrics))
    })
}

fn add(total: &mut Metrics, m: &Metrics) {
    total.events += m.events;
    total.executions += m.executions;
    total.reexecutions += m.reexecutions;
    total.aborts += m.aborts;
    total.direct += m.direct;
    total.failed_validations += m.failed_validations;
    total.commit_stalls += m.commit_stalls;
    total.width_changes += m.width_changes;
    total.commit_secs += m.commit_secs;
    total.naps += m.naps;
    total.spawns += m.spawns;
    if total.validation_failures.len() < m.validation_failures.len() {
        total
            .validation_failures
            .resize(m.validation_failures.len(), 0);
    }
    for (t, v) in total
        .validation_failures
        .iter_mut()
        .zip(&m.validation_failures)
    {
        *t += v;
    }
}

/// What a replay found.
#[derive(Debug)]
pub struct Replayed<S> {
    /// Events in the log.
    pub events: u64,
    /// Events covered by the snapshot replay started from.
    pub from_snapshot: u64,
    /// The state after every event.
    pub state: S,
    /// Damaged snapshots skipped (newest first).
    pub skipped: Vec<LogError>,
}

/// Replay `log` with `processor` from its newest intact snapshot,
/// decoding events with `decode`.
///
/// # Errors
/// [`LogError::Corrupt`] for a damaged or undecodable event or when no
/// intact snapshot exists; [`LogError::Store`] if the store fails.
pub fn replay<S: Backend>(
    processor: &Processor<S>,
    log: &EventLog,
    decode: impl Fn(&Noun) -> Result<Event<S>, String>,
) -> Result<Replayed<S>, LogError> {
    let (snapshot, skipped) = log.latest_snapshot()?;
    let corrupt = |index, why: String| LogError::Corrupt {
        path: "(log)".into(),
        table: "snapshots",
        index,
        why,
    };
    let Some((from, noun)) = snapshot else {
        return Err(corrupt(
            0,
            "no intact snapshot, not even the initial one".into(),
        ));
    };
    let state =
        S::from_noun(&noun).ok_or_else(|| corrupt(from, "not a state of this kind".into()))?;
    let total = log.len();
    let failure: RefCell<Option<LogError>> = RefCell::new(None);
    let mut next = from;
    let mut ready: std::vec::IntoIter<Noun> = Vec::new().into_iter();
    let events = std::iter::from_fn(|| loop {
        if let Some(n) = ready.next() {
            let index = next - ready.len() as u64 - 1;
            return match decode(&n) {
                Ok(e) => Some(e),
                Err(why) => {
                    *failure.borrow_mut() = Some(LogError::Corrupt {
                        path: "(log)".into(),
                        table: "events",
                        index,
                        why,
                    });
                    None
                }
            };
        }
        if next >= total {
            return None;
        }
        let to = (next + 4096).min(total);
        match log.read(next, to) {
            Ok(v) => {
                ready = v.into_iter();
                next = to;
            }
            Err(e) => {
                *failure.borrow_mut() = Some(e);
                return None;
            }
        }
    });
    let (state, _) = processor.stream(state, events, |_| {});
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    Ok(Replayed {
        events: total,
        from_snapshot: from,
        state,
        skipped,
    })
}
