//! Comparing two benchmark reports, as a table and as a plot.
//!
//! Invariant: a difference is called beyond noise only when each median
//! lies outside the other report's range of runs; reports from different
//! machines (another CPU model or core count) are compared by speedup over
//! their own serial runs, never by raw times.

use std::fmt::Write as _;
use std::path::Path;

use plotters::prelude::*;
use thiserror::Error;

use crate::bench::{BenchReport, Case};

/// Why a comparison failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CompareError {
    /// A report could not be read.
    #[error("cannot read {path}: {why}")]
    Read {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
    /// The plot could not be drawn.
    #[error("cannot draw {path}: {why}")]
    Plot {
        /// The file.
        path: String,
        /// What went wrong.
        why: String,
    },
}

/// Read a report written by `spectree bench`.
///
/// # Errors
/// [`CompareError::Read`] if the file is missing or not a report.
pub fn load(path: &Path) -> Result<BenchReport, CompareError> {
    let err = |why: String| CompareError::Read {
        path: path.display().to_string(),
        why,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    serde_json::from_str(&text).map_err(|e| err(e.to_string()))
}

/// One row of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// "workload engine@threads".
    pub case: String,
    /// The old figure.
    pub old: f64,
    /// The new figure.
    pub new: f64,
    /// `new / old`: above 1 is better.
    pub ratio: f64,
    /// Whether the difference exceeds both reports' spread.
    pub beyond_noise: bool,
}

/// A comparison of two reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// Whether the reports come from the same kind of machine (figures are
    /// then events/s; otherwise speedups).
    pub same_machine: bool,
    /// Cases present in both reports.
    pub rows: Vec<Row>,
    /// Cases present in only one report.
    pub unmatched: Vec<String>,
}

fn key(c: &Case) -> String {
    format!("{} {}@{}", c.workload, c.engine, c.threads)
}

/// (median, low, high) of the compared figure for a case.
fn figure(c: &Case, serial_median: f64, by_speedup: bool) -> (f64, f64, f64) {
    if by_speedup {
        let s = |secs: f64| serial_median / secs.max(1e-12);
        (c.speedup, s(c.max_secs), s(c.min_secs))
    } else {
        let r = |secs: f64| c.events as f64 / secs.max(1e-12);
        (c.events_per_sec, r(c.max_secs), r(c.min_secs))
    }
}

fn serial_median(r: &BenchReport, workload: &str) -> f64 {
    r.cases
        .iter()
        .find(|c| c.workload == workload && c.engine == "serial")
        .map_or(1.0, |c| c.median_secs)
}

/// Compare `new` with `old`, case by case.
pub fn compare(old: &BenchReport, new: &BenchReport) -> Comparison {
    let same_machine =
        old.header.cpu_model == new.header.cpu_model && old.header.cores == new.header.cores;
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for n in &new.cases {
        let Some(o) = old.cases.iter().find(|o| key(o) == key(n)) else {
            unmatched.push(format!("{} (new only)", key(n)));
            continue;
        };
        // Across machines a serial case has no ratio to compare: skip it.
        if !same_machine && n.engine == "serial" {
            continue;
        }
        let (om, olo, ohi) = figure(o, serial_median(old, &o.workload), !same_machine);
        let (nm, nlo, nhi) = figure(n, serial_median(new, &n.workload), !same_machine);
        rows.push(Row {
            case: key(n),
            old: om,
            new: nm,
            ratio: nm / om.max(1e-12),
            beyond_noise: (nm < olo || nm > ohi) && (om < nlo || om > nhi),
        });
    }
    for o in &old.cases {
        if !new.cases.iter().any(|n| key(n) == key(o)) {
            unmatched.push(format!("{} (old only)", key(o)));
        }
    }
    Comparison {
        same_machine,
        rows,
        unmatched,
    }
}

impl Comparison {
    /// Rows that got worse by more than `pct` percent, beyond noise.
    pub fn regressions(&self, pct: f64) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|r| r.beyond_noise && r.ratio < 1.0 - pct / 100.0)
            .collect()
    }

    /// The aligned table.
    pub fn table(&self, old: &BenchReport, new: &BenchReport) -> String {
        let mut s = String::new();
        let unit = if self.same_machine {
            "events/s (same machine)"
        } else {
            "speedup over each report's own serial run (different machines: raw times are not comparable)"
        };
        for (label, r) in [("old", old), ("new", new)] {
            let h = &r.header;
            let commit = short(&h.git_commit);
            let _ = writeln!(
                s,
                "{label}: {commit} {} ({} cores, {})",
                h.date, h.cores, h.cpu_model
            );
        }
        let _ = writeln!(s, "compared: {unit}");
        let width = self
            .rows
            .iter()
            .map(|r| r.case.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            s,
            "{:<width$}  {:>12}  {:>12}  {:>7}  beyond noise",
            "case", "old", "new", "ratio"
        );
        for r in &self.rows {
            let _ = writeln!(
                s,
                "{:<width$}  {:>12.2}  {:>12.2}  {:>7.3}  {}",
                r.case,
                r.old,
                r.new,
                r.ratio,
                if r.beyond_noise { "yes" } else { "no" }
            );
        }
        for u in &self.unmatched {
            let _ = writeln!(s, "{u}: not compared");
        }
        s
    }
}

fn short(commit: &str) -> &str {
    &commit[..commit.len().min(10)]
}

/// Draw speedup against threads, one panel per workload, one line per
/// report, into an SVG file.
///
/// # Errors
/// [`CompareError::Plot`] if the file cannot be written.
pub fn plot(reports: &[(&str, &BenchReport)], path: &Path) -> Result<(), CompareError> {
    let err = |why: String| CompareError::Plot {
        path: path.display().to_string(),
        why,
    };
    let mut workloads: Vec<String> = Vec::new();
    for (_, r) in reports {
        for c in &r.cases {
            if !workloads.contains(&c.workload) {
                workloads.push(c.workload.clone());
            }
        }
    }
    let cols = 3;
    let rows = workloads.len().div_ceil(cols).max(1);
    let root = SVGBackend::new(path, (420 * cols as u32, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let panels = root.split_evenly((rows, cols));
    let colors = [BLUE, RED, GREEN, MAGENTA, CYAN, BLACK];
    for (panel, workload) in panels.iter().zip(&workloads) {
        let series: Vec<Vec<(f64, f64)>> = reports
            .iter()
            .map(|(_, r)| {
                let mut pts: Vec<(f64, f64)> = r
                    .cases
                    .iter()
                    .filter(|c| &c.workload == workload && c.engine == "speculative")
                    .map(|c| (c.threads as f64, c.speedup))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                pts
            })
            .collect();
        let max_t = series.iter().flatten().map(|p| p.0).fold(2.0, f64::max);
        let max_s = series.iter().flatten().map(|p| p.1).fold(2.0, f64::max);
        let mut chart = ChartBuilder::on(panel)
            .caption(workload.as_str(), ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(0.5..max_t + 0.5, 0.0..max_s * 1.1)
            .map_err(|e| err(e.to_string()))?;
        chart
            .configure_mesh()
            .x_desc("threads")
            .y_desc("speedup")
            .draw()
            .map_err(|e| err(e.to_string()))?;
        for (i, ((label, _), pts)) in reports.iter().zip(&series).enumerate() {
            let color = colors[i % colors.len()];
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| err(e.to_string()))?
                .label(label.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
            chart
                .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
                .map_err(|e| err(e.to_string()))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.8))
            .draw()
            .map_err(|e| err(e.to_string()))?;
    }
    root.present().map_err(|e| err(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Header;

    fn report(cpu: &str, serial: f64, spec: &[(usize, [f64; 3])]) -> BenchReport {
        let case = |engine: &str, threads, runs: [f64; 3]| {
            let mut s = runs.to_vec();
            s.sort_by(f64::total_cmp);
            Case {
                workload: "tiny".into(),
                engine: engine.into(),
                threads,
                events: 1000,
                runs_secs: runs.to_vec(),
                median_secs: s[1],
                min_secs: s[0],
                max_secs: s[2],
                events_per_sec: 1000.0 / s[1],
                speedup: serial / s[1],
                reexecution_rate: 0.0,
                identical: true,
                commit_overhead_ns_per_event: 0.0,
                amdahl_bound_16: 16.0,
            }
        };
        let mut cases = vec![case("serial", 1, [serial * 0.99, serial, serial * 1.01])];
        cases.extend(spec.iter().map(|(t, r)| case("speculative", *t, *r)));
        BenchReport {
            header: Header {
                version: 1,
                git_commit: "abc".into(),
                date: "2026-11-23T00:00:00Z".into(),
                cores: 2,
                cpu_model: cpu.into(),
                capacity: 1.9,
                capacity_all: 1.9,
                quick: true,
                repetitions: 3,
            },
            cases,
        }
    }

    #[test]
    fn regressions_beyond_noise_are_found_and_noise_is_not() {
        let old = report("x", 1.0, &[(2, [0.50, 0.52, 0.54])]);
        let new = report("x", 1.0, &[(2, [0.80, 0.82, 0.84])]);
        let c = compare(&old, &new);
        assert!(c.same_machine);
        let row = c
            .rows
            .iter()
            .find(|r| r.case == "tiny speculative@2")
            .unwrap();
        assert!(row.beyond_noise && row.ratio < 0.7);
        assert_eq!(c.regressions(10.0).len(), 1);
        // Overlapping spreads: not beyond noise, never a regression.
        let noisy = report("x", 1.0, &[(2, [0.45, 0.55, 0.60])]);
        let c = compare(&old, &noisy);
        assert!(c.regressions(1.0).is_empty());
        assert!(c.table(&old, &noisy).contains("tiny speculative@2"));
    }

    #[test]
    fn different_machines_compare_speedups_and_skip_serial() {
        let old = report("x", 1.0, &[(2, [0.50, 0.52, 0.54])]);
        let new = report("y", 2.0, &[(2, [1.00, 1.04, 1.08])]);
        let c = compare(&old, &new);
        assert!(!c.same_machine);
        assert_eq!(c.rows.len(), 1, "the serial case is not compared");
        assert!((c.rows[0].ratio - 1.0).abs() < 0.01, "{:?}", c.rows[0]);
        assert!(c.table(&old, &new).contains("different machines"));
    }

    #[test]
    fn the_plot_renders() {
        let old = report("x", 1.0, &[(1, [1.0, 1.0, 1.0]), (2, [0.50, 0.52, 0.54])]);
        let new = report("x", 1.0, &[(1, [1.0, 1.0, 1.0]), (2, [0.60, 0.62, 0.64])]);
        let path = std::env::temp_dir().join(format!("spectree-plot-{}.svg", std::process::id()));
        plot(&[("old", &old), ("new", &new)], &path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("polyline") && svg.contains("tiny"));
        std::fs::remove_file(&path).ok();
    }
}
