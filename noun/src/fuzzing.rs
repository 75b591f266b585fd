//! The properties the `cue` and `nock` fuzz targets check, as plain
//! functions of bytes: each returns for every input that upholds its
//! property and panics (saying what differed) when it fails. The committed
//! corpus replays through them on stable Rust (`tests/fuzz_corpus.rs`).

use crate::nock::{run_with_depth, Hook, Limits, NoHook, NockError, Traced, MAX_DEPTH};
use crate::{cue_bytes, jam_bytes, Atom, Noun};

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
/// the stack or hang; and the fast path and the explicit-stack machine
/// alone agree on the product or error, the steps spent and every call of
/// a recording hook, in order.
pub fn nock_run(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(usize::from(first).min(rest.len()));
    let subject = cue_bytes(a).unwrap_or(Noun::ZERO);
    let Ok(formula) = cue_bytes(b) else {
        return;
    };
    let limits = Limits::fuel(10_000).with_memory(16 << 20);
    assert_evaluators_agree(&subject, &formula, &limits, "");
}

/// Run `formula` on `subject` under `limits` on the fast path and on the
/// explicit-stack machine alone; panic (naming `context`) unless both give
/// the same product or error, steps, product tag and every hook call. Runs
/// untracked (the fast path is then the compiled evaluator), then three
/// times with hooks: with a hook that sees everything, and with one that treats
/// constants as inert ([`Hook::is_inert`]), the subject tagged live and
/// inert, so the fast path's untracked evaluation of inert subjects must
/// observe exactly what the machine, which never skips the hook, does.
pub(crate) fn assert_evaluators_agree(
    subject: &Noun,
    formula: &Noun,
    limits: &Limits,
    context: &str,
) {
    // Untracked: the compiled evaluator against the machine.
    let compiled = run_with_depth(subject.clone(), (), formula, limits, &mut NoHook, MAX_DEPTH);
    let machine = run_with_depth(subject.clone(), (), formula, limits, &mut NoHook, 0);
    let untracked = |r: &Result<Traced<()>, NockError>| match r {
        Ok(t) => Ok((t.product.mug(), t.steps)),
        Err(e) => Err(e.clone()),
    };
    assert_eq!(
        untracked(&compiled),
        untracked(&machine),
        "the compiled evaluator and the machine differ {context}"
    );
    if let (Ok(a), Ok(b)) = (&compiled, &machine) {
        assert!(
            a.product == b.product,
            "the untracked products differ {context}"
        );
    }
    for (inert, tag) in [(false, 5), (true, 5), (true, HashRecorder::INERT)] {
        let (mut fast_log, mut machine_log) = (HashRecorder::new(inert), HashRecorder::new(inert));
        let fast = run_with_depth(
            subject.clone(),
            tag,
            formula,
            limits,
            &mut fast_log,
            MAX_DEPTH,
        );
        let machine = run_with_depth(subject.clone(), tag, formula, limits, &mut machine_log, 0);
        let context = format!("{context} (inert constants: {inert}, subject tag {tag})");
        // Products by their mug: printing a product built by doubling could
        // take forever.
        let summary = |r: &Result<Traced<u64>, NockError>| match r {
            Ok(t) => Ok((t.product.mug(), t.tag, t.steps)),
            Err(e) => Err(e.clone()),
        };
        assert_eq!(
            summary(&fast),
            summary(&machine),
            "the fast path and the machine differ {context}"
        );
        if let (Ok(a), Ok(b)) = (&fast, &machine) {
            assert!(a.product == b.product, "the products differ {context}");
        }
        if fast_log.log != machine_log.log {
            let at = fast_log
                .log
                .iter()
                .zip(&machine_log.log)
                .position(|(a, b)| a != b);
            panic!(
                "the hook saw different things {context}: {} and {} calls, first difference at {at:?}",
                fast_log.log.len(),
                machine_log.log.len()
            );
        }
    }
}

/// A hook that logs every call it gets, in order, with what it was given
/// and what it returned; its tags hash how each value was derived, so they
/// stay one word however deeply a computation nests them. Two runs made
/// the same hook calls exactly when their logs are equal.
///
/// With `inert` set it models the tracker's fresh values: constants are
/// tagged [`INERT`](Self::INERT), which [`Hook::is_inert`] reports; what
/// is derived from inert tags alone is inert, and calls given only inert
/// tags are not logged.
#[derive(Default)]
pub(crate) struct HashRecorder {
    /// (kind, hash) per call: failed lookup (0), inspection (1), cell test
    /// (2), lookup (3), cons (4), edit (5), constant (6).
    pub(crate) log: Vec<(u8, u64)>,
    inert: bool,
}

fn mix(parts: &[u64]) -> u64 {
    parts.iter().fold(0xcbf2_9ce4_8422_2325, |acc, p| {
        (acc ^ p).wrapping_mul(0x0100_0000_01b3)
    })
}

fn axis_key(a: &Atom) -> u64 {
    a.as_u64()
        .unwrap_or_else(|| u64::from(Noun::Atom(a.clone()).mug()))
}

impl HashRecorder {
    /// The inert tag, when `inert` is set.
    pub(crate) const INERT: u64 = 0;

    pub(crate) fn new(inert: bool) -> Self {
        HashRecorder {
            log: Vec::new(),
            inert,
        }
    }

    fn derived(&mut self, kind: u8, tag: u64) -> u64 {
        // A derived tag is never the inert one by accident.
        let tag = if self.inert && tag == Self::INERT {
            1
        } else {
            tag
        };
        self.log.push((kind, tag));
        tag
    }

    fn skips(&self, tags: &[u64]) -> bool {
        self.inert && tags.iter().all(|&t| t == Self::INERT)
    }
}

impl Hook for HashRecorder {
    type Tag = u64;
    fn constant(&mut self) -> u64 {
        if self.inert {
            return Self::INERT;
        }
        let n = self.log.len() as u64;
        self.derived(6, mix(&[6, n]))
    }
    fn slot(&mut self, of: &u64, axis: &Atom) -> u64 {
        if self.skips(&[*of]) {
            return Self::INERT;
        }
        self.derived(3, mix(&[3, *of, axis_key(axis)]))
    }
    fn cons(&mut self, head: u64, tail: u64) -> u64 {
        if self.skips(&[head, tail]) {
            return Self::INERT;
        }
        self.derived(4, mix(&[4, head, tail]))
    }
    fn edit(&mut self, target: u64, axis: &Atom, value: u64) -> u64 {
        if self.skips(&[target, value]) {
            return Self::INERT;
        }
        self.derived(5, mix(&[5, target, axis_key(axis), value]))
    }
    fn failed(&mut self, of: &u64, axis: &Atom) {
        if !self.skips(&[*of]) {
            self.log.push((0, mix(&[*of, axis_key(axis)])));
        }
    }
    fn inspect(&mut self, noun: &Noun, tag: &u64) {
        if !self.skips(&[*tag]) {
            self.log.push((1, mix(&[*tag, u64::from(noun.mug())])));
        }
    }
    fn inspect_cell(&mut self, noun: &Noun, tag: &u64) {
        if !self.skips(&[*tag]) {
            self.log.push((
                2,
                mix(&[*tag, u64::from(noun.mug()), u64::from(noun.is_cell())]),
            ));
        }
    }
    fn is_inert(&self, tag: &u64) -> bool {
        self.skips(&[*tag])
    }
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
