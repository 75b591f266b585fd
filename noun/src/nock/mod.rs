//! A Nock 4K interpreter with fuel, cancellation and a tracking hook.
//!
//! Invariants:
//! - **No native recursion over the computation.** Evaluation runs on an
//!   explicit work stack; deep or long computations grow heap memory only,
//!   and every step of that growth costs fuel.
//! - **Fuel is deterministic.** Each formula evaluated costs one unit, and
//!   operations whose time grows with their operands cost more: an
//!   increment or an atom comparison one more unit per 64-bit word past the
//!   first, a lookup or edit one more per 64 levels of axis past the first
//!   64. A run that would spend more than its fuel stops with
//!   [`NockError::OutOfFuel`], at the same step every time. Fuel therefore
//!   bounds time.
//! - **Memory is budgeted.** Every cell the computation builds (autocons,
//!   Nock 8, each level of a Nock 10 edit) costs [`CELL_BYTES`], every big
//!   atom an increment makes its size, and every pending evaluation on the
//!   stack [`FRAME_BYTES`] while it is pending. A run whose allocations
//!   plus stack would pass its budget stops with
//!   [`NockError::OutOfMemory`], at the same step every time; what it holds
//!   at once is therefore bounded by about the budget.
//! - **Cancellation is honoured at safe points**: on every call through
//!   Nock 2 and 9 and at least every [`CHECK_INTERVAL`] steps. A cancelled run
//!   stops with [`NockError::Cancelled`] and leaves nothing behind.
//! - **Crashes are typed.** Wherever the Nock 4K specification crashes, the
//!   run ends with a [`Crash`] saying what failed.
//!
//! Evaluation order is fixed (for Nock 2, 5 and 10: the first sub-formula,
//! then the second), so fuel use and the hook's observations are
//! reproducible.

mod hook;
mod machine;
pub(crate) use machine::MAX_DEPTH;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use thiserror::Error;

pub use hook::{Hook, NoHook};

use crate::{Atom, Noun};

/// The decrement loop, the standard small benchmark: with subject `n`, it
/// counts from 0 up to `n - 1` and returns that (14 formula evaluations per
/// iteration).
pub const DECREMENT: &str = "[8 [1 0] 8 [1 6 [5 [0 7] 4 0 6] [0 6] 9 2 [0 2] [4 0 6] 0 7] 9 2 0 1]";

/// [`DECREMENT`], parsed once.
pub fn decrement() -> Noun {
    static FORMULA: std::sync::OnceLock<Noun> = std::sync::OnceLock::new();
    FORMULA
        .get_or_init(|| {
            let formula: Noun = DECREMENT.parse().expect("the decrement formula parses");
            // Lives for the process: threads running it in parallel must
            // not contend on its reference counts.
            formula.immortalize();
            formula
        })
        .clone()
}

/// Cancellation is checked at least this often (in steps), besides every call.
pub const CHECK_INTERVAL: u64 = 1024;

/// A shared flag that asks a running computation to stop at its next safe
/// point. Cloning shares the flag.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A new, unset token.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every computation holding this token to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Clear the flag, for reuse by a new computation (only once no
    /// computation that should stay cancelled holds it).
    pub fn reset(&self) {
        self.0.store(false, Ordering::Release);
    }

    /// Whether [`cancel`](Self::cancel) was called.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bytes charged for each cell a computation builds.
pub const CELL_BYTES: u64 = 64;

/// Bytes charged for each pending evaluation on the stack.
pub const FRAME_BYTES: u64 = 128;

/// The memory budget of [`Limits::fuel`]: 1 GiB.
pub const DEFAULT_MEMORY: u64 = 1 << 30;

/// Limits on one computation.
///
/// ```
/// use spectree_noun::nock::{nock, Limits, NockError};
/// use spectree_noun::Noun;
/// // [4 2 [0 1] [0 1]] run on itself recurses without end, growing the stack.
/// let f: Noun = "[4 2 [0 1] 0 1]".parse()?;
/// let limits = Limits::fuel(u64::MAX).with_memory(1 << 20);
/// assert!(matches!(nock(f.clone(), &f, &limits), Err(NockError::OutOfMemory { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct Limits {
    /// Fuel: formula evaluations, plus the size charges of big operations
    /// (see the [module docs](self)).
    pub fuel: u64,
    /// Memory budget in bytes (see the [module docs](self)).
    pub memory: u64,
    /// Checked at every safe point.
    pub cancel: Option<CancelToken>,
}

impl Default for Limits {
    /// No limits at all (unlimited fuel and memory, no cancellation): only
    /// for computations that are trusted to end.
    fn default() -> Self {
        Limits {
            fuel: u64::MAX,
            memory: u64::MAX,
            cancel: None,
        }
    }
}

impl Limits {
    /// Limits with the given fuel, the [`DEFAULT_MEMORY`] budget and no
    /// cancellation.
    pub fn fuel(fuel: u64) -> Self {
        Limits {
            fuel,
            memory: DEFAULT_MEMORY,
            cancel: None,
        }
    }

    /// These limits with a memory budget of `bytes`.
    #[must_use]
    pub fn with_memory(mut self, bytes: u64) -> Self {
        self.memory = bytes;
        self
    }

    /// These limits, cancelled through `cancel`.
    #[must_use]
    pub fn with_cancel(mut self, cancel: Option<CancelToken>) -> Self {
        self.cancel = cancel;
        self
    }
}

/// How a computation ended without a product.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NockError {
    /// The specification crashes here.
    #[error("crash: {0}")]
    Crash(Crash),
    /// The run needed more than its fuel.
    #[error("out of fuel after {spent} steps")]
    OutOfFuel {
        /// Fuel spent (equal to the budget).
        spent: u64,
    },
    /// The run would pass its memory budget.
    #[error("out of memory: the computation would build more than its budget of {budget} bytes (cells and atoms built, counted like fuel, plus the stack)")]
    OutOfMemory {
        /// The budget, in bytes.
        budget: u64,
    },
    /// The run was cancelled at a safe point.
    #[error("cancelled after {spent} steps")]
    Cancelled {
        /// Steps taken before the safe point that noticed.
        spent: u64,
    },
}

/// A Nock crash: what failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Crash {
    /// A formula was an atom.
    FormulaIsAtom,
    /// A formula's head was an atom other than 0 to 11.
    UnknownOpcode(Atom),
    /// The arguments of an opcode did not have the required shape.
    Malformed {
        /// The opcode.
        opcode: u8,
    },
    /// Nock 0 (or the arm lookup of Nock 9) named axis 0 or ran into an atom.
    Slot {
        /// The opcode (0 or 9).
        opcode: u8,
        /// The axis looked up.
        axis: Atom,
    },
    /// Nock 4 was applied to a cell.
    IncrementCell,
    /// Nock 6's condition was neither 0 nor 1.
    Branch {
        /// The condition, if it was an atom (`None` for a cell).
        condition: Option<Atom>,
    },
    /// Nock 10 named axis 0 or its path ran into an atom.
    Edit {
        /// The axis edited.
        axis: Atom,
    },
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Crash::FormulaIsAtom => write!(f, "formula is an atom"),
            Crash::UnknownOpcode(op) => write!(f, "unknown opcode {}", short(op)),
            Crash::Malformed { opcode } => {
                write!(f, "arguments of opcode {opcode} have the wrong shape")
            }
            Crash::Slot { opcode, axis } => {
                write!(
                    f,
                    "opcode {opcode}: axis {} is not in the subject",
                    short(axis)
                )
            }
            Crash::IncrementCell => write!(f, "opcode 4: cannot increment a cell"),
            Crash::Branch { condition: Some(c) } => {
                write!(f, "opcode 6: condition is {}, not 0 or 1", short(c))
            }
            Crash::Branch { condition: None } => {
                write!(f, "opcode 6: condition is a cell, not 0 or 1")
            }
            Crash::Edit { axis } => {
                write!(f, "opcode 10: axis {} is not in the target", short(axis))
            }
        }
    }
}

fn short(a: &Atom) -> String {
    a.short()
}

/// The result of a tracked run: the product, its tag, and the fuel spent.
#[derive(Debug, Clone)]
pub struct Traced<T> {
    /// The product.
    pub product: Noun,
    /// The hook's tag for the product.
    pub tag: T,
    /// Formulas evaluated (fuel spent).
    pub steps: u64,
}

/// Compute `*[subject formula]`.
///
/// ```
/// use spectree_noun::nock::{nock, Limits, NockError};
/// use spectree_noun::Noun;
/// let dec: Noun = "[8 [1 0] 8 [1 6 [5 [0 7] 4 0 6] [0 6] 9 2 [0 2] [4 0 6] 0 7] 9 2 0 1]"
///     .parse()
///     .unwrap();
/// assert_eq!(nock(Noun::atom(42), &dec, &Limits::default()), Ok(Noun::atom(41)));
/// assert!(matches!(
///     nock(Noun::atom(42), &dec, &Limits::fuel(100)),
///     Err(NockError::OutOfFuel { spent: 100 })
/// ));
/// ```
///
/// # Errors
/// [`NockError`] for a crash, exhausted fuel or cancellation.
pub fn nock(subject: Noun, formula: &Noun, limits: &Limits) -> Result<Noun, NockError> {
    nock_with(subject, (), formula, limits, &mut NoHook).map(|t| t.product)
}

/// Compute `*[subject formula]`, reporting to `hook`; `tag` is the subject's.
///
/// # Errors
/// [`NockError`] for a crash, exhausted fuel or cancellation.
pub fn nock_with<H: Hook>(
    subject: Noun,
    tag: H::Tag,
    formula: &Noun,
    limits: &Limits,
    hook: &mut H,
) -> Result<Traced<H::Tag>, NockError> {
    run_with_depth(subject, tag, formula, limits, hook, machine::MAX_DEPTH)
}

/// [`nock_with`] with the fast path's native recursion limited to
/// `max_depth` (0: the explicit-stack machine alone, which the differential
/// tests compare against).
pub(crate) fn run_with_depth<H: Hook>(
    subject: Noun,
    tag: H::Tag,
    formula: &Noun,
    limits: &Limits,
    hook: &mut H,
    max_depth: u32,
) -> Result<Traced<H::Tag>, NockError> {
    machine::evaluate(subject, tag, formula, limits, hook, max_depth)
}

#[cfg(test)]
mod tests;
