//! Noun and Nock microbenchmarks: the decrement loop (alone, and on two
//! threads sharing one formula), edits of a state two threads share,
//! jam/cue of a 10^6-node noun, and mug of a fresh 10^6-node noun.

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

/// Two threads each run 2,000 decrement loops of 100 iterations on one
/// formula: shared and mortal (every clone of an arm writes a reference
/// count the other core also writes), shared and immortal, or a copy per
/// thread. `one_thread` is the same work for one thread, for scale.
fn shared_formula(c: &mut Criterion) {
    const LOOPS: usize = 2_000;
    let parse = || -> Noun { spectree_noun::nock::DECREMENT.parse().unwrap() };
    let run = |f: &Noun| {
        let formula = Noun::cell(
            Noun::atom(7),
            Noun::cell(Noun::cell(Noun::atom(1), Noun::atom(100)), f.clone()),
        );
        for _ in 0..LOOPS {
            nock(Noun::atom(0), &formula, &Limits::default()).unwrap();
        }
    };
    let two = |a: &Noun, b: &Noun| {
        std::thread::scope(|s| {
            s.spawn(|| run(a));
            s.spawn(|| run(b));
        })
    };
    let mortal = parse();
    let immortal = parse();
    immortal.immortalize();
    let (own_a, own_b) = (parse(), parse());
    let mut g = c.benchmark_group("shared_formula");
    g.sample_size(20);
    g.bench_function("one_thread", |b| b.iter(|| run(&mortal)));
    g.bench_function("two_threads_mortal", |b| b.iter(|| two(&mortal, &mortal)));
    g.bench_function("two_threads_immortal", |b| {
        b.iter(|| two(&immortal, &immortal))
    });
    g.bench_function("two_threads_own_copies", |b| b.iter(|| two(&own_a, &own_b)));
    g.finish();
}

/// Two threads each make 20,000 edited versions of a 128-leaf state (a leaf
/// at depth 7, as an `arvo` event's Nock 10 does): of one shared state,
/// whose top cells both clone along every copied path, or of a copy each.
fn shared_state_edits(c: &mut Criterion) {
    use spectree_noun::{edit, Axis};
    const EDITS: u64 = 20_000;
    let run = |state: &Noun| {
        for i in 0..EDITS {
            let axis = Axis::new(128 + (i * 37) % 128).unwrap();
            let edited = edit(&axis, Noun::atom(i), state).unwrap();
            std::hint::black_box(&edited);
        }
    };
    let shared = balanced_tree(128);
    let (own_a, own_b) = (balanced_tree(128), balanced_tree(128));
    let mut g = c.benchmark_group("shared_state_edits");
    g.sample_size(20);
    g.bench_function("one_thread", |b| b.iter(|| run(&shared)));
    g.bench_function("two_threads_shared", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                s.spawn(|| run(&shared));
                s.spawn(|| run(&shared));
            })
        })
    });
    g.bench_function("two_threads_own_copies", |b| {
        b.iter(|| {
            std::thread::scope(|s| {
                s.spawn(|| run(&own_a));
                s.spawn(|| run(&own_b));
            })
        })
    });
    g.finish();
}

criterion_group!(
    benches,
    decrement,
    serial,
    mug,
    shared_formula,
    shared_state_edits
);
criterion_main!(benches);
