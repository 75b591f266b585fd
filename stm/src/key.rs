//! What a state is addressed by, and when two addresses touch.
//!
//! Invariant: [`Key::overlaps`] is true whenever a write at one key can change
//! what a read at the other sees; [`Key::encloses`] is true whenever a write
//! at one key can change whether the other exists. Both may be conservative,
//! never optimistic.

use std::fmt::Debug;
use std::hash::Hash;

use spectree_noun::{Axis, Noun};

/// An address into a state backend.
pub trait Key: Clone + Eq + Ord + Hash + Debug + Send + Sync + 'static {
    /// Whether a write at `self` and a read at `other` (or the reverse) can
    /// interfere: for axes, one is an ancestor-or-self of the other.
    fn overlaps(&self, other: &Self) -> bool;

    /// Whether a write at `self` can change the *existence* of `other`
    /// without touching its content: for axes, `self` is a proper ancestor.
    fn encloses(&self, other: &Self) -> bool;

    /// True when keys overlap only when equal and never enclose one another
    /// (map keys): transactions then find their own writes by lookup
    /// instead of by scanning.
    const DISJOINT: bool = false;
}

impl Key for Axis {
    fn overlaps(&self, other: &Axis) -> bool {
        Axis::overlaps(self, other)
    }

    fn encloses(&self, other: &Axis) -> bool {
        self != other && self.is_ancestor_of(other)
    }
}

/// Keys of a [`MapState`](crate::MapState): independent of one another.
impl Key for MapKey {
    const DISJOINT: bool = true;

    fn overlaps(&self, other: &MapKey) -> bool {
        self == other
    }

    fn encloses(&self, _: &MapKey) -> bool {
        false
    }
}

/// A key of a [`MapState`](crate::MapState): any noun, ordered by mug and
/// then by its jam (linear in its size even when it shares subtrees), so the
/// order is total and the same in every process.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct MapKey(pub Noun);

impl PartialOrd for MapKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for MapKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        self.0.mug().cmp(&other.0.mug()).then_with(|| {
            spectree_noun::jam_bytes(&self.0).cmp(&spectree_noun::jam_bytes(&other.0))
        })
    }
}
