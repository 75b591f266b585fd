//! The noun: an atom or a cell of two nouns.
//!
//! Invariants kept here:
//! - cells are immutable and shared: `clone` is O(1) and never copies
//!   structure, so versions of a state share every unchanged subtree;
//! - a cell's mug and its 64-bit fingerprint are each computed at most once
//!   per allocation and cached thread-safely (0 means "not yet computed";
//!   neither is ever 0);
//! - equal nouns have equal mugs and equal fingerprints, so differing cached
//!   values prove inequality. Mugs are only 31 bits and cycle on regular
//!   shapes (the mugs of `[1 [1 [1 ...]]]` repeat with a period of about
//!   10^4), so maps keyed by value hash the fingerprint instead;
//! - nothing here recurses on the native stack over the depth of a noun:
//!   equality, mug and `Drop` use explicit heap stacks, so a 10^6-deep noun is
//!   as safe as a shallow one.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;

use crate::atom::Atom;
use crate::counted::Counted;

/// A noun: an [`Atom`] or a [`Cell`].
///
/// ```
/// use spectree_noun::Noun;
/// let n = Noun::cell(Noun::from(1u64), Noun::cell(Noun::from(2u64), Noun::from(3u64)));
/// assert_eq!(n.to_string(), "[1 2 3]");
/// assert_eq!(n, "[1 2 3]".parse().unwrap());
/// ```
pub enum Noun {
    /// An unsigned integer of any size.
    Atom(Atom),
    /// An ordered pair of nouns.
    Cell(Cell),
}

impl Clone for Noun {
    /// O(1): a reference-count increment at most (none for inline atoms
    /// and immortal cells). Always inlined in optimised builds, where the
    /// interpreter's hot paths clone (out of line it cost 4% of the
    /// decrement loop); not in debug builds, whose unshared stack slots
    /// would make the fast path's recursion frames too big.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    fn clone(&self) -> Noun {
        match self {
            Noun::Atom(a) => Noun::Atom(a.clone()),
            Noun::Cell(c) => Noun::Cell(c.clone()),
        }
    }
}

/// A shared, immutable pair of nouns with a lazily cached mug.
#[derive(Clone)]
pub struct Cell(Counted<CellData>);

struct CellData {
    head: Noun,
    tail: Noun,
    fingerprint: AtomicU64,
    mug: AtomicU32,
}

impl Cell {
    /// A new cell `[head tail]`.
    #[inline]
    pub fn new(head: Noun, tail: Noun) -> Cell {
        Cell(Counted::new(CellData {
            head,
            tail,
            fingerprint: AtomicU64::new(0),
            mug: AtomicU32::new(0),
        }))
    }

    /// The head (axis 2 relative to this cell).
    #[inline]
    pub fn head(&self) -> &Noun {
        &self.0.head
    }

    /// The tail (axis 3 relative to this cell).
    #[inline]
    pub fn tail(&self) -> &Noun {
        &self.0.tail
    }

    /// Whether both cells are the same allocation (implies equality).
    #[inline]
    pub fn ptr_eq(&self, other: &Cell) -> bool {
        Counted::ptr_eq(&self.0, &other.0)
    }

    /// The address of the shared allocation, usable as an identity key while
    /// this cell is alive.
    #[inline]
    pub fn addr(&self) -> usize {
        Counted::as_ptr(&self.0) as usize
    }

    /// The mug if it has been computed already.
    #[inline]
    pub fn cached_mug(&self) -> Option<u32> {
        match self.0.mug.load(Ordering::Relaxed) {
            0 => None,
            m => Some(m),
        }
    }

    /// Urbit's 31-bit mug of this cell, computed once and cached.
    pub fn mug(&self) -> u32 {
        if let Some(m) = self.cached_mug() {
            return m;
        }
        fill(
            self,
            Cell::cached_mug,
            Atom::mug,
            crate::mug::mug_both,
            |c, m| c.0.mug.store(m, Ordering::Relaxed),
        )
    }

    /// The fingerprint if it has been computed already.
    #[inline]
    pub fn cached_fingerprint(&self) -> Option<u64> {
        match self.0.fingerprint.load(Ordering::Relaxed) {
            0 => None,
            f => Some(f),
        }
    }

    /// A 64-bit structural hash of this cell, computed once and cached.
    ///
    /// Equal nouns have equal fingerprints within one process. It is keyed
    /// with a per-process random seed, so it is not stable across runs and
    /// collisions cannot be precomputed; use [`mug`](Self::mug) for anything
    /// persisted or shared.
    pub fn fingerprint(&self) -> u64 {
        if let Some(f) = self.cached_fingerprint() {
            return f;
        }
        fill(
            self,
            Cell::cached_fingerprint,
            atom_fingerprint,
            cell_fingerprint,
            |c, f| c.0.fingerprint.store(f, Ordering::Relaxed),
        )
    }

    /// Mutable access to the head and tail when this is the only
    /// reference to the cell (so no one else can see the change), with its
    /// cached mug and fingerprint cleared; `None` when the cell is shared.
    pub(crate) fn parts_mut(&mut self) -> Option<(&mut Noun, &mut Noun)> {
        let data = Counted::get_mut(&mut self.0)?;
        *data.fingerprint.get_mut() = 0;
        *data.mug.get_mut() = 0;
        Some((&mut data.head, &mut data.tail))
    }

    /// Split into owned head and tail, without copying when this is the last
    /// reference.
    pub fn into_parts(self) -> (Noun, Noun) {
        match Counted::try_unwrap(self.0) {
            Ok(mut data) => (data.take_head(), data.take_tail()),
            Err(shared) => (shared.head.clone(), shared.tail.clone()),
        }
    }
}

/// Compute a cached bottom-up value for `root` and every uncached cell
/// below it, in post-order on a heap stack; returns the root's value.
fn fill<V: Copy>(
    root: &Cell,
    cached: impl Fn(&Cell) -> Option<V>,
    leaf: impl Fn(&Atom) -> V,
    combine: impl Fn(V, V) -> V,
    store: impl Fn(&Cell, V),
) -> V {
    let value = |n: &Noun| match n {
        Noun::Atom(a) => Some(leaf(a)),
        Noun::Cell(c) => cached(c),
    };
    let mut stack: Vec<&Cell> = vec![root];
    while let Some(&top) = stack.last() {
        if cached(top).is_some() {
            stack.pop();
            continue;
        }
        match (value(top.head()), value(top.tail())) {
            (Some(h), Some(t)) => {
                store(top, combine(h, t));
                stack.pop();
            }
            (h, t) => {
                if let (None, Noun::Cell(c)) = (t, top.tail()) {
                    stack.push(c);
                }
                if let (None, Noun::Cell(c)) = (h, top.head()) {
                    stack.push(c);
                }
            }
        }
    }
    cached(root).expect("computed above")
}

fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        use std::hash::BuildHasher;
        std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64) | 1
    })
}

/// SplitMix64's finaliser: a bijective 64-bit mixer.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn nonzero(h: u64) -> u64 {
    if h == 0 {
        1
    } else {
        h
    }
}

fn atom_fingerprint(a: &Atom) -> u64 {
    match a.as_u64() {
        Some(v) => nonzero(mix64(v ^ seed())),
        // Cached in the atom: computed once per allocation.
        None => a
            .big_fingerprint(|value| {
                let mut h = seed() ^ 0xa70a;
                for digit in value.iter_u64_digits() {
                    h = mix64(h ^ digit);
                }
                nonzero(h)
            })
            .expect("a big atom"),
    }
}

fn cell_fingerprint(head: u64, tail: u64) -> u64 {
    nonzero(mix64(
        head.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ tail.rotate_left(23) ^ seed(),
    ))
}

impl CellData {
    fn take_head(&mut self) -> Noun {
        std::mem::replace(&mut self.head, Noun::ZERO)
    }
    fn take_tail(&mut self) -> Noun {
        std::mem::replace(&mut self.tail, Noun::ZERO)
    }
}

impl CellData {
    fn has_cell_child(&self) -> bool {
        self.head.is_cell() || self.tail.is_cell()
    }
}

/// Release `noun`; if it was the last reference to a cell that still has
/// cell children, hand that cell's data back instead of dropping it, so the
/// caller can take its children apart without recursing.
fn release(noun: Noun) -> Option<CellData> {
    let Noun::Cell(Cell(arc)) = noun else {
        return None;
    };
    // Dropping data whose children are atoms recurses no further.
    Counted::into_inner(arc).filter(CellData::has_cell_child)
}

impl Drop for CellData {
    fn drop(&mut self) {
        // Cells nest arbitrarily deep, so cells we hold the last reference to
        // are taken apart on a heap stack and dropping never recurses more
        // than one level. Shared children only lose a reference, and a chain
        // of single cell children (a list) needs no allocation at all.
        if !self.has_cell_child() {
            return;
        }
        let mut stack: Vec<CellData> = Vec::new();
        let mut next = release(self.take_head());
        if let Some(tail) = release(self.take_tail()) {
            match next {
                None => next = Some(tail),
                Some(_) => stack.push(tail),
            }
        }
        while let Some(mut data) = next.take().or_else(|| stack.pop()) {
            let head = release(data.take_head());
            let tail = release(data.take_tail());
            next = match (head, tail) {
                (Some(h), Some(t)) => {
                    stack.push(t);
                    Some(h)
                }
                (h, t) => h.or(t),
            };
            // `data` now holds two atoms; dropping it returns at once.
        }
    }
}

impl Noun {
    /// The atom 0 (also the loobean "yes").
    pub const ZERO: Noun = Noun::Atom(Atom::ZERO);
    /// The atom 1 (also the loobean "no").
    pub const ONE: Noun = Noun::Atom(Atom::ONE);

    /// An atom from a machine word.
    #[inline]
    pub const fn atom(value: u64) -> Noun {
        Noun::Atom(Atom::new(value))
    }

    /// The cell `[head tail]`.
    #[inline]
    pub fn cell(head: Noun, tail: Noun) -> Noun {
        Noun::Cell(Cell::new(head, tail))
    }

    /// Make every cell of this noun *immortal*: never freed, and cloned and
    /// dropped without writing to its reference count. Returns how many
    /// cells this call made immortal.
    ///
    /// For nouns that live as long as the process anyway, such as kernel
    /// formulas and formula constants: threads that evaluate a shared
    /// formula in parallel otherwise contend on its cells' reference counts
    /// (each evaluation clones the arms it runs), which measured as half
    /// speed on two threads. The cost is memory: the cells are leaked, so
    /// make only bounded, long-lived nouns immortal. Sharing, equality and
    /// every other behaviour are unchanged. Big atoms are not affected.
    ///
    /// ```
    /// use spectree_noun::Noun;
    /// let kernel: Noun = "[2 [0 1] 0 2]".parse()?;
    /// assert_eq!(kernel.immortalize(), 4); // [2 [[0 1] [0 2]]]: four cells
    /// assert_eq!(kernel.immortalize(), 0, "already immortal");
    /// # Ok::<(), spectree_noun::ParseError>(())
    /// ```
    pub fn immortalize(&self) -> usize {
        let mut made = 0;
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            let Noun::Cell(c) = n else { continue };
            // An immortal cell's children were made immortal with it (or
            // are kept alive by it for good in any case).
            if Counted::immortalize(&c.0) {
                made += 1;
                stack.push(c.tail());
                stack.push(c.head());
            }
        }
        made
    }

    /// Whether this noun is a cell made immortal (see
    /// [`immortalize`](Self::immortalize)).
    pub fn is_immortal(&self) -> bool {
        matches!(self, Noun::Cell(c) if Counted::is_immortal(&c.0))
    }

    /// A right-nested tuple: `[a b c]` is `[a [b c]]`.
    ///
    /// # Panics
    /// Panics if `items` is empty.
    pub fn tuple(items: impl IntoIterator<Item = Noun, IntoIter: DoubleEndedIterator>) -> Noun {
        let mut iter = items.into_iter().rev();
        let mut acc = iter.next().expect("a tuple needs at least one element");
        for item in iter {
            acc = Noun::cell(item, acc);
        }
        acc
    }

    /// A null-terminated list `[a b c 0]`.
    pub fn list(items: impl IntoIterator<Item = Noun, IntoIter: DoubleEndedIterator>) -> Noun {
        items
            .into_iter()
            .rev()
            .fold(Noun::ZERO, |acc, item| Noun::cell(item, acc))
    }

    /// Whether this is a cell.
    #[inline]
    pub fn is_cell(&self) -> bool {
        matches!(self, Noun::Cell(_))
    }

    /// Whether this is an atom.
    #[inline]
    pub fn is_atom(&self) -> bool {
        matches!(self, Noun::Atom(_))
    }

    /// The atom, if this is one.
    #[inline]
    pub fn as_atom(&self) -> Option<&Atom> {
        match self {
            Noun::Atom(a) => Some(a),
            Noun::Cell(_) => None,
        }
    }

    /// The cell, if this is one.
    #[inline]
    pub fn as_cell(&self) -> Option<&Cell> {
        match self {
            Noun::Cell(c) => Some(c),
            Noun::Atom(_) => None,
        }
    }

    /// The value as a `u64`, if this is an atom that fits.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        self.as_atom().and_then(Atom::as_u64)
    }

    /// Urbit's 31-bit mug (cached in cells).
    pub fn mug(&self) -> u32 {
        match self {
            Noun::Atom(a) => a.mug(),
            Noun::Cell(c) => c.mug(),
        }
    }

    /// A 64-bit structural hash, cached in cells; see [`Cell::fingerprint`].
    pub fn fingerprint(&self) -> u64 {
        match self {
            Noun::Atom(a) => atom_fingerprint(a),
            Noun::Cell(c) => c.fingerprint(),
        }
    }

    /// Whether both nouns are the same shared cell (a cheap sufficient
    /// condition for equality; atoms are never pointer-equal).
    #[inline]
    pub fn ptr_eq(&self, other: &Noun) -> bool {
        match (self, other) {
            (Noun::Cell(a), Noun::Cell(b)) => a.ptr_eq(b),
            _ => false,
        }
    }

    /// The subtree at `axis` (Nock's `/`), if there is one: the way to read
    /// a receipt or an effect back.
    pub fn at(&self, axis: u64) -> Option<&Noun> {
        crate::axis::slot_u64(axis, self)
    }

    /// The first `N - 1` items of a tuple `[a b ... z]` and its rest, if it
    /// has that many.
    pub fn items<const N: usize>(&self) -> Option<[&Noun; N]> {
        if N == 0 {
            return None;
        }
        let mut out = [self; N];
        let mut cur = self;
        for slot in out.iter_mut().take(N - 1) {
            let Noun::Cell(c) = cur else {
                return None;
            };
            *slot = c.head();
            cur = c.tail();
        }
        out[N - 1] = cur;
        Some(out)
    }

    /// Number of cells and atoms in the tree, counting shared subtrees once
    /// per occurrence (iterative).
    pub fn node_count(&self) -> u64 {
        let mut count = 0u64;
        let mut stack = vec![self];
        while let Some(n) = stack.pop() {
            count += 1;
            if let Noun::Cell(c) = n {
                stack.push(c.tail());
                stack.push(c.head());
            }
        }
        count
    }
}

impl Default for Noun {
    fn default() -> Self {
        Noun::ZERO
    }
}

impl PartialEq for Noun {
    #[inline]
    fn eq(&self, other: &Noun) -> bool {
        match (self, other) {
            (Noun::Atom(a), Noun::Atom(b)) => a == b,
            (Noun::Cell(a), Noun::Cell(b)) => a.ptr_eq(b) || deep_eq(self, other),
            _ => false,
        }
    }
}

/// Cell pairs the plain walk of [`deep_eq`] compares before it starts
/// remembering what it has compared.
const WALK_STEPS: usize = 1024;

/// Structural equality, near-linear whatever the sharing.
///
/// First a plain walk on a heap stack, short-circuiting on shared cells and
/// on differing cached fingerprints or mugs: enough for most nouns. Two
/// equal nouns that share subtrees internally but not with each other
/// (built separately, or decoded by `cue`) would be compared once per path,
/// exponentially often, so after [`WALK_STEPS`] steps the walk goes on with
/// a [`Unifier`]: near-linear in the distinct cells of both.
fn deep_eq(this: &Noun, other: &Noun) -> bool {
    match walk_eq(this, other, WALK_STEPS) {
        Some(answer) => answer,
        None => Unifier::default().unify(this, other, false),
    }
}

/// Whether two cells' cached digests prove them different.
#[inline]
fn cached_differ(x: &Cell, y: &Cell) -> bool {
    if let (Some(fx), Some(fy)) = (x.cached_fingerprint(), y.cached_fingerprint()) {
        if fx != fy {
            return true;
        }
    }
    matches!((x.cached_mug(), y.cached_mug()), (Some(mx), Some(my)) if mx != my)
}

/// The plain walk: `Some(answer)` within `steps` cell pairs, `None` when it
/// would take more.
fn walk_eq(this: &Noun, other: &Noun, steps: usize) -> Option<bool> {
    let mut stack: Vec<(&Noun, &Noun)> = Vec::new();
    let mut left = steps;
    let (mut a, mut b) = (this, other);
    loop {
        match (a, b) {
            (Noun::Atom(x), Noun::Atom(y)) => {
                if let (Some(p), Some(q)) = (x.big_addr(), y.big_addr()) {
                    // Two big atoms in different allocations: comparing
                    // them costs their size, so leave it to the unifier,
                    // which compares each allocation once.
                    if p != q {
                        return None;
                    }
                } else if x != y {
                    return Some(false);
                }
            }
            (Noun::Cell(x), Noun::Cell(y)) => {
                if !x.ptr_eq(y) {
                    if cached_differ(x, y) {
                        return Some(false);
                    }
                    if left == 0 {
                        return None;
                    }
                    left -= 1;
                    stack.push((x.tail(), y.tail()));
                    a = x.head();
                    b = y.head();
                    continue;
                }
            }
            _ => return Some(false),
        }
        match stack.pop() {
            Some((x, y)) => {
                a = x;
                b = y;
            }
            None => return Some(true),
        }
    }
}

/// Equality by unification: cells found (or being found) equal are merged
/// into one class (union-find over cell addresses), and a pair already in
/// one class is not compared again. Every comparison of two cells in
/// different classes merges two classes, so a walk compares at most as many
/// pairs as there are distinct cells: near-linear, however the two nouns
/// share. Skipping a pair in one class is sound because the walk stops at
/// the first difference: if it ends with "equal", every merge was justified.
///
/// A long-lived unifier (the interpreter keeps one per computation) answers
/// repeated comparisons of the same cells in near-constant time. It keeps
/// every cell it has seen alive (so addresses are not reused), and it
/// forgets everything after a comparison that fails (its merges were then
/// not all justified); the caller compares fingerprints first, so failures
/// that get this far are fingerprint collisions.
#[derive(Default)]
pub struct Unifier {
    parent: FastMap<usize, usize>,
    /// What `parent` numbers, held so that addresses are not reused (empty
    /// for a one-shot walk, which borrows its nouns).
    kept: Vec<Noun>,
}

impl fmt::Debug for Unifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Unifier")
            .field("cells", &self.parent.len())
            .finish()
    }
}

impl Unifier {
    /// Whether `a` and `b` are equal: what is already known, a short plain
    /// walk, then fingerprints, then unification, remembered for later
    /// calls.
    pub fn eq(&mut self, a: &Noun, b: &Noun) -> bool {
        match (a, b) {
            (Noun::Atom(_), Noun::Atom(_)) => self.same_atoms(a, b),
            (Noun::Cell(x), Noun::Cell(y)) => {
                if x.ptr_eq(y) {
                    return true;
                }
                if self.known_equal(x.addr(), y.addr()) {
                    return true;
                }
                match walk_eq(a, b, WALK_STEPS) {
                    Some(answer) => answer,
                    None => a.fingerprint() == b.fingerprint() && self.unify(a, b, true),
                }
            }
            _ => false,
        }
    }

    fn same_atoms(&mut self, a: &Noun, b: &Noun) -> bool {
        match walk_eq(a, b, 0) {
            Some(answer) => answer,
            None => a.fingerprint() == b.fingerprint() && self.unify(a, b, true),
        }
    }

    /// Whether two addresses are already known to hold equal values.
    fn known_equal(&mut self, x: usize, y: usize) -> bool {
        self.parent.contains_key(&x) && self.parent.contains_key(&y) && self.find(x) == self.find(y)
    }

    /// Cells remembered.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }

    fn find(&mut self, mut x: usize) -> usize {
        // Path halving.
        loop {
            let Some(&p) = self.parent.get(&x) else {
                return x;
            };
            if p == x {
                return x;
            }
            let Some(&g) = self.parent.get(&p) else {
                return p;
            };
            self.parent.insert(x, g);
            x = g;
        }
    }

    fn note(&mut self, addr: usize, hold: Option<&Noun>) {
        if let std::collections::hash_map::Entry::Vacant(e) = self.parent.entry(addr) {
            e.insert(addr);
            if let Some(n) = hold {
                self.kept.push(n.clone());
            }
        }
    }

    /// The walk; `keep` holds on to the cells and big atoms it numbers
    /// (for a long-lived unifier, so their addresses are not reused).
    fn unify(&mut self, this: &Noun, other: &Noun, keep: bool) -> bool {
        let mut stack: Vec<(&Noun, &Noun)> = vec![(this, other)];
        while let Some((a, b)) = stack.pop() {
            match (a, b) {
                (Noun::Atom(x), Noun::Atom(y)) => {
                    let (Some(p), Some(q)) = (x.big_addr(), y.big_addr()) else {
                        if x != y {
                            return self.failed();
                        }
                        continue;
                    };
                    // Big atoms are merged by allocation, like cells, so
                    // each pair of allocations is compared once.
                    if p == q || self.known_equal(p, q) {
                        continue;
                    }
                    if a.fingerprint() != b.fingerprint() || x != y {
                        return self.failed();
                    }
                    self.note(p, keep.then_some(a));
                    self.note(q, keep.then_some(b));
                    let (rp, rq) = (self.find(p), self.find(q));
                    self.parent.insert(rp, rq);
                }
                (Noun::Cell(x), Noun::Cell(y)) => {
                    if x.ptr_eq(y) {
                        continue;
                    }
                    if cached_differ(x, y) {
                        return self.failed();
                    }
                    self.note(x.addr(), keep.then_some(a));
                    self.note(y.addr(), keep.then_some(b));
                    let (rx, ry) = (self.find(x.addr()), self.find(y.addr()));
                    if rx == ry {
                        continue;
                    }
                    self.parent.insert(rx, ry);
                    stack.push((x.tail(), y.tail()));
                    stack.push((x.head(), y.head()));
                }
                _ => return self.failed(),
            }
        }
        true
    }

    fn failed(&mut self) -> bool {
        self.parent.clear();
        self.kept.clear();
        false
    }
}

/// A hash map keyed by addresses and small numbers, which need no
/// protection against chosen collisions (they are not chosen by inputs).
pub(crate) type FastMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<WordHasher>>;

/// Multiply-and-rotate hashing of machine words (an FxHash-like mixer).
#[derive(Default, Clone, Copy)]
pub(crate) struct WordHasher(u64);

impl Hasher for WordHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut w = [0u8; 8];
            w[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(w));
        }
    }

    #[inline]
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    #[inline]
    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}

impl Eq for Noun {}

impl Hash for Noun {
    /// Hashes the [fingerprint](Noun::fingerprint), so equal nouns hash alike
    /// however they were built.
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.fingerprint());
    }
}

impl From<u64> for Noun {
    fn from(v: u64) -> Noun {
        Noun::atom(v)
    }
}

/// `[a b]`.
///
/// ```
/// use spectree_noun::Noun;
/// let receipt = Noun::from((7u64, (8u64, 9u64)));
/// assert_eq!(receipt.to_string(), "[7 8 9]");
/// assert_eq!(receipt.at(6).and_then(Noun::as_u64), Some(8));
/// assert_eq!(Noun::from((1u64, 2u64, 3u64)).to_string(), "[1 2 3]");
/// assert_eq!(receipt.items::<3>().map(|[a, b, c]| (a.as_u64(), b.as_u64(), c.as_u64())),
///            Some((Some(7), Some(8), Some(9))));
/// ```
impl<A: Into<Noun>, B: Into<Noun>> From<(A, B)> for Noun {
    fn from((a, b): (A, B)) -> Noun {
        Noun::cell(a.into(), b.into())
    }
}

/// `[a b c]`, that is `[a [b c]]`.
impl<A: Into<Noun>, B: Into<Noun>, C: Into<Noun>> From<(A, B, C)> for Noun {
    fn from((a, b, c): (A, B, C)) -> Noun {
        Noun::cell(a.into(), Noun::cell(b.into(), c.into()))
    }
}

/// `[a b c d]`, that is `[a [b [c d]]]`.
impl<A: Into<Noun>, B: Into<Noun>, C: Into<Noun>, D: Into<Noun>> From<(A, B, C, D)> for Noun {
    fn from((a, b, c, d): (A, B, C, D)) -> Noun {
        Noun::cell(
            a.into(),
            Noun::cell(b.into(), Noun::cell(c.into(), d.into())),
        )
    }
}

impl From<Atom> for Noun {
    fn from(a: Atom) -> Noun {
        Noun::Atom(a)
    }
}

impl From<Cell> for Noun {
    fn from(c: Cell) -> Noun {
        Noun::Cell(c)
    }
}

impl PartialEq for Cell {
    fn eq(&self, other: &Cell) -> bool {
        self.ptr_eq(other) || Noun::Cell(self.clone()) == Noun::Cell(other.clone())
    }
}

impl Eq for Cell {}

impl fmt::Debug for Noun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Debug for Cell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&Noun::Cell(self.clone()), f)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// `[1 [1 [1 ... 0]]]` with `n` cells.
    pub(crate) fn deep_list(n: usize) -> Noun {
        (0..n).fold(Noun::ZERO, |acc, _| Noun::cell(Noun::ONE, acc))
    }

    /// `[[[... 0] 1] 1]` with `n` cells.
    pub(crate) fn deep_left(n: usize) -> Noun {
        (0..n).fold(Noun::ZERO, |acc, _| Noun::cell(acc, Noun::ONE))
    }

    #[test]
    fn fingerprints_separate_what_mugs_confuse() {
        // Mugs of a list of ones cycle; fingerprints do not.
        let long = deep_list(40_000);
        let mut mugs = std::collections::HashSet::new();
        let mut prints = std::collections::HashSet::new();
        let mut cur = &long;
        while let Noun::Cell(c) = cur {
            mugs.insert(c.mug());
            prints.insert(c.fingerprint());
            cur = c.tail();
        }
        assert!(mugs.len() < 40_000, "the mug cycle this guards against");
        assert_eq!(prints.len(), 40_000);
        assert_eq!(deep_list(10).fingerprint(), deep_list(10).fingerprint());
        assert_ne!(deep_list(10).fingerprint(), deep_left(10).fingerprint());
    }

    #[test]
    fn equality_of_separately_built_shared_trees_is_linear() {
        // A doubling tree of depth 80: 2^80 paths, 80 distinct cells.
        let build = || (0..80).fold(Noun::ONE, |acc, _| Noun::cell(acc.clone(), acc));
        let (x, y) = (build(), build());
        assert!(!x.ptr_eq(&y));
        assert_eq!(x, y);
        let z = Noun::cell(Noun::ZERO, y.clone());
        assert_ne!(Noun::cell(Noun::ONE, x), z);
    }

    /// `levels` levels of `width` cells each, all equal in value (a
    /// doubling tree), with cell `i` of a level pointing at cells `i` and
    /// `i + step` of the level below: two such nouns with different steps
    /// share nothing and pair up almost every cell of one with every cell
    /// of the other.
    fn braided(levels: usize, width: usize, step: usize) -> Noun {
        let mut level: Vec<Noun> = (0..width)
            .map(|_| Noun::cell(Noun::ONE, Noun::ONE))
            .collect();
        for _ in 0..levels {
            level = (0..width)
                .map(|i| Noun::cell(level[i].clone(), level[(i + step) % width].clone()))
                .collect();
        }
        level[0].clone()
    }

    #[test]
    fn equality_is_near_linear_whatever_the_sharing() {
        // 40,000 cells each; the old pair-remembering walk took tens of
        // seconds and most of a gigabyte here.
        let (x, y) = (braided(200, 200, 1), braided(200, 200, 7));
        let start = std::time::Instant::now();
        assert_eq!(x, y);
        let z = Noun::cell(Noun::ZERO, braided(199, 200, 3));
        assert_ne!(
            Noun::cell(Noun::ZERO, Noun::cell(x.clone(), Noun::ONE)),
            Noun::cell(Noun::ZERO, Noun::cell(z, Noun::ONE))
        );
        let mut unifier = Unifier::default();
        for _ in 0..1000 {
            assert!(unifier.eq(&x, &y));
        }
        assert!(unifier.len() <= 80_002, "{}", unifier.len());
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn noun_is_two_words() {
        assert_eq!(std::mem::size_of::<Noun>(), 16);
    }

    #[test]
    fn equality_structural_and_pointer() {
        let a = Noun::tuple([Noun::atom(1), Noun::atom(2), Noun::atom(3)]);
        let b = Noun::tuple([Noun::atom(1), Noun::atom(2), Noun::atom(3)]);
        let c = Noun::tuple([Noun::atom(1), Noun::atom(2), Noun::atom(4)]);
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(a, Noun::atom(1));
        assert!(a.ptr_eq(&a.clone()));
        // Differing cached mugs short-circuit, and stay correct.
        a.mug();
        c.mug();
        assert_ne!(a, c);
    }

    #[test]
    fn million_deep_nouns_do_not_overflow() {
        for (x, y) in [
            (deep_list(1_000_000), deep_list(1_000_000)),
            (deep_left(1_000_000), deep_left(1_000_000)),
        ] {
            assert_eq!(x, y);
            assert_eq!(x.mug(), y.mug());
            assert_eq!(x.node_count(), 2_000_001);
            drop(x);
            drop(y);
        }
    }

    #[test]
    fn into_parts_moves_or_clones() {
        let c = Cell::new(Noun::atom(1), Noun::atom(2));
        let keep = c.clone();
        let (h, t) = c.into_parts();
        assert_eq!((h, t), (Noun::atom(1), Noun::atom(2)));
        let (h, _) = keep.into_parts();
        assert_eq!(h, Noun::atom(1));
    }
}
