//! Provenance tracking of Nock computations over a noun state.
//!
//! The tracker is a [`Hook`] whose tag says where a value came from:
//! - [`Prov::Fresh`]: not taken from the state (the event, constants, atoms
//!   the computation made; those depend on the state only through values it
//!   inspected, which are recorded as reads);
//! - [`Prov::Orig`]`(a)`: exactly the state's subtree at axis `a`;
//! - [`Prov::Pair`]: a cell the computation built, with the provenance of
//!   each side. A pair of the two halves of `Orig(p)` collapses to `Orig(p)`.
//!
//! What it records, with axes relative to the state:
//! - a **read** of `a` whenever a value's content inspects `Orig(a)` (a
//!   formula to run, a branch condition, an operand of Nock 3, 4, 5), and
//!   whenever a lookup or edit inside the state *fails*;
//! - a **shape** of `t` whenever a lookup or edit *succeeds* by going down
//!   inside the state to `t`: the result depends on the path to `t` being
//!   cells, not on what `t` holds.
//!
//! Navigating, copying, consing and editing read nothing else, so taking the
//! whole subject with `[0 1]`, editing a sample into it and calling an arm
//! reads the arm, not the state.
//!
//! The tracker remembers the last few pairs it built and hands out the same
//! node when a cons has the same sides again (a loop rebuilding its subject).
//! Tags are values, so this changes nothing a tag says; but write extraction
//! treats a pair node met twice in the new state as a whole-subtree write
//! (`exec.rs`), so a new state holding the same built cell twice is
//! recorded more coarsely: more conflicts, never fewer.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use spectree_noun::nock::Hook;
use spectree_noun::{Atom, Axis, Noun};

use crate::access::AccessSet;
use crate::region::Regions;

/// Where a value came from, relative to the tracked state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prov {
    /// Not taken from the state.
    Fresh,
    /// The state's subtree at this axis.
    Orig(Axis),
    /// A cell built by the computation.
    Pair(Arc<PairProv>),
}

/// The two sides of a [`Prov::Pair`]. Dropped without recursion.
#[derive(Debug, PartialEq, Eq)]
pub struct PairProv(pub Prov, pub Prov);

impl Drop for PairProv {
    fn drop(&mut self) {
        let mut stack: Vec<Arc<PairProv>> = Vec::new();
        for side in [&mut self.0, &mut self.1] {
            if let Prov::Pair(p) = std::mem::replace(side, Prov::Fresh) {
                stack.push(p);
            }
        }
        while let Some(p) = stack.pop() {
            if let Some(mut inner) = Arc::into_inner(p) {
                for side in [&mut inner.0, &mut inner.1] {
                    if let Prov::Pair(q) = std::mem::replace(side, Prov::Fresh) {
                        stack.push(q);
                    }
                }
            }
        }
    }
}

impl Prov {
    /// The provenance of the cell `[head tail]`.
    #[inline]
    pub fn pair(head: Prov, tail: Prov) -> Prov {
        if let (Prov::Fresh, Prov::Fresh) = (&head, &tail) {
            return Prov::Fresh;
        }
        Self::pair_slow(head, tail)
    }

    #[inline(never)]
    fn pair_slow(head: Prov, tail: Prov) -> Prov {
        if let (Prov::Orig(h), Prov::Orig(t)) = (&head, &tail) {
            if let Some(p) = h.parent() {
                if p.head() == *h && p.tail() == *t {
                    return Prov::Orig(p);
                }
            }
        }
        Prov::Pair(Arc::new(PairProv(head, tail)))
    }

    /// Split into the provenance of the head and the tail of the value.
    fn halves(&self) -> (Prov, Prov) {
        match self {
            Prov::Fresh => (Prov::Fresh, Prov::Fresh),
            Prov::Orig(a) => (Prov::Orig(a.head()), Prov::Orig(a.tail())),
            Prov::Pair(p) => (p.0.clone(), p.1.clone()),
        }
    }

    /// Every state axis this provenance takes a value from, each once.
    /// Shared pair nodes are visited once, so a tag built by repeated
    /// doubling costs its size in memory, not its size as a tree.
    #[cfg(test)]
    pub fn origins(&self) -> Vec<Axis> {
        let mut out = Vec::new();
        let mut seen = Seen::default();
        self.visit(&mut seen, &mut |a| out.push(a.clone()));
        out.sort();
        out.dedup();
        out
    }

    /// Call `found` for each `Orig` reachable from this tag through pair
    /// nodes not in `seen` (and add those nodes to `seen`).
    fn visit(&self, seen: &mut Seen, found: &mut dyn FnMut(&Axis)) {
        let mut stack = vec![self];
        while let Some(p) = stack.pop() {
            match p {
                Prov::Fresh => {}
                Prov::Orig(a) => found(a),
                Prov::Pair(pair) => {
                    if seen.0.insert(PairRef(pair.clone())) {
                        stack.push(&pair.1);
                        stack.push(&pair.0);
                    }
                }
            }
        }
    }
}

/// A pair node keyed by identity. Holding the `Arc` keeps the address from
/// being reused by another node while it is a key.
#[derive(Clone)]
struct PairRef(Arc<PairProv>);

impl PartialEq for PairRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for PairRef {}

impl Hash for PairRef {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (Arc::as_ptr(&self.0) as usize).hash(state);
    }
}

/// Pair nodes already visited.
#[derive(Default)]
pub(crate) struct Seen(HashSet<PairRef>);

impl Seen {
    /// Whether `p` is a pair node visited before (and mark it visited).
    pub(crate) fn revisit(&mut self, p: &Prov) -> bool {
        match p {
            Prov::Pair(pair) => !self.0.insert(PairRef(pair.clone())),
            _ => false,
        }
    }
}

/// The tracking hook: derives provenance tags and records reads and shapes
/// into an [`AccessSet`].
pub struct Tracker<'r> {
    regions: &'r dyn Regions<Axis>,
    /// What the computation has read so far.
    pub access: AccessSet<Axis>,
    /// Pair nodes whose origins are already read.
    read_pairs: Seen,
    /// Axes already read.
    read_axes: HashSet<Axis>,
    /// The last axis [`read_all`](Self::read_all) was asked for (in
    /// `read_axes`).
    last_read: Option<Axis>,
    /// Recently built pairs: (head, tail, the pair's tag).
    pairs: Vec<(Prov, Prov, Prov)>,
    /// Where the next built pair goes in `pairs` (round robin).
    pairs_next: usize,
}

impl<'r> Tracker<'r> {
    /// A tracker recording into a fresh access set.
    pub fn new(regions: &'r dyn Regions<Axis>) -> Self {
        Tracker {
            regions,
            access: AccessSet::new(regions),
            read_pairs: Seen::default(),
            read_axes: HashSet::new(),
            last_read: None,
            pairs: Vec::new(),
            pairs_next: 0,
        }
    }

    /// Record a reliance on the existence of state axis `axis`.
    pub fn shape(&mut self, axis: Axis) {
        self.access.shape(axis, self.regions);
    }

    /// Record a write at state axis `axis`.
    pub fn write(&mut self, axis: Axis) {
        self.access.write(axis, self.regions);
    }

    /// Record reads of every state axis `tag` takes a value from. Each
    /// pair node and each axis is handled once per run, however often it is
    /// inspected, so the cost is bounded by the size of what was built.
    pub fn read_all(&mut self, tag: &Prov) {
        if let Prov::Orig(a) = tag {
            // The common case, a loop inspecting the same state value on
            // every pass: one comparison with the last axis read, else one
            // set lookup; nothing allocated.
            if self.last_read.as_ref() == Some(a) {
                return;
            }
            if !self.read_axes.contains(a) {
                self.read_axes.insert(a.clone());
                self.access.read(a.clone(), self.regions);
            }
            self.last_read = Some(a.clone());
            return;
        }
        let (access, regions, axes) = (&mut self.access, self.regions, &mut self.read_axes);
        tag.visit(&mut self.read_pairs, &mut |a| {
            if axes.insert(a.clone()) {
                access.read(a.clone(), regions);
            }
        });
    }

    /// Follow `axis` into a value tagged `of`: the provenance found there,
    /// and, when the path enters the state, the state axis it arrives at.
    fn walk(of: &Prov, axis: &Axis) -> (Prov, Option<Axis>) {
        let mut cur = of.clone();
        let mut taken = Axis::ROOT;
        for tail in axis.path() {
            match cur {
                Prov::Fresh => return (Prov::Fresh, None),
                Prov::Orig(a) => {
                    let rest = axis.relative_to(&taken).expect("taken is a prefix");
                    let target = a.compose(&rest);
                    return (Prov::Orig(target.clone()), Some(target));
                }
                Prov::Pair(p) => {
                    cur = if tail { p.1.clone() } else { p.0.clone() };
                    taken = taken.child(tail);
                }
            }
        }
        (cur, None)
    }

    /// Provenance of `target` with `value` written at `axis` (the edit
    /// succeeded); records the shape the edit relied on.
    pub fn edit_prov(&mut self, target: Prov, axis: &Axis, value: Prov) -> Prov {
        let mut spine: Vec<(Prov, bool)> = Vec::new();
        let mut cur = target;
        let mut taken = Axis::ROOT;
        let mut shaped = false;
        for tail in axis.path() {
            if let (Prov::Orig(a), false) = (&cur, shaped) {
                let rest = axis.relative_to(&taken).expect("prefix");
                self.access.shape(a.compose(&rest), self.regions);
                shaped = true;
            }
            let (h, t) = cur.halves();
            if tail {
                spine.push((h, true));
                cur = t;
            } else {
                spine.push((t, false));
                cur = h;
            }
            taken = taken.child(tail);
        }
        spine.into_iter().rev().fold(value, |acc, (other, tail)| {
            if tail {
                Prov::pair(other, acc)
            } else {
                Prov::pair(acc, other)
            }
        })
    }
}

fn axis_of(atom: &Atom) -> Option<Axis> {
    Axis::from_atom(atom).ok()
}

/// [`Tracker::walk`] for an axis that fits in a word: the same answer,
/// following the axis's bits through borrowed pair nodes (no axis values
/// built per step, no reference counts touched on the way down).
fn walk_small(of: &Prov, axis: u64) -> (Prov, Option<Axis>) {
    debug_assert!(axis != 0);
    let steps = 63 - axis.leading_zeros();
    let mut cur = of;
    for left in (0..steps).rev() {
        match cur {
            Prov::Fresh => return (Prov::Fresh, None),
            Prov::Orig(a) => {
                // The rest of the path: the low `left + 1` bits under a
                // leading one.
                let below = left + 1;
                let rest = (1u64 << below) | (axis & ((1u64 << below) - 1));
                let rest = Axis::new(rest).expect("nonzero");
                let target = a.compose(&rest);
                return (Prov::Orig(target.clone()), Some(target));
            }
            Prov::Pair(p) => cur = if (axis >> left) & 1 == 1 { &p.1 } else { &p.0 },
        }
    }
    (cur.clone(), None)
}

/// Whether two tags are the same value, cheaply: equal axes, or the same
/// pair node (equal nodes that are not the same one compare unequal here;
/// that only costs a cache miss).
fn same(a: &Prov, b: &Prov) -> bool {
    match (a, b) {
        (Prov::Fresh, Prov::Fresh) => true,
        (Prov::Orig(x), Prov::Orig(y)) => x == y,
        (Prov::Pair(x), Prov::Pair(y)) => Arc::ptr_eq(x, y),
        _ => false,
    }
}

/// Pairs remembered by [`Tracker::cons_slow`].
const PAIR_CACHE: usize = 4;

impl Tracker<'_> {
    /// The tag of a cell built from tags not both fresh. A loop rebuilds
    /// the same few pairs on every pass (the subject `[battery [counter
    /// value]]` with `value` from the state): the last few are remembered,
    /// so a pass shares a node instead of allocating one.
    #[inline(never)]
    fn cons_slow(&mut self, head: Prov, tail: Prov) -> Prov {
        if let Some((_, _, built)) = self
            .pairs
            .iter()
            .find(|(h, t, _)| same(h, &head) && same(t, &tail))
        {
            return built.clone();
        }
        let built = Prov::pair(head.clone(), tail.clone());
        if let Prov::Pair(_) = built {
            let at = self.pairs_next % PAIR_CACHE;
            self.pairs_next = self.pairs_next.wrapping_add(1);
            let entry = (head, tail, built.clone());
            if at < self.pairs.len() {
                self.pairs[at] = entry;
            } else {
                self.pairs.push(entry);
            }
        }
        built
    }

    #[inline(never)]
    fn slot_slow(&mut self, of: &Prov, axis: &Atom) -> Prov {
        let (found, entered) = match axis.as_u64() {
            Some(small) if small != 0 => walk_small(of, small),
            _ => {
                let axis = axis_of(axis).expect("a successful lookup has a nonzero axis");
                Self::walk(of, &axis)
            }
        };
        if let Some(target) = entered {
            self.access.shape(target, self.regions);
        }
        found
    }

    #[inline(never)]
    fn edit_slow(&mut self, target: Prov, axis: &Atom, value: Prov) -> Prov {
        let axis = axis_of(axis).expect("a successful edit has a nonzero axis");
        self.edit_prov(target, &axis, value)
    }
}

// Every method starts with an inlined check for `Fresh`, the only tag code
// that does not touch the state ever sees, so tracking costs little there.
impl Hook for Tracker<'_> {
    type Tag = Prov;

    #[inline(always)]
    fn constant(&mut self) -> Prov {
        Prov::Fresh
    }

    /// Fresh values and everything computed from them alone are fresh, and
    /// every method records nothing for fresh tags: code whose subject is
    /// fresh (a loop over the event's values) runs untracked.
    #[inline(always)]
    fn is_inert(&self, tag: &Prov) -> bool {
        matches!(tag, Prov::Fresh)
    }

    #[inline(always)]
    fn slot(&mut self, of: &Prov, axis: &Atom) -> Prov {
        match of {
            Prov::Fresh => Prov::Fresh,
            _ => self.slot_slow(of, axis),
        }
    }

    #[inline(always)]
    fn cons(&mut self, head: Prov, tail: Prov) -> Prov {
        if let (Prov::Fresh, Prov::Fresh) = (&head, &tail) {
            // Fresh tags own nothing: skipping their drop glue is exact,
            // and it keeps this path (every cons of state-free code) as
            // cheap as it was before the pair cache.
            std::mem::forget((head, tail));
            return Prov::Fresh;
        }
        self.cons_slow(head, tail)
    }

    #[inline(always)]
    fn edit(&mut self, target: Prov, axis: &Atom, value: Prov) -> Prov {
        match (&target, &value) {
            (Prov::Fresh, Prov::Fresh) => Prov::Fresh,
            _ => self.edit_slow(target, axis, value),
        }
    }

    #[inline(never)]
    fn failed(&mut self, of: &Prov, axis: &Atom) {
        // Axis 0 fails whatever the state holds.
        if let Some(axis) = axis_of(axis) {
            if let (_, Some(target)) = Self::walk(of, &axis) {
                self.access.read(target, self.regions);
            }
        }
    }

    #[inline(always)]
    fn inspect(&mut self, _: &Noun, tag: &Prov) {
        if !matches!(tag, Prov::Fresh) {
            self.read_all(tag);
        }
    }

    /// Nock 3 depends on cell-ness only: a built cell is a cell whatever
    /// the state holds; a state cell stays a cell unless something at or
    /// above it is written (a shape of its head); a state atom stays an
    /// atom unless it is written.
    #[inline(always)]
    fn inspect_cell(&mut self, noun: &Noun, tag: &Prov) {
        if let Prov::Orig(a) = tag {
            if noun.is_cell() {
                self.access.shape(a.head(), self.regions);
            } else {
                self.access.read(a.clone(), self.regions);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegionMap;
    use spectree_noun::nock::{nock_with, Limits};

    use crate::testing::{ax, n};

    /// Run `formula` on the subject `[event state]` and return (reads, shapes)
    /// relative to the state.
    fn trace(state: &str, formula: &str) -> (Vec<Axis>, Vec<Axis>, Prov) {
        let regions = RegionMap::depth(2).unwrap();
        let mut t = Tracker::new(&regions);
        let subject = Noun::cell(Noun::atom(0), n(state));
        let tag = Prov::pair(Prov::Fresh, Prov::Orig(Axis::ROOT));
        let r = nock_with(subject, tag, &n(formula), &Limits::fuel(10_000), &mut t).unwrap();
        t.access.normalize();
        (t.access.reads().to_vec(), t.access.shapes().to_vec(), r.tag)
    }

    /// The word-sized walk agrees with the general one on every axis up
    /// to depth 9 of tags mixing fresh, original and built parts.
    #[test]
    fn small_walk_agrees_with_the_general_walk() {
        let orig = |a: u64| Prov::Orig(ax(a));
        let tags = [
            Prov::Fresh,
            orig(1),
            orig(13),
            Prov::pair(Prov::Fresh, orig(1)),
            Prov::pair(orig(6), Prov::pair(Prov::Fresh, orig(7))),
            Prov::pair(
                Prov::pair(orig(2), Prov::Fresh),
                Prov::pair(Prov::pair(Prov::Fresh, orig(5)), orig(3)),
            ),
        ];
        for tag in &tags {
            for axis in 1u64..1024 {
                assert_eq!(
                    walk_small(tag, axis),
                    Tracker::walk(tag, &ax(axis)),
                    "tag {tag:?}, axis {axis}"
                );
            }
        }
    }

    /// Conses through the pair cache equal `Prov::pair` of their sides,
    /// before and after eviction, and the cache never holds more than
    /// [`PAIR_CACHE`] pairs.
    #[test]
    fn the_pair_cache_is_bounded_and_exact() {
        let regions = RegionMap::depth(2).unwrap();
        let mut t = Tracker::new(&regions);
        let sides: Vec<(Prov, Prov)> = (2..9u64)
            .map(|a| (Prov::Fresh, Prov::Orig(ax(a * 2 + 1))))
            .collect();
        for _ in 0..3 {
            for (h, tl) in &sides {
                let built = t.cons(h.clone(), tl.clone());
                assert_eq!(built, Prov::pair(h.clone(), tl.clone()));
                assert!(t.pairs.len() <= PAIR_CACHE);
            }
        }
        // A repeated cons hands out the remembered node.
        let (h, tl) = &sides[6];
        let (Prov::Pair(a), Prov::Pair(b)) =
            (t.cons(h.clone(), tl.clone()), t.cons(h.clone(), tl.clone()))
        else {
            panic!("a fresh head and an original tail make a pair")
        };
        assert!(Arc::ptr_eq(&a, &b));
    }

    #[test]
    fn navigation_is_not_a_read() {
        // [0 1], [0 3]: the whole subject and the whole state, untouched.
        let (reads, shapes, tag) = trace("[[1 2] 3 4]", "[0 1]");
        assert!(reads.is_empty() && shapes.is_empty());
        assert_eq!(tag, Prov::pair(Prov::Fresh, Prov::Orig(ax(1))));
        let (reads, shapes, tag) = trace("[[1 2] 3 4]", "[0 3]");
        assert!(reads.is_empty() && shapes.is_empty());
        assert_eq!(tag, Prov::Orig(ax(1)));
    }

    #[test]
    fn reading_axis_6_reads_axis_6_only() {
        // State axis 6 is subject axis 14; inspecting it reads axis 6.
        let (reads, shapes, _) = trace("[[1 2] 3 4]", "[4 0 14]");
        assert_eq!(reads, vec![ax(6)]);
        assert_eq!(shapes, vec![ax(6)]);
        // Copying it without inspecting relies on its existence only.
        let (reads, shapes, tag) = trace("[[1 2] 3 4]", "[0 14]");
        assert!(reads.is_empty());
        assert_eq!(shapes, vec![ax(6)]);
        assert_eq!(tag, Prov::Orig(ax(6)));
    }

    #[test]
    fn gate_call_reads_the_arm_not_the_state() {
        // The state is a core [battery sample context]; the kernel takes the
        // whole subject, edits a sample into the core and calls its arm.
        // Subject [e [battery sample ctx]]: core at 3, battery 6, sample 14.
        let state = "[[4 0 6] 41 [1 2] 3 4]";
        let formula = "[7 [0 3] 9 2 10 [6 1 7] 0 1]";
        let (reads, shapes, _) = trace(state, formula);
        // Reads: the arm (battery, state axis 2); the arm inspects the new
        // sample, which is fresh. Nothing else of the state.
        assert_eq!(reads, vec![ax(2)]);
        assert_eq!(shapes, vec![ax(6)]);
    }

    #[test]
    fn failed_lookup_reads_the_axis_asked_for() {
        let regions = RegionMap::depth(2).unwrap();
        let mut t = Tracker::new(&regions);
        let subject = Noun::cell(Noun::atom(0), n("[5 6]"));
        let tag = Prov::pair(Prov::Fresh, Prov::Orig(Axis::ROOT));
        let r = nock_with(subject, tag, &n("[0 12]"), &Limits::fuel(100), &mut t);
        assert!(r.is_err());
        assert_eq!(t.access.reads(), &[ax(4)]);
    }

    #[test]
    fn edits_keep_the_rest_of_the_state_as_it_was() {
        let (_, shapes, tag) = trace("[[1 2] 3 4]", "[10 [6 1 9] 0 3]");
        assert_eq!(shapes, vec![ax(6)]);
        let expected = Prov::pair(
            Prov::Orig(ax(2)),
            Prov::pair(Prov::Fresh, Prov::Orig(ax(7))),
        );
        assert_eq!(tag, expected);
        // Rebuilding both halves restores identity.
        assert_eq!(
            Prov::pair(Prov::Orig(ax(6)), Prov::Orig(ax(7))),
            Prov::Orig(ax(3))
        );
    }

    #[test]
    fn is_cell_relies_on_cell_ness_only() {
        // ?@ on state axis 3 (a cell): only its existence as a cell.
        let (reads, shapes, _) = trace("[[1 2] 3 4]", "[3 0 7]");
        assert!(reads.is_empty());
        assert_eq!(shapes, vec![ax(3), ax(6)]);
        // ?@ on state axis 6 (an atom): its content.
        let (reads, _, _) = trace("[[1 2] 3 4]", "[3 0 14]");
        assert_eq!(reads, vec![ax(6)]);
    }

    #[test]
    fn doubling_tags_are_read_in_linear_time() {
        // [[0 3] 0 3] then 40 doublings, then run the result as a formula
        // test (inspect): 2^40 paths, 40 nodes.
        let mut f = "[[0 3] 0 3]".to_string();
        for _ in 0..40 {
            f = format!("[7 {f} [0 1] 0 1]");
        }
        let formula = format!("[3 [5 {f} [1 0]]]");
        let (reads, _, _) = trace("[1 2]", &formula);
        assert_eq!(reads, vec![ax(1)]);
    }

    #[test]
    fn deep_pair_tags_drop_without_recursion() {
        let mut p = Prov::Fresh;
        for i in 0..1_000_000u64 {
            p = Prov::pair(Prov::Orig(ax(2 + (i % 2) * 5)), p);
        }
        assert_eq!(p.origins(), vec![ax(2), ax(7)]);
        drop(p);
    }
}
