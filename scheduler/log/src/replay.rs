//! Replaying a log: from its newest intact snapshot, every later event
//! through a processor.
//!
//! Invariant: replay of a log gives the state the writing run committed
//! after the same events, and (opened with
//! [`EventLog::open_read_only`](crate::EventLog::open_read_only)) changes nothing on disk.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use spectree::noun::Noun;
use spectree::{Backend, Event, Processor};

use crate::backend::LogBackend;
use crate::computations::{parse_reference, resolve, Request, Unresolved};
use crate::run::LoggedError;
use crate::store::LogError;

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
/// decoding events with `decode`. Open the log with
/// [`EventLog::open_read_only`](crate::EventLog::open_read_only) so that replay changes nothing.
///
/// # Errors
/// [`LoggedError::Log`] for a damaged event or a failing store;
/// [`LoggedError::NoSnapshot`] when no intact snapshot exists;
/// [`LoggedError::Decode`] when an event does not decode.
pub fn replay<S: Backend, E>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    decode: impl Fn(&Noun) -> Result<Event<S>, E>,
) -> Result<Replayed<S>, LoggedError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let (snapshot, skipped) = log.latest_snapshot()?;
    let path = || log.path().to_path_buf();
    let Some((from, noun)) = snapshot else {
        return Err(LoggedError::NoSnapshot { path: path() });
    };
    let state = S::from_noun(&noun).ok_or_else(|| LoggedError::NotAState {
        path: path(),
        events: from,
    })?;
    let total = log.len();
    let failure: RefCell<Option<LoggedError>> = RefCell::new(None);
    let mut next = from;
    let mut ready: std::vec::IntoIter<Noun> = Vec::new().into_iter();
    let events = std::iter::from_fn(|| loop {
        if let Some(n) = ready.next() {
            let index = next - ready.len() as u64 - 1;
            return match decode(&n) {
                Ok(e) => Some(e),
                Err(source) => {
                    *failure.borrow_mut() = Some(LoggedError::Decode {
                        path: path(),
                        index,
                        source: Box::new(source),
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
                *failure.borrow_mut() = Some(e.into());
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

/// [`replay`] of a log whose computation outcomes were logged by reference
/// ([`Computations::by_reference`](crate::Computations)): each reference
/// is resolved when replay reaches it, by recomputing the request found
/// (with `requests`, as the live run found it) in the referenced event's
/// effects, and checking the result against what was logged; the event
/// then decodes as the live run's `[%async id result]`. Replay starts
/// from the newest snapshot at or before both the log's newest and the
/// oldest event the tail refers to, and runs in rounds that end where a
/// reference needs an output not yet delivered.
///
/// # Errors
/// As [`replay`]; [`LoggedError::Reference`] when a reference is
/// malformed, names no request, or recomputes to another outcome (a
/// tampered log, or a kernel or interpreter that changed).
pub fn replay_with_computations<S: Backend, E>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    decode: impl Fn(&Noun) -> Result<Event<S>, E>,
    mut requests: impl FnMut(u64, &Noun) -> Option<Request>,
) -> Result<Replayed<S>, LoggedError>
where
    E: std::error::Error + Send + Sync + 'static,
{
    let path = || log.path().to_path_buf();
    let total = log.len();
    // Start at a snapshot at or before every event the replayed part
    // refers to: moving the start earlier brings more references into
    // the replayed part, so repeat until it stays put. Each pass scans
    // only the events the last one added.
    let (newest, _) = log.latest_snapshot()?;
    let mut start = newest.map_or(0, |(n, _)| n);
    let mut scanned = total;
    loop {
        let mut oldest = start;
        let mut at = start;
        while at < scanned {
            let to = (at + 4096).min(scanned);
            for (i, noun) in (at..).zip(log.read(at, to)?) {
                if let Some(Ok((event, _, _))) = parse_reference(&noun) {
                    if event < i {
                        oldest = oldest.min(event);
                    }
                }
            }
            at = to;
        }
        scanned = start;
        if oldest >= start {
            break;
        }
        let (earlier, _) = log.snapshot_at_most(oldest)?;
        start = earlier.map_or(0, |(n, _)| n);
    }
    let oldest = start;
    let (snapshot, skipped) = log.snapshot_at_most(oldest)?;
    let Some((from, noun)) = snapshot else {
        return Err(LoggedError::NoSnapshot { path: path() });
    };
    let mut state = S::from_noun(&noun).ok_or_else(|| LoggedError::NotAState {
        path: path(),
        events: from,
    })?;
    let failure: RefCell<Option<LoggedError>> = RefCell::new(None);
    let pending: RefCell<HashMap<u64, Request>> = RefCell::new(HashMap::new());
    let mut next = from;
    let mut ready: VecDeque<Noun> = VecDeque::new();
    loop {
        let round_start = next - ready.len() as u64;
        let delivered = std::cell::Cell::new(round_start);
        let events = std::iter::from_fn(|| {
            if ready.is_empty() {
                if next >= total {
                    return None;
                }
                let to = (next + 4096).min(total);
                match log.read(next, to) {
                    Ok(v) => {
                        ready.extend(v);
                        next = to;
                    }
                    Err(e) => {
                        *failure.borrow_mut() = Some(e.into());
                        return None;
                    }
                }
            }
            let index = next - ready.len() as u64;
            let noun = ready.front().expect("not empty");
            let resolved = match parse_reference(noun) {
                None => Ok(noun.clone()),
                Some(Err(why)) => Err(why),
                Some(Ok((event, _, _))) if event >= index => Err(Unresolved::Forward { event }),
                // Its request is in an output not delivered yet: end the
                // round here.
                Some(Ok((event, _, _))) if event >= delivered.get() => return None,
                Some(Ok((event, id, by))) => match pending.borrow_mut().remove(&event) {
                    None => Err(Unresolved::NoRequest { event }),
                    Some(request) => resolve(&request, id, &by),
                },
            };
            ready.pop_front();
            let decoded = resolved
                .map_err(|why| LoggedError::Reference {
                    path: path(),
                    index,
                    why,
                })
                .and_then(|n| {
                    decode(&n).map_err(|source| LoggedError::Decode {
                        path: path(),
                        index,
                        source: Box::new(source),
                    })
                });
            match decoded {
                Ok(e) => Some(e),
                Err(e) => {
                    *failure.borrow_mut() = Some(e);
                    None
                }
            }
        });
        let (next_state, m) = processor.stream(state, events, |c| {
            let index = round_start + c.index;
            delivered.set(index + 1);
            if let Ok(effects) = &c.outcome {
                if let Some(r) = requests(index, effects) {
                    pending.borrow_mut().insert(index, r);
                }
            }
        });
        state = next_state;
        if let Some(e) = failure.borrow_mut().take() {
            return Err(e);
        }
        if m.events == 0 && ready.is_empty() && next >= total {
            break;
        }
    }
    Ok(Replayed {
        events: total,
        from_snapshot: from,
        state,
        skipped,
    })
}
