//! State backends: what a state is, how it is read and written by key, and
//! how transactions over it record their accesses.
//!
//! Invariant: a [`Tx`] sees its own writes (read-your-own-writes) and
//! records every read and write it makes, so that the [`AccessSet`] it
//! produces covers everything the event's outcome depends on, provided the
//! event is a deterministic function of what it reads through the `Tx`.

use std::fmt::Debug;

use spectree_noun::{edit, slot, Axis, AxisError, Noun};
use thiserror::Error;

use crate::access::AccessSet;
use crate::key::{Key, MapKey};
use crate::region::Regions;

/// Why a state access failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StateError {
    /// A noun state has nothing at this axis.
    #[error(transparent)]
    Axis(#[from] AxisError),
}

/// Writes with their values, in key order.
pub type Writes<K> = Vec<(K, Noun)>;

/// A persistent state addressed by keys. `clone` is O(1) and versions share
/// structure, so a snapshot costs nothing.
pub trait State: Clone + Debug + PartialEq + Send + Sync + 'static {
    /// How the state is addressed.
    type Key: Key;

    /// The value at `key` (`None`: nothing there, where the backend allows
    /// absence).
    ///
    /// # Errors
    /// [`StateError`] where the key cannot exist (a path into an atom).
    fn get(&self, key: &Self::Key) -> Result<Option<Noun>, StateError>;

    /// A new version with `value` at `key`.
    ///
    /// # Errors
    /// [`StateError`] where the key cannot exist.
    fn put(&self, key: &Self::Key, value: Noun) -> Result<Self, StateError>;

    /// A digest of the whole state, equal for equal states (Urbit's mug).
    fn mug(&self) -> u32;
}

/// A noun state addressed by axes: the primary backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NounState(pub Noun);

impl State for NounState {
    type Key = Axis;

    fn get(&self, key: &Axis) -> Result<Option<Noun>, StateError> {
        Ok(Some(slot(key, &self.0)?.clone()))
    }

    fn put(&self, key: &Axis, value: Noun) -> Result<Self, StateError> {
        Ok(NounState(edit(key, value, &self.0)?))
    }

    fn mug(&self) -> u32 {
        self.0.mug()
    }
}

/// A persistent map from nouns to nouns (`imbl`), for state that is keys and
/// values; keys are spread over regions by hash ([`HashRegions`](crate::HashRegions)).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MapState(pub imbl::HashMap<MapKey, Noun>);

impl State for MapState {
    type Key = MapKey;

    fn get(&self, key: &MapKey) -> Result<Option<Noun>, StateError> {
        Ok(self.0.get(key).cloned())
    }

    fn put(&self, key: &MapKey, value: Noun) -> Result<Self, StateError> {
        Ok(MapState(self.0.update(key.clone(), value)))
    }

    fn mug(&self) -> u32 {
        // Order-independent: sum of the mugs of the [key value] pairs.
        let sum = self.0.iter().fold(0u64, |acc, (k, v)| {
            acc.wrapping_add(u64::from(Noun::cell(k.0.clone(), v.clone()).mug()))
        });
        Noun::atom(sum).mug()
    }
}

/// A transaction: a view of a snapshot that records what it reads and
/// writes. Rust events do all their state access through one.
pub struct Tx<'r, S: State> {
    current: S,
    regions: &'r dyn Regions<S::Key>,
    access: AccessSet<S::Key>,
}

impl<'r, S: State> Tx<'r, S> {
    /// A transaction over `snapshot`.
    pub fn new(snapshot: S, regions: &'r dyn Regions<S::Key>) -> Self {
        Tx {
            current: snapshot,
            regions,
            access: AccessSet::new(regions),
        }
    }

    /// Whether `key` lies inside something this transaction wrote.
    fn own(&self, key: &S::Key) -> bool {
        self.access
            .writes()
            .iter()
            .any(|w| w == key || w.encloses(key))
    }

    /// Read the value at `key`, seeing this transaction's own writes.
    ///
    /// # Errors
    /// [`StateError`] where the key cannot exist (that, too, is recorded as
    /// a read: the outcome depends on it).
    pub fn get(&mut self, key: &S::Key) -> Result<Option<Noun>, StateError> {
        if !self.own(key) {
            self.access.read(key.clone(), self.regions);
        }
        self.current.get(key)
    }

    /// Write `value` at `key`.
    ///
    /// # Errors
    /// [`StateError`] where the key cannot exist (recorded as a read).
    pub fn put(&mut self, key: &S::Key, value: Noun) -> Result<(), StateError> {
        match self.current.put(key, value) {
            Ok(next) => {
                if !self.own(key) {
                    self.access.shape(key.clone(), self.regions);
                    self.access.write(key.clone(), self.regions);
                }
                self.current = next;
                Ok(())
            }
            Err(e) => {
                self.access.read(key.clone(), self.regions);
                Err(e)
            }
        }
    }

    /// Finish: the state as this transaction left it, what it accessed, and
    /// its writes with their values, disjoint (a write inside another is
    /// part of the outer one's value).
    pub fn finish(mut self) -> (S, AccessSet<S::Key>, Writes<S::Key>) {
        self.access.drop_enclosed_writes();
        self.access.normalize();
        let writes = self
            .access
            .writes()
            .iter()
            .map(|k| {
                let v = self.current.get(k).ok().flatten();
                (k.clone(), v.expect("a written key exists"))
            })
            .collect();
        (self.current, self.access, writes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HashRegions, RegionMap};

    fn ax(n: u64) -> Axis {
        Axis::new(n).unwrap()
    }

    #[test]
    fn tx_reads_its_own_writes_and_records_the_rest() {
        let regions = RegionMap::depth(1).unwrap();
        let s = NounState("[[1 2] 3 4]".parse().unwrap());
        let mut tx = Tx::new(s, &regions);
        assert_eq!(tx.get(&ax(6)).unwrap(), Some(Noun::atom(3)));
        tx.put(&ax(7), Noun::atom(9)).unwrap();
        assert_eq!(tx.get(&ax(7)).unwrap(), Some(Noun::atom(9)));
        tx.put(&ax(3), "[5 6]".parse().unwrap()).unwrap();
        tx.put(&ax(7), Noun::atom(8)).unwrap(); // inside the write at 3
        assert!(tx.get(&ax(12)).is_err());
        let (end, access, writes) = tx.finish();
        assert_eq!(end.0.to_string(), "[[1 2] 5 8]");
        // 12 lies inside our own write at 3: its failure reads nothing shared.
        assert_eq!(access.reads(), &[ax(6)]);
        // The first write at 7 lies inside the later write at 3.
        assert_eq!(access.writes(), &[ax(3)]);
        assert_eq!(writes, vec![(ax(3), "[5 8]".parse().unwrap())]);
    }

    #[test]
    fn a_write_above_earlier_writes_replaces_them() {
        let regions = RegionMap::depth(1).unwrap();
        let mut tx = Tx::new(NounState("[[1 2] 3 4]".parse().unwrap()), &regions);
        tx.put(&ax(7), Noun::atom(9)).unwrap();
        tx.put(&ax(3), Noun::atom(0)).unwrap();
        let (end, _, writes) = tx.finish();
        assert_eq!(end.0.to_string(), "[[1 2] 0]");
        assert_eq!(writes, vec![(ax(3), Noun::atom(0))]);
    }

    #[test]
    fn map_state_keys_are_independent() {
        let regions = HashRegions(8);
        let k = |n| MapKey(Noun::atom(n));
        let s = MapState::default().put(&k(1), Noun::atom(10)).unwrap();
        let mut tx = Tx::new(s, &regions);
        assert_eq!(tx.get(&k(1)).unwrap(), Some(Noun::atom(10)));
        assert_eq!(tx.get(&k(2)).unwrap(), None);
        tx.put(&k(2), Noun::atom(20)).unwrap();
        let (end, access, writes) = tx.finish();
        assert_eq!(end.get(&k(2)).unwrap(), Some(Noun::atom(20)));
        assert_eq!(access.reads().len(), 2);
        assert_eq!(writes, vec![(k(2), Noun::atom(20))]);
    }
}
