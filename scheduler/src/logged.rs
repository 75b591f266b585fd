//! Running with a durable log, and replaying one.
//!
//! Invariant: an event's outcome reaches the sink only after the event is
//! durable in the log (events are appended in groups, one sync per group,
//! before the processor sees them), and replay of a log gives the state
//! the writing run committed after the same events.

use std::cell::RefCell;
use std::sync::mpsc;

use spectree_noun::Noun;

use crate::durable::{EventLog, LogError};
use crate::event::{Backend, Committed, Event};
use crate::metrics::Metrics;
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
    mut sink: impl FnMut(Committed<S>),
) -> Result<(S, Metrics), LogError> {
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
    let failure: RefCell<Option<LogError>> = RefCell::new(None);
    let group = policy.group.max(1);
    let mut source = events.into_iter();
    let mut ready: std::vec::IntoIter<Event<S>> = Vec::new().into_iter();
    let durable = std::iter::from_fn(|| {
        if let Some(e) = ready.next() {
            return Some(e);
        }
        let batch: Vec<(Noun, Event<S>)> = source.by_ref().take(group).collect();
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
    let (tx, rx) = mpsc::channel::<(u64, S)>();
    let result = std::thread::scope(|scope| {
        let writer = scope.spawn(move || -> Result<(), LogError> {
            for (n, s) in rx {
                log.write_snapshot(n, &s.to_noun())?;
            }
            Ok(())
        });
        let every = policy.snapshot_every;
        let out = processor.stream(state, durable, |c| {
            let n = c.index + 1;
            if every > 0 && n % every == 0 {
                let _ = tx.send((n, c.state.clone()));
            }
            sink(c);
        });
        drop(tx);
        let written = writer.join().expect("the snapshot writer does not panic");
        (out, written)
    });
    if let Some(e) = failure.into_inner() {
        return Err(e);
    }
    let (out, written) = result;
    written?;
    Ok(out)
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
