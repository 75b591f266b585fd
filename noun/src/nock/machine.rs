//! The evaluator: a native-recursive fast path over an explicit-stack
//! machine.
//!
//! **The machine** ([`Machine::deep`]) is the always-safe evaluator: the
//! current formula, a stack of subjects (the top one is current) and a stack
//! of [`Frame`]s saying what to do with the next product. Evaluating a
//! formula either yields a product (Nock 0, 1) or pushes a frame and moves on
//! to a sub-formula; a product pops frames until one asks for another
//! evaluation. A computation that changes the subject (Nock 2, 7, 8, 9)
//! pushes the new subject with a [`Frame::PopSubject`] marker or, when the
//! marker is already on top (a call in tail position), replaces the top
//! subject, so loops written as tail calls run in constant space. Nothing in
//! the machine recurses on the native stack.
//!
//! **The fast path** ([`Machine::fast`]) evaluates the same formulas by
//! native recursion, borrowing subjects instead of moving them and handling
//! tail positions in a loop. It recurses at most [`MAX_DEPTH`] levels; a
//! sub-formula that would go deeper is handed to the machine. Native stack
//! use is therefore bounded whatever the computation.
//!
//! Both paths spend one unit of fuel per formula, at the moment they start
//! it, evaluate sub-formulas in the same order and call the hook in the same
//! order, so results, step counts and observations do not depend on which
//! path ran (the tests run everything with the fast path disabled, too).
//!
//! Formulas are borrowed for the whole run from an arena that keeps every
//! formula produced by Nock 2 and 9 alive; a table keyed by cell address
//! (sound because the arena keeps each key's cell alive) makes every repeated
//! call of the same formula allocate nothing, however many arms a loop
//! calls. A loop that *builds a new formula* on every call still keeps each
//! one until the run ends: memory proportional to such calls, bounded by
//! fuel and by the memory budget (which charged each built formula's cells
//! when they were built; a formula taken from the subject instead is one of
//! its finitely many cells), at about 40 bytes of arena and table per
//! distinct formula cell on top.

use std::collections::HashMap;

use typed_arena::Arena;

mod compile;
mod compiled;

use compile::Node;

use super::{
    Crash, Hook, Limits, NoHook, NockError, Traced, CELL_BYTES, CHECK_INTERVAL, FRAME_BYTES,
};
use crate::axis::{edit_atom, slot_atom};
use crate::{Atom, Noun, Unifier};

/// Extra fuel for an operation on an atom of `bits` bits: one unit per
/// 64-bit word past the first.
#[inline(always)]
fn word_charge(bits: u64) -> u64 {
    bits.saturating_sub(1) / 64
}

/// Extra fuel for following an axis atom of `bits` bits: one unit per 64
/// levels past the first 64.
#[inline(always)]
fn axis_charge(axis: &Atom) -> u64 {
    match axis.as_u64() {
        Some(_) => 0,
        None => word_charge(axis.bit_len()),
    }
}

/// Deepest native recursion of the fast path.
pub(crate) const MAX_DEPTH: u32 = 64;

enum Frame<'a, T> {
    /// The current subject was pushed for the evaluation that returns here.
    PopSubject,
    /// Autocons: the head is done; evaluate this tail formula.
    ConsTail(&'a Noun),
    /// Autocons: the tail is done; cons it onto this head.
    Cons(Noun, T),
    /// Nock 2: the new subject is done; evaluate this formula-formula.
    Nock2Formula(&'a Noun),
    /// Nock 2: the formula is done; run it against this subject.
    Nock2Call(Noun, T),
    /// Nock 3.
    IsCell,
    /// Nock 4.
    Increment,
    /// Nock 5: the first operand is done; evaluate this second one.
    EqSecond(&'a Noun),
    /// Nock 5: compare with this first operand.
    Eq(Noun, T),
    /// Nock 6: the condition is done; choose one of these.
    Branch(&'a Noun, &'a Noun),
    /// Nock 7: the new subject is done; evaluate this formula against it.
    Compose(&'a Noun),
    /// Nock 8: the pushed value is done; evaluate this formula.
    Push(&'a Noun),
    /// Nock 9: the core is done; call the arm at this axis.
    Call(&'a Atom),
    /// Nock 10: the value is done; evaluate this target formula.
    EditTarget(&'a Atom, &'a Noun),
    /// Nock 10: the target is done; write this value at this axis.
    Edit(&'a Atom, Noun, T),
    /// Nock 11: the dynamic hint is done; discard it and evaluate this.
    Hint(&'a Noun),
}

/// The machine stopped; the reason is in `Machine::halted`. Zero-sized, so
/// the hot path's `Result`s are no bigger than their values.
pub(super) struct Halt;

type Step<T> = Result<T, Halt>;

/// One formula, decoded: the opcode and its argument shapes checked.
enum Op<'a> {
    Cons(&'a Noun, &'a Noun),
    Slot(&'a Atom),
    Quote(&'a Noun),
    Nock2(&'a Noun, &'a Noun),
    IsCell(&'a Noun),
    Increment(&'a Noun),
    Eq(&'a Noun, &'a Noun),
    Branch(&'a Noun, &'a Noun, &'a Noun),
    Compose(&'a Noun, &'a Noun),
    Push(&'a Noun, &'a Noun),
    Call(&'a Atom, &'a Noun),
    Edit(&'a Atom, &'a Noun, &'a Noun),
    Hint(Option<&'a Noun>, &'a Noun),
}

#[inline(always)]
fn decode(formula: &Noun) -> Result<Op<'_>, Crash> {
    let Noun::Cell(f) = formula else {
        return Err(Crash::FormulaIsAtom);
    };
    let args = f.tail();
    let op = match f.head() {
        Noun::Cell(_) => return Ok(Op::Cons(f.head(), args)),
        Noun::Atom(op) => op,
    };
    let malformed = |opcode| Crash::Malformed { opcode };
    let pair = |opcode| match args {
        Noun::Cell(c) => Ok((c.head(), c.tail())),
        Noun::Atom(_) => Err(malformed(opcode)),
    };
    fn atom(n: &Noun, opcode: u8) -> Result<&Atom, Crash> {
        match n {
            Noun::Atom(a) => Ok(a),
            Noun::Cell(_) => Err(Crash::Malformed { opcode }),
        }
    }
    Ok(match op.as_u64() {
        Some(0) => Op::Slot(atom(args, 0)?),
        Some(1) => Op::Quote(args),
        Some(2) => {
            let (b, c) = pair(2)?;
            Op::Nock2(b, c)
        }
        Some(3) => Op::IsCell(args),
        Some(4) => Op::Increment(args),
        Some(5) => {
            let (b, c) = pair(5)?;
            Op::Eq(b, c)
        }
        Some(6) => {
            let (b, cd) = pair(6)?;
            let Noun::Cell(cd) = cd else {
                return Err(malformed(6));
            };
            Op::Branch(b, cd.head(), cd.tail())
        }
        Some(7) => {
            let (b, c) = pair(7)?;
            Op::Compose(b, c)
        }
        Some(8) => {
            let (b, c) = pair(8)?;
            Op::Push(b, c)
        }
        Some(9) => {
            let (b, c) = pair(9)?;
            Op::Call(atom(b, 9)?, c)
        }
        Some(10) => {
            let (bc, d) = pair(10)?;
            let Noun::Cell(bc) = bc else {
                return Err(malformed(10));
            };
            Op::Edit(atom(bc.head(), 10)?, bc.tail(), d)
        }
        Some(11) => {
            let (b, d) = pair(11)?;
            match b {
                Noun::Atom(_) => Op::Hint(None, d),
                Noun::Cell(hint) => Op::Hint(Some(hint.tail()), d),
            }
        }
        _ => return Err(Crash::UnknownOpcode(op.clone())),
    })
}

#[inline]
fn loobean(yes: bool) -> Noun {
    if yes {
        Noun::ZERO
    } else {
        Noun::ONE
    }
}

pub(super) struct Machine<'a, 'h, H: Hook> {
    arena: &'a Arena<Noun>,
    interned: HashMap<usize, &'a Noun>,
    last: Option<(usize, &'a Noun)>,
    /// Compiled formulas (`compile.rs`), for untracked evaluation; keyed
    /// like `interned`, whose arena keeps every key's formula alive.
    nodes: &'a Arena<Node<'a>>,
    compiled: HashMap<usize, &'a Node<'a>>,
    last_node: Option<(usize, &'a Node<'a>)>,
    limits: &'h Limits,
    hook: &'h mut H,
    subjects: Vec<(Noun, H::Tag)>,
    frames: Vec<Frame<'a, H::Tag>>,
    fuel: u64,
    /// Steps until the next periodic safe point.
    until_check: u64,
    /// Bytes of cells and atoms built so far.
    allocated: u64,
    /// Pending evaluations of the fast path (native recursion); the
    /// machine's are its frames that are not subject markers.
    live: u64,
    /// Cells found equal by Nock 5, for the rest of the run.
    unifier: Option<Box<Unifier>>,
    max_depth: u32,
    halted: Option<NockError>,
}

/// Compute `*[subject formula]` (see [`run_with_depth`](super::run_with_depth)).
pub(super) fn evaluate<H: Hook>(
    subject: Noun,
    tag: H::Tag,
    formula: &Noun,
    limits: &Limits,
    hook: &mut H,
    max_depth: u32,
) -> Result<Traced<H::Tag>, NockError> {
    let arena = Arena::new();
    let nodes = Arena::new();
    Machine::new(&arena, &nodes, limits, hook, max_depth).run(subject, tag, formula)
}

impl<'a, 'h, H: Hook> Machine<'a, 'h, H> {
    fn new(
        arena: &'a Arena<Noun>,
        nodes: &'a Arena<Node<'a>>,
        limits: &'h Limits,
        hook: &'h mut H,
        max_depth: u32,
    ) -> Self {
        Machine {
            arena,
            interned: HashMap::new(),
            last: None,
            nodes,
            compiled: HashMap::new(),
            last_node: None,
            limits,
            hook,
            subjects: Vec::new(),
            frames: Vec::new(),
            fuel: limits.fuel,
            until_check: CHECK_INTERVAL,
            allocated: 0,
            live: 0,
            unifier: None,
            max_depth,
            halted: None,
        }
    }

    pub(super) fn run(
        mut self,
        subject: Noun,
        tag: H::Tag,
        formula: &Noun,
    ) -> Result<Traced<H::Tag>, NockError> {
        let formula: &'a Noun = self.arena.alloc(formula.clone());
        let result = if self.max_depth == 0 {
            self.deep((subject, tag), formula)
        } else {
            self.fast(&subject, &tag, formula, 1)
        };
        match result {
            Ok((product, tag)) => Ok(Traced {
                steps: self.spent(),
                product,
                tag,
            }),
            Err(Halt) => Err(self.halted.take().expect("a halt records why")),
        }
    }

    #[cold]
    fn halt(&mut self, error: NockError) -> Halt {
        self.halted = Some(error);
        Halt
    }

    #[cold]
    fn crash<T>(&mut self, c: Crash) -> Step<T> {
        Err(self.halt(NockError::Crash(c)))
    }

    fn spent(&self) -> u64 {
        self.limits.fuel - self.fuel
    }

    /// A safe point: stop here if cancelled.
    #[inline]
    fn check_cancel(&mut self) -> Step<()> {
        match &self.limits.cancel {
            Some(token) if token.is_cancelled() => {
                let spent = self.spent();
                Err(self.halt(NockError::Cancelled { spent }))
            }
            _ => Ok(()),
        }
    }

    /// Spend one unit of fuel for one formula; a safe point every
    /// [`CHECK_INTERVAL`] steps.
    #[inline(always)]
    fn burn(&mut self) -> Step<()> {
        if self.fuel == 0 {
            return Err(self.out_of_fuel());
        }
        self.fuel -= 1;
        self.until_check -= 1;
        if self.until_check == 0 {
            self.until_check = CHECK_INTERVAL;
            self.check_cancel()?;
        }
        Ok(())
    }

    #[cold]
    fn out_of_fuel(&mut self) -> Halt {
        let spent = self.limits.fuel;
        self.halt(NockError::OutOfFuel { spent })
    }

    #[cold]
    fn out_of_memory(&mut self) -> Halt {
        let budget = self.limits.memory;
        self.halt(NockError::OutOfMemory { budget })
    }

    /// Spend `extra` more fuel for an operation whose time grows with its
    /// operands (a safe point too: such operations are rare and slow).
    #[inline(always)]
    fn burn_extra(&mut self, extra: u64) -> Step<()> {
        if extra == 0 {
            return Ok(());
        }
        self.burn_extra_slow(extra)
    }

    #[cold]
    fn burn_extra_slow(&mut self, extra: u64) -> Step<()> {
        if self.fuel < extra {
            return Err(self.out_of_fuel());
        }
        self.fuel -= extra;
        self.check_cancel()
    }

    /// Bytes the pending evaluations count for: the fast path's, and the
    /// machine's frames that are not subject markers (each marker has one
    /// subject).
    #[inline(always)]
    fn stack_bytes(&self) -> u64 {
        // Cannot overflow: pending evaluations are far fewer than 2^57.
        let pending = self.live + (self.frames.len() - self.subjects.len()) as u64;
        pending * FRAME_BYTES
    }

    /// Charge `bytes` of new cells or atoms to the memory budget. Together
    /// with [`grow`](Self::grow) this keeps `allocated + stack` within the
    /// budget at every point where either grows, so both evaluators stop
    /// at the same step.
    #[inline(always)]
    fn allocate(&mut self, bytes: u64) -> Step<()> {
        match self.allocated.checked_add(bytes) {
            Some(total)
                if total <= self.limits.memory
                    && self.stack_bytes() <= self.limits.memory - total =>
            {
                self.allocated = total;
                Ok(())
            }
            _ => Err(self.out_of_memory()),
        }
    }

    /// One more evaluation is pending: check the stack against the budget.
    #[inline(always)]
    fn grow(&mut self) -> Step<()> {
        if self.stack_bytes() > self.limits.memory - self.allocated {
            return Err(self.out_of_memory());
        }
        Ok(())
    }

    /// Spend fuel for `formula` and decode it.
    #[inline(always)]
    fn start(&mut self, formula: &'a Noun) -> Step<Op<'a>> {
        self.burn()?;
        match decode(formula) {
            Ok(op) => Ok(op),
            Err(c) => self.crash(c),
        }
    }

    /// Keep a formula produced at run time alive for the rest of the run;
    /// clones only the first time a formula cell is seen. The last lookup is
    /// remembered, so a loop calling one arm skips the table.
    #[inline]
    fn intern(&mut self, formula: &Noun) -> &'a Noun {
        let Noun::Cell(c) = formula else {
            return self.arena.alloc(formula.clone());
        };
        let key = c.addr();
        if let Some((k, f)) = self.last {
            if k == key {
                return f;
            }
        }
        let arena = self.arena;
        let f: &'a Noun = self
            .interned
            .entry(key)
            .or_insert_with(|| arena.alloc(formula.clone()));
        self.last = Some((key, f));
        f
    }

    /// The subtree at `axis` of `subject` and its tag, for Nock 0
    /// (`opcode` 0) or the arm lookup of Nock 9 (`opcode` 9).
    #[inline(always)]
    fn locate<'n>(
        &mut self,
        subject: &'n Noun,
        tag: &H::Tag,
        axis: &Atom,
        opcode: u8,
    ) -> Step<(&'n Noun, H::Tag)> {
        self.burn_extra(axis_charge(axis))?;
        match slot_atom(axis, subject) {
            Some(found) => Ok((found, self.hook.slot(tag, axis))),
            None => {
                self.hook.failed(tag, axis);
                self.crash(Crash::Slot {
                    opcode,
                    axis: axis.clone(),
                })
            }
        }
    }

    /// Nock 0: an owned copy of what [`locate`](Self::locate) finds.
    #[inline(always)]
    fn slot(&mut self, subject: &Noun, tag: &H::Tag, axis: &Atom) -> Step<(Noun, H::Tag)> {
        let (found, tag) = self.locate(subject, tag, axis, 0)?;
        Ok((found.clone(), tag))
    }

    /// Nock 9's call: the arm at `axis` of `core`, inspected and interned
    /// (cloned only the first time this arm is seen).
    #[inline]
    fn arm(&mut self, core: &Noun, tag: &H::Tag, axis: &Atom) -> Step<&'a Noun> {
        self.check_cancel()?;
        let (arm, arm_tag) = self.locate(core, tag, axis, 9)?;
        self.hook.inspect(arm, &arm_tag);
        Ok(self.intern(arm))
    }

    /// Nock 2's call: the computed formula, inspected and interned.
    #[inline]
    fn callee(&mut self, formula: &Noun, tag: &H::Tag) -> Step<&'a Noun> {
        self.check_cancel()?;
        self.hook.inspect(formula, tag);
        Ok(self.intern(formula))
    }

    #[inline(always)]
    fn increment(&mut self, value: (Noun, H::Tag)) -> Step<(Noun, H::Tag)> {
        self.hook.inspect(&value.0, &value.1);
        match &value.0 {
            Noun::Atom(a) => {
                if a.as_u64().is_none_or(|v| v == u64::MAX) {
                    self.increment_big(a)?;
                }
                Ok((Noun::Atom(a.increment()), self.hook.constant()))
            }
            Noun::Cell(_) => self.crash(Crash::IncrementCell),
        }
    }

    /// Charge the increment of an atom of a word or more: its size in fuel
    /// and in memory.
    #[cold]
    fn increment_big(&mut self, a: &Atom) -> Step<()> {
        self.burn_extra(word_charge(a.bit_len()))?;
        self.allocate((a.bit_len() + 1).div_ceil(64) * 8 + 32)
    }

    #[inline(always)]
    fn is_cell(&mut self, value: (Noun, H::Tag)) -> (Noun, H::Tag) {
        self.hook.inspect_cell(&value.0, &value.1);
        (loobean(value.0.is_cell()), self.hook.constant())
    }

    #[inline(always)]
    fn equal(&mut self, a: (Noun, H::Tag), b: (Noun, H::Tag)) -> Step<(Noun, H::Tag)> {
        self.hook.inspect(&a.0, &a.1);
        self.hook.inspect(&b.0, &b.1);
        let same = match (&a.0, &b.0) {
            (Noun::Atom(x), Noun::Atom(y)) => {
                if let (None, None) = (x.as_u64(), y.as_u64()) {
                    self.burn_extra(word_charge(x.bit_len().min(y.bit_len())))?;
                }
                x == y
            }
            (Noun::Cell(x), Noun::Cell(y)) if x.ptr_eq(y) => true,
            (Noun::Cell(_), Noun::Cell(_)) => {
                self.unifier.get_or_insert_with(Box::default).eq(&a.0, &b.0)
            }
            _ => false,
        };
        Ok((loobean(same), self.hook.constant()))
    }

    /// Autocons: `[head tail]`, charged to the memory budget.
    #[inline(always)]
    fn cons(&mut self, head: (Noun, H::Tag), tail: (Noun, H::Tag)) -> Step<(Noun, H::Tag)> {
        self.allocate(CELL_BYTES)?;
        let tag = self.hook.cons(head.1, tail.1);
        Ok((Noun::cell(head.0, tail.0), tag))
    }

    /// Nock 6: which branch the condition selects.
    #[inline(always)]
    fn choose(&mut self, cond: (Noun, H::Tag), yes: &'a Noun, no: &'a Noun) -> Step<&'a Noun> {
        self.hook.inspect(&cond.0, &cond.1);
        match &cond.0 {
            Noun::Atom(a) => match a.as_u64() {
                Some(0) => Ok(yes),
                Some(1) => Ok(no),
                _ => self.crash(Crash::Branch {
                    condition: Some(a.clone()),
                }),
            },
            Noun::Cell(_) => self.crash(Crash::Branch { condition: None }),
        }
    }

    #[inline]
    fn edit(
        &mut self,
        axis: &Atom,
        value: (Noun, H::Tag),
        target: (Noun, H::Tag),
    ) -> Step<(Noun, H::Tag)> {
        // One new cell per level of the axis.
        self.burn_extra(axis_charge(axis))?;
        self.allocate(axis.bit_len().saturating_sub(1).saturating_mul(CELL_BYTES))?;
        match edit_atom(axis, value.0, &target.0) {
            Some(edited) => Ok((edited, self.hook.edit(target.1, axis, value.1))),
            None => {
                self.hook.failed(&target.1, axis);
                self.crash(Crash::Edit { axis: axis.clone() })
            }
        }
    }

    /// Evaluate a sub-formula that is not in tail position: on the spot for
    /// `[0 b]` and `[1 c]`, by recursion while shallow, on the machine below
    /// [`MAX_DEPTH`].
    #[inline(always)]
    fn sub(
        &mut self,
        subject: &Noun,
        tag: &H::Tag,
        formula: &'a Noun,
        depth: u32,
    ) -> Step<(Noun, H::Tag)> {
        // A pending evaluation while the sub-formula runs, as the machine's
        // frame would be.
        // The fast path runs only with the machine's stacks empty, so the
        // pending evaluations are `live` alone.
        self.live += 1;
        let product = if self.live * FRAME_BYTES > self.limits.memory - self.allocated {
            Err(self.out_of_memory())
        } else {
            self.sub_pending(subject, tag, formula, depth)
        };
        self.live -= 1;
        product
    }

    #[inline(always)]
    fn sub_pending(
        &mut self,
        subject: &Noun,
        tag: &H::Tag,
        formula: &'a Noun,
        depth: u32,
    ) -> Step<(Noun, H::Tag)> {
        if let Noun::Cell(c) = formula {
            if let Noun::Atom(op) = c.head() {
                match (op.as_u64(), c.tail()) {
                    (Some(0), Noun::Atom(axis)) => {
                        self.burn()?;
                        return self.slot(subject, tag, axis);
                    }
                    (Some(1), quoted) => {
                        self.burn()?;
                        return Ok((quoted.clone(), self.hook.constant()));
                    }
                    (Some(4), Noun::Cell(operand)) => {
                        // `[4 0 b]`, the loop counter's increment: the same
                        // steps, checks and hook calls as the fast path's
                        // (fuel for the 4, a pending evaluation for its
                        // operand, fuel for the 0, the lookup, the
                        // increment), without a recursive call.
                        if let (Noun::Atom(zero), Noun::Atom(axis)) =
                            (operand.head(), operand.tail())
                        {
                            if zero.as_u64() == Some(0) {
                                self.burn()?;
                                // `sub`'s pending count, spelled out: calling
                                // `sub` here, or a shared closure helper,
                                // changed the fast path's inlining and cost
                                // 15% (callgrind, the decrement loop).
                                self.live += 1;
                                let found = if self.live * FRAME_BYTES
                                    > self.limits.memory - self.allocated
                                {
                                    Err(self.out_of_memory())
                                } else {
                                    self.burn().and_then(|()| self.slot(subject, tag, axis))
                                };
                                self.live -= 1;
                                return self.increment(found?);
                            }
                        }
                    }
                    _ => {}
                }
            }
        }
        if depth < self.max_depth {
            self.fast(subject, tag, formula, depth + 1)
        } else {
            self.deep((subject.clone(), tag.clone()), formula)
        }
    }

    /// The fast path: evaluate `formula` against a borrowed subject, by
    /// native recursion `depth` levels deep (at most [`MAX_DEPTH`]).
    fn fast(
        &mut self,
        subject: &Noun,
        tag: &H::Tag,
        mut formula: &'a Noun,
        depth: u32,
    ) -> Step<(Noun, H::Tag)> {
        // The subject once a tail call has replaced the borrowed one.
        let mut held: Option<(Noun, H::Tag)> = None;
        loop {
            let (s, t) = match &held {
                Some((s, t)) => (s, t),
                None => (subject, tag),
            };
            if self.hook.is_inert(t) {
                return self.untracked(s, formula, depth);
            }
            let next: (Noun, H::Tag) = match self.start(formula)? {
                Op::Slot(axis) => return self.slot(s, t, axis),
                Op::Quote(q) => return Ok((q.clone(), self.hook.constant())),
                Op::Cons(b, c) => {
                    let head = self.sub(s, t, b, depth)?;
                    let tail = self.sub(s, t, c, depth)?;
                    return self.cons(head, tail);
                }
                Op::IsCell(b) => {
                    let v = self.sub(s, t, b, depth)?;
                    return Ok(self.is_cell(v));
                }
                Op::Increment(b) => {
                    let v = self.sub(s, t, b, depth)?;
                    return self.increment(v);
                }
                Op::Eq(b, c) => {
                    let x = self.sub(s, t, b, depth)?;
                    let y = self.sub(s, t, c, depth)?;
                    return self.equal(x, y);
                }
                Op::Branch(b, yes, no) => {
                    let cond = self.sub(s, t, b, depth)?;
                    formula = self.choose(cond, yes, no)?;
                    continue;
                }
                Op::Hint(hint, d) => {
                    if let Some(c) = hint {
                        drop(self.sub(s, t, c, depth)?);
                    }
                    formula = d;
                    continue;
                }
                Op::Edit(axis, c, d) => {
                    let value = self.sub(s, t, c, depth)?;
                    let target = self.sub(s, t, d, depth)?;
                    return self.edit(axis, value, target);
                }
                Op::Nock2(b, c) => {
                    let new = self.sub(s, t, b, depth)?;
                    let f = self.sub(s, t, c, depth)?;
                    formula = self.callee(&f.0, &f.1)?;
                    new
                }
                Op::Compose(b, c) => {
                    let new = self.sub(s, t, b, depth)?;
                    formula = c;
                    new
                }
                Op::Push(b, c) => {
                    let pushed = self.sub(s, t, b, depth)?;
                    formula = c;
                    self.cons(pushed, (s.clone(), t.clone()))?
                }
                Op::Call(axis, c) => {
                    let core = self.sub(s, t, c, depth)?;
                    formula = self.arm(&core.0, &core.1, axis)?;
                    core
                }
            };
            held = Some(next);
        }
    }

    /// Evaluate `formula` against a subject whose tag is inert
    /// ([`Hook::is_inert`]) with no hook at all: everything computed from
    /// it is inert too, so the hook would observe nothing and derive
    /// `constant()` for the product. The untracked machine takes over this
    /// one's counters, caches and depth, so fuel, memory charges, safe
    /// points and errors are exactly what this machine would have met.
    /// Called by the fast path only, when the explicit stacks are empty.
    #[inline(never)]
    fn untracked(&mut self, subject: &Noun, formula: &'a Noun, depth: u32) -> Step<(Noun, H::Tag)> {
        debug_assert!(self.frames.is_empty() && self.subjects.is_empty());
        let mut no_hook = NoHook;
        let mut plain = Machine {
            arena: self.arena,
            interned: std::mem::take(&mut self.interned),
            last: self.last,
            nodes: self.nodes,
            compiled: std::mem::take(&mut self.compiled),
            last_node: self.last_node,
            limits: self.limits,
            hook: &mut no_hook,
            subjects: Vec::new(),
            frames: Vec::new(),
            fuel: self.fuel,
            until_check: self.until_check,
            allocated: self.allocated,
            live: self.live,
            unifier: self.unifier.take(),
            max_depth: self.max_depth,
            halted: None,
        };
        let node = plain.node(formula);
        let result = plain.compiled(subject, node, depth);
        debug_assert_eq!(plain.live, self.live);
        self.interned = plain.interned;
        self.last = plain.last;
        self.compiled = plain.compiled;
        self.last_node = plain.last_node;
        self.fuel = plain.fuel;
        self.until_check = plain.until_check;
        self.allocated = plain.allocated;
        self.unifier = plain.unifier;
        match result {
            Ok(product) => Ok((product, self.hook.constant())),
            Err(Halt) => {
                self.halted = plain.halted;
                Err(Halt)
            }
        }
    }

    /// Make `subject` current for the evaluation about to start.
    #[inline]
    fn enter(&mut self, subject: (Noun, H::Tag)) {
        if let Some(Frame::PopSubject) = self.frames.last() {
            *self.subjects.last_mut().expect("PopSubject has a subject") = subject;
        } else {
            self.frames.push(Frame::PopSubject);
            self.subjects.push(subject);
        }
    }

    /// The machine: evaluate `formula` against `subject` on the explicit
    /// stacks, above whatever they already hold.
    fn deep(&mut self, subject: (Noun, H::Tag), mut formula: &'a Noun) -> Step<(Noun, H::Tag)> {
        let base = self.frames.len();
        self.frames.push(Frame::PopSubject);
        self.subjects.push(subject);
        'eval: loop {
            let mut product = self.descend(&mut formula)?;
            // Return `product` to the frames until one asks for an evaluation.
            loop {
                if self.frames.len() == base {
                    return Ok(product);
                }
                let frame = self.frames.pop().expect("above base");
                let (noun, tag) = product;
                product = match frame {
                    Frame::PopSubject => {
                        self.subjects.pop();
                        (noun, tag)
                    }
                    Frame::ConsTail(tail) => {
                        self.frames.push(Frame::Cons(noun, tag));
                        formula = tail;
                        continue 'eval;
                    }
                    Frame::Cons(head, head_tag) => self.cons((head, head_tag), (noun, tag))?,
                    Frame::Nock2Formula(c) => {
                        self.frames.push(Frame::Nock2Call(noun, tag));
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Nock2Call(subject, subject_tag) => {
                        formula = self.callee(&noun, &tag)?;
                        self.enter((subject, subject_tag));
                        continue 'eval;
                    }
                    Frame::IsCell => self.is_cell((noun, tag)),
                    Frame::Increment => self.increment((noun, tag))?,
                    Frame::EqSecond(c) => {
                        self.frames.push(Frame::Eq(noun, tag));
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Eq(first, first_tag) => self.equal((first, first_tag), (noun, tag))?,
                    Frame::Branch(yes, no) => {
                        formula = self.choose((noun, tag), yes, no)?;
                        continue 'eval;
                    }
                    Frame::Compose(c) => {
                        self.enter((noun, tag));
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Push(c) => {
                        let (s, t) = self.subjects.last().expect("a current subject");
                        let (s, t) = (s.clone(), t.clone());
                        let pushed = self.cons((noun, tag), (s, t))?;
                        self.enter(pushed);
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Call(axis) => {
                        formula = self.arm(&noun, &tag, axis)?;
                        self.enter((noun, tag));
                        continue 'eval;
                    }
                    Frame::EditTarget(axis, d) => {
                        self.frames.push(Frame::Edit(axis, noun, tag));
                        formula = d;
                        continue 'eval;
                    }
                    Frame::Edit(axis, value, value_tag) => {
                        self.edit(axis, (value, value_tag), (noun, tag))?
                    }
                    Frame::Hint(d) => {
                        formula = d;
                        continue 'eval;
                    }
                };
            }
        }
    }

    /// The machine's descent: start formulas, pushing frames, until one
    /// yields a product.
    fn descend(&mut self, formula: &mut &'a Noun) -> Step<(Noun, H::Tag)> {
        loop {
            let frame = match self.start(formula)? {
                Op::Slot(axis) => {
                    let (s, t) = self.subjects.last().expect("a current subject");
                    let (s, t) = (s.clone(), t.clone());
                    return self.slot(&s, &t, axis);
                }
                Op::Quote(q) => return Ok((q.clone(), self.hook.constant())),
                Op::Cons(b, c) => {
                    *formula = b;
                    Frame::ConsTail(c)
                }
                Op::Nock2(b, c) => {
                    *formula = b;
                    Frame::Nock2Formula(c)
                }
                Op::IsCell(b) => {
                    *formula = b;
                    Frame::IsCell
                }
                Op::Increment(b) => {
                    *formula = b;
                    Frame::Increment
                }
                Op::Eq(b, c) => {
                    *formula = b;
                    Frame::EqSecond(c)
                }
                Op::Branch(b, yes, no) => {
                    *formula = b;
                    Frame::Branch(yes, no)
                }
                Op::Compose(b, c) => {
                    *formula = b;
                    Frame::Compose(c)
                }
                Op::Push(b, c) => {
                    *formula = b;
                    Frame::Push(c)
                }
                Op::Call(axis, c) => {
                    *formula = c;
                    Frame::Call(axis)
                }
                Op::Edit(axis, c, d) => {
                    *formula = c;
                    Frame::EditTarget(axis, d)
                }
                Op::Hint(None, d) => {
                    *formula = d;
                    continue;
                }
                Op::Hint(Some(c), d) => {
                    *formula = c;
                    Frame::Hint(d)
                }
            };
            self.frames.push(frame);
            self.grow()?;
        }
    }
}
