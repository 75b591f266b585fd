//! Access-tracking microbenchmarks: tracked against untracked Nock on the
//! decrement loop (its length from the event, and from the state), and write extraction and graft on a 10^6-leaf state;
//! `MapState` lookups and updates at 100,000 keys beside a std `HashMap`.

use criterion::{criterion_group, criterion_main, Criterion};
use spectree_benches::{balanced_tree, DECREMENT};
use spectree_noun::nock::{nock, Limits};
use spectree_noun::{Axis, Noun};
use spectree_stm::{execute_nock, graft, MapKey, MapState, NounState, Options, RegionMap, State};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Kernel: decrement the event, keep the state: `[[7 [0 2] DEC] 0 3]`.
fn decrement_kernel() -> Noun {
    format!("[[7 [0 2] {DECREMENT}] 0 3]").parse().unwrap()
}

fn tracking_overhead(c: &mut Criterion) {
    let kernel = decrement_kernel();
    let state = NounState(balanced_tree(1 << 10));
    let regions = RegionMap::depth(4).unwrap();
    let event = Noun::atom(100_000);
    let mut g = c.benchmark_group("stm");
    g.sample_size(20);
    g.bench_function("decrement_1e5_untracked", |b| {
        b.iter(|| {
            let subject = Noun::cell(event.clone(), state.0.clone());
            nock(subject, &kernel, &Limits::default()).unwrap()
        })
    });
    g.bench_function("decrement_1e5_tracked", |b| {
        b.iter(|| {
            execute_nock(
                &kernel,
                &event,
                &state,
                &regions,
                &Options::tracked(Limits::default()),
            )
        })
    });
    // The loop's length read from the state: every pass inspects a value
    // whose provenance is the state.
    let from_state: Noun = format!("[[1 0] 7 [0 3] {DECREMENT}]").parse().unwrap();
    let n = NounState(Noun::atom(100_000));
    g.bench_function("decrement_1e5_state_value_untracked", |b| {
        b.iter(|| {
            let subject = Noun::cell(Noun::atom(0), n.0.clone());
            nock(subject, &from_state, &Limits::default()).unwrap()
        })
    });
    g.bench_function("decrement_1e5_state_value_tracked", |b| {
        b.iter(|| {
            execute_nock(
                &from_state,
                &Noun::atom(0),
                &n,
                &regions,
                &Options::tracked(Limits::default()),
            )
        })
    });
    g.finish();
}

/// A kernel that writes the event at each of `leaves` (state axes).
fn editing_kernel(leaves: &[Axis]) -> Noun {
    let edits = leaves.iter().fold("[0 3]".to_string(), |acc, a| {
        format!("[10 [{a} 0 2] {acc}]")
    });
    format!("[[1 0] {edits}]").parse().unwrap()
}

fn diff_and_graft(c: &mut Criterion) {
    // 2^20 leaves (1,048,576), all at depth 20.
    let state = NounState(balanced_tree(1 << 20));
    let regions = RegionMap::depth(8).unwrap();
    let mut g = c.benchmark_group("stm");
    g.sample_size(20);
    for changed in [1u64, 100] {
        // Spread the changed leaves over the tree.
        let leaves: Vec<Axis> = (0..changed)
            .map(|i| Axis::new((1 << 20) + i * ((1 << 20) / changed)).unwrap())
            .collect();
        let kernel = editing_kernel(&leaves);
        let event = Noun::atom(7);
        g.bench_function(
            format!("execute_and_extract_1e6_leaves_{changed}_changed"),
            |b| {
                b.iter(|| {
                    execute_nock(
                        &kernel,
                        &event,
                        &state,
                        &regions,
                        &Options::tracked(Limits::default()),
                    )
                })
            },
        );
        let run = execute_nock(
            &kernel,
            &event,
            &state,
            &regions,
            &Options::tracked(Limits::default()),
        );
        assert_eq!(run.writes.len() as u64, changed);
        g.bench_function(format!("graft_1e6_leaves_{changed}_changed"), |b| {
            b.iter(|| graft(&state, &run.writes).unwrap())
        });
    }
    g.finish();
}

/// `MapState` at 100,000 keys: a lookup, an update in place (the only
/// owner: the serial processor and direct execution), and a persistent
/// update (a new version beside the old, as a commit under speculation
/// makes), each on a random key; a std `HashMap` update for scale.
fn map_state(c: &mut Criterion) {
    const KEYS: u64 = 100_000;
    let mut map: MapState = (0..KEYS)
        .map(|k| (MapKey(Noun::atom(k)), Noun::atom(k)))
        .collect();
    let keys: Vec<MapKey> = (0..4096u64)
        .map(|i| MapKey(Noun::atom(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS)))
        .collect();
    let mut i = 0usize;
    let mut next = move || {
        i = (i + 1) % 4096;
        i
    };
    let mut g = c.benchmark_group("map_state_100k");
    g.bench_function("get", |b| b.iter(|| map.get(&keys[next()]).unwrap()));
    // A version with buffered writes (as snapshots under speculation are).
    let mut buffered = map.clone();
    for k in 0..120u64 {
        buffered = buffered
            .put(&MapKey(Noun::atom(k * 7)), Noun::atom(1))
            .unwrap();
    }
    g.bench_function("get_with_buffered_writes", |b| {
        b.iter(|| buffered.get(&keys[next()]).unwrap())
    });
    g.bench_function("put_mut_in_place", |b| {
        b.iter(|| map.put_mut(&keys[next()], Noun::atom(7)).unwrap())
    });
    g.bench_function("put_persistent", |b| {
        b.iter(|| {
            let old = map.clone();
            map = old.put(&keys[next()], Noun::atom(9)).unwrap();
            old
        })
    });
    let mut std_map: std::collections::HashMap<u64, u64> = (0..KEYS).map(|k| (k, k)).collect();
    let std_keys: Vec<u64> = (0..4096u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % KEYS)
        .collect();
    let mut j = 0usize;
    g.bench_function("std_hashmap_insert", |b| {
        b.iter(|| {
            j = (j + 1) % 4096;
            std_map.insert(std_keys[j], 7)
        })
    });
    // A persistent hash map's update keeping the old version, for scale.
    let mut imbl_map: imbl::HashMap<u64, u64> = (0..KEYS).map(|k| (k, k)).collect();
    let mut h = 0usize;
    g.bench_function("imbl_hashmap_update_persistent", |b| {
        b.iter(|| {
            h = (h + 1) % 4096;
            let old = imbl_map.clone();
            imbl_map = old.update(std_keys[h], 9);
            old
        })
    });
    g.finish();
}

criterion_group!(benches, tracking_overhead, diff_and_graft, map_state);
criterion_main!(benches);
