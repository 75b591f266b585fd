//! Nouns and Nock for spectree.
//!
//! A [`Noun`] is an [`Atom`] (an unsigned integer of any size) or a [`Cell`]
//! (a pair of nouns). Nouns are immutable and shared: cloning is O(1), and
//! versions of a state share every subtree they have in common. This crate
//! provides:
//!
//! - [`Axis`]: tree addresses, with [`slot`] (`/`) and [`edit`] (`#`);
//! - [`Noun::mug`]: Urbit's 31-bit hash, bit for bit, cached in cells;
//! - [`jam`] / [`cue`]: Urbit's serialisation, bit for bit;
//! - a text syntax ([`parse`], and `Display` for canonical printing);
//! - [`nock`](mod@nock): a Nock 4K interpreter with fuel, cancellation and a
//!   zero-cost tracking [`Hook`](nock::Hook).
//!
//! Nothing in this crate recurses on the native stack over the depth of a
//! noun or the length of a computation, so hostile or enormous inputs give
//! errors, never stack overflows.
//!
//! ```
//! use spectree_noun::{cue, jam, nock, Noun};
//! let subject: Noun = "[[4 5] [6 14 15]]".parse()?;
//! let formula: Noun = "[0 7]".parse()?;
//! let product = nock::nock(subject, &formula, &nock::Limits::default())?;
//! assert_eq!(product.to_string(), "[14 15]");
//! assert_eq!(cue(&jam(&product))?, product);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

mod atom;
mod axis;
mod mug;
pub mod nock;
mod noun;
mod serial;
mod text;

pub use atom::Atom;
pub use axis::{edit, slot, slot_u64, Axis, AxisError, Steps};
pub use mug::murmur3_32;
pub use noun::{Cell, Noun, Unifier};
pub use serial::{cue, cue_bytes, jam, jam_bytes, CueError};
pub use text::{parse, to_text_within, ParseError};
