//! A loom model of the commit hand-off, run on the real `core.rs` through
//! the `sync` shim:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p spectree --release --lib model
//! ```
//!
//! Threads run the worker's loop (`try_commit`, then `claim_and_run`, until
//! neither makes progress) over a real [`Core`] with real events. Properties
//! checked in every interleaving loom explores (up to its preemption bound):
//! - **no result is stranded**: once every thread has stopped, every event
//!   is committed, although no thread ever waits for the commit role;
//! - **commits are serial**: every output and the final state equal the
//!   serial oracle's.
//!
//! The model must fail when a fence of the hand-off is removed:
//! `RUSTFLAGS="--cfg loom --cfg loom_without_fence"` builds `core.rs`
//! without the fence before the role check of `try_commit`, and loom then
//! finds an interleaving that strands a finished result.

use loom::sync::Arc;
use loom::thread;

use spectree_noun::{Axis, Noun};
use spectree_stm::{EventError, NounState, RegionMap, RustEvent, Tx};

use super::adapt::Controller;
use super::core::{Cache, Core};
use crate::event::{Event, Executor, States};

/// Reads axis `from`, writes its value plus one at axis `to`.
struct Copy {
    from: u64,
    to: u64,
}

impl RustEvent<NounState> for Copy {
    fn apply(&self, tx: &mut Tx<'_, NounState>) -> Result<Noun, EventError> {
        let ax = |n| Axis::new(n).expect("nonzero");
        let v = tx
            .get(&ax(self.from))?
            .and_then(|n| n.as_u64())
            .unwrap_or(0);
        tx.put(&ax(self.to), Noun::atom(v + 1))?;
        Ok(Noun::atom(v))
    }
}

const EVENTS: usize = 3;

fn events() -> Vec<Event<NounState>> {
    // Event 1 reads what event 0 writes: a real conflict.
    vec![
        Event::rust(Copy { from: 3, to: 2 }),
        Event::rust(Copy { from: 2, to: 3 }),
        Event::rust(Copy { from: 3, to: 3 }),
    ]
}

fn executor() -> Executor<NounState> {
    Executor {
        regions: std::sync::Arc::new(RegionMap::depth(1).expect("depth 1")),
        kernel: None,
        fuel: 1000,
        memory: 1 << 20,
        states: States::None,
    }
}

/// A worker's loop, without its naps: until nothing is left to do.
fn work(core: &Core<NounState>) {
    let mut cache = Cache::new();
    while core.try_commit(false) | core.claim_and_run(&mut cache) {}
}

#[test]
fn no_result_is_stranded_and_commits_equal_serial() {
    let state = NounState("[0 0]".parse().expect("parses"));
    let serial = crate::serial::SerialProcessor::from_executor(executor());
    let expected = serial.run(state.clone(), events());
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(2);
    builder.check(move || {
        let controller = Controller::new(EVENTS, 2, false);
        let core = Arc::new(Core::new(
            std::sync::Arc::new(executor()),
            States::None,
            state.clone(),
            4,
            controller,
        ));
        for (i, e) in events().into_iter().enumerate() {
            core.admit(i, e);
        }
        let other = {
            let core = core.clone();
            thread::spawn(move || work(&core))
        };
        work(&core);
        other.join().expect("the other thread ends");
        let outputs: Vec<_> = (0..EVENTS).map(|i| core.take_output(i)).collect();
        assert!(
            outputs.iter().all(Option::is_some),
            "a finished result was stranded: {:?}",
            outputs.iter().map(Option::is_some).collect::<Vec<_>>()
        );
        let outcomes: Vec<_> = outputs.into_iter().map(|o| o.expect("some").0).collect();
        assert_eq!(outcomes, expected.outcomes);
        assert_eq!(core.head_state(), expected.state);
    });
}
