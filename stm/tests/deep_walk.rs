//! Tracking memory is linear in what was touched: a tracked walk down a
//! 10^5-deep state records 2 * 10^5 axes up to 10^5 levels deep, which as
//! separate numbers would take over a gigabyte; shared, they take a few
//! megabytes. Measured with a counting allocator (this test binary's own).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use spectree_noun::nock::Limits;
use spectree_noun::Noun;
use spectree_stm::{execute_nock, NounState, Options, RegionMap};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: defers to the system allocator; only counts bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: the caller's layout contract passes through.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_tracked_walk_down_a_deep_state_takes_linear_memory() {
    let depth = 100_000;
    let state = (0..depth).fold(Noun::ZERO, |acc, _| Noun::cell(Noun::ONE, acc));
    // The kernel walks the state's tail spine to its end with a gate
    // `?:(?=(^ sample) $(sample +.sample) 0)`, then returns it unchanged.
    let kernel: Noun = "[[8 [1 6 [3 0 6] [9 2 10 [6 0 13] 0 1] [1 0]] 9 2 10 [6 0 7] 0 1] 0 3]"
        .parse()
        .unwrap();
    let regions = RegionMap::depth(4).unwrap();
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let run = execute_nock(
        &kernel,
        &Noun::ZERO,
        NounState(state),
        &regions,
        &Options::tracked(Limits::fuel(10_000_000)),
    );
    assert_eq!(run.outcome, Ok(Noun::ZERO));
    assert_eq!(run.access.shapes().len(), 2 * depth);
    let peak = PEAK.load(Ordering::Relaxed) - before;
    println!("peak {} MB", peak >> 20);
    assert!(
        peak < 100 << 20,
        "a tracked 10^5-deep walk peaked at {} MB",
        peak >> 20
    );
}
