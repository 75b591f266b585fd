//! Access tracking and conflict detection for spectree.
//!
//! For every speculative execution this crate records what it read and wrote,
//! and decides whether that still holds after other events committed. Its
//! correctness is the whole product's correctness:
//!
//! - [`RegionMap`] / [`HashRegions`]: the commutation points of a state, one
//!   bit each ([`region`](mod@region)).
//! - [`AccessSet`] and [`validate`]: exact reads, shapes and writes behind
//!   region bitsets; bitsets filter, exact keys decide ([`access`](mod@access)).
//! - [`Tracker`]: provenance tags through the Nock interpreter's hook, so
//!   navigating, copying and editing the state are not reads
//!   ([`tracker`](mod@tracker)).
//! - [`execute_nock`], [`execute_rust`] and [`graft`]: one event against one
//!   snapshot, and its writes onto a newer state ([`exec`](mod@exec)).
//! - [`NounState`], [`MapState`] and [`Tx`]: the state backends and the
//!   transaction view Rust events use ([`state`](mod@state)).
//!
//! ```
//! use spectree_noun::{nock::Limits, Noun};
//! use spectree_stm::{execute_nock, graft, validate, AccessSet, NounState, RegionMap};
//!
//! let regions = RegionMap::depth(1).unwrap();
//! // Kernel: no effects; put the event at state axis 2.
//! let kernel: Noun = "[[1 0] 10 [2 0 2] 0 3]".parse()?;
//! let state = NounState("[0 0]".parse()?);
//! let run = execute_nock(&kernel, &Noun::atom(7), &state, &regions, &Limits::fuel(1000));
//! // Meanwhile another event wrote axis 3: no conflict, graft the write.
//! let newer = NounState("[0 9]".parse()?);
//! let mut theirs = AccessSet::new(&regions);
//! theirs.write(spectree_noun::Axis::TAIL, &regions);
//! assert!(validate(&run.access, [&theirs]));
//! assert_eq!(graft(&newer, &run.writes)?.0.to_string(), "[7 9]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod access;
pub mod contain;
pub mod exec;
pub mod key;
pub mod region;
pub mod state;
pub mod tracker;

#[cfg(test)]
mod testing;

pub use access::{validate, AccessSet, ReadWatch};
pub use exec::{
    execute_nock, execute_nock_watched, execute_rust, execute_rust_watched, graft, run_nock_direct,
    run_rust_direct, EventError, Execution, RustEvent,
};
pub use key::{Key, MapKey};
pub use region::{HashRegions, RegionError, RegionMap, Regions};
pub use spectree_noun as noun;
pub use state::{MapState, NounState, State, StateError, Tx, Writes};
pub use tracker::{Prov, Tracker};
