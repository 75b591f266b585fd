//! Early abort: noticing that a running speculative execution is doomed.
//!
//! Invariant (a hint, never relied on for correctness): once a write
//! committed after an execution's snapshot lands in a region the execution
//! has read, the execution's cancel token is set, by whichever of the two
//! sides acts second. Both sides publish first and check second, with
//! sequentially consistent operations, so at least one of them sees the
//! other (the store-buffering pattern). A cancelled execution stops at its
//! next safe point (the interpreter's cancellation check, or the next
//! access through its `Tx`) and is discarded. Validation at commit still
//! decides every execution that is not cancelled, exactly.
//!
//! Regions are kept as 1024-bit summaries (region `r` sets bit `r % 1024`),
//! so a watch costs the same whatever the region count; two regions that
//! share a bit can cancel an execution needlessly, never let a doomed one
//! through.

use spectree_noun::nock::CancelToken;
use spectree_stm::ReadWatch;

use crate::sync::{
    AtomicU64, AtomicUsize,
    Ordering::{Relaxed, SeqCst},
};

/// Words of a summary.
#[cfg(not(loom))]
const WORDS: usize = 16;
/// Fewer under the loom model: every word is a branch it explores.
#[cfg(loom)]
const WORDS: usize = 4;

/// A 1024-bit summary of a set of regions (256 bits cancelled about one
/// execution in eight needlessly at two threads on `kv`).
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct Summary([u64; WORDS]);

impl Summary {
    pub fn of(regions: &[u32]) -> Summary {
        let mut s = Summary::default();
        for &r in regions {
            s.add(r as usize);
        }
        s
    }

    #[inline]
    pub fn add(&mut self, region: usize) {
        let bit = region % (WORDS * 64);
        self.0[bit / 64] |= 1 << (bit % 64);
    }

    pub fn meets(&self, other: &Summary) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }
}

/// A summary updated by several threads.
pub(crate) struct AtomicSummary([AtomicU64; WORDS]);

impl AtomicSummary {
    pub fn new() -> Self {
        AtomicSummary([(); WORDS].map(|_| AtomicU64::new(0)))
    }

    /// Add `s`; whether it meets `other` afterwards.
    pub fn add_and_meets(&self, s: &Summary, other: &AtomicSummary) -> bool {
        let mut meets = false;
        for (i, &w) in s.0.iter().enumerate() {
            if w != 0 {
                self.0[i].fetch_or(w, SeqCst);
                meets |= other.0[i].load(SeqCst) & w != 0;
            }
        }
        meets
    }

    pub fn add(&self, s: &Summary) {
        for (i, &w) in s.0.iter().enumerate() {
            if w != 0 {
                self.0[i].fetch_or(w, SeqCst);
            }
        }
    }

    /// Replace the summary with `s` (ordered by whatever publishes it
    /// next: a slot's summary by its move to DONE).
    pub fn set(&self, s: &Summary) {
        for (w, &v) in self.0.iter().zip(&s.0) {
            w.store(v, Relaxed);
        }
    }

    pub fn load(&self) -> Summary {
        Summary(std::array::from_fn(|i| self.0[i].load(SeqCst)))
    }

    pub fn clear(&self) {
        for w in &self.0 {
            if w.load(SeqCst) != 0 {
                w.store(0, SeqCst);
            }
        }
    }
}

/// The shared view of the speculative execution running in one slot; each
/// slot owns one and resets it for every execution, so that the commit
/// path reaches it with atomics alone.
pub(crate) struct Watch {
    /// The state version the execution runs against (events before it are
    /// committed in that state); `usize::MAX` while being reset.
    snapshot: AtomicUsize,
    /// Set to stop the execution.
    pub cancel: CancelToken,
    /// Regions the execution has read.
    reads: AtomicSummary,
    /// Regions written by commits the snapshot does not include.
    dirty: AtomicSummary,
}

impl Watch {
    pub fn new() -> Self {
        Watch {
            snapshot: AtomicUsize::new(usize::MAX),
            cancel: CancelToken::new(),
            reads: AtomicSummary::new(),
            dirty: AtomicSummary::new(),
        }
    }

    /// Prepare for an execution against version `snapshot`. A commit racing
    /// with the reset may leave a stale mark or miss one: a hint either
    /// way, which validation makes harmless.
    pub fn reset(&self, snapshot: usize) {
        self.snapshot.store(usize::MAX, SeqCst);
        self.reads.clear();
        self.dirty.clear();
        self.cancel.reset();
        self.snapshot.store(snapshot, SeqCst);
    }

    /// Whether a commit of event `k` is newer than the snapshot.
    pub fn predates(&self, k: usize) -> bool {
        self.snapshot.load(SeqCst) <= k
    }

    /// Commits the snapshot does not include wrote in `regions`.
    pub fn written(&self, regions: &Summary) {
        if self.dirty.add_and_meets(regions, &self.reads) {
            self.cancel.cancel();
        }
    }
}

impl ReadWatch for Watch {
    fn read_region(&self, region: usize) {
        let mut s = Summary::default();
        s.add(region);
        if self.reads.add_and_meets(&s, &self.dirty) {
            self.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_meeting_a_read_cancels_in_either_order() {
        let w = Watch::new();
        w.reset(0);
        w.read_region(129);
        w.written(&Summary::of(&[3]));
        assert!(!w.cancel.is_cancelled());
        w.written(&Summary::of(&[129]));
        assert!(w.cancel.is_cancelled());

        w.reset(3);
        assert!(!w.cancel.is_cancelled());
        assert!(w.predates(3) && !w.predates(2));
        w.written(&Summary::of(&[64]));
        assert!(!w.cancel.is_cancelled());
        w.read_region(64);
        assert!(w.cancel.is_cancelled());
    }

    #[test]
    fn summaries_fold_regions() {
        let a = Summary::of(&[1, 1300]);
        assert!(a.meets(&Summary::of(&[276])), "1300 and 276 share a bit");
        assert!(!a.meets(&Summary::of(&[2])));
        assert!(Summary::default().is_empty());
    }
}
