//! The durable event log of spectree, and what runs on it.
//!
//! | item | module | what it is |
//! |---|---|---|
//! | [`EventLog`], [`LogError`], [`FORMAT`] | `store` | events and snapshots in a redb database, sealed, versioned, one writer at a time |
//! | (private) `ReadOnlyFile` | `overlay` | how a reader opens the store without ever writing the file |
//! | [`run_logged`], [`LogPolicy`], [`LoggedError`] | `run` | running a processor while logging its events durably first |
//! | [`run_with_computations`], [`Computations`] | `run` | the same, with asynchronous computations whose outcomes become events |
//! | [`Supervisor`], [`Request`], [`Done`] | `computations` | asynchronous computations: bounded threads, deadlines, exactly one outcome each |
//! | [`replay`], [`Replayed`] | `replay` | replaying a log from its newest intact snapshot |
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

mod computations;
mod overlay;
mod replay;
mod run;
mod store;

pub use computations::{async_tag, Done, Request, Supervisor};
pub use replay::{replay, Replayed};
pub use run::{run_logged, run_with_computations, Computations, LogPolicy, LoggedError};
pub use store::{Corruption, EventLog, LogError, SnapshotFound, FILE, FORMAT};
