//! A storm of asynchronous computations with random timeouts, crashes and
//! fuel exhaustion: every request gets exactly one outcome event, in the
//! log; replaying the log (which never reruns a computation) gives the
//! live run's final state, in parallel and serially.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use spectree::noun::{Axis, Noun};
use spectree::stm::{NounState, RegionMap};
use spectree::{Event, Processor};
use spectree_log::{
    async_tag, replay, run_with_computations, Computations, EventLog, LogPolicy, Request,
};
use spectree_workloads::Rng;

const DEC: &str = spectree::noun::nock::DECREMENT;

fn cord(s: &str) -> Noun {
    let mut b = [0u8; 8];
    b[..s.len()].copy_from_slice(s.as_bytes());
    Noun::atom(u64::from_le_bytes(b))
}

/// Kernel on [event state]: `[%async id result]` conses `[id result]` onto
/// the state; anything else is echoed as the effects, state unchanged.
fn kernel() -> Noun {
    let k = format!(
        "[6 [5 [1 {}] [0 4]] [[1 0] [0 5] 0 3] [[0 2] 0 3]]",
        async_tag().as_atom().unwrap().as_u64().unwrap()
    );
    k.parse().unwrap()
}

/// A two-thread processor over a one-level state with the test kernel.
fn processor() -> Processor<NounState> {
    Processor::builder(RegionMap::depth(1).unwrap())
        .kernel(kernel())
        .threads(2)
        .build()
        .unwrap()
}

/// Effects `[%req subject formula fuel timeout-ms]` ask for a computation.
fn requests(index: u64, effects: &Noun) -> Option<Request> {
    let Noun::Cell(c) = effects else { return None };
    if c.head() != &cord("req") {
        return None;
    }
    // [subject formula fuel timeout] as a right-nested tuple under the tag.
    let t = c.tail();
    let get = |a: u64| {
        spectree::noun::slot(&Axis::new(a).unwrap(), t)
            .ok()
            .cloned()
    };
    let as_u64 = |n: Noun| n.as_atom().and_then(|a| a.as_u64());
    Some(Request {
        id: index,
        subject: get(2)?,
        formula: get(6)?,
        fuel: as_u64(get(14)?)?,
        memory: spectree::noun::nock::DEFAULT_MEMORY,
        timeout: Duration::from_millis(as_u64(get(15)?)?),
    })
}

fn storm(n: u64) -> Vec<Noun> {
    let dec: Noun = DEC.parse().unwrap();
    (0..n)
        .map(|i| {
            let mut rng = Rng::at(42, i);
            let (subject, formula, fuel, ms) = match rng.below(6) {
                0 => (Noun::atom(i), "[4 0 1]".parse().unwrap(), 100, 1000),
                1 => (Noun::atom(i), "[0 0]".parse().unwrap(), 100, 1000),
                2 => (Noun::atom(1_000_000), dec.clone(), 500, 1000),
                3 => (
                    Noun::atom(1_000_000_000),
                    dec.clone(),
                    u64::MAX,
                    1 + rng.below(20),
                ),
                4 => (Noun::atom(50), dec.clone(), 100_000, 1000),
                _ => return Noun::cell(cord("tick"), Noun::atom(i)),
            };
            let tuple = [
                cord("req"),
                subject,
                formula,
                Noun::atom(fuel),
                Noun::atom(ms),
            ];
            Noun::tuple(tuple.to_vec())
        })
        .collect()
}

#[test]
fn a_storm_of_computations_settles_once_each_and_replays_exactly() {
    let dir = std::env::temp_dir().join(format!("spectree-offpath-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = EventLog::create(&dir, "offpath test", &Noun::ZERO).unwrap();
    let processor = processor();
    let events = storm(200);
    let mut computations = Computations {
        requests,
        outcome: |n: Noun| (n.clone(), Event::Nock(n)),
        concurrency: 3,
        by_reference: false,
        shutdown: None,
    };
    let (live, metrics) = run_with_computations(
        &processor,
        &log,
        NounState(Noun::ZERO),
        events.iter().map(|e| (e.clone(), Event::Nock(e.clone()))),
        LogPolicy {
            group: 16,
            snapshot_every: 50,
        },
        &mut computations,
        |_| {},
    )
    .unwrap();
    assert_eq!(metrics.events, log.len());
    // Exactly one outcome event per request (ids are log positions:
    // outcome events interleave with the submitted ones).
    let logged = log.read(0, log.len()).unwrap();
    let asked: Vec<u64> = logged
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Noun::Cell(c) if c.head() == &cord("req")))
        .map(|(i, _)| i as u64)
        .collect();
    assert_eq!(
        asked.len(),
        events
            .iter()
            .filter(|e| matches!(e, Noun::Cell(c) if c.head() == &cord("req")))
            .count()
    );
    let mut outcomes: BTreeMap<u64, usize> = BTreeMap::new();
    let mut kinds = [0usize; 6];
    for e in &logged {
        if let Noun::Cell(c) = e {
            if c.head() == &async_tag() {
                let at = |a: u64| spectree::noun::slot(&Axis::new(a).unwrap(), c.tail()).unwrap();
                *outcomes
                    .entry(at(2).as_atom().unwrap().as_u64().unwrap())
                    .or_default() += 1;
                kinds[at(6).as_atom().unwrap().as_u64().unwrap() as usize] += 1;
            }
        }
    }
    // Products, crashes, fuel exhaustion and timeouts all happened.
    assert!(kinds[..4].iter().all(|&k| k > 0), "outcome kinds {kinds:?}");
    assert_eq!(outcomes.keys().copied().collect::<Vec<_>>(), asked);
    assert!(
        outcomes.values().all(|&n| n == 1),
        "a request settled twice"
    );
    // Replay never reruns computations: it reads their outcomes.
    let r = replay(&processor, &log, |n| {
        Ok::<_, std::convert::Infallible>(Event::Nock(n.clone()))
    })
    .unwrap();
    assert_eq!(r.state, live);
    let s = processor
        .serial()
        .run(NounState(Noun::ZERO), logged.into_iter().map(Event::nock));
    assert_eq!(s.state, live);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn shutdown_cancels_outstanding_computations_and_records_them() {
    let dir = std::env::temp_dir().join(format!("spectree-offpath-stop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = EventLog::create(&dir, "offpath test", &Noun::ZERO).unwrap();
    let processor = processor();
    let dec: Noun = DEC.parse().unwrap();
    // Ten computations that would run for a minute each.
    let events: Vec<Noun> = (0..10u64)
        .map(|_| {
            let items = [
                cord("req"),
                Noun::atom(1u64 << 60),
                dec.clone(),
                Noun::atom(u64::MAX),
                Noun::atom(60_000),
            ];
            Noun::tuple(items.to_vec())
        })
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let trigger = stop.clone();
    let timer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(150));
        trigger.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let mut computations = Computations {
        requests,
        outcome: |n: Noun| (n.clone(), Event::Nock(n)),
        concurrency: 2,
        by_reference: false,
        shutdown: Some(stop),
    };
    let started = std::time::Instant::now();
    let (live, _) = run_with_computations(
        &processor,
        &log,
        NounState(Noun::ZERO),
        events.iter().map(|e| (e.clone(), Event::Nock(e.clone()))),
        LogPolicy::default(),
        &mut computations,
        |_| {},
    )
    .unwrap();
    timer.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "shutdown waited for computations"
    );
    let logged = log.read(0, log.len()).unwrap();
    let cancelled = logged
        .iter()
        .filter(|e| {
            matches!(e, Noun::Cell(c) if c.head() == &async_tag()
            && spectree::noun::slot(&Axis::new(6).unwrap(), c.tail()).unwrap() == &Noun::atom(4))
        })
        .count();
    assert_eq!(
        cancelled, 10,
        "every outstanding computation is recorded as cancelled"
    );
    let r = replay(&processor, &log, |n| {
        Ok::<_, std::convert::Infallible>(Event::Nock(n.clone()))
    })
    .unwrap();
    assert_eq!(r.state, live);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_panicking_sink_ends_the_run_instead_of_hanging() {
    let dir = std::env::temp_dir().join(format!("spectree-sink-panic-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = EventLog::create(&dir, "sink panic", &Noun::ZERO).unwrap();
    let processor = processor();
    let (done, finished) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(|| {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                spectree_log::run_logged(
                    &processor,
                    &log,
                    NounState(Noun::ZERO),
                    (0..100u64).map(|n| (n.into(), Event::nock(n.into()))),
                    LogPolicy {
                        group: 8,
                        snapshot_every: 1,
                    },
                    |c| assert!(c.index < 50, "the sink gives up"),
                )
            }));
            done.send(r.is_err()).unwrap();
        });
        assert_eq!(
            finished.recv_timeout(Duration::from_secs(60)),
            Ok(true),
            "the sink's panic came back"
        );
    });
    std::fs::remove_dir_all(&dir).ok();
}

/// Kernel on [event state]: `[%req x]` answers `[%req state]` (asking for
/// a computation over the whole state); any other `[tag payload]` conses
/// its payload onto the state, so outcome events `[%async id result]` add
/// `[id result]`.
fn copying_kernel() -> Noun {
    let req = cord("req").as_atom().unwrap().as_u64().unwrap();
    format!("[6 [5 [1 {req}] [0 4]] [[[1 {req}] 0 3] 0 3] [[1 0] [0 5] 0 3]]")
        .parse()
        .unwrap()
}

/// `[%req state]` asks for the state's copy (`[0 1]`), or every third
/// time for a crash (`[0 0]`).
fn copy_requests(index: u64, effects: &Noun) -> Option<Request> {
    let Noun::Cell(c) = effects else { return None };
    if c.head() != &cord("req") {
        return None;
    }
    let formula = if index % 3 == 1 { "[0 0]" } else { "[0 1]" };
    Some(Request {
        id: index,
        subject: c.tail().clone(),
        formula: formula.parse().unwrap(),
        fuel: 1_000_000,
        memory: spectree::noun::nock::DEFAULT_MEMORY,
        timeout: Duration::from_secs(60),
    })
}

fn copying_events(n: u64) -> Vec<Noun> {
    (0..n)
        .map(|i| {
            let tag = if i % 10 == 9 { "req" } else { "grow" };
            Noun::cell(cord(tag), Noun::atom(i * 1_000_003))
        })
        .collect()
}

/// A logged run of `events` with outcomes logged by reference or whole:
/// (final state, log size in bytes of its records).
fn copying_run(dir: &std::path::Path, events: &[Noun], by_reference: bool) -> (NounState, usize) {
    let _ = std::fs::remove_dir_all(dir);
    let log = EventLog::create(dir, "copying test", &Noun::ZERO).unwrap();
    let processor = Processor::builder(RegionMap::depth(1).unwrap())
        .kernel(copying_kernel())
        .threads(2)
        .build()
        .unwrap();
    let (live, _) = run_with_computations(
        &processor,
        &log,
        NounState(Noun::ZERO),
        events.iter().map(|e| (e.clone(), Event::Nock(e.clone()))),
        LogPolicy {
            group: 32,
            snapshot_every: 0,
        },
        &mut Computations {
            requests: copy_requests,
            outcome: |n: Noun| (n.clone(), Event::Nock(n)),
            concurrency: 2,
            by_reference,
            shutdown: None,
        },
        |_| {},
    )
    .unwrap();
    let bytes = log
        .read(0, log.len())
        .unwrap()
        .iter()
        .map(|e| spectree::noun::jam_bytes(e).len())
        .sum();
    (live, bytes)
}

#[test]
fn outcomes_by_reference_are_recomputed_on_replay_and_save_the_log_their_size() {
    use spectree_log::{replay_with_computations, LoggedError, Unresolved};
    let base = std::env::temp_dir().join(format!("spectree-byref-{}", std::process::id()));
    let events = copying_events(400);
    let processor = Processor::<NounState>::builder(RegionMap::depth(1).unwrap())
        .kernel(copying_kernel())
        .threads(2)
        .build()
        .unwrap();
    let decode = |n: &Noun| Ok::<_, std::convert::Infallible>(Event::Nock(n.clone()));
    let (whole_state, whole_bytes) = copying_run(&base.join("whole"), &events, false);
    let (ref_state, ref_bytes) = copying_run(&base.join("ref"), &events, true);
    // Whole outcomes carry copies of the state; references a mug.
    assert!(
        ref_bytes * 4 < whole_bytes,
        "by reference {ref_bytes} bytes, whole {whole_bytes}"
    );
    let log = EventLog::open_read_only(&base.join("whole")).unwrap();
    let t = std::time::Instant::now();
    assert_eq!(replay(&processor, &log, decode).unwrap().state, whole_state);
    let whole_secs = t.elapsed().as_secs_f64();
    drop(log);
    let log = EventLog::open_read_only(&base.join("ref")).unwrap();
    let t = std::time::Instant::now();
    let again = replay_with_computations(&processor, &log, decode, copy_requests).unwrap();
    let ref_secs = t.elapsed().as_secs_f64();
    assert_eq!(
        again.state, ref_state,
        "recomputed outcomes reach the live state"
    );
    // Figures for docs/benchmarks.md (not asserted: timing).
    eprintln!(
        "log records: whole {whole_bytes} bytes, by reference {ref_bytes}; \
         replay: whole {:.1} ms, by reference {:.1} ms",
        whole_secs * 1e3,
        ref_secs * 1e3
    );
    let logged = log.read(0, log.len()).unwrap();
    drop(log);
    // Products and crashes were both logged by reference.
    let refs: Vec<&Noun> = logged
        .iter()
        .filter(|e| matches!(e, Noun::Cell(c) if c.head() == &spectree_log::reference_tag()))
        .collect();
    assert_eq!(refs.len(), 40);
    // Tamper: a product's reference now claims a crash.
    let product = logged
        .iter()
        .position(|e| {
            matches!(e, Noun::Cell(c) if c.head() == &spectree_log::reference_tag()
                && spectree::noun::slot(&Axis::new(14).unwrap(), c.tail()).unwrap() == &Noun::ZERO)
        })
        .unwrap();
    let mut tampered = logged.clone();
    let Noun::Cell(c) = &logged[product] else {
        unreachable!()
    };
    let at = |a: u64| {
        spectree::noun::slot(&Axis::new(a).unwrap(), c.tail())
            .unwrap()
            .clone()
    };
    tampered[product] = Noun::tuple(vec![
        spectree_log::reference_tag(),
        at(2),
        at(6),
        Noun::atom(1),
        Noun::ZERO,
    ]);
    let dir = base.join("tampered");
    let log = EventLog::create(&dir, "copying test", &Noun::ZERO).unwrap();
    log.append(&tampered).unwrap();
    let err = replay_with_computations(&processor, &log, decode, copy_requests).unwrap_err();
    assert!(
        matches!(
            &err,
            LoggedError::Reference { index, why: Unresolved::Differs { .. }, .. }
                if *index == product as u64
        ),
        "{err}"
    );
    assert!(err.to_string().contains("a crash"), "{err}");
    drop(log);
    std::fs::remove_dir_all(&base).ok();
}

/// Every request has id 7, and earlier requests run longer (decrements
/// of shrinking atoms): outcomes come back out of order under one id.
fn same_id_requests(index: u64, effects: &Noun) -> Option<Request> {
    let Noun::Cell(c) = effects else { return None };
    if c.head() != &cord("req") {
        return None;
    }
    Some(Request {
        id: 7,
        subject: Noun::atom(40_000u64.saturating_sub(index * 90) + 10),
        formula: DEC.parse().unwrap(),
        fuel: u64::MAX,
        memory: spectree::noun::nock::DEFAULT_MEMORY,
        timeout: Duration::from_secs(60),
    })
}

#[test]
fn references_survive_repeated_ids_and_snapshots_between_request_and_outcome() {
    use spectree_log::replay_with_computations;
    let dir = std::env::temp_dir().join(format!("spectree-byref-ids-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let log = EventLog::create(&dir, "copying test", &Noun::ZERO).unwrap();
    let processor = Processor::<NounState>::builder(RegionMap::depth(1).unwrap())
        .kernel(copying_kernel())
        .threads(2)
        .build()
        .unwrap();
    let (live, _) = run_with_computations(
        &processor,
        &log,
        NounState(Noun::ZERO),
        copying_events(400)
            .into_iter()
            .map(|e| (e.clone(), Event::Nock(e))),
        LogPolicy {
            group: 8,
            snapshot_every: 16,
        },
        &mut Computations {
            requests: same_id_requests,
            outcome: |n: Noun| (n.clone(), Event::Nock(n)),
            concurrency: 3,
            by_reference: true,
            shutdown: None,
        },
        |_| {},
    )
    .unwrap();
    // References point back across snapshots (every 16 events).
    let logged = log.read(0, log.len()).unwrap();
    let mut spans = Vec::new();
    for (i, e) in logged.iter().enumerate() {
        if let Noun::Cell(c) = e {
            if c.head() == &spectree_log::reference_tag() {
                let asked = spectree::noun::slot(&Axis::new(2).unwrap(), c.tail())
                    .unwrap()
                    .as_atom()
                    .unwrap()
                    .as_u64()
                    .unwrap();
                spans.push(i as u64 - asked);
            }
        }
    }
    assert_eq!(spans.len(), 40);
    assert!(
        spans.iter().any(|&s| s > 32),
        "no outcome came back across a snapshot: {spans:?}"
    );
    drop(log);
    let log = EventLog::open_read_only(&dir).unwrap();
    let decode = |n: &Noun| Ok::<_, std::convert::Infallible>(Event::Nock(n.clone()));
    let again = replay_with_computations(&processor, &log, decode, same_id_requests).unwrap();
    assert_eq!(again.state, live);
    drop(log);
    std::fs::remove_dir_all(&dir).ok();
}
