//! The untracked evaluator over compiled formulas (`compile.rs`).
//!
//! [`Machine::compiled`] has the fast path's structure (native recursion
//! for non-tail sub-formulas up to [`MAX_DEPTH`], the machine below, tail
//! positions in a loop) and makes the same checks in the same order, with
//! two differences that change nothing observable:
//! - formulas are decoded once per run, and a Nock 9 arm or Nock 2 formula
//!   is looked up by its cell's address (the last one first) instead of
//!   being decoded again;
//! - a straight-line node whose bounds fit the remaining fuel, the steps
//!   to the next safe point and the memory budget runs in
//!   [`Machine::straight`], without per-formula checks, and is charged what
//!   it spent when it finishes. Anything that evaluation leaves to the
//!   exact path (a crash, an atom past a word) discards its work and
//!   evaluates the node the exact way, from the same counters.
//!
//! Only untracked runs use it (a hook would have to see every step).

use super::compile::{compile, Code, Node, Stats};
use super::{loobean, Machine, Step, MAX_DEPTH};
use crate::axis::{edit_atom, slot_u64};
use crate::nock::{Crash, NoHook, CELL_BYTES, FRAME_BYTES};
use crate::Noun;

/// The straight-line evaluator gave up: evaluate the node the exact way.
struct Bail;

/// What a straight-line evaluation spent.
#[derive(Default)]
struct Spent {
    starts: u64,
    bytes: u64,
}

impl<'a> Machine<'a, '_, NoHook> {
    /// The compiled form of `formula`, an interned formula (kept alive for
    /// the run, so its address names it).
    #[inline]
    pub(super) fn node(&mut self, formula: &'a Noun) -> &'a Node<'a> {
        let Noun::Cell(c) = formula else {
            return compile(self.nodes, formula, 0);
        };
        let key = c.addr();
        if let Some((k, n)) = self.last_node {
            if k == key {
                return n;
            }
        }
        let nodes = self.nodes;
        let n: &'a Node<'a> = self
            .compiled
            .entry(key)
            .or_insert_with(|| compile(nodes, formula, 0));
        self.last_node = Some((key, n));
        n
    }

    /// Whether a straight-line evaluation within `stats`, with `live`
    /// evaluations pending, cannot run out of fuel, reach a periodic safe
    /// point or pass the memory budget.
    #[inline(always)]
    fn fits(&self, stats: Stats) -> bool {
        stats.starts <= self.fuel
            && stats.starts < self.until_check
            && (self.live + stats.depth)
                .checked_mul(FRAME_BYTES)
                .and_then(|stack| stack.checked_add(stats.bytes))
                .and_then(|need| need.checked_add(self.allocated))
                .is_some_and(|total| total <= self.limits.memory)
    }

    /// Evaluate `node` straight through if it fits; `None` to go the exact
    /// way.
    #[inline(always)]
    fn try_straight(&mut self, subject: &Noun, node: &'a Node<'a>) -> Option<Noun> {
        let stats = node.stats?;
        if !self.fits(stats) {
            return None;
        }
        let mut spent = Spent::default();
        let product = self.straight(subject, node, &mut spent).ok()?;
        debug_assert!(spent.starts <= stats.starts && spent.bytes <= stats.bytes);
        self.fuel -= spent.starts;
        self.until_check -= spent.starts;
        self.allocated += spent.bytes;
        Some(product)
    }

    /// [`straight`](Self::straight), with the leaves (`[0 b]`, `[1 c]`)
    /// done in place instead of by a call.
    #[inline(always)]
    fn operand(
        &mut self,
        subject: &Noun,
        node: &'a Node<'a>,
        spent: &mut Spent,
    ) -> Result<Noun, Bail> {
        match node.code {
            Code::SlotSmall(axis) => {
                spent.starts += 1;
                slot_u64(axis, subject).cloned().ok_or(Bail)
            }
            Code::Quote(q) => {
                spent.starts += 1;
                Ok(q.clone())
            }
            _ => self.straight(subject, node, spent),
        }
    }

    /// A straight-line node (its stats are `Some`), without checks: the
    /// caller made sure none could fire.
    fn straight(
        &mut self,
        subject: &Noun,
        node: &'a Node<'a>,
        spent: &mut Spent,
    ) -> Result<Noun, Bail> {
        spent.starts += 1;
        match node.code {
            Code::SlotSmall(axis) => slot_u64(axis, subject).cloned().ok_or(Bail),
            Code::Quote(q) => Ok(q.clone()),
            Code::Cons(b, c) => {
                let head = self.operand(subject, b, spent)?;
                let tail = self.operand(subject, c, spent)?;
                spent.bytes += CELL_BYTES;
                Ok(Noun::cell(head, tail))
            }
            Code::IsCell(b) => Ok(loobean(self.operand(subject, b, spent)?.is_cell())),
            Code::Increment(b) => match self.operand(subject, b, spent)? {
                Noun::Atom(a) if a.as_u64().is_some_and(|v| v != u64::MAX) => {
                    Ok(Noun::Atom(a.increment()))
                }
                _ => Err(Bail),
            },
            Code::Eq(b, c) => {
                let x = self.operand(subject, b, spent)?;
                let y = self.operand(subject, c, spent)?;
                let same = match (&x, &y) {
                    (Noun::Atom(p), Noun::Atom(q)) => {
                        if let (None, None) = (p.as_u64(), q.as_u64()) {
                            return Err(Bail); // charged by size
                        }
                        p == q
                    }
                    (Noun::Cell(p), Noun::Cell(q)) if p.ptr_eq(q) => true,
                    (Noun::Cell(_), Noun::Cell(_)) => {
                        self.unifier.get_or_insert_with(Box::default).eq(&x, &y)
                    }
                    _ => false,
                };
                Ok(loobean(same))
            }
            Code::Branch(b, yes, no) => {
                let cond = self.operand(subject, b, spent)?;
                match cond {
                    Noun::Atom(a) if a.as_u64() == Some(0) => self.operand(subject, yes, spent),
                    Noun::Atom(a) if a.as_u64() == Some(1) => self.operand(subject, no, spent),
                    _ => Err(Bail),
                }
            }
            Code::Compose(b, c) => {
                let new = self.operand(subject, b, spent)?;
                self.operand(&new, c, spent)
            }
            Code::Push(b, c) => {
                let pushed = self.operand(subject, b, spent)?;
                spent.bytes += CELL_BYTES;
                let new = Noun::cell(pushed, subject.clone());
                self.operand(&new, c, spent)
            }
            Code::Edit(axis, c, d) => {
                let value = self.operand(subject, c, spent)?;
                let target = self.operand(subject, d, spent)?;
                spent.bytes += axis.bit_len().saturating_sub(1) * CELL_BYTES;
                edit_atom(axis, value, &target).ok_or(Bail)
            }
            Code::Hint(hint, d) => {
                if let Some(h) = hint {
                    drop(self.operand(subject, h, spent)?);
                }
                self.operand(subject, d, spent)
            }
            Code::Slot(_) | Code::Nock2(..) | Code::Call(..) | Code::Bad | Code::Later => Err(Bail),
        }
    }

    /// A non-tail sub-formula, as [`sub`](Machine::sub): one more pending
    /// evaluation while it runs.
    #[inline(always)]
    fn compiled_sub(&mut self, subject: &Noun, node: &'a Node<'a>, depth: u32) -> Step<Noun> {
        self.live += 1;
        let product = if self.live * FRAME_BYTES > self.limits.memory - self.allocated {
            Err(self.out_of_memory())
        } else {
            self.compiled_pending(subject, node, depth)
        };
        self.live -= 1;
        product
    }

    #[inline(always)]
    fn compiled_pending(&mut self, subject: &Noun, node: &'a Node<'a>, depth: u32) -> Step<Noun> {
        if let Some(product) = self.try_straight(subject, node) {
            return Ok(product);
        }
        if depth < self.max_depth {
            self.compiled(subject, node, depth + 1)
        } else {
            self.deep((subject.clone(), ()), node.formula)
                .map(|(n, ())| n)
        }
    }

    /// Evaluate `node` against a borrowed subject, by native recursion
    /// `depth` levels deep (at most [`MAX_DEPTH`]).
    pub(super) fn compiled(
        &mut self,
        subject: &Noun,
        mut node: &'a Node<'a>,
        depth: u32,
    ) -> Step<Noun> {
        debug_assert!(depth <= MAX_DEPTH.max(self.max_depth) + 1);
        let mut held: Option<Noun> = None;
        loop {
            let s = held.as_ref().unwrap_or(subject);
            if let Code::Later = node.code {
                // Compiled once, as a root, and cached by address.
                node = self.node(node.formula);
            }
            if let Some(product) = self.try_straight(s, node) {
                return Ok(product);
            }
            self.burn()?;
            let next = match node.code {
                Code::Slot(axis) => return self.slot(s, &(), axis).map(|(n, ())| n),
                Code::SlotSmall(axis) => {
                    return match slot_u64(axis, s) {
                        Some(found) => Ok(found.clone()),
                        None => self.crash(Crash::Slot {
                            opcode: 0,
                            axis: crate::Atom::from(axis),
                        }),
                    }
                }
                Code::Quote(q) => return Ok(q.clone()),
                Code::Cons(b, c) => {
                    let head = self.compiled_sub(s, b, depth)?;
                    let tail = self.compiled_sub(s, c, depth)?;
                    return self.cons((head, ()), (tail, ())).map(|(n, ())| n);
                }
                Code::IsCell(b) => {
                    let v = self.compiled_sub(s, b, depth)?;
                    return Ok(self.is_cell((v, ())).0);
                }
                Code::Increment(b) => {
                    let v = self.compiled_sub(s, b, depth)?;
                    return self.increment((v, ())).map(|(n, ())| n);
                }
                Code::Eq(b, c) => {
                    let x = self.compiled_sub(s, b, depth)?;
                    let y = self.compiled_sub(s, c, depth)?;
                    return self.equal((x, ()), (y, ())).map(|(n, ())| n);
                }
                Code::Branch(b, yes, no) => {
                    let cond = self.compiled_sub(s, b, depth)?;
                    node = self.choose_node(cond, yes, no)?;
                    continue;
                }
                Code::Hint(hint, d) => {
                    if let Some(h) = hint {
                        drop(self.compiled_sub(s, h, depth)?);
                    }
                    node = d;
                    continue;
                }
                Code::Edit(axis, c, d) => {
                    let value = self.compiled_sub(s, c, depth)?;
                    let target = self.compiled_sub(s, d, depth)?;
                    return self.edit(axis, (value, ()), (target, ())).map(|(n, ())| n);
                }
                Code::Nock2(b, c) => {
                    let new = self.compiled_sub(s, b, depth)?;
                    let f = self.compiled_sub(s, c, depth)?;
                    let formula = self.callee(&f, &())?;
                    node = self.node(formula);
                    new
                }
                Code::Compose(b, c) => {
                    let new = self.compiled_sub(s, b, depth)?;
                    node = c;
                    new
                }
                Code::Push(b, c) => {
                    let pushed = self.compiled_sub(s, b, depth)?;
                    node = c;
                    self.cons((pushed, ()), (s.clone(), ()))?.0
                }
                Code::Call(axis, c) => {
                    let core = self.compiled_sub(s, c, depth)?;
                    node = self.arm_node(&core, axis)?;
                    core
                }
                Code::Bad => match super::decode(node.formula) {
                    Err(crash) => return self.crash(crash),
                    Ok(_) => unreachable!("a formula compiled as Bad does not decode"),
                },
                Code::Later => unreachable!("compiled above"),
            };
            held = Some(next);
        }
    }

    /// Nock 9's arm, compiled: [`arm`](Machine::arm)'s safe point and
    /// lookup; an arm called last time (a loop) is found by its address
    /// without interning it again (its node's formula is interned).
    #[inline(always)]
    fn arm_node(&mut self, core: &Noun, axis: &crate::Atom) -> Step<&'a Node<'a>> {
        if let (Some(a), Some((key, node))) = (axis.as_u64(), self.last_node) {
            if let Some(Noun::Cell(arm)) = slot_u64(a, core) {
                if arm.addr() == key {
                    self.check_cancel()?;
                    return Ok(node);
                }
            }
        }
        let formula = self.arm(core, &(), axis)?;
        Ok(self.node(formula))
    }

    /// Nock 6 over compiled arms: [`choose`](Machine::choose)'s checks.
    #[inline(always)]
    fn choose_node(
        &mut self,
        cond: Noun,
        yes: &'a Node<'a>,
        no: &'a Node<'a>,
    ) -> Step<&'a Node<'a>> {
        match &cond {
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
}
