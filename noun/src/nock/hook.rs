//! The tracking hook: how a caller observes what a Nock computation does
//! with its subject.
//!
//! Every value the interpreter handles carries a [`Hook::Tag`] beside it. The
//! tag of the original subject is supplied by the caller; the interpreter
//! derives every other tag through the hook as values are looked up (Nock 0
//! and the arm lookup of Nock 9), built (autocons, Nock 8), edited (Nock 10)
//! or made from nothing (Nock 1 and computed atoms). Whenever a value's
//! content decides the course of the computation it is *inspected*: a formula
//! about to run (Nock 2 and 9), a branch condition (Nock 6), the operands of
//! Nock 3, 4 and 5. Navigating through a value, copying it or editing into it
//! is not an inspection. A failed lookup or edit reports the tag it failed on.
//!
//! A tracker can therefore make its tags *provenance*: "this value is the
//! subtree at axis `a` of the original subject", composed through slots and
//! edits, and record exactly the axes whose content was inspected.
//!
//! The interpreter is generic over the hook and monomorphised; [`NoHook`] has
//! a zero-sized tag and empty inlined methods, so an untracked run pays
//! nothing.

use crate::{Atom, Noun};

/// Observer of a Nock computation's use of its subject.
///
/// Every value the interpreter handles carries a tag beside it; the caller
/// tags the subject and the interpreter asks the hook for the tag of each
/// value it derives (lookups, conses, edits, constants). Whenever a value's
/// content decides the course of the computation (a formula about to run, a
/// branch condition, an operand of Nock 3, 4 or 5) it is *inspected*.
/// Navigating through a value, copying it or editing into it is not an
/// inspection. [`NoHook`] observes nothing at no cost.
pub trait Hook {
    /// Per-value metadata carried beside every noun.
    type Tag: Clone;

    /// Tag for a value not taken from the subject (Nock 1 constants, atoms
    /// computed by Nock 3, 4 and 5).
    fn constant(&mut self) -> Self::Tag;

    /// Tag for the subtree at `axis` of a value tagged `of` (Nock 0 and the
    /// arm lookup of Nock 9), called when the lookup succeeded.
    fn slot(&mut self, of: &Self::Tag, axis: &Atom) -> Self::Tag;

    /// Tag for the cell built from values tagged `head` and `tail`.
    fn cons(&mut self, head: Self::Tag, tail: Self::Tag) -> Self::Tag;

    /// Tag for `target` with the value tagged `value` written at `axis`
    /// (Nock 10), called when the edit succeeded.
    fn edit(&mut self, target: Self::Tag, axis: &Atom, value: Self::Tag) -> Self::Tag;

    /// A lookup or edit at `axis` of the value tagged `of` ran into an atom;
    /// the computation crashes next. The shape along `axis` decided that.
    fn failed(&mut self, of: &Self::Tag, axis: &Atom);

    /// The content of `noun`, tagged `tag`, decides the computation.
    fn inspect(&mut self, noun: &Noun, tag: &Self::Tag);

    /// Only whether `noun` is a cell decides the computation (Nock 3). A
    /// tracker can record less than for [`inspect`](Self::inspect): that a
    /// cell still exists, or that an atom is still there.
    fn inspect_cell(&mut self, noun: &Noun, tag: &Self::Tag) {
        self.inspect(noun, tag);
    }

    /// Whether `tag` is *inert*: the hook observes nothing of a value so
    /// tagged, nor of anything computed from such values alone.
    ///
    /// A hook that answers `true` for a tag promises, for inert `t`, `u`:
    /// [`constant`](Self::constant) is inert; `slot(t, _)`, `cons(t, u)`
    /// and `edit(t, _, u)` return a tag equal to what `constant` returns;
    /// and `inspect`, `inspect_cell` and `failed` given `t` record
    /// nothing. The interpreter may then evaluate a formula against a
    /// subject with an inert tag without calling the hook at all (at
    /// untracked speed, with the same steps, fuel, memory charges, safe
    /// points and errors), and tag the product with `constant()`. The
    /// default answers `false` for every tag: every call is made.
    #[inline(always)]
    fn is_inert(&self, tag: &Self::Tag) -> bool {
        let _ = tag;
        false
    }
}

/// The hook that observes nothing; used by [`nock`](crate::nock::nock).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoHook;

impl Hook for NoHook {
    type Tag = ();
    #[inline(always)]
    fn constant(&mut self) {}
    #[inline(always)]
    fn slot(&mut self, _: &(), _: &Atom) {}
    #[inline(always)]
    fn cons(&mut self, _: (), _: ()) {}
    #[inline(always)]
    fn edit(&mut self, _: (), _: &Atom, _: ()) {}
    #[inline(always)]
    fn failed(&mut self, _: &(), _: &Atom) {}
    #[inline(always)]
    fn inspect(&mut self, _: &Noun, _: &()) {}
    #[inline(always)]
    fn inspect_cell(&mut self, _: &Noun, _: &()) {}
    /// Every value is inert to a hook that observes nothing, so untracked
    /// runs take the compiled evaluator.
    #[inline(always)]
    fn is_inert(&self, _: &()) -> bool {
        true
    }
}
