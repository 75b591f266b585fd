//! A loom model of the commit hand-off (run with
//! `RUSTFLAGS="--cfg loom" cargo test -p spectree-scheduler --release --lib model`).
//!
//! It models the protocol of `core.rs` with the same encoding: slot words
//! `index << 2 | phase`, claims by compare-and-swap of the lowest pending
//! event, results published as DONE with a sequentially consistent store,
//! the commit role taken by compare-and-swap only (never waited for), its
//! data behind a lock only the holder takes, and the re-check after the
//! sequentially consistent release. Properties checked in every interleaving loom explores:
//! - no DONE result is stranded: once every thread has finished, every
//!   event is committed;
//! - events commit in log order, each exactly once;
//! - no thread ever waits for the commit role (there is no blocking call).
//!
//! Loom treats sequentially consistent loads and stores as acquire/release
//! but models `SeqCst` fences exactly, so the store-buffering argument rests
//! on the two fences, as it does in `core.rs`.

use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use loom::sync::{Arc, Mutex};
use loom::thread;

const PENDING: u64 = 0;
const RUNNING: u64 = 1;
const DONE: u64 = 2;
const COMMITTED: u64 = 3;
const EVENTS: usize = 3;

fn word(i: usize, phase: u64) -> u64 {
    ((i as u64) << 2) | phase
}

struct Model {
    slots: Vec<AtomicU64>,
    committed: AtomicUsize,
    /// The commit role.
    role: AtomicBool,
    /// The role's data: the order commits happened in.
    head: Mutex<Vec<usize>>,
}

impl Model {
    fn claim(&self) -> Option<usize> {
        let k = self.committed.load(SeqCst);
        (k..EVENTS).find(|&i| {
            self.slots[i]
                .compare_exchange(word(i, PENDING), word(i, RUNNING), SeqCst, SeqCst)
                .is_ok()
        })
    }

    fn frontier_done(&self) -> bool {
        let k = self.committed.load(SeqCst);
        k < EVENTS && self.slots[k].load(SeqCst) == word(k, DONE)
    }

    fn try_commit(&self) {
        // Pairs with the fence after the holder's release (loom models
        // SeqCst accesses as AcqRel, but SeqCst fences exactly).
        fence(SeqCst);
        if !self.frontier_done() {
            return;
        }
        loop {
            if self
                .role
                .compare_exchange(false, true, SeqCst, SeqCst)
                .is_err()
            {
                return;
            }
            let mut order = self.head.lock().unwrap();
            loop {
                let k = self.committed.load(SeqCst);
                if k >= EVENTS || self.slots[k].load(SeqCst) != word(k, DONE) {
                    break;
                }
                order.push(k);
                self.slots[k].store(word(k, COMMITTED), SeqCst);
                self.committed.store(k + 1, SeqCst);
            }
            drop(order);
            self.role.store(false, SeqCst);
            fence(SeqCst);
            if !self.frontier_done() {
                return;
            }
        }
    }

    /// A thread: claim and finish events until none is left to claim,
    /// trying the commit role after each.
    fn work(&self) {
        while let Some(i) = self.claim() {
            self.slots[i].store(word(i, DONE), SeqCst);
            self.try_commit();
        }
    }
}

#[test]
fn no_result_is_stranded_and_commits_are_in_order() {
    // Exhaustive up to three preemptions (loom's usual bound; the full
    // space for three threads is too large to finish in minutes).
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(|| {
        let m = Arc::new(Model {
            slots: (0..EVENTS)
                .map(|i| AtomicU64::new(word(i, PENDING)))
                .collect(),
            committed: AtomicUsize::new(0),
            role: AtomicBool::new(false),
            head: Mutex::new(Vec::new()),
        });
        let others: Vec<_> = (0..2)
            .map(|_| {
                let m = m.clone();
                thread::spawn(move || m.work())
            })
            .collect();
        m.work();
        for t in others {
            t.join().unwrap();
        }
        assert_eq!(m.committed.load(SeqCst), EVENTS, "a result was stranded");
        assert_eq!(*m.head.lock().unwrap(), (0..EVENTS).collect::<Vec<_>>());
    });
}
