//! What a run did: counts of executions, re-executions and aborts, where
//! validation failed, and how much parallelism the workload offered.

use spectree_stm::{AccessSet, Key};

/// Counters of one processor run.
///
/// Every event is executed at least once; `executions = events +
/// reexecutions`, and `reexecutions = aborts + failed_validations + taken`.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// Wall time of the run.
    pub elapsed: std::time::Duration,
    /// Events committed.
    pub events: u64,
    /// Executions started and finished or aborted.
    pub executions: u64,
    /// Executions beyond the first per event.
    pub reexecutions: u64,
    /// Speculative executions stopped early because a committed write met
    /// something they had read.
    pub aborts: u64,
    /// Events executed directly against the committed state (no
    /// speculation needed or wanted).
    pub direct: u64,
    /// Finished speculative executions discarded at commit because a write
    /// committed after their snapshot met their reads.
    pub failed_validations: u64,
    /// Per region: the failed validations where the conflict lay in that
    /// region (one failure may count in several regions).
    pub validation_failures: Vec<u64>,
    /// Times the commit path found the next event still running elsewhere.
    pub commit_stalls: u64,
    /// Changes of the speculation width by the adaptive controller.
    pub width_changes: u64,
    /// Frontier events the commit path executed itself instead of waiting
    /// for a doomed speculative execution.
    pub taken: u64,
    /// Wall seconds some thread held the commit role while speculating
    /// (committing, and executing events the commit path needed).
    pub commit_secs: f64,
    /// Nanoseconds of `commit_secs` not spent in user code: the serial
    /// section of speculation.
    pub commit_overhead_nanos: u64,
    /// Events committed by the commit path while speculating.
    pub speculative_commits: u64,
    /// Naps (of about 20 µs) taken by threads that found nothing to do.
    pub naps: u64,
    /// Pool workers started (they return to the pool when idle).
    pub spawns: u64,
}

/// Measures a workload's available parallelism: total work divided by the
/// longest chain of events each of which reads a region an earlier one in
/// the chain wrote (region granularity, so never an overestimate of the
/// dependences).
#[derive(Debug, Clone)]
pub struct ChainMeter {
    last_write: Vec<f64>,
    total: f64,
    longest: f64,
}

impl Metrics {
    /// Commit-role time not spent in user code, per event the commit path
    /// committed while speculating (0 when it committed none).
    pub fn commit_overhead_ns_per_event(&self) -> f64 {
        if self.speculative_commits == 0 {
            0.0
        } else {
            self.commit_overhead_nanos as f64 / self.speculative_commits as f64
        }
    }

    /// The speedup that Amdahl's law allows at `threads` threads for a run
    /// whose serial section (the commit overhead) takes `overhead_ns` of
    /// every `event_ns` of work per event: `1 / (s + (1 - s) / threads)`.
    pub fn amdahl_bound(event_ns: f64, overhead_ns: f64, threads: usize) -> f64 {
        if event_ns <= 0.0 {
            return 1.0;
        }
        let s = (overhead_ns / (event_ns + overhead_ns)).clamp(0.0, 1.0);
        1.0 / (s + (1.0 - s) / threads.max(1) as f64)
    }

    /// Add `other`'s counts to these (for a run made of several streams).
    pub fn add(&mut self, other: &Metrics) {
        self.elapsed += other.elapsed;
        self.events += other.events;
        self.executions += other.executions;
        self.reexecutions += other.reexecutions;
        self.aborts += other.aborts;
        self.direct += other.direct;
        self.failed_validations += other.failed_validations;
        self.commit_stalls += other.commit_stalls;
        self.width_changes += other.width_changes;
        self.commit_secs += other.commit_secs;
        self.taken += other.taken;
        self.commit_overhead_nanos += other.commit_overhead_nanos;
        self.speculative_commits += other.speculative_commits;
        self.naps += other.naps;
        self.spawns += other.spawns;
        if self.validation_failures.len() < other.validation_failures.len() {
            self.validation_failures
                .resize(other.validation_failures.len(), 0);
        }
        for (t, v) in self
            .validation_failures
            .iter_mut()
            .zip(&other.validation_failures)
        {
            *t += v;
        }
    }
}

impl ChainMeter {
    /// A meter for `regions` regions.
    pub fn new(regions: usize) -> Self {
        ChainMeter {
            last_write: vec![0.0; regions],
            total: 0.0,
            longest: 0.0,
        }
    }

    /// Add the next event in log order: its work (any unit) and accesses.
    pub fn add<K: Key>(&mut self, work: f64, access: &AccessSet<K>) {
        self.add_regions(work, access.read_regions(), access.write_regions());
    }

    /// [`add`](Self::add) with the regions read and written.
    pub fn add_regions(&mut self, work: f64, reads: &[u32], writes: &[u32]) {
        let start = reads
            .iter()
            .map(|&r| self.last_write[r as usize])
            .fold(0.0, f64::max);
        let finish = start + work;
        for &r in writes {
            let r = r as usize;
            self.last_write[r] = self.last_write[r].max(finish);
        }
        self.total += work;
        self.longest = self.longest.max(finish);
    }

    /// Total work divided by the longest chain (1 for an empty log).
    pub fn available_parallelism(&self) -> f64 {
        if self.longest > 0.0 {
            self.total / self.longest
        } else {
            1.0
        }
    }
}
