//! The frontier never waits on a doomed speculative execution.
//!
//! Reproducers from a review of the processor (issue 12): event 0 works for
//! a while and then sets key 0 to 1; event 1 reads key 0, which serially it
//! always sees as 1, and then computes without touching its `Tx` again. On
//! the stale snapshot it sees 3,000 instead, and its computation does not
//! end (a spin of 3,000^4 million steps, a loop until the value is 1) or
//! recurses 3,000 deep. The run must still finish promptly with the serial
//! result: the commit path re-executes the doomed frontier itself, and the
//! calling thread never runs speculative work. Each check runs the
//! processor on a helper thread and gives it a generous bound; a hang fails
//! the test instead of hanging the suite. (The runaway speculative
//! execution keeps its pool thread busy after the run returns: that is the
//! documented price of an event that never polls `Tx::aborted`.)

use std::sync::mpsc;
use std::time::Duration;

use spectree::prelude::*;
use spectree::stm::{EventError, HashRegions, MapKey, MapState, RustEvent, Tx};

/// Far more than the runs need (milliseconds), far less than a hang.
const BOUND: Duration = Duration::from_secs(60);

fn key0() -> MapKey {
    MapKey(Noun::atom(0))
}

/// Spin for `n` steps, opaquely.
fn spin(n: u64) -> u64 {
    let mut x = 1u64;
    for i in 0..n {
        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
    }
    x
}

/// Event 0: about 20 ms of work, then key 0 := 1.
struct Writer;

impl RustEvent<MapState> for Writer {
    fn apply(&self, tx: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
        let x = spin(30_000_000);
        tx.put(&key0(), Noun::atom(1))?;
        Ok(Noun::atom(x & 1))
    }
}

/// What event 1 does with the value it read.
#[derive(Clone, Copy)]
enum Then {
    /// Spin `n^4` million steps (n = 1: a millisecond; n = 3,000: forever).
    Spin,
    /// Loop until the value is 1 (forever on any other value).
    WhileNotOne,
    /// Recurse `n` deep with a large frame.
    Recurse,
}

struct Reader(Then);

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    // A 4 KiB frame: 3,000 deep is 12 MiB of stack, more than a default
    // 2 MiB thread has; serially (depth 1) it is nothing.
    let frame = std::hint::black_box([depth as u8; 4096]);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    recurse(depth - 1).wrapping_add(u64::from(frame[4095]))
}

impl RustEvent<MapState> for Reader {
    fn apply(&self, tx: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
        let n = tx
            .get(&key0())?
            .and_then(|v| v.as_atom().and_then(|a| a.as_u64()))
            .unwrap_or(0);
        let out = match self.0 {
            Then::Spin => spin(n.saturating_pow(4).saturating_mul(1_000_000)),
            Then::WhileNotOne => {
                let mut steps = 0u64;
                let mut v = n;
                while std::hint::black_box(v) != 1 {
                    steps = steps.wrapping_add(1);
                    v = std::hint::black_box(n);
                }
                steps
            }
            Then::Recurse => recurse(n),
        };
        Ok(Noun::atom(out & 0xffff))
    }
}

fn run(then: Then) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let state: MapState = [(key0(), Noun::atom(3000))].into_iter().collect();
        let events = || {
            [
                Event::rust(Writer),
                Event::rust(Reader(then)),
                Event::rust(Reader(then)),
            ]
        };
        let processor = Processor::builder(HashRegions(16))
            .threads(2)
            .window(4)
            .adaptive(false)
            .build()
            .expect("a valid configuration");
        let serial = processor.serial().run(state.clone(), events());
        let parallel = processor.run(state, events());
        let _ = tx.send((serial, parallel));
    });
    let (serial, parallel) = rx
        .recv_timeout(BOUND)
        .expect("the speculative run finished (the frontier did not wait on a doomed execution)");
    assert_eq!(parallel.outcomes, serial.outcomes);
    assert_eq!(parallel.state, serial.state);
}

#[test]
fn a_doomed_execution_without_safe_points_does_not_hold_the_frontier() {
    run(Then::Spin);
}

#[test]
fn a_loop_on_a_value_only_a_stale_state_has_does_not_hang_the_run() {
    run(Then::WhileNotOne);
}

#[test]
fn recursion_as_deep_as_a_stale_value_survives_on_worker_stacks() {
    run(Then::Recurse);
}
