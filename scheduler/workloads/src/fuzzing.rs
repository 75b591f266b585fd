//! The properties the `determinism` and `tracking` fuzz targets check, as
//! plain functions of bytes (the `cue` and `nock` ones are in
//! `spectree_noun::fuzzing`), so that the committed corpus is replayed by
//! an ordinary test on stable Rust (this module's tests).
//!
//! Each harness returns normally for every input that upholds its
//! property and panics (with what differed) when the property fails. Input
//! bytes are decoded with [`arbitrary::Unstructured`]; running out of bytes
//! just ends the decoding early.

use arbitrary::Unstructured;
use spectree::noun::nock::Limits;
use spectree::noun::{cue_bytes, Axis, Noun};
use spectree::stm::{
    execute_nock, execute_rust, graft, validate, AccessSet, EventError, NounState, Options,
    RegionMap, RustEvent, State, Tx,
};
use spectree::{Config, Event, Processor};

use crate::{NockTouch, KERNEL};

/// Let the panics that fuzzed Rust events raise on purpose (and that the
/// processor contains) pass quietly, keeping the installed hook for every
/// other panic. The processor's containment is already silent; this also
/// covers harness code that runs events outside it.
pub fn contain_fuzzed_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let p = info.payload();
            let ours = p.downcast_ref::<&str>() == Some(&FUZZED_PANIC)
                || p.downcast_ref::<String>()
                    .is_some_and(|s| s == FUZZED_PANIC);
            if !ours {
                previous(info);
            }
        }));
    });
}

/// The message of a fuzzed event's deliberate panic.
pub const FUZZED_PANIC: &str = "fuzzed panic";

/// The payload of a fuzzed event's deliberate failure.
pub const FUZZED_FAILURE: u64 = 0xf022;

/// One step of a fuzzed Rust event.
#[derive(Debug, Clone)]
enum Op {
    Get(Axis),
    Put(Axis),
    Panic,
    Fail,
}

/// A Rust event running a fuzzed program: reads fold into an accumulator,
/// puts write values derived from it, and it may panic or fail midway.
#[derive(Debug, Clone)]
struct Program(Vec<Op>);

impl RustEvent<NounState> for Program {
    fn apply(&self, tx: &mut Tx<'_, NounState>) -> Result<Noun, EventError> {
        let mut acc = 7u64;
        for op in &self.0 {
            match op {
                Op::Get(a) => {
                    let v = tx.get(a)?.map_or(0, |n| u64::from(n.mug()));
                    acc = acc.rotate_left(5) ^ v;
                }
                Op::Put(a) => tx.put(a, Noun::atom(acc % 1000))?,
                Op::Panic => std::panic::panic_any(FUZZED_PANIC),
                Op::Fail => return Err(EventError::failed(FUZZED_FAILURE)),
            }
        }
        Ok(Noun::atom(acc % 1000))
    }
}

/// A small axis, often existing in a tree of depth `depth`.
fn axis(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Axis> {
    let d = u.int_in_range(0..=depth + 1)?;
    let low: u64 = u.int_in_range(0..=(1u64 << d) - 1)?;
    Ok(Axis::new((1u64 << d) | low).expect("nonzero"))
}

/// A state: a tree of the given depth whose leaves are small atoms, with
/// some subtrees cut short to atoms.
fn state(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Noun> {
    let mut level: Vec<Noun> = (0..1u32 << depth)
        .map(|_| u.int_in_range(0..=9u64).map(Noun::atom))
        .collect::<arbitrary::Result<_>>()?;
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len() / 2);
        for pair in level.chunks(2) {
            next.push(if u.ratio(1, 8)? {
                Noun::atom(3)
            } else {
                Noun::cell(pair[0].clone(), pair[1].clone())
            });
        }
        level = next;
    }
    Ok(level.pop().expect("one root"))
}

fn regions(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<RegionMap> {
    if u.ratio(1, 3)? {
        let roots: Vec<Axis> = (0..u.int_in_range(1..=4)?)
            .map(|_| axis(u, depth))
            .collect::<arbitrary::Result<_>>()?;
        if let Ok(map) = RegionMap::axes(roots) {
            return Ok(map);
        }
    }
    Ok(RegionMap::depth(u64::from(u.int_in_range(0..=depth)?)).expect("depth <= 16"))
}

fn event(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Event<NounState>> {
    Ok(match u.int_in_range(0..=9u8)? {
        0..=4 => {
            let ops = (0..u.int_in_range(0..=5)?)
                .map(|_| {
                    Ok(match u.int_in_range(0..=19u8)? {
                        0..=8 => Op::Get(axis(u, depth)?),
                        9..=17 => Op::Put(axis(u, depth)?),
                        18 => Op::Panic,
                        _ => Op::Fail,
                    })
                })
                .collect::<arbitrary::Result<_>>()?;
            Event::rust(Program(ops))
        }
        5..=7 => {
            let axes: Vec<Axis> = (0..u.int_in_range(1..=3)?)
                .map(|_| axis(u, depth))
                .collect::<arbitrary::Result<_>>()?;
            if u.ratio(1, 4)? {
                Event::nock(NockTouch::read(&axes, 0.0).formula())
            } else {
                Event::nock(NockTouch::rmw(&axes, 0.0).formula())
            }
        }
        // Arbitrary formulas: mostly crashes; some run out of fuel.
        _ => {
            let len = u.int_in_range(0..=24)?;
            Event::nock(cue_bytes(u.bytes(len)?).unwrap_or(Noun::ZERO))
        }
    })
}

/// The inputs of one determinism case.
struct Case {
    state: NounState,
    regions: RegionMap,
    events: Vec<Event<NounState>>,
    config: Config,
}

fn case(data: &[u8]) -> arbitrary::Result<Case> {
    let mut u = Unstructured::new(data);
    let depth = u.int_in_range(0..=5u32)?;
    let state = NounState(state(&mut u, depth)?);
    let regions = regions(&mut u, depth)?;
    let mut config = Config::default();
    config.threads = u.int_in_range(1..=4)?;
    config.fuel = 2_000;
    // 0: automatic; below 2 means 2 (how the corpus was made).
    config.window = match u.int_in_range(0..=8usize)? {
        0 => None,
        w => Some(w.max(2)),
    };
    config.adaptive = u.arbitrary()?;
    let mut events = Vec::new();
    while events.len() < 48 && !u.is_empty() {
        events.push(event(&mut u, depth)?);
    }
    Ok(Case {
        state,
        regions,
        events,
        config,
    })
}

/// `determinism`: an arbitrary state, region map, batch of Nock and Rust
/// events (including panicking, crashing and fuel-hungry ones) and thread
/// count; the processor's outcomes and final state equal the serial
/// oracle's.
///
/// # Panics
/// When they differ (or a Rust event panics outside containment).
pub fn determinism(data: &[u8]) {
    determinism_counted(data);
}

/// [`determinism`], returning how many events the input decoded to.
pub fn determinism_counted(data: &[u8]) -> usize {
    let Ok(c) = case(data) else {
        return 0;
    };
    let kernel: Noun = KERNEL.parse().expect("kernel parses");
    let processor = Processor::builder(c.regions)
        .kernel(kernel)
        .config(c.config.clone())
        .build()
        .expect("valid config");
    let expected = processor
        .serial()
        .run(c.state.clone(), c.events.iter().cloned());
    let got = processor.run(c.state, c.events.iter().cloned());
    assert_eq!(
        got.outcomes, expected.outcomes,
        "outcomes differ ({:?})",
        c.config
    );
    assert_eq!(
        got.state, expected.state,
        "final states differ ({:?})",
        c.config
    );
    c.events.len()
}

/// `tracking`: the stm conservativeness property. An event runs tracked
/// against a state; other writes commit; if the execution still validates,
/// running the event against the new state gives the same outcome, and
/// grafting its writes gives the state that run leaves.
///
/// # Panics
/// When a validated execution differs from re-execution.
pub fn tracking(data: &[u8]) {
    let Ok((old, regions, ev, committed)) = tracking_case(data) else {
        return;
    };
    let kernel: Noun = KERNEL.parse().expect("kernel parses");
    let options = Options::tracked(Limits::fuel(2_000));
    let run = |s: &NounState| match &ev {
        Event::Nock(e) => execute_nock(&kernel, e, s, &regions, &options),
        Event::Rust(r) => execute_rust(&**r, s, &regions, &options),
    };
    let first = run(&old);
    // The concurrent writes, as committed by some other event.
    let mut new = old.clone();
    let mut theirs = AccessSet::new(&regions);
    for (a, v) in &committed {
        if let Ok(next) = new.put(a, v.clone()) {
            new = next;
            theirs.write(a.clone(), &regions);
        }
    }
    if !validate(&first.access, [&theirs]) {
        return;
    }
    let second = run(&new);
    assert_eq!(first.outcome, second.outcome, "validated outcome differs");
    if second.outcome.is_ok() {
        let grafted = graft(&new, &first.writes).expect("validated writes graft");
        assert_eq!(
            Some(grafted),
            second.state,
            "grafted state differs from re-execution"
        );
    }
}

type TrackingCase = (NounState, RegionMap, Event<NounState>, Vec<(Axis, Noun)>);

fn tracking_case(data: &[u8]) -> arbitrary::Result<TrackingCase> {
    let mut u = Unstructured::new(data);
    let depth = u.int_in_range(0..=4u32)?;
    let old = NounState(state(&mut u, depth)?);
    let regions = regions(&mut u, depth)?;
    let ev = event(&mut u, depth)?;
    let committed = (0..u.int_in_range(0..=3)?)
        .map(|_| {
            let a = axis(&mut u, depth)?;
            let d = u.int_in_range(0..=1)?;
            Ok((a, state(&mut u, d)?))
        })
        .collect::<arbitrary::Result<_>>()?;
    Ok((old, regions, ev, committed))
}

#[cfg(test)]
mod tests {
    //! Replays every committed corpus file (`fuzz/corpus/<target>/`) and
    //! saved crash (`fuzz/regressions/<target>/`) of the `determinism` and
    //! `tracking` targets, on stable Rust, then a short deterministic sweep
    //! of pseudo-random inputs.

    use std::path::Path;

    use super::*;
    use crate::Rng;

    type Harness = fn(&[u8]);

    const TARGETS: [(&str, Harness); 2] = [("determinism", determinism), ("tracking", tracking)];

    #[test]
    fn every_corpus_file_and_saved_crash_replays() {
        contain_fuzzed_panics();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        for (target, harness) in TARGETS {
            let (inputs, corpus) = spectree::noun::fuzzing::committed_inputs(&root, target);
            assert!(corpus > 0, "no corpus for {target}");
            for path in inputs {
                harness(&std::fs::read(path).unwrap());
            }
        }
    }

    #[test]
    fn a_pseudo_random_sweep_upholds_both_properties() {
        contain_fuzzed_panics();
        for (target, harness) in TARGETS {
            for i in 0..150u64 {
                let mut rng = Rng::at(0x5eed, i);
                let len = [4, 16, 64, 256][(i % 4) as usize];
                let data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
                let r = std::panic::catch_unwind(|| harness(&data));
                assert!(r.is_ok(), "{target}: input {i} ({data:02x?}) failed");
            }
        }
    }

    #[test]
    fn random_inputs_decode_to_real_batches() {
        contain_fuzzed_panics();
        let mut events = 0;
        for i in 0..40u64 {
            let mut rng = Rng::at(0xba7c, i);
            let data: Vec<u8> = (0..256).map(|_| rng.next() as u8).collect();
            events += determinism_counted(&data);
        }
        assert!(
            events >= 40 * 5,
            "only {events} events decoded from 40 inputs"
        );
    }
}
