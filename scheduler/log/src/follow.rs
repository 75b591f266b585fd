//! A follower: a replica of a log's state, applying every event the writer
//! appends, in order, with the same processor.
//!
//! Invariant: after [`Follower::catch_up`] returns `n`, the follower's
//! state is the one serial execution of the log's first `n` events gives,
//! the writer's state after the same events (the processor's results never
//! depend on threads or timing). It never writes to the log.

use spectree::noun::Noun;
use spectree::{Backend, Event, Processor};

use crate::backend::LogBackend;
use crate::replay::{replay, run_from, Replayed};
use crate::run::LoggedError;

/// A replica of a log's state (see the module docs).
#[derive(Debug)]
pub struct Follower<S> {
    /// `None` only while events run.
    state: Option<S>,
    applied: u64,
    from_snapshot: u64,
}

impl<S: Backend> Follower<S> {
    /// Start from the log's newest snapshot and everything after it.
    ///
    /// # Errors
    /// As [`replay`].
    pub fn start<E>(
        processor: &Processor<S>,
        log: &dyn LogBackend,
        decode: impl Fn(&Noun) -> Result<Event<S>, E>,
    ) -> Result<Follower<S>, LoggedError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        log.refresh()?;
        let Replayed {
            events,
            from_snapshot,
            state,
            ..
        } = replay(processor, log, decode)?;
        Ok(Follower {
            state: Some(state),
            applied: events,
            from_snapshot,
        })
    }

    /// Apply what the writer appended since; returns the events applied in
    /// all.
    ///
    /// # Errors
    /// The log's failures; [`LoggedError::Decode`] for an event that does
    /// not decode.
    pub fn catch_up<E>(
        &mut self,
        processor: &Processor<S>,
        log: &dyn LogBackend,
        decode: impl Fn(&Noun) -> Result<Event<S>, E>,
    ) -> Result<u64, LoggedError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let total = log.refresh()?;
        let state = self.state.take().expect("the state is in place");
        let (state, applied, failure) =
            run_from(processor, log, (self.applied, state), total, decode, |_| {});
        self.state = Some(state);
        self.applied = applied;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(self.applied)
    }

    /// The state after the events applied.
    pub fn state(&self) -> &S {
        self.state.as_ref().expect("the state is in place")
    }

    /// Events applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// Events covered by the snapshot the follower started from.
    pub fn from_snapshot(&self) -> u64 {
        self.from_snapshot
    }
}
