//! Determinism: for every workload, many seeds, thread counts 1, 2, 4 and 8,
//! with and without adaptive speculation, and with events that panic, fail,
//! crash and run out of fuel, the processor's outputs equal the serial
//! oracle's: every outcome, every intermediate state, the final state.

use spectree::{Backend, Committed, States};
use spectree_workloads::{AnyWorkload, Params, Workload, NAMES};

/// Injected panics are contained by the processor, silently.
fn quiet_panics() {}

fn outputs<S: Backend>(
    run: impl FnOnce(&mut dyn FnMut(Committed<S>)) -> S,
) -> (S, Vec<(String, u32)>) {
    let mut seen = Vec::new();
    let state = run(&mut |c: Committed<S>| {
        assert_eq!(c.index as usize, seen.len(), "outputs arrive in log order");
        let state = c.state.expect("every state is asked for");
        seen.push((format!("{:?}", c.outcome), state.mug()));
    });
    (state, seen)
}

fn check<S: Backend>(w: &Workload<S>, threads: usize, adaptive: bool, window: usize) {
    let serial = w.builder().build_serial();
    let (s_state, s_out) = outputs(|sink| {
        serial.stream_with_states(w.state.clone(), w.events(), States::Every(1), sink)
    });
    let mut builder = w.builder().threads(threads).adaptive(adaptive);
    if window > 0 {
        builder = builder.window(window.max(2));
    }
    let processor = builder.build().unwrap();
    let mut metrics = None;
    let (p_state, p_out) = outputs(|sink| {
        let (state, m) =
            processor.stream_with_states(w.state.clone(), w.events(), States::Every(1), sink);
        metrics = Some(m);
        state
    });
    let what = format!(
        "{} seed {} threads {threads} adaptive {adaptive} window {window}",
        w.name, w.params.seed
    );
    assert_eq!(p_out.len(), s_out.len(), "{what}");
    for (i, (p, s)) in p_out.iter().zip(&s_out).enumerate() {
        assert_eq!(p, s, "{what}: event {i}");
    }
    assert!(p_state == s_state, "{what}: final state");
    let m = metrics.unwrap();
    assert_eq!(m.events, w.params.events, "{what}");
    assert_eq!(m.executions, m.events + m.reexecutions, "{what}");
    assert_eq!(
        m.reexecutions,
        m.aborts + m.failed_validations + m.taken,
        "{what}"
    );
}

fn each_workload(params: Params, f: &mut dyn FnMut(&AnyWorkload)) {
    for name in NAMES {
        let mut p = params.clone();
        if name == "kv" {
            p.keys = 64;
            p.hot = 0.2;
        }
        f(&AnyWorkload::build(name, p).unwrap());
    }
}

fn small(seed: u64, faults: f64) -> Params {
    Params {
        events: 250,
        seed,
        work_us: Some(0.5),
        faults,
        ..Params::default()
    }
}

fn check_any(w: &AnyWorkload, threads: usize, adaptive: bool, window: usize) {
    match w {
        AnyWorkload::Noun(w) => {
            let mut w = w.clone();
            w.fuel = 20_000; // keeps out-of-fuel events quick in debug builds
            check(&w, threads, adaptive, window)
        }
        AnyWorkload::Map(w) => check(w, threads, adaptive, window),
    }
}

#[test]
fn every_workload_equals_serial_at_every_thread_count() {
    quiet_panics();
    for seed in 1..=3 {
        each_workload(small(seed, 0.1), &mut |w| {
            for threads in [1, 2, 4, 8] {
                for adaptive in [false, true] {
                    check_any(w, threads, adaptive, 0);
                }
            }
        });
    }
}

#[test]
fn windows_from_tiny_to_wide_equal_serial() {
    quiet_panics();
    each_workload(small(11, 0.05), &mut |w| {
        for window in [2, 3, 64] {
            check_any(w, 4, false, window);
        }
    });
}

#[test]
fn many_seeds_with_heavy_faults_and_contention() {
    quiet_panics();
    for seed in 100..120 {
        let mut p = small(seed, 0.3);
        p.events = 120;
        p.work_us = Some(0.0);
        let w = AnyWorkload::build("arvo", p.clone()).unwrap();
        check_any(&w, 3, false, 0);
        p.hot = 0.9;
        p.keys = 8;
        let w = AnyWorkload::build("kv", p).unwrap();
        check_any(&w, 4, false, 0);
    }
}

#[test]
fn an_empty_log_commits_nothing() {
    let w = match AnyWorkload::build(
        "tiny",
        Params {
            events: 0,
            ..small(1, 0.0)
        },
    )
    .unwrap()
    {
        AnyWorkload::Noun(w) => w,
        AnyWorkload::Map(_) => unreachable!(),
    };
    let p = w.builder().threads(4).build().unwrap();
    let run = p.run(w.state.clone(), w.events());
    assert!(run.outcomes.is_empty());
    assert_eq!(run.state, w.state);
    assert_eq!(run.metrics.executions, 0);
}

#[test]
fn bad_configurations_are_errors() {
    let w = match AnyWorkload::build("tiny", small(1, 0.0)).unwrap() {
        AnyWorkload::Noun(w) => w,
        AnyWorkload::Map(_) => unreachable!(),
    };
    for builder in [
        w.builder().threads(0),
        w.builder().threads(5000),
        w.builder().threads(2).window(1 << 20),
        w.builder().threads(2).window(1),
    ] {
        assert!(builder.build().is_err());
    }
}
