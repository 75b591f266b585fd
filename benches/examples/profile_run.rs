//! Run one workload on the speculative processor only, for profilers:
//! `cargo run --release -p spectree-benches --example profile_run -- WORKLOAD EVENTS THREADS [serial]`.

use spectree::Backend;
use spectree_workloads::{AnyWorkload, Params, Workload};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn go<S: Backend>(w: &Workload<S>, threads: usize, serial: bool, adaptive: bool) {
    let t = std::time::Instant::now();
    if serial {
        let p = w.builder().build_serial();
        let run = p.run(w.state.clone(), w.events());
        println!("serial {:?} mug {:x}", t.elapsed(), run.state.mug());
    } else {
        let p = w
            .builder()
            .threads(threads)
            .adaptive(adaptive)
            .build()
            .unwrap();
        let run = p.run(w.state.clone(), w.events());
        let m = &run.metrics;
        println!(
            "speculative {:?} mug {:x} exec {} reexec {} aborts {} direct {} stalls {} widths {}",
            t.elapsed(),
            run.state.mug(),
            m.executions,
            m.reexecutions,
            m.aborts,
            m.direct,
            m.commit_stalls,
            m.width_changes
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let name = args.get(1).map_or("tiny", |s| s.as_str());
    let events = args.get(2).map_or(300_000, |s| s.parse().unwrap());
    let threads = args.get(3).map_or(2, |s| s.parse().unwrap());
    let mode = args.get(4).map_or("", |s| s.as_str());
    let params = Params {
        events,
        ..Params::default()
    };
    match AnyWorkload::build(name, params).unwrap() {
        AnyWorkload::Noun(w) => go(&w, threads, mode == "serial", mode != "fixed"),
        AnyWorkload::Map(w) => go(&w, threads, mode == "serial", mode != "fixed"),
    }
}
