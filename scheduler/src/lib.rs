//! spectree: process an ordered log of events in parallel, with results
//! identical to serial execution in log order.
//!
//! The state is one *noun* (or a map of nouns). Events run speculatively on
//! a rayon pool against persistent snapshots of it, record which subtrees
//! they read and wrote, commit strictly in log order, and are re-executed
//! when an earlier event wrote something they read.
//!
//! | item | what it is |
//! |---|---|
//! | [`Processor`], [`ProcessorBuilder`], [`Config`] | the speculative processor and how to make one |
//! | [`SerialProcessor`] | the oracle: one event at a time; the definition of the right answer |
//! | [`Event`], [`Backend`], [`Committed`], [`Outcome`] | what is executed, on which states, and what comes out |
//! | [`Metrics`], [`ChainMeter`] | what a run did, and how much parallelism a log offers |
//! | [`prelude`] | the names an embedder needs, in one `use` |
//! | [`noun`], [`stm`] | the noun and access-tracking crates, re-exported |
//!
//! ```
//! use spectree::prelude::*;
//!
//! /// Move `amount` from one account to another, refusing overdrafts.
//! struct Transfer { from: u64, to: u64, amount: u64 }
//!
//! impl RustEvent<MapState> for Transfer {
//!     fn apply(&self, tx: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
//!         let (from, to) = (MapKey(Noun::atom(self.from)), MapKey(Noun::atom(self.to)));
//!         let balance = |v: Option<Noun>| v.and_then(|n| n.as_u64()).unwrap_or(0);
//!         let have = balance(tx.get(&from)?);
//!         if have < self.amount {
//!             return Err(EventError::failed(1u64)); // insufficient funds
//!         }
//!         let theirs = balance(tx.get(&to)?);
//!         tx.put(&from, Noun::atom(have - self.amount))?;
//!         tx.put(&to, Noun::atom(theirs + self.amount))?;
//!         Ok(Noun::from((self.from, self.to))) // a receipt
//!     }
//! }
//!
//! let accounts: MapState = (0..1000u64).map(|k| (MapKey(Noun::atom(k)), Noun::atom(100))).collect();
//! let processor = Processor::builder(HashRegions(256)).threads(2).build()?;
//! let transfers = (0..500u64).map(|i| Event::rust(Transfer { from: i, to: (i * 7) % 1000, amount: 30 }));
//! let run = processor.run(accounts, transfers);
//! assert_eq!(run.outcomes.len(), 500);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]
#![deny(missing_debug_implementations)]

mod config;
mod event;
mod metrics;
mod processor;
mod serial;
mod sync;

pub use config::{BuildError, Config, ProcessorBuilder, MAX_THREADS, MAX_WINDOW};
pub use event::{Backend, Committed, Event, NoNock, Outcome, States};
pub use metrics::{ChainMeter, Metrics};
pub use processor::{Processor, Run, WORKER_STACK};
pub use serial::SerialProcessor;
pub use spectree_noun as noun;
pub use spectree_stm as stm;
pub use spectree_stm::{MapState, NounState};

/// The names an embedder needs: `use spectree::prelude::*;`.
pub mod prelude {
    pub use crate::{Committed, Event, Outcome, Processor, SerialProcessor, States};
    pub use spectree_noun::{Axis, Noun};
    pub use spectree_stm::{
        EventError, HashRegions, MapKey, MapState, NounState, RegionMap, RustEvent, State, Tx,
    };
}

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
