//! [`MapState`]: a persistent map from nouns to nouns, built for a commit
//! path that makes a new version per event.
//!
//! Invariant: the map is its trie with its recent writes applied, oldest
//! first; a recent write shadows the trie and any older recent write of the
//! same key. Recent writes are an immutable list shared between versions,
//! so a version that differs from the last by one write costs one small
//! allocation, not a copy of the trie nodes on the key's path. The list is
//! folded into the trie in one batch once it holds [`FOLD`] writes (each
//! shared node on the batch's paths copied once, not once per write). A map
//! with no other version (the serial processor's, or one built by
//! `collect`) is edited in the trie in place.
//!
//! Why: with thousands of keys, copying a trie path touches the reference
//! counts of every sibling on it (about 50 at 1,000 keys), and under
//! speculation those counts are also touched by other threads dropping old
//! snapshots: each touch was a cache miss, and the commit role spent about
//! 2 µs per event there (`docs/benchmarks.md`).

use std::sync::Arc;

use spectree_noun::Noun;

use crate::key::MapKey;
use crate::state::{State, StateError};
use crate::trie::HashTrie;

/// Recent writes folded into the trie at once. A fold copies the root and
/// one node per level per distinct path, each copy touching the reference
/// counts of its children, so larger folds share more of that; lookups walk
/// the buffer when its filter says a key may be there. At 100,000 keys
/// (`cargo bench --bench stm -- map_state_100k`, with a filter that used
/// half its bits): 32 gave 1.40 µs per persistent update and 29 ns per
/// lookup with writes buffered, 128 gave 0.87 µs and 55 ns, 256 gave
/// 0.74 µs and 177 ns. With the whole filter in use, the lookup at 128 is
/// 37 ns (62 ns before, side by side).
pub(crate) const FOLD: u32 = 128;

/// Words of a recent list's filter (a 1024-bit Bloom filter of its keys).
const FILTER_WORDS: usize = 16;

/// One recent write, and the writes before it.
struct Recent {
    hash: u64,
    key: MapKey,
    value: Noun,
    prev: Option<Arc<Recent>>,
    /// Writes in the list, this one included.
    count: u32,
    /// The keys of every write in the list (two bits per key, taken from
    /// the fingerprint's high bits; the trie uses the low ones).
    filter: [u64; FILTER_WORDS],
}

/// Bits of the fingerprint per filter position: enough to address every
/// bit of the filter.
const FILTER_INDEX_BITS: u32 = (FILTER_WORDS * 64).trailing_zeros();

/// The filter's two bits for a key: two disjoint runs of the
/// fingerprint's top bits, each addressing the whole filter.
fn filter_bits(hash: u64) -> [(usize, u64); 2] {
    let bit = |b: u64| ((b / 64) as usize, 1u64 << (b % 64));
    let mask = (1u64 << FILTER_INDEX_BITS) - 1;
    [
        bit(hash >> (64 - FILTER_INDEX_BITS)),
        bit((hash >> (64 - 2 * FILTER_INDEX_BITS)) & mask),
    ]
}

impl Recent {
    fn may_hold(&self, hash: u64) -> bool {
        filter_bits(hash)
            .iter()
            .all(|&(w, b)| self.filter[w] & b != 0)
    }

    /// The list's writes, newest first.
    fn iter(&self) -> impl Iterator<Item = &Recent> {
        std::iter::successors(Some(self), |r| r.prev.as_deref())
    }
}

impl Drop for Recent {
    /// Iterative, so that dropping a long list cannot overflow the stack
    /// (lists are at most [`FOLD`] long, but this costs nothing).
    fn drop(&mut self) {
        let mut next = self.prev.take();
        while let Some(r) = next {
            match Arc::try_unwrap(r) {
                Ok(mut r) => next = r.prev.take(),
                Err(_) => break,
            }
        }
    }
}

/// A persistent map from nouns to nouns, for state that is keys and
/// values; keys are spread over regions by hash ([`HashRegions`](crate::HashRegions)).
///
/// `clone` is O(1) and versions share structure. A `put` on a map that
/// shares its structure with another version costs one small allocation
/// (writes are buffered and folded into the shared structure in batches);
/// on a map nobody else holds it is an update in place. Build a large one
/// with `collect` (one pass, in place), not a `put` per key:
///
/// ```
/// use spectree_noun::Noun;
/// use spectree_stm::{MapKey, MapState, State};
/// let accounts: MapState = (0..100_000u64)
///     .map(|k| (MapKey(Noun::atom(k)), Noun::atom(100)))
///     .collect();
/// assert_eq!(accounts.len(), 100_000);
/// assert_eq!(accounts.get(&MapKey(Noun::atom(7))).unwrap(), Some(Noun::atom(100)));
/// ```
#[derive(Clone, Default)]
pub struct MapState {
    trie: HashTrie,
    recent: Option<Arc<Recent>>,
    /// Writes go to the buffer: the trie was shared at the last fold (so
    /// nodes below a root that is unique again may still be shared, and an
    /// update in place would copy a path per write).
    buffering: bool,
}

impl MapState {
    /// An empty map.
    pub fn new() -> MapState {
        MapState::default()
    }

    /// Number of keys. O(1) when no writes are buffered, else a few
    /// lookups per buffered write.
    pub fn len(&self) -> usize {
        let Some(recent) = &self.recent else {
            return self.trie.len();
        };
        let mut seen: Vec<&Recent> = Vec::new();
        let mut added = 0;
        for r in recent.iter() {
            if seen.iter().any(|s| s.hash == r.hash && s.key == r.key) {
                continue;
            }
            seen.push(r);
            if self.trie.get_hashed(r.hash, &r.key).is_none() {
                added += 1;
            }
        }
        self.trie.len() + added
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The pairs, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&MapKey, &Noun)> + '_ {
        // The newest write of each buffered key, then the trie's pairs
        // that no buffered write shadows.
        let mut buffered: Vec<&Recent> = Vec::new();
        for r in self.recent.iter().flat_map(|r| r.iter()) {
            if !buffered.iter().any(|s| s.hash == r.hash && s.key == r.key) {
                buffered.push(r);
            }
        }
        let shadowed = buffered.clone();
        buffered
            .into_iter()
            .map(|r| (&r.key, &r.value))
            .chain(self.trie.iter().filter(move |(k, _)| {
                shadowed.is_empty() || {
                    let h = k.0.fingerprint();
                    !shadowed.iter().any(|s| s.hash == h && s.key == **k)
                }
            }))
    }

    fn lookup(&self, key: &MapKey) -> Option<&Noun> {
        let hash = key.0.fingerprint();
        if let Some(recent) = &self.recent {
            if recent.may_hold(hash) {
                if let Some(r) = recent.iter().find(|r| r.hash == hash && r.key == *key) {
                    return Some(&r.value);
                }
            }
        }
        self.trie.get_hashed(hash, key)
    }

    /// Apply the buffered writes to the trie, oldest first.
    fn fold(&mut self) {
        let Some(recent) = self.recent.take() else {
            return;
        };
        self.buffering = !self.trie.root_is_unique();
        let mut writes: Vec<&Recent> = recent.iter().collect();
        writes.reverse();
        for r in writes {
            self.trie
                .insert_hashed(r.hash, r.key.clone(), r.value.clone());
        }
    }

    fn set(&mut self, key: &MapKey, value: Noun) {
        let hash = key.0.fingerprint();
        if !self.buffering && self.recent.is_none() && self.trie.root_is_unique() {
            self.trie.insert_hashed(hash, key.clone(), value);
            return;
        }
        let prev = self.recent.take();
        let (count, mut filter) = match &prev {
            Some(p) => (p.count + 1, p.filter),
            None => (1, [0; FILTER_WORDS]),
        };
        for (w, b) in filter_bits(hash) {
            filter[w] |= b;
        }
        self.recent = Some(Arc::new(Recent {
            hash,
            key: key.clone(),
            value,
            prev,
            count,
            filter,
        }));
        if count >= FOLD {
            self.fold();
        }
    }
}

impl PartialEq for MapState {
    fn eq(&self, other: &MapState) -> bool {
        if self.recent.is_none() && other.recent.is_none() {
            return self.trie == other.trie;
        }
        let (mut a, mut b) = (self.clone(), other.clone());
        a.fold();
        b.fold();
        a.trie == b.trie
    }
}

impl std::fmt::Debug for MapState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl State for MapState {
    type Key = MapKey;

    fn get(&self, key: &MapKey) -> Result<Option<Noun>, StateError> {
        Ok(self.lookup(key).cloned())
    }

    fn put(&self, key: &MapKey, value: Noun) -> Result<Self, StateError> {
        let mut next = self.clone();
        next.set(key, value);
        Ok(next)
    }

    fn put_mut(&mut self, key: &MapKey, value: Noun) -> Result<(), StateError> {
        self.set(key, value);
        Ok(())
    }

    /// O(keys): a sum over every pair.
    fn mug(&self) -> u32 {
        // Order-independent: sum of the mugs of the [key value] pairs.
        let sum = self.iter().fold(0u64, |acc, (k, v)| {
            acc.wrapping_add(u64::from(Noun::cell(k.0.clone(), v.clone()).mug()))
        });
        Noun::atom(sum).mug()
    }

    fn check_put(&self, _: &MapKey) -> Result<(), StateError> {
        Ok(())
    }
}

/// Build a map state from pairs in one pass (in place, no versions in
/// between): much cheaper than a `put` per pair.
impl FromIterator<(MapKey, Noun)> for MapState {
    fn from_iter<I: IntoIterator<Item = (MapKey, Noun)>>(pairs: I) -> Self {
        MapState {
            trie: pairs.into_iter().collect(),
            recent: None,
            buffering: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn key(k: u64) -> MapKey {
        MapKey(Noun::atom(k))
    }

    /// The filter's positions reach every word (both halves of the
    /// filter), and every position is in range.
    #[test]
    fn filter_bits_cover_the_whole_filter() {
        assert_eq!(FILTER_WORDS * 64, 1 << FILTER_INDEX_BITS);
        let mut seen = [0u64; FILTER_WORDS];
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            for (w, b) in filter_bits(x) {
                seen[w] |= b;
            }
        }
        assert!(seen.iter().all(|&w| w == u64::MAX), "{seen:x?}");
    }

    /// Versions made by `put` (buffered, folded every [`FOLD`] writes) and
    /// by `put_mut` on a shared and an unshared map all agree with a std
    /// map, and old versions keep their contents.
    #[test]
    fn versions_agree_with_a_std_map() {
        let base: MapState = (0..500u64).map(|k| (key(k), Noun::atom(k))).collect();
        let mut model: HashMap<u64, u64> = (0..500).map(|k| (k, k)).collect();
        let mut cur = base.clone();
        let mut versions = vec![(cur.clone(), model.clone())];
        let mut x = 3u64;
        for i in 0..3_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let k = (x >> 33) % 700;
            if i % 3 == 0 {
                cur = cur.put(&key(k), Noun::atom(i)).unwrap();
            } else {
                cur.put_mut(&key(k), Noun::atom(i)).unwrap();
            }
            model.insert(k, i);
            if i % 97 == 0 {
                versions.push((cur.clone(), model.clone()));
            }
        }
        versions.push((cur, model));
        for (v, m) in &versions {
            assert_eq!(v.len(), m.len());
            assert_eq!(v.iter().count(), m.len());
            for (k, val) in m {
                assert_eq!(v.get(&key(*k)).unwrap(), Some(Noun::atom(*val)));
            }
            assert_eq!(v.get(&key(10_000)).unwrap(), None);
            let rebuilt: MapState = m.iter().map(|(k, v)| (key(*k), Noun::atom(*v))).collect();
            assert_eq!(*v, rebuilt);
            assert_eq!(v.mug(), rebuilt.mug());
        }
        assert_eq!(base.len(), 500);
        assert_eq!(base.get(&key(3)).unwrap(), Some(Noun::atom(3)));
    }

    /// Buffered writes of one key: the newest wins everywhere.
    #[test]
    fn the_newest_buffered_write_wins() {
        let base: MapState = [(key(1), Noun::atom(1))].into_iter().collect();
        let mut m = base.clone(); // shared: writes are buffered
        for v in 2..10 {
            m.put_mut(&key(1), Noun::atom(v)).unwrap();
        }
        m.put_mut(&key(2), Noun::atom(20)).unwrap();
        assert!(m.recent.is_some());
        assert_eq!(m.get(&key(1)).unwrap(), Some(Noun::atom(9)));
        assert_eq!(m.len(), 2);
        let pairs: HashMap<_, _> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        assert_eq!(pairs.len(), 2);
        assert_eq!(pairs[&key(1)], Noun::atom(9));
        assert_ne!(m, base);
        assert_eq!(base.get(&key(1)).unwrap(), Some(Noun::atom(1)));
    }
}
