//! The `spectree` command line: commands, arguments, and where noun
//! arguments come from.

use std::io::Read;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Parser, Debug)]
#[command(
    name = "spectree",
    version,
    about = "Process an ordered log of events in parallel, with results identical to serial execution",
    args_conflicts_with_subcommands = true,
    after_help = crate::exit::HELP
)]
pub struct Cli {
    /// The command; `run` when none is given.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// `spectree serve`'s arguments.
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// The node's directory (its log is made there if missing).
    pub dir: std::path::PathBuf,
    /// The kernel formula (text or `@FILE`): it gets the subject
    /// [EVENT STATE] and must produce [effects new-state].
    #[arg(long)]
    pub kernel: String,
    /// The initial state (text or `@FILE`; default 0). For an existing log
    /// it must be the state the log starts from.
    #[arg(long)]
    pub state: Option<String>,
    /// Events in and outputs out as frames: an 8-byte little-endian length,
    /// then a jammed noun (outputs: `[N replayed [0 effects]]` or
    /// `[N replayed [1 message]]`).
    #[arg(long)]
    pub jam: bool,
    /// Threads of the processor (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Regions: `depth:D` or `axes:A,B,...` (results never depend on it).
    #[arg(long, default_value = "depth:4")]
    pub regions: String,
    /// Most events per durable append (one sync each).
    #[arg(long, default_value_t = 1024)]
    pub group: usize,
    /// Take a snapshot after every N events (0: only on close).
    #[arg(long, default_value_t = 100_000)]
    pub snapshot_every: u64,
    /// Before taking events, write the outputs of logged events from N on,
    /// recomputed and marked `replayed` (after a crash: the outputs of
    /// events logged but perhaps never written).
    #[arg(long, value_name = "N")]
    pub outputs_from: Option<u64>,
    /// Keep the log on NATS JetStream at URL (comma-separated servers)
    /// instead of in DIR; DIR is then the node's name (letters, digits, `-`,
    /// `_`), naming its stream and snapshot store.
    #[arg(long, value_name = "URL")]
    pub jetstream: Option<String>,
    /// With --jetstream: replicas of a stream this node creates.
    #[arg(long, default_value_t = 3)]
    pub replicas: usize,
    /// With --jetstream: follow the writer instead of writing: apply every
    /// event it appends; stdin takes queries (`peek AXIS`, `mug`) answered
    /// on stdout from the latest state, never touching the log.
    #[arg(long, conflicts_with_all = ["take_over", "outputs_from", "jam", "state"])]
    pub follow: bool,
    /// With --jetstream: become the writer of a stream that already holds
    /// events (after applying them all); a writer it replaces is refused at
    /// its next append.
    #[arg(long)]
    pub take_over: bool,
    /// Largest input frame or line, in bytes.
    #[arg(long, default_value_t = 64 << 20)]
    pub max_frame: usize,
    /// Maximum number of formula evaluations per event (plus size charges).
    #[arg(long, default_value_t = 100_000_000)]
    pub fuel: u64,
    /// Memory budget per event in bytes.
    #[arg(long, default_value_t = spectree::noun::nock::DEFAULT_MEMORY)]
    pub memory: u64,
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Noun utilities: jam, cue, mug.
    Noun {
        /// The operation.
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
        #[arg(long, default_value_t = spectree::noun::nock::DEFAULT_MEMORY)]
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
        #[arg(long, default_value_t = spectree::noun::nock::DEFAULT_MEMORY)]
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
    /// Replay a log written by `spectree run --log DIR` or `spectree serve
    /// DIR` and print the event count and the final state's mug (equal to
    /// the writer's).
    Replay {
        /// The log's directory.
        dir: std::path::PathBuf,
        /// Threads of the replay.
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Run a node: events from stdin (noun text per line, or `--jam`
    /// frames) are logged durably in DIR, run by the kernel, and each
    /// one's output is written to stdout in log order, numbered as the log
    /// numbers them (`N ok EFFECTS` / `N error MESSAGE`). An existing log
    /// in DIR is recovered and continued; one writer per DIR.
    Serve(ServeArgs),
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
pub struct RunArgs {
    /// The workload: independent, arvo, hotspot, tiny or kv.
    #[arg(long, default_value = "arvo")]
    pub workload: String,
    /// Number of events (default: 50,000 for independent and hotspot,
    /// 100,000 for arvo, 1,000,000 for tiny, 10,000 for kv).
    #[arg(long)]
    pub events: Option<u64>,
    /// Threads of the speculative run (default: all cores).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Seed of the workload's random choices.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the figures as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<std::path::PathBuf>,
    /// Work per event in microseconds (default: the workload's).
    #[arg(long, value_name = "US")]
    pub work: Option<f64>,
    /// kv: number of keys.
    #[arg(long, default_value_t = 1000)]
    pub keys: u64,
    /// kv: keys each event reads then writes.
    #[arg(long, default_value_t = 2)]
    pub per_event: u64,
    /// kv: share of key picks that go to one hot key (0 to 1).
    #[arg(long, default_value_t = 0.0)]
    pub hot: f64,
    /// Share of events that fail on purpose (panic, error, crash, out of fuel).
    #[arg(long, default_value_t = 0.0)]
    pub faults: f64,
    /// Speculation window (default: automatic).
    #[arg(long)]
    pub window: Option<usize>,
    /// Always speculate across the whole window.
    #[arg(long)]
    pub no_adapt: bool,
    /// Skip measuring available parallelism (an extra serial pass).
    #[arg(long)]
    pub no_analysis: bool,
    /// Log the speculative run durably in directory DIR (events and
    /// snapshots; `spectree replay DIR` replays it), before comparing it
    /// with a serial run (`--no-compare`: do not). A log already in DIR,
    /// written by the same workload and parameters, is resumed: replayed,
    /// then continued with the events it does not hold yet.
    #[arg(long, value_name = "DIR")]
    pub log: Option<std::path::PathBuf>,
    /// With --log: events per durable append (one sync each).
    #[arg(long, default_value_t = 1024, requires = "log")]
    pub group: usize,
    /// With --log: take a snapshot every N events (0: only the initial one).
    #[arg(long, default_value_t = 100_000, requires = "log")]
    pub snapshot_every: u64,
    /// Print `ack N` to stdout after every N released outputs (for crash tests).
    #[arg(long, default_value_t = 0, hide = true)]
    pub ack_every: u64,
    /// Run only the speculative (logged) run, without a serial run to
    /// compare with.
    #[arg(long, alias = "skip-serial")]
    pub no_compare: bool,
}

/// `spectree noun` operations.
#[derive(Subcommand, Debug)]
pub enum NounOp {
    /// Print the jam of NOUN as lowercase 0x hex, or write its raw bytes
    /// to FILE (the form Urbit tooling exchanges).
    Jam {
        /// The noun: text, `-` (standard input) or `@FILE`.
        noun: String,
        /// Write the raw jam bytes (little-endian) here instead.
        #[arg(long, value_name = "FILE")]
        out: Option<std::path::PathBuf>,
    },
    /// Print the noun whose jam is ATOM, or whose raw jam bytes are in
    /// FILE.
    Cue {
        /// The jammed atom (decimal or 0x hex): text, `-` or `@FILE`.
        #[arg(required_unless_present = "file", conflicts_with = "file")]
        atom: Option<String>,
        /// Read raw jam bytes from FILE (`-`: standard input).
        #[arg(long, value_name = "FILE")]
        file: Option<String>,
    },
    /// Print the mug of NOUN as 0x hex.
    Mug {
        /// The noun: text, `-` (standard input) or `@FILE`.
        noun: String,
    },
}

/// Most bytes a noun argument read from standard input or a file may have.
pub const MAX_INPUT: u64 = 1 << 30;

/// Where a noun argument's text (or bytes) comes from: itself, `-` for
/// standard input (read at most once), or `@FILE`.
#[derive(Debug, Default)]
pub struct Inputs {
    stdin_taken: bool,
}

/// Why an argument's input could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// Standard input was named by two arguments.
    #[error("{what}: standard input (-) is already used by another argument")]
    StdinTwice {
        /// The argument.
        what: String,
    },
    /// Reading failed.
    #[error("{what}: cannot read {from}: {source}")]
    Read {
        /// The argument.
        what: String,
        /// `standard input` or the file.
        from: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The input is larger than [`MAX_INPUT`].
    #[error("{what}: {from} holds more than {MAX_INPUT} bytes")]
    TooLarge {
        /// The argument.
        what: String,
        /// `standard input` or the file.
        from: String,
    },
}

impl Inputs {
    /// The bytes `arg` names for the argument `what`: `-` reads standard
    /// input, `@FILE` (or, with `file`, any path) reads a file; otherwise
    /// `None` (the argument is its own text).
    pub fn bytes(
        &mut self,
        what: &str,
        arg: &str,
        file: bool,
    ) -> Result<Option<Vec<u8>>, InputError> {
        let (from, reader): (String, Box<dyn Read>) = if arg == "-" {
            if self.stdin_taken {
                return Err(InputError::StdinTwice { what: what.into() });
            }
            self.stdin_taken = true;
            ("standard input".into(), Box::new(std::io::stdin()))
        } else if let Some(path) = arg.strip_prefix('@').or(file.then_some(arg)) {
            let f = std::fs::File::open(path).map_err(|source| InputError::Read {
                what: what.into(),
                from: path.into(),
                source,
            })?;
            (path.to_string(), Box::new(f))
        } else {
            return Ok(None);
        };
        let mut bytes = Vec::new();
        reader
            .take(MAX_INPUT + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| InputError::Read {
                what: what.into(),
                from: from.clone(),
                source,
            })?;
        if bytes.len() as u64 > MAX_INPUT {
            return Err(InputError::TooLarge {
                what: what.into(),
                from,
            });
        }
        Ok(Some(bytes))
    }

    /// The text of argument `what`.
    pub fn text(&mut self, what: &str, arg: &str) -> Result<String, InputError> {
        match self.bytes(what, arg, false)? {
            None => Ok(arg.to_string()),
            Some(bytes) => String::from_utf8(bytes).map_err(|e| InputError::Read {
                what: what.into(),
                from: if arg == "-" {
                    "standard input".into()
                } else {
                    arg[1..].into()
                },
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e),
            }),
        }
    }
}
