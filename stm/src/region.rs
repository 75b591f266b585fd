//! Regions: the commutation points of a state, one bit each.
//!
//! Invariant: every key marks at least every region whose content a write at
//! that key could change or a read at it could see. Region bits are a fast,
//! conservative filter; exact keys decide (see [`AccessSet`](crate::AccessSet)).
//!
//! For noun states a [`RegionMap`] names disjoint subtrees by their root axes
//! (every subtree at a depth, or one per subsystem); whatever lies outside
//! them is one more region, the last. An axis inside a region marks that
//! region; an axis above region roots marks all regions below it and the
//! outside region; any other axis marks the outside region.

use std::collections::HashMap;

use bitvec::vec::BitVec;
use spectree_noun::Axis;
use thiserror::Error;

use crate::key::{Key, MapKey};

/// How keys of one kind map to region bits.
pub trait Regions<K: Key>: Send + Sync {
    /// Number of region bits.
    fn count(&self) -> usize;

    /// Call `f` with every region `key` may touch (possibly repeating one).
    fn each(&self, key: &K, f: &mut dyn FnMut(usize));

    /// Call `f` with the regions of a reliance on `key`'s *existence*:
    /// enough that every write at a key enclosing it (see
    /// [`Key::encloses`]) touches one of them. By default the same as
    /// [`each`](Self::each).
    fn each_shape(&self, key: &K, f: &mut dyn FnMut(usize)) {
        self.each(key, f);
    }

    /// Set the bit of every region `key` may touch.
    fn mark(&self, key: &K, bits: &mut BitVec) {
        self.each(key, &mut |i| bits.set(i, true));
    }

    /// Set the bits of a reliance on `key`'s existence (see
    /// [`each_shape`](Self::each_shape)).
    fn mark_shape(&self, key: &K, bits: &mut BitVec) {
        self.each_shape(key, &mut |i| bits.set(i, true));
    }
}

/// A shared region map is a region map.
impl<K: Key, R: Regions<K> + ?Sized> Regions<K> for std::sync::Arc<R> {
    fn count(&self) -> usize {
        (**self).count()
    }

    fn each(&self, key: &K, f: &mut dyn FnMut(usize)) {
        (**self).each(key, f)
    }

    fn each_shape(&self, key: &K, f: &mut dyn FnMut(usize)) {
        (**self).each_shape(key, f)
    }
}

/// Why a region map could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum RegionError {
    /// Depth-based maps are limited to 2^16 regions.
    #[error("region depth {0} is too deep (at most 16)")]
    TooDeep(u64),
    /// Two region roots overlap.
    #[error("region roots {0} and {1} overlap: one is an ancestor of the other")]
    Overlap(Axis, Axis),
    /// The same root was listed twice, or none was listed.
    #[error("region list is empty or repeats axis {0}")]
    Empty(String),
}

/// Disjoint subtrees of a noun state, one bit each, plus one bit for the
/// rest.
///
/// ```
/// use spectree_stm::{RegionMap, Regions};
/// use spectree_noun::Axis;
/// let r = RegionMap::depth(2).unwrap(); // axes 4, 5, 6, 7 and the rest
/// let mut bits = bitvec::bitvec![0; r.count()];
/// r.mark(&Axis::new(13).unwrap(), &mut bits); // inside axis 6
/// assert_eq!(bits.iter_ones().collect::<Vec<_>>(), vec![2]);
/// ```
#[derive(Debug, Clone)]
pub struct RegionMap {
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Depth(u64),
    List {
        roots: Vec<Axis>,
        index: HashMap<Axis, usize>,
        /// The distinct depths of the roots, ascending.
        depths: Vec<u64>,
    },
}

impl RegionMap {
    /// Every subtree at depth `d` (2^d regions) plus the part above them.
    ///
    /// # Errors
    /// [`RegionError::TooDeep`] above depth 16.
    pub fn depth(d: u64) -> Result<RegionMap, RegionError> {
        if d > 16 {
            return Err(RegionError::TooDeep(d));
        }
        Ok(RegionMap {
            kind: Kind::Depth(d),
        })
    }

    /// The given disjoint subtrees (one per subsystem, say) plus the rest.
    ///
    /// # Errors
    /// [`RegionError::Overlap`] if one root is an ancestor of another,
    /// [`RegionError::Empty`] for an empty or repeating list.
    pub fn axes(roots: Vec<Axis>) -> Result<RegionMap, RegionError> {
        if roots.is_empty() {
            return Err(RegionError::Empty("(none given)".into()));
        }
        let mut index = HashMap::new();
        for (i, r) in roots.iter().enumerate() {
            if index.insert(r.clone(), i).is_some() {
                return Err(RegionError::Empty(r.to_string()));
            }
        }
        for a in &roots {
            for b in &roots {
                if a != b && a.is_ancestor_of(b) {
                    return Err(RegionError::Overlap(a.clone(), b.clone()));
                }
            }
        }
        let mut depths: Vec<u64> = roots.iter().map(Axis::depth).collect();
        depths.sort_unstable();
        depths.dedup();
        Ok(RegionMap {
            kind: Kind::List {
                roots,
                index,
                depths,
            },
        })
    }

    /// Index of the region outside every root.
    pub fn outside(&self) -> usize {
        self.count() - 1
    }

    /// The root axes, in region order (the outside region has none).
    pub fn roots(&self) -> Vec<Axis> {
        match &self.kind {
            Kind::Depth(d) => (0..1u64 << d)
                .map(|i| Axis::new((1u64 << d) + i).expect("nonzero"))
                .collect(),
            Kind::List { roots, .. } => roots.clone(),
        }
    }
}

impl Regions<Axis> for RegionMap {
    fn count(&self) -> usize {
        match &self.kind {
            Kind::Depth(d) => (1usize << d) + 1,
            Kind::List { roots, .. } => roots.len() + 1,
        }
    }

    /// A write enclosing an axis inside a region marks that region; a write
    /// enclosing an axis outside every region is itself outside every region
    /// and marks the outside region.
    fn each_shape(&self, axis: &Axis, f: &mut dyn FnMut(usize)) {
        f(self.containing(axis).unwrap_or(self.outside()));
    }

    fn each(&self, axis: &Axis, f: &mut dyn FnMut(usize)) {
        let outside = self.outside();
        match &self.kind {
            Kind::Depth(d) => {
                let depth = axis.depth();
                if depth >= *d {
                    let root = axis.ancestor(depth - d).expect("depth >= d");
                    let i = root.as_u64().expect("depth <= 16") - (1u64 << d);
                    f(i as usize);
                } else {
                    let n = axis.as_u64().expect("depth < 16");
                    let span = d - depth;
                    let first = (n << span) - (1u64 << d);
                    for i in first..first + (1u64 << span) {
                        f(i as usize);
                    }
                    f(outside);
                }
            }
            Kind::List { roots, .. } => {
                // Inside a root: the root is an ancestor-or-self.
                if let Some(i) = self.containing(axis) {
                    f(i);
                    return;
                }
                // Above some roots, or beside all of them.
                for (i, r) in roots.iter().enumerate() {
                    if axis.is_ancestor_of(r) {
                        f(i);
                    }
                }
                f(outside);
            }
        }
    }
}

impl RegionMap {
    /// The region `axis` lies inside, if any.
    fn containing(&self, axis: &Axis) -> Option<usize> {
        match &self.kind {
            Kind::Depth(d) => {
                let depth = axis.depth();
                (depth >= *d).then(|| {
                    let root = axis.ancestor(depth - d).expect("depth >= d");
                    (root.as_u64().expect("depth <= 16") - (1u64 << d)) as usize
                })
            }
            Kind::List { index, depths, .. } => {
                // One lookup per distinct root depth, not one per ancestor.
                let depth = axis.depth();
                depths
                    .iter()
                    .take_while(|&&d| d <= depth)
                    .find_map(|&d| index.get(&axis.ancestor(depth - d).expect("d <= depth")))
                    .copied()
            }
        }
    }
}

/// Map keys spread over `n` regions by their mug.
#[derive(Debug, Clone)]
pub struct HashRegions(pub usize);

impl Regions<MapKey> for HashRegions {
    fn count(&self) -> usize {
        self.0.max(1)
    }

    fn each(&self, key: &MapKey, f: &mut dyn FnMut(usize)) {
        f(key.0.mug() as usize % self.count());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitvec::bitvec;

    fn ax(n: u64) -> Axis {
        Axis::new(n).unwrap()
    }

    fn marked(r: &dyn Regions<Axis>, a: u64) -> Vec<usize> {
        let mut bits = bitvec![0; r.count()];
        r.mark(&ax(a), &mut bits);
        bits.iter_ones().collect()
    }

    #[test]
    fn depth_regions_at_above_and_below_roots() {
        let r = RegionMap::depth(2).unwrap();
        assert_eq!(r.count(), 5);
        assert_eq!(marked(&r, 4), vec![0]); // at a root
        assert_eq!(marked(&r, 7), vec![3]);
        assert_eq!(marked(&r, 29), vec![3]); // below: 29 -> 14 -> 7
        assert_eq!(marked(&r, 3), vec![2, 3, 4]); // above two roots
        assert_eq!(marked(&r, 1), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn shapes_mark_their_region_or_the_outside() {
        let r = RegionMap::depth(2).unwrap();
        let shape = |a: u64| {
            let mut bits = bitvec![0; r.count()];
            r.mark_shape(&ax(a), &mut bits);
            bits.iter_ones().collect::<Vec<_>>()
        };
        assert_eq!(shape(13), vec![2]);
        assert_eq!(shape(3), vec![4]);
        // Every write enclosing them marks that bit too.
        for (t, w) in [(13u64, 6u64), (13, 3), (13, 1), (3, 1), (6, 3)] {
            let mut bits = bitvec![0; r.count()];
            r.mark(&ax(w), &mut bits);
            assert!(shape(t).iter().all(|&i| bits[i]), "shape {t}, write {w}");
        }
    }

    #[test]
    fn huge_axes_are_placed_in_linear_time() {
        use spectree_noun::Atom;
        let r = RegionMap::axes(vec![ax(4), ax(6), ax(15)]).unwrap();
        // 3 * 2^300000: inside region 6 (axis 6 = 3 * 2), 300,001 levels down.
        let big = num_bigint::BigUint::from(3u8) << 300_000u32;
        let axis = Axis::from_atom(&Atom::from_biguint(big)).unwrap();
        let start = std::time::Instant::now();
        let mut bits = bitvec![0; r.count()];
        r.mark(&axis, &mut bits);
        r.mark_shape(&axis, &mut bits);
        assert_eq!(bits.iter_ones().collect::<Vec<_>>(), vec![1]);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn listed_regions() {
        assert_eq!(
            RegionMap::axes(vec![ax(6), ax(13), ax(4)]).unwrap_err(),
            RegionError::Overlap(ax(6), ax(13))
        );
        let r = RegionMap::axes(vec![ax(4), ax(6), ax(15)]).unwrap();
        assert_eq!(r.count(), 4);
        assert_eq!(marked(&r, 6), vec![1]);
        assert_eq!(marked(&r, 13), vec![1]);
        assert_eq!(marked(&r, 5), vec![3]); // beside every root: outside
        assert_eq!(marked(&r, 3), vec![1, 2, 3]); // above 6 and 15
        assert_eq!(marked(&r, 7), vec![2, 3]); // above 15
        assert!(RegionMap::axes(vec![]).is_err());
        assert!(RegionMap::axes(vec![ax(4), ax(4)]).is_err());
        assert!(RegionMap::depth(17).is_err());
    }
}
