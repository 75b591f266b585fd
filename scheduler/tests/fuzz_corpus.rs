//! Replays every committed fuzz corpus file (`fuzz/corpus/<target>/`) and
//! every saved crash (`fuzz/regressions/<target>/`) through the harnesses
//! of `spectree_scheduler::fuzzing`, on stable Rust, so CI exercises them
//! without nightly or cargo-fuzz. Then a short deterministic sweep of
//! pseudo-random inputs per target.

use std::path::Path;

use spectree_scheduler::fuzzing;
use spectree_scheduler::workload::Rng;

type Harness = fn(&[u8]);

const TARGETS: [(&str, Harness); 4] = [
    ("cue", fuzzing::cue),
    ("nock", fuzzing::nock_run),
    ("determinism", fuzzing::determinism),
    ("tracking", fuzzing::tracking),
];

fn quiet_panics() {
    fuzzing::contain_fuzzed_panics();
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    v.sort();
    v
}

#[test]
fn every_corpus_file_and_saved_crash_replays() {
    quiet_panics();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    for (target, harness) in TARGETS {
        let corpus = files(&root.join("corpus").join(target));
        assert!(!corpus.is_empty(), "no corpus for {target}");
        for path in corpus
            .iter()
            .chain(&files(&root.join("regressions").join(target)))
        {
            let data = std::fs::read(path).unwrap();
            harness(&data);
        }
    }
}

#[test]
fn a_pseudo_random_sweep_upholds_every_property() {
    quiet_panics();
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
    quiet_panics();
    let mut events = 0;
    for i in 0..40u64 {
        let mut rng = Rng::at(0xba7c, i);
        let data: Vec<u8> = (0..256).map(|_| rng.next() as u8).collect();
        events += fuzzing::determinism_counted(&data);
    }
    assert!(
        events >= 40 * 5,
        "only {events} events decoded from 40 inputs"
    );
}
