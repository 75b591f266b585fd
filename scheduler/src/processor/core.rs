//! The shared core of one processor run: the window of slots, the commit
//! role, and the published snapshot. The protocol and the argument for its
//! invariants are in `README.md` beside this file.
//!
//! Invariants:
//! - events commit strictly in log order, each exactly once, by whoever
//!   holds the commit role (taken with `try_lock`, never waited for);
//! - a speculative result commits only if no write committed after its
//!   snapshot meets its reads or shapes (exact check); otherwise the commit
//!   role re-executes the event against the committed state;
//! - no lock is held while user code runs, except by the commit role while
//!   it executes the frontier event itself, which nothing else waits for.

use std::sync::Arc;

use spectree_stm::{graft, AccessSet, Execution, ReadWatch};

use super::adapt::Controller;
use super::watch::Watch;
use crate::event::{Backend, Event, Executor, Outcome};
pub(crate) use crate::sync::lock;
use crate::sync::{fence, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};

/// Slot phases, kept in the low bits of a slot's word beside the index of
/// the event it holds; comparing whole words rules out ABA across reuse.
pub(crate) const PENDING: u64 = 0;
pub(crate) const RUNNING: u64 = 1;
pub(crate) const DONE: u64 = 2;
pub(crate) const COMMITTED: u64 = 3;

/// Most commits per hold of the commit role.
const COMMITS_PER_HOLD: usize = 64;

pub(crate) fn word(index: usize, phase: u64) -> u64 {
    ((index as u64) << 2) | phase
}

/// A finished execution waiting for the commit role.
// One per slot, moved a few times per event: boxing the large variant
// would cost an allocation per event to save a few hundred bytes of copy.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Finished<S: Backend> {
    /// Run with tracking against the state after `snapshot` events.
    Tracked { exec: Execution<S>, snapshot: usize },
    /// Run untracked against the committed state, as the frontier.
    Direct { outcome: Outcome, state: S },
}

pub(crate) struct SlotData<S: Backend> {
    pub event: Option<Event<S>>,
    pub result: Option<Finished<S>>,
    pub output: Option<(Outcome, S)>,
}

pub(crate) struct Slot<S: Backend> {
    pub word: AtomicU64,
    pub data: Mutex<SlotData<S>>,
    /// The speculative execution running here, if any.
    watch: Arc<Watch>,
    /// A 64-bit summary (bit `r % 64`) of the read regions of a finished
    /// tracked result, so the commit path can skip it without locking.
    summary: AtomicU64,
}

/// Summary bits of a list of regions.
fn summary(regions: &[u32]) -> u64 {
    regions.iter().fold(0, |acc, r| acc | 1u64 << (r % 64))
}

/// What a committed event wrote, for validating executions whose
/// snapshots predate it.
enum Written<K: spectree_stm::Key> {
    Writes(AccessSet<K>),
    /// Unknown (a direct execution): conflicts with everything.
    Everything,
}

/// State owned by the commit role.
pub(crate) struct Head<S: Backend> {
    pub committed: usize,
    pub state: S,
    history: Vec<Option<Written<S::Key>>>,
    pub controller: Controller,
    pub failures: Vec<u64>,
    /// Per region: 1 + the index of the last committed event that wrote
    /// there (0: none).
    last_write: Vec<usize>,
    /// 1 + the index of the last event committed with unknown writes.
    last_everything: usize,
    pub failed: u64,
    /// Aborts already reported to the controller.
    seen_aborts: u64,
    pub stalls: u64,
    pub direct: u64,
}

/// Everything the threads of one run share.
pub(crate) struct Core<'m, S: Backend> {
    pub executor: &'m Executor<S>,
    slots: Box<[Slot<S>]>,
    /// Events committed; written only by the commit role.
    pub committed: AtomicUsize,
    /// Events placed in slots; written only by the coordinator.
    pub admitted: AtomicUsize,
    /// How far past the committed state events may run.
    pub width: AtomicUsize,
    /// The newest committed state and its version. Reference counted: a
    /// version is freed as soon as the last execution using it drops it.
    snapshot: Mutex<(usize, S)>,
    /// The commit role: taken by compare-and-swap, never waited for.
    role: AtomicBool,
    /// The role's state; locked only by the role's holder (so never
    /// contended) and, after the run, by the caller.
    pub head: Mutex<Head<S>>,
    pub executions: AtomicU64,
    pub aborts: AtomicU64,
    /// Nanoseconds spent holding the commit role.
    pub commit_nanos: AtomicU64,
    /// Naps taken by idle threads.
    pub naps: AtomicU64,
    /// Set when the run ends (or fails): workers return.
    pub stop: AtomicBool,
}

impl<'m, S: Backend> Core<'m, S> {
    pub fn new(executor: &'m Executor<S>, state: S, window: usize, controller: Controller) -> Self {
        let regions = executor.regions.count();
        let width = controller.width();
        Core {
            executor,
            slots: (0..window)
                .map(|i| Slot {
                    // No event yet: an index this slot will never hold.
                    word: AtomicU64::new(word(i + window, COMMITTED)),
                    data: Mutex::new(SlotData {
                        event: None,
                        result: None,
                        output: None,
                    }),
                    watch: Arc::new(Watch::new(regions)),
                    summary: AtomicU64::new(0),
                })
                .collect(),
            committed: AtomicUsize::new(0),
            admitted: AtomicUsize::new(0),
            width: AtomicUsize::new(width),
            snapshot: Mutex::new((0, state.clone())),
            role: AtomicBool::new(false),
            head: Mutex::new(Head {
                committed: 0,
                state,
                history: (0..window).map(|_| None).collect(),
                controller,
                failures: vec![0; regions],
                last_write: vec![0; regions],
                last_everything: 0,
                failed: 0,
                seen_aborts: 0,
                stalls: 0,
                direct: 0,
            }),
            executions: AtomicU64::new(0),
            aborts: AtomicU64::new(0),
            commit_nanos: AtomicU64::new(0),
            naps: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        }
    }

    /// Number of slots (and of log entries kept).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn slot(&self, index: usize) -> &Slot<S> {
        &self.slots[index % self.slots.len()]
    }

    /// The newest published committed state and its version.
    fn load_snapshot(&self) -> (usize, S) {
        let snap = lock(&self.snapshot);
        (snap.0, snap.1.clone())
    }

    /// Publish the committed state after `version` events.
    pub fn publish(&self, version: usize, state: S) {
        let old = std::mem::replace(&mut *lock(&self.snapshot), (version, state));
        drop(old); // outside the lock
    }

    /// Place event `index` in its slot (coordinator only; the slot's
    /// previous output must have been delivered).
    pub fn admit(&self, index: usize, event: Event<S>) {
        let slot = self.slot(index);
        lock(&slot.data).event = Some(event);
        slot.word.store(word(index, PENDING), Ordering::Release);
        self.admitted.store(index + 1, Ordering::SeqCst);
    }

    /// The committed state (for the loom model's checks).
    #[cfg(all(test, loom))]
    pub fn head_state(&self) -> S {
        lock(&self.head).state.clone()
    }

    /// Take the output of committed event `index`, if it is committed.
    pub fn take_output(&self, index: usize) -> Option<(Outcome, S)> {
        let slot = self.slot(index);
        if slot.word.load(Ordering::Acquire) != word(index, COMMITTED) {
            return None;
        }
        lock(&slot.data).output.take()
    }

    /// Whether some event in the claimable part of the window is pending.
    pub fn has_pending(&self) -> bool {
        let k = self.committed.load(Ordering::Acquire);
        let end = self
            .admitted
            .load(Ordering::Acquire)
            .min(k + self.width.load(Ordering::Relaxed));
        (k..end).any(|i| self.slot(i).word.load(Ordering::Relaxed) == word(i, PENDING))
    }

    /// Claim the lowest pending event within the width and execute it
    /// against the newest snapshot. Returns whether it did.
    ///
    /// Claiming looks at atomics only; the snapshot is loaded after the
    /// claim, so idle threads never touch the lock the commit path
    /// publishes through. The snapshot's version `v` then satisfies
    /// `committed-seen <= v <= i` (commits publish before advancing
    /// `committed`, and event `i` cannot commit while we hold it), so
    /// `i - v` stays below the width.
    pub fn claim_and_run(&self) -> bool {
        let k = self.committed.load(Ordering::Acquire);
        let width = self.width.load(Ordering::Relaxed);
        let end = self.admitted.load(Ordering::Acquire).min(k + width);
        for i in k..end {
            let slot = self.slot(i);
            let pending = word(i, PENDING);
            if slot.word.load(Ordering::Relaxed) != pending
                || slot
                    .word
                    .compare_exchange(
                        pending,
                        word(i, RUNNING),
                        Ordering::AcqRel,
                        Ordering::Relaxed,
                    )
                    .is_err()
            {
                continue;
            }
            let (mut v, mut state) = self.load_snapshot();
            if v != i {
                // Arm the watch, then look again: a commit published after
                // our load dooms through the watch or is seen here.
                slot.watch.reset(v);
                let (v2, s2) = self.load_snapshot();
                if v2 != v {
                    (v, state) = (v2, s2);
                    slot.watch.reset(v);
                }
            }
            debug_assert!(k <= v && v <= i, "snapshot {v} outside {k}..={i}");
            self.run_claimed(i, v, &state, width);
            return true;
        }
        false
    }

    fn run_claimed(&self, i: usize, v: usize, state: &S, width: usize) {
        let slot = self.slot(i);
        let event = lock(&slot.data).event.clone().expect("an admitted event");
        self.executions.fetch_add(1, Ordering::Relaxed);
        let finished = if i == v {
            // The frontier against the committed state: nothing can commit
            // before it, so its result stands; track it only if others may
            // be validated against it.
            self.frontier(&event, state, v, width)
        } else {
            let watch = slot.watch.clone(); // armed by `claim_and_run`
            let as_read: Arc<dyn ReadWatch> = watch.clone();
            let exec = self.executor.tracked(
                &event,
                state,
                Some(watch.cancel.clone()),
                Some(as_read),
                false,
            );
            // Its end state is built on an old snapshot: never committed as
            // is (the writes are grafted instead). Free it here, in parallel.
            let mut exec = exec;
            exec.state = state.clone();
            if watch.cancel.is_cancelled() {
                self.aborts.fetch_add(1, Ordering::Relaxed);
                slot.word.store(word(i, PENDING), Ordering::SeqCst);
                return;
            }
            slot.summary
                .store(summary(exec.access.read_region_list()), Ordering::Relaxed);
            Finished::Tracked { exec, snapshot: v }
        };
        lock(&slot.data).result = Some(finished);
        slot.word.store(word(i, DONE), Ordering::SeqCst);
    }

    /// Execute the frontier event against the committed state `state`
    /// (version `k`).
    fn frontier(&self, event: &Event<S>, state: &S, k: usize, width: usize) -> Finished<S> {
        if width == 1 {
            let (outcome, state) = self.executor.direct(event, state);
            Finished::Direct { outcome, state }
        } else {
            Finished::Tracked {
                exec: self.executor.tracked(event, state, None, None, true),
                snapshot: k,
            }
        }
    }

    /// Take the commit role if it is free and commit everything ready.
    /// Returns whether anything was committed.
    pub fn try_commit(&self) -> bool {
        let mut progressed = false;
        // Orders our DONE store before the look at the role; pairs with the
        // fence after a holder's release (see README, hand-off). The loom
        // model's self-test builds without it and must fail.
        #[cfg(not(loom_without_fence))]
        fence(Ordering::SeqCst);
        if !self.frontier_done() {
            return false;
        }
        loop {
            let Some(mut head) = self.take_role() else {
                return progressed;
            };
            let t = std::time::Instant::now();
            progressed |= self.commit_ready(&mut head);
            self.release_role(head);
            self.commit_nanos
                .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
            // A result finished after we looked and before we let go has
            // had its `try_lock` fail: look again (see README, hand-off).
            // A pending frontier needs no such care: whoever claims next
            // takes the lowest pending event.
            fence(Ordering::SeqCst);
            if !self.frontier_done() {
                return progressed;
            }
        }
    }

    /// Take the commit role if it is free.
    pub fn take_role(&self) -> Option<MutexGuard<'_, Head<S>>> {
        self.role
            .compare_exchange(false, true, Ordering::SeqCst, Ordering::Relaxed)
            .ok()?;
        Some(lock(&self.head))
    }

    /// Give the commit role back. Sequentially consistent, so that a
    /// thread whose attempt to take it failed published its result before
    /// this store in the total order, where our re-check sees it.
    pub fn release_role(&self, head: MutexGuard<'_, Head<S>>) {
        drop(head);
        self.role.store(false, Ordering::SeqCst);
    }

    fn frontier_done(&self) -> bool {
        let k = self.committed.load(Ordering::SeqCst);
        k < self.admitted.load(Ordering::SeqCst)
            && self.slot(k).word.load(Ordering::SeqCst) == word(k, DONE)
    }

    /// Commit the finished results at the frontier, at most
    /// [`COMMITS_PER_HOLD`] of them, then return so that the thread holding
    /// the role goes back to its other duties (the coordinator admits and
    /// delivers). A pending frontier is left to the claim that follows
    /// every commit attempt: claims take the lowest pending event first.
    fn commit_ready(&self, head: &mut Head<S>) -> bool {
        let mut any = false;
        for _ in 0..COMMITS_PER_HOLD {
            let k = head.committed;
            if k >= self.admitted.load(Ordering::Acquire) {
                break;
            }
            let slot = self.slot(k);
            let w = slot.word.load(Ordering::Acquire);
            if w != word(k, DONE) {
                if w == word(k, RUNNING) {
                    head.stalls += 1;
                }
                break;
            }
            let finished = lock(&slot.data)
                .result
                .take()
                .expect("a done slot has a result");
            self.commit(head, k, finished);
            any = true;
        }
        any
    }

    /// Whether `reads` (from the state after `snapshot` events) still holds
    /// after the events from `snapshot` to `k` committed; counts the
    /// regions where it fails.
    fn holds(
        &self,
        head: &mut Head<S>,
        reads: &AccessSet<S::Key>,
        snapshot: usize,
        k: usize,
    ) -> bool {
        let window = self.slots();
        if k - snapshot >= window {
            return false; // older than the log (cannot happen; be safe)
        }
        if head.last_everything > snapshot {
            for &r in reads.read_region_list() {
                head.failures[r as usize] += 1;
            }
            return false;
        }
        // Fast path: no region read was written since the snapshot.
        if reads
            .read_region_list()
            .iter()
            .all(|&r| head.last_write[r as usize] <= snapshot)
        {
            return true;
        }
        for v in snapshot..k {
            match &head.history[v % window] {
                Some(Written::Writes(w)) => {
                    if reads.conflicts_with(w) {
                        for r in reads.conflict_regions(w).iter_ones() {
                            head.failures[r] += 1;
                        }
                        return false;
                    }
                }
                Some(Written::Everything) | None => {
                    for r in reads.read_regions().iter_ones() {
                        head.failures[r] += 1;
                    }
                    return false;
                }
            }
        }
        true
    }

    fn commit(&self, head: &mut Head<S>, k: usize, finished: Finished<S>) {
        let slot = self.slot(k);
        let mut wasted = 0;
        let mut finished = finished;
        let (outcome, state, written) = loop {
            match finished {
                Finished::Direct { outcome, state } => {
                    head.direct += 1;
                    break (outcome, state, Written::Everything);
                }
                Finished::Tracked { exec, snapshot } if snapshot == k => {
                    break (exec.outcome, exec.state, Written::Writes(exec.access));
                }
                Finished::Tracked { exec, snapshot } => {
                    if self.holds(head, &exec.access, snapshot, k) {
                        if let Ok(state) = graft(&head.state, &exec.writes) {
                            break (exec.outcome, state, Written::Writes(exec.access));
                        }
                    }
                    // Re-execute against the committed state, here: the
                    // commit path never waits for another thread.
                    wasted += 1;
                    head.failed += 1;
                    let event = lock(&slot.data).event.clone().expect("an admitted event");
                    self.executions.fetch_add(1, Ordering::Relaxed);
                    let width = self.width.load(Ordering::Relaxed);
                    finished = self.frontier(&event, &head.state, k, width);
                }
            }
        };
        {
            let mut data = lock(&slot.data);
            data.event = None;
            data.output = Some((outcome, state.clone()));
        }
        slot.word.store(word(k, COMMITTED), Ordering::Release);
        // Publish before dooming: a claim that loads the old snapshot after
        // this point re-checks it after resetting its watch (see
        // `claim_and_run`), so either it sees the new snapshot or the doom
        // pass sees its watch.
        self.publish(k + 1, state.clone());
        wasted += self.doom(head, k, &written);
        let aborts = self.aborts.load(Ordering::Relaxed);
        wasted += aborts - head.seen_aborts;
        head.seen_aborts = aborts;
        let window = self.slots();
        match &written {
            Written::Writes(a) => {
                for &r in a.write_region_list() {
                    head.last_write[r as usize] = k + 1;
                }
            }
            Written::Everything => head.last_everything = k + 1,
        }
        head.history[k % window] = Some(written);
        head.state = state;
        head.committed = k + 1;
        self.committed.store(k + 1, Ordering::SeqCst);
        if let Some(w) = head.controller.on_commit(wasted) {
            self.width.store(w, Ordering::Relaxed);
        }
    }

    /// Record that event `k` was committed by direct execution outside the
    /// slots (its writes are unknown).
    pub fn record_direct(&self, head: &mut Head<S>, k: usize) {
        let window = self.slots();
        head.history[k % window] = Some(Written::Everything);
        head.last_everything = k + 1;
    }

    /// Act on what commit `k` wrote, for executions whose snapshots predate
    /// it: tell running ones (cancelling those that already read there),
    /// and send finished ones that it invalidates back to pending, so that
    /// idle threads re-execute them in parallel instead of the commit path
    /// finding them stale one by one. Returns the finished results
    /// discarded.
    fn doom(&self, head: &mut Head<S>, k: usize, written: &Written<S::Key>) -> u64 {
        let (list, wsum) = match written {
            Written::Writes(a) if a.write_region_list().is_empty() => return 0,
            Written::Writes(a) => (Some(a.write_region_list()), summary(a.write_region_list())),
            Written::Everything => (None, u64::MAX),
        };
        let mut discarded = 0;
        // Only events within the width can have been claimed.
        let end = self
            .admitted
            .load(Ordering::Acquire)
            .min(k + 1 + self.width.load(Ordering::Relaxed));
        for j in k + 1..end {
            let slot = self.slot(j);
            let w = slot.word.load(Ordering::Acquire);
            if w == word(j, RUNNING) {
                if slot.watch.predates(k) {
                    match list {
                        Some(list) => list.iter().for_each(|&r| slot.watch.written(r as usize)),
                        None => slot.watch.cancel.cancel(),
                    }
                }
            } else if w == word(j, DONE) && slot.summary.load(Ordering::Relaxed) & wsum != 0 {
                // Only the commit role, which we hold, moves a slot out of DONE.
                let mut data = lock(&slot.data);
                let Some(Finished::Tracked { exec, snapshot }) = &data.result else {
                    continue;
                };
                if *snapshot > k {
                    continue;
                }
                let stale = match written {
                    Written::Writes(a) => {
                        let stale = exec.access.conflicts_with(a);
                        if stale {
                            for r in exec.access.conflict_regions(a).iter_ones() {
                                head.failures[r] += 1;
                            }
                        }
                        stale
                    }
                    Written::Everything => {
                        for &r in exec.access.read_region_list() {
                            head.failures[r as usize] += 1;
                        }
                        true
                    }
                };
                if stale {
                    head.failed += 1;
                    discarded += 1;
                    let dead = data.result.take();
                    drop(data);
                    slot.word.store(word(j, PENDING), Ordering::SeqCst);
                    drop(dead);
                }
            }
        }
        discarded
    }
}
