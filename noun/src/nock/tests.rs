use super::*;
use crate::noun::tests::deep_list;

fn n(s: &str) -> Noun {
    s.parse().unwrap()
}

fn run(subject: &str, formula: &str) -> Result<Noun, NockError> {
    nock(n(subject), &n(formula), &Limits::fuel(10_000_000))
}

fn ok(subject: &str, formula: &str) -> String {
    run(subject, formula).unwrap().to_string()
}

fn crashed(subject: &str, formula: &str) -> Crash {
    match run(subject, formula) {
        Err(NockError::Crash(c)) => c,
        other => panic!("expected a crash, got {other:?}"),
    }
}

const DEC: &str = super::DECREMENT;

/// fib(n): a core with payload `[n i a b]` stepping `(a, b) -> (b, a + b)`
/// until `i == n`; addition is an inner core that increments `a` `b` times.
const FIB: &str = "[7 [[1 [6 [5 [0 14] 0 6] [0 30] 9 2 10 [7 [4 0 14] [0 31] [7 [[1 [6 [5 [0 14] 0 15] [0 6] 9 2 10 [3 [4 0 6] [4 0 14] 0 15] 0 1]] [0 30] [1 0] 0 31] 9 2 0 1]] 0 1]] [0 1] [1 0] [1 0] 1 1] 9 2 0 1]";

#[test]
fn specification_examples() {
    assert_eq!(ok("[[4 5] [6 14 15]]", "[0 7]"), "[14 15]");
    assert_eq!(ok("42", "[1 153 218]"), "[153 218]");
    assert_eq!(ok("77", "[2 [1 42] [1 1 153 218]]"), "[153 218]");
    assert_eq!(ok("57", "[4 0 1]"), "58");
    assert_eq!(ok("[132 19]", "[4 0 3]"), "20");
    assert_eq!(ok("42", "[3 0 1]"), "1");
    assert_eq!(ok("[42 43]", "[3 0 1]"), "0");
    assert_eq!(ok("42", "[[4 0 1] [3 0 1]]"), "[43 1]");
    assert_eq!(ok("42", "[7 [4 0 1] [4 0 1]]"), "44");
    assert_eq!(ok("42", "[8 [4 0 1] [0 1]]"), "[43 42]");
    assert_eq!(ok("42", "[8 [4 0 1] [4 0 3]]"), "43");
    assert_eq!(ok("42", "[6 [1 0] [4 0 1] [1 233]]"), "43");
    assert_eq!(ok("42", "[6 [1 1] [4 0 1] [1 233]]"), "233");
    assert_eq!(ok("[1 1]", "[5 [0 2] [0 3]]"), "0");
    assert_eq!(ok("[1 2]", "[5 [0 2] [0 3]]"), "1");
    assert_eq!(
        ok("[22 33 44 55]", "[10 [2 [1 123 456]] [0 1]]"),
        "[[123 456] 33 44 55]"
    );
    assert_eq!(
        ok("[22 33 44 55]", "[10 [3 [1 123 456]] [0 1]]"),
        "[22 123 456]"
    );
    assert_eq!(ok("[132 19]", "[11 37 [4 0 3]]"), "20");
    assert_eq!(ok("[132 19]", "[11 [37 [4 0 2]] [4 0 3]]"), "20");
    assert_eq!(ok("[[1 2] 3]", "[9 2 [0 1]]"), "2");
}

#[test]
fn decrement_and_fibonacci() {
    assert_eq!(ok("42", DEC), "41");
    assert_eq!(ok("1", DEC), "0");
    let fibs = [
        0u64, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377, 610,
    ];
    for (i, f) in fibs.iter().enumerate() {
        assert_eq!(ok(&i.to_string(), FIB), f.to_string(), "fib({i})");
    }
}

#[test]
fn increments_past_two_to_the_64() {
    assert_eq!(
        ok("18446744073709551615", "[4 0 1]"),
        "18446744073709551616"
    );
    assert_eq!(
        ok("18446744073709551616", "[4 4 0 1]"),
        "18446744073709551618"
    );
    // The decrement loop counts up from 0, so start it near the top: a
    // subject just past 2^64 whose counter starts at 2^64 - 1.
    let near =
        "[8 [1 18446744073709551614] 8 [1 6 [5 [0 7] 4 0 6] [0 6] 9 2 [0 2] [4 0 6] 0 7] 9 2 0 1]";
    assert_eq!(ok("18446744073709551617", near), "18446744073709551616");
}

#[test]
fn big_axes() {
    // 2^64 + 1 is the tail of 2^63 depth-64 path of heads: 64 levels deep.
    let mut subject = Noun::atom(7);
    for _ in 0..64 {
        subject = Noun::cell(Noun::ZERO, subject);
    }
    let all_tails = "0xffff.ffff.ffff.ffff.ffff.ffff.ffff.ffff"; // depth 127: too deep
    let axis_65 = "36893488147419103231"; // 2^65 - 1: 64 tails
    let formula = n(&format!("[0 {axis_65}]"));
    assert_eq!(
        nock(subject.clone(), &formula, &Limits::default()),
        Ok(Noun::atom(7))
    );
    let formula = n(&format!("[0 {all_tails}]"));
    assert!(matches!(
        nock(subject.clone(), &formula, &Limits::default()),
        Err(NockError::Crash(Crash::Slot { opcode: 0, .. }))
    ));
    let formula = n(&format!("[10 [{axis_65} [1 9]] [0 1]]"));
    let edited = nock(subject, &formula, &Limits::default()).unwrap();
    assert_eq!(
        crate::slot(
            &crate::Axis::from_atom(n(axis_65).as_atom().unwrap()).unwrap(),
            &edited
        ),
        Ok(&Noun::atom(9))
    );
}

#[test]
fn branch_crashes_and_laziness() {
    // Only 0 and 1 select a branch.
    assert_eq!(
        crashed("42", "[6 [1 2] [1 0] [1 1]]"),
        Crash::Branch {
            condition: Some(Atom::new(2))
        }
    );
    assert_eq!(
        crashed("42", "[6 [1 1 2] [1 0] [1 1]]"),
        Crash::Branch { condition: None }
    );
    // The untaken branch is never evaluated, even when it would crash or loop.
    assert_eq!(ok("42", "[6 [1 0] [1 7] [0 0]]"), "7");
    assert_eq!(ok("42", "[6 [1 1] [2 [0 1] [0 1]] [1 8]]"), "8");
    assert_eq!(
        ok("42", "[6 [1 0] [1 9] [2 [1 2 [0 1] 0 1] [1 2 [0 1] 0 1]]]"),
        "9"
    );
}

#[test]
fn crashes_are_typed() {
    assert_eq!(crashed("42", "42"), Crash::FormulaIsAtom);
    assert_eq!(crashed("42", "[12 0]"), Crash::UnknownOpcode(Atom::new(12)));
    assert_eq!(
        crashed("42", "[0 2]"),
        Crash::Slot {
            opcode: 0,
            axis: Atom::new(2)
        }
    );
    assert_eq!(
        crashed("42", "[0 0]"),
        Crash::Slot {
            opcode: 0,
            axis: Atom::ZERO
        }
    );
    assert_eq!(crashed("[1 2]", "[4 0 1]"), Crash::IncrementCell);
    assert_eq!(crashed("42", "[2 1]"), Crash::Malformed { opcode: 2 });
    assert_eq!(crashed("42", "[0 [1 2]]"), Crash::Malformed { opcode: 0 });
    assert_eq!(
        crashed("42", "[10 [2 [1 1]] [0 1]]"),
        Crash::Edit { axis: Atom::new(2) }
    );
    assert_eq!(
        crashed("42", "[10 [0 [1 1]] [0 1]]"),
        Crash::Edit { axis: Atom::ZERO }
    );
    assert_eq!(
        crashed("42", "[9 2 [0 1]]"),
        Crash::Slot {
            opcode: 9,
            axis: Atom::new(2)
        }
    );
    // A dynamic hint that crashes crashes the whole computation.
    assert_eq!(
        crashed("42", "[11 [1 [0 2]] [1 0]]"),
        Crash::Slot {
            opcode: 0,
            axis: Atom::new(2)
        }
    );
    let text = NockError::Crash(Crash::Branch {
        condition: Some(Atom::new(2)),
    })
    .to_string();
    assert_eq!(text, "crash: opcode 6: condition is 2, not 0 or 1");
}

#[test]
fn fuel_is_deterministic() {
    let dec = n(DEC);
    let full = nock_with(Noun::atom(100), (), &dec, &Limits::default(), &mut NoHook).unwrap();
    let steps = full.steps;
    assert!(steps > 1000);
    let exact = nock(Noun::atom(100), &dec, &Limits::fuel(steps));
    assert_eq!(exact, Ok(Noun::atom(99)));
    let short = nock(Noun::atom(100), &dec, &Limits::fuel(steps - 1));
    assert_eq!(short, Err(NockError::OutOfFuel { spent: steps - 1 }));
    // An infinite loop stops.
    let forever = n("[2 [0 1] [0 1]]");
    let r = nock(forever.clone(), &forever, &Limits::fuel(100_000));
    assert_eq!(r, Err(NockError::OutOfFuel { spent: 100_000 }));
}

#[test]
fn cancellation_from_another_thread() {
    let token = CancelToken::new();
    let limits = Limits::default().with_cancel(Some(token.clone()));
    let forever = n("[2 [0 1] [0 1]]");
    let handle = std::thread::spawn(move || nock(forever.clone(), &forever, &limits));
    std::thread::sleep(std::time::Duration::from_millis(20));
    token.cancel();
    assert!(matches!(
        handle.join().unwrap(),
        Err(NockError::Cancelled { .. })
    ));
    // A run that never calls is still cancelled within CHECK_INTERVAL steps.
    let token = CancelToken::new();
    token.cancel();
    let limits = Limits::default().with_cancel(Some(token));
    let r = nock(Noun::atom(0), &n("[4 4 4 4 4 4 4 4 0 1]"), &limits);
    assert_eq!(
        r,
        Ok(Noun::atom(8)),
        "short runs finish before the first safe point"
    );
    let long = (0..5000).fold(n("[0 1]"), |f, _| Noun::cell(Noun::atom(4), f));
    assert!(
        matches!(nock(Noun::atom(0), &long, &limits), Err(NockError::Cancelled { spent }) if spent <= CHECK_INTERVAL)
    );
}

#[test]
fn deep_non_tail_recursion_uses_the_heap() {
    // Length of a 10^5-element list by non-tail recursion: a core
    // `[battery list]` whose arm is `?:(?=(^ +3) +((call with +3 = +7)) 0)`.
    let length = n("[8 [1 6 [3 0 3] [4 9 2 10 [3 0 7] 0 1] [1 0]] 9 2 0 1]");
    let r = nock(deep_list(100_000), &length, &Limits::fuel(10_000_000));
    assert_eq!(r, Ok(Noun::atom(100_000)));
}

/// A hook that records every event, to check the interpreter reports them.
#[derive(Default)]
struct Recorder {
    log: Vec<String>,
}

impl Hook for Recorder {
    type Tag = String;
    fn constant(&mut self) -> String {
        "k".into()
    }
    fn slot(&mut self, of: &String, axis: &Atom) -> String {
        format!("{of}/{axis}")
    }
    fn cons(&mut self, h: String, t: String) -> String {
        format!("({h} {t})")
    }
    fn edit(&mut self, target: String, axis: &Atom, value: String) -> String {
        format!("{target}#{axis}={value}")
    }
    fn failed(&mut self, of: &String, axis: &Atom) {
        self.log.push(format!("failed {of}/{axis}"));
    }
    fn inspect(&mut self, _: &Noun, tag: &String) {
        self.log.push(format!("inspect {tag}"));
    }
}

#[test]
fn hook_sees_lookups_edits_and_inspections() {
    let mut rec = Recorder::default();
    let subject = n("[[1 2] 3]");
    let formula = n("[[0 2] [10 [3 [4 0 3]] [0 1]]]");
    let t = nock_with(
        subject,
        "s".to_string(),
        &formula,
        &Limits::default(),
        &mut rec,
    )
    .unwrap();
    assert_eq!(t.product.to_string(), "[[1 2] [1 2] 4]");
    assert_eq!(t.tag, "(s/2 s/1#3=k)");
    assert_eq!(rec.log, vec!["inspect s/3"]);

    // A gate call: only the arm is inspected, not the whole subject.
    let mut rec = Recorder::default();
    let core = n("[[0 6] 5 6]");
    let formula = n("[9 2 10 [6 1 9] 0 1]");
    let t = nock_with(
        core,
        "s".to_string(),
        &formula,
        &Limits::default(),
        &mut rec,
    )
    .unwrap();
    assert_eq!(t.product, Noun::atom(9));
    assert_eq!(rec.log, vec!["inspect s/1#6=k/2"]);
    assert_eq!(t.tag, "s/1#6=k/6");

    let mut rec = Recorder::default();
    let r = nock_with(
        n("[1 2]"),
        "s".to_string(),
        &n("[0 6]"),
        &Limits::default(),
        &mut rec,
    );
    assert!(r.is_err());
    assert_eq!(rec.log, vec!["failed s/6"]);
}

/// Tags that hash how each value was derived, and a log of inspections and
/// failed lookups (the `nock` fuzz property's recorder).
use crate::fuzzing::{assert_evaluators_agree, HashRecorder};

/// Every formula of these tests, run on the fast path and on the machine
/// alone, must agree on the product, the error, the steps spent and every
/// hook observation.
#[test]
fn fast_path_and_machine_agree() {
    let cases: Vec<(String, String, u64)> = vec![
        ("42".into(), DEC.into(), 1_000_000),
        ("9".into(), FIB.into(), 1_000_000),
        ("[[4 5] [6 14 15]]".into(), "[0 7]".into(), 100),
        ("77".into(), "[2 [1 42] [1 1 153 218]]".into(), 100),
        ("42".into(), "[8 [4 0 1] [4 0 3]]".into(), 100),
        ("42".into(), "[6 [1 2] [1 0] [1 1]]".into(), 100),
        (
            "[22 33 44 55]".into(),
            "[10 [3 [1 123 456]] [0 1]]".into(),
            100,
        ),
        (
            "[22 33 44 55]".into(),
            "[10 [12 [1 123 456]] [0 1]]".into(),
            100,
        ),
        ("[132 19]".into(), "[11 [37 [4 0 2]] [4 0 3]]".into(), 100),
        ("[132 19]".into(), "[11 [37 [0 7]] [4 0 3]]".into(), 100),
        ("[[0 6] 5 6]".into(), "[9 2 10 [6 1 9] 0 1]".into(), 100),
        ("[[0 6] 5 6]".into(), "[9 4 0 1]".into(), 100),
        (
            "[1 2]".into(),
            "[[0 2] [3 0 1] [5 [0 2] 0 3] [7 [0 3] 4 0 1] 2 [0 1] [1 0 2]]".into(),
            100,
        ),
        ("0".into(), "[[[4 0 1] 12 0] 1 2]".into(), 100),
        ("0".into(), "[4 [0 1] 2 3]".into(), 100),
        // `[4 0 b]` as a sub-formula, which the fast path runs inline:
        // found, not found, a cell, a big increment, a big axis, and under
        // Nock 7 and 5.
        ("[5 6]".into(), "[[4 0 2] [4 0 3] 4 0 1]".into(), 100),
        ("[1 2]".into(), "[[4 0 7] 0 1]".into(), 100),
        ("[[1 2] 3]".into(), "[7 [4 0 2] 0 1]".into(), 100),
        ("18446744073709551615".into(), "[[4 0 1] 0 1]".into(), 100),
        (
            "[1 2]".into(),
            "[[4 0 18446744073709551616] 0 1]".into(),
            100,
        ),
        ("[5 6]".into(), "[5 [4 0 2] 4 0 3]".into(), 100),
        // Sub-computations on subjects built from constants alone, which
        // the fast path runs without the hook when constants are inert,
        // with work after them: cells built, steps taken, a call.
        (
            "[1 2]".into(),
            "[[7 [1 0] [1 1] [1 2] [1 3] 1 4] [0 1] [0 1] [0 1] 0 1]".into(),
            100,
        ),
        (
            "[1 2]".into(),
            "[[7 [1 0] 8 [4 0 1] [4 0 2] [0 3] 4 0 2] [7 [0 1] 2 [0 1] 1 0 2] 0 3]".into(),
            100,
        ),
        (
            "7".into(),
            "[[2 [1 9] 1 [1 3] 4 0 1] 9 2 1 [4 0 3] 5]".into(),
            100,
        ),
    ];
    // A deep non-tail recursion, far past the fast path's native depth.
    let length = "[8 [1 6 [3 0 3] [4 9 2 10 [3 0 7] 0 1] [1 0]] 9 2 0 1]";
    let list = deep_list(300).to_string();
    let mut cases = cases;
    cases.push((list, length.into(), 1_000_000));
    // Long call-free runs, so that a periodic safe point falls after the
    // return from an inert sub-computation: 600 increments of a constant,
    // then 600 of a subject value.
    let chain = "4 ".repeat(600);
    cases.push((
        "[1 2]".into(),
        format!("[[7 [1 0] {chain}0 1] {chain}0 2]"),
        10_000,
    ));
    for (subject, formula, fuel) in cases {
        let (s, f) = (n(&subject), n(&formula));
        // Every fuel budget up to the full run, for short runs; a few for long ones.
        let full = nock_with(
            s.clone(),
            5,
            &f,
            &Limits::fuel(fuel),
            &mut HashRecorder::default(),
        )
        .map(|t| t.steps)
        .unwrap_or(fuel);
        // Every fuel budget up to the full run and memory budgets in steps
        // of 32 bytes, for short runs; a few of each for long ones.
        let (budgets, memories): (Vec<u64>, Vec<u64>) = if full <= 200 {
            (
                (0..=full + 1).collect(),
                (0..=100).map(|m| m * 32).collect(),
            )
        } else {
            (
                vec![0, 1, full / 3, full - 1, full, fuel],
                vec![0, 64, 200, 1000, 5000],
            )
        };
        let cancelled = CancelToken::new();
        cancelled.cancel();
        let runs = budgets
            .iter()
            .map(|&b| Limits::fuel(b).with_memory(u64::MAX))
            .chain(memories.iter().map(|&m| Limits::fuel(fuel).with_memory(m)))
            .chain([
                Limits::fuel(fuel).with_memory(u64::MAX),
                Limits::fuel(fuel).with_cancel(Some(cancelled.clone())),
            ]);
        for limits in runs {
            let context = format!(
                "{subject} {formula} fuel, memory {:?}",
                (limits.fuel, limits.memory)
            );
            assert_evaluators_agree(&s, &f, &limits, &context);
        }
    }
}

/// Regressions from review: each ran exponentially or quadratically long
/// within a small fuel budget.
#[test]
fn small_fuel_means_small_time() {
    // Nock 5 comparing two separately built doubling trees (2^60 paths).
    let mut d = n("[1 0]");
    for _ in 0..60 {
        d = Noun::tuple([Noun::atom(7), d, n("[0 1]"), n("[0 1]")]);
    }
    let f = Noun::tuple([Noun::atom(5), d.clone(), d]);
    assert_eq!(nock(Noun::ZERO, &f, &Limits::fuel(10_000)), Ok(Noun::ZERO));

    // A failing lookup with a huge axis into a 10^5-deep subject.
    let subject = (0..100_000).fold(Noun::ZERO, |acc, _| Noun::cell(Noun::ZERO, acc));
    let axis = Atom::from_biguint((num_bigint::BigUint::from(1u8) << 100_010u32) - 1u32);
    let f = Noun::cell(Noun::ZERO, Noun::Atom(axis));
    let start = std::time::Instant::now();
    assert!(matches!(
        nock(subject.clone(), &f, &Limits::fuel(10_000)),
        Err(NockError::Crash(Crash::Slot { .. }))
    ));
    // Following a 100,010-bit axis costs fuel by its length.
    assert_eq!(
        nock(subject, &f, &Limits::fuel(10)),
        Err(NockError::OutOfFuel { spent: 10 })
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

/// A counter core: `[battery n]` whose arm increments `n` and calls itself
/// forever.
const COUNT_UP: &str = "[8 [1 9 2 10 [3 4 0 3] 0 1] 9 2 0 1]";

#[test]
fn fuel_bounds_time_on_big_atoms() {
    // Increments of a 520-kbit atom cost fuel by its size, so the default
    // fuel runs out in about a hundred milliseconds, not minutes.
    let big = Atom::from_biguint(num_bigint::BigUint::from(1u8) << 520_000u32);
    let start = std::time::Instant::now();
    let r = nock(
        Noun::Atom(big.clone()),
        &n(COUNT_UP),
        &Limits::fuel(100_000_000),
    );
    assert_eq!(r, Err(NockError::OutOfFuel { spent: 100_000_000 }));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    // The charges are exact: a word-sized atom costs nothing extra.
    let words = |bits: u64| {
        nock_with(
            Noun::Atom(Atom::from_biguint(
                num_bigint::BigUint::from(1u8) << (bits - 1),
            )),
            (),
            &n("[4 0 1]"),
            &Limits::default(),
            &mut NoHook,
        )
        .unwrap()
        .steps
    };
    assert_eq!(words(10), 2);
    assert_eq!(words(128), 3);
    // Comparing two equal big atoms costs their size too.
    let f = Noun::tuple([Noun::atom(5), n("[0 1]"), n("[0 1]")]);
    let steps = nock_with(Noun::Atom(big), (), &f, &Limits::default(), &mut NoHook)
        .unwrap()
        .steps;
    assert_eq!(steps, 3 + 520_000 / 64);
}

#[test]
fn comparing_cells_that_hold_big_atoms_is_paid_for_once() {
    // Two separately built lists whose cells each hold an equal 64 KiB
    // atom, in different allocations: the comparison is one unit of fuel,
    // so it must not cost the atoms' size on every cell, nor on every
    // repetition.
    let value = num_bigint::BigUint::from(1u8) << (64u32 * 1024 * 8);
    let list = || {
        (0..1100).fold(Noun::ZERO, |acc, _| {
            Noun::cell(Noun::Atom(Atom::from_biguint(value.clone())), acc)
        })
    };
    let start = std::time::Instant::now();
    let f = Noun::tuple([
        Noun::atom(5),
        Noun::cell(Noun::atom(1), list()),
        Noun::atom(1),
        list(),
    ]);
    assert_eq!(nock(Noun::ZERO, &f, &Limits::fuel(3)), Ok(Noun::ZERO));
    assert!(
        start.elapsed() < std::time::Duration::from_secs(10),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn memory_is_budgeted_and_the_stack_counts() {
    // Non-tail recursion without end: the stack, not fuel, runs out first.
    let f = n("[4 2 [0 1] 0 1]");
    let r = nock(
        f.clone(),
        &f,
        &Limits::fuel(100_000_000).with_memory(1 << 20),
    );
    assert_eq!(r, Err(NockError::OutOfMemory { budget: 1 << 20 }));
    // Building cells: a loop consing onto a list.
    let grow = n("[8 [1 9 2 10 [3 [1 0] 0 3] 0 1] 9 2 0 1]");
    let r = nock(
        Noun::ZERO,
        &grow,
        &Limits::fuel(u64::MAX).with_memory(64 * 1000),
    );
    assert!(matches!(r, Err(NockError::OutOfMemory { .. })), "{r:?}");
    // The last allocation of a run, made with nothing pending, is checked
    // too: a big increment and a deep edit at the top level.
    let big = Noun::Atom(Atom::from_biguint(
        num_bigint::BigUint::from(1u8) << 8000u32,
    ));
    let f = Noun::cell(Noun::atom(4), Noun::cell(Noun::atom(1), big));
    assert!(matches!(
        nock(Noun::ZERO, &f, &Limits::fuel(1000).with_memory(128)),
        Err(NockError::OutOfMemory { .. })
    ));
    let list = (0..5001).fold(Noun::ZERO, |acc, _| Noun::cell(Noun::ZERO, acc));
    let axis = Atom::from_biguint((num_bigint::BigUint::from(1u8) << 5000u32) - 1u32);
    let f = Noun::tuple([
        Noun::atom(10),
        Noun::cell(Noun::Atom(axis), n("[1 7]")),
        Noun::atom(1),
        list,
    ]);
    assert!(matches!(
        nock(Noun::ZERO, &f, &Limits::fuel(100_000).with_memory(256)),
        Err(NockError::OutOfMemory { .. })
    ));
    // Within budget, nothing changes.
    assert_eq!(
        nock(
            Noun::atom(100),
            &n(DEC),
            &Limits::fuel(100_000).with_memory(1 << 20)
        ),
        Ok(Noun::atom(99))
    );
}

/// A cancelled run stops at the first periodic safe point, after exactly
/// `CHECK_INTERVAL` steps of call-free code, on every evaluator, wherever
/// the compiled evaluator's straight-line blocks begin and end: chains of
/// `[7 [4 0 1] ...]` (three steps per link, in tail position, so no
/// native depth) of lengths around the interval, shifted by one step at a
/// time.
#[test]
fn cancellation_lands_on_the_same_step() {
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let limits = Limits::fuel(1_000_000).with_cancel(Some(cancelled));
    let links = CHECK_INTERVAL as usize / 3;
    for shift in 0..3 {
        for length in links - 40..links + 40 {
            // `shift` more steps first: [7 [1 0] ...] is two, [7 [1 0] 7 [1 0] ...] four.
            let lead = "[7 [1 0] ".repeat(shift);
            let chain = "[7 [4 0 1] ".repeat(length);
            let close = "]".repeat(shift + length);
            let f = n(&format!("{lead}{chain}[0 1]{close}"));
            let starts = (2 * shift + 3 * length + 1) as u64;
            let expected = if starts >= CHECK_INTERVAL {
                Err(NockError::Cancelled {
                    spent: CHECK_INTERVAL,
                })
            } else {
                Ok(Noun::atom(length as u64))
            };
            let context = format!("shift {shift}, length {length}");
            assert_eq!(nock(Noun::ZERO, &f, &limits), expected, "{context}");
            assert_evaluators_agree(&Noun::ZERO, &f, &limits, &context);
        }
    }
}
