//! Property tests for nouns: serialisation round trips, bit-exact jam
//! against a direct transcription of Hoon's `++jam`, tree edits, and mug
//! stability.

use num_bigint::BigUint;
use proptest::prelude::*;
use spectree_noun::{cue, edit, jam, parse, slot, Atom, Axis, Noun};

fn atom_strategy() -> impl Strategy<Value = Noun> {
    prop_oneof![
        4 => (0u64..4).prop_map(Noun::atom),
        3 => any::<u64>().prop_map(Noun::atom),
        1 => proptest::collection::vec(any::<u8>(), 9..24)
            .prop_map(|b| Noun::Atom(Atom::from_bytes_le(&b))),
    ]
}

fn noun_strategy() -> impl Strategy<Value = Noun> {
    atom_strategy().prop_recursive(8, 64, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(h, t)| Noun::cell(h, t)),
            // Repeated subtrees exercise back-references.
            inner.prop_map(|x| Noun::cell(x.clone(), x)),
        ]
    })
}

/// Hoon's `++jam`, transcribed as directly as possible: bits as a vector of
/// booleans, the map as a list searched linearly by noun equality.
fn reference_jam(noun: &Noun) -> Atom {
    fn mat(a: &Atom, out: &mut Vec<bool>) {
        if a.is_zero() {
            out.push(true);
            return;
        }
        let b = a.bit_len();
        let c = 64 - u64::from(b.leading_zeros());
        out.extend(std::iter::repeat_n(false, c as usize));
        out.push(true);
        for i in 0..c - 1 {
            out.push((b >> i) & 1 == 1);
        }
        for i in 0..b {
            out.push(a.bit(i));
        }
    }
    fn go(n: &Noun, out: &mut Vec<bool>, seen: &mut Vec<(Noun, u64)>) {
        let pos = out.len() as u64;
        if let Some((_, bak)) = seen.iter().find(|(m, _)| m == n) {
            let bak = *bak;
            match n {
                Noun::Atom(a) if a.bit_len() <= Atom::new(bak).bit_len() => {
                    out.push(false);
                    mat(a, out);
                }
                _ => {
                    out.push(true);
                    out.push(true);
                    mat(&Atom::new(bak), out);
                }
            }
            return;
        }
        seen.push((n.clone(), pos));
        match n {
            Noun::Atom(a) => {
                out.push(false);
                mat(a, out);
            }
            Noun::Cell(c) => {
                out.push(true);
                out.push(false);
                go(c.head(), out, seen);
                go(c.tail(), out, seen);
            }
        }
    }
    let mut bits = Vec::new();
    go(noun, &mut bits, &mut Vec::new());
    let mut value = BigUint::default();
    for (i, b) in bits.iter().enumerate() {
        if *b {
            value.set_bit(i as u64, true);
        }
    }
    Atom::from_biguint(value)
}

/// Rebuild a noun cell by cell, so it shares no allocation with the original.
fn rebuild(n: &Noun) -> Noun {
    parse(&n.to_string()).unwrap()
}

/// Every axis that exists in `n` (up to a bound).
fn axes(n: &Noun) -> Vec<Axis> {
    let mut out = Vec::new();
    let mut stack = vec![(Axis::ROOT, n)];
    while let Some((a, m)) = stack.pop() {
        if out.len() > 200 {
            break;
        }
        if let Noun::Cell(c) = m {
            stack.push((a.head(), c.head()));
            stack.push((a.tail(), c.tail()));
        }
        out.push(a);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn cue_inverts_jam(n in noun_strategy()) {
        let j = jam(&n);
        prop_assert_eq!(cue(&j).unwrap(), n);
    }

    #[test]
    fn jam_is_bit_identical_to_hoon(n in noun_strategy()) {
        let j = jam(&n);
        prop_assert_eq!(&j, &reference_jam(&n));
        // Deterministic, and independent of how the noun is shared in memory.
        prop_assert_eq!(&j, &jam(&rebuild(&n)));
    }

    #[test]
    fn mug_and_equality_ignore_construction(n in noun_strategy()) {
        let m = rebuild(&n);
        prop_assert_eq!(&m, &n);
        prop_assert_eq!(m.mug(), n.mug());
        prop_assert_eq!(m.fingerprint(), n.fingerprint());
        let c = cue(&jam(&n)).unwrap();
        prop_assert_eq!(c.mug(), n.mug());
    }

    #[test]
    fn slot_reads_what_edit_wrote(n in noun_strategy(), v in noun_strategy(), pick in any::<prop::sample::Index>()) {
        let all = axes(&n);
        let a = pick.get(&all);
        let e = edit(a, v.clone(), &n).unwrap();
        prop_assert_eq!(slot(a, &e).unwrap(), &v);
        // Every axis that does not overlap `a` is untouched.
        for b in &all {
            if !a.overlaps(b) {
                prop_assert_eq!(slot(b, &e).unwrap(), slot(b, &n).unwrap());
            }
        }
    }

    #[test]
    fn text_round_trips(n in noun_strategy()) {
        prop_assert_eq!(parse(&n.to_string()).unwrap(), n);
    }

    #[test]
    fn cue_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(n) = spectree_noun::cue_bytes(&bytes) {
            prop_assert_eq!(cue(&jam(&n)).unwrap(), n);
        }
    }

    #[test]
    fn parse_never_panics(text in "[\\[\\] 0-9a-z%.'x\\\\]{0,40}") {
        let _ = parse(&text);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Long lists of repeated atoms of many widths push positions past 2^16
    /// bits, so atoms cross the width threshold at which Hoon's jam switches
    /// from inline to back-reference; the output must still match Hoon's.
    #[test]
    fn jam_matches_hoon_at_large_positions(picks in proptest::collection::vec((1u32..40, 0u64..4), 2000..4000)) {
        let items: Vec<Noun> = picks.iter().map(|&(w, k)| Noun::atom((1u64 << w) | k)).collect();
        let n = Noun::list(items);
        prop_assert_eq!(jam(&n), reference_jam(&n));
    }
}

/// An immortal noun behaves as any other: equal, printable, and edited by
/// copying the path (never in place, as it is shared for good), with the
/// original unchanged; nouns built on it stay mortal and are freed.
#[test]
fn immortal_nouns_behave_as_mortal_ones() {
    use spectree_noun::{edit_mut, Axis};
    let n: Noun = "[[1 2] [3 4] 5]".parse().unwrap();
    let copy: Noun = "[[1 2] [3 4] 5]".parse().unwrap();
    assert_eq!(n.immortalize(), 4);
    assert!(n.is_immortal());
    assert_eq!(n, copy);
    assert_eq!(n.mug(), copy.mug());
    let mut edited = n.clone();
    edit_mut(&Axis::new(6).unwrap(), Noun::atom(9), &mut edited).unwrap();
    assert_eq!(edited.to_string(), "[[1 2] 9 5]");
    assert!(!edited.is_immortal(), "the copied path is mortal");
    assert_eq!(
        n.to_string(),
        "[[1 2] [3 4] 5]",
        "the immortal original is unchanged"
    );
    let bigger = Noun::cell(n.clone(), Noun::atom(0));
    assert!(!bigger.is_immortal());
    assert_eq!(
        bigger.immortalize(),
        1,
        "only the new cell: the rest already is"
    );
    assert!(!Noun::atom(3).is_immortal());
}
