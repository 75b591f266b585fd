//! Nouns and Nock for spectree.
//!
//! A [`Noun`] is an [`Atom`] (an unsigned integer of any size) or a [`Cell`]
//! (a pair of nouns). Nouns are immutable and shared: cloning is O(1), and
//! versions of a state share every subtree they have in common.
//!
//! | item | module | what it is |
//! |---|---|---|
//! | [`Noun`], [`Cell`], [`Unifier`] | `noun` | nouns; mug and fingerprint cached in cells; near-linear equality |
//! | [`Atom`] | `atom` | atoms, inline up to `u64::MAX` |
//! | [`Axis`], [`slot`], [`edit`] | `axis` | tree addresses (deep ones share their paths), Nock's `/` and `#` |
//! | [`Noun::mug`], [`murmur3_32`] | `mug` | Urbit's 31-bit mug, bit for bit |
//! | [`jam`], [`cue`] | `jam` | Urbit's serialisation, bit for bit |
//! | [`parse`], `Display` | `text` | the text syntax and canonical printing |
//! | [`nock`](mod@nock) | `nock` | a Nock 4K interpreter with fuel, a memory budget, cancellation and a tracking hook |
//! | [`fuzzing`] | `fuzzing` | the properties of the `cue` and `nock` fuzz targets |
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
#![deny(missing_debug_implementations)]

mod atom;
mod axis;
mod counted;
pub mod fuzzing;
mod jam;
mod mug;
pub mod nock;
mod noun;
mod text;

pub use atom::{Atom, DECIMAL_PRINT_BITS};
pub use axis::{edit, edit_mut, slot, slot_u64, Axis, AxisError, Steps};
pub use jam::{cue, cue_bytes, jam, jam_bytes, CueError};
pub use mug::murmur3_32;
pub use noun::{Cell, Noun, Unifier};
pub use text::{parse, to_text_within, ParseError};
