//! `spectree run`: a workload serially and speculatively, compared.
//!
//! Invariant: the report says `identical: true` only if the final states
//! are equal and every event's outcome is equal, in order; the command then
//! exits 0, and otherwise non-zero.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::io::{IsTerminal, Write};
use std::time::Instant;

use serde::Serialize;

use spectree::{Backend, Committed, Metrics, Outcome};
use spectree_log::{EventLog, LogError, LogPolicy, LoggedError, Replayed};
use spectree_workloads::{spin, AnyWorkload, Workload, ITERS_PER_US};

/// What `spectree run` measured; also its `--json` output.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    /// Workload name.
    pub workload: String,
    /// Events in the log.
    pub events: u64,
    /// Threads of the speculative run.
    pub threads: usize,
    /// Seed of the workload.
    pub seed: u64,
    /// Wall time of the serial run.
    pub serial_secs: f64,
    /// Wall time of the speculative run.
    pub parallel_secs: f64,
    /// Serial events per second.
    pub serial_events_per_sec: f64,
    /// Speculative events per second.
    pub parallel_events_per_sec: f64,
    /// `serial_secs / parallel_secs`.
    pub speedup: f64,
    /// Final states and all outcomes equal (true when not compared).
    pub identical: bool,
    /// Whether a serial run was made to compare with.
    pub compared: bool,
    /// Executions beyond one per event.
    pub reexecutions: u64,
    /// Speculative executions stopped early.
    pub aborts: u64,
    /// Events committed by direct (unspeculated) execution.
    pub direct: u64,
    /// Times the commit path found the next event still running.
    pub commit_stalls: u64,
    /// Validation failures, all regions.
    pub validation_failures: u64,
    /// Seconds the commit role was held.
    pub commit_secs: f64,
    /// Naps of idle threads.
    pub naps: u64,
    /// Pool workers started.
    pub spawns: u64,
    /// Parallel CPU seconds over serial CPU seconds.
    pub cpu_ratio: f64,
    /// Total work over the longest chain of dependent events.
    pub available_parallelism: f64,
    /// Two CPU-bound threads' throughput over one's, measured in this run.
    pub capacity: f64,
    /// `threads` CPU-bound threads' throughput over one's.
    pub capacity_at_threads: f64,
    /// Cores the OS offers this process.
    pub cores: usize,
    /// Final state's mug.
    pub mug: u32,
    /// Commit-role time not spent in user code, per event committed while
    /// speculating (the serial section of the run).
    pub commit_overhead_ns_per_event: f64,
    /// The speedup Amdahl's law allows at 16 threads with that serial
    /// section and this workload's serial time per event.
    pub amdahl_bound_16: f64,
    /// `kv` only: seconds of a plain loop over a std `HashMap` running the
    /// same events (what a user would write instead; `null` otherwise).
    pub plain_secs: Option<f64>,
    /// `plain_secs / parallel_secs`.
    pub speedup_vs_plain: Option<f64>,
    /// Events the log already held when this run resumed it (0: not a
    /// resumed run); the speculative figures cover the rest.
    pub resumed_from: u64,
    /// Whether the plain loop's final state equals spectree's.
    pub plain_identical: Option<bool>,
}

/// Options of a run besides the workload.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Threads of the speculative run.
    pub threads: usize,
    /// Speculation window (`None`: automatic).
    pub window: Option<usize>,
    /// Adaptive speculation.
    pub adaptive: bool,
    /// Draw a progress bar on stderr when it is a terminal.
    pub progress: bool,
    /// Measure available parallelism (one more, untimed, serial pass).
    pub analyze: bool,
    /// Log the speculative run's events durably here, with this policy.
    pub log: Option<(std::path::PathBuf, LogPolicy)>,
    /// Print `ack N` to stdout after every N released outputs (0: never):
    /// what a crash test counts as acknowledged.
    pub ack_every: u64,
    /// Skip the serial run and the capacity measurement (results are then
    /// not compared).
    pub skip_serial: bool,
}

/// Throughput of `threads` CPU-bound threads over one's (1.0 for one).
///
/// # Errors
/// The error of starting a thread, if one cannot start.
pub fn capacity(threads: usize) -> std::io::Result<f64> {
    if threads <= 1 {
        return Ok(1.0);
    }
    let iters = (30_000.0 * ITERS_PER_US) as u64; // about 30 ms
    let time = |n: usize| -> std::io::Result<f64> {
        let t = Instant::now();
        std::thread::scope(|s| -> std::io::Result<()> {
            for i in 0..n {
                std::thread::Builder::new().spawn_scoped(s, move || spin(iters, i as u64 + 1))?;
            }
            Ok(())
        })?;
        Ok(t.elapsed().as_secs_f64())
    };
    // Median of three, alternating, so drift affects both sides alike.
    let mut ratios = Vec::with_capacity(3);
    for _ in 0..3 {
        let one = time(1)?;
        let many = time(threads)?;
        ratios.push(threads as f64 * one / many);
    }
    ratios.sort_by(f64::total_cmp);
    Ok(ratios[1])
}

/// The process's address-space limit in bytes (`ulimit -v`), if it has
/// one.
pub fn address_space_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `getrlimit` writes one `rlimit` through a valid pointer.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut limit) };
    (rc == 0 && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
}

/// CPU seconds used by this process so far (all threads).
pub fn cpu_secs() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `clock_gettime` writes one `timespec` through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0.0;
    }
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Order-sensitive digest of outcomes.
#[derive(Default)]
struct Digest {
    hasher: DefaultHasher,
    count: u64,
}

impl Digest {
    fn add(&mut self, index: u64, outcome: &Outcome) {
        index.hash(&mut self.hasher);
        match outcome {
            Ok(n) => {
                0u8.hash(&mut self.hasher);
                n.hash(&mut self.hasher);
            }
            Err(e) => {
                1u8.hash(&mut self.hasher);
                e.to_string().hash(&mut self.hasher);
            }
        }
        self.count += 1;
    }

    fn value(&self) -> (u64, u64) {
        (self.hasher.finish(), self.count)
    }
}

struct Progress {
    enabled: bool,
    label: &'static str,
    total: u64,
    shown: u64,
}

impl Progress {
    fn new(enabled: bool, label: &'static str, total: u64) -> Self {
        Progress {
            enabled: enabled && total > 0 && std::io::stderr().is_terminal(),
            label,
            total,
            shown: u64::MAX,
        }
    }

    fn tick(&mut self, done: u64) {
        if !self.enabled {
            return;
        }
        let pct = done * 100 / self.total;
        if pct != self.shown {
            self.shown = pct;
            let bar = "#".repeat((pct / 4) as usize);
            let _ = write!(
                std::io::stderr(),
                "\r{:<12} [{bar:<25}] {pct:>3}%",
                self.label
            );
        }
    }

    fn finish(&self) {
        if self.enabled {
            let _ = write!(std::io::stderr(), "\r{:60}\r", "");
        }
    }
}

/// Why `spectree run` could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The processor's configuration is unusable.
    #[error(transparent)]
    Config(#[from] spectree::BuildError),
    /// A thread could not start.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
    /// The log could not be created.
    #[error(transparent)]
    Log(#[from] LogError),
    /// The logged run failed.
    #[error(transparent)]
    Logged(#[from] LoggedError),
    /// The log to resume was written by another workload (or other
    /// parameters).
    #[error("event log {path} was written by {log:?}, not by this run ({run:?})")]
    OtherWorkload {
        /// The log's file.
        path: std::path::PathBuf,
        /// The log's writer.
        log: String,
        /// This run's identity.
        run: String,
    },
    /// The log to resume holds more events than the run has.
    #[error("event log {path} holds {log} events, more than this run's {run}")]
    LongerLog {
        /// The log's file.
        path: std::path::PathBuf,
        /// Events in the log.
        log: u64,
        /// Events of the run.
        run: u64,
    },
}

/// What the speculative run produced.
struct Speculated<S> {
    state: S,
    metrics: spectree::Metrics,
    digest: (u64, u64),
    secs: f64,
    cpu: f64,
}

/// The speculative run, logged when `log` is given.
fn speculate<S: Backend>(
    w: &Workload<S>,
    processor: &spectree::Processor<S>,
    log: Option<(&EventLog, LogPolicy, Option<Replayed<S>>)>,
    options: &RunOptions,
) -> Result<Speculated<S>, RunError> {
    let n = w.params.events;
    let mut digest = Digest::default();
    let mut bar = Progress::new(options.progress, "speculative", n);
    let (c0, t0) = (cpu_secs(), Instant::now());
    let ack_every = options.ack_every;
    let sink = |c: Committed<S>| {
        digest.add(c.index, &c.outcome);
        bar.tick(c.index + 1);
        if ack_every > 0 && (c.index + 1).is_multiple_of(ack_every) {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "ack {}", c.index + 1);
            let _ = out.flush();
        }
    };
    let (state, metrics) = match log {
        None => processor.stream(w.state.clone(), w.events(), sink),
        Some((log, policy, None)) => {
            let events = (0..n).map(|i| {
                let e = w.event(i);
                (w.encode(i, &e), e)
            });
            spectree_log::run_logged(processor, log, w.state.clone(), events, policy, sink)?
        }
        Some((log, policy, Some(recovered))) => {
            let events = (recovered.events.min(n)..n).map(|i| {
                let e = w.event(i);
                (w.encode(i, &e), e)
            });
            spectree_log::resume_logged(processor, log, recovered, events, policy, sink)?
        }
    };
    let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
    bar.finish();
    Ok(Speculated {
        state,
        metrics,
        digest: digest.value(),
        secs,
        cpu,
    })
}

/// Run `workload` serially and speculatively and compare.
///
/// # Errors
/// [`RunError`] when the processor cannot be configured, a thread cannot
/// start, or the log cannot be created or written. Everything that can
/// refuse is checked before the log is created.
pub fn run(workload: &AnyWorkload, options: &RunOptions) -> Result<RunReport, RunError> {
    match workload {
        AnyWorkload::Noun(w) => run_typed(w, options),
        AnyWorkload::Map(w) => {
            let mut report = run_typed(w, options)?;
            if w.name == "kv" && !options.skip_serial {
                if let Some(plain) = spectree_workloads::plain_kv(&w.params) {
                    report.plain_secs = Some(plain.secs);
                    report.speedup_vs_plain = Some(plain.secs / report.parallel_secs.max(1e-12));
                    report.plain_identical = Some(plain.mug == report.mug);
                }
            }
            Ok(report)
        }
    }
}

fn run_typed<S: Backend>(w: &Workload<S>, options: &RunOptions) -> Result<RunReport, RunError> {
    let n = w.params.events;
    let cores = std::thread::available_parallelism().map_or(1, |c| c.get());
    // Everything that can refuse, before any work: the configuration (and
    // its thread pool), then the log.
    let mut builder = w
        .builder()
        .threads(options.threads)
        .adaptive(options.adaptive);
    if let Some(window) = options.window {
        builder = builder.window(window);
    }
    let processor = builder.build()?;
    let serial = processor.serial();
    // A new log, or the existing one resumed: opened, checked to be this
    // workload's, and replayed, before anything is appended.
    let mut resumed_from = 0;
    let log = match &options.log {
        None => None,
        Some((dir, policy)) if dir.join(spectree_log::FILE).exists() => {
            // Checked through a read-only view: a refused log is not
            // written at all (redb writes to open a file writable).
            {
                let log = EventLog::open_read_only(dir)?;
                if log.identity() != w.identity() {
                    return Err(RunError::OtherWorkload {
                        path: log.path().to_path_buf(),
                        log: log.identity().to_string(),
                        run: w.identity(),
                    });
                }
            }
            let log = EventLog::open(dir)?;
            let recovered = spectree_log::replay(&processor, &log, |e| w.decode(e))?;
            resumed_from = recovered.events;
            if recovered.events > n {
                return Err(RunError::LongerLog {
                    path: log.path().to_path_buf(),
                    log: recovered.events,
                    run: n,
                });
            }
            Some((log, *policy, Some(recovered)))
        }
        Some((dir, policy)) => {
            let log = EventLog::create(dir, &w.identity(), &w.state.to_noun())?;
            Some((log, *policy, None))
        }
    };
    // A logged run starts logging at once; the serial run it is compared
    // with comes after. Otherwise the serial run goes first.
    let mut speculative = None;
    if let Some((log, policy, recovered)) = log {
        speculative = Some(speculate(
            w,
            &processor,
            Some((&log, policy, recovered)),
            options,
        )?);
    }
    let capacity2 = if options.skip_serial {
        f64::NAN
    } else {
        capacity(2).map_err(RunError::Thread)?
    };
    let capacity_t = if options.threads == 2 || options.skip_serial {
        capacity2
    } else {
        capacity(options.threads).map_err(RunError::Thread)?
    };

    let mut digest = Digest::default();
    let mut bar = Progress::new(options.progress, "serial", n);
    let (c0, t0) = (cpu_secs(), Instant::now());
    let serial_events = w
        .events()
        .take(if options.skip_serial { 0 } else { n as usize });
    // A resumed run delivers only the events it ran: compare those.
    let serial_state = serial.stream(w.state.clone(), serial_events, |c: Committed<S>| {
        if c.index >= resumed_from {
            digest.add(c.index, &c.outcome);
        }
        bar.tick(c.index + 1);
    });
    let (serial_secs, serial_cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
    bar.finish();
    let serial_digest = digest.value();

    let spec = match speculative {
        Some(s) => s,
        None => speculate(w, &processor, None, options)?,
    };
    let (state, metrics) = (spec.state, spec.metrics);
    let (parallel_secs, parallel_cpu) = (spec.secs, spec.cpu);
    let identical = options.skip_serial || (state == serial_state && spec.digest == serial_digest);

    let available_parallelism = if options.analyze {
        let (_, meter) = serial.analyze(w.state.clone(), w.events(), |_| {});
        meter.available_parallelism()
    } else {
        f64::NAN
    };
    let rate = |secs: f64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    Ok(RunReport {
        workload: w.name.into(),
        events: n,
        threads: options.threads,
        seed: w.params.seed,
        serial_secs,
        parallel_secs,
        serial_events_per_sec: rate(serial_secs),
        parallel_events_per_sec: if parallel_secs > 0.0 {
            (n - resumed_from) as f64 / parallel_secs
        } else {
            0.0
        },
        resumed_from,
        speedup: serial_secs / parallel_secs.max(1e-12),
        identical,
        compared: !options.skip_serial,
        reexecutions: metrics.reexecutions,
        aborts: metrics.aborts,
        direct: metrics.direct,
        commit_stalls: metrics.commit_stalls,
        validation_failures: metrics.failed_validations,
        commit_secs: metrics.commit_secs,
        naps: metrics.naps,
        spawns: metrics.spawns,
        cpu_ratio: parallel_cpu / serial_cpu.max(1e-12),
        available_parallelism,
        capacity: capacity2,
        capacity_at_threads: capacity_t,
        cores,
        mug: state.mug(),
        commit_overhead_ns_per_event: metrics.commit_overhead_ns_per_event(),
        amdahl_bound_16: Metrics::amdahl_bound(
            serial_secs * 1e9 / n.max(1) as f64,
            metrics.commit_overhead_ns_per_event(),
            16,
        ),
        plain_secs: None,
        speedup_vs_plain: None,
        plain_identical: None,
    })
}

/// The readable summary of a report.
pub fn summary(r: &RunReport) -> String {
    let pct = |x: u64| 100.0 * x as f64 / r.events.max(1) as f64;
    let mut s = String::new();
    s += &format!(
        "spectree run: workload {}, {} events, {} threads, seed {}\n",
        r.workload, r.events, r.threads, r.seed
    );
    s += &format!(
        "machine:      {} cores; parallel capacity {:.2}x (2 CPU-bound threads vs 1){}\n",
        r.cores,
        r.capacity,
        if r.threads == 2 {
            String::new()
        } else {
            format!(", {:.2}x at {} threads", r.capacity_at_threads, r.threads)
        }
    );
    if r.resumed_from > 0 {
        s += &format!(
            "resumed:      the log held {} events; this run added {}\n",
            r.resumed_from,
            r.events - r.resumed_from
        );
    }
    if r.compared {
        s += &format!(
            "serial:       {:>9.3} s {:>12.0} events/s\n",
            r.serial_secs, r.serial_events_per_sec
        );
    }
    s += &format!(
        "speculative:  {:>9.3} s {:>12.0} events/s\n",
        r.parallel_secs, r.parallel_events_per_sec
    );
    s += &format!(
        "speedup:      {:.2}x ({:.2} of capacity at {} threads); cpu ratio {:.2}\n",
        r.speedup,
        r.speedup / r.capacity_at_threads.max(1e-12),
        r.threads,
        r.cpu_ratio
    );
    s += &format!(
        "re-executed:  {:.2}% of events (aborted early {:.2}%, failed validation {:.2}%); direct {:.1}%; commit stalls {}\n",
        pct(r.reexecutions),
        pct(r.aborts),
        pct(r.validation_failures),
        pct(r.direct),
        r.commit_stalls
    );
    if let (Some(plain), Some(vs), Some(same)) =
        (r.plain_secs, r.speedup_vs_plain, r.plain_identical)
    {
        s += &format!(
            "plain loop:   {:>9.3} s {:>12.0} events/s (std HashMap, same events); spectree {:.2}x of it{}\n",
            plain,
            r.events as f64 / plain.max(1e-12),
            vs,
            if same { "" } else { "; RESULTS DIFFER" }
        );
    }
    s += &format!(
        "internals:    commit role held {:.1}% of the run; {} naps; {} workers started\n",
        100.0 * r.commit_secs / r.parallel_secs.max(1e-12),
        r.naps,
        r.spawns
    );
    s += &format!(
        "serial part:  {:.0} ns of commit overhead per speculated event; Amdahl bound at 16 threads {:.1}x\n",
        r.commit_overhead_ns_per_event, r.amdahl_bound_16
    );
    if r.available_parallelism.is_finite() {
        s += &format!(
            "parallelism:  {:.2} available (work / longest dependent chain)\n",
            r.available_parallelism
        );
    }
    let verdict = match (r.compared, r.identical) {
        (false, _) => "not compared (no serial run)",
        (true, true) => "yes",
        (true, false) => "NO: serial and speculative results differ",
    };
    s += &format!("identical:    {verdict} (final mug 0x{:x})\n", r.mug);
    s
}
