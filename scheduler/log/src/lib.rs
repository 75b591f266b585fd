//! The durable event log of spectree, and what runs on it.
//!
//! | item | module | what it is |
//! |---|---|---|
//! | [`LogBackend`] | `backend` | what every event log offers: durable numbered appends, checked reads, snapshots; one writer |
//! | `JetStreamLog`, `JetStreamConfig` (feature `jetstream`) | `jetstream` | the log on a replicated NATS JetStream stream, snapshots in its object store; one writer by expected-last-sequence |
//! | [`EventLog`], [`LogError`], [`FORMAT`] | `store` | events and snapshots in a redb database, sealed, versioned, one writer at a time |
//! | (private) `ReadOnlyFile` | `overlay` | how a reader opens the store without ever writing the file |
//! | [`run_logged`], [`resume_logged`], [`LogPolicy`], [`LoggedError`] | `run` | running a processor while its events are logged durably (outputs released only once durable), from the start or continuing a log |
//! | (private) `Durable`, `spawn_logger` | `pipeline` | pipelined group commit: a logger thread appends groups while the processor runs them |
//! | [`run_with_computations`], [`Computations`] | `run` | the same, with asynchronous computations whose outcomes become events |
//! | [`Supervisor`], [`Request`], [`Done`] | `computations` | asynchronous computations: bounded threads, deadlines, exactly one outcome each |
//! | [`replay`], [`replay_with_computations`], [`Replayed`] | `replay` | replaying a log from its newest intact snapshot, recomputing outcomes logged by reference |
//! | [`Follower`] | `follow` | a replica of a log's state, applying what the writer appends |
//! | [`Node`], [`NodeConfig`], [`NodeError`] | `node` | a kernel's state over a log, from open (recovery) through submitted events to close |
//!
//! ```
//! use spectree::{Event, NounState, Processor};
//! use spectree::stm::RegionMap;
//! use spectree_log::{replay, run_logged, EventLog, LogPolicy};
//!
//! let dir = std::env::temp_dir().join(format!("spectree-log-doc-{}", std::process::id()));
//! # let _ = std::fs::remove_dir_all(&dir);
//! let processor = Processor::builder(RegionMap::depth(1)?)
//!     .kernel("[[1 0] 10 [2 0 2] 0 3]".parse()?)
//!     .threads(2)
//!     .build()?;
//! let state = NounState("[0 0]".parse()?);
//! let log = EventLog::create(&dir, "example kernel", &state.0)?;
//! let events = (0..100u64).map(|n| (n.into(), Event::nock(n.into())));
//! let (live, _) = run_logged(&processor, &log, state, events, LogPolicy::default(), |_| {})?;
//! drop(log);
//! let log = EventLog::open_read_only(&dir)?;
//! let again = replay(&processor, &log, |n| Ok::<_, std::convert::Infallible>(Event::nock(n.clone())))?;
//! assert_eq!(again.state, live);
//! # drop(log); std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![deny(missing_debug_implementations)]

mod backend;
mod computations;
mod follow;
#[cfg(feature = "jetstream")]
mod jetstream;
mod node;
mod overlay;
mod pipeline;
mod replay;
mod run;
mod store;

pub use backend::LogBackend;
pub use computations::{async_tag, reference_tag, Done, Request, Supervisor, Unresolved};
pub use follow::Follower;
#[cfg(feature = "jetstream")]
pub use jetstream::{JetStreamConfig, JetStreamLog};
pub use node::{Node, NodeConfig, NodeError};
pub use replay::{replay, replay_with_computations, Replayed};
pub use run::{
    resume_logged, run_logged, run_with_computations, Computations, LogPolicy, LoggedError,
};
pub use store::{kernel_identity, Corruption, EventLog, LogError, SnapshotFound, FILE, FORMAT};
