//! Tree addresses (`Axis`) and the Nock tree operators slot (`/`) and edit (`#`).
//!
//! Axis 1 is the root; axis `2n` is the head of axis `n` and `2n + 1` its
//! tail. Axis 0 addresses nothing. An [`Axis`] is never 0 and may be any
//! size.
//!
//! Invariants:
//! - an axis less than 2^64 is stored inline; a deeper one is a chain of
//!   64-step blocks of its path, each block shared with every axis derived
//!   from it ([`child`](Axis::child), [`parent`](Axis::parent),
//!   [`compose`](Axis::compose)). The axes met walking down a deep path
//!   therefore cost memory linear in the walk, not in the sum of their
//!   lengths, and every value has exactly one block layout (block `k` holds
//!   steps `64k..64k+64` from the root), so equal axes compare equal block
//!   by block;
//! - nothing recurses over an axis's depth (dropping a long chain included).
//!
//! [`slot`] and [`edit`] follow the Nock 4K definitions exactly and fail with
//! a typed [`AxisError`] wherever the specification crashes. Both walk the
//! axis with a loop (no native recursion over its depth).

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::num::NonZeroU64;
use std::sync::Arc;

use num_bigint::BigUint;
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
#[derive(Clone)]
pub struct Axis(Repr);

#[derive(Clone)]
enum Repr {
    /// Depth 0 to 63: the axis itself.
    Small(NonZeroU64),
    /// Depth 64 and more: the last block of the path.
    Big(Arc<Block>),
}

/// Up to 64 steps of a deep axis's path, chained to the block before them
/// (nearer the root). Every block but the last of a chain holds 64 steps.
struct Block {
    prev: Option<Arc<Block>>,
    /// The steps, the first in the most significant of the low `len` bits;
    /// a 1 is a step into a tail.
    bits: u64,
    /// Steps in this block, 1 to 64.
    len: u32,
    /// Steps from the root to the end of this block.
    depth: u64,
    /// The first 64 steps of the whole path (the root block's bits), so
    /// that shallow ancestors are found without walking the chain.
    first: u64,
}

impl Drop for Block {
    fn drop(&mut self) {
        // A chain can be millions of blocks long: unlink it in a loop.
        let mut next = self.prev.take();
        while let Some(block) = next {
            next = match Arc::into_inner(block) {
                Some(mut last_owner) => last_owner.prev.take(),
                None => None,
            };
        }
    }
}

/// The low `n` bits set (`n` up to 64).
#[inline]
fn mask(n: u32) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

/// `x << n`, 0 when every bit is shifted out.
#[inline]
fn shl(x: u64, n: u32) -> u64 {
    if n >= 64 {
        0
    } else {
        x << n
    }
}

/// Builds an axis step by step, in blocks, on top of a shared chain.
struct Builder {
    prev: Option<Arc<Block>>,
    bits: u64,
    len: u32,
    /// Depth at the end of `prev`.
    base: u64,
}

impl Builder {
    fn root() -> Builder {
        Builder {
            prev: None,
            bits: 0,
            len: 0,
            base: 0,
        }
    }

    /// Continue the path of `axis`, sharing its full blocks.
    fn from(axis: &Axis) -> Builder {
        match &axis.0 {
            Repr::Small(n) => {
                let d = 63 - n.leading_zeros();
                Builder {
                    prev: None,
                    bits: n.get() & mask(d),
                    len: d,
                    base: 0,
                }
            }
            Repr::Big(b) => Builder {
                prev: b.prev.clone(),
                bits: b.bits,
                len: b.len,
                base: b.depth - u64::from(b.len),
            },
        }
    }

    fn seal(&mut self) {
        let first = match &self.prev {
            Some(p) => p.first,
            None => self.bits,
        };
        let block = Arc::new(Block {
            prev: self.prev.take(),
            bits: self.bits,
            len: 64,
            depth: self.base + 64,
            first,
        });
        self.prev = Some(block);
        self.base += 64;
        self.bits = 0;
        self.len = 0;
    }

    /// Append the low `n` bits of `bits` (the first step most significant).
    fn push(&mut self, bits: u64, mut n: u32) {
        while n > 0 {
            if self.len == 64 {
                self.seal();
            }
            let take = n.min(64 - self.len);
            let top = (bits >> (n - take)) & mask(take);
            self.bits = shl(self.bits, take) | top;
            self.len += take;
            n -= take;
        }
    }

    /// Append steps one by one (in words of 64).
    fn push_steps(&mut self, steps: impl Iterator<Item = bool>) {
        let (mut word, mut n) = (0u64, 0u32);
        for step in steps {
            word = word << 1 | u64::from(step);
            n += 1;
            if n == 64 {
                self.push(word, 64);
                (word, n) = (0, 0);
            }
        }
        self.push(word, n);
    }

    fn finish(self) -> Axis {
        let depth = self.base + u64::from(self.len);
        if depth < 64 {
            let n = (1u64 << depth) | self.bits;
            return Axis(Repr::Small(NonZeroU64::new(n).expect("nonzero")));
        }
        let first = match &self.prev {
            Some(p) => p.first,
            None => self.bits,
        };
        Axis(Repr::Big(Arc::new(Block {
            prev: self.prev,
            bits: self.bits,
            len: self.len,
            depth,
            first,
        })))
    }
}

/// Whether two chains hold the same steps (same layout by the invariant),
/// stopping early at a shared block.
fn same_chain(mut a: Option<&Arc<Block>>, mut b: Option<&Arc<Block>>) -> bool {
    loop {
        match (a, b) {
            (None, None) => return true,
            (Some(x), Some(y)) => {
                if Arc::ptr_eq(x, y) {
                    return true;
                }
                if x.bits != y.bits || x.len != y.len || x.depth != y.depth {
                    return false;
                }
                a = x.prev.as_ref();
                b = y.prev.as_ref();
            }
            _ => return false,
        }
    }
}

/// The block of `last`'s chain that holds step `depth - 1` (`depth >= 1`
/// and at most the chain's depth).
fn block_ending_after(last: &Arc<Block>, depth: u64) -> &Arc<Block> {
    let mut b = last;
    while b.depth - u64::from(b.len) >= depth {
        b = b.prev.as_ref().expect("a chain reaches the root");
    }
    b
}

/// Why a tree operation crashed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum AxisError {
    /// Axis 0 addresses nothing.
    #[error("axis 0 is not a tree address")]
    Zero,
    /// The path of `axis` reached an atom at `at` before arriving.
    #[error("axis {} does not exist: axis {} is an atom", axis.short(), at.short())]
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
        if let Some(n) = atom.as_u64() {
            return Axis::new(n).ok_or(AxisError::Zero);
        }
        // Below the leading 1, bits from the most significant are the steps.
        let depth = atom.bit_len() - 1;
        let mut b = Builder::root();
        let mut i = depth;
        while i > 0 {
            let n = i.min(64) as u32;
            let mut word = 0u64;
            for k in 0..u64::from(n) {
                word = word << 1 | u64::from(atom.bit(i - 1 - k));
            }
            b.push(word, n);
            i -= u64::from(n);
        }
        Ok(b.finish())
    }

    /// The axis as an atom.
    pub fn to_atom(&self) -> Atom {
        match &self.0 {
            Repr::Small(n) => Atom::new(n.get()),
            Repr::Big(_) => Atom::from_biguint(self.to_biguint()),
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
            Repr::Big(last) => {
                // Bit `depth` is the leading 1; step i is bit depth - 1 - i.
                let depth = last.depth;
                let mut words = vec![0u64; (depth / 64 + 1) as usize];
                words[(depth / 64) as usize] |= 1 << (depth % 64);
                for (i, step) in self.path().enumerate() {
                    if step {
                        let at = depth - 1 - i as u64;
                        words[(at / 64) as usize] |= 1 << (at % 64);
                    }
                }
                let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
                BigUint::from_bytes_le(&bytes)
            }
        }
    }

    /// Distance from the root: 0 for axis 1, 1 for axes 2 and 3, and so on.
    #[inline]
    pub fn depth(&self) -> u64 {
        match &self.0 {
            Repr::Small(n) => u64::from(63 - n.leading_zeros()),
            Repr::Big(b) => b.depth,
        }
    }

    /// The parent, or `None` for the root.
    pub fn parent(&self) -> Option<Axis> {
        self.ancestor(1)
    }

    /// The ancestor `levels` steps up, or `None` if that is above the root.
    pub fn ancestor(&self, levels: u64) -> Option<Axis> {
        let depth = self.depth();
        if levels > depth {
            return None;
        }
        let target = depth - levels;
        Some(match &self.0 {
            Repr::Small(n) => Axis::new(n.get() >> levels).expect("levels <= depth"),
            Repr::Big(_) if levels == 0 => self.clone(),
            Repr::Big(last) if target < 64 => {
                let top = if target == 0 {
                    0
                } else {
                    last.first >> (64 - target)
                };
                Axis::new(1u64 << target | top).expect("nonzero")
            }
            Repr::Big(last) => {
                let b = block_ending_after(last, target);
                let keep = (target - (b.depth - u64::from(b.len))) as u32;
                if keep == b.len {
                    Axis(Repr::Big(b.clone()))
                } else {
                    Axis(Repr::Big(Arc::new(Block {
                        prev: b.prev.clone(),
                        bits: b.bits >> (b.len - keep),
                        len: keep,
                        depth: target,
                        first: b.first,
                    })))
                }
            }
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
        let mut b = Builder::from(self);
        b.push(u64::from(tail), 1);
        b.finish()
    }

    /// Whether `self` is `other` or lies on the path from the root to it.
    pub fn is_ancestor_of(&self, other: &Axis) -> bool {
        let (da, db) = (self.depth(), other.depth());
        if da > db {
            return false;
        }
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => b.get() >> (db - da) == a.get(),
            (Repr::Small(a), Repr::Big(b)) => {
                // `da` is at most 63: the prefix lies in the first block.
                let top = if da == 0 { 0 } else { b.first >> (64 - da) };
                a.get() == (1u64 << da | top)
            }
            (Repr::Big(_), Repr::Small(_)) => false,
            (Repr::Big(a), Repr::Big(b)) => {
                let blk = block_ending_after(b, da);
                let keep = (da - (blk.depth - u64::from(blk.len))) as u32;
                keep == a.len
                    && blk.bits >> (blk.len - keep) == a.bits
                    && same_chain(blk.prev.as_ref(), a.prev.as_ref())
            }
        }
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
        if d == 0 {
            return self.clone();
        }
        let mut b = Builder::from(self);
        b.push_steps(inner.path());
        b.finish()
    }

    /// The inverse of [`compose`](Self::compose): the axis of `self` relative
    /// to `ancestor`, or `None` if `ancestor` is not an ancestor of `self`.
    pub fn relative_to(&self, ancestor: &Axis) -> Option<Axis> {
        if !ancestor.is_ancestor_of(self) {
            return None;
        }
        let d = self.depth() - ancestor.depth();
        if let Repr::Small(n) = &self.0 {
            return Axis::new(1u64 << d | (n.get() & mask(d as u32)));
        }
        let mut b = Builder::root();
        b.push_steps(self.path().skip(ancestor.depth() as usize));
        Some(b.finish())
    }

    /// The path from the root: `false` for each step into a head, `true` for
    /// each step into a tail.
    pub fn path(&self) -> Steps {
        match &self.0 {
            Repr::Small(n) => {
                let d = 63 - n.leading_zeros();
                Steps {
                    small: (n.get() & mask(d), d),
                    big: Vec::new(),
                    front: 0,
                    back: u64::from(d),
                }
            }
            Repr::Big(last) => {
                let mut big = Vec::with_capacity(last.depth.div_ceil(64) as usize);
                let mut cur = Some(last);
                while let Some(b) = cur {
                    big.push((b.bits, b.len));
                    cur = b.prev.as_ref();
                }
                big.reverse();
                Steps {
                    small: (0, 0),
                    big,
                    front: 0,
                    back: last.depth,
                }
            }
        }
    }

    /// The axis for messages: in full up to 128 levels deep, otherwise its
    /// depth and first steps, so an error never quotes a huge number.
    pub fn short(&self) -> String {
        if self.depth() <= 128 {
            self.to_string()
        } else {
            format!("(an axis {} levels deep)", self.depth())
        }
    }
}

/// The steps of an axis's path, from the root; see [`Axis::path`].
#[derive(Debug, Clone)]
pub struct Steps {
    /// The only block of a shallow axis.
    small: (u64, u32),
    /// The blocks of a deep one, from the root (all but the last hold 64).
    big: Vec<(u64, u32)>,
    front: u64,
    back: u64,
}

impl Steps {
    #[inline]
    fn step(&self, i: u64) -> bool {
        let (bits, len) = if self.big.is_empty() {
            self.small
        } else {
            self.big[(i / 64) as usize]
        };
        let offset = (i % 64) as u32;
        (bits >> (len - 1 - offset)) & 1 == 1
    }
}

impl Iterator for Steps {
    type Item = bool;

    #[inline]
    fn next(&mut self) -> Option<bool> {
        (self.front < self.back).then(|| {
            self.front += 1;
            self.step(self.front - 1)
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = (self.back - self.front) as usize;
        (n, Some(n))
    }
}

impl DoubleEndedIterator for Steps {
    #[inline]
    fn next_back(&mut self) -> Option<bool> {
        (self.front < self.back).then(|| {
            self.back -= 1;
            self.step(self.back)
        })
    }
}

impl ExactSizeIterator for Steps {}

impl PartialEq for Axis {
    #[inline]
    fn eq(&self, other: &Axis) -> bool {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a == b,
            (Repr::Big(a), Repr::Big(b)) => same_chain(Some(a), Some(b)),
            _ => false,
        }
    }
}

impl Eq for Axis {}

impl Hash for Axis {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Small(n) => state.write_u64(n.get()),
            Repr::Big(last) => {
                state.write_u64(last.depth);
                let mut cur = Some(last);
                while let Some(b) = cur {
                    state.write_u64(b.bits);
                    cur = b.prev.as_ref();
                }
            }
        }
    }
}

impl PartialOrd for Axis {
    fn partial_cmp(&self, other: &Axis) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Numeric order: deeper axes are larger, and at one depth the path bits
/// decide from the root down.
impl Ord for Axis {
    fn cmp(&self, other: &Axis) -> Ordering {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a.cmp(b),
            (Repr::Small(_), Repr::Big(_)) => Ordering::Less,
            (Repr::Big(_), Repr::Small(_)) => Ordering::Greater,
            (Repr::Big(a), Repr::Big(b)) => a.depth.cmp(&b.depth).then_with(|| {
                if same_chain(Some(a), Some(b)) {
                    return Ordering::Equal;
                }
                let (x, y) = (self.path(), other.path());
                x.big.cmp(&y.big)
            }),
        }
    }
}

impl fmt::Display for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(n) => write!(f, "{n}"),
            Repr::Big(_) => write!(f, "{}", self.to_biguint()),
        }
    }
}

impl fmt::Debug for Axis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Axis({})", self.short())
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

/// [`edit`] in place: `target` becomes `target` with `value` at `axis`.
/// Cells on the path that `target` alone holds are changed where they are
/// (their cached hashes cleared); from the first shared cell down, the path
/// is copied as [`edit`] copies it. A state that nobody else holds is thus
/// edited without allocating. On an error `target` is unchanged.
///
/// ```
/// use spectree_noun::{edit_mut, Axis, Noun};
/// let mut t: Noun = "[22 33 44 55]".parse().unwrap();
/// edit_mut(&Axis::new(6).unwrap(), Noun::atom(9), &mut t).unwrap();
/// assert_eq!(t.to_string(), "[22 9 44 55]");
/// ```
///
/// # Errors
/// [`AxisError::HitAtom`] if the path runs into an atom.
pub fn edit_mut(axis: &Axis, value: Noun, target: &mut Noun) -> Result<(), AxisError> {
    // Check first, so that nothing is touched when the edit fails.
    if let Some(p) = axis.parent() {
        if !matches!(slot(&p, target), Ok(Noun::Cell(_))) {
            return Err(hit_atom(axis, target));
        }
    }
    let mut cur = target;
    let mut steps = axis.path();
    loop {
        let Some(tail) = steps.next() else {
            *cur = value;
            return Ok(());
        };
        let Noun::Cell(c) = cur else {
            unreachable!("the path was checked");
        };
        // Shared from here down: copy the rest of the path.
        if c.parts_mut().is_none() {
            let rest: Vec<bool> = std::iter::once(tail).chain(steps).collect();
            let inner = rest.iter().fold(Axis::ROOT, |a, &t| a.child(t));
            let edited = edit(&inner, value, cur).expect("the path was checked");
            *cur = edited;
            return Ok(());
        }
        let (head, tail_noun) = match cur {
            Noun::Cell(c) => c.parts_mut().expect("unique, checked above"),
            Noun::Atom(_) => unreachable!("a cell"),
        };
        cur = if tail { tail_noun } else { head };
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
    use num_traits::One;

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

    /// The axis with the given steps, built from its number.
    fn numbered(steps: &[bool]) -> (BigUint, Axis) {
        let n = steps.iter().fold(BigUint::one(), |n, &s| {
            n << 1u32 | BigUint::from(u8::from(s))
        });
        let a = Axis::from_atom(&Atom::from_biguint(n.clone())).unwrap();
        (n, a)
    }

    proptest::proptest! {
        #[test]
        fn deep_axes_agree_with_their_numbers(
            x in proptest::collection::vec(proptest::bool::ANY, 0..300),
            y in proptest::collection::vec(proptest::bool::ANY, 0..300),
            cut in 0usize..300,
        ) {
            let (nx, ax_) = numbered(&x);
            let (ny, ay) = numbered(&y);
            // Built step by step, the same value and the same layout.
            let stepped = x.iter().fold(Axis::ROOT, |a, &s| a.child(s));
            proptest::prop_assert_eq!(&stepped, &ax_);
            proptest::prop_assert_eq!(stepped.to_string(), nx.to_string());
            proptest::prop_assert_eq!(ax_.to_atom().to_biguint(), nx.clone());
            proptest::prop_assert_eq!(ax_.depth(), x.len() as u64);
            proptest::prop_assert_eq!(ax_.path().collect::<Vec<_>>(), x.clone());
            proptest::prop_assert_eq!(ax_.path().rev().collect::<Vec<_>>(),
                x.iter().rev().copied().collect::<Vec<_>>());
            proptest::prop_assert_eq!(ax_.cmp(&ay), nx.cmp(&ny));
            proptest::prop_assert_eq!(ax_ == ay, nx == ny);
            // One hasher for both: two `RandomState`s have different keys.
            let hasher = std::collections::hash_map::RandomState::new();
            let hash = |a: &Axis| {
                use std::hash::BuildHasher;
                hasher.hash_one(a)
            };
            if ax_ == ay {
                proptest::prop_assert_eq!(hash(&ax_), hash(&ay));
            }
            // Ancestors, composition and its inverse.
            let levels = cut.min(x.len()) as u64;
            let up = ax_.ancestor(levels).unwrap();
            proptest::prop_assert_eq!(up.to_atom().to_biguint(), &nx >> levels);
            proptest::prop_assert!(up.is_ancestor_of(&ax_));
            proptest::prop_assert_eq!(ax_.relative_to(&up).map(|r| up.compose(&r)), Some(ax_.clone()));
            let joined = ax_.compose(&ay);
            let (nj, _) = numbered(&[x.clone(), y.clone()].concat());
            proptest::prop_assert_eq!(joined.to_atom().to_biguint(), nj);
            proptest::prop_assert_eq!(joined.relative_to(&ax_), Some(ay.clone()));
            let prefix = x.len() <= y.len() && y[..x.len()] == x[..];
            proptest::prop_assert_eq!(ax_.is_ancestor_of(&ay), prefix);
            proptest::prop_assert_eq!(ax_.overlaps(&ay), prefix || (y.len() <= x.len() && x[..y.len()] == y[..]));
        }
    }

    #[test]
    fn a_million_deep_axis_is_shared_and_drops_without_recursion() {
        let mut a = Axis::ROOT;
        let mut kept = Vec::new();
        for i in 0..1_000_000u64 {
            a = a.child(i % 3 == 0);
            if i % 1000 == 0 {
                kept.push(a.clone());
            }
        }
        assert_eq!(a.depth(), 1_000_000);
        assert!(kept[10].is_ancestor_of(&a));
        assert_eq!(a.ancestor(1_000_000 - 10_001), Some(kept[10].clone()));
        drop(kept);
        drop(a);
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
    fn edits_in_place_equal_copying_edits_and_keep_hashes_right() {
        let base: Noun = "[[1 2] [3 [4 5]] 6 [7 8]]".parse().unwrap();
        for axis in 1..64u64 {
            let a = ax(axis);
            let expected = edit(&a, Noun::atom(99), &base);
            // Unique: edited where it is.
            let mut unique: Noun = base.to_string().parse().unwrap();
            unique.mug();
            let r = edit_mut(&a, Noun::atom(99), &mut unique);
            // Shared: the other holder keeps the old version.
            let mut shared = base.clone();
            let r2 = edit_mut(&a, Noun::atom(99), &mut shared);
            match expected {
                Ok(e) => {
                    assert!(r.is_ok() && r2.is_ok());
                    assert_eq!(unique, e, "axis {axis}");
                    assert_eq!(shared, e, "axis {axis}");
                    let fresh: Noun = e.to_string().parse().unwrap();
                    assert_eq!(unique.mug(), fresh.mug(), "stale cached mug at {axis}");
                    assert_eq!(unique.fingerprint(), fresh.fingerprint());
                }
                Err(e) => {
                    assert_eq!(r, Err(e.clone()));
                    assert_eq!(r2, Err(e));
                    assert_eq!(unique, base);
                }
            }
            assert_eq!(base.to_string(), "[[1 2] [3 4 5] 6 7 8]");
        }
    }

    #[test]
    fn edit_shares_untouched_structure() {
        let t: Noun = "[[1 2] [3 4]]".parse().unwrap();
        let e = edit(&ax(6), Noun::atom(9), &t).unwrap();
        assert!(slot(&ax(2), &e).unwrap().ptr_eq(slot(&ax(2), &t).unwrap()));
    }
}
