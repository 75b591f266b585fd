//! Access sets: what one execution read and wrote, and whether it still
//! holds after other writes committed.
//!
//! An [`AccessSet`] records three kinds of exact keys, each also marked in a
//! region bitset:
//! - **reads**: the content at the key (and below it) decided something;
//!   a write at an overlapping key invalidates them;
//! - **shapes**: only the *existence* of the key mattered (a lookup or edit
//!   went through it); a write at an enclosing key (a proper ancestor)
//!   invalidates them, a write at or below the key does not;
//! - **writes**: the keys whose content this execution replaced.
//!
//! Invariant ([`validate`]): a read set is reported valid against committed
//! writes only if no committed write overlaps one of its reads or encloses
//! one of its shapes. Bitsets are checked first as a fast filter; exact keys
//! decide, so the answer is never optimistic and is conservative only as far
//! as [`Key`] is.

use std::fmt;
use std::sync::Arc;

use bitvec::vec::BitVec;

use crate::key::Key;
use crate::region::Regions;

/// Told of every region a running execution reads, the first time it
/// records a read there: the scheduler's hook for aborting an execution
/// that is already doomed.
pub trait ReadWatch: Send + Sync {
    /// The execution is about to read (or rely on the shape of) something
    /// in `region`.
    fn read_region(&self, region: usize);
}

/// An optional watch; never part of a set's value.
#[derive(Clone, Default)]
struct Watch(Option<Arc<dyn ReadWatch>>);

impl PartialEq for Watch {
    fn eq(&self, _: &Watch) -> bool {
        true
    }
}
impl Eq for Watch {}
impl fmt::Debug for Watch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "watched" } else { "-" })
    }
}

/// Regions marked, each once, in first-marked order; membership by a
/// short scan while few, by a bitset (allocated then) once many. Memory is
/// proportional to the regions touched, not to the region count.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct RegionSet {
    list: Vec<u32>,
    bits: Option<BitVec>,
}

/// Regions past which a set switches from scanning to a bitset.
const SCAN_LIMIT: usize = 16;

impl RegionSet {
    /// Mark `i` (of `count` regions); whether it was new.
    #[inline]
    fn insert(&mut self, i: usize, count: usize) -> bool {
        match &mut self.bits {
            Some(bits) => {
                if bits.replace(i, true) {
                    return false;
                }
            }
            None => {
                if self.list.contains(&(i as u32)) {
                    return false;
                }
                if self.list.len() >= SCAN_LIMIT {
                    let mut bits = BitVec::repeat(false, count.max(i + 1));
                    for &r in &self.list {
                        bits.set(r as usize, true);
                    }
                    bits.set(i, true);
                    self.bits = Some(bits);
                }
            }
        }
        self.list.push(i as u32);
        true
    }

    #[inline]
    fn contains(&self, i: u32) -> bool {
        match &self.bits {
            Some(bits) => bits.get(i as usize).is_some_and(|b| *b),
            None => self.list.contains(&i),
        }
    }

    fn clear(&mut self) {
        self.list.clear();
        self.bits = None;
    }
}

/// The keys one execution read, relied on the shape of, and wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessSet<K: Key> {
    reads: Vec<K>,
    shapes: Vec<K>,
    writes: Vec<K>,
    /// Regions read (reads and shapes) and written: checks iterate these,
    /// in time proportional to what was touched, not to the number of
    /// regions.
    read_regions: RegionSet,
    write_regions: RegionSet,
    /// The number of regions of the map the set was built for.
    count: usize,
    watch: Watch,
}

impl<K: Key> AccessSet<K> {
    /// An empty set for `regions`. It allocates nothing until something is
    /// recorded.
    pub fn new(regions: &dyn Regions<K>) -> Self {
        AccessSet {
            count: regions.count(),
            ..AccessSet::empty()
        }
    }

    /// An empty set that records nothing, for executions that track
    /// nothing (it allocates nothing).
    pub fn empty() -> Self {
        AccessSet {
            reads: Vec::new(),
            shapes: Vec::new(),
            writes: Vec::new(),
            read_regions: RegionSet::default(),
            write_regions: RegionSet::default(),
            count: 0,
            watch: Watch(None),
        }
    }

    /// Tell `watch` of each region this set reads from now on, the first
    /// time it is read.
    pub(crate) fn set_watch(&mut self, watch: Option<Arc<dyn ReadWatch>>) {
        self.watch = Watch(watch);
    }

    /// Record that the content at `key` was read.
    pub fn read(&mut self, key: K, regions: &dyn Regions<K>) {
        let (set, watch, count) = (&mut self.read_regions, &self.watch.0, self.count);
        regions.each(&key, &mut |i| note(set, count, watch, i));
        self.reads.push(key);
    }

    /// Record that the existence of `key` was relied on.
    pub fn shape(&mut self, key: K, regions: &dyn Regions<K>) {
        let (set, watch, count) = (&mut self.read_regions, &self.watch.0, self.count);
        regions.each_shape(&key, &mut |i| note(set, count, watch, i));
        self.shapes.push(key);
    }

    /// Record a write at `key`.
    pub fn write(&mut self, key: K, regions: &dyn Regions<K>) {
        let (set, count) = (&mut self.write_regions, self.count);
        regions.each(&key, &mut |i| note(set, count, &None, i));
        self.writes.push(key);
    }

    /// Sort and deduplicate the exact keys, and sort the region lists (for
    /// stable output; checks do not need it).
    pub fn normalize(&mut self) {
        for v in [&mut self.reads, &mut self.shapes, &mut self.writes] {
            v.sort();
            v.dedup();
        }
        self.read_regions.list.sort_unstable();
        self.write_regions.list.sort_unstable();
    }

    /// Forget every write (an execution that failed writes nothing). Region
    /// marks are cleared too. Not public: only the executor decides what an
    /// execution wrote.
    ///
    /// ```compile_fail
    /// fn forget(set: &mut spectree_stm::AccessSet<spectree_noun::Axis>) {
    ///     set.clear_writes();
    /// }
    /// ```
    pub(crate) fn clear_writes(&mut self) {
        self.writes.clear();
        self.write_regions.clear();
    }

    /// Drop writes that lie inside other writes (the outer write's value
    /// includes them). Region marks stay as they were: still conservative.
    pub fn drop_enclosed_writes(&mut self) {
        if K::DISJOINT {
            return;
        }
        let all = self.writes.clone();
        self.writes.retain(|w| !all.iter().any(|o| o.encloses(w)));
    }

    /// Keys whose content was read.
    pub fn reads(&self) -> &[K] {
        &self.reads
    }

    /// Keys whose existence was relied on.
    pub fn shapes(&self) -> &[K] {
        &self.shapes
    }

    /// Keys written.
    pub fn writes(&self) -> &[K] {
        &self.writes
    }

    /// The regions read (including shapes), each once (in ascending order
    /// once [normalized](Self::normalize)).
    pub fn read_regions(&self) -> &[u32] {
        &self.read_regions.list
    }

    /// The regions written, each once (ascending once normalized).
    pub fn write_regions(&self) -> &[u32] {
        &self.write_regions.list
    }

    /// Whether `committed`'s writes invalidate this set's reads or shapes.
    pub fn conflicts_with(&self, committed: &AccessSet<K>) -> bool {
        let hint = self
            .read_regions
            .list
            .iter()
            .any(|&i| committed.write_regions.contains(i));
        if !hint {
            return false;
        }
        committed.writes.iter().any(|w| {
            self.reads.iter().any(|r| r.overlaps(w)) || self.shapes.iter().any(|s| w.encloses(s))
        })
    }

    /// Regions where `committed`'s writes meet this set's reads (for
    /// per-region conflict statistics).
    pub fn conflict_regions(&self, committed: &AccessSet<K>) -> Vec<u32> {
        self.read_regions
            .list
            .iter()
            .copied()
            .filter(|&i| committed.write_regions.contains(i))
            .collect()
    }
}

fn note(set: &mut RegionSet, count: usize, watch: &Option<Arc<dyn ReadWatch>>, i: usize) {
    if set.insert(i, count) {
        if let Some(w) = watch {
            w.read_region(i);
        }
    }
}

/// Whether `reads` still holds after every write in `committed`: true
/// exactly when no committed write overlaps a read or encloses a shape.
///
/// ```
/// use spectree_stm::{validate, AccessSet, RegionMap};
/// use spectree_noun::Axis;
/// let regions = RegionMap::depth(1).unwrap();
/// let ax = |n| Axis::new(n).unwrap();
/// let mut mine = AccessSet::new(&regions);
/// mine.read(ax(6), &regions);
/// let mut theirs = AccessSet::new(&regions);
/// theirs.write(ax(7), &regions); // same region, different subtree
/// assert!(validate(&mine, [&theirs]));
/// theirs.write(ax(3), &regions); // an ancestor of 6
/// assert!(!validate(&mine, [&theirs]));
/// ```
pub fn validate<'a, K: Key>(
    reads: &AccessSet<K>,
    committed: impl IntoIterator<Item = &'a AccessSet<K>>,
) -> bool {
    committed.into_iter().all(|c| !reads.conflicts_with(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RegionMap;
    use spectree_noun::Axis;

    fn ax(n: u64) -> Axis {
        Axis::new(n).unwrap()
    }

    fn set(regions: &RegionMap, reads: &[u64], shapes: &[u64], writes: &[u64]) -> AccessSet<Axis> {
        let mut s = AccessSet::new(regions);
        reads.iter().for_each(|&r| s.read(ax(r), regions));
        shapes.iter().for_each(|&r| s.shape(ax(r), regions));
        writes.iter().for_each(|&r| s.write(ax(r), regions));
        s
    }

    #[test]
    fn reads_conflict_with_overlapping_writes_only() {
        let r = RegionMap::depth(2).unwrap();
        let mine = set(&r, &[13], &[], &[]);
        for (w, conflict) in [
            (13, true),
            (6, true),
            (3, true),
            (1, true),
            (26, true),
            (12, false),
            (7, false),
            (27, true),
        ] {
            let theirs = set(&r, &[], &[], &[w]);
            assert_eq!(mine.conflicts_with(&theirs), conflict, "read 13, write {w}");
        }
    }

    #[test]
    fn shapes_conflict_with_enclosing_writes_only() {
        let r = RegionMap::depth(2).unwrap();
        let mine = set(&r, &[], &[13], &[]);
        for (w, conflict) in [
            (13, false),
            (26, false),
            (6, true),
            (3, true),
            (1, true),
            (12, false),
        ] {
            let theirs = set(&r, &[], &[], &[w]);
            assert_eq!(
                mine.conflicts_with(&theirs),
                conflict,
                "shape 13, write {w}"
            );
        }
    }

    #[test]
    fn bits_meeting_is_not_a_conflict_by_itself() {
        // 12 and 13 share region 6's bit; the exact check clears them.
        let r = RegionMap::depth(2).unwrap();
        let mine = set(&r, &[12], &[], &[]);
        let theirs = set(&r, &[], &[], &[13]);
        assert!(!mine.conflict_regions(&theirs).is_empty());
        assert!(validate(&mine, [&theirs]));
    }
}
