//! Tree addresses (`Axis`) and the Nock tree operators slot (`/`) and edit (`#`).
//!
//! Axis 1 is the root; axis `2n` is the head of axis `n` and `2n + 1` its
//! tail. Axis 0 addresses nothing. An [`Axis`] is never 0, may be any size,
//! and is stored inline when it fits in a `u64`.
//!
//! [`slot`] and [`edit`] follow the Nock 4K definitions exactly and fail with
//! a typed [`AxisError`] wherever the specification crashes. Both walk the
//! axis with a loop (no native recursion over its depth).

use std::fmt;
use std::num::NonZeroU64;

use num_bigint::BigUint;
use num_traits::One;
use thiserror::Error;

use crate::{Atom, Noun};

/// A tree address: 1 is the root, `2n` the head of `n`, `2n + 1` its tail.
///
/// ```
/// use spectree_noun::Axis;
/// let six = Axis::new(6).unwrap();
/// assert_eq!(six.parent(), Axis::new(3));
/// assert_eq!(six.depth(), 2);
/// assert!(Axis::new(3).unwrap().is_ancestor_of(&six));
/// // Axis 2 inside the subtree at axis 3 is axis 6.
/// assert_eq!(Axis::new(3).unwrap().compose(&Axis::HEAD), six);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Axis(Repr);

// Variant order matters: derived `Ord` puts every `Small` before every `Big`,
// which is numeric order because `Big` always exceeds `u64::MAX`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Repr {
    Small(NonZeroU64),
    Big(std::sync::Arc<BigUint>),
}

/// Why a tree operation crashed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AxisError {
    /// Axis 0 addresses nothing.
    #[error("axis 0 is not a tree address")]
    Zero,
    /// The path of `axis` reached an atom at `at` before arriving.
    #[error("axis {axis} does not exist: axis {at} is an atom")]
    HitAtom {
        /// The axis that was asked for.
        axis: Axis,
        /// The deepest axis on its path, which is an atom.
        at: Axis,
    },
}

impl Axis {
    /// The root.
    pub const ROOT: Axis = Axis(Repr::Small(NonZeroU64::MIN));
    /// Axis 2, the head of the root.
    pub const HEAD: Axis = Axis(Repr::Small(NonZeroU64::new(2).unwrap()));
    /// Axis 3, the tail of the root.
    pub const TAIL: Axis = Axis(Repr::Small(NonZeroU64::new(3).unwrap()));

    /// The axis `n`, or `None` for 0.
    #[inline]
    pub const fn new(n: u64) -> Option<Axis> {
        match NonZeroU64::new(n) {
            Some(v) => Some(Axis(Repr::Small(v))),
            None => None,
        }
    }

    /// The axis named by an atom.
    ///
    /// # Errors
    /// [`AxisError::Zero`] for the atom 0.
    pub fn from_atom(atom: &Atom) -> Result<Axis, AxisError> {
        match atom.as_u64() {
            Some(n) => Axis::new(n).ok_or(AxisError::Zero),
            None => Ok(Axis(Repr::Big(std::sync::Arc::new(atom.to_biguint())))),
        }
    }

    fn from_biguint(n: BigUint) -> Axis {
        Axis::from_atom(&Atom::from_biguint(n)).expect("axis arithmetic never yields 0")
    }

    /// The axis as an atom.
    pub fn to_atom(&self) -> Atom {
        match &self.0 {
            Repr::Small(n) => Atom::new(n.get()),
            Repr::Big(b) => Atom::from_biguint((**b).clone()),
        }
    }

    /// The axis as a `u64`, if it fits.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Small(n) => Some(n.get()),
            Repr::Big(_) => None,
        }
    }

    fn to_biguint(&self) -> BigUint {
        match &self.0 {
            Repr::Small(n) => BigUint::from(n.get()),
            Repr::Big(b) => (**b).clone(),
        }
    }

    /// Distance from the root: 0 for axis 1, 1 for axes 2 and 3, and so on.
    #[inline]
    pub fn depth(&self) -> u64 {
        match &self.0 {
            Repr::Small(n) => u64::from(63 - n.leading_zeros()),
            Repr::Big(b) => b.bits() - 1,
        }
    }

    /// The parent, or `None` for the root.
    pub fn parent(&self) -> Option<Axis> {
        match &self.0 {
            Repr::Small(n) => Axis::new(n.get() >> 1),
            Repr::Big(b) => Some(Axis::from_biguint(&**b >> 1u32)),
        }
    }

    /// The ancestor `levels` steps up, or `None` if that is above the root.
    pub fn ancestor(&self, levels: u64) -> Option<Axis> {
        if levels > self.depth() {
            return None;
        }
        Some(match &self.0 {
            Repr::Small(n) => Axis::new(n.get() >> levels).expect("levels <= depth"),
            Repr::Big(b) => Axis::from_biguint(&**b >> levels),
        })
    }

    /// The head child, axis `2n`.
    pub fn head(&self) -> Axis {
        self.child(false)
    }

    /// The tail child, axis `2n + 1`.
    pub fn tail(&self) -> Axis {
        self.child(true)
    }

    /// The child on the given side (`false` = head, `true` = tail).
    pub fn child(&self, tail: bool) -> Axis {
        if let Repr::Small(n) = &self.0 {
            if n.get() >> 63 == 0 {
                return Axis::new(n.get() << 1 | u64::from(tail)).expect("nonzero");
            }
        }
        Axis::from_biguint(self.to_biguint() << 1u32 | BigUint::from(u8::from(tail)))
    }

    /// Whether `self` is `other` or lies on the path from the root to it.
    pub fn is_ancestor_of(&self, other: &Axis) -> bool {
        let (da, db) = (self.depth(), other.depth());
        da <= db && other.ancestor(db - da).as_ref() == Some(self)
    }

    /// Whether one of the two axes is an ancestor of (or equal to) the other,
    /// i.e. whether the subtrees they address overlap.
    pub fn overlaps(&self, other: &Axis) -> bool {
        self.is_ancestor_of(other) || other.is_ancestor_of(self)
    }

    /// Composition: the axis that `inner` names inside the subtree at `self`.
    pub fn compose(&self, inner: &Axis) -> Axis {
        let d = inner.depth();
        if let (Repr::Small(a), Repr::Small(b)) = (&self.0, &inner.0) {
            if self.depth() + d < 64 {
                let low = b.get() ^ (1u64 << d);
                return Axis::new(a.get() << d | low).expect("nonzero");
            }
        }
        let low = inner.to_biguint() ^ (BigUint::one() << d);
        Axis::from_biguint(self.to_biguint() << d | low)
    }

    /// The inverse of [`compose`](Self::compose): the axis of `self` relative
    /// to `ancestor`, or `None` if `ancestor` is not an ancestor of `self`.
    pub fn relative_to(&self, ancestor: &Axis) -> Option<Axis> {
        if !ancestor.is_ancestor_of(self) {
            return None;
        }
        let d = self.depth() - ancestor.depth();
        if let Repr::Small(n) = &self.0 {
            let low = if d == 0 {
                0
            } else {
                n.get() & ((1u64 << d) - 1)
            };
            return Axis::new(1u64 << d | low);
        }
        let mask = (BigUint::one() << d) - 1u32;
        Some(Axis::from_biguint(
            self.to_biguint() & mask | BigUint::one() << d,
        ))
    }

    /// The path from the root: `false` for each step into a head, `true` for
    /// each step into a tail.
    pub fn path(&self) -> impl DoubleEndedIterator<Item = bool> + '_ {
        let depth = self.depth();
        (0..depth).rev().map(move |i| self.bit(i))
    }

    fn bit(&self, i: u64) -> bool {
        match &self.0 {
            Repr::Small(n) => (n.get() >> i) & 1 == 1,
            Repr::Big(b) => b.bit(i),
        }
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(n) => write!(f, "{n}"),
            Repr::Big(b) => write!(f, "{b}"),
        }
    }
}

impl fmt::Debug for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Axis({self})")
    }
}

/// Nock's slot operator `/[axis noun]`: the subtree of `noun` at `axis`.
///
/// ```
/// use spectree_noun::{slot, Axis, Noun};
/// let n: Noun = "[[4 5] [6 14 15]]".parse().unwrap();
/// assert_eq!(slot(&Axis::new(7).unwrap(), &n).unwrap().to_string(), "[14 15]");
/// ```
///
/// # Errors
/// [`AxisError::HitAtom`] if the path runs into an atom.
pub fn slot<'a>(axis: &Axis, noun: &'a Noun) -> Result<&'a Noun, AxisError> {
    if let Some(n) = axis.as_u64() {
        return slot_u64(n, noun).ok_or_else(|| hit_atom(axis, noun));
    }
    let mut cur = noun;
    for tail in axis.path() {
        match cur {
            Noun::Cell(c) => cur = if tail { c.tail() } else { c.head() },
            Noun::Atom(_) => return Err(hit_atom(axis, noun)),
        }
    }
    Ok(cur)
}

/// [`slot`] for an axis given as a `u64`; `None` for axis 0 or a path into an
/// atom. This is the interpreter's fast path.
#[inline]
pub fn slot_u64(axis: u64, noun: &Noun) -> Option<&Noun> {
    if axis <= 1 {
        return if axis == 1 { Some(noun) } else { None };
    }
    // Walk the bits below the leading 1, most significant first.
    let mut cur = noun;
    let mut mask = 1u64 << (63 - axis.leading_zeros());
    while mask > 1 {
        mask >>= 1;
        let Noun::Cell(c) = cur else {
            return None;
        };
        cur = if axis & mask == 0 { c.head() } else { c.tail() };
    }
    Some(cur)
}

/// [`slot`] for an axis given as an atom (the interpreter's entry point);
/// `None` where Nock crashes.
#[inline(always)]
pub(crate) fn slot_atom<'a>(axis: &Atom, noun: &'a Noun) -> Option<&'a Noun> {
    match axis.as_u64() {
        Some(n) => slot_u64(n, noun),
        None => slot_big(axis, noun),
    }
}

#[cold]
fn slot_big<'a>(axis: &Atom, noun: &'a Noun) -> Option<&'a Noun> {
    // No diagnosis on failure: the interpreter only needs to know.
    let axis = Axis::from_atom(axis).ok()?;
    let mut cur = noun;
    for tail in axis.path() {
        let Noun::Cell(c) = cur else {
            return None;
        };
        cur = if tail { c.tail() } else { c.head() };
    }
    Some(cur)
}

/// [`edit`] for an axis given as an atom; `None` where Nock crashes.
#[inline]
pub(crate) fn edit_atom(axis: &Atom, value: Noun, target: &Noun) -> Option<Noun> {
    match axis.as_u64() {
        Some(0) => None,
        Some(n) => edit_small(n, 63 - n.leading_zeros(), value, target),
        None => edit(&Axis::from_atom(axis).ok()?, value, target).ok(),
    }
}

/// Edit along the low `depth` bits of `axis` (recursion depth at most 63).
fn edit_small(axis: u64, depth: u32, value: Noun, target: &Noun) -> Option<Noun> {
    if depth == 0 {
        return Some(value);
    }
    let Noun::Cell(c) = target else {
        return None;
    };
    let d = depth - 1;
    Some(if (axis >> d) & 1 == 0 {
        Noun::cell(edit_small(axis, d, value, c.head())?, c.tail().clone())
    } else {
        Noun::cell(c.head().clone(), edit_small(axis, d, value, c.tail())?)
    })
}

/// The deepest axis on `axis`'s path that exists in `noun` (an atom there),
/// found in one walk and one shift.
#[cold]
fn hit_atom(axis: &Axis, noun: &Noun) -> AxisError {
    let mut steps = 0u64;
    let mut cur = noun;
    for tail in axis.path() {
        match cur {
            Noun::Cell(c) => {
                cur = if tail { c.tail() } else { c.head() };
                steps += 1;
            }
            Noun::Atom(_) => break,
        }
    }
    let at = axis.ancestor(axis.depth() - steps).expect("steps <= depth");
    AxisError::HitAtom {
        axis: axis.clone(),
        at,
    }
}

/// Nock's edit operator `#[axis value target]`: `target` with the subtree at
/// `axis` replaced by `value`. Everything off the path is shared, not copied.
///
/// ```
/// use spectree_noun::{edit, Axis, Noun};
/// let t: Noun = "[22 33 44 55]".parse().unwrap();
/// let v: Noun = "[123 456]".parse().unwrap();
/// let e = edit(&Axis::new(2).unwrap(), v, &t).unwrap();
/// assert_eq!(e.to_string(), "[[123 456] 33 44 55]");
/// ```
///
/// # Errors
/// [`AxisError::HitAtom`] if the path runs into an atom.
pub fn edit(axis: &Axis, value: Noun, target: &Noun) -> Result<Noun, AxisError> {
    if let Some(n) = axis.as_u64() {
        return edit_small(n, 63 - n.leading_zeros(), value, target)
            .ok_or_else(|| hit_atom(axis, target));
    }
    // Walk down, remembering each cell and which side the path takes.
    // Not pre-sized: the axis may be far deeper than the target.
    let mut spine: Vec<(&crate::Cell, bool)> = Vec::new();
    let mut cur = target;
    for tail in axis.path() {
        match cur {
            Noun::Cell(c) => {
                spine.push((c, tail));
                cur = if tail { c.tail() } else { c.head() };
            }
            Noun::Atom(_) => return Err(hit_atom(axis, target)),
        }
    }
    // Rebuild upwards, sharing the untouched sides.
    Ok(spine.into_iter().rev().fold(value, |acc, (c, tail)| {
        if tail {
            Noun::cell(c.head().clone(), acc)
        } else {
            Noun::cell(acc, c.tail().clone())
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ax(n: u64) -> Axis {
        Axis::new(n).unwrap()
    }

    fn big(s: &str) -> Axis {
        Axis::from_atom(&Atom::from_biguint(s.parse().unwrap())).unwrap()
    }

    #[test]
    fn family() {
        assert_eq!(ax(1).depth(), 0);
        assert_eq!(ax(7).depth(), 2);
        assert_eq!(ax(1).parent(), None);
        assert_eq!(ax(13).parent(), Some(ax(6)));
        assert_eq!(ax(6).head(), ax(12));
        assert_eq!(ax(6).tail(), ax(13));
        assert!(ax(1).is_ancestor_of(&ax(999)));
        assert!(ax(6).is_ancestor_of(&ax(6)));
        assert!(ax(6).is_ancestor_of(&ax(13)));
        assert!(!ax(6).is_ancestor_of(&ax(7)));
        assert!(!ax(13).is_ancestor_of(&ax(6)));
        assert!(ax(13).overlaps(&ax(3)));
        assert_eq!(ax(3).compose(&ax(1)), ax(3));
        assert_eq!(ax(1).compose(&ax(13)), ax(13));
        assert_eq!(ax(3).compose(&ax(5)), ax(13));
        assert_eq!(ax(13).relative_to(&ax(3)), Some(ax(5)));
        assert_eq!(ax(13).relative_to(&ax(2)), None);
        assert_eq!(ax(6).path().collect::<Vec<_>>(), vec![true, false]);
        assert_eq!(Axis::from_atom(&Atom::ZERO), Err(AxisError::Zero));
    }

    #[test]
    fn big_axes() {
        let b = ax(1 << 62).compose(&ax(7)); // 2^64 + 3
        assert_eq!(b, big("18446744073709551619"));
        assert_eq!(b.depth(), 64);
        assert_eq!(b.parent().unwrap().parent().unwrap(), ax(1 << 62));
        assert!(ax(1 << 62).is_ancestor_of(&b));
        assert!(ax(u64::MAX) < b);
        assert_eq!(b.relative_to(&ax(1 << 62)), Some(ax(7)));
        assert_eq!(ax(u64::MAX).tail().parent(), Some(ax(u64::MAX)));
        // A deep right-leaning path through a big axis.
        let deep: Noun = (0..70).fold(Noun::atom(42), |acc, _| Noun::cell(Noun::ZERO, acc));
        let all_tails =
            Axis::from_atom(&Atom::from_biguint((BigUint::one() << 71u32) - 1u32)).unwrap();
        assert_eq!(slot(&all_tails, &deep), Ok(&Noun::atom(42)));
        let edited = edit(&all_tails, Noun::atom(7), &deep).unwrap();
        assert_eq!(slot(&all_tails, &edited), Ok(&Noun::atom(7)));
    }

    #[test]
    fn slot_and_edit_follow_the_spec() {
        let n: Noun = "[[4 5] [6 14 15]]".parse().unwrap();
        assert_eq!(slot(&ax(1), &n).unwrap(), &n);
        assert_eq!(slot(&ax(2), &n).unwrap().to_string(), "[4 5]");
        assert_eq!(slot(&ax(7), &n).unwrap().to_string(), "[14 15]");
        assert_eq!(
            slot(&ax(12), &n),
            Err(AxisError::HitAtom {
                axis: ax(12),
                at: ax(6)
            })
        );
        let t: Noun = "[22 33 44 55]".parse().unwrap();
        let v: Noun = "[123 456]".parse().unwrap();
        assert_eq!(
            edit(&ax(3), v.clone(), &t).unwrap().to_string(),
            "[22 123 456]"
        );
        assert_eq!(edit(&ax(1), v.clone(), &t).unwrap(), v);
        assert!(edit(&ax(4), v, &t).is_err());
        assert_eq!(slot_u64(0, &t), None);
    }

    #[test]
    fn edit_shares_untouched_structure() {
        let t: Noun = "[[1 2] [3 4]]".parse().unwrap();
        let e = edit(&ax(6), Noun::atom(9), &t).unwrap();
        assert!(slot(&ax(2), &e).unwrap().ptr_eq(slot(&ax(2), &t).unwrap()));
    }
}
