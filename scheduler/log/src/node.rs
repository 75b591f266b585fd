//! A node: a Nock kernel's state kept by the processor over a durable log,
//! from open to close, across crashes.
//!
//! Lifecycle: [`Node::open`] creates the log (keeping the kernel in it) or
//! opens the existing one, checks that it was written by this kernel, and
//! recovers: the newest intact snapshot, then the logged tail replayed
//! through the processor (in parallel). [`Node::submit`] then takes events
//! in groups: each group is appended in one durable transaction **before**
//! it runs, and its outputs are delivered in log order after that; a
//! snapshot is written whenever `snapshot_every` events have passed since
//! the last one. [`Node::close`] writes a final snapshot.
//!
//! Invariants:
//! - **Nothing acknowledged is lost.** An output is delivered only after
//!   its event is durable, so a process killed at any instant restarts
//!   with every event whose output anyone saw (and possibly a few more:
//!   durable, never delivered; [`Node::replay_outputs`] recomputes them).
//! - **One writer.** The embedded log's directory lock is held from open
//!   to close, so a second node on the same directory is refused; a
//!   replicated log ([`Node::with_log`]) refuses a second writer at its
//!   appends.
//! - **Deterministic recovery.** The recovered state is the one serial
//!   execution of the log's events gives, whatever the thread count.

use std::path::{Path, PathBuf};

use spectree::noun::Noun;
use spectree::stm::RegionMap;
use spectree::{BuildError, Committed, Config, Event, NounState, Processor};
use thiserror::Error;

use crate::backend::LogBackend;
use crate::replay::{replay, run_from};
use crate::run::{LogPolicy, LoggedError};
use crate::store::{kernel_identity, EventLog, LogError, FILE};

/// Why a node could not open, take events, or close.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The log failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// Recovery (or a replay of outputs) failed.
    #[error(transparent)]
    Logged(#[from] LoggedError),
    /// The processor could not be built.
    #[error("cannot build the processor: {0}")]
    Build(#[from] BuildError),
    /// The log was written by another kernel (or is not a node's log).
    #[error("event log {path} was written by {log:?}, not by this kernel ({kernel})")]
    OtherKernel {
        /// The log's file.
        path: PathBuf,
        /// The log's writer.
        log: String,
        /// This kernel's identity.
        kernel: String,
    },
    /// The log starts from another state than the one given.
    #[error(
        "event log {path} starts from a state with mug {log:#x}, not the given one ({given:#x})"
    )]
    OtherState {
        /// The log's file.
        path: PathBuf,
        /// Mug of the log's initial state.
        log: u32,
        /// Mug of the given state.
        given: u32,
    },
    /// A replay of outputs asked for events the log does not hold.
    #[error("event log {path} holds {events} events; there are no outputs from event {from}")]
    Beyond {
        /// The log's file.
        path: PathBuf,
        /// Events in the log.
        events: u64,
        /// The first output asked for.
        from: u64,
    },
}

/// How a node runs: the processor's configuration and the log's policy.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The processor (threads, fuel, memory, window, ...).
    pub processor: Config,
    /// Snapshot interval. Groups are the caller's: each
    /// [`Node::submit`] is one durable append.
    pub log: LogPolicy,
}

/// A kernel's state over a durable log (see the module docs).
#[derive(Debug)]
pub struct Node {
    processor: Processor<NounState>,
    log: Box<dyn LogBackend>,
    unclean: bool,
    state: NounState,
    /// Events covered by the newest snapshot written (or recovered from).
    snapshot: u64,
    recovered_from: u64,
    every: u64,
    /// The last snapshot write that failed, not yet reported.
    snapshot_failure: Option<LogError>,
}

impl Node {
    /// Open the node in `dir` for `kernel`, creating its log from `initial`
    /// (the atom 0 if `None`) if there is none, and recover its state.
    ///
    /// # Errors
    /// [`LogError::Locked`] (inside [`NodeError::Log`]) if another process
    /// has the log; [`NodeError::OtherKernel`] if the log was written by
    /// another kernel; [`NodeError::OtherState`] if `initial` is given and
    /// the log starts elsewhere; the log's format and damage errors;
    /// [`NodeError::Build`] for a bad configuration. Nothing is written
    /// before these checks.
    pub fn open(
        dir: &Path,
        kernel: Noun,
        regions: RegionMap,
        initial: Option<Noun>,
        config: NodeConfig,
    ) -> Result<Node, NodeError> {
        let processor = Processor::builder(regions)
            .config(config.processor.clone())
            .kernel(kernel.clone())
            .build()?;
        let log = if dir.join(FILE).exists() {
            // Every check through a read-only view: a refused log is not
            // written at all (redb writes to open a file writable).
            let log = EventLog::open_read_only(dir)?;
            let identity = kernel_identity(&kernel);
            if log.identity() != identity || log.kernel()?.as_ref() != Some(&kernel) {
                return Err(NodeError::OtherKernel {
                    path: log.path().to_path_buf(),
                    log: log.identity().to_string(),
                    kernel: identity,
                });
            }
            if let Some(given) = &initial {
                let (first, _) = log.snapshot_at_most(0)?;
                match first {
                    Some((0, s)) if &s == given => {}
                    other => {
                        return Err(NodeError::OtherState {
                            path: log.path().to_path_buf(),
                            log: other.map_or(0, |(_, s)| s.mug()),
                            given: given.mug(),
                        })
                    }
                }
            }
            drop(log);
            EventLog::open(dir)?
        } else {
            EventLog::create_for_kernel(dir, &kernel, &initial.unwrap_or(Noun::ZERO))?
        };
        let unclean = log.recovered();
        Self::recover(processor, Box::new(log), unclean, config)
    }

    /// A node for `kernel` on `log`, any [`LogBackend`] (made or opened by
    /// the caller, as this node's only writer), recovered from it.
    ///
    /// # Errors
    /// [`NodeError::OtherKernel`] if the log's identity is not this
    /// kernel's; [`NodeError::Build`] for a bad configuration; the log's
    /// errors while recovering.
    pub fn with_log(
        log: Box<dyn LogBackend>,
        kernel: Noun,
        regions: RegionMap,
        config: NodeConfig,
    ) -> Result<Node, NodeError> {
        let identity = kernel_identity(&kernel);
        if log.identity() != identity {
            return Err(NodeError::OtherKernel {
                path: log.path().to_path_buf(),
                log: log.identity().to_string(),
                kernel: identity,
            });
        }
        let processor = Processor::builder(regions)
            .config(config.processor.clone())
            .kernel(kernel)
            .build()?;
        Self::recover(processor, log, false, config)
    }

    fn recover(
        processor: Processor<NounState>,
        log: Box<dyn LogBackend>,
        unclean: bool,
        config: NodeConfig,
    ) -> Result<Node, NodeError> {
        let recovered = replay(&processor, &*log, |e| {
            Ok::<_, std::convert::Infallible>(Event::nock(e.clone()))
        })?;
        Ok(Node {
            processor,
            snapshot: recovered.from_snapshot,
            recovered_from: recovered.from_snapshot,
            state: recovered.state,
            log,
            unclean,
            every: config.log.snapshot_every,
            snapshot_failure: None,
        })
    }

    /// Events in the log (the next event's number).
    pub fn events(&self) -> u64 {
        self.log.len()
    }

    /// The state after every logged event.
    pub fn state(&self) -> &Noun {
        &self.state.0
    }

    /// Events covered by the snapshot recovery started from.
    pub fn recovered_from(&self) -> u64 {
        self.recovered_from
    }

    /// Whether the log was left open by a writer that stopped abruptly.
    pub fn recovered_unclean(&self) -> bool {
        self.unclean
    }

    /// The log's file.
    pub fn path(&self) -> &Path {
        self.log.path()
    }

    /// Log `events` durably (one transaction), run them, and deliver each
    /// one's output to `sink` in log order (numbered as the log numbers
    /// them); returns the first event's number.
    ///
    /// A snapshot that fails to write does not fail the call (the events
    /// are logged; recovery replays them from an older snapshot): it is
    /// kept for [`take_snapshot_failure`](Self::take_snapshot_failure),
    /// and the next group tries again.
    ///
    /// # Errors
    /// [`NodeError::Log`] if the append fails: nothing of the group is
    /// then run or delivered, and the node's state is unchanged. (A log
    /// that cannot append atomically may hold a prefix of the group; it
    /// then refuses further appends, and the node must be opened again,
    /// which recovers what the log holds.)
    ///
    /// # Panics
    /// If `sink` panics.
    pub fn submit(
        &mut self,
        events: Vec<Noun>,
        mut sink: impl FnMut(Committed<NounState>),
    ) -> Result<u64, NodeError> {
        let first = self.log.append(&events)?;
        let state = std::mem::replace(&mut self.state, NounState(Noun::ZERO));
        let (state, _) = self
            .processor
            .stream(state, events.into_iter().map(Event::nock), |c| {
                sink(Committed::new(first + c.index, c.outcome, c.state));
            });
        self.state = state;
        let n = self.log.len();
        if self.every > 0 && n - self.snapshot >= self.every {
            match self.log.write_snapshot(n, &self.state.0) {
                Ok(()) => self.snapshot = n,
                Err(e) => self.snapshot_failure = Some(e),
            }
        }
        Ok(first)
    }

    /// The last snapshot write that failed since this was last asked, if
    /// any.
    pub fn take_snapshot_failure(&mut self) -> Option<LogError> {
        self.snapshot_failure.take()
    }

    /// Recompute the outputs of logged events `from..` (say, those a
    /// crashed process logged but may not have delivered) and deliver them
    /// to `sink` in order, from the newest snapshot at or before `from`.
    /// The node's state is not changed.
    ///
    /// # Errors
    /// [`NodeError::Beyond`] if `from` is past the log's end; the log's
    /// errors.
    pub fn replay_outputs(
        &self,
        from: u64,
        mut sink: impl FnMut(Committed<NounState>),
    ) -> Result<(), NodeError> {
        let total = self.log.len();
        if from > total {
            return Err(NodeError::Beyond {
                path: self.log.path().to_path_buf(),
                events: total,
                from,
            });
        }
        let (snapshot, _) = self.log.snapshot_at_most(from)?;
        let Some((start, noun)) = snapshot else {
            return Err(LoggedError::NoSnapshot {
                path: self.log.path().to_path_buf(),
            }
            .into());
        };
        let decode = |e: &Noun| Ok::<_, std::convert::Infallible>(Event::nock(e.clone()));
        let sink = |c: Committed<NounState>| {
            if c.index >= from {
                sink(c);
            }
        };
        let run = (start, NounState(noun));
        match run_from(&self.processor, &*self.log, run, total, decode, sink) {
            (_, _, Some(e)) => Err(e.into()),
            (_, _, None) => Ok(()),
        }
    }

    /// Write a final snapshot (unless the newest one is current) and close
    /// the log.
    ///
    /// # Errors
    /// The snapshot's write error.
    pub fn close(self) -> Result<(), NodeError> {
        let n = self.log.len();
        if n > self.snapshot {
            self.log.write_snapshot(n, &self.state.0)?;
        }
        Ok(())
    }
}
