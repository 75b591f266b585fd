//! The shared core of one processor run: the window of slots, the commit
//! role, and the published snapshot. The protocol and the argument for its
//! invariants are in `README.md` beside this file.
//!
//! Invariants:
//! - events commit strictly in log order, each exactly once, by whoever
//!   holds the commit role (taken by compare-and-swap, never waited for);
//! - a speculative result commits only if no write committed after its
//!   snapshot meets its reads or shapes (exact check); otherwise the commit
//!   role re-executes the event against the committed state;
//! - the commit role never waits on speculative work: a frontier that is
//!   running and known doomed, or pending and not claimable, is executed by
//!   the role itself; one that is running and not known doomed is left to
//!   finish (nothing can doom it any more);
//! - no lock is held while user code runs, except by the commit role while
//!   it executes the frontier event itself, which nothing else waits for.

use std::any::Any;
use std::sync::Arc;
use std::time::Instant;

use spectree_stm::{AccessSet, Execution, ReadWatch};

use super::adapt::Controller;
use super::watch::{AtomicSummary, Summary, Watch};
use crate::event::{Backend, Event, Executor, Outcome, States};
pub(crate) use crate::sync::lock;
use crate::sync::{fence, AtomicBool, AtomicU64, AtomicUsize, Mutex, MutexGuard, Ordering};

/// Slot phases, kept in the low bits of a slot's word beside the index of
/// the event it holds; comparing whole words rules out ABA across reuse.
pub(crate) const PENDING: u64 = 0;
pub(crate) const RUNNING: u64 = 1;
pub(crate) const DONE: u64 = 2;
pub(crate) const COMMITTED: u64 = 3;
/// Taken by the commit role while (or instead of) being run speculatively:
/// the role executes it; a speculative run still going is discarded.
pub(crate) const TAKEN: u64 = 4;

/// Most commits per hold of the commit role.
const COMMITS_PER_HOLD: usize = 64;

pub(crate) fn word(index: usize, phase: u64) -> u64 {
    ((index as u64) << 3) | phase
}

/// A finished speculative execution waiting for the commit role.
pub(crate) struct Finished<S: Backend> {
    exec: Execution<S>,
    /// The state version it ran against.
    snapshot: usize,
}

pub(crate) struct SlotData<S: Backend> {
    pub event: Option<Event<S>>,
    pub result: Option<Finished<S>>,
    pub output: Option<(Outcome, Option<S>)>,
}

pub(crate) struct Slot<S: Backend> {
    pub word: AtomicU64,
    pub data: Mutex<SlotData<S>>,
    /// The speculative execution running here, if any.
    watch: Arc<Watch>,
    /// A summary of the read regions of a finished result, so the commit
    /// path can skip it without locking.
    summary: AtomicSummary,
    /// The snapshot version this slot's event was last doomed against:
    /// it is not claimed again until a newer snapshot is published (it
    /// would be doomed again), so no thread spins on it.
    doomed_at: AtomicUsize,
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
    /// The committed state; `None` only while the role executes an event
    /// directly on it (moved out and back, so it can be edited in place).
    state: Option<S>,
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
    /// Frontier events the role executed itself instead of waiting (or
    /// instead of leaving them to a claim).
    pub taken: u64,
    /// Commits since the snapshot was last published.
    unpublished: usize,
}

impl<S: Backend> Head<S> {
    pub fn state(&self) -> &S {
        self.state
            .as_ref()
            .expect("the committed state is in place")
    }

    pub fn take_state(&mut self) -> S {
        self.state.take().expect("the committed state is in place")
    }

    pub fn put_state(&mut self, state: S) {
        self.state = Some(state);
    }
}

/// A thread's copy of the newest published snapshot, refreshed only when a
/// newer one is published: executions borrow it, so they touch no shared
/// reference count.
pub(crate) struct Cache<S> {
    version: usize,
    state: Option<S>,
}

impl<S> Cache<S> {
    pub fn new() -> Self {
        Cache {
            version: usize::MAX,
            state: None,
        }
    }
}

/// Everything the threads of one run share. Reference counted, so that a
/// speculative execution that never reaches a safe point can outlive the
/// run that started it without holding it up.
pub(crate) struct Core<S: Backend> {
    pub executor: Arc<Executor<S>>,
    /// Which committed states outputs carry.
    pub states: States,
    slots: Box<[Slot<S>]>,
    /// Events committed; written only by the commit role.
    pub committed: AtomicUsize,
    /// Events placed in slots; written only by the coordinator.
    pub admitted: AtomicUsize,
    /// How far past the committed state events may run.
    pub width: AtomicUsize,
    /// The newest published committed state and its version.
    /// `None` while events run directly (so that nothing shares the state
    /// the coordinator edits in place).
    snapshot: Mutex<(usize, Option<S>)>,
    /// The published snapshot's version (read without the lock).
    version: AtomicUsize,
    /// Regions written by commits since the last publication (a hint for
    /// claims against the published snapshot).
    unpublished_writes: AtomicSummary,
    /// The commit role: taken by compare-and-swap, never waited for.
    role: AtomicBool,
    /// The role's state; locked only by the role's holder (so never
    /// contended) and, after the run, by the caller.
    pub head: Mutex<Head<S>>,
    pub executions: AtomicU64,
    pub aborts: AtomicU64,
    /// Nanoseconds the commit role was held while speculating, and how much
    /// of that ran user code (re-executions).
    pub commit_nanos: AtomicU64,
    pub commit_user_nanos: AtomicU64,
    /// Events committed while speculating (not direct).
    pub speculative_commits: AtomicU64,
    /// Naps taken by idle threads.
    pub naps: AtomicU64,
    /// Set when the run ends (or fails): workers return.
    pub stop: AtomicBool,
    /// Outputs the caller has delivered (a hint for when to wake it).
    pub delivered: AtomicUsize,
    /// Whether the caller is waiting, and where: woken when outputs pile
    /// up or the window drains (a hint; it also wakes on a timeout).
    caller: std::sync::Mutex<bool>,
    caller_wake: std::sync::Condvar,
    /// A worker's internal panic (a bug), resumed on the caller's thread.
    pub failure: std::sync::Mutex<Option<Box<dyn Any + Send>>>,
}

impl<S: Backend> Core<S> {
    pub fn new(
        executor: Arc<Executor<S>>,
        states: States,
        state: S,
        window: usize,
        controller: Controller,
    ) -> Self {
        let regions = executor.regions.count();
        let width = controller.width();
        Core {
            executor,
            states,
            slots: (0..window)
                .map(|i| Slot {
                    // No event yet: an index this slot will never hold.
                    word: AtomicU64::new(word(i + window, COMMITTED)),
                    data: Mutex::new(SlotData {
                        event: None,
                        result: None,
                        output: None,
                    }),
                    watch: Arc::new(Watch::new()),
                    summary: AtomicSummary::new(),
                    doomed_at: AtomicUsize::new(usize::MAX),
                })
                .collect(),
            committed: AtomicUsize::new(0),
            admitted: AtomicUsize::new(0),
            width: AtomicUsize::new(width),
            snapshot: Mutex::new((0, Some(state.clone()))),
            version: AtomicUsize::new(0),
            unpublished_writes: AtomicSummary::new(),
            role: AtomicBool::new(false),
            head: Mutex::new(Head {
                committed: 0,
                state: Some(state),
                history: (0..window).map(|_| None).collect(),
                controller,
                failures: vec![0; regions],
                last_write: vec![0; regions],
                last_everything: 0,
                failed: 0,
                seen_aborts: 0,
                stalls: 0,
                direct: 0,
                taken: 0,
                unpublished: 0,
            }),
            executions: AtomicU64::new(0),
            aborts: AtomicU64::new(0),
            commit_nanos: AtomicU64::new(0),
            commit_user_nanos: AtomicU64::new(0),
            speculative_commits: AtomicU64::new(0),
            naps: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            delivered: AtomicUsize::new(0),
            caller: std::sync::Mutex::new(false),
            caller_wake: std::sync::Condvar::new(),
            failure: std::sync::Mutex::new(None),
        }
    }

    /// Number of slots (and of history entries kept).
    pub fn slots(&self) -> usize {
        self.slots.len()
    }

    pub fn slot(&self, index: usize) -> &Slot<S> {
        &self.slots[index % self.slots.len()]
    }

    /// Make `cache` hold the newest published snapshot.
    ///
    /// Never waits: while a publication holds the lock, the cached (older)
    /// snapshot serves, which validation makes correct. The first refresh
    /// waits, as there is nothing cached yet.
    ///
    /// It does wait when the cached snapshot is older than `at_least` (the
    /// event was cancelled against it, and would be again), so that a claim
    /// never repeats a doomed execution while a publication is waiting.
    fn refresh(&self, cache: &mut Cache<S>, at_least: usize) {
        if self.version.load(Ordering::Acquire) == cache.version {
            return;
        }
        let snap = match self.snapshot.try_lock() {
            Ok(snap) => snap,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock)
                if cache.state.is_some() && cache.version >= at_least =>
            {
                return
            }
            Err(std::sync::TryLockError::WouldBlock) => lock(&self.snapshot),
        };
        let Some(state) = snap.1.clone() else {
            return; // nothing published (direct execution): nothing to claim
        };
        cache.version = snap.0;
        let old = cache.state.replace(state);
        drop(snap);
        drop(old); // outside the lock: may free a whole version
    }

    /// Publish the committed state after `version` events, unless a
    /// refresh holds the lock (then the caller publishes later: a stale
    /// snapshot costs conflicts, never correctness). Returns whether it
    /// published.
    pub fn try_publish(&self, version: usize, state: &S) -> bool {
        let mut snap = match self.snapshot.try_lock() {
            Ok(snap) => snap,
            Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        // Marks cleared before the version moves: a claim that sees the new
        // version sees no marks of commits it includes (a stale mark would
        // doom a frontier that nothing can doom).
        self.unpublished_writes.clear();
        let old = std::mem::replace(&mut *snap, (version, Some(state.clone())));
        self.version.store(version, Ordering::Release);
        drop(snap);
        drop(old); // outside the lock
        true
    }

    /// Publish the committed state after `version` events, waiting for the
    /// lock (used when leaving direct execution).
    pub fn publish(&self, version: usize, state: S) {
        self.unpublished_writes.clear();
        let old = std::mem::replace(&mut *lock(&self.snapshot), (version, Some(state)));
        self.version.store(version, Ordering::Release);
        drop(old); // outside the lock
    }

    /// Withdraw the published snapshot while events run directly (the
    /// window is empty, so nothing can be claimed), so that the committed
    /// state is shared with nothing and is edited in place. Publication
    /// on leaving direct execution puts one back.
    pub fn unpublish(&self) {
        let old = lock(&self.snapshot).1.take();
        drop(old); // outside the lock
    }

    /// Place event `index` in its slot (coordinator only; the slot's
    /// previous output must have been delivered).
    pub fn admit(&self, index: usize, event: Event<S>) {
        let slot = self.slot(index);
        lock(&slot.data).event = Some(event);
        slot.doomed_at.store(usize::MAX, Ordering::Relaxed);
        slot.word.store(word(index, PENDING), Ordering::Release);
        self.admitted.store(index + 1, Ordering::SeqCst);
    }

    /// Take the output of committed event `index`, if it is committed.
    pub fn take_output(&self, index: usize) -> Option<(Outcome, Option<S>)> {
        let slot = self.slot(index);
        if slot.word.load(Ordering::Acquire) != word(index, COMMITTED) {
            return None;
        }
        lock(&slot.data).output.take()
    }

    /// The committed state (for the loom model's checks).
    #[cfg(all(test, loom))]
    pub fn head_state(&self) -> S {
        lock(&self.head).state().clone()
    }

    /// The caller waits (at most `timeout`) unless something is already
    /// waiting for it: outputs to deliver. Returns whether it waited.
    pub fn caller_wait(&self, timeout: std::time::Duration) -> bool {
        let mut asleep = self.caller.lock().unwrap_or_else(|e| e.into_inner());
        if self.committed.load(Ordering::SeqCst) > self.delivered.load(Ordering::Relaxed)
            || self.stop.load(Ordering::Relaxed)
        {
            return false;
        }
        *asleep = true;
        let (mut asleep, _) = self
            .caller_wake
            .wait_timeout(asleep, timeout)
            .unwrap_or_else(|e| e.into_inner());
        *asleep = false;
        true
    }

    /// Wake the caller if it waits and has enough to do: a quarter of the
    /// slots' outputs to deliver, or the whole window committed. Never
    /// blocks (a worker must not): if the caller is between its look and
    /// its wait, it wakes on its timeout instead.
    fn nudge_caller(&self) {
        let committed = self.committed.load(Ordering::SeqCst);
        let due = committed.saturating_sub(self.delivered.load(Ordering::Relaxed));
        if due == 0 || (due < self.slots() / 4 && committed < self.admitted.load(Ordering::Relaxed))
        {
            return;
        }
        if let Ok(asleep) = self.caller.try_lock() {
            if *asleep {
                self.caller_wake.notify_one();
            }
        }
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
    /// against the newest published snapshot (`cache`). Returns whether it
    /// did.
    ///
    /// Claiming looks at atomics only; the snapshot is looked at after the
    /// claim, so idle threads never touch the lock it is published under.
    pub fn claim_and_run(&self, cache: &mut Cache<S>) -> bool {
        let k = self.committed.load(Ordering::Acquire);
        let width = self.width.load(Ordering::Relaxed);
        let end = self.admitted.load(Ordering::Acquire).min(k + width);
        let published = self.version.load(Ordering::Acquire);
        for i in k..end {
            let slot = self.slot(i);
            let pending = word(i, PENDING);
            if slot.word.load(Ordering::Relaxed) != pending
                || slot.doomed_at.load(Ordering::Relaxed) == published
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
            // Counted at the claim: a claim whose event the role takes
            // before it runs is a wasted execution too (counted as taken).
            self.executions.fetch_add(1, Ordering::Relaxed);
            let at_least = match slot.doomed_at.load(Ordering::Relaxed) {
                usize::MAX => 0,
                doomed => doomed + 1,
            };
            self.refresh(cache, at_least);
            // Arm the watch, then look again: a publication after our look
            // is seen here; commits since the one we hold mark what they
            // wrote (a hint: validation decides).
            slot.watch.reset(cache.version);
            self.refresh(cache, at_least);
            slot.watch.reset(cache.version);
            slot.watch.written(&self.unpublished_writes.load());
            let v = cache.version;
            let Some(state) = cache.state.as_ref() else {
                // Nothing published yet (cannot happen: claims need an
                // admitted event, and admission follows publication).
                let _ = slot.word.compare_exchange(
                    word(i, RUNNING),
                    word(i, PENDING),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                );
                return false;
            };
            self.run_claimed(i, v, state);
            return true;
        }
        false
    }

    fn run_claimed(&self, i: usize, v: usize, state: &S) {
        let slot = self.slot(i);
        let event = {
            let data = lock(&slot.data);
            // Taken (and maybe committed, the slot reused) by the role
            // meanwhile: nothing to run.
            if slot.word.load(Ordering::Acquire) != word(i, RUNNING) {
                return;
            }
            data.event.clone().expect("a running slot holds its event")
        };
        let watch = slot.watch.clone();
        let as_read: Arc<dyn ReadWatch> = watch.clone();
        let exec = self.executor.tracked(
            &event,
            state,
            Some(watch.cancel.clone()),
            Some(as_read),
            false,
        );
        if watch.cancel.is_cancelled() {
            // Back to pending, unless the role took it meanwhile (then it
            // is counted as taken). The flag is cleared first, so that the
            // role never mistakes the next claim for a doomed run.
            watch.cancel.reset();
            slot.doomed_at.store(v, Ordering::Relaxed);
            if slot
                .word
                .compare_exchange(
                    word(i, RUNNING),
                    word(i, PENDING),
                    Ordering::SeqCst,
                    Ordering::Relaxed,
                )
                .is_ok()
            {
                self.aborts.fetch_add(1, Ordering::Relaxed);
            }
            return;
        }
        let mut data = lock(&slot.data);
        // Taken (and perhaps committed, and the slot reused) meanwhile: the
        // result is not needed, and must not touch the slot's next event.
        // Checked under the lock, which the role's commit of a taken event
        // also takes.
        if slot.word.load(Ordering::Acquire) != word(i, RUNNING) {
            return;
        }
        slot.summary.set(&Summary::of(exec.access.read_regions()));
        data.result = Some(Finished { exec, snapshot: v });
        if slot
            .word
            .compare_exchange(
                word(i, RUNNING),
                word(i, DONE),
                Ordering::SeqCst,
                Ordering::Relaxed,
            )
            .is_err()
        {
            // The role took it: this result is not needed.
            let dead = data.result.take();
            drop(data);
            drop(dead);
        }
    }

    /// Take the commit role if it is free and commit everything ready.
    /// Returns whether anything was committed.
    ///
    /// With `take_pending`, a pending frontier is executed here too (the
    /// coordinator passes it when no worker may be there to claim it).
    pub fn try_commit(&self, take_pending: bool) -> bool {
        let mut progressed = false;
        // Orders our DONE store before the look at the role; pairs with the
        // fence after a holder's release (see README, hand-off). The loom
        // model's self-test builds without it and must fail.
        #[cfg(not(loom_without_fence))]
        fence(Ordering::SeqCst);
        if !self.frontier_ready(take_pending) {
            return false;
        }
        loop {
            let Some(mut head) = self.take_role() else {
                return progressed;
            };
            let t = Instant::now();
            let before = head.committed;
            progressed |= self.commit_ready(&mut head, take_pending);
            let committed = (head.committed - before) as u64;
            // Publish once per hold: the next first write per node copies
            // what it shares with the snapshot; the rest edit in place.
            if head.unpublished > 0 && self.try_publish(head.committed, head.state()) {
                head.unpublished = 0;
            }
            self.release_role(head);
            if committed > 0 {
                self.nudge_caller();
                let spent = t.elapsed().as_nanos() as u64;
                self.commit_nanos.fetch_add(spent, Ordering::Relaxed);
                self.speculative_commits
                    .fetch_add(committed, Ordering::Relaxed);
            }
            // A result finished after we looked and before we let go has
            // had its attempt at the role fail: look again (see README,
            // hand-off).
            fence(Ordering::SeqCst);
            if !self.frontier_ready(take_pending) {
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

    /// Whether the frontier needs the role: finished, known doomed, or
    /// pending and not claimable.
    fn frontier_ready(&self, take_pending: bool) -> bool {
        let k = self.committed.load(Ordering::SeqCst);
        if k >= self.admitted.load(Ordering::SeqCst) {
            return false;
        }
        let slot = self.slot(k);
        let w = slot.word.load(Ordering::SeqCst);
        w == word(k, DONE)
            || (w == word(k, PENDING) && (take_pending || self.unclaimable(slot)))
            || (w == word(k, RUNNING) && slot.watch.cancel.is_cancelled())
    }

    /// Commit the results at the frontier, at most [`COMMITS_PER_HOLD`] of
    /// them, then return so that the thread holding the role goes back to
    /// its other duties (the coordinator admits and delivers). The role
    /// never waits: a frontier that is doomed (a commit met what it read)
    /// is executed by the role itself; one still running unharmed is left
    /// to finish.
    fn commit_ready(&self, head: &mut Head<S>, take_pending: bool) -> bool {
        let mut any = false;
        for _ in 0..COMMITS_PER_HOLD {
            let k = head.committed;
            if k >= self.admitted.load(Ordering::Acquire) {
                break;
            }
            let slot = self.slot(k);
            let w = slot.word.load(Ordering::Acquire);
            let mut wasted = 0;
            let finished = if w == word(k, DONE) {
                let result = lock(&slot.data).result.take();
                Some(result.expect("a done slot has a result"))
            } else if w == word(k, PENDING)
                && (take_pending || self.unclaimable(slot))
                && self.take(k, w)
            {
                // Pending and asked for, or sent back after a doomed run
                // and not claimable until a newer snapshot is published
                // (which may never come: this is the frontier). The role
                // runs it against the committed state, which needs no
                // validation.
                None
            } else if w == word(k, RUNNING) && slot.watch.cancel.is_cancelled() && self.take(k, w) {
                // Doomed: the role runs it itself instead of waiting (the
                // doomed run is wasted work, counted as taken).
                head.taken += 1;
                wasted = 1;
                None
            } else {
                if w == word(k, RUNNING) {
                    head.stalls += 1;
                }
                break;
            };
            let executed = finished.is_none();
            self.commit(head, k, finished, wasted);
            any = true;
            if executed {
                // One execution per hold: the holder goes back to its other
                // duties (the coordinator admits and delivers, so that the
                // workers do not run dry), and the next frontier may be
                // claimed meanwhile.
                break;
            }
        }
        any
    }

    /// Whether claims skip this pending slot: it was doomed against the
    /// snapshot published now.
    fn unclaimable(&self, slot: &Slot<S>) -> bool {
        slot.doomed_at.load(Ordering::Relaxed) == self.version.load(Ordering::Acquire)
    }

    /// Take event `k` (pending, or running: its speculative execution is
    /// then discarded when it finishes) for the role to execute.
    fn take(&self, k: usize, seen: u64) -> bool {
        self.slot(k)
            .word
            .compare_exchange(seen, word(k, TAKEN), Ordering::SeqCst, Ordering::Relaxed)
            .is_ok()
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
            return false; // older than the history (cannot happen; be safe)
        }
        if head.last_everything > snapshot {
            for &r in reads.read_regions() {
                head.failures[r as usize] += 1;
            }
            return false;
        }
        // Fast path: no region read was written since the snapshot.
        if reads
            .read_regions()
            .iter()
            .all(|&r| head.last_write[r as usize] <= snapshot)
        {
            return true;
        }
        for v in snapshot..k {
            match &head.history[v % window] {
                Some(Written::Writes(w)) => {
                    if reads.conflicts_with(w) {
                        for r in reads.conflict_regions(w) {
                            head.failures[r as usize] += 1;
                        }
                        return false;
                    }
                }
                Some(Written::Everything) | None => {
                    for &r in reads.read_regions() {
                        head.failures[r as usize] += 1;
                    }
                    return false;
                }
            }
        }
        true
    }

    /// Apply `writes` to the committed state in place. They were checked
    /// to apply (each exists in the committed state) first, so a failure
    /// leaves the state untouched.
    fn graft(head: &mut Head<S>, writes: &[(S::Key, spectree_noun::Noun)]) -> bool {
        let state = head
            .state
            .as_mut()
            .expect("the committed state is in place");
        if writes.iter().any(|(k, _)| state.check_put(k).is_err()) {
            return false;
        }
        for (k, v) in writes {
            state
                .put_mut(k, v.clone())
                .expect("checked to apply just above");
        }
        true
    }

    /// Commit event `k`: its speculative result if it still holds, else a
    /// fresh execution against the committed state, here. `wasted`:
    /// executions of `k` already discarded (a doomed run the role took).
    fn commit(&self, head: &mut Head<S>, k: usize, finished: Option<Finished<S>>, mut wasted: u64) {
        let slot = self.slot(k);
        let valid = match finished {
            Some(f) => {
                if self.holds(head, &f.exec.access, f.snapshot, k)
                    && Self::graft(head, &f.exec.writes)
                {
                    Some(f.exec)
                } else {
                    wasted += 1;
                    head.failed += 1;
                    None
                }
            }
            None => None,
        };
        let exec = match valid {
            Some(exec) => exec,
            None => {
                // Execute against the committed state, here: the commit
                // path never waits for another thread.
                let event = lock(&slot.data).event.clone().expect("an admitted event");
                self.executions.fetch_add(1, Ordering::Relaxed);
                let t = Instant::now();
                let exec = self
                    .executor
                    .tracked(&event, head.state(), None, None, false);
                self.commit_user_nanos
                    .fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                let grafted = Self::graft(head, &exec.writes);
                debug_assert!(grafted, "an execution's writes apply to its own state");
                exec
            }
        };
        let Execution {
            outcome, access, ..
        } = exec;
        let state_out = self.states.wants(k as u64).then(|| head.state().clone());
        {
            let mut data = lock(&slot.data);
            data.event = None;
            data.output = Some((outcome, state_out));
        }
        slot.word.store(word(k, COMMITTED), Ordering::Release);
        let written = Summary::of(access.write_regions());
        for &r in access.write_regions() {
            head.last_write[r as usize] = k + 1;
        }
        // Mark what was written for executions whose snapshot predates it
        // (see `claim_and_run`), then act on it.
        self.unpublished_writes.add(&written);
        wasted += self.doom(head, k, &access, &written);
        let aborts = self.aborts.load(Ordering::Relaxed);
        wasted += aborts - head.seen_aborts;
        head.seen_aborts = aborts;
        let window = self.slots();
        head.history[k % window] = Some(Written::Writes(access));
        head.committed = k + 1;
        head.unpublished += 1;
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
    fn doom(
        &self,
        head: &mut Head<S>,
        k: usize,
        access: &AccessSet<S::Key>,
        written: &Summary,
    ) -> u64 {
        if written.is_empty() {
            return 0;
        }
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
                    slot.watch.written(written);
                }
            } else if w == word(j, DONE) && slot.summary.load().meets(written) {
                // Only the commit role, which we hold, moves a slot out of DONE.
                let mut data = lock(&slot.data);
                let Some(Finished { exec, snapshot }) = &data.result else {
                    continue;
                };
                if *snapshot > k || !exec.access.conflicts_with(access) {
                    continue;
                }
                for r in exec.access.conflict_regions(access) {
                    head.failures[r as usize] += 1;
                }
                head.failed += 1;
                discarded += 1;
                let dead = data.result.take();
                drop(data);
                slot.word.store(word(j, PENDING), Ordering::SeqCst);
                drop(dead);
            }
        }
        discarded
    }
}
