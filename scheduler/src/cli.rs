//! The `spectree` command-line tool.
//!
//! Exit status: 0 success; 1 a Nock crash, or a failure of the log or the
//! system; 2 unusable input (a parse error naming the position, or bad
//! arguments); 3 out of fuel or memory budget; 4 speculative results differ
//! from serial (`run`, `bench`); 5 a regression beyond the threshold
//! (`compare --fail-above`).

use std::ffi::OsString;
use std::io::Write;

use clap::{Parser, Subcommand};
use spectree_noun::nock::{nock, Limits, NockError};
use spectree_noun::{cue, jam, parse, to_text_within, Axis, Noun, ParseError};
use spectree_stm::{execute_nock, EventError, NounState, RegionMap};

/// Exit status for a Nock crash.
pub const EXIT_CRASH: i32 = 1;
/// Exit status for unusable input.
pub const EXIT_USAGE: i32 = 2;
/// Exit status for a computation that ran out of fuel or memory budget.
pub const EXIT_FUEL: i32 = 3;

#[derive(Parser, Debug)]
#[command(
    name = "spectree",
    version,
    about = "Process an ordered log of events in parallel, with results identical to serial execution",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Noun utilities: jam, cue, mug.
    Noun {
        #[command(subcommand)]
        op: NounOp,
    },
    /// Compute *[SUBJECT FORMULA] and print the product.
    Nock {
        /// The subject, in noun syntax (e.g. '[1 2]').
        subject: String,
        /// The formula, in noun syntax (e.g. '[0 3]').
        formula: String,
        /// Maximum number of formula evaluations (plus size charges).
        #[arg(long, default_value_t = 100_000_000)]
        fuel: u64,
        /// Memory budget in bytes (cells built, big atoms, the stack).
        #[arg(long, default_value_t = spectree_noun::nock::DEFAULT_MEMORY)]
        memory: u64,
    },
    /// Run one Nock event against a state and print what it read and wrote.
    Trace {
        /// The state, in noun syntax.
        #[arg(long)]
        state: String,
        /// The kernel formula; it gets the subject [EVENT STATE] and must
        /// produce [effects new-state].
        #[arg(long)]
        kernel: String,
        /// The event, in noun syntax.
        #[arg(long)]
        event: String,
        /// Regions: `depth:D` (every subtree at depth D) or `axes:A,B,...`.
        #[arg(long, default_value = "depth:2")]
        regions: String,
        /// Maximum number of formula evaluations (plus size charges).
        #[arg(long, default_value_t = 100_000_000)]
        fuel: u64,
        /// Memory budget in bytes (cells built, big atoms, the stack).
        #[arg(long, default_value_t = spectree_noun::nock::DEFAULT_MEMORY)]
        memory: u64,
    },
    /// Run the main job: a workload serially and speculatively, compare
    /// the results and report the speedup (the default command).
    Run(RunArgs),
    /// Run the benchmark matrix (every workload, serial and speculative at
    /// 1, 2 and all cores, repeated) and write a JSON report.
    Bench {
        /// The short profile: a tenth of the events, three repetitions.
        #[arg(long)]
        quick: bool,
        /// Where to write the report.
        #[arg(long, value_name = "FILE", default_value = "spectree-bench.json")]
        out: std::path::PathBuf,
    },
    /// Replay a log written by `spectree run --log DIR` and print the event
    /// count and the final state's mug (equal to the run's).
    Replay {
        /// The log's directory.
        dir: std::path::PathBuf,
        /// Threads of the replay.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Compare two reports written by `spectree bench`.
    Compare {
        /// The baseline report.
        old: std::path::PathBuf,
        /// The report to judge.
        new: std::path::PathBuf,
        /// Also draw speedup against threads per workload to this SVG file.
        #[arg(long, value_name = "FILE.svg")]
        plot: Option<std::path::PathBuf>,
        /// Exit 5 if any case got worse by more than PCT percent, beyond
        /// the noise of both reports.
        #[arg(long, value_name = "PCT")]
        fail_above: Option<f64>,
    },
}

/// Arguments of `spectree run`.
#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// The workload: independent, arvo, hotspot, tiny or kv.
    #[arg(long, default_value = "arvo")]
    workload: String,
    /// Number of events (default: 50,000 for independent and hotspot,
    /// 100,000 for arvo, 1,000,000 for tiny, 10,000 for kv).
    #[arg(long)]
    events: Option<u64>,
    /// Threads of the speculative run (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Seed of the workload's random choices.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
    /// Work per event in microseconds (default: the workload's).
    #[arg(long, value_name = "US")]
    work: Option<f64>,
    /// kv: number of keys.
    #[arg(long, default_value_t = 1000)]
    keys: u64,
    /// kv: keys each event reads then writes.
    #[arg(long, default_value_t = 2)]
    per_event: u64,
    /// kv: share of key picks that go to one hot key (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    hot: f64,
    /// Share of events that fail on purpose (panic, error, crash, out of fuel).
    #[arg(long, default_value_t = 0.0)]
    faults: f64,
    /// Speculation window (0: automatic).
    #[arg(long, default_value_t = 0)]
    window: usize,
    /// Always speculate across the whole window.
    #[arg(long)]
    no_adapt: bool,
    /// Skip measuring available parallelism (an extra serial pass).
    #[arg(long)]
    no_analysis: bool,
    /// Log the speculative run durably in directory DIR (events and
    /// snapshots; `spectree replay DIR` replays it). DIR must hold no log.
    #[arg(long, value_name = "DIR")]
    log: Option<std::path::PathBuf>,
    /// With --log: events per durable append (one sync each).
    #[arg(long, default_value_t = 1024, requires = "log")]
    group: usize,
    /// With --log: take a snapshot every N events (0: only the initial one).
    #[arg(long, default_value_t = 100_000, requires = "log")]
    snapshot_every: u64,
    /// Print `ack N` to stdout after every N released outputs (for crash tests).
    #[arg(long, default_value_t = 0, hide = true)]
    ack_every: u64,
    /// Run only the speculative (logged) run, without comparing (for crash tests).
    #[arg(long, hide = true)]
    skip_serial: bool,
}

#[derive(Subcommand, Debug)]
enum NounOp {
    /// Print the jam of NOUN as lowercase 0x hex.
    Jam {
        /// The noun, in noun syntax.
        noun: String,
    },
    /// Print the noun whose jam is ATOM.
    Cue {
        /// The jammed atom (decimal or 0x hex).
        atom: String,
    },
    /// Print the mug of NOUN as 0x hex.
    Mug {
        /// The noun, in noun syntax.
        noun: String,
    },
}

/// Run the tool with `args` (including the program name), writing to `out`
/// and `err`; returns the exit status.
pub fn main_with(
    args: impl IntoIterator<Item = OsString>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { EXIT_USAGE } else { 0 };
            // Plain text: the stream may not be a terminal.
            let text = e.render().to_string();
            let _ = if code == 0 {
                write!(out, "{text}")
            } else {
                write!(err, "{text}")
            };
            return code;
        }
    };
    let command = cli.command.unwrap_or_else(default_command);
    match execute(command, out) {
        Ok(()) => 0,
        Err(failure) => {
            let _ = writeln!(err, "spectree: {}", failure.message);
            failure.code
        }
    }
}

/// Writing the command's output failed.
fn io(e: std::io::Error) -> Failure {
    Failure {
        code: 1,
        message: format!("cannot write output: {e}"),
    }
}

struct Failure {
    code: i32,
    message: String,
}

fn usage(message: String) -> Failure {
    Failure {
        code: EXIT_USAGE,
        message,
    }
}

/// Parse `text` as the noun named `what`, with an error that points at the
/// problem.
fn noun_arg(what: &str, text: &str) -> Result<Noun, Failure> {
    parse(text).map_err(|e: ParseError| {
        let mut message = format!("cannot parse {what}: {e}");
        if text.len() <= 120 && !text.contains('\n') {
            let col = text[..e.offset.min(text.len())].chars().count();
            message.push_str(&format!("\n  {text}\n  {}^", " ".repeat(col)));
        }
        usage(message)
    })
}

/// Largest noun text the tool prints (a noun that shares subtrees can be
/// exponentially larger as text than in memory).
pub const MAX_TEXT: usize = 64 << 20;

/// The canonical text of `noun`, or a failure naming its size problem.
fn text_of(what: &str, noun: &Noun) -> Result<String, Failure> {
    to_text_within(noun, MAX_TEXT).ok_or_else(|| Failure {
        code: EXIT_CRASH,
        message: format!(
            "the {what} is too large to print (over {} MiB as text; it shares subtrees); its mug is 0x{:x}",
            MAX_TEXT >> 20,
            noun.mug()
        ),
    })
}

/// The exit status and message for a computation that ended without a
/// product: out of fuel exits 3, anything else 1.
fn nock_failure(e: &NockError, context: &str) -> Failure {
    match e {
        NockError::OutOfFuel { spent } => Failure {
            code: EXIT_FUEL,
            message: format!("out of fuel after {spent} steps (raise --fuel)"),
        },
        NockError::OutOfMemory { budget } => Failure {
            code: EXIT_FUEL,
            message: format!(
                "out of memory: the computation would hold more than {budget} bytes (raise --memory)"
            ),
        },
        _ => Failure {
            code: EXIT_CRASH,
            message: format!("{context} {e}"),
        },
    }
}

/// Parse `depth:D` or `axes:A,B,...`.
fn region_arg(text: &str) -> Result<RegionMap, Failure> {
    let bad = |why: String| usage(format!("bad --regions {text:?}: {why}"));
    let built = if let Some(d) = text.strip_prefix("depth:") {
        let d: u64 = d
            .parse()
            .map_err(|_| bad("expected depth:D with D a number".into()))?;
        RegionMap::depth(d)
    } else if let Some(list) = text.strip_prefix("axes:") {
        let mut roots = Vec::new();
        for part in list.split(',') {
            let axis = match parse(part.trim()) {
                Ok(Noun::Atom(a)) => Axis::from_atom(&a).map_err(|e| bad(e.to_string()))?,
                _ => return Err(bad(format!("{part:?} is not an axis"))),
            };
            roots.push(axis);
        }
        RegionMap::axes(roots)
    } else {
        return Err(bad("expected depth:D or axes:A,B,...".into()));
    };
    built.map_err(|e| bad(e.to_string()))
}

fn execute(command: Command, out: &mut dyn Write) -> Result<(), Failure> {
    match command {
        Command::Noun { op } => match op {
            NounOp::Jam { noun } => {
                let n = noun_arg("NOUN", &noun)?;
                writeln!(out, "0x{:x}", jam(&n)).map_err(io)
            }
            NounOp::Cue { atom } => {
                let n = noun_arg("ATOM", &atom)?;
                let Noun::Atom(a) = n else {
                    return Err(usage("cannot cue ATOM: it is a cell, not an atom".into()));
                };
                let decoded = cue(&a).map_err(|e| usage(format!("cannot cue ATOM: {e}")))?;
                writeln!(out, "{}", text_of("decoded noun", &decoded)?).map_err(io)
            }
            NounOp::Mug { noun } => {
                let n = noun_arg("NOUN", &noun)?;
                writeln!(out, "0x{:x}", n.mug()).map_err(io)
            }
        },
        Command::Nock {
            subject,
            formula,
            fuel,
            memory,
        } => {
            let s = noun_arg("SUBJECT", &subject)?;
            let f = noun_arg("FORMULA", &formula)?;
            match nock(s, &f, &Limits::fuel(fuel).with_memory(memory)) {
                Ok(product) => writeln!(out, "{}", text_of("product", &product)?).map_err(io),
                Err(e) => Err(nock_failure(&e, "nock")),
            }
        }
        Command::Trace {
            state,
            kernel,
            event,
            regions,
            fuel,
            memory,
        } => {
            let state = noun_arg("--state", &state)?;
            let kernel = noun_arg("--kernel", &kernel)?;
            let event = noun_arg("--event", &event)?;
            let regions = region_arg(&regions)?;
            let run = execute_nock(
                &kernel,
                &event,
                &NounState(state),
                &regions,
                &Limits::fuel(fuel).with_memory(memory),
            );
            // Streamed: a deep walk's axes can be far larger as text than
            // in memory.
            let mut out = std::io::BufWriter::new(out);
            let line =
                |out: &mut dyn Write, name: &str, items: &mut dyn Iterator<Item = String>| {
                    write!(out, "{name}: ")?;
                    let mut sep = "";
                    for item in items {
                        write!(out, "{sep}{item}")?;
                        sep = " ";
                    }
                    writeln!(out)
                };
            let a = &run.access;
            match &run.outcome {
                Ok(effects) => writeln!(out, "product: {}", text_of("product", effects)?),
                Err(e) => writeln!(out, "error: {e}"),
            }
            .map_err(io)?;
            line(
                &mut out,
                "reads",
                &mut a.reads().iter().map(ToString::to_string),
            )
            .map_err(io)?;
            line(
                &mut out,
                "shapes",
                &mut a.shapes().iter().map(ToString::to_string),
            )
            .map_err(io)?;
            line(
                &mut out,
                "writes",
                &mut a.writes().iter().map(ToString::to_string),
            )
            .map_err(io)?;
            line(
                &mut out,
                "regions-read",
                &mut a.read_regions().iter_ones().map(|i| i.to_string()),
            )
            .map_err(io)?;
            line(
                &mut out,
                "regions-written",
                &mut a.write_regions().iter_ones().map(|i| i.to_string()),
            )
            .map_err(io)?;
            out.flush().map_err(io)?;
            match run.outcome {
                Ok(_) => Ok(()),
                Err(EventError::Nock(e)) => Err(nock_failure(&e, "event failed: nock")),
                Err(e) => Err(Failure {
                    code: EXIT_CRASH,
                    message: format!("event failed: {e}"),
                }),
            }
        }
        Command::Run(args) => run_command(&args, out),
        Command::Bench { quick, out: path } => bench_command(quick, &path, out),
        Command::Replay { dir, threads } => replay_command(&dir, threads, out),
        Command::Compare {
            old,
            new,
            plot,
            fail_above,
        } => compare_command(&old, &new, plot.as_deref(), fail_above, out),
    }
}

/// Exit status when `compare --fail-above` finds a regression.
pub const EXIT_REGRESSED: i32 = 5;

/// Open `path` for writing now, so that an unusable path fails before a
/// long run instead of after it.
fn output_file(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    std::fs::File::create(path).map_err(|e| Failure {
        code: EXIT_USAGE,
        message: format!("cannot write {}: {e}", path.display()),
    })
}

fn write_json(
    mut file: std::fs::File,
    path: &std::path::Path,
    value: &impl serde::Serialize,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).expect("a report serializes");
    file.write_all((text + "\n").as_bytes())
        .map_err(|e| Failure {
            code: 1,
            message: format!("cannot write {}: {e}", path.display()),
        })
}

fn bench_command(quick: bool, path: &std::path::Path, out: &mut dyn Write) -> Result<(), Failure> {
    let file = output_file(path)?;
    let report = crate::report::bench(quick, &mut |name| {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprint!("\rbench: {name:<12}");
        }
    })
    .map_err(usage)?;
    write_json(file, path, &report)?;
    writeln!(
        out,
        "{} cases, {} cores, capacity {:.2}x (2 threads) / {:.2}x ({} threads); report in {}",
        report.cases.len(),
        report.header.cores,
        report.header.capacity,
        report.header.capacity_all,
        report.header.cores,
        path.display()
    )
    .map_err(io)?;
    for c in &report.cases {
        writeln!(
            out,
            "  {:<12} {:<11} {:>2} threads  {:>12.0} events/s  speedup {:>5.2}  re-exec {:>5.1}%{}",
            c.workload,
            c.engine,
            c.threads,
            c.events_per_sec,
            c.speedup,
            100.0 * c.reexecution_rate,
            if c.identical { "" } else { "  RESULTS DIFFER" }
        )
        .map_err(io)?;
    }
    if report.cases.iter().all(|c| c.identical) {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_DIFFERENT,
            message: "some speculative results differ from the serial ones".into(),
        })
    }
}

fn compare_command(
    old: &std::path::Path,
    new: &std::path::Path,
    plot: Option<&std::path::Path>,
    fail_above: Option<f64>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    use crate::compare::{compare, load, plot as draw};
    let (a, b) = (
        load(old).map_err(|e| usage(e.to_string()))?,
        load(new).map_err(|e| usage(e.to_string()))?,
    );
    let c = compare(&a, &b);
    write!(out, "{}", c.table(&a, &b)).map_err(io)?;
    if let Some(path) = plot {
        let (la, lb) = (old.display().to_string(), new.display().to_string());
        draw(&[(la.as_str(), &a), (lb.as_str(), &b)], path).map_err(|e| Failure {
            code: 1,
            message: e.to_string(),
        })?;
        writeln!(out, "plot: {}", path.display()).map_err(io)?;
    }
    if let Some(pct) = fail_above {
        let worse = c.regressions(pct);
        if !worse.is_empty() {
            let names: Vec<&str> = worse.iter().map(|r| r.case.as_str()).collect();
            return Err(Failure {
                code: EXIT_REGRESSED,
                message: format!("regressed by more than {pct}%: {}", names.join(", ")),
            });
        }
    }
    Ok(())
}

fn replay_command(
    dir: &std::path::Path,
    threads: Option<usize>,
    out: &mut dyn Write,
) -> Result<(), Failure> {
    use crate::durable::{EventLog, LogError};
    use crate::workload::AnyWorkload;
    let fail = |message: String| Failure { code: 1, message };
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    crate::Config::threads(threads)
        .check()
        .map_err(|e| usage(e.to_string()))?;
    let log = EventLog::open_read_only(dir).map_err(|e| match e {
        LogError::Missing { .. } => usage(e.to_string()),
        e => fail(e.to_string()),
    })?;
    if log.recovered() {
        writeln!(
            out,
            "warning: the log was not closed cleanly (its writer stopped abruptly); anything it had not acknowledged is not in it"
        )
        .map_err(io)?;
    }
    let workload = match AnyWorkload::from_identity(log.identity()) {
        Some(Ok(w)) => w,
        Some(Err(e)) => {
            return Err(fail(format!(
                "{}: the log's workload cannot be rebuilt: {e}",
                log.path().display()
            )))
        }
        None => {
            return Err(fail(format!(
                "{}: the log was written by {:?}, not by a built-in workload",
                log.path().display(),
                log.identity()
            )))
        }
    };
    let name = workload.name();
    let config = crate::Config::threads(threads);
    macro_rules! go {
        ($w:expr) => {{
            let w = $w;
            let config = crate::Config {
                fuel: w.fuel,
                ..config
            };
            let p = crate::Processor::new(w.regions.clone(), w.kernel.clone(), config)
                .map_err(|e| fail(e.to_string()))?;
            let r = crate::logged::replay(&p, &log, |n| w.decode(n))
                .map_err(|e| fail(e.to_string()))?;
            (
                r.events,
                r.from_snapshot,
                spectree_stm::State::mug(&r.state),
                r.skipped,
            )
        }};
    }
    let (events, from, mug, skipped) = match &workload {
        AnyWorkload::Noun(w) => go!(w),
        AnyWorkload::Map(w) => go!(w),
    };
    for s in &skipped {
        writeln!(out, "warning: {s}; using an older snapshot").map_err(io)?;
    }
    writeln!(out, "replayed {events} events of {name} (from the snapshot after {from}) with {threads} threads").map_err(io)?;
    writeln!(out, "final mug 0x{mug:x}").map_err(io)
}

/// What `spectree` with no arguments does: `spectree run` with defaults.
fn default_command() -> Command {
    match Cli::try_parse_from(["spectree", "run"]) {
        Ok(Cli { command: Some(c) }) => c,
        _ => unreachable!("`spectree run` parses"),
    }
}

/// Exit status when the speculative results differ from the serial ones.
pub const EXIT_DIFFERENT: i32 = 4;

fn run_command(args: &RunArgs, out: &mut dyn Write) -> Result<(), Failure> {
    use crate::run::{run, summary, RunOptions};
    use crate::workload::{AnyWorkload, Params};
    let events = args.events.unwrap_or(match args.workload.as_str() {
        "arvo" => 100_000,
        "tiny" => 1_000_000,
        "kv" => 10_000,
        _ => 50_000,
    });
    let params = Params {
        events,
        seed: args.seed,
        work_us: args.work,
        faults: args.faults,
        keys: args.keys,
        per_event: args.per_event,
        hot: args.hot,
    };
    let workload = AnyWorkload::build(&args.workload, params).map_err(|e| usage(e.to_string()))?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    crate::Config::threads(threads)
        .check()
        .map_err(|e| usage(e.to_string()))?;
    let json = args.json.as_deref().map(output_file).transpose()?;
    let options = RunOptions {
        threads,
        window: args.window,
        adaptive: !args.no_adapt,
        progress: true,
        analyze: !args.no_analysis && !args.skip_serial,
        log: args.log.clone().map(|dir| {
            let policy = crate::logged::LogPolicy {
                group: args.group,
                snapshot_every: args.snapshot_every,
            };
            (dir, policy)
        }),
        ack_every: args.ack_every,
        skip_serial: args.skip_serial,
    };
    let report = run(&workload, &options).map_err(|e| {
        use crate::durable::LogError;
        use crate::run::RunError;
        let code = match &e {
            RunError::Config(_) | RunError::Log(LogError::Exists { .. }) => EXIT_USAGE,
            _ => 1,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    })?;
    write!(out, "{}", summary(&report)).map_err(io)?;
    if let (Some(file), Some(path)) = (json, &args.json) {
        write_json(file, path, &report)?;
    }
    if report.identical {
        Ok(())
    } else {
        Err(Failure {
            code: EXIT_DIFFERENT,
            message: "the speculative results differ from the serial ones".into(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_on_arvo_is_the_default_command() {
        match default_command() {
            Command::Run(args) => {
                assert_eq!(args.workload, "arvo");
                assert_eq!(args.events, None);
                assert!(!args.no_adapt);
            }
            other => panic!("default is {other:?}"),
        }
    }
}
