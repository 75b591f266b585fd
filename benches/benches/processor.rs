//! The workload matrix under criterion: every workload, serially and
//! speculatively at 1, 2 and all cores. `cargo bench -p spectree-benches
//! --bench processor` (add `-- --quick` for a smoke run). For reports that
//! compare across versions and machines, use `spectree bench`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spectree::noun::Axis;
use spectree::{Backend, Event};
use spectree_workloads::{AnyWorkload, NockTouch, Params, Touch, Workload, NAMES};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn events(name: &str) -> u64 {
    match name {
        "tiny" => 20_000,
        "kv" => 4_000,
        _ => 2_000,
    }
}

fn matrix<S: Backend>(c: &mut Criterion, w: &Workload<S>) {
    let mut group = c.benchmark_group(format!("processor/{}", w.name));
    group.throughput(Throughput::Elements(w.params.events));
    group.sample_size(10);
    let serial = w.builder().build_serial();
    group.bench_function("serial", |b| {
        b.iter(|| serial.stream(w.state.clone(), w.events(), |_| {}))
    });
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = vec![1, 2, cores];
    threads.dedup();
    for t in threads {
        let p = w.builder().threads(t).build().expect("config");
        group.bench_with_input(BenchmarkId::new("speculative", t), &t, |b, _| {
            b.iter(|| p.stream(w.state.clone(), w.events(), |_| {}))
        });
    }
    group.finish();
}

fn workloads(c: &mut Criterion) {
    for name in NAMES {
        let params = Params {
            events: events(name),
            ..Params::default()
        };
        match AnyWorkload::build(name, params).expect("built-in workload") {
            AnyWorkload::Noun(w) => matrix(c, &w),
            AnyWorkload::Map(w) => matrix(c, &w),
        }
    }
}

/// The two halves of `arvo` at one thread (direct execution): the same
/// read-modify-write of two subsystem leaves with 20 µs of nominal work,
/// as a Nock event (the work is a decrement loop) and as a Rust event (the
/// work is a spin). The ratio is what a Nock event costs over its Rust
/// equivalent.
fn arvo_event_kinds(c: &mut Criterion) {
    let params = Params {
        events: 1,
        ..Params::default()
    };
    let AnyWorkload::Noun(w) = AnyWorkload::build("arvo", params).expect("arvo") else {
        unreachable!("arvo has a noun state")
    };
    let serial = w.builder().build_serial();
    // The first leaf of subsystems 0 and 5 (leaves are at depth 7, eight
    // per subsystem), as the workload picks them.
    let axes: Vec<Axis> = [0u64, 5]
        .iter()
        .map(|&s| Axis::new((1 << 7) + s * 8).expect("nonzero"))
        .collect();
    const N: u64 = 500;
    let mut g = c.benchmark_group("arvo_event_kinds");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10);
    g.bench_function("nock_touch", |b| {
        let event = Event::nock(NockTouch::rmw(&axes, 20.0).formula());
        b.iter(|| serial.stream(w.state.clone(), (0..N).map(|_| event.clone()), |_| {}))
    });
    g.bench_function("rust_touch", |b| {
        b.iter(|| {
            let events = (0..N).map(|i| Event::rust(Touch::rmw(axes.clone(), 20.0, i)));
            serial.stream(w.state.clone(), events, |_| {})
        })
    });
    g.finish();
}

criterion_group!(benches, workloads, arvo_event_kinds);
criterion_main!(benches);
