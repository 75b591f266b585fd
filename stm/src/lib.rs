//! Access tracking and conflict detection for spectree.
//!
//! For every speculative execution this crate records what it read and wrote,
//! and decides whether that still holds after other events committed. Its
//! correctness is the whole product's correctness.
//!
//! | item | module | what it is |
//! |---|---|---|
//! | [`State`], [`NounState`], [`MapState`], [`Tx`] | `state` | state backends, and the transaction view Rust events read and write through |
//! | [`Key`], [`MapKey`] | `key` | what a state is addressed by, and when two addresses touch |
//! | [`Regions`], [`RegionMap`], [`HashRegions`] | `region` | the commutation points of a state, one bit each |
//! | [`AccessSet`], [`validate`], [`ReadWatch`] | `access` | exact reads, shapes and writes behind region bitsets; bitsets filter, exact keys decide |
//! | [`execute_nock`], [`execute_rust`], [`Options`], [`Execution`], [`graft`] | `exec` | one event against one snapshot, and its writes onto a newer state |
//! | (private) `Tracker` | `tracker` | provenance tags through the Nock interpreter's hook, so navigating, copying and editing the state are not reads |
//! | [`contain`](mod@contain) | `contain` | panics that are outcomes, contained silently |
//!
//! ```
//! use spectree_noun::{nock::Limits, Noun};
//! use spectree_stm::{execute_nock, graft, validate, AccessSet, NounState, Options, RegionMap};
//!
//! let regions = RegionMap::depth(1).unwrap();
//! // Kernel: no effects; put the event at state axis 2.
//! let kernel: Noun = "[[1 0] 10 [2 0 2] 0 3]".parse()?;
//! let state = NounState("[0 0]".parse()?);
//! let options = Options::tracked(Limits::fuel(1000));
//! let run = execute_nock(&kernel, &Noun::atom(7), &state, &regions, &options);
//! // Meanwhile another event wrote axis 3: no conflict, graft the write.
//! let newer = NounState("[0 9]".parse()?);
//! let mut theirs = AccessSet::new(&regions);
//! theirs.write(spectree_noun::Axis::TAIL, &regions);
//! assert!(validate(&run.access, [&theirs]));
//! assert_eq!(graft(&newer, &run.writes)?.0.to_string(), "[7 9]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![deny(missing_debug_implementations)]

mod access;
pub mod contain;
mod exec;
mod key;
mod map;
mod region;
mod state;
mod tracker;
mod trie;

#[cfg(test)]
mod testing;

pub use access::{validate, AccessSet, ReadWatch};
pub use exec::{execute_nock, execute_rust, graft, EventError, Execution, Options, RustEvent};
pub use key::{Key, MapKey};
pub use map::MapState;
pub use region::{HashRegions, RegionError, RegionMap, Regions};
pub use spectree_noun as noun;
pub use state::{NounState, Snapshot, State, StateError, Tx, Writes};
