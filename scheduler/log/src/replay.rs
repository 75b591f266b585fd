//! Replaying a log: from its newest intact snapshot, every later event
//! through a processor.
//!
//! Invariant: replay of a log gives the state the writing run committed
//! after the same events, and (opened with
//! [`EventLog::open_read_only`]) changes nothing on disk.

use std::cell::RefCell;

use spectree::noun::Noun;
use spectree::{Backend, Event, Processor};

use crate::run::LoggedError;
use crate::store::{EventLog, LogError};

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
/// [`EventLog::open_read_only`] so that replay changes nothing.
///
/// # Errors
/// [`LoggedError::Log`] for a damaged event or a failing store;
/// [`LoggedError::NoSnapshot`] when no intact snapshot exists;
/// [`LoggedError::Decode`] when an event does not decode.
pub fn replay<S: Backend, E>(
    processor: &Processor<S>,
    log: &EventLog,
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
