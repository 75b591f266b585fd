//! Replays the committed corpus and saved crashes of the `cue` and `nock`
//! fuzz targets (`fuzz/corpus/<target>/`, `fuzz/regressions/<target>/`)
//! through `spectree_noun::fuzzing` on stable Rust, then a short
//! deterministic sweep of pseudo-random inputs.

use std::path::Path;

use spectree_noun::fuzzing;

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 2] = [("cue", fuzzing::cue), ("nock", fuzzing::nock_run)];

#[test]
fn every_corpus_file_and_saved_crash_replays() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, harness) in TARGETS {
        let (inputs, corpus) = fuzzing::committed_inputs(&root, target);
        assert!(corpus > 0, "no corpus for {target}");
        for path in inputs {
            harness(&std::fs::read(path).unwrap());
        }
    }
}

#[test]
fn a_pseudo_random_sweep_upholds_both_properties() {
    let mut x = 0x5eed_u64;
    for (target, harness) in TARGETS {
        for i in 0..300usize {
            let len = [4, 16, 64, 256][i % 4];
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            let r = std::panic::catch_unwind(|| harness(&data));
            assert!(r.is_ok(), "{target}: input {i} ({data:02x?}) failed");
        }
    }
}
