//! What a run did: counts of executions, re-executions and aborts, where
//! validation failed, and how much parallelism the workload offered.

use bitvec::vec::BitVec;
use spectree_stm::{AccessSet, Key};

/// Counters of one processor run.
///
/// Every event is executed at least once; `executions = events +
/// reexecutions`, and `reexecutions = aborts + failed_validations`.
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
    /// Wall seconds some thread held the commit role (committing, and
    /// executing events the commit path needed).
    pub commit_secs: f64,
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
        self.add_bits(work, access.read_regions(), access.write_regions());
    }

    /// [`add`](Self::add) with region bits.
    pub fn add_bits(&mut self, work: f64, reads: &BitVec, writes: &BitVec) {
        let start = reads
            .iter_ones()
            .map(|r| self.last_write[r])
            .fold(0.0, f64::max);
        let finish = start + work;
        for r in writes.iter_ones() {
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
