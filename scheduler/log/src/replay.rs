//! Replaying a log: from its newest intact snapshot, every later event
//! through a processor.
//!
//! Invariant: replay of a log gives the state the writing run committed
//! after the same events, and (opened with
//! [`EventLog::open_read_only`](crate::EventLog::open_read_only)) changes nothing on disk.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

use spectree::noun::Noun;
use spectree::{Backend, Committed, Event, Processor};

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

/// Events read from a log per request: what a replay holds in memory
/// ahead of the processor, at most.
pub(crate) const CHUNK: u64 = 4096;

/// A log's events `from..to` in order, read [`CHUNK`] at a time.
pub(crate) struct Cursor<'a> {
    log: &'a dyn LogBackend,
    next: u64,
    to: u64,
    ready: VecDeque<Noun>,
}

impl<'a> Cursor<'a> {
    pub fn new(log: &'a dyn LogBackend, from: u64, to: u64) -> Self {
        Cursor {
            log,
            next: from,
            to,
            ready: VecDeque::new(),
        }
    }

    /// The number of the event [`peek`](Self::peek) would show.
    pub fn position(&self) -> u64 {
        self.next - self.ready.len() as u64
    }

    /// The next event, read if need be; `None` at the end.
    pub fn peek(&mut self) -> Result<Option<&Noun>, LogError> {
        if self.ready.is_empty() && self.next < self.to {
            let to = (self.next + CHUNK).min(self.to);
            self.ready.extend(self.log.read(self.next, to)?);
            self.next = to;
        }
        Ok(self.ready.front())
    }

    /// The next event and its number.
    pub fn take(&mut self) -> Result<Option<(u64, Noun)>, LogError> {
        let at = self.position();
        self.peek()?;
        Ok(self.ready.pop_front().map(|n| (at, n)))
    }
}

/// Run `log`'s events `from..to` through `processor` from `state` (the
/// state after the first `from`), decoding them with `decode`, delivering
/// outputs (numbered as the log numbers them) to `sink`. Returns the state
/// after the events run, how many ran in all (`to`, unless an event could
/// not be read or decoded), and that failure.
pub(crate) fn run_from<S: Backend, E>(
    processor: &Processor<S>,
    log: &dyn LogBackend,
    (from, state): (u64, S),
    to: u64,
    decode: impl Fn(&Noun) -> Result<Event<S>, E>,
    mut sink: impl FnMut(Committed<S>),
) -> (S, u64, Option<LoggedError>)
where
    E: std::error::Error + Send + Sync + 'static,
{
    let mut cursor = Cursor::new(log, from, to);
    let mut failure = None;
    let events = std::iter::from_fn(|| {
        let (index, noun) = match cursor.take() {
            Ok(next) => next?,
            Err(e) => {
                failure = Some(e.into());
                return None;
            }
        };
        match decode(&noun) {
            Ok(e) => Some(e),
            Err(source) => {
                failure = Some(LoggedError::Decode {
                    path: log.path().to_path_buf(),
                    index,
                    source: Box::new(source),
                });
                None
            }
        }
    });
    let (state, m) = processor.stream(state, events, |c| {
        sink(Committed::new(from + c.index, c.outcome, c.state));
    });
    (state, from + m.events, failure)
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
    let (state, _, failure) = run_from(processor, log, (from, state), total, decode, |_| {});
    if let Some(e) = failure {
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
        let mut scan = Cursor::new(log, start, scanned);
        while let Some((i, noun)) = scan.take()? {
            if let Some(Ok((event, _, _))) = parse_reference(&noun) {
                if event < i {
                    oldest = oldest.min(event);
                }
            }
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
    let mut cursor = Cursor::new(log, from, total);
    loop {
        let round_start = cursor.position();
        let delivered = std::cell::Cell::new(round_start);
        let events = std::iter::from_fn(|| {
            let index = cursor.position();
            let noun = match cursor.peek() {
                Ok(next) => next?,
                Err(e) => {
                    *failure.borrow_mut() = Some(e.into());
                    return None;
                }
            };
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
            // Peeked above: taking it reads nothing.
            cursor.ready.pop_front();
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
        if m.events == 0 && cursor.position() >= total {
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
