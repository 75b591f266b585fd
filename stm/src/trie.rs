//! The persistent hash trie behind [`MapState`](crate::MapState).
//!
//! Invariant: a key lives at the one place its 64-bit fingerprint selects
//! (six bits per level, from the low bits up), so lookups need no hashing
//! beyond the fingerprint nouns already cache, and the trie's shape depends
//! only on its keys. Nodes are shared between versions; a write copies only
//! the nodes on its key's path that another version also holds, and edits
//! the rest in place (so the only owner of a version updates it without
//! copying).
//!
//! Why not `imbl`'s hash map: its nodes are fixed 32-slot arrays, so every
//! copied node moves about 1.3 KB and touches 32 entries; at 100,000 keys
//! a persistent update cost about 2 µs, an in-place one 450 ns and a
//! lookup 230 ns (`docs/decisions.md`). Here a node is one allocation
//! holding only its occupied slots, its bitmap kept in the parent; 64
//! positions per node keep a 100,000-key trie three levels deep, which is
//! what a lookup pays for (a cache miss per level).

use std::fmt;
use std::sync::Arc;

use spectree_noun::Noun;

use crate::key::MapKey;

/// Bits of the fingerprint consumed per level.
const BITS: u32 = 6;
/// One bit per position of a node.
type Bitmap = u64;
const MASK: u64 = (1 << BITS) - 1;

/// One occupied position of a node.
#[derive(Clone)]
enum Slot {
    /// One key, with its fingerprint.
    Leaf { hash: u64, key: MapKey, value: Noun },
    /// Keys that share this position's bits so far.
    Branch(Node),
    /// Distinct keys with the same whole fingerprint (below the last level;
    /// fingerprints are keyed per process, so inputs cannot aim for this).
    Collision(Arc<[(MapKey, Noun)]>),
}

/// A node: which of its 64 positions are occupied, and their slots in
/// position order.
#[derive(Clone)]
struct Node {
    bitmap: Bitmap,
    slots: Arc<[Slot]>,
}

impl Default for Node {
    fn default() -> Node {
        Node {
            bitmap: 0,
            slots: Arc::from(Vec::new()),
        }
    }
}

/// Where `hash` falls in a node at `shift`: its bit and its index among the
/// occupied slots.
#[inline]
fn locate(bitmap: Bitmap, hash: u64, shift: u32) -> (Bitmap, usize) {
    let bit: Bitmap = 1 << ((hash >> shift) & MASK);
    (bit, (bitmap & (bit - 1)).count_ones() as usize)
}

/// A slot holding two distinct keys, for a node at `shift`.
fn pair(shift: u32, a: (u64, MapKey, Noun), b: (u64, MapKey, Noun)) -> Slot {
    if shift >= u64::BITS {
        return Slot::Collision(Arc::from(vec![(a.1, a.2), (b.1, b.2)]));
    }
    let (ia, ib) = ((a.0 >> shift) & MASK, (b.0 >> shift) & MASK);
    let leaf = |(hash, key, value)| Slot::Leaf { hash, key, value };
    let node = if ia == ib {
        Node {
            bitmap: 1 << ia,
            slots: Arc::from(vec![pair(shift + BITS, a, b)]),
        }
    } else {
        let slots = if ia < ib {
            vec![leaf(a), leaf(b)]
        } else {
            vec![leaf(b), leaf(a)]
        };
        Node {
            bitmap: (1 << ia) | (1 << ib),
            slots: Arc::from(slots),
        }
    };
    Slot::Branch(node)
}

impl Node {
    fn get(&self, hash: u64, key: &MapKey) -> Option<&Noun> {
        let mut node = self;
        let mut shift = 0;
        loop {
            let (bit, at) = locate(node.bitmap, hash, shift);
            if node.bitmap & bit == 0 {
                return None;
            }
            match &node.slots[at] {
                Slot::Leaf {
                    hash: h,
                    key: k,
                    value,
                } => {
                    return (*h == hash && k == key).then_some(value);
                }
                Slot::Branch(next) => {
                    node = next;
                    shift += BITS;
                }
                Slot::Collision(pairs) => {
                    return pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v);
                }
            }
        }
    }

    /// Sets `key` to `value`; whether the key is new.
    fn insert(&mut self, hash: u64, key: MapKey, value: Noun, shift: u32) -> bool {
        let (bit, at) = locate(self.bitmap, hash, shift);
        if self.bitmap & bit == 0 {
            let mut slots = Vec::with_capacity(self.slots.len() + 1);
            slots.extend_from_slice(&self.slots[..at]);
            slots.push(Slot::Leaf { hash, key, value });
            slots.extend_from_slice(&self.slots[at..]);
            self.slots = Arc::from(slots);
            self.bitmap |= bit;
            return true;
        }
        let slot = &mut Arc::make_mut(&mut self.slots)[at];
        match slot {
            Slot::Leaf {
                hash: h,
                key: k,
                value: v,
            } if *h == hash && *k == key => {
                *v = value;
                false
            }
            Slot::Leaf { .. } => {
                let Slot::Leaf {
                    hash: h,
                    key: k,
                    value: v,
                } = std::mem::replace(slot, Slot::Branch(Node::default()))
                else {
                    unreachable!("matched a leaf above")
                };
                *slot = pair(shift + BITS, (h, k, v), (hash, key, value));
                true
            }
            Slot::Branch(next) => next.insert(hash, key, value, shift + BITS),
            Slot::Collision(pairs) => {
                if let Some(pos) = pairs.iter().position(|(k, _)| *k == key) {
                    Arc::make_mut(pairs)[pos].1 = value;
                    false
                } else {
                    let mut more = pairs.to_vec();
                    more.push((key, value));
                    *pairs = Arc::from(more);
                    true
                }
            }
        }
    }
}

/// A persistent map from [`MapKey`]s to nouns. `clone` is O(1).
#[derive(Clone, Default)]
pub(crate) struct HashTrie {
    root: Node,
    len: usize,
}

impl HashTrie {
    /// The value at `key`.
    pub(crate) fn get(&self, key: &MapKey) -> Option<&Noun> {
        self.root.get(key.0.fingerprint(), key)
    }

    /// The value at `key`, whose fingerprint is `hash`.
    pub(crate) fn get_hashed(&self, hash: u64, key: &MapKey) -> Option<&Noun> {
        self.root.get(hash, key)
    }

    /// Sets `key` to `value`, copying only the shared nodes on its path.
    pub(crate) fn insert(&mut self, key: MapKey, value: Noun) {
        let hash = key.0.fingerprint();
        self.insert_hashed(hash, key, value);
    }

    /// [`insert`](Self::insert) of a key whose fingerprint is `hash`.
    pub(crate) fn insert_hashed(&mut self, hash: u64, key: MapKey, value: Noun) {
        if self.root.insert(hash, key, value, 0) {
            self.len += 1;
        }
    }

    /// Whether no other version shares the root (so an insert copies
    /// little or nothing).
    pub(crate) fn root_is_unique(&mut self) -> bool {
        Arc::get_mut(&mut self.root.slots).is_some()
    }

    /// Whether both are the same version.
    pub(crate) fn ptr_eq(&self, other: &HashTrie) -> bool {
        Arc::ptr_eq(&self.root.slots, &other.root.slots)
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The pairs, in fingerprint order (the same for equal maps in one
    /// process).
    pub(crate) fn iter(&self) -> Iter<'_> {
        Iter {
            stack: vec![self.root.slots.iter()],
            collision: [].iter(),
        }
    }
}

impl PartialEq for HashTrie {
    fn eq(&self, other: &HashTrie) -> bool {
        self.len == other.len
            && (self.ptr_eq(other) || self.iter().all(|(k, v)| other.get(k) == Some(v)))
    }
}

impl fmt::Debug for HashTrie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

impl FromIterator<(MapKey, Noun)> for HashTrie {
    fn from_iter<I: IntoIterator<Item = (MapKey, Noun)>>(pairs: I) -> HashTrie {
        let mut trie = HashTrie::default();
        for (k, v) in pairs {
            trie.insert(k, v);
        }
        trie
    }
}

/// The pairs of a [`HashTrie`], depth first.
pub(crate) struct Iter<'a> {
    /// At most one entry per level (11) plus the root.
    stack: Vec<std::slice::Iter<'a, Slot>>,
    collision: std::slice::Iter<'a, (MapKey, Noun)>,
}

impl<'a> Iterator for Iter<'a> {
    type Item = (&'a MapKey, &'a Noun);

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some((k, v)) = self.collision.next() {
                return Some((k, v));
            }
            let top = self.stack.last_mut()?;
            match top.next() {
                None => {
                    self.stack.pop();
                }
                Some(Slot::Leaf { key, value, .. }) => return Some((key, value)),
                Some(Slot::Branch(node)) => self.stack.push(node.slots.iter()),
                Some(Slot::Collision(pairs)) => self.collision = pairs.iter(),
            }
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

    /// Agrees with a std map under inserts and overwrites, and versions
    /// stay as they were.
    #[test]
    fn matches_a_std_map_and_versions_are_independent() {
        let mut trie = HashTrie::default();
        let mut model = HashMap::new();
        let mut versions = Vec::new();
        let mut x = 7u64;
        for i in 0..20_000u64 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let k = (x >> 33) % 5_000;
            trie.insert(key(k), Noun::atom(i));
            model.insert(k, i);
            if i % 2_000 == 0 {
                versions.push((trie.clone(), model.clone()));
            }
        }
        assert_eq!(trie.len(), model.len());
        for (k, v) in &model {
            assert_eq!(trie.get(&key(*k)), Some(&Noun::atom(*v)));
        }
        assert_eq!(trie.get(&key(5_001)), None);
        assert_eq!(trie.iter().count(), model.len());
        for (t, m) in versions {
            assert_eq!(t.len(), m.len());
            assert!(m
                .iter()
                .all(|(k, v)| t.get(&key(*k)) == Some(&Noun::atom(*v))));
        }
    }

    /// Keys whose whole fingerprints are equal still work: forced through
    /// `pair` at the bottom.
    #[test]
    fn full_fingerprint_collisions_are_kept_apart() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut node = Node::default();
        node.insert(42, a.clone(), Noun::atom(10), 0);
        node.insert(42, b.clone(), Noun::atom(20), 0);
        node.insert(42, c.clone(), Noun::atom(30), 0);
        node.insert(42, b.clone(), Noun::atom(21), 0);
        assert_eq!(node.get(42, &a), Some(&Noun::atom(10)));
        assert_eq!(node.get(42, &b), Some(&Noun::atom(21)));
        assert_eq!(node.get(42, &c), Some(&Noun::atom(30)));
        assert_eq!(node.get(42, &key(4)), None);
        assert_eq!(node.get(43, &a), None);
        let trie = HashTrie { root: node, len: 3 };
        assert_eq!(trie.iter().count(), 3);
    }

    /// Equality ignores insertion order; cell keys work.
    #[test]
    fn equality_and_cell_keys() {
        let pairs: Vec<_> = (0..300u64)
            .map(|k| {
                (
                    MapKey(Noun::cell(Noun::atom(k), Noun::atom(1))),
                    Noun::atom(k),
                )
            })
            .collect();
        let a: HashTrie = pairs.iter().cloned().collect();
        let b: HashTrie = pairs.iter().rev().cloned().collect();
        assert_eq!(a, b);
        let mut c = b.clone();
        c.insert(pairs[0].0.clone(), Noun::atom(999));
        assert_ne!(a, c);
        assert_eq!(a, b);
    }
}
