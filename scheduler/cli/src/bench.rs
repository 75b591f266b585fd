//! Benchmark reports: `spectree bench` runs the workload matrix and writes
//! one JSON report; `spectree compare` reads two.
//!
//! Invariant: every figure in a report was measured in the run that wrote
//! it, speedups against the serial median of the same run; the header
//! says what machine and commit produced it, so reports from different
//! machines are compared by ratios only (see [`compare`](crate::compare)).

use std::time::Instant;

use serde::{Deserialize, Serialize};

use spectree::{Backend, Metrics};
use spectree_workloads::{AnyWorkload, Params, Workload, NAMES};

use crate::run::capacity;

/// Where and how a report was made.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Header {
    /// Report format version.
    pub version: u32,
    /// `$SPECTREE_COMMIT`, else the commit the tool was built from, else
    /// `git rev-parse HEAD` where the report was made, else "unknown".
    pub git_commit: String,
    /// UTC date and time, ISO 8601.
    pub date: String,
    /// Cores the OS offers.
    pub cores: usize,
    /// The CPU model (from /proc/cpuinfo), or "unknown".
    pub cpu_model: String,
    /// Throughput of 2 CPU-bound threads over 1, measured at the start.
    pub capacity: f64,
    /// Throughput of `cores` CPU-bound threads over 1.
    pub capacity_all: f64,
    /// The short profile.
    pub quick: bool,
    /// Timed runs per case.
    pub repetitions: usize,
}

/// One case of the matrix: a workload on an engine at a thread count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Case {
    /// Workload name.
    pub workload: String,
    /// "serial" or "speculative".
    pub engine: String,
    /// Threads (1 for serial).
    pub threads: usize,
    /// Events per run.
    pub events: u64,
    /// Each run's wall time, in run order.
    pub runs_secs: Vec<f64>,
    /// Median of `runs_secs`.
    pub median_secs: f64,
    /// Fastest run.
    pub min_secs: f64,
    /// Slowest run.
    pub max_secs: f64,
    /// Events per second at the median.
    pub events_per_sec: f64,
    /// Serial median over this case's median (same report).
    pub speedup: f64,
    /// Re-executions per event (median run).
    pub reexecution_rate: f64,
    /// Final state equal to the serial run's, in every run.
    pub identical: bool,
    /// Commit-role time not spent in user code per speculated event
    /// (median run; 0 for serial). Absent in reports before it existed.
    #[serde(default)]
    pub commit_overhead_ns_per_event: f64,
    /// The speedup Amdahl's law allows at 16 threads with that serial
    /// section and the serial median time per event.
    #[serde(default)]
    pub amdahl_bound_16: f64,
}

/// A benchmark report.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BenchReport {
    /// The machine and the run.
    pub header: Header,
    /// The matrix, in a stable order.
    pub cases: Vec<Case>,
}

impl BenchReport {
    /// The capacity measured for `threads` threads, when the report has it.
    pub fn capacity_at(&self, threads: usize) -> Option<f64> {
        match threads {
            1 => Some(1.0),
            2 => Some(self.header.capacity),
            t if t == self.header.cores => Some(self.header.capacity_all),
            _ => None,
        }
    }
}

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

/// Events per workload in the full and quick profiles.
fn events_for(name: &str, quick: bool) -> u64 {
    let full = match name {
        "tiny" => 200_000,
        "kv" => 40_000,
        _ => 20_000,
    };
    if quick {
        full / 10
    } else {
        full
    }
}

/// Run the matrix: every workload, serially and speculatively at 1, 2 and
/// all cores, `repetitions` times each (interleaved, so drift hits all
/// cases alike). `progress` is told each case as it starts.
///
/// Why the benchmark matrix could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BenchError {
    /// A processor could not be built.
    #[error(transparent)]
    Build(#[from] spectree::BuildError),
    /// A workload could not be built.
    #[error(transparent)]
    Workload(#[from] spectree_workloads::WorkloadError),
    /// A thread of the capacity measurement could not start.
    #[error("cannot start a thread: {0}")]
    Thread(#[source] std::io::Error),
}

/// # Errors
/// [`BenchError`] if a workload, a processor or a thread cannot start.
pub fn bench(quick: bool, progress: &mut dyn FnMut(&str)) -> Result<BenchReport, BenchError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let repetitions = if quick { 3 } else { 5 };
    let header = Header {
        version: 1,
        git_commit: git_commit(),
        date: now_iso(),
        cores,
        cpu_model: cpu_model(),
        capacity: capacity(2).map_err(BenchError::Thread)?,
        capacity_all: capacity(cores).map_err(BenchError::Thread)?,
        quick,
        repetitions,
    };
    let mut threads: Vec<usize> = vec![1, 2, cores];
    threads.dedup();
    let mut cases = Vec::new();
    for name in NAMES {
        let params = Params {
            events: events_for(name, quick),
            ..Params::default()
        };
        let w = AnyWorkload::build(name, params)?;
        progress(name);
        cases.extend(match &w {
            AnyWorkload::Noun(w) => bench_workload(w, &threads, repetitions)?,
            AnyWorkload::Map(w) => bench_workload(w, &threads, repetitions)?,
        });
    }
    Ok(BenchReport { header, cases })
}

fn bench_workload<S: Backend>(
    w: &Workload<S>,
    threads: &[usize],
    repetitions: usize,
) -> Result<Vec<Case>, BenchError> {
    let serial = w.builder().build_serial();
    let processors = threads
        .iter()
        .map(|&t| w.builder().threads(t).build())
        .collect::<Result<Vec<_>, _>>()?;
    let n = processors.len();
    let mut times = vec![Vec::new(); n + 1];
    let mut reexec = vec![Vec::new(); n + 1];
    let mut overhead = vec![Vec::new(); n + 1];
    let mut identical = vec![true; n + 1];
    for _ in 0..repetitions {
        let t = Instant::now();
        let expected = serial.stream(w.state.clone(), w.events(), |_| {});
        times[0].push(t.elapsed().as_secs_f64());
        reexec[0].push(0.0);
        overhead[0].push(0.0);
        for (i, p) in processors.iter().enumerate() {
            let t = Instant::now();
            let (state, m) = p.stream(w.state.clone(), w.events(), |_| {});
            times[i + 1].push(t.elapsed().as_secs_f64());
            reexec[i + 1].push(m.reexecutions as f64 / m.events.max(1) as f64);
            overhead[i + 1].push(m.commit_overhead_ns_per_event());
            identical[i + 1] &= state == expected;
        }
    }
    let serial_median = median(&times[0]);
    let events = w.params.events;
    Ok((0..=n)
        .map(|i| {
            let med = median(&times[i]);
            let fold = |f: fn(f64, f64) -> f64, init| times[i].iter().copied().fold(init, f);
            Case {
                workload: w.name.into(),
                engine: if i == 0 { "serial" } else { "speculative" }.into(),
                threads: if i == 0 { 1 } else { threads[i - 1] },
                events,
                runs_secs: times[i].clone(),
                median_secs: med,
                min_secs: fold(f64::min, f64::INFINITY),
                max_secs: fold(f64::max, 0.0),
                events_per_sec: events as f64 / med.max(1e-12),
                speedup: serial_median / med.max(1e-12),
                reexecution_rate: median(&reexec[i]),
                identical: identical[i],
                commit_overhead_ns_per_event: median(&overhead[i]),
                amdahl_bound_16: Metrics::amdahl_bound(
                    serial_median * 1e9 / events.max(1) as f64,
                    median(&overhead[i]),
                    16,
                ),
            }
        })
        .collect())
}

fn git_commit() -> String {
    if let Ok(c) = std::env::var("SPECTREE_COMMIT") {
        return c;
    }
    let built = env!("SPECTREE_BUILD_COMMIT");
    if !built.is_empty() {
        return built.to_string();
    }
    std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
fn now_iso() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_dates() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        let d = now_iso();
        assert_eq!(d.len(), 20, "{d}");
        assert!(d.starts_with("20") && d.ends_with('Z'), "{d}");
    }
}
