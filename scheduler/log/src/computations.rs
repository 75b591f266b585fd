//! Asynchronous computations: Nock work that leaves the ordered path (the
//! seed RFC's "asynchronous multiprocessing").
//!
//! An event's effects may ask for a computation ([`Request`]: subject,
//! formula, fuel, wall-clock timeout). A [`Supervisor`] runs it on its own
//! bounded set of threads, never on the processor's pool, so it cannot
//! starve ordered events or block a worker; when it ends, its [`Done`]
//! outcome becomes a **new event** (`[%async id result]`) appended to the
//! log and fed to the kernel like any other. Replay reads that event from
//! the log and never reruns the computation, so replay is deterministic
//! even though timeouts are not.
//!
//! Supervision invariants:
//! - every request produces exactly one outcome: the supervisor registers
//!   the request (its deadline and cancel token) before the computation
//!   starts, and whichever comes first (the result, or the deadline plus a
//!   grace period) settles it; a late result is dropped;
//! - nothing waits forever: a computation that panics settles as a crash,
//!   one that never reaches a safe point is settled as timed out at its
//!   deadline plus grace, while its thread is left to finish;
//! - [`Supervisor::shutdown`] cancels outstanding computations (they stop
//!   at their next safe point) and settles each as cancelled.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use spectree::noun::nock::{nock, CancelToken, Limits, NockError};
use spectree::noun::Noun;

/// A computation an event asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Identifies the outcome (the requesting event's index, say).
    pub id: u64,
    /// The subject.
    pub subject: Noun,
    /// The formula.
    pub formula: Noun,
    /// Fuel (formula evaluations, plus size charges).
    pub fuel: u64,
    /// Memory budget in bytes (see [`Limits`]).
    pub memory: u64,
    /// Wall-clock limit.
    pub timeout: Duration,
}

/// How a computation ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Done {
    /// It produced this.
    Product(Noun),
    /// Nock crashed (or the computation panicked).
    Crash,
    /// It ran out of fuel.
    OutOfFuel,
    /// It would have passed its memory budget.
    OutOfMemory,
    /// It passed its timeout.
    TimedOut,
    /// The supervisor shut down first.
    Cancelled,
}

/// `%async` as an atom (the cord, little-endian).
pub fn async_tag() -> Noun {
    Noun::atom(u64::from_le_bytes(*b"async\0\0\0"))
}

impl Done {
    /// The outcome as the noun an outcome event carries: `[0 product]`,
    /// `[1 0]` crash, `[2 0]` out of fuel, `[3 0]` timed out, `[4 0]`
    /// cancelled, `[5 0]` out of memory.
    pub fn to_noun(&self) -> Noun {
        let tag = |t: u64| Noun::cell(Noun::atom(t), Noun::ZERO);
        match self {
            Done::Product(p) => Noun::cell(Noun::ZERO, p.clone()),
            Done::Crash => tag(1),
            Done::OutOfFuel => tag(2),
            Done::TimedOut => tag(3),
            Done::Cancelled => tag(4),
            Done::OutOfMemory => tag(5),
        }
    }

    /// The outcome event for request `id`: `[%async id result]`.
    pub fn event(&self, id: u64) -> Noun {
        Noun::cell(async_tag(), Noun::cell(Noun::atom(id), self.to_noun()))
    }
}

/// Run one computation to its outcome (a panic is a crash).
fn compute(subject: Noun, formula: &Noun, limits: &Limits) -> Done {
    let result = spectree::stm::contain::contain(|| nock(subject, formula, limits));
    match result {
        Ok(Ok(p)) => Done::Product(p),
        Ok(Err(NockError::Crash(_))) | Err(_) => Done::Crash,
        Ok(Err(NockError::OutOfFuel { .. })) => Done::OutOfFuel,
        Ok(Err(NockError::OutOfMemory { .. })) => Done::OutOfMemory,
        Ok(Err(NockError::Cancelled { .. })) => Done::TimedOut,
        // A kind of failure this supervisor does not know: a crash.
        Ok(Err(_)) => Done::Crash,
    }
}

/// `%aref` as an atom: the head of an outcome logged by reference.
pub fn reference_tag() -> Noun {
    Noun::atom(u64::from_le_bytes(*b"aref\0\0\0\0"))
}

impl Done {
    /// The outcome as logged **by reference**, for the request in the
    /// effects of event `event`: `[%aref event id ref]`, where `ref` is
    /// `[0 mug]` for a product (recomputed on replay and checked against
    /// its mug), `[1 0]` for a crash (recomputed and checked to crash),
    /// or `[2 result]` for an outcome that is not a deterministic function
    /// of the log (out of fuel or memory are, but are logged whole with
    /// timeouts and cancellations: they are small).
    pub fn reference(&self, event: u64, id: u64) -> Noun {
        let by = match self {
            Done::Product(p) => Noun::cell(Noun::ZERO, Noun::atom(u64::from(p.mug()))),
            Done::Crash => Noun::cell(Noun::atom(1), Noun::ZERO),
            other => Noun::cell(Noun::atom(2), other.to_noun()),
        };
        Noun::cell(
            reference_tag(),
            Noun::cell(Noun::atom(event), Noun::cell(Noun::atom(id), by)),
        )
    }
}

/// Why an outcome logged by reference could not be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unresolved {
    /// The record is not `[%aref event id ref]` with a known `ref`.
    #[error("it is not a well-formed reference")]
    Malformed,
    /// The referenced event's effects hold no request.
    #[error("event {event} requested no computation")]
    NoRequest {
        /// The referenced event.
        event: u64,
    },
    /// The referenced event comes at or after the reference.
    #[error("it refers to event {event}, which does not come before it")]
    Forward {
        /// The referenced event.
        event: u64,
    },
    /// The reference's id is not the id of the request it names.
    #[error("it names outcome id {logged}, but the event's request has id {request}")]
    OtherId {
        /// The id in the reference.
        logged: u64,
        /// The id of the referenced request.
        request: u64,
    },
    /// Recomputing gave another outcome than the one logged.
    #[error("the recomputed outcome ({found}) is not the logged one ({logged})")]
    Differs {
        /// What the log says.
        logged: String,
        /// What recomputing gave.
        found: String,
    },
}

/// A reference `[%aref event id ref]` parsed: the event whose effects
/// hold the request, the outcome's id, and what was logged.
pub(crate) fn parse_reference(noun: &Noun) -> Option<Result<(u64, u64, Noun), Unresolved>> {
    let Noun::Cell(c) = noun else { return None };
    if c.head() != &reference_tag() {
        return None;
    }
    let parsed = (|| {
        let Noun::Cell(rest) = c.tail() else {
            return None;
        };
        let event = rest.head().as_atom()?.as_u64()?;
        let Noun::Cell(rest) = rest.tail() else {
            return None;
        };
        let id = rest.head().as_atom()?.as_u64()?;
        Some((event, id, rest.tail().clone()))
    })();
    Some(parsed.ok_or(Unresolved::Malformed))
}

/// Resolve a reference's logged `by` against `request`: the outcome event
/// `[%async id result]`, recomputed where it was logged by reference.
pub(crate) fn resolve(request: &Request, id: u64, by: &Noun) -> Result<Noun, Unresolved> {
    let Noun::Cell(c) = by else {
        return Err(Unresolved::Malformed);
    };
    if request.id != id {
        return Err(Unresolved::OtherId {
            logged: id,
            request: request.id,
        });
    }
    let kind = c.head().as_atom().and_then(|a| a.as_u64());
    let recompute = || {
        let limits = Limits::fuel(request.fuel).with_memory(request.memory);
        compute(request.subject.clone(), &request.formula, &limits)
    };
    let done = match kind {
        Some(0) => {
            let mug = c.tail().as_atom().and_then(|a| a.as_u64());
            let done = recompute();
            match &done {
                Done::Product(p) if Some(u64::from(p.mug())) == mug => done,
                other => {
                    return Err(Unresolved::Differs {
                        logged: format!("a product with mug {:#x}", mug.unwrap_or(0)),
                        found: describe(other),
                    })
                }
            }
        }
        Some(1) => match recompute() {
            Done::Crash => Done::Crash,
            other => {
                return Err(Unresolved::Differs {
                    logged: "a crash".into(),
                    found: describe(&other),
                })
            }
        },
        Some(2) => {
            return Ok(Noun::cell(
                async_tag(),
                Noun::cell(Noun::atom(id), c.tail().clone()),
            ))
        }
        _ => return Err(Unresolved::Malformed),
    };
    Ok(done.event(id))
}

fn describe(done: &Done) -> String {
    match done {
        Done::Product(p) => format!("a product with mug {:#x}", p.mug()),
        Done::Crash => "a crash".into(),
        Done::OutOfFuel => "out of fuel".into(),
        Done::OutOfMemory => "out of memory".into(),
        Done::TimedOut => "timed out".into(),
        Done::Cancelled => "cancelled".into(),
    }
}

/// Extra time past a deadline before a computation that has not reached a
/// safe point is settled as timed out without it.
const GRACE: Duration = Duration::from_millis(200);

/// A request as the supervisor tracks it: by its own ticket (request ids
/// come from callers and may repeat), with a deadline set at submission
/// (`None`: too far to represent).
struct Ticket {
    ticket: u64,
    request: Request,
    deadline: Option<Instant>,
}

struct Running {
    id: u64,
    deadline: Option<Instant>,
    cancel: CancelToken,
}

#[derive(Default)]
struct Books {
    next_ticket: u64,
    queue: VecDeque<Ticket>,
    running: BTreeMap<u64, Running>,
    settled: VecDeque<(u64, Done)>,
    stop: bool,
}

fn overdue(deadline: Option<Instant>, now: Instant, grace: Duration) -> bool {
    deadline
        .and_then(|d| d.checked_add(grace))
        .is_some_and(|d| now >= d)
}

struct Shared {
    books: Mutex<Books>,
    /// Signals work to the computation threads and results to waiters.
    changed: Condvar,
}

/// Runs requested computations on at most `concurrency` threads of its own.
pub struct Supervisor {
    shared: Arc<Shared>,
    threads: Vec<std::thread::JoinHandle<()>>,
    outstanding: u64,
}

use spectree::stm::contain::lock;

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor")
            .field("threads", &self.threads.len())
            .field("outstanding", &self.outstanding)
            .finish()
    }
}

impl Supervisor {
    /// A supervisor running at most `concurrency` computations at once.
    ///
    /// # Errors
    /// The error of starting a thread, if one cannot start (the threads
    /// started are stopped again).
    pub fn new(concurrency: usize) -> std::io::Result<Supervisor> {
        let shared = Arc::new(Shared {
            books: Mutex::new(Books::default()),
            changed: Condvar::new(),
        });
        let mut supervisor = Supervisor {
            shared,
            threads: Vec::new(),
            outstanding: 0,
        };
        for i in 0..concurrency.max(1) {
            let s = supervisor.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("spectree-async-{i}"))
                .spawn(move || worker(&s))?;
            supervisor.threads.push(thread);
        }
        Ok(supervisor)
    }

    /// Queue a request; its outcome will come from [`next`](Self::next).
    /// Its timeout counts from now, queued or running. After
    /// [`shutdown`](Self::shutdown) a request settles at once as cancelled.
    pub fn submit(&mut self, request: Request) {
        let deadline = Instant::now().checked_add(request.timeout);
        let mut books = lock(&self.shared.books);
        if books.stop {
            books.settled.push_back((request.id, Done::Cancelled));
            self.outstanding += 1;
            return;
        }
        let ticket = books.next_ticket;
        books.next_ticket += 1;
        books.queue.push_back(Ticket {
            ticket,
            request,
            deadline,
        });
        drop(books);
        self.outstanding += 1;
        self.shared.changed.notify_all();
    }

    /// Requests submitted and not yet returned by `next`.
    pub fn outstanding(&self) -> u64 {
        self.outstanding
    }

    /// The next settled outcome, waiting at most `wait` for one (settling
    /// overdue computations as timed out meanwhile).
    pub fn next(&mut self, wait: Duration) -> Option<(u64, Done)> {
        let end = Instant::now() + wait;
        let mut books = lock(&self.shared.books);
        loop {
            let now = Instant::now();
            // Deadlines: cancel at the deadline; settle without the
            // computation once the grace period is over too. Queued
            // requests time out the same way (all threads may be stuck).
            let mut late = Vec::new();
            for (ticket, r) in &books.running {
                if overdue(r.deadline, now, Duration::ZERO) {
                    r.cancel.cancel();
                }
                if overdue(r.deadline, now, GRACE) {
                    late.push(*ticket);
                }
            }
            for ticket in late {
                let r = books.running.remove(&ticket).expect("listed above");
                books.settled.push_back((r.id, Done::TimedOut));
            }
            let (expired, waiting): (VecDeque<Ticket>, VecDeque<Ticket>) =
                std::mem::take(&mut books.queue)
                    .into_iter()
                    .partition(|t| overdue(t.deadline, now, Duration::ZERO));
            books.queue = waiting;
            for t in expired {
                books.settled.push_back((t.request.id, Done::TimedOut));
            }
            if let Some(done) = books.settled.pop_front() {
                self.outstanding -= 1;
                return Some(done);
            }
            if now >= end {
                return None;
            }
            let tick = (end - now).min(Duration::from_millis(5));
            books = self
                .shared
                .changed
                .wait_timeout(books, tick)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Cancel everything outstanding (running computations stop at their
    /// next safe point) and settle each as cancelled; returns those
    /// outcomes, after any already settled.
    pub fn shutdown(&mut self) -> Vec<(u64, Done)> {
        let mut books = lock(&self.shared.books);
        books.stop = true;
        let mut out: Vec<(u64, Done)> = books.settled.drain(..).collect();
        out.extend(
            books
                .queue
                .drain(..)
                .map(|t| (t.request.id, Done::Cancelled)),
        );
        let running = std::mem::take(&mut books.running);
        for r in running.into_values() {
            r.cancel.cancel();
            out.push((r.id, Done::Cancelled));
        }
        drop(books);
        self.shared.changed.notify_all();
        self.outstanding -= out.len() as u64;
        out
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.shutdown();
        // Threads stop at their next safe point; a thread stuck outside
        // one is not waited for.
        for t in self.threads.drain(..) {
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}

fn worker(shared: &Shared) {
    loop {
        let request = {
            let mut books = lock(&shared.books);
            loop {
                if books.stop {
                    return;
                }
                if let Some(t) = books.queue.pop_front() {
                    // Monitoring is in place before the computation starts.
                    let cancel = CancelToken::new();
                    books.running.insert(
                        t.ticket,
                        Running {
                            id: t.request.id,
                            deadline: t.deadline,
                            cancel: cancel.clone(),
                        },
                    );
                    break (t.ticket, t.request, cancel);
                }
                books = shared
                    .changed
                    .wait_timeout(books, Duration::from_millis(50))
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
        };
        let (ticket, r, cancel) = request;
        let limits = Limits::fuel(r.fuel)
            .with_memory(r.memory)
            .with_cancel(Some(cancel.clone()));
        let done = compute(r.subject, &r.formula, &limits);
        let mut books = lock(&shared.books);
        // Settled already (overdue, or shut down)? Then this result is late.
        if books.running.remove(&ticket).is_some() {
            books.settled.push_back((r.id, done));
        }
        drop(books);
        shared.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(id: u64, formula: &str, fuel: u64, ms: u64) -> Request {
        Request {
            id,
            subject: Noun::atom(100_000_000),
            formula: formula.parse().unwrap(),
            fuel,
            memory: 1 << 30,
            timeout: Duration::from_millis(ms),
        }
    }

    const DEC: &str = spectree::noun::nock::DECREMENT;

    #[test]
    fn every_request_settles_once_with_its_outcome() {
        let mut s = Supervisor::new(2).unwrap();
        s.submit(req(1, "[4 0 1]", 100, 1000));
        s.submit(req(2, "[0 0]", 100, 1000));
        s.submit(req(3, DEC, 1000, 1000));
        s.submit(req(4, DEC, u64::MAX, 30));
        let mut got = BTreeMap::new();
        while s.outstanding() > 0 {
            if let Some((id, d)) = s.next(Duration::from_secs(5)) {
                assert!(got.insert(id, d).is_none(), "request {id} settled twice");
            }
        }
        assert_eq!(got[&1], Done::Product(Noun::atom(100_000_001)));
        assert_eq!(got[&2], Done::Crash);
        assert_eq!(got[&3], Done::OutOfFuel);
        assert_eq!(got[&4], Done::TimedOut);
    }

    #[test]
    fn repeated_ids_huge_timeouts_and_stuck_threads_still_settle() {
        let mut s = Supervisor::new(1).unwrap();
        s.submit(req(7, "[4 0 1]", 100, 1000));
        s.submit(req(7, "[0 0]", 100, 1000));
        let mut huge = req(8, "[4 0 1]", 100, 0);
        huge.timeout = Duration::MAX;
        s.submit(huge);
        // Queued behind a long computation on the only thread: times out
        // while still queued.
        let mut s2 = Supervisor::new(1).unwrap();
        s2.submit(req(1, DEC, u64::MAX, 60));
        s2.submit(req(2, "[4 0 1]", 100, 10));
        let mut got = Vec::new();
        while s.outstanding() > 0 {
            got.extend(s.next(Duration::from_secs(5)));
        }
        got.sort_by_key(|(id, d)| (*id, format!("{d:?}")));
        assert_eq!(got.len(), 3);
        assert_eq!(got.iter().filter(|(id, _)| *id == 7).count(), 2);
        let mut got2 = Vec::new();
        while s2.outstanding() > 0 {
            got2.extend(s2.next(Duration::from_secs(5)));
        }
        assert!(got2.contains(&(2, Done::TimedOut)), "{got2:?}");
    }

    #[test]
    fn shutdown_cancels_what_is_outstanding() {
        let mut s = Supervisor::new(1).unwrap();
        s.submit(req(1, DEC, u64::MAX, 60_000));
        s.submit(req(2, DEC, u64::MAX, 60_000));
        std::thread::sleep(Duration::from_millis(20));
        let mut out = s.shutdown();
        out.sort_by_key(|(id, _)| *id);
        assert_eq!(out, vec![(1, Done::Cancelled), (2, Done::Cancelled)]);
        assert_eq!(s.outstanding(), 0);
        // After shutdown, a request (even one with no deadline) settles at
        // once as cancelled.
        let mut never = req(3, DEC, u64::MAX, 0);
        never.timeout = Duration::MAX;
        s.submit(never);
        assert_eq!(s.next(Duration::from_secs(5)), Some((3, Done::Cancelled)));
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn memory_budgets_are_outcomes() {
        let mut s = Supervisor::new(1).unwrap();
        let mut r = req(1, "[4 2 [0 1] 0 1]", u64::MAX, 60_000);
        r.subject = r.formula.clone();
        r.memory = 1 << 20;
        s.submit(r);
        assert_eq!(
            s.next(Duration::from_secs(30)),
            Some((1, Done::OutOfMemory))
        );
    }
}
