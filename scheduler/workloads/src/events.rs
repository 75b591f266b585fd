//! The event kinds workloads are made of: Rust read-modify-write touches,
//! the equivalent Nock formulas, and injected faults.

use std::hint::black_box;
use std::marker::PhantomData;
use std::sync::Arc;

use spectree::noun::{Axis, Noun};
use spectree::stm::{EventError, Key, RustEvent, State, Tx};
use spectree::Backend;

use super::rng::Rng;
use spectree::Event;

/// The kernel of the noun workloads: run the event as a formula on the
/// subject `[event state]`.
pub const KERNEL: &str = "[2 [0 1] 0 2]";

/// [`spin`] iterations per microsecond, roughly (measured on the
/// development machine; the work is deterministic, its duration is not).
pub const ITERS_PER_US: f64 = 450.0;

/// Decrement-loop iterations per microsecond of the interpreter, roughly.
pub const NOCK_ITERS_PER_US: f64 = 5.0;

use spectree::noun::nock::decrement;

/// Deterministic busy work: `iters` rounds of xorshift from `seed`.
pub fn spin(iters: u64, seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..iters {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    black_box(x)
}

pub(crate) fn iters(work_us: f64, per_us: f64) -> u64 {
    (work_us * per_us).round() as u64
}

fn value_of(v: Option<Noun>) -> u64 {
    match v {
        Some(Noun::Atom(a)) => a.as_u64().unwrap_or_else(|| u64::from(a.mug())),
        Some(n) => u64::from(n.mug()),
        None => 0,
    }
}

/// A Rust event: read some keys, work, and (for read-modify-write) write
/// each key back changed; its effects are a digest of what it read.
#[derive(Debug, Clone)]
pub struct Touch<K> {
    keys: Vec<K>,
    write: bool,
    iters: u64,
    salt: u64,
}

impl<K> Touch<K> {
    /// Read then write `keys`, with about `work_us` µs of work between.
    pub fn rmw(keys: Vec<K>, work_us: f64, salt: u64) -> Self {
        Touch {
            keys,
            write: true,
            iters: iters(work_us, ITERS_PER_US),
            salt,
        }
    }

    /// Only read `keys`.
    pub fn read(keys: Vec<K>, work_us: f64, salt: u64) -> Self {
        Touch {
            write: false,
            ..Touch::rmw(keys, work_us, salt)
        }
    }
}

impl<S: State> RustEvent<S> for Touch<S::Key>
where
    S::Key: Key,
{
    fn apply(&self, tx: &mut Tx<'_, S>) -> Result<Noun, EventError> {
        let mut acc = self.salt;
        let mut values = Vec::with_capacity(self.keys.len());
        for k in &self.keys {
            let v = value_of(tx.get(k)?);
            acc = acc.rotate_left(17) ^ v;
            values.push(v);
        }
        acc = spin(self.iters, acc);
        if self.write {
            for (k, v) in self.keys.iter().zip(values) {
                tx.put(k, Noun::atom(v.wrapping_add(acc & 0xffff) & 0xffff_ffff))?;
            }
        }
        Ok(Noun::atom(acc & 0xffff_ffff))
    }
}

/// A Nock event formula touching state axes, for the [`KERNEL`].
#[derive(Debug, Clone)]
pub struct NockTouch {
    axes: Vec<Axis>,
    write: bool,
    iters: u64,
}

fn cell(a: Noun, b: Noun) -> Noun {
    Noun::cell(a, b)
}

fn atom(n: u64) -> Noun {
    Noun::atom(n)
}

/// The subject axis of state axis `a` (the state is at axis 3).
fn in_subject(a: &Axis) -> Noun {
    Noun::Atom(Axis::TAIL.compose(a).to_atom())
}

impl NockTouch {
    /// Increment each of `axes`, with about `work_us` µs of interpreter
    /// work first.
    pub fn rmw(axes: &[Axis], work_us: f64) -> Self {
        NockTouch {
            axes: axes.to_vec(),
            write: true,
            iters: iters(work_us, NOCK_ITERS_PER_US),
        }
    }

    /// Read each of `axes` into the effects.
    pub fn read(axes: &[Axis], work_us: f64) -> Self {
        NockTouch {
            write: false,
            ..NockTouch::rmw(axes, work_us)
        }
    }

    /// The event formula: effects `[work-result values...]` or
    /// `work-result`, and the new state.
    pub fn formula(&self) -> Noun {
        let dec = decrement();
        // [7 [1 n] dec]: the work.
        let work = cell(atom(7), cell(cell(atom(1), atom(self.iters.max(1))), dec));
        if self.write {
            // Nested edits of the state [0 3]: [10 [a [4 0 sa]] ...].
            let state = self.axes.iter().fold(cell(atom(0), atom(3)), |target, a| {
                let bump = cell(atom(4), cell(atom(0), in_subject(a)));
                cell(atom(10), cell(cell(Noun::Atom(a.to_atom()), bump), target))
            });
            cell(work, state)
        } else {
            let effects = self
                .axes
                .iter()
                .fold(work, |acc, a| cell(acc, cell(atom(0), in_subject(a))));
            cell(effects, cell(atom(0), atom(3)))
        }
    }
}

/// How an injected fault fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The Rust event panics after writing.
    Panic,
    /// The Rust event returns an error after writing.
    Fail,
}

/// The payload of an injected failure ([`EventError::failed`]).
pub const INJECTED_FAILURE: u64 = 0xfa11;

/// A Rust event that runs another, then fails.
pub struct Faulty<S: State> {
    inner: Arc<dyn RustEvent<S>>,
    fault: Fault,
    _state: PhantomData<fn(S)>,
}

impl<S: State> RustEvent<S> for Faulty<S> {
    fn apply(&self, tx: &mut Tx<'_, S>) -> Result<Noun, EventError> {
        self.inner.apply(tx)?;
        match self.fault {
            Fault::Panic => panic!("injected panic"),
            Fault::Fail => Err(EventError::failed(INJECTED_FAILURE)),
        }
    }
}

/// With probability `faults`, turn `event` into a failing one: a Rust
/// event panics or fails after running; a Nock event (`nock`) crashes or
/// runs out of fuel.
pub(crate) fn with_fault<S: Backend>(
    event: Event<S>,
    rng: &mut Rng,
    faults: f64,
    nock: bool,
) -> Event<S> {
    if !rng.chance(faults) {
        return event;
    }
    let second = rng.below(2) == 0;
    match event {
        Event::Rust(inner) => Event::Rust(Arc::new(Faulty {
            inner,
            fault: if second { Fault::Fail } else { Fault::Panic },
            _state: PhantomData,
        })),
        Event::Nock(formula) if nock => {
            let faulty = if second {
                // A loop of 2^40 iterations: always out of fuel.
                cell(atom(7), cell(cell(atom(1), atom(1 << 40)), decrement()))
            } else {
                // Run the event, then take axis 0 of its product: a crash.
                let formula = S::nock_noun(&formula);
                cell(atom(7), cell(formula, cell(atom(0), atom(0))))
            };
            match S::nock_event(faulty) {
                Some(e) => Event::Nock(e),
                None => unreachable!("a backend with Nock events takes any noun"),
            }
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spectree::noun::nock::{nock, Limits};

    #[test]
    fn nock_touch_increments_and_reads() {
        let state: Noun = "[[0 5] 7 9]".parse().unwrap();
        let kernel: Noun = KERNEL.parse().unwrap();
        let ax = |n| Axis::new(n).unwrap();
        let e = NockTouch::rmw(&[ax(5), ax(6)], 0.0).formula();
        let out = nock(Noun::cell(e, state.clone()), &kernel, &Limits::fuel(10_000)).unwrap();
        assert_eq!(out.to_string(), "[0 [0 6] 8 9]");
        let e = NockTouch::read(&[ax(7)], 0.0).formula();
        let out = nock(Noun::cell(e, state), &kernel, &Limits::fuel(10_000)).unwrap();
        assert_eq!(out.to_string(), "[[0 9] [0 5] 7 9]");
    }
}
