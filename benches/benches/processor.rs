//! The workload matrix under criterion: every workload, serially and
//! speculatively at 1, 2 and all cores. `cargo bench -p spectree-benches
//! --bench processor` (add `-- --quick` for a smoke run). For reports that
//! compare across versions and machines, use `spectree bench`.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use spectree::Backend;
use spectree_workloads::{AnyWorkload, Params, Workload, NAMES};

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

criterion_group!(benches, workloads);
criterion_main!(benches);
