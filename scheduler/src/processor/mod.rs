//! The speculative processor.
//!
//! Events run on a rayon pool against the newest committed snapshot of a
//! persistent state, and commit strictly in log order: a result whose reads
//! still hold is grafted onto the committed state, any other is re-executed
//! against it. The calling thread coordinates (it feeds events in and hands
//! outputs out, in order) and works like any other thread. The protocol and
//! the argument for its invariants are in `README.md` beside this file.

mod adapt;
mod core;
#[cfg(all(test, loom))]
mod model;
mod watch;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_utils::Backoff;
use spectree_noun::Noun;
use spectree_stm::Regions;

use self::adapt::Controller;
use self::core::{lock, Core};
use crate::config::{Config, ConfigError};
use crate::event::{Backend, Committed, Event, Machine, Outcome};
use crate::metrics::Metrics;

/// The result of running a whole log.
#[derive(Debug, Clone)]
pub struct Run<S> {
    /// The final state.
    pub state: S,
    /// Each event's outcome, in log order.
    pub outcomes: Vec<Outcome>,
    /// What the run did.
    pub metrics: Metrics,
}

/// Runs a log of events in parallel with results identical to the
/// [`SerialProcessor`](crate::SerialProcessor)'s.
///
/// ```
/// use std::sync::Arc;
/// use spectree_noun::Noun;
/// use spectree_scheduler::{Config, Event, Processor, SerialProcessor};
/// use spectree_stm::{NounState, RegionMap};
///
/// // Kernel: effects 0; write the event at state axis 2.
/// let kernel: Noun = "[[1 0] 10 [2 0 2] 0 3]".parse()?;
/// let regions = Arc::new(RegionMap::depth(1)?);
/// let events = || (0..100).map(|n| Event::Nock(Noun::atom(n)));
/// let state = NounState("[0 0]".parse()?);
///
/// let processor = Processor::new(regions.clone(), Some(kernel.clone()), Config::threads(2))?;
/// let run = processor.run(state.clone(), events());
/// let serial = SerialProcessor::new(regions, Some(kernel), 100_000_000).run(state, events());
/// assert_eq!(run.state, serial.state);
/// assert_eq!(run.outcomes, serial.outcomes);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Processor<S: Backend> {
    machine: Machine<S>,
    config: Config,
    /// `threads - 1` workers; the calling thread is the last one.
    pool: Option<rayon::ThreadPool>,
}

impl<S: Backend> Processor<S> {
    /// A processor over `regions`, with a kernel for Nock events.
    ///
    /// # Errors
    /// [`ConfigError`] for an unusable configuration or when the thread
    /// pool cannot start.
    pub fn new(
        regions: Arc<dyn Regions<S::Key>>,
        kernel: Option<Noun>,
        config: Config,
    ) -> Result<Self, ConfigError> {
        config.check()?;
        let pool = if config.threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(config.threads - 1)
                    .thread_name(|i| format!("spectree-{i}"))
                    .build()
                    .map_err(|e| ConfigError::Pool(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Processor {
            machine: Machine {
                regions,
                kernel,
                fuel: config.fuel,
                memory: config.memory,
            },
            config,
            pool,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
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
    /// on the calling thread, in log order, as soon as it commits. Memory is
    /// bounded by the window, whatever the length of the stream.
    ///
    /// # Panics
    /// If `events` or `sink` panics (after stopping the workers). A panic
    /// inside a Rust event is not a panic here: it is that event's error.
    pub fn stream(
        &self,
        state: S,
        events: impl IntoIterator<Item = Event<S>>,
        sink: impl FnMut(Committed<S>),
    ) -> (S, Metrics) {
        let window = self.config.effective_window();
        let controller = Controller::new(window, self.config.threads, self.config.adaptive);
        // Slots beyond the speculation window buffer admitted events and
        // undelivered outputs, so that workers do not run dry while the
        // calling thread is busy executing an event itself.
        let slots = (4 * window).max(64);
        let core = Core::new(&self.machine, state, slots, controller);
        let shared = Shared {
            core: &core,
            active: AtomicUsize::new(0),
            spawns: AtomicU64::new(0),
            failure: Mutex::new(None),
        };
        let workers = self.config.threads - 1;
        match &self.pool {
            Some(pool) => pool.in_place_scope(|scope| {
                let mut spawn = || {
                    shared.active.fetch_add(1, Ordering::SeqCst);
                    shared.spawns.fetch_add(1, Ordering::Relaxed);
                    let s = &shared;
                    scope.spawn(move |_| s.worker());
                };
                coordinate(&shared, events, sink, workers, &mut spawn);
            }),
            None => coordinate(&shared, events, sink, 0, &mut || {}),
        }
        if let Some(message) = lock(&shared.failure).take() {
            panic!("spectree worker failed: {message}");
        }
        let head = lock(&core.head);
        let executions = core.executions.load(Ordering::Relaxed);
        let events = head.committed as u64;
        let metrics = Metrics {
            events,
            executions,
            reexecutions: executions - events,
            aborts: core.aborts.load(Ordering::Relaxed),
            direct: head.direct,
            failed_validations: head.failed,
            validation_failures: head.failures.clone(),
            commit_stalls: head.stalls,
            width_changes: head.controller.changes,
            commit_secs: core.commit_nanos.load(Ordering::Relaxed) as f64 * 1e-9,
            naps: core.naps.load(Ordering::Relaxed),
            spawns: shared.spawns.load(Ordering::Relaxed),
        };
        (head.state.clone(), metrics)
    }
}

struct Shared<'c, 'm, S: Backend> {
    core: &'c Core<'m, S>,
    /// Pool workers currently looping.
    active: AtomicUsize,
    /// Pool workers spawned.
    spawns: AtomicU64,
    /// A worker's internal panic (a bug), reported by the caller.
    failure: Mutex<Option<String>>,
}

impl<S: Backend> Shared<'_, '_, S> {
    /// A pool worker: commit and execute until there is nothing to do for
    /// about [`IDLE_EXIT`], then return to the pool (rayon puts the thread
    /// to sleep; the coordinator spawns a worker again when work appears).
    /// While idle it runs any other work of the pool first, and otherwise
    /// naps briefly: it never blocks on a lock or condition variable.
    fn worker(&self) {
        let core = self.core;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let backoff = Backoff::new();
            let mut idle_since: Option<std::time::Instant> = None;
            while !core.stop.load(Ordering::Relaxed) {
                if core.try_commit() | core.claim_and_run() {
                    backoff.reset();
                    idle_since = None;
                } else if !backoff.is_completed() {
                    backoff.snooze();
                } else if let Some(rayon::Yield::Executed) = rayon::yield_now() {
                    idle_since = None;
                } else {
                    let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() >= IDLE_EXIT {
                        break;
                    }
                    core.naps.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(NAP);
                }
            }
        }));
        if let Err(payload) = result {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".into());
            *lock(&self.failure) = Some(message);
            core.stop.store(true, Ordering::SeqCst);
        }
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sets `stop` when the coordinator leaves, normally or by panicking, so
/// that workers return and the scope can end.
struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How long a pool worker stays without work before returning to the pool.
const IDLE_EXIT: Duration = Duration::from_millis(2);
/// How long an idle thread naps between looks for work.
const NAP: Duration = Duration::from_micros(20);

/// Most events the coordinator runs directly per hold of the commit role.
const DIRECT_BATCH: usize = 64;

/// The calling thread: admits events into the window, delivers outputs in
/// order, spawns workers while speculating, and works itself.
fn coordinate<S: Backend>(
    shared: &Shared<'_, '_, S>,
    events: impl IntoIterator<Item = Event<S>>,
    mut sink: impl FnMut(Committed<S>),
    workers: usize,
    spawn: &mut dyn FnMut(),
) {
    let core = shared.core;
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
            if core.width.load(Ordering::Relaxed) == 1
                && delivered == core.admitted.load(Ordering::Relaxed)
            {
                break; // back to direct execution
            }
            match events.next() {
                Some(e) => core.admit(core.admitted.load(Ordering::Relaxed), e),
                None => exhausted = true,
            }
            progressed = true;
        }
        // Deliver, in order.
        while let Some((outcome, state)) = core.take_output(delivered) {
            sink(Committed {
                index: delivered as u64,
                outcome,
                state,
            });
            delivered += 1;
            progressed = true;
        }
        if exhausted && delivered == core.admitted.load(Ordering::Relaxed) {
            return;
        }
        // Speculating: keep the pool busy.
        if core.width.load(Ordering::Relaxed) > 1 && core.has_pending() {
            while shared.active.load(Ordering::SeqCst) < workers {
                spawn();
            }
        }
        // Work like any other thread.
        progressed |= core.try_commit();
        progressed |= core.claim_and_run();
        if progressed {
            backoff.reset();
        } else if backoff.is_completed() {
            // Not a pool thread: sleeping here blocks no stealable work.
            core.naps.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(NAP);
        } else {
            backoff.snooze();
        }
    }
}

/// Run up to [`DIRECT_BATCH`] events directly against the committed state,
/// holding the commit role; returns (whether any ran, whether the events
/// ended).
fn run_direct<S: Backend>(
    core: &Core<'_, S>,
    events: &mut impl Iterator<Item = Event<S>>,
    sink: &mut impl FnMut(Committed<S>),
    delivered: &mut usize,
) -> (bool, bool) {
    let Some(mut head) = core.take_role() else {
        return (false, false);
    };
    let mut ran = false;
    let mut ended = false;
    for _ in 0..DIRECT_BATCH {
        let Some(event) = events.next() else {
            ended = true;
            break;
        };
        let k = head.committed;
        let (outcome, state) = core.machine.direct(&event, &head.state);
        core.executions.fetch_add(1, Ordering::Relaxed);
        head.direct += 1;
        core.log_direct(&mut head, k);
        head.state = state;
        head.committed = k + 1;
        // No slot holds it: the window stays empty.
        core.admitted.store(k + 1, Ordering::SeqCst);
        core.committed.store(k + 1, Ordering::SeqCst);
        ran = true;
        let widened = head.controller.on_commit(0);
        sink(Committed {
            index: k as u64,
            outcome,
            state: head.state.clone(),
        });
        *delivered = k + 1;
        if let Some(w) = widened {
            // Leaving direct execution: executions will start from the
            // published snapshot, so it must be current. (While direct,
            // nothing reads it, and not publishing lets each old version be
            // freed at once.)
            core.publish(head.committed, head.state.clone());
            core.width.store(w, Ordering::Relaxed);
            break;
        }
    }
    core.release_role(head);
    (ran, ended)
}
