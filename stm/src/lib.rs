//! Access tracking and conflict detection for spectree.
//!
//! This crate will decide, for every speculative execution, what it read and
//! wrote and whether that still holds after other events committed: regions
//! (the state's commutation points), access sets with per-region bitsets and
//! exact axes, tracked reads and writes of Nock and Rust events, conflict
//! validation, grafting write sets onto newer states, and state backends.
//!
//! It builds on [`spectree_noun`]; the interpreter's
//! [`Hook`](spectree_noun::nock::Hook) is its entry point into Nock.

#![warn(missing_docs)]

pub use spectree_noun as noun;
