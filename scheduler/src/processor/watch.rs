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

use crate::sync::{AtomicU64, AtomicUsize, Ordering::SeqCst};

use spectree_noun::nock::CancelToken;
use spectree_stm::ReadWatch;

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
    reads: Box<[AtomicU64]>,
    /// Regions written by commits the snapshot does not include.
    dirty: Box<[AtomicU64]>,
}

fn bitset(regions: usize) -> Box<[AtomicU64]> {
    (0..regions.div_ceil(64))
        .map(|_| AtomicU64::new(0))
        .collect()
}

impl Watch {
    pub fn new(regions: usize) -> Self {
        Watch {
            snapshot: AtomicUsize::new(usize::MAX),
            cancel: CancelToken::new(),
            reads: bitset(regions),
            dirty: bitset(regions),
        }
    }

    /// Prepare for an execution against version `snapshot`. A commit racing
    /// with the reset may leave a stale mark or miss one: a hint either
    /// way, which validation makes harmless.
    pub fn reset(&self, snapshot: usize) {
        self.snapshot.store(usize::MAX, SeqCst);
        for w in self.reads.iter().chain(self.dirty.iter()) {
            if w.load(SeqCst) != 0 {
                w.store(0, SeqCst);
            }
        }
        self.cancel.reset();
        self.snapshot.store(snapshot, SeqCst);
    }

    /// Whether a commit of event `k` is newer than the snapshot.
    pub fn predates(&self, k: usize) -> bool {
        self.snapshot.load(SeqCst) <= k
    }

    /// A commit the snapshot does not include wrote in `region`.
    pub fn written(&self, region: usize) {
        let (w, b) = (region / 64, 1u64 << (region % 64));
        self.dirty[w].fetch_or(b, SeqCst);
        if self.reads[w].load(SeqCst) & b != 0 {
            self.cancel.cancel();
        }
    }
}

impl ReadWatch for Watch {
    fn read_region(&self, region: usize) {
        let (w, b) = (region / 64, 1u64 << (region % 64));
        self.reads[w].fetch_or(b, SeqCst);
        if self.dirty[w].load(SeqCst) & b != 0 {
            self.cancel.cancel();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_write_meeting_a_read_cancels_in_either_order() {
        let w = Watch::new(130);
        w.reset(0);
        w.read_region(129);
        w.written(3);
        assert!(!w.cancel.is_cancelled());
        w.written(129);
        assert!(w.cancel.is_cancelled());

        w.reset(3);
        assert!(!w.cancel.is_cancelled());
        assert!(w.predates(3) && !w.predates(2));
        w.written(64);
        assert!(!w.cancel.is_cancelled());
        w.read_region(64);
        assert!(w.cancel.is_cancelled());
    }
}
