//! The properties the `cue` and `nock` fuzz targets check, as plain
//! functions of bytes: each returns for every input that upholds its
//! property and panics (saying what differed) when it fails. The committed
//! corpus replays through them on stable Rust (`tests/fuzz_corpus.rs`).

use crate::nock::{nock, Limits};
use crate::{cue_bytes, jam_bytes, Noun};

/// `cue`: arbitrary bytes never panic; what decodes re-encodes to bytes
/// that decode to the same noun.
pub fn cue(data: &[u8]) {
    if let Ok(noun) = cue_bytes(data) {
        let again = cue_bytes(&jam_bytes(&noun)).expect("jam output always decodes");
        assert_eq!(again, noun, "jam then cue changed the noun");
    }
}

/// `nock`: an arbitrary subject and formula (jammed, split by the first
/// byte) with 10,000 fuel and a 16 MiB memory budget never panic, overflow
/// the stack or hang.
pub fn nock_run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(usize::from(first).min(rest.len()));
    let subject = cue_bytes(a).unwrap_or(Noun::ZERO);
    let Ok(formula) = cue_bytes(b) else {
        return;
    };
    let _ = nock(
        subject,
        &formula,
        &Limits::fuel(10_000).with_memory(16 << 20),
    );
}

/// The committed inputs of fuzz target `target` under the fuzz directory
/// `root`: its corpus (`corpus/<target>/`) then its saved crashes
/// (`regressions/<target>/`), each sorted; and the corpus's size (so a
/// test can insist it is not empty).
pub fn committed_inputs(root: &std::path::Path, target: &str) -> (Vec<std::path::PathBuf>, usize) {
    let files = |dir: std::path::PathBuf| {
        let mut v: Vec<_> = std::fs::read_dir(dir)
            .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        v.sort();
        v
    };
    let mut all = files(root.join("corpus").join(target));
    let corpus = all.len();
    all.extend(files(root.join("regressions").join(target)));
    (all, corpus)
}
