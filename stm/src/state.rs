//! State backends: what a state is, how it is read and written by key, and
//! how transactions over it record their accesses.
//!
//! Invariant: a [`Tx`] sees its own writes (read-your-own-writes) and
//! records every read and write it makes, so that the [`AccessSet`] it
//! produces covers everything the event's outcome depends on, provided the
//! event is a deterministic function of what it reads through the `Tx`.

use std::fmt::Debug;

use spectree_noun::nock::CancelToken;
use spectree_noun::{edit, edit_mut, slot, Axis, AxisError, Noun};
use thiserror::Error;

use crate::access::AccessSet;
use crate::key::Key;
use crate::region::Regions;

/// Why a state access failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StateError {
    /// A noun state has nothing at this axis.
    #[error(transparent)]
    Axis(#[from] AxisError),
    /// The transaction was cancelled (its result will be discarded).
    #[error("transaction aborted: its snapshot is out of date")]
    Aborted,
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

    /// This state with `value` at `key`, changed in place where nobody
    /// else holds the parts it changes (so a state only one owner holds is
    /// updated without copying). Unchanged on an error.
    ///
    /// # Errors
    /// Exactly the error [`put`](Self::put) would return.
    fn put_mut(&mut self, key: &Self::Key, value: Noun) -> Result<(), StateError> {
        *self = self.put(key, value)?;
        Ok(())
    }

    /// A digest of the whole state, equal for equal states (Urbit's mug).
    fn mug(&self) -> u32;

    /// Whether [`put`](Self::put) at `key` would succeed, without building
    /// the new version.
    ///
    /// # Errors
    /// Exactly the error `put` would return.
    fn check_put(&self, key: &Self::Key) -> Result<(), StateError> {
        self.put(key, Noun::ZERO).map(|_| ())
    }
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

    fn put_mut(&mut self, key: &Axis, value: Noun) -> Result<(), StateError> {
        Ok(edit_mut(key, value, &mut self.0)?)
    }

    fn mug(&self) -> u32 {
        self.0.mug()
    }

    fn check_put(&self, key: &Axis) -> Result<(), StateError> {
        // An edit succeeds exactly when the parent of `key` is a cell.
        match key.parent() {
            None => Ok(()),
            Some(p) => match slot(&p, &self.0) {
                Ok(Noun::Cell(_)) => Ok(()),
                _ => self.put(key, Noun::ZERO).map(|_| ()),
            },
        }
    }
}

/// A transaction: a view of a snapshot that records what it reads and
/// writes. Rust events do all their state access through one.
///
/// An event sees only [`get`](Self::get), [`put`](Self::put) and
/// [`aborted`](Self::aborted): it cannot see whether it is tracked, nor
/// reach what is recorded. Neither of these compiles:
///
/// ```compile_fail
/// fn peek(tx: &mut spectree_stm::Tx<'_, spectree_stm::NounState>) -> bool {
///     tx.access_mut().is_some()
/// }
/// ```
///
/// ```compile_fail
/// fn forget(tx: &mut spectree_stm::Tx<'_, spectree_stm::NounState>) {
///     let _ = tx.finish_writes();
/// }
/// ```
pub struct Tx<'a, S: State> {
    base: Snapshot<'a, S>,
    /// The base as it was, kept when the overlay is first applied to it
    /// before the end (a failing event must leave the state unchanged).
    original: Option<S>,
    /// Writes are deferred: the transaction's state is `base` with
    /// `overlay` applied. Keys in the overlay are pairwise disjoint (a write
    /// overlapping one first applies the overlay), so a read at an exact
    /// key is answered from it without building a new version. A tracked
    /// execution thus never edits the shared state (the commit path
    /// grafts), and a direct one edits its own state in place only when it
    /// succeeds.
    overlay: Overlay<S::Key>,
    regions: &'a dyn Regions<S::Key>,
    /// `None`: an untracked transaction (nothing recorded).
    access: Option<AccessSet<S::Key>>,
    cancel: Option<CancelToken>,
}

/// The state an execution runs against: borrowed (a shared snapshot, left
/// as it is) or owned (consumed: a successful direct execution edits it in
/// place). Both `&S` and `S` convert into one.
#[derive(Debug)]
pub enum Snapshot<'a, S> {
    /// A snapshot others may hold too.
    Shared(&'a S),
    /// A state this execution owns.
    Owned(S),
}

impl<'a, S> From<&'a S> for Snapshot<'a, S> {
    fn from(s: &'a S) -> Self {
        Snapshot::Shared(s)
    }
}

impl<S: State> From<S> for Snapshot<'_, S> {
    fn from(s: S) -> Self {
        Snapshot::Owned(s)
    }
}

impl<S: State> Snapshot<'_, S> {
    /// The state.
    pub fn get(&self) -> &S {
        match self {
            Snapshot::Shared(s) => s,
            Snapshot::Owned(s) => s,
        }
    }

    /// The state, owned (cloned if shared: O(1) for persistent states).
    pub fn into_owned(self) -> S {
        match self {
            Snapshot::Shared(s) => s.clone(),
            Snapshot::Owned(s) => s,
        }
    }

    fn make_mut(&mut self) -> &mut S {
        if let Snapshot::Shared(s) = self {
            *self = Snapshot::Owned(s.clone());
        }
        match self {
            Snapshot::Owned(s) => s,
            Snapshot::Shared(_) => unreachable!("made owned above"),
        }
    }
}

/// Entries past which the overlay keeps an index by key.
const INDEX_AFTER: usize = 8;

/// Deferred writes, in order, with an index by key once there are many.
#[derive(Debug)]
struct Overlay<K: Key> {
    entries: Vec<(K, Noun)>,
    index: Option<std::collections::HashMap<K, usize>>,
}

impl<K: Key> Overlay<K> {
    fn new() -> Self {
        Overlay {
            entries: Vec::new(),
            index: None,
        }
    }

    fn position(&self, key: &K) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(key).copied(),
            None => self.entries.iter().position(|(w, _)| w == key),
        }
    }

    fn get(&self, key: &K) -> Option<&Noun> {
        self.position(key).map(|i| &self.entries[i].1)
    }

    fn set(&mut self, key: &K, value: Noun) {
        match self.position(key) {
            Some(i) => self.entries[i].1 = value,
            None => {
                self.entries.push((key.clone(), value));
                match &mut self.index {
                    Some(index) => {
                        index.insert(key.clone(), self.entries.len() - 1);
                    }
                    None if self.entries.len() > INDEX_AFTER => {
                        self.index = Some(
                            self.entries
                                .iter()
                                .enumerate()
                                .map(|(i, (k, _))| (k.clone(), i))
                                .collect(),
                        );
                    }
                    None => {}
                }
            }
        }
    }

    /// Whether an entry overlaps `key` without being it (never, for
    /// disjoint keys).
    fn overlaps_other(&self, key: &K) -> bool {
        !K::DISJOINT
            && self
                .entries
                .iter()
                .any(|(w, _)| w != key && w.overlaps(key))
    }

    fn take(&mut self) -> Vec<(K, Noun)> {
        self.index = None;
        std::mem::take(&mut self.entries)
    }

    fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Shows nothing an event could use to tell a tracked run from a direct
/// one.
impl<S: State> std::fmt::Debug for Tx<'_, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tx").finish_non_exhaustive()
    }
}

impl<'a, S: State> Tx<'a, S> {
    /// A transaction over `snapshot` that records what it reads and writes.
    pub(crate) fn new(snapshot: Snapshot<'a, S>, regions: &'a dyn Regions<S::Key>) -> Self {
        Tx {
            base: snapshot,
            original: None,
            overlay: Overlay::new(),
            regions,
            access: Some(AccessSet::new(regions)),
            cancel: None,
        }
    }

    /// A transaction that records nothing, for an execution that commits
    /// directly (no other execution is validated against it).
    pub(crate) fn untracked(snapshot: Snapshot<'a, S>, regions: &'a dyn Regions<S::Key>) -> Self {
        Tx {
            base: snapshot,
            original: None,
            overlay: Overlay::new(),
            regions,
            access: None,
            cancel: None,
        }
    }

    /// Check `cancel` at every access (the transaction's safe points): once
    /// it is set, [`get`](Self::get) and [`put`](Self::put) fail with
    /// [`StateError::Aborted`].
    pub(crate) fn with_cancel(mut self, cancel: Option<CancelToken>) -> Self {
        self.cancel = cancel;
        self
    }

    /// The access set being recorded (`None` when untracked).
    pub(crate) fn access_mut(&mut self) -> Option<&mut AccessSet<S::Key>> {
        self.access.as_mut()
    }

    /// Whether this execution has been cancelled: its result will be
    /// discarded (a write it did not see has committed), so it may stop at
    /// once, with any error (`Err(StateError::Aborted.into())`). Every
    /// [`get`](Self::get) and [`put`](Self::put) checks this too; an event
    /// that computes for long between accesses should poll it. It costs a
    /// relaxed atomic load, and is `false` in serial execution.
    #[inline]
    pub fn aborted(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.is_cancelled())
    }

    fn check_aborted(&self) -> Result<(), StateError> {
        if self.aborted() {
            Err(StateError::Aborted)
        } else {
            Ok(())
        }
    }

    /// Apply the overlay to the base (in place where the base is owned and
    /// unshared). Before the end of the transaction (`keep`), the base as it
    /// was is kept first, for a failure to return.
    fn apply_overlay(&mut self, keep: bool) -> Result<(), StateError> {
        if self.overlay.is_empty() {
            return Ok(());
        }
        if keep && self.original.is_none() {
            self.original = Some(self.base.get().clone());
        }
        let base = self.base.make_mut();
        for (k, v) in self.overlay.take() {
            base.put_mut(&k, v)?;
        }
        Ok(())
    }

    /// Apply the overlay if one of its keys overlaps `key` without being
    /// it.
    fn settle(&mut self, key: &S::Key) -> Result<(), StateError> {
        if self.overlay.overlaps_other(key) {
            self.apply_overlay(true)?;
        }
        Ok(())
    }

    /// Whether this transaction has written `key` or something enclosing it
    /// (then reading it reads nothing shared).
    fn own(&self, access: &AccessSet<S::Key>, key: &S::Key) -> bool {
        if S::Key::DISJOINT {
            // Every write is in the overlay (disjoint keys never settle it).
            return self.overlay.position(key).is_some();
        }
        access.writes().iter().any(|w| w == key || w.encloses(key))
    }

    /// Read the value at `key`, seeing this transaction's own writes.
    ///
    /// # Errors
    /// [`StateError`] where the key cannot exist (that, too, is recorded as
    /// a read: the outcome depends on it).
    pub fn get(&mut self, key: &S::Key) -> Result<Option<Noun>, StateError> {
        self.check_aborted()?;
        if let Some(access) = &self.access {
            if !self.own(access, key) {
                let regions = self.regions;
                self.access
                    .as_mut()
                    .expect("tracked")
                    .read(key.clone(), regions);
            }
        }
        self.settle(key)?;
        if let Some(v) = self.overlay.get(key) {
            return Ok(Some(v.clone()));
        }
        self.base.get().get(key)
    }

    /// Write `value` at `key`.
    ///
    /// # Errors
    /// [`StateError`] where the key cannot exist (recorded as a read).
    pub fn put(&mut self, key: &S::Key, value: Noun) -> Result<(), StateError> {
        self.check_aborted()?;
        let own = match &self.access {
            Some(access) => self.own(access, key),
            None => true,
        };
        self.settle(key)?;
        let check = self.base.get().check_put(key);
        if let Some(access) = self.access.as_mut() {
            match &check {
                Ok(()) if !own => {
                    access.shape(key.clone(), self.regions);
                    access.write(key.clone(), self.regions);
                }
                Ok(()) => {}
                Err(_) => access.read(key.clone(), self.regions),
            }
        }
        check?;
        self.overlay.set(key, value);
        Ok(())
    }

    /// Finish: the state as this transaction left it, what it accessed, and
    /// its writes with their values, disjoint (a write inside another is
    /// part of the outer one's value).
    ///
    /// An untracked transaction returns an empty access set and no writes.
    pub(crate) fn finish(mut self) -> (S, AccessSet<S::Key>, Writes<S::Key>) {
        let (access, writes) = self.finish_writes();
        self.apply_overlay(false)
            .expect("overlay writes were checked");
        (self.base.into_owned(), access, writes)
    }

    /// Finish without building the end state: what it accessed, and its
    /// writes with their values. Cheaper than [`finish`](Self::finish)
    /// when the caller grafts the writes elsewhere.
    pub(crate) fn finish_writes(&mut self) -> (AccessSet<S::Key>, Writes<S::Key>) {
        let Some(mut access) = self.access.take() else {
            return (AccessSet::empty(), Vec::new());
        };
        access.set_watch(None);
        access.drop_enclosed_writes();
        access.normalize();
        // A written key with an overlay entry strictly inside it needs the
        // overlay applied; an exact entry is its value.
        let nested = !S::Key::DISJOINT
            && self
                .overlay
                .entries
                .iter()
                .any(|(o, _)| access.writes().iter().any(|w| w != o && w.overlaps(o)));
        if nested {
            self.apply_overlay(true)
                .expect("overlay writes were checked");
        }
        let writes = access
            .writes()
            .iter()
            .map(|k| {
                let v = match self.overlay.get(k) {
                    Some(v) => Some(v.clone()),
                    None => self.base.get().get(k).ok().flatten(),
                };
                (k.clone(), v.expect("a written key exists"))
            })
            .collect();
        (access, writes)
    }

    /// Finish, keeping only the state as this transaction left it (edited
    /// in place when owned).
    pub(crate) fn into_state(mut self) -> S {
        self.apply_overlay(false)
            .expect("overlay writes were checked");
        self.base.into_owned()
    }

    /// Give the state back as it was before the transaction (its writes
    /// discarded): for a failed execution.
    pub(crate) fn into_unchanged(self) -> S {
        match self.original {
            Some(original) => original,
            None => self.base.into_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{HashRegions, MapKey, MapState, RegionMap};

    fn ax(n: u64) -> Axis {
        Axis::new(n).unwrap()
    }

    #[test]
    fn tx_reads_its_own_writes_and_records_the_rest() {
        let regions = RegionMap::depth(1).unwrap();
        let s = NounState("[[1 2] 3 4]".parse().unwrap());
        let mut tx = Tx::new(s.into(), &regions);
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
    fn tracked_and_untracked_transactions_fail_alike() {
        let regions = RegionMap::depth(1).unwrap();
        let s = NounState("[[1 2] 3]".parse().unwrap());
        for axis in [6, 7, 13, 12] {
            let mut tracked = Tx::new(s.clone().into(), &regions);
            let mut direct = Tx::untracked(s.clone().into(), &regions);
            assert_eq!(
                tracked.put(&ax(axis), Noun::ZERO),
                direct.put(&ax(axis), Noun::ZERO),
                "put at {axis}"
            );
        }
        // After replacing 3 by an atom-free cell, 13 exists (overlay applied).
        let mut tracked = Tx::new(s.clone().into(), &regions);
        let mut direct = Tx::untracked(s.into(), &regions);
        for tx in [&mut tracked, &mut direct] {
            tx.put(&ax(3), "[4 5]".parse().unwrap()).unwrap();
            tx.put(&ax(7), Noun::atom(9)).unwrap();
            assert_eq!(tx.get(&ax(3)).unwrap(), Some("[4 9]".parse().unwrap()));
        }
        assert_eq!(tracked.into_state(), direct.into_state());
    }

    #[test]
    fn a_failing_direct_event_leaves_its_owned_state_unchanged() {
        // The second put settles the overlay onto the owned state, then
        // fails: the state given back is the one before the event.
        let regions = RegionMap::depth(1).unwrap();
        let before = NounState("[[1 2] 3 4]".parse().unwrap());
        for tracked in [false, true] {
            let owned = NounState("[[1 2] 3 4]".parse().unwrap());
            let mut tx = if tracked {
                Tx::new(owned.into(), &regions)
            } else {
                Tx::untracked(owned.into(), &regions)
            };
            tx.put(&ax(1), Noun::atom(7)).unwrap();
            assert!(tx.put(&ax(6), Noun::ZERO).is_err());
            assert_eq!(tx.into_unchanged(), before, "tracked {tracked}");
        }
    }

    #[test]
    fn a_write_above_earlier_writes_replaces_them() {
        let regions = RegionMap::depth(1).unwrap();
        let mut tx = Tx::new(NounState("[[1 2] 3 4]".parse().unwrap()).into(), &regions);
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
        let mut tx = Tx::new(s.into(), &regions);
        assert_eq!(tx.get(&k(1)).unwrap(), Some(Noun::atom(10)));
        assert_eq!(tx.get(&k(2)).unwrap(), None);
        tx.put(&k(2), Noun::atom(20)).unwrap();
        let (end, access, writes) = tx.finish();
        assert_eq!(end.get(&k(2)).unwrap(), Some(Noun::atom(20)));
        assert_eq!(access.reads().len(), 2);
        assert_eq!(writes, vec![(k(2), Noun::atom(20))]);
    }
}
