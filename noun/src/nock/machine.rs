//! The evaluation machine: an explicit work stack of continuations.
//!
//! State: the current formula, a stack of subjects (the top one is current)
//! and a stack of [`Frame`]s saying what to do with the next product.
//! Evaluating a formula either produces a product at once (Nock 0, 1) or
//! pushes a frame and moves on to a sub-formula. A product pops frames until
//! one asks for another evaluation.
//!
//! Subjects are moved, not cloned, between frames: a computation that changes
//! the subject (Nock 2, 7, 8, 9) pushes the new subject with a
//! [`Frame::PopSubject`] marker, or, when the marker is already on top (a
//! call in tail position), replaces the top subject. Loops written as tail
//! calls therefore run in constant stack space.
//!
//! Formulas are borrowed for the whole run from an arena that keeps every
//! formula produced by Nock 2 and 9 alive; a small cache keyed by cell
//! address makes repeated calls of the same arm allocate nothing.

use typed_arena::Arena;

use super::{Crash, Hook, Limits, NockError, Traced, CHECK_INTERVAL};
use crate::axis::{edit_atom, slot_atom};
use crate::{Atom, Noun};

const CACHE: usize = 64;

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

pub(super) struct Machine<'a, 'h, H: Hook> {
    arena: &'a Arena<Noun>,
    cache: [(usize, Option<&'a Noun>); CACHE],
    limits: &'h Limits,
    hook: &'h mut H,
    subjects: Vec<(Noun, H::Tag)>,
    frames: Vec<Frame<'a, H::Tag>>,
    fuel: u64,
}

fn crash<T>(c: Crash) -> Result<T, NockError> {
    Err(NockError::Crash(c))
}

#[inline]
fn pair(n: &Noun, opcode: u8) -> Result<(&Noun, &Noun), NockError> {
    match n {
        Noun::Cell(c) => Ok((c.head(), c.tail())),
        Noun::Atom(_) => crash(Crash::Malformed { opcode }),
    }
}

#[inline]
fn atom(n: &Noun, opcode: u8) -> Result<&Atom, NockError> {
    match n {
        Noun::Atom(a) => Ok(a),
        Noun::Cell(_) => crash(Crash::Malformed { opcode }),
    }
}

#[inline]
fn loobean(yes: bool) -> Noun {
    if yes {
        Noun::ZERO
    } else {
        Noun::ONE
    }
}

impl<'a, 'h, H: Hook> Machine<'a, 'h, H> {
    pub(super) fn new(arena: &'a Arena<Noun>, limits: &'h Limits, hook: &'h mut H) -> Self {
        Machine {
            arena,
            cache: [(0, None); CACHE],
            limits,
            hook,
            subjects: Vec::new(),
            frames: Vec::new(),
            fuel: limits.fuel,
        }
    }

    fn spent(&self) -> u64 {
        self.limits.fuel - self.fuel
    }

    #[inline]
    fn check_cancel(&self) -> Result<(), NockError> {
        match &self.limits.cancel {
            Some(token) if token.is_cancelled() => Err(NockError::Cancelled {
                spent: self.spent(),
            }),
            _ => Ok(()),
        }
    }

    /// Keep a formula produced at run time alive for the rest of the run.
    #[inline]
    fn intern(&mut self, formula: Noun) -> &'a Noun {
        let Noun::Cell(c) = &formula else {
            return self.arena.alloc(formula);
        };
        let key = c.addr();
        let slot = &mut self.cache[(key >> 4) % CACHE];
        if slot.0 == key {
            if let Some(f) = slot.1 {
                return f;
            }
        }
        let f: &'a Noun = self.arena.alloc(formula);
        *slot = (key, Some(f));
        f
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

    pub(super) fn run(
        mut self,
        subject: Noun,
        tag: H::Tag,
        formula: &Noun,
    ) -> Result<Traced<H::Tag>, NockError> {
        let formula: &'a Noun = self.arena.alloc(formula.clone());
        self.subjects.push((subject, tag));
        let product = self.eval(formula)?;
        Ok(Traced {
            steps: self.spent(),
            product: product.0,
            tag: product.1,
        })
    }

    fn eval(&mut self, mut formula: &'a Noun) -> Result<(Noun, H::Tag), NockError> {
        'eval: loop {
            let mut product = self.step(&mut formula)?;
            // Return `product` to the frames until one asks for an evaluation.
            loop {
                let Some(frame) = self.frames.pop() else {
                    return Ok(product);
                };
                match frame {
                    Frame::PopSubject => {
                        self.subjects.pop();
                    }
                    Frame::ConsTail(tail) => {
                        self.frames.push(Frame::Cons(product.0, product.1));
                        formula = tail;
                        continue 'eval;
                    }
                    Frame::Cons(head, head_tag) => {
                        let tag = self.hook.cons(head_tag, product.1);
                        product = (Noun::cell(head, product.0), tag);
                    }
                    Frame::Nock2Formula(c) => {
                        self.frames.push(Frame::Nock2Call(product.0, product.1));
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Nock2Call(subject, tag) => {
                        self.check_cancel()?;
                        self.hook.inspect(&product.0, &product.1);
                        formula = self.intern(product.0);
                        self.enter((subject, tag));
                        continue 'eval;
                    }
                    Frame::IsCell => {
                        self.hook.inspect(&product.0, &product.1);
                        product = (loobean(product.0.is_cell()), self.hook.constant());
                    }
                    Frame::Increment => {
                        self.hook.inspect(&product.0, &product.1);
                        let Noun::Atom(a) = &product.0 else {
                            return crash(Crash::IncrementCell);
                        };
                        product = (Noun::Atom(a.increment()), self.hook.constant());
                    }
                    Frame::EqSecond(c) => {
                        self.frames.push(Frame::Eq(product.0, product.1));
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Eq(first, first_tag) => {
                        self.hook.inspect(&first, &first_tag);
                        self.hook.inspect(&product.0, &product.1);
                        product = (loobean(first == product.0), self.hook.constant());
                    }
                    Frame::Branch(yes, no) => {
                        self.hook.inspect(&product.0, &product.1);
                        formula = match &product.0 {
                            Noun::Atom(a) => match a.as_u64() {
                                Some(0) => yes,
                                Some(1) => no,
                                _ => {
                                    return crash(Crash::Branch {
                                        condition: Some(a.clone()),
                                    })
                                }
                            },
                            Noun::Cell(_) => return crash(Crash::Branch { condition: None }),
                        };
                        continue 'eval;
                    }
                    Frame::Compose(c) => {
                        self.enter(product);
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Push(c) => {
                        let (subject, tag) = self.subjects.last().expect("a current subject");
                        let (subject, tag) = (subject.clone(), tag.clone());
                        let tag = self.hook.cons(product.1, tag);
                        self.enter((Noun::cell(product.0, subject), tag));
                        formula = c;
                        continue 'eval;
                    }
                    Frame::Call(axis) => {
                        self.check_cancel()?;
                        let Some(arm) = slot_atom(axis, &product.0) else {
                            self.hook.failed(&product.1, axis);
                            return crash(Crash::Slot {
                                opcode: 9,
                                axis: axis.clone(),
                            });
                        };
                        let arm_tag = self.hook.slot(&product.1, axis);
                        self.hook.inspect(arm, &arm_tag);
                        let arm = arm.clone();
                        formula = self.intern(arm);
                        self.enter(product);
                        continue 'eval;
                    }
                    Frame::EditTarget(axis, d) => {
                        self.frames.push(Frame::Edit(axis, product.0, product.1));
                        formula = d;
                        continue 'eval;
                    }
                    Frame::Edit(axis, value, value_tag) => {
                        let Some(edited) = edit_atom(axis, value, &product.0) else {
                            self.hook.failed(&product.1, axis);
                            return crash(Crash::Edit { axis: axis.clone() });
                        };
                        let tag = self.hook.edit(product.1, axis, value_tag);
                        product = (edited, tag);
                    }
                    Frame::Hint(d) => {
                        formula = d;
                        continue 'eval;
                    }
                }
            }
        }
    }

    /// Evaluate formulas, pushing frames, until one yields a product.
    #[inline]
    fn step(&mut self, formula: &mut &'a Noun) -> Result<(Noun, H::Tag), NockError> {
        loop {
            if self.fuel == 0 {
                return Err(NockError::OutOfFuel {
                    spent: self.limits.fuel,
                });
            }
            self.fuel -= 1;
            if self.fuel % CHECK_INTERVAL == 0 {
                self.check_cancel()?;
            }
            let Noun::Cell(f) = *formula else {
                return crash(Crash::FormulaIsAtom);
            };
            let args = f.tail();
            let op = match f.head() {
                Noun::Cell(_) => {
                    self.frames.push(Frame::ConsTail(args));
                    *formula = f.head();
                    continue;
                }
                Noun::Atom(op) => op,
            };
            match op.as_u64() {
                Some(0) => {
                    let axis = atom(args, 0)?;
                    let (subject, tag) = self.subjects.last().expect("a current subject");
                    let Some(found) = slot_atom(axis, subject) else {
                        self.hook.failed(tag, axis);
                        return crash(Crash::Slot {
                            opcode: 0,
                            axis: axis.clone(),
                        });
                    };
                    let found = found.clone();
                    let tag = self.hook.slot(tag, axis);
                    return Ok((found, tag));
                }
                Some(1) => return Ok((args.clone(), self.hook.constant())),
                Some(2) => {
                    let (b, c) = pair(args, 2)?;
                    self.frames.push(Frame::Nock2Formula(c));
                    *formula = b;
                }
                Some(3) => {
                    self.frames.push(Frame::IsCell);
                    *formula = args;
                }
                Some(4) => {
                    self.frames.push(Frame::Increment);
                    *formula = args;
                }
                Some(5) => {
                    let (b, c) = pair(args, 5)?;
                    self.frames.push(Frame::EqSecond(c));
                    *formula = b;
                }
                Some(6) => {
                    let (b, cd) = pair(args, 6)?;
                    let (c, d) = pair(cd, 6)?;
                    self.frames.push(Frame::Branch(c, d));
                    *formula = b;
                }
                Some(7) => {
                    let (b, c) = pair(args, 7)?;
                    self.frames.push(Frame::Compose(c));
                    *formula = b;
                }
                Some(8) => {
                    let (b, c) = pair(args, 8)?;
                    self.frames.push(Frame::Push(c));
                    *formula = b;
                }
                Some(9) => {
                    let (b, c) = pair(args, 9)?;
                    self.frames.push(Frame::Call(atom(b, 9)?));
                    *formula = c;
                }
                Some(10) => {
                    let (bc, d) = pair(args, 10)?;
                    let (b, c) = pair(bc, 10)?;
                    self.frames.push(Frame::EditTarget(atom(b, 10)?, d));
                    *formula = c;
                }
                Some(11) => {
                    let (b, d) = pair(args, 11)?;
                    match b {
                        Noun::Atom(_) => *formula = d,
                        Noun::Cell(hint) => {
                            self.frames.push(Frame::Hint(d));
                            *formula = hint.tail();
                        }
                    }
                }
                _ => return crash(Crash::UnknownOpcode(op.clone())),
            }
        }
    }
}
