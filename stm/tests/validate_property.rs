//! The property the scheduler relies on: if `validate` says an execution's
//! accesses still hold after concurrent writes committed, then running the
//! event against the newer state gives the same outcome, and the grafted
//! writes give exactly the state that run produces.
//!
//! Random states, random events (Nock kernels from a generator of mostly
//! valid code, and random Rust event programs over noun and map states) and
//! random concurrent writes. `cargo test -- --ignored` runs many more cases.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use spectree_noun::nock::Limits;
use spectree_noun::{Axis, Noun};
use spectree_stm::*;

/// `(key or axis, value)` pairs.
type Entries = Vec<(u64, Noun)>;

// ---------- generators ----------

fn small_noun() -> impl Strategy<Value = Noun> {
    (0u64..6)
        .prop_map(Noun::atom)
        .prop_recursive(5, 40, 2, |inner| {
            (inner.clone(), inner).prop_map(|(h, t)| Noun::cell(h, t))
        })
}

/// A state axis likely to exist in small states.
fn state_axis() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![Just(1u64), 2u64..4, 4u64..8, 8u64..16]
}

/// The subject axis of state axis `x` (the state is at subject axis 3).
fn in_state(x: u64) -> u64 {
    let d = 63 - x.leading_zeros();
    (3u64 << d) | (x ^ (1u64 << d))
}

fn atom(n: u64) -> Noun {
    Noun::atom(n)
}

fn t(items: Vec<Noun>) -> Noun {
    Noun::tuple(items)
}

/// A value formula over the subject `[event state]`.
fn value_formula() -> impl Strategy<Value = Noun> {
    let leaf = prop_oneof![
        3 => state_axis().prop_map(|x| t(vec![atom(0), atom(in_state(x))])),
        1 => Just(t(vec![atom(0), atom(2)])),
        1 => (0u64..4).prop_map(|c| t(vec![atom(1), atom(c)])),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|f| t(vec![atom(4), f])),
            inner.clone().prop_map(|f| t(vec![atom(3), f])),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| Noun::cell(a, b)),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| t(vec![atom(5), a, b])),
            (inner.clone(), inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(a, b, c, d)| { t(vec![atom(6), t(vec![atom(5), a, b]), c, d]) }),
            // Take the whole subject, then look inside it (navigation).
            (2u64..8).prop_map(|x| t(vec![
                atom(7),
                t(vec![atom(0), atom(1)]),
                atom(0),
                atom(in_state(x)),
            ])),
            (inner.clone(), 1u64..4).prop_map(|(f, x)| t(vec![
                atom(8),
                f,
                atom(0),
                atom(if x == 1 { 2 } else { 7 })
            ])),
            // Edit a copy of the state, then compute against the result.
            (inner, state_axis(), value_formula_leaf()).prop_map(|(f, x, v)| {
                t(vec![
                    atom(7),
                    t(vec![atom(10), Noun::cell(atom(x), v), atom(0), atom(3)]),
                    f,
                ])
            }),
        ]
    })
}

fn value_formula_leaf() -> impl Strategy<Value = Noun> {
    prop_oneof![
        state_axis().prop_map(|x| t(vec![atom(0), atom(in_state(x))])),
        (0u64..4).prop_map(|c| t(vec![atom(1), atom(c)])),
        Just(t(vec![atom(0), atom(2)])),
    ]
}

/// Up to three edits of the state.
fn edits() -> impl Strategy<Value = Noun> {
    proptest::collection::vec((state_axis(), value_formula()), 0..3).prop_map(|es| {
        es.into_iter()
            .fold(t(vec![atom(0), atom(3)]), |acc, (x, v)| {
                t(vec![atom(10), Noun::cell(atom(x), v), acc])
            })
    })
}

/// A new-state formula: edits of the state, sometimes conditional.
fn state_formula() -> impl Strategy<Value = Noun> {
    prop_oneof![
        4 => edits(),
        1 => (value_formula(), value_formula(), edits(), edits())
            .prop_map(|(a, b, yes, no)| t(vec![atom(6), t(vec![atom(5), a, b]), yes, no])),
        1 => value_formula(),
    ]
}

fn kernel() -> impl Strategy<Value = Noun> {
    (value_formula(), state_formula()).prop_map(|(e, s)| Noun::cell(e, s))
}

/// Concurrent writes: values at axes (some may not exist; those are skipped).
fn concurrent() -> impl Strategy<Value = Vec<(u64, Noun)>> {
    proptest::collection::vec((state_axis(), small_noun()), 0..3)
}

/// Apply what can be applied of `writes` to `state`, recording them.
fn commit<S: State>(
    state: &S,
    writes: &[(S::Key, Noun)],
    regions: &dyn Regions<S::Key>,
) -> (S, AccessSet<S::Key>) {
    let mut s = state.clone();
    let mut access = AccessSet::new(regions);
    for (k, v) in writes {
        if let Ok(next) = s.put(k, v.clone()) {
            s = next;
            access.write(k.clone(), regions);
        }
    }
    (s, access)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Validated,
    Conflicted,
}

/// Check the property for one execution; which way validation went.
fn check<S: State>(
    run: impl Fn(&S) -> Execution<S>,
    state: &S,
    writes: &[(S::Key, Noun)],
    regions: &dyn Regions<S::Key>,
) -> Result<Verdict, TestCaseError> {
    let first = run(state);
    let (newer, committed) = commit(state, writes, regions);
    if !validate(&first.access, [&committed]) {
        return Ok(Verdict::Conflicted);
    }
    let again = run(&newer);
    prop_assert_eq!(&first.outcome, &again.outcome);
    let grafted = first
        .apply(&newer)
        .map_err(|e| TestCaseError::fail(format!("graft failed: {e}")))?;
    let rerun = again
        .apply(&newer)
        .expect("a fresh run's writes apply to its own base");
    prop_assert_eq!(grafted, rerun);
    Ok(Verdict::Validated)
}

fn nock_case(
    (state, kernel, event, writes, depth): (Noun, Noun, Noun, Entries, u64),
) -> Result<Verdict, TestCaseError> {
    let regions = RegionMap::depth(depth).unwrap();
    let writes: Vec<(Axis, Noun)> = writes
        .into_iter()
        .map(|(a, v)| (Axis::new(a).unwrap(), v))
        .collect();
    let limits = Options::tracked(Limits::fuel(2_000));
    check(
        |s: &NounState| execute_nock(&kernel, &event, s, &regions, &limits),
        &NounState(state),
        &writes,
        &regions,
    )
}

fn nock_strategy() -> impl Strategy<Value = (Noun, Noun, Noun, Entries, u64)> {
    (small_noun(), kernel(), small_noun(), concurrent(), 0u64..3)
}

// ---------- Rust event programs ----------

#[derive(Debug, Clone)]
enum Op {
    Get(u64),
    Put(u64, Noun),
    /// Put the value read by the i-th get (if any) at an axis.
    Copy(u64, usize),
    /// Put the increment of the i-th get (fail if it is a cell).
    Inc(u64, usize),
    /// Fail if the i-th get is a cell.
    FailIfCell(usize),
    /// Panic if the i-th get is 3.
    PanicIfThree(usize),
}

#[derive(Debug, Clone)]
struct Program<K> {
    ops: Vec<Op>,
    key: fn(u64) -> K,
}

impl<S: State> RustEvent<S> for Program<S::Key> {
    fn apply(&self, tx: &mut Tx<'_, S>) -> Result<Noun, EventError> {
        let mut got: Vec<Noun> = Vec::new();
        let nth = |got: &Vec<Noun>, i: usize| got.get(i).cloned().unwrap_or(Noun::ZERO);
        for op in &self.ops {
            match op {
                Op::Get(k) => got.push(tx.get(&(self.key)(*k))?.unwrap_or(Noun::atom(99))),
                Op::Put(k, v) => tx.put(&(self.key)(*k), v.clone())?,
                Op::Copy(k, i) => tx.put(&(self.key)(*k), nth(&got, *i))?,
                Op::Inc(k, i) => match nth(&got, *i) {
                    Noun::Atom(a) => tx.put(&(self.key)(*k), Noun::Atom(a.increment()))?,
                    Noun::Cell(_) => return Err(EventError::failed(1u64)),
                },
                Op::FailIfCell(i) => {
                    if nth(&got, *i).is_cell() {
                        return Err(EventError::failed(2u64));
                    }
                }
                Op::PanicIfThree(i) => {
                    if nth(&got, *i) == Noun::atom(3) {
                        panic!("three");
                    }
                }
            }
        }
        Ok(Noun::list(got))
    }
}

fn ops(keys: impl Strategy<Value = u64> + Clone) -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        3 => keys.clone().prop_map(Op::Get),
        1 => (keys.clone(), small_noun()).prop_map(|(k, v)| Op::Put(k, v)),
        2 => (keys.clone(), 0usize..3).prop_map(|(k, i)| Op::Copy(k, i)),
        2 => (keys, 0usize..3).prop_map(|(k, i)| Op::Inc(k, i)),
        1 => (0usize..3).prop_map(Op::FailIfCell),
        1 => (0usize..3).prop_map(Op::PanicIfThree),
    ];
    proptest::collection::vec(op, 1..6)
}

fn rust_noun_case(
    (state, program, writes): (Noun, Vec<Op>, Entries),
) -> Result<Verdict, TestCaseError> {
    let regions = RegionMap::depth(2).unwrap();
    let ax = |a: u64| Axis::new(a).unwrap();
    let program = Program {
        ops: program,
        key: ax,
    };
    let writes: Vec<(Axis, Noun)> = writes.into_iter().map(|(a, v)| (ax(a), v)).collect();
    check(
        |s: &NounState| execute_rust(&program, s, &regions, &Options::tracked(Limits::default())),
        &NounState(state),
        &writes,
        &regions,
    )
}

fn rust_map_case(
    (entries, program, writes): (Entries, Vec<Op>, Entries),
) -> Result<Verdict, TestCaseError> {
    let regions = HashRegions(4);
    let key = |k: u64| MapKey(Noun::atom(k));
    let state = entries
        .into_iter()
        .fold(MapState::default(), |s, (k, v)| s.put(&key(k), v).unwrap());
    let program = Program { ops: program, key };
    let writes: Vec<(MapKey, Noun)> = writes.into_iter().map(|(k, v)| (key(k), v)).collect();
    check(
        |s: &MapState| execute_rust(&program, s, &regions, &Options::tracked(Limits::default())),
        &state,
        &writes,
        &regions,
    )
}

fn map_writes() -> impl Strategy<Value = Vec<(u64, Noun)>> {
    proptest::collection::vec((0u64..8, small_noun()), 0..3)
}

fn quiet_panics() {
    std::panic::set_hook(Box::new(|info| {
        if !info.to_string().contains("three") {
            eprintln!("{info}");
        }
    }));
}

fn cases(n: u32) -> Config {
    Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    }
}

fn run_all(n: u32) -> [(usize, usize); 3] {
    quiet_panics();
    let mut counts = [(0, 0); 3];
    let mut tally = |i: usize, v: Verdict| match v {
        Verdict::Validated => counts[i].0 += 1,
        Verdict::Conflicted => counts[i].1 += 1,
    };
    let seen = std::cell::RefCell::new(Vec::new());
    TestRunner::new(cases(n))
        .run(&nock_strategy(), |c| {
            nock_case(c).map(|v| seen.borrow_mut().push(v))
        })
        .unwrap();
    seen.borrow_mut().drain(..).for_each(|v| tally(0, v));
    TestRunner::new(cases(n))
        .run(&(small_noun(), ops(state_axis()), concurrent()), |c| {
            rust_noun_case(c).map(|v| seen.borrow_mut().push(v))
        })
        .unwrap();
    seen.borrow_mut().drain(..).for_each(|v| tally(1, v));
    TestRunner::new(cases(n))
        .run(
            &(
                proptest::collection::vec((0u64..8, small_noun()), 0..8),
                ops(0u64..8),
                map_writes(),
            ),
            |c| rust_map_case(c).map(|v| seen.borrow_mut().push(v)),
        )
        .unwrap();
    seen.borrow_mut().drain(..).for_each(|v| tally(2, v));
    counts
}

#[test]
fn validated_executions_equal_re_execution() {
    let counts = run_all(2_000);
    eprintln!("validated/conflicted per model (nock, rust-noun, rust-map): {counts:?}");
    // Not vacuous: each model both validates and conflicts often.
    for (i, (ok, conflict)) in counts.iter().enumerate() {
        let total = ok + conflict;
        assert_eq!(total, 2_000, "model {i} ran {total} cases");
        assert!(
            *ok * 5 >= total,
            "model {i}: only {ok} of {total} validated"
        );
        assert!(
            *conflict * 20 >= total,
            "model {i}: only {conflict} of {total} conflicted"
        );
    }
}

#[test]
#[ignore = "long: cargo test -p spectree-stm -- --ignored"]
fn validated_executions_equal_re_execution_long() {
    run_all(100_000);
}
