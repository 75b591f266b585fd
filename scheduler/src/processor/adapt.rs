//! The adaptive speculation controller.
//!
//! Invariant: it only chooses *how many* events may run ahead of the commit
//! frontier (the width); it never affects what is committed. Width 1 means
//! direct execution: the frontier event runs untracked against the
//! committed state, exactly as the serial processor runs it.
//!
//! Policy, once per epoch (at least [`EPOCH_COMMITS`] commits and
//! [`EPOCH_TIME`]):
//! - while speculating, halve the width when more than 30% of the epoch's
//!   executions were wasted (conflicts), double it when under 10% were;
//!   fall back to direct execution when the width drops below 2, or when the
//!   epoch's time per event was more than 10% worse than direct execution's;
//! - while direct, probe speculation again after a number of epochs that
//!   doubles (up to 1,024, about a second) each time a probe loses, and
//!   resets when one wins: a probe of a workload speculation cannot help
//!   costs a few epochs at 3-4x the time per event, so probing every 64
//!   epochs cost such workloads (`kv` with no work) about a tenth;
//! - while speculating, measure direct execution again after 2, 4, … up
//!   to 32 epochs, so a change in the workload is noticed; a run starts
//!   with two direct epochs (a warm-up and a baseline);
//! - the first epoch after speculation resumes is not judged (it pays for
//!   waking the workers and filling the window); it ends after
//!   [`EPOCH_COMMITS`] commits however short, so that a probe that loses
//!   costs little, and does not count towards the epochs above.

use std::time::{Duration, Instant};

/// Fewest commits in an epoch.
pub(crate) const EPOCH_COMMITS: u64 = 64;
/// Shortest epoch.
pub(crate) const EPOCH_TIME: Duration = Duration::from_millis(1);
/// Most direct epochs between probes of speculation.
const MAX_PROBE_WAIT: u32 = 1024;
const DIRECT_CHECK_MAX: u32 = 32;

pub(crate) struct Controller {
    enabled: bool,
    max: usize,
    width: usize,
    /// The width to return to when leaving direct execution.
    spec_width: usize,
    start: Instant,
    commits: u64,
    wasted: u64,
    direct_ns: Option<f64>,
    /// Direct epochs to run before probing speculation.
    probe_wait: u32,
    /// Epochs spent in the current mode.
    epochs: u32,
    /// The current direct epoch is a check run from speculation.
    checking: bool,
    /// Direct epochs measured so far.
    direct_epochs: u32,
    /// Speculative epochs between checks of direct execution: 2, doubling
    /// to 32 while speculation keeps winning.
    check_every: u32,
    /// The current epoch is the first since speculation resumed.
    warming: bool,
    pub changes: u64,
}

impl Controller {
    /// `max`: the window; `threads`: with one thread speculation is never
    /// useful; `enabled`: adapt at all (otherwise the width stays `max`).
    pub fn new(max: usize, threads: usize, enabled: bool) -> Self {
        // Adaptive runs start with one epoch of direct execution: the
        // baseline every speculative epoch is compared with.
        let width = if threads == 1 || enabled {
            1
        } else {
            max.max(2)
        };
        Controller {
            enabled: enabled && threads > 1,
            max: max.max(2),
            width,
            spec_width: max.max(2),
            start: Instant::now(),
            commits: 0,
            wasted: 0,
            direct_ns: None,
            // Two direct epochs first: a warm-up and the baseline.
            probe_wait: 2,
            check_every: 2,
            direct_epochs: 0,
            epochs: 0,
            checking: false,
            warming: false,
            changes: 0,
        }
    }

    pub fn width(&self) -> usize {
        self.width
    }

    /// One more commit; `wasted` executions were discarded on its way.
    /// Returns the new width when it changes.
    pub fn on_commit(&mut self, wasted: u64) -> Option<usize> {
        if !self.enabled {
            return None;
        }
        self.commits += 1;
        self.wasted += wasted;
        if !self.commits.is_multiple_of(EPOCH_COMMITS) {
            return None;
        }
        let elapsed = self.start.elapsed();
        if elapsed < EPOCH_TIME && !self.warming {
            return None;
        }
        let ns = elapsed.as_nanos() as f64 / self.commits as f64;
        let waste = self.wasted as f64 / self.commits as f64;
        self.start = Instant::now();
        self.commits = 0;
        self.wasted = 0;
        let old = self.width;
        if self.warming {
            // The first epoch after a switch to speculation pays for
            // waking the workers and filling the window: not judged, and
            // not counted towards the next check of direct execution.
            self.warming = false;
            return None;
        }
        self.epochs += 1;
        if self.width == 1 {
            self.direct_epochs += 1;
            self.direct_ns = Some(match self.direct_ns {
                // The run's first epoch is a warm-up: replaced by the
                // second. Later ones average; a check from speculation
                // measures afresh.
                Some(d) if !self.checking && self.direct_epochs > 1 => (d + ns) / 2.0,
                _ => ns,
            });
            if self.checking || self.epochs >= self.probe_wait {
                self.checking = false;
                self.set(self.spec_width);
            }
        } else {
            let lost = self.direct_ns.is_some_and(|d| ns > d * 1.1);
            if lost {
                self.probe_wait = (self.probe_wait * 2).min(MAX_PROBE_WAIT);
                self.check_every = 2;
                self.set(1);
            } else {
                let w = if waste > 0.3 {
                    self.width / 2
                } else if waste < 0.1 {
                    (self.width * 2).min(self.max)
                } else {
                    self.width
                };
                if w < 2 {
                    self.probe_wait = (self.probe_wait * 2).min(MAX_PROBE_WAIT);
                    self.set(1);
                } else {
                    if self.direct_ns.is_some() {
                        // Speculation measured better than direct.
                        self.probe_wait = 1;
                    }
                    self.spec_width = w;
                    self.set(w);
                    if self.epochs >= self.check_every {
                        self.check_every = (self.check_every * 2).min(DIRECT_CHECK_MAX);
                        self.checking = true;
                        self.set(1);
                    }
                }
            }
        }
        (self.width != old).then_some(self.width)
    }

    fn set(&mut self, width: usize) {
        if width != self.width {
            self.changes += 1;
            self.epochs = 0;
            self.warming = self.width == 1;
        }
        self.width = width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(c: &mut Controller, wasted_each: u64, ns: u64) -> usize {
        std::thread::sleep(Duration::from_nanos(ns * EPOCH_COMMITS).max(EPOCH_TIME));
        for _ in 0..EPOCH_COMMITS {
            c.on_commit(wasted_each);
        }
        c.width()
    }

    #[test]
    fn conflicts_narrow_to_direct_and_probes_back_off() {
        let mut c = Controller::new(8, 2, true);
        assert_eq!(c.width(), 1); // the baseline epoch
        c.direct_ns = None; // no baseline in this test: conflicts alone decide
        c.probe_wait = 1;
        c.width = 8;
        assert_eq!(epoch(&mut c, 1, 0), 4);
        assert_eq!(epoch(&mut c, 1, 0), 2);
        assert_eq!(epoch(&mut c, 1, 0), 1);
        // Direct for two epochs, then a probe at the last width; its first
        // epoch is a warm-up, not judged.
        assert_eq!(epoch(&mut c, 0, 0), 1);
        assert_eq!(epoch(&mut c, 0, 0), 2);
        assert_eq!(epoch(&mut c, 1, 0), 2, "warm-up");
        assert_eq!(epoch(&mut c, 1, 0), 1);
        // Now it waits four epochs before probing again.
        for _ in 0..3 {
            assert_eq!(epoch(&mut c, 0, 0), 1);
        }
        assert_eq!(epoch(&mut c, 0, 0), 2);
    }

    /// The warm-up after a probe starts ends after [`EPOCH_COMMITS`]
    /// commits even when they take far less than [`EPOCH_TIME`], and the
    /// judged epoch after it still needs the full time.
    #[test]
    fn the_warm_up_ends_after_its_commits_however_short() {
        let mut c = Controller::new(8, 2, true);
        c.direct_ns = None;
        c.probe_wait = 1;
        assert_eq!(epoch(&mut c, 0, 0), 8, "a direct epoch, then the probe");
        assert!(c.warming);
        // No sleep: 64 commits in microseconds.
        c.start = Instant::now();
        for _ in 0..EPOCH_COMMITS {
            c.on_commit(0);
        }
        assert!(!c.warming, "the warm-up ended on its commits alone");
        assert_eq!(c.epochs, 0, "and did not count as an epoch");
        for _ in 0..EPOCH_COMMITS {
            c.on_commit(1);
        }
        assert_eq!(c.width(), 8, "a judged epoch still needs EPOCH_TIME");
        assert_eq!(epoch(&mut c, 1, 0), 4, "then the waste halves the width");
    }

    #[test]
    fn no_conflicts_widen_and_one_thread_never_speculates() {
        let mut c = Controller::new(16, 2, true);
        assert_eq!(c.width(), 1);
        assert_eq!(epoch(&mut c, 0, 0), 1, "warm-up");
        assert_eq!(epoch(&mut c, 0, 0), 16, "after the baseline, speculate");
        c.width = 2;
        c.direct_ns = None;
        assert_eq!(epoch(&mut c, 0, 0), 2, "the first epoch is not judged");
        assert_eq!(epoch(&mut c, 0, 0), 4);
        assert_eq!(epoch(&mut c, 0, 0), 8);
        let mut one = Controller::new(16, 1, true);
        assert_eq!(one.width(), 1);
        assert_eq!(epoch(&mut one, 0, 0), 1);
        let fixed = Controller::new(16, 4, false);
        assert_eq!(fixed.width(), 16);
    }
}
