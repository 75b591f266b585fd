//! Noun and Nock microbenchmarks: the decrement loop, jam/cue of a 10^6-node
//! noun, and mug of a fresh 10^6-node noun.

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use spectree_benches::{balanced_tree, decrement_formula};
use spectree_noun::nock::{nock, Limits};
use spectree_noun::{cue_bytes, jam_bytes, Noun};

// The same allocator as the `spectree` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn decrement(c: &mut Criterion) {
    let formula = decrement_formula();
    let mut g = c.benchmark_group("nock");
    g.sample_size(10);
    g.bench_function("decrement_1e6", |b| {
        b.iter(|| nock(Noun::atom(1_000_000), &formula, &Limits::default()).unwrap())
    });
    g.finish();
}

fn serial(c: &mut Criterion) {
    // 2^19 leaves: 1,048,575 nodes.
    let tree = balanced_tree(1 << 19);
    let bytes = jam_bytes(&tree);
    let mut g = c.benchmark_group("serial");
    g.sample_size(10);
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("jam_1e6_nodes", |b| b.iter(|| jam_bytes(&tree)));
    g.bench_function("cue_1e6_nodes", |b| b.iter(|| cue_bytes(&bytes).unwrap()));
    g.finish();
}

fn mug(c: &mut Criterion) {
    let mut g = c.benchmark_group("mug");
    g.sample_size(10);
    g.bench_function("fresh_1e6_nodes", |b| {
        b.iter_batched(
            || balanced_tree(1 << 19),
            |t| t.mug(),
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, decrement, serial, mug);
criterion_main!(benches);
