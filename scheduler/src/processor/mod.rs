//! The speculative processor.
//!
//! Events run on a rayon pool against the newest committed snapshot of a
//! persistent state, and commit strictly in log order: a result whose reads
//! still hold is grafted onto the committed state, any other is re-executed
//! against it. The calling thread coordinates (it feeds events in and hands
//! outputs out, in order) and commits, executing the frontier event itself
//! whenever no worker has it; it never runs a speculative execution, so an
//! execution that never reaches a safe point cannot hold it up. The
//! protocol and the argument for its invariants are in `README.md` beside
//! this file.

mod adapt;
mod core;
#[cfg(all(test, loom))]
mod model;
mod watch;

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_utils::Backoff;
use spectree_stm::Regions;

use self::adapt::Controller;
use self::core::{lock, Cache, Core};
use crate::config::{Config, ProcessorBuilder};
use crate::event::{Backend, Committed, Event, Executor, Outcome, States};
use crate::metrics::Metrics;
use crate::serial::SerialProcessor;

/// The result of running a whole log.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Run<S> {
    /// The final state.
    pub state: S,
    /// Each event's outcome, in log order.
    pub outcomes: Vec<Outcome>,
    /// What the run did.
    pub metrics: Metrics,
}

/// Runs a log of events in parallel with results identical to the
/// [`SerialProcessor`]'s. Made by [`Processor::builder`].
///
/// ```
/// use spectree::{Event, NounState, Processor};
/// use spectree::stm::RegionMap;
///
/// // Kernel: effects 0; write the event at state axis 2.
/// let processor = Processor::builder(RegionMap::depth(1)?)
///     .kernel("[[1 0] 10 [2 0 2] 0 3]".parse()?)
///     .threads(2)
///     .build()?;
/// let events = || (0..100).map(|n| Event::nock(n.into()));
/// let state = NounState("[0 0]".parse()?);
/// let run = processor.run(state.clone(), events());
/// let serial = processor.serial().run(state, events());
/// assert_eq!(run.state, serial.state);
/// assert_eq!(run.outcomes, serial.outcomes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Processor<S: Backend> {
    executor: Arc<Executor<S>>,
    config: Config,
    /// Where the `threads` workers run (none with one thread: events then
    /// run directly on the calling thread).
    pool: Option<Arc<rayon::ThreadPool>>,
    /// Pool workers currently looping (across this processor's runs: a
    /// worker of an earlier run may still be finishing a doomed execution).
    active: Arc<AtomicUsize>,
}

impl<S: Backend> std::fmt::Debug for Processor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Processor")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Stack of each worker of a processor's own pool: four times the usual
/// 8 MiB main-thread stack, so that a Rust event's recursion that serial
/// execution survives on a calling thread survives on a worker too.
///
/// What differs: a speculative execution may read values serial order
/// never gives the event (it is discarded afterwards), and recursion driven
/// by such a value can go deeper than serially. An overflow aborts the
/// process; an event whose recursion depth comes from what it reads should
/// bound it (or poll [`Tx::aborted`](spectree_stm::Tx::aborted)). On a
/// pool given with [`ProcessorBuilder::pool`](crate::ProcessorBuilder::pool)
/// the pool's own stack size applies.
pub const WORKER_STACK: usize = 32 << 20;

impl<S: Backend> Processor<S> {
    /// A builder for a processor over `regions` (the state's commutation
    /// points; see [`Regions`]).
    pub fn builder(regions: impl Regions<S::Key> + 'static) -> ProcessorBuilder<S> {
        ProcessorBuilder::new(Arc::new(regions))
    }

    pub(crate) fn from_parts(
        executor: Executor<S>,
        config: Config,
        pool: Option<Arc<rayon::ThreadPool>>,
    ) -> Self {
        Processor {
            executor: Arc::new(executor),
            config,
            pool,
            active: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The serial oracle running events exactly as this processor does.
    pub fn serial(&self) -> SerialProcessor<S> {
        SerialProcessor::from_executor((*self.executor).clone())
    }

    /// Run every event, collecting outcomes.
    pub fn run(&self, state: S, events: impl IntoIterator<Item = Event<S>>) -> Run<S> {
        let mut outcomes = Vec::new();
        let (state, metrics) = self.stream(state, events, |c| outcomes.push(c.outcome));
        Run {
            state,
            outcomes,
            metrics,
        }
    }

    /// Run events as they come from `events`, handing each output to `sink`
    /// on the calling thread, in log order, as soon as it commits (with the
    /// states [`Config::states`] asks for). Memory is bounded by the window,
    /// whatever the length of the stream.
    ///
    /// A speculative execution of a Rust event that a commit has doomed and
    /// that never reaches a safe point (no `Tx` access, no
    /// [`Tx::aborted`](spectree_stm::Tx::aborted) poll) is not waited for:
    /// the event is executed again against the committed state, and the
    /// stream returns when every event is delivered while that execution
    /// still occupies its worker until it ends.
    ///
    /// # Panics
    /// If `events` or `sink` panics (after stopping the workers), or if a
    /// worker hits a bug (its panic is resumed here, with its payload). A
    /// panic inside a Rust event is not a panic here: it is that event's
    /// error.
    pub fn stream(
        &self,
        state: S,
        events: impl IntoIterator<Item = Event<S>>,
        sink: impl FnMut(Committed<S>),
    ) -> (S, Metrics) {
        self.stream_with_states(state, events, self.config.states, sink)
    }

    /// [`stream`](Self::stream), delivering the committed states `states`
    /// asks for instead of the configured ones.
    ///
    /// # Panics
    /// As [`stream`](Self::stream).
    pub fn stream_with_states(
        &self,
        state: S,
        events: impl IntoIterator<Item = Event<S>>,
        states: States,
        sink: impl FnMut(Committed<S>),
    ) -> (S, Metrics) {
        let start = Instant::now();
        let window = self.config.effective_window();
        let controller = Controller::new(window, self.config.threads, self.config.adaptive);
        // Slots beyond the speculation window buffer admitted events and
        // undelivered outputs, so that workers do not run dry while the
        // calling thread is busy in the sink or the event iterator.
        let slots = (4 * window).max(64);
        let core = Arc::new(Core::new(
            self.executor.clone(),
            states,
            state,
            slots,
            controller,
        ));
        let workers = self.config.threads;
        let spawns = {
            let pool = self.pool.as_ref().filter(|_| workers > 0);
            let active = &self.active;
            let mut spawns = 0u64;
            let mut spawn = || {
                let Some(pool) = pool else { return };
                active.fetch_add(1, Ordering::SeqCst);
                spawns += 1;
                let (core, active) = (core.clone(), active.clone());
                pool.spawn(move || {
                    worker(&core);
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            };
            coordinate(&core, &self.active, events, sink, workers, &mut spawn);
            spawns
        };
        if let Some(payload) = core
            .failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            resume_unwind(payload);
        }
        let mut head = lock(&core.head);
        let executions = core.executions.load(Ordering::Relaxed);
        let events = head.committed as u64;
        let commit_nanos = core.commit_nanos.load(Ordering::Relaxed);
        let user_nanos = core.commit_user_nanos.load(Ordering::Relaxed);
        let metrics = Metrics {
            elapsed: start.elapsed(),
            events,
            executions,
            reexecutions: executions - events,
            aborts: core.aborts.load(Ordering::Relaxed),
            direct: head.direct,
            failed_validations: head.failed,
            validation_failures: head.failures.clone(),
            commit_stalls: head.stalls,
            taken: head.taken,
            width_changes: head.controller.changes,
            commit_secs: commit_nanos as f64 * 1e-9,
            commit_overhead_nanos: commit_nanos.saturating_sub(user_nanos),
            speculative_commits: core.speculative_commits.load(Ordering::Relaxed),
            naps: core.naps.load(Ordering::Relaxed),
            spawns,
        };
        (head.take_state(), metrics)
    }
}

/// A pool worker: commit and execute until there is nothing to do for
/// about [`IDLE_EXIT`] (at once while speculation is off), then return to the pool (rayon puts the thread to
/// sleep; the coordinator spawns a worker again when work appears). While
/// idle it runs any other work of the pool first, and otherwise naps
/// briefly: it never blocks on a lock or condition variable.
fn worker<S: Backend>(core: &Core<S>) {
    let result = catch_unwind(AssertUnwindSafe(|| {
        let backoff = Backoff::new();
        let mut cache = Cache::new();
        let mut idle_since: Option<Instant> = None;
        while !core.stop.load(Ordering::Relaxed) {
            if core.try_commit(false) | core.claim_and_run(&mut cache) {
                backoff.reset();
                idle_since = None;
            } else if !backoff.is_completed() {
                backoff.snooze();
            } else if let Some(rayon::Yield::Executed) = rayon::yield_now() {
                idle_since = None;
            } else {
                let since = *idle_since.get_or_insert_with(Instant::now);
                // With speculation off nothing will come until the
                // coordinator spawns workers again: return at once rather
                // than nap beside the thread that executes directly.
                if since.elapsed() >= IDLE_EXIT || core.width.load(Ordering::Relaxed) == 1 {
                    break;
                }
                // Idle: hold no snapshot (it would keep a version alive,
                // and make the committed state copy what it shares).
                cache = Cache::new();
                core.naps.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(NAP);
            }
        }
    }));
    if let Err(payload) = result {
        *core.failure.lock().unwrap_or_else(|e| e.into_inner()) = Some(payload);
        core.stop.store(true, Ordering::SeqCst);
    }
}

/// Sets `stop` when the coordinator leaves, normally or by panicking, so
/// that workers return.
struct StopOnDrop<'a>(&'a crate::sync::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How long a pool worker stays without work before returning to the pool.
const IDLE_EXIT: Duration = Duration::from_millis(2);
/// How long an idle thread naps between looks for work.
const NAP: Duration = Duration::from_micros(20);

/// Longest wait of the calling thread between looks when workers do not
/// wake it.
const CALLER_NAP: Duration = Duration::from_micros(500);

/// Most events the coordinator runs directly per hold of the commit role.
const DIRECT_BATCH: usize = 64;

/// The calling thread: admits events into the window, delivers outputs in
/// order, spawns workers while speculating, and works itself.
fn coordinate<S: Backend>(
    core: &Core<S>,
    active: &AtomicUsize,
    events: impl IntoIterator<Item = Event<S>>,
    mut sink: impl FnMut(Committed<S>),
    workers: usize,
    spawn: &mut dyn FnMut(),
) {
    let _stop = StopOnDrop(&core.stop);
    let slots = core.slots();
    let mut events = events.into_iter().fuse();
    let mut exhausted = false;
    let mut delivered = 0usize;
    let backoff = Backoff::new();
    loop {
        if core.stop.load(Ordering::Relaxed) {
            return; // a worker failed; the caller reports it
        }
        let mut progressed = false;
        // Direct execution: nothing in flight, speculation off.
        if !exhausted
            && core.width.load(Ordering::Relaxed) == 1
            && delivered == core.admitted.load(Ordering::Relaxed)
        {
            let (ran, ended) = run_direct(core, &mut events, &mut sink, &mut delivered);
            exhausted |= ended;
            progressed |= ran;
        }
        // Admit events while the window has room.
        while !exhausted && core.admitted.load(Ordering::Relaxed) < delivered + slots {
            if core.width.load(Ordering::Relaxed) == 1 {
                // Speculation is off: let the window drain, then execute
                // directly (admitting more would keep the slots in use).
                break;
            }
            match events.next() {
                Some(e) => core.admit(core.admitted.load(Ordering::Relaxed), e),
                None => exhausted = true,
            }
            progressed = true;
        }
        // Deliver, in order.
        while let Some((outcome, state)) = core.take_output(delivered) {
            sink(Committed::new(delivered as u64, outcome, state));
            delivered += 1;
            core.delivered.store(delivered, Ordering::Relaxed);
            progressed = true;
        }
        if exhausted && delivered == core.admitted.load(Ordering::Relaxed) {
            return;
        }
        // Speculating: keep the pool busy.
        if core.width.load(Ordering::Relaxed) > 1 && core.has_pending() {
            while active.load(Ordering::SeqCst) < workers {
                let before = active.load(Ordering::SeqCst);
                spawn();
                if active.load(Ordering::SeqCst) == before {
                    break; // no pool to spawn into
                }
            }
        }
        // The workers commit. The frontier is executed here (against the
        // committed state: an execution nothing can doom, which ends when
        // serial execution of the event ends) only when no worker may be
        // there to claim it. The calling thread never runs a speculative
        // execution: one that never reaches a safe point would hold up
        // delivery, and the caller, for good.
        let take_pending =
            core.width.load(Ordering::Relaxed) == 1 || active.load(Ordering::SeqCst) == 0;
        if take_pending {
            progressed |= core.try_commit(true);
        }
        if progressed {
            backoff.reset();
        } else if backoff.is_completed() {
            // Not a pool thread: waiting here blocks no stealable work.
            // Workers wake it (a hint) when outputs pile up or the window
            // drains; it looks again after a while in any case.
            if core.caller_wait(CALLER_NAP) {
                core.naps.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            backoff.snooze();
        }
    }
}

/// Run up to [`DIRECT_BATCH`] events directly against the committed state,
/// holding the commit role; returns (whether any ran, whether the events
/// ended). The committed state is moved into each execution and back, so a
/// state nobody else holds is edited in place.
fn run_direct<S: Backend>(
    core: &Core<S>,
    events: &mut impl Iterator<Item = Event<S>>,
    sink: &mut impl FnMut(Committed<S>),
    delivered: &mut usize,
) -> (bool, bool) {
    let Some(mut head) = core.take_role() else {
        return (false, false);
    };
    core.unpublish();
    let first = head.committed;
    let mut ended = false;
    let states = core.states;
    for _ in 0..DIRECT_BATCH {
        let Some(event) = events.next() else {
            ended = true;
            break;
        };
        let k = head.committed;
        let state = head.take_state();
        let (outcome, state) = core.executor.direct(&event, state);
        head.put_state(state);
        head.direct += 1;
        core.record_direct(&mut head, k);
        head.committed = k + 1;
        let widened = head.controller.on_commit(0);
        let state = states.wants(k as u64).then(|| head.state().clone());
        sink(Committed::new(k as u64, outcome, state));
        *delivered = k + 1;
        core.delivered.store(k + 1, Ordering::Relaxed);
        if let Some(w) = widened {
            // Leaving direct execution: executions will start from the
            // published snapshot, so it must be current. (While direct,
            // nothing reads it, and not publishing lets each old version be
            // freed at once and the state be edited in place.)
            core.publish(head.committed, head.state().clone());
            core.width.store(w, Ordering::Relaxed);
            break;
        }
    }
    // Shared counters once per batch, not per event (an atomic
    // read-modify-write per event was a tenth of a small event's cost).
    // Workers may read them meanwhile; while stale, `admitted` still
    // equals `committed`, so the window looks empty, as it is: no slot
    // holds these events, and the role is held.
    let executed = head.committed - first;
    let ran = executed > 0;
    if ran {
        core.executions
            .fetch_add(executed as u64, Ordering::Relaxed);
        core.admitted.store(head.committed, Ordering::SeqCst);
        core.committed.store(head.committed, Ordering::SeqCst);
    }
    core.release_role(head);
    (ran, ended)
}
