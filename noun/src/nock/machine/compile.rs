//! Formulas compiled for the untracked evaluator: decoded once into a
//! tree of [`Node`]s, each annotated with what evaluating it can cost when
//! it makes no call.
//!
//! A node whose sub-tree has no Nock 2 or 9, no big axis and no undecodable
//! formula is *straight-line*: its [`Stats`] bound the formulas it starts,
//! the bytes it charges to the memory budget and the evaluations it leaves
//! pending on the stack, whatever branches it takes. When the budgets
//! cover those bounds with room to spare, no fuel, memory or safe-point
//! check inside it can fire, and `compiled.rs` evaluates it without them,
//! counting what it spent and charging it afterwards; otherwise, or when
//! the evaluation meets anything it leaves to the exact path (a crash, a
//! big atom), the node is evaluated the exact way from the start. Nock is
//! a pure function of the subject, so the outcome, steps and charges are
//! the interpreter's.
//!
//! Compiling recurses at most [`COMPILE_DEPTH`] levels; a deeper
//! sub-formula becomes [`Code::Later`], compiled (as a root) when reached.

use typed_arena::Arena;

use super::{decode, Op};
use crate::nock::CELL_BYTES;
use crate::{Atom, Noun};

/// Deepest native recursion of the compiler (and of the straight-line
/// evaluator, which follows the compiled tree).
pub(super) const COMPILE_DEPTH: u32 = 32;

/// Most formulas one straight-line node may start: well under the
/// safe-point interval, so that most blocks fit between safe points.
const MAX_STARTS: u64 = 256;

/// One compiled formula.
pub(super) struct Node<'a> {
    pub(super) code: Code<'a>,
    /// The formula this node was compiled from (for the machine, which
    /// the exact path hands deep evaluations to).
    pub(super) formula: &'a Noun,
    /// Bounds on a call-free evaluation; `None` where one cannot be given.
    pub(super) stats: Option<Stats>,
}

/// The decoded operation of a [`Node`], its sub-formulas compiled.
pub(super) enum Code<'a> {
    /// `[0 b]`, `b` a nonzero word.
    SlotSmall(u64),
    Slot(&'a Atom),
    Quote(&'a Noun),
    Cons(&'a Node<'a>, &'a Node<'a>),
    Nock2(&'a Node<'a>, &'a Node<'a>),
    IsCell(&'a Node<'a>),
    Increment(&'a Node<'a>),
    Eq(&'a Node<'a>, &'a Node<'a>),
    Branch(&'a Node<'a>, &'a Node<'a>, &'a Node<'a>),
    Compose(&'a Node<'a>, &'a Node<'a>),
    Push(&'a Node<'a>, &'a Node<'a>),
    Call(&'a Atom, &'a Node<'a>),
    Edit(&'a Atom, &'a Node<'a>, &'a Node<'a>),
    Hint(Option<&'a Node<'a>>, &'a Node<'a>),
    /// Decoding the formula fails: it crashes once started.
    Bad,
    /// Past the compile depth: compile the formula when it is reached.
    Later,
}

/// Upper bounds on a straight-line evaluation of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stats {
    /// Formulas started (fuel).
    pub(super) starts: u64,
    /// Bytes charged to the memory budget (cells built).
    pub(super) bytes: u64,
    /// Evaluations pending at once below this one (the interpreter's
    /// non-tail sub-evaluations, each one frame).
    pub(super) depth: u64,
}

impl Stats {
    const LEAF: Stats = Stats {
        starts: 1,
        bytes: 0,
        depth: 0,
    };

    /// A formula that evaluates `subs` in turn, each pending (non-tail),
    /// then `tail` in tail position, and charges `bytes` itself.
    fn seq(subs: &[Stats], tail: Option<Stats>, bytes: u64) -> Option<Stats> {
        let mut s = Stats {
            starts: 1,
            bytes,
            depth: 0,
        };
        for x in subs.iter().chain(tail.as_ref()) {
            s.starts += x.starts;
            s.bytes += x.bytes;
        }
        for x in subs {
            s.depth = s.depth.max(x.depth + 1);
        }
        if let Some(t) = tail {
            s.depth = s.depth.max(t.depth);
        }
        (s.starts <= MAX_STARTS).then_some(s)
    }
}

/// Compile `formula`, `depth` levels below the root being compiled.
pub(super) fn compile<'a>(
    nodes: &'a Arena<Node<'a>>,
    formula: &'a Noun,
    depth: u32,
) -> &'a Node<'a> {
    if depth >= COMPILE_DEPTH {
        return nodes.alloc(Node {
            code: Code::Later,
            formula,
            stats: None,
        });
    }
    let sub = |f: &'a Noun| compile(nodes, f, depth + 1);
    let code = match decode(formula) {
        Err(_) => Code::Bad,
        Ok(op) => match op {
            Op::Slot(a) => match small_axis(a) {
                Some(b) => Code::SlotSmall(b),
                None => Code::Slot(a),
            },
            Op::Quote(q) => Code::Quote(q),
            Op::Cons(b, c) => Code::Cons(sub(b), sub(c)),
            Op::Nock2(b, c) => Code::Nock2(sub(b), sub(c)),
            Op::IsCell(b) => Code::IsCell(sub(b)),
            Op::Increment(b) => Code::Increment(sub(b)),
            Op::Eq(b, c) => Code::Eq(sub(b), sub(c)),
            Op::Branch(b, yes, no) => Code::Branch(sub(b), sub(yes), sub(no)),
            Op::Compose(b, c) => Code::Compose(sub(b), sub(c)),
            Op::Push(b, c) => Code::Push(sub(b), sub(c)),
            Op::Call(axis, c) => Code::Call(axis, sub(c)),
            Op::Edit(axis, c, d) => Code::Edit(axis, sub(c), sub(d)),
            Op::Hint(h, d) => Code::Hint(h.map(sub), sub(d)),
        },
    };
    let stats = stats(&code);
    nodes.alloc(Node {
        code,
        formula,
        stats,
    })
}

fn small_axis(axis: &Atom) -> Option<u64> {
    axis.as_u64().filter(|&a| a != 0)
}

fn stats(code: &Code<'_>) -> Option<Stats> {
    let s = |n: &Node<'_>| n.stats;
    match *code {
        Code::SlotSmall(_) => Some(Stats::LEAF),
        Code::Slot(_) => None,
        Code::Quote(_) => Some(Stats::LEAF),
        Code::Cons(b, c) => Stats::seq(&[s(b)?, s(c)?], None, CELL_BYTES),
        Code::IsCell(b) | Code::Increment(b) => Stats::seq(&[s(b)?], None, 0),
        Code::Eq(b, c) => Stats::seq(&[s(b)?, s(c)?], None, 0),
        Code::Branch(b, yes, no) => {
            let (yes, no) = (s(yes)?, s(no)?);
            let either = Stats {
                starts: yes.starts.max(no.starts),
                bytes: yes.bytes.max(no.bytes),
                depth: yes.depth.max(no.depth),
            };
            Stats::seq(&[s(b)?], Some(either), 0)
        }
        Code::Compose(b, c) => Stats::seq(&[s(b)?], Some(s(c)?), 0),
        Code::Push(b, c) => Stats::seq(&[s(b)?], Some(s(c)?), CELL_BYTES),
        Code::Edit(axis, c, d) => {
            let levels = u64::from(63 - small_axis(axis)?.leading_zeros());
            Stats::seq(&[s(c)?, s(d)?], None, levels * CELL_BYTES)
        }
        Code::Hint(Some(h), d) => Stats::seq(&[s(h)?], Some(s(d)?), 0),
        Code::Hint(None, d) => Stats::seq(&[], Some(s(d)?), 0),
        Code::Nock2(..) | Code::Call(..) | Code::Bad | Code::Later => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats_of(text: &str) -> Option<Stats> {
        let nodes = Arena::new();
        let formula: Noun = text.parse().unwrap();
        let formula: &Noun = Box::leak(Box::new(formula));
        compile(&nodes, formula, 0).stats
    }

    #[test]
    fn straight_line_bounds() {
        // [5 [0 7] 4 0 6]: four formulas; the increment's operand is two
        // evaluations deep.
        assert_eq!(
            stats_of("[5 [0 7] 4 0 6]"),
            Some(Stats {
                starts: 4,
                bytes: 0,
                depth: 2
            })
        );
        // [[0 2] [4 0 6] 0 7]: two cells built.
        assert_eq!(
            stats_of("[[0 2] [4 0 6] 0 7]"),
            Some(Stats {
                starts: 6,
                bytes: 2 * CELL_BYTES,
                depth: 3
            })
        );
        // A branch counts its longer arm; Nock 7's second formula is in
        // tail position.
        assert_eq!(
            stats_of("[6 [1 0] [7 [0 1] 0 1] [1 5]]"),
            Some(Stats {
                starts: 5,
                bytes: 0,
                depth: 1
            })
        );
        // An edit at axis 6 copies two levels.
        assert_eq!(
            stats_of("[10 [6 1 9] 0 1]").map(|s| s.bytes),
            Some(2 * CELL_BYTES)
        );
    }

    #[test]
    fn calls_big_axes_and_bad_formulas_have_no_bounds() {
        for f in [
            "[9 2 0 1]",
            "[2 [0 1] 1 0 1]",
            "[0 18446744073709551616]",
            "[0 0]",
            "[[1 0] 12 0]",
            "7",
        ] {
            assert_eq!(stats_of(f), None, "{f}");
        }
    }

    #[test]
    fn deep_formulas_compile_in_bounded_depth() {
        let mut f = "[0 1]".to_string();
        for _ in 0..100 {
            f = format!("[4 {f}]");
        }
        let nodes = Arena::new();
        let formula: Noun = f.parse().unwrap();
        let mut node = compile(&nodes, &formula, 0);
        let mut levels = 0;
        while let Code::Increment(next) = node.code {
            node = next;
            levels += 1;
        }
        assert_eq!(levels, COMPILE_DEPTH);
        assert!(matches!(node.code, Code::Later));
    }
}
