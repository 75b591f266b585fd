//! The `spectree` commands: what each does with its arguments, and the
//! one exit status each failure maps to ([`Exit`]).

use std::ffi::OsString;
use std::io::Write;

use clap::Parser;
use spectree::noun::nock::{nock, Limits, NockError};
use spectree::noun::{
    cue, cue_bytes, jam, jam_bytes, parse, to_text_within, Axis, Noun, ParseError,
};
use spectree::stm::{execute_nock, EventError, NounState, Options, RegionMap};

use crate::args::{Cli, Command, Inputs, NounOp, RunArgs};
use crate::exit::Exit;

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
            let code = if e.use_stderr() {
                Exit::Usage.code()
            } else {
                Exit::Ok.code()
            };
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
        Ok(()) => Exit::Ok.code(),
        Err(failure) => {
            let _ = writeln!(err, "spectree: {}", failure.message);
            failure.code.code()
        }
    }
}

/// Writing the command's output failed.
fn io(e: std::io::Error) -> Failure {
    Failure {
        code: Exit::Failed,
        message: format!("cannot write output: {e}"),
    }
}

/// A command's failure: its exit status and its one-line message.
struct Failure {
    code: Exit,
    message: String,
}

fn usage(message: String) -> Failure {
    Failure {
        code: Exit::Usage,
        message,
    }
}

fn failed(message: String) -> Failure {
    Failure {
        code: Exit::Failed,
        message,
    }
}

/// The noun argument `what` given as `arg` (text, `-` or `@FILE`).
fn noun_input(inputs: &mut Inputs, what: &str, arg: &str) -> Result<Noun, Failure> {
    let text = inputs.text(what, arg).map_err(|e| usage(e.to_string()))?;
    noun_arg(what, &text)
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
        code: Exit::Failed,
        message: format!(
            "the {what} is too large to print (over {} MiB as text; it shares subtrees); its mug is 0x{:x}",
            MAX_TEXT >> 20,
            noun.mug()
        ),
    })
}

/// The exit status and message for a computation that ended without a
/// product: out of fuel or memory exits 3, anything else 1.
fn nock_failure(e: &NockError, context: &str) -> Failure {
    match e {
        NockError::OutOfFuel { spent } => Failure {
            code: Exit::Budget,
            message: format!("out of fuel after {spent} steps (raise --fuel)"),
        },
        NockError::OutOfMemory { budget } => Failure {
            code: Exit::Budget,
            message: format!(
                "out of memory: the computation would build more than {budget} bytes of cells and atoms, counted over the whole run like fuel, plus its stack (raise --memory)"
            ),
        },
        _ => Failure {
            code: Exit::Failed,
            message: format!("{context} {e}"),
        },
    }
}

/// Regions in ascending order.
fn sorted(regions: &[u32]) -> impl Iterator<Item = u32> {
    let mut v = regions.to_vec();
    v.sort_unstable();
    v.into_iter()
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
    let mut inputs = Inputs::default();
    match command {
        Command::Noun { op } => match op {
            NounOp::Jam { noun, out: None } => {
                let n = noun_input(&mut inputs, "NOUN", &noun)?;
                writeln!(out, "0x{:x}", jam(&n)).map_err(io)
            }
            NounOp::Jam {
                noun,
                out: Some(path),
            } => {
                let n = noun_input(&mut inputs, "NOUN", &noun)?;
                std::fs::write(&path, jam_bytes(&n))
                    .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
            }
            NounOp::Cue {
                atom: _,
                file: Some(file),
            } => {
                let bytes = inputs
                    .bytes("--file", &file, true)
                    .map_err(|e| usage(e.to_string()))?
                    .unwrap_or_default();
                let decoded =
                    cue_bytes(&bytes).map_err(|e| usage(format!("cannot cue {file}: {e}")))?;
                writeln!(out, "{}", text_of("decoded noun", &decoded)?).map_err(io)
            }
            NounOp::Cue { atom, file: None } => {
                let n = noun_input(&mut inputs, "ATOM", &atom.unwrap_or_default())?;
                let Noun::Atom(a) = n else {
                    return Err(usage("cannot cue ATOM: it is a cell, not an atom".into()));
                };
                let decoded = cue(&a).map_err(|e| usage(format!("cannot cue ATOM: {e}")))?;
                writeln!(out, "{}", text_of("decoded noun", &decoded)?).map_err(io)
            }
            NounOp::Mug { noun } => {
                let n = noun_input(&mut inputs, "NOUN", &noun)?;
                writeln!(out, "0x{:x}", n.mug()).map_err(io)
            }
        },
        Command::Nock {
            subject,
            formula,
            fuel,
            memory,
        } => {
            let s = noun_input(&mut inputs, "SUBJECT", &subject)?;
            let f = noun_input(&mut inputs, "FORMULA", &formula)?;
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
            let state = noun_input(&mut inputs, "--state", &state)?;
            let kernel = noun_input(&mut inputs, "--kernel", &kernel)?;
            let event = noun_input(&mut inputs, "--event", &event)?;
            let regions = region_arg(&regions)?;
            let run = execute_nock(
                &kernel,
                &event,
                NounState(state),
                &regions,
                &Options::tracked(Limits::fuel(fuel).with_memory(memory)),
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
                &mut sorted(a.read_regions()).map(|i| i.to_string()),
            )
            .map_err(io)?;
            line(
                &mut out,
                "regions-written",
                &mut sorted(a.write_regions()).map(|i| i.to_string()),
            )
            .map_err(io)?;
            out.flush().map_err(io)?;
            match run.outcome {
                Ok(_) => Ok(()),
                Err(EventError::Nock(e)) => Err(nock_failure(&e, "event failed: nock")),
                Err(e) => Err(failed(format!("event failed: {e}"))),
            }
        }
        Command::Run(args) => run_command(&args, out),
        Command::Bench { quick, out: path } => bench_command(quick, &path, out),
        Command::Replay { dir, threads } => replay_command(&dir, threads, out),
        Command::Serve(args) => serve_command(&args, out),
        Command::Compare {
            old,
            new,
            plot,
            fail_above,
        } => compare_command(&old, &new, plot.as_deref(), fail_above, out),
    }
}

/// Open `path` for writing now, so that an unusable path fails before a
/// long run instead of after it.
fn output_file(path: &std::path::Path) -> Result<std::fs::File, Failure> {
    std::fs::File::create(path).map_err(|e| usage(format!("cannot write {}: {e}", path.display())))
}

fn write_json(
    mut file: std::fs::File,
    path: &std::path::Path,
    value: &impl serde::Serialize,
) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).expect("a report serializes");
    file.write_all((text + "\n").as_bytes())
        .map_err(|e| failed(format!("cannot write {}: {e}", path.display())))
}

fn bench_command(quick: bool, path: &std::path::Path, out: &mut dyn Write) -> Result<(), Failure> {
    let file = output_file(path)?;
    let report = crate::bench::bench(quick, &mut |name| {
        use std::io::IsTerminal;
        if std::io::stderr().is_terminal() {
            eprint!("\rbench: {name:<12}");
        }
    })
    .map_err(|e| failed(e.to_string()))?;
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
            "  {:<12} {:<11} {:>2} threads  {:>12.0} events/s  speedup {:>5.2}  re-exec {:>5.1}%{}{}",
            c.workload,
            c.engine,
            c.threads,
            c.events_per_sec,
            c.speedup,
            100.0 * c.reexecution_rate,
            if c.engine == "speculative" && c.commit_overhead_ns_per_event > 0.0 {
                format!(
                    "  serial part {:.0} ns/event (Amdahl at 16: {:.1}x)",
                    c.commit_overhead_ns_per_event, c.amdahl_bound_16
                )
            } else {
                String::new()
            },
            if c.identical { "" } else { "  RESULTS DIFFER" }
        )
        .map_err(io)?;
    }
    if report.cases.iter().all(|c| c.identical) {
        Ok(())
    } else {
        Err(Failure {
            code: Exit::Different,
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
        draw(&[(la.as_str(), &a), (lb.as_str(), &b)], path).map_err(|e| failed(e.to_string()))?;
        writeln!(out, "plot: {}", path.display()).map_err(io)?;
    }
    if let Some(pct) = fail_above {
        let worse = c.regressions(pct);
        if !worse.is_empty() {
            let names: Vec<&str> = worse.iter().map(|r| r.case.as_str()).collect();
            return Err(Failure {
                code: Exit::Regressed,
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
    use spectree_log::{EventLog, LogError};
    use spectree_workloads::AnyWorkload;
    let fail = failed;
    let threads =
        threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    check_threads(threads)?;
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
    // A node's log carries its kernel.
    if let Some(kernel) = log.kernel().map_err(|e| fail(e.to_string()))? {
        let p = spectree::Processor::<NounState>::builder(RegionMap::depth(4).expect("depth 4"))
            .kernel(kernel)
            .threads(threads)
            .build()
            .map_err(|e| fail(e.to_string()))?;
        let r = spectree_log::replay(&p, &log, |n| {
            Ok::<_, std::convert::Infallible>(spectree::Event::nock(n.clone()))
        })
        .map_err(|e| fail(e.to_string()))?;
        for s in &r.skipped {
            writeln!(out, "warning: {s}; using an older snapshot").map_err(io)?;
        }
        writeln!(
            out,
            "replayed {} events of {} (from the snapshot after {}) with {threads} threads",
            r.events,
            log.identity(),
            r.from_snapshot
        )
        .map_err(io)?;
        return writeln!(out, "final mug 0x{:x}", r.state.0.mug()).map_err(io);
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
    macro_rules! go {
        ($w:expr) => {{
            let w = $w;
            let p = w
                .builder()
                .threads(threads)
                .build()
                .map_err(|e| fail(e.to_string()))?;
            let r =
                spectree_log::replay(&p, &log, |n| w.decode(n)).map_err(|e| fail(e.to_string()))?;
            (
                r.events,
                r.from_snapshot,
                spectree::stm::State::mug(&r.state),
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

fn serve_command(args: &crate::args::ServeArgs, out: &mut dyn Write) -> Result<(), Failure> {
    use crate::serve::{serve, Format, ServeError, ServeOptions};
    use spectree_log::{LogError, Node, NodeConfig, NodeError};
    let mut inputs = Inputs::default();
    if args.kernel == "-" || args.state.as_deref() == Some("-") {
        return Err(usage(
            "serve reads events from standard input: give --kernel and --state as text or @FILE"
                .into(),
        ));
    }
    let kernel = noun_input(&mut inputs, "--kernel", &args.kernel)?;
    let state = args
        .state
        .as_deref()
        .map(|s| noun_input(&mut inputs, "--state", s))
        .transpose()?;
    let regions = region_arg(&args.regions)?;
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    check_threads(threads)?;
    if args.group == 0 {
        return Err(usage("--group must be at least 1".into()));
    }
    let mut config = NodeConfig::default();
    config.processor.threads = threads;
    config.processor.fuel = args.fuel;
    config.processor.memory = args.memory;
    config.log.snapshot_every = args.snapshot_every;
    if (args.follow || args.take_over) && args.jetstream.is_none() {
        return Err(usage(
            "--follow and --take-over need --jetstream URL".into(),
        ));
    }
    let opened = match &args.jetstream {
        None => Node::open(&args.dir, kernel, regions, state, config),
        Some(url) => {
            use spectree_log::{kernel_identity, JetStreamConfig, JetStreamLog, LogBackend};
            let mut js = JetStreamConfig::new(url, &args.dir.to_string_lossy());
            js.replicas = args.replicas;
            if args.follow {
                let log = JetStreamLog::open(&js).map_err(|e| failed(e.to_string()))?;
                return crate::serve::follow(&log, kernel, regions, config, out).map_err(
                    |e| match e {
                        ServeError::Node(NodeError::OtherKernel { .. }) => usage(e.to_string()),
                        e => failed(e.to_string()),
                    },
                );
            }
            let log = JetStreamLog::create_or_open(
                &js,
                &kernel_identity(&kernel),
                &state.clone().unwrap_or(Noun::ZERO),
            )
            .map_err(|e| match e {
                LogError::OtherWriter { .. } => usage(e.to_string()),
                e => failed(e.to_string()),
            })?;
            if !log.is_empty() && !args.take_over {
                return Err(usage(format!(
                    "{}: the stream holds {} events; pass --take-over to continue it as its writer (any other writer is then refused)",
                    log.path().display(),
                    log.len()
                )));
            }
            if args.take_over {
                // Claim the stream before recovering: the writer replaced
                // is refused from its next append on.
                log.fence().map_err(|e| failed(e.to_string()))?;
            }
            Node::with_log(Box::new(log), kernel, regions, config)
        }
    };
    let node = opened.map_err(|e| {
        let code = match &e {
            NodeError::Log(LogError::Locked { .. })
            | NodeError::OtherKernel { .. }
            | NodeError::OtherState { .. }
            | NodeError::Build(_) => Exit::Usage,
            _ => Exit::Failed,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    })?;
    let mut messages = std::io::stderr();
    if node.recovered_unclean() {
        let _ = writeln!(
            messages,
            "spectree serve: the log was not closed cleanly; recovered {} events (from the snapshot after {})",
            node.events(),
            node.recovered_from()
        );
    }
    let options = ServeOptions {
        format: if args.jam { Format::Jam } else { Format::Text },
        group: args.group,
        max_frame: args.max_frame,
        outputs_from: args.outputs_from,
    };
    let mut out = std::io::BufWriter::new(out);
    serve(
        node,
        Box::new(std::io::stdin()),
        &mut out,
        &mut messages,
        &options,
    )
    .map_err(|e| match e {
        ServeError::Input(_) | ServeError::Node(NodeError::Beyond { .. }) => usage(e.to_string()),
        e => failed(e.to_string()),
    })
}

/// What `spectree` with no arguments does: `spectree run` with defaults.
fn default_command() -> Command {
    match Cli::try_parse_from(["spectree", "run"]) {
        Ok(Cli { command: Some(c) }) => c,
        _ => unreachable!("`spectree run` parses"),
    }
}

/// Address space each thread is counted for: its stack (2 MiB by default)
/// and some room for its allocations.
const THREAD_SPACE: u64 = 4 << 20;

/// Refuse an out-of-range thread count, or one whose stacks cannot fit the
/// process's address-space limit, before any work (past the limit, thread
/// starts fail and allocations abort).
fn check_threads(threads: usize) -> Result<(), Failure> {
    let mut config = spectree::Config::default();
    config.threads = threads;
    config.check().map_err(|e| usage(e.to_string()))?;
    if let Some(limit) = crate::run::address_space_limit() {
        let needed = threads as u64 * THREAD_SPACE;
        if needed > limit / 2 {
            return Err(usage(format!(
                "{threads} threads need about {} MiB of address space for their stacks; this process may use {} MiB (ulimit -v)",
                needed >> 20,
                limit >> 20
            )));
        }
    }
    Ok(())
}

fn run_command(args: &RunArgs, out: &mut dyn Write) -> Result<(), Failure> {
    use crate::run::{run, summary, RunOptions};
    use spectree_workloads::{default_events, AnyWorkload, Params};
    let events = args
        .events
        .unwrap_or_else(|| default_events(&args.workload));
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
    check_threads(threads)?;
    if let Some(w) = args.window {
        if !(2..=spectree::MAX_WINDOW).contains(&w) {
            return Err(usage(format!(
                "--window must be between 2 and {}, not {w}",
                spectree::MAX_WINDOW
            )));
        }
    }
    let json = args.json.as_deref().map(output_file).transpose()?;
    let options = RunOptions {
        threads,
        window: args.window,
        adaptive: !args.no_adapt,
        progress: true,
        analyze: !args.no_analysis && !args.no_compare,
        log: args.log.clone().map(|dir| {
            let policy = spectree_log::LogPolicy {
                group: args.group,
                snapshot_every: args.snapshot_every,
            };
            (dir, policy)
        }),
        ack_every: args.ack_every,
        skip_serial: args.no_compare,
    };
    let report = run(&workload, &options).map_err(|e| {
        use crate::run::RunError;
        use spectree_log::LogError;
        let code = match &e {
            RunError::Config(_)
            | RunError::Log(LogError::Exists { .. })
            | RunError::OtherWorkload { .. }
            | RunError::LongerLog { .. } => Exit::Usage,
            _ => Exit::Failed,
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
            code: Exit::Different,
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
