//! `spectree serve`: a [`Node`] on standard input and output.
//!
//! Events come in on stdin, as noun text one per line, or (`--jam`) as
//! frames: an 8-byte little-endian length, then that many bytes of a
//! jammed noun. Each event's output goes to stdout in log order, in the
//! same format, once its event is durable:
//! - text: `N ok EFFECTS` or `N error MESSAGE` (`N` the event's number in
//!   the log, from 0); outputs recomputed by `--outputs-from` read
//!   `N replayed ok ...` / `N replayed error ...`;
//! - jam: a frame of `[N replayed result]`, `replayed` 0 or 1, `result`
//!   `[0 effects]` or `[1 message]` (the message as a cord).
//!
//! Once recovered (and after any replayed outputs), `serve` writes
//! `spectree serve: ready; the next event is number N` to stderr: a client
//! that restarts a killed node resends its events from its `N`th.
//!
//! Invariants:
//! - an output is written only after its event is durable, so an event
//!   whose output a client saw survives any kill;
//! - bad input never reaches the log: a line that does not parse, or a
//!   frame that does not cue, or a line longer than `--max-frame`, is
//!   reported on stderr (with its line or frame number) and skipped, and
//!   the node keeps running; input after which the stream cannot be
//!   resynchronised (a frame header over `--max-frame`, a truncated frame)
//!   stops reading: everything before it is logged, run and written, the
//!   node closes cleanly, and the command fails with the message;
//! - reading and parsing happen on their own thread, bounded by a queue
//!   of [`QUEUE`] events and [`QUEUE_BYTES`] bytes of input, and each
//!   durable append takes at most `--group` events and [`GROUP_BYTES`]
//!   bytes, so memory does not grow with the input's rate or frame sizes.

use std::io::{BufRead, Read, Write};
use std::sync::mpsc::{sync_channel, Receiver, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};

use spectree::noun::{cue_bytes, jam_bytes, parse, to_text_within, Atom, Noun};
use spectree::{Committed, NounState, Outcome};
use spectree_log::{Node, NodeError};
use thiserror::Error;

/// Events parsed ahead of the node (or follower queries), at most.
pub const QUEUE: usize = 4096;

/// Longest follower query line, in bytes.
pub const QUERY_BYTES: usize = 4096;

/// Bytes of input (lines or frames) parsed ahead of the node and not yet
/// served, at most (one event larger than this still passes, alone).
pub const QUEUE_BYTES: usize = 256 << 20;

/// Bytes of input per durable append, at most (a group is also cut at
/// `--group` events).
pub const GROUP_BYTES: usize = 64 << 20;

/// The bytes of input waiting for the node: the reader takes before it
/// queues an event, the node gives back once the event is served.
struct Budget {
    cap: usize,
    used: Mutex<usize>,
    freed: Condvar,
}

impl Budget {
    fn new(cap: usize) -> Self {
        Budget {
            cap,
            used: Mutex::new(0),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, usize> {
        self.used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Wait until `n` more bytes fit (or nothing is waiting).
    fn take(&self, n: usize) {
        let mut used = self.lock();
        while *used > 0 && used.saturating_add(n) > self.cap {
            used = self.freed.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += n;
    }

    fn give(&self, n: usize) {
        let mut used = self.lock();
        *used = used.saturating_sub(n);
        self.freed.notify_all();
    }
}

/// What the reader hands the node.
enum Input {
    /// An event and the bytes of input it came from.
    Event(Noun, usize),
    /// Unusable input that was skipped (the message says where).
    Skipped(String),
    /// Input after which reading cannot go on.
    Stop(String),
}

/// Why `serve` stopped.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ServeError {
    /// The node failed (opening, logging, recovering).
    #[error(transparent)]
    Node(#[from] NodeError),
    /// Writing outputs failed (everything logged stays logged).
    #[error("cannot write outputs: {0}")]
    Output(#[source] std::io::Error),
    /// Reading stopped at input that cannot be resynchronised; everything
    /// before it was logged and run.
    #[error("input stopped: {0}")]
    Input(String),
    /// A follower could not start or catch up.
    #[error(transparent)]
    Logged(#[from] spectree_log::LoggedError),
    /// The follower's processor could not be built.
    #[error("cannot build the processor: {0}")]
    Build(#[from] spectree::BuildError),
    /// The reader thread could not start.
    #[error("cannot start the input reader: {0}")]
    Thread(#[source] std::io::Error),
}

/// The format of events in and outputs out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Noun text, one per line.
    Text,
    /// Length-prefixed jam frames.
    Jam,
}

/// Read events from `input` on a thread of their own.
fn spawn_reader(
    input: Box<dyn Read + Send>,
    format: Format,
    max_frame: usize,
    budget: Arc<Budget>,
) -> std::io::Result<Receiver<Input>> {
    let (tx, rx) = sync_channel(QUEUE);
    std::thread::Builder::new()
        .name("spectree-serve-input".into())
        .spawn(move || {
            let mut input = std::io::BufReader::with_capacity(1 << 16, input);
            let send = |i: Input| {
                if let Input::Event(_, n) = &i {
                    budget.take(*n);
                }
                tx.send(i).is_ok()
            };
            match format {
                Format::Text => read_lines(&mut input, max_frame, send),
                Format::Jam => read_frames(&mut input, max_frame, send),
            }
        })?;
    Ok(rx)
}

/// What [`next_line`] found.
#[derive(Debug, PartialEq, Eq)]
enum Line {
    /// A line (in the buffer, with its newline if it had one).
    Read,
    /// A line longer than the bound, skipped to its end.
    TooLong,
    /// The end of the input.
    End,
}

/// Read the next line into `line`, holding at most `max + 1` bytes of it:
/// a longer line is read past in 64 KiB pieces and reported.
fn next_line(input: &mut impl BufRead, max: usize, line: &mut Vec<u8>) -> std::io::Result<Line> {
    line.clear();
    if input
        .by_ref()
        .take(max as u64 + 1)
        .read_until(b'\n', line)?
        == 0
    {
        return Ok(Line::End);
    }
    if line.len() <= max || line.last() == Some(&b'\n') {
        return Ok(Line::Read);
    }
    loop {
        line.clear();
        let n = input.by_ref().take(1 << 16).read_until(b'\n', line)?;
        if n == 0 || line.last() == Some(&b'\n') {
            line.clear();
            return Ok(Line::TooLong);
        }
    }
}

fn read_lines(input: &mut impl BufRead, max: usize, send: impl Fn(Input) -> bool) {
    let mut line = Vec::new();
    for number in 1u64.. {
        let message = match next_line(input, max, &mut line) {
            Ok(Line::End) => return,
            Ok(Line::TooLong) => Some(format!(
                "line {number} is longer than {max} bytes (--max-frame); skipped"
            )),
            Ok(Line::Read) => match std::str::from_utf8(&line) {
                Err(_) => Some(format!("line {number} is not UTF-8; skipped")),
                Ok(text) if text.trim().is_empty() => None,
                Ok(text) => match parse(text.trim()) {
                    Ok(noun) => {
                        if !send(Input::Event(noun, line.len())) {
                            return;
                        }
                        None
                    }
                    Err(e) => Some(format!("line {number} does not parse: {e}; skipped")),
                },
            },
            Err(e) => {
                send(Input::Stop(format!("cannot read standard input: {e}")));
                return;
            }
        };
        if let Some(m) = message {
            if !send(Input::Skipped(m)) {
                return;
            }
        }
    }
}

/// Read until `buf` is full or the input ends; the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

fn read_frames(input: &mut impl Read, max: usize, send: impl Fn(Input) -> bool) {
    for number in 1u64.. {
        let mut header = [0u8; 8];
        let stop = |m: String| {
            send(Input::Stop(m));
        };
        match read_full(input, &mut header) {
            Ok(0) => return,
            Ok(8) => {}
            Ok(n) => return stop(format!("frame {number}: truncated header ({n} of 8 bytes)")),
            Err(e) => return stop(format!("cannot read standard input: {e}")),
        }
        let len = u64::from_le_bytes(header);
        if len > max as u64 {
            return stop(format!(
                "frame {number} claims {len} bytes, more than --max-frame ({max})"
            ));
        }
        let mut body = vec![0u8; len as usize];
        match read_full(input, &mut body) {
            Ok(n) if n == body.len() => {}
            Ok(n) => return stop(format!("frame {number}: truncated ({n} of {len} bytes)")),
            Err(e) => return stop(format!("cannot read standard input: {e}")),
        }
        let sent = match cue_bytes(&body) {
            Ok(noun) => send(Input::Event(noun, body.len())),
            Err(e) => send(Input::Skipped(format!(
                "frame {number} does not cue: {e}; skipped"
            ))),
        };
        if !sent {
            return;
        }
    }
}

/// Largest output text written for one event (larger effects print a
/// marker; use `--jam`).
const MAX_OUTPUT_TEXT: usize = 16 << 20;

fn cord(text: &str) -> Noun {
    Noun::Atom(Atom::from_bytes_le(text.as_bytes()))
}

/// Write one output in `format`.
fn write_output(
    out: &mut dyn Write,
    format: Format,
    index: u64,
    replayed: bool,
    outcome: &Outcome,
) -> std::io::Result<()> {
    match format {
        Format::Text => {
            let mark = if replayed { " replayed" } else { "" };
            match outcome {
                Ok(effects) => match to_text_within(effects, MAX_OUTPUT_TEXT) {
                    Some(text) => writeln!(out, "{index}{mark} ok {text}"),
                    None => writeln!(
                        out,
                        "{index}{mark} ok (effects too large as text; use --jam)"
                    ),
                },
                Err(e) => {
                    let message = e.to_string().replace('\n', " ");
                    writeln!(out, "{index}{mark} error {message}")
                }
            }
        }
        Format::Jam => {
            let result = match outcome {
                Ok(effects) => Noun::cell(Noun::ZERO, effects.clone()),
                Err(e) => Noun::cell(Noun::atom(1), cord(&e.to_string())),
            };
            let record = Noun::cell(
                Noun::atom(index),
                Noun::cell(Noun::atom(u64::from(replayed)), result),
            );
            let bytes = jam_bytes(&record);
            out.write_all(&(bytes.len() as u64).to_le_bytes())?;
            out.write_all(&bytes)
        }
    }
}

/// How `serve` runs besides its node.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Format of events and outputs.
    pub format: Format,
    /// Most events per durable append.
    pub group: usize,
    /// Largest frame (jam) or line (text) accepted, in bytes.
    pub max_frame: usize,
    /// Recompute and write the outputs of logged events from this number
    /// on (marked replayed) before taking new events.
    pub outputs_from: Option<u64>,
}

/// Serve `node`: events from `input`, outputs to `out`, until the input
/// ends; then close the node (a final snapshot). Messages about skipped
/// input go to `messages`.
///
/// # Errors
/// [`ServeError`]: the node's failures, an output failure, or input that
/// stopped reading (after everything before it was served and the node
/// closed).
pub fn serve(
    mut node: Node,
    input: Box<dyn Read + Send>,
    out: &mut dyn Write,
    messages: &mut dyn Write,
    options: &ServeOptions,
) -> Result<(), ServeError> {
    let format = options.format;
    if let Some(from) = options.outputs_from {
        let mut failed = None;
        node.replay_outputs(from, |c: Committed<NounState>| {
            if failed.is_none() {
                failed = write_output(out, format, c.index, true, &c.outcome).err();
            }
        })?;
        if let Some(e) = failed {
            return Err(ServeError::Output(e));
        }
        out.flush().map_err(ServeError::Output)?;
    }
    // Clients learn where the log stands (the next event's number) once
    // every replayed output is written.
    let _ = writeln!(
        messages,
        "spectree serve: ready; the next event is number {}",
        node.events()
    );
    let _ = messages.flush();
    let budget = Arc::new(Budget::new(QUEUE_BYTES));
    let inputs = spawn_reader(input, format, options.max_frame, budget.clone())
        .map_err(ServeError::Thread)?;
    let group = options.group.max(1);
    let mut stopped = None;
    let mut ended = false;
    while stopped.is_none() && !ended {
        // Block for the first event, then take what is ready, up to a
        // group.
        let mut batch = Vec::new();
        let mut bytes = 0usize;
        let mut next = inputs.recv().ok();
        loop {
            match next {
                None => {
                    ended = true;
                    break;
                }
                Some(Input::Event(e, n)) => {
                    batch.push(e);
                    bytes += n;
                }
                Some(Input::Skipped(m)) => {
                    let _ = writeln!(messages, "spectree serve: {m}");
                }
                Some(Input::Stop(m)) => {
                    stopped = Some(m);
                    break;
                }
            }
            if batch.len() >= group || bytes >= GROUP_BYTES {
                break;
            }
            next = match inputs.try_recv() {
                Ok(i) => Some(i),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => None,
            };
        }
        if !batch.is_empty() {
            let mut failed = None;
            node.submit(batch, |c| {
                if failed.is_none() {
                    failed = write_output(out, format, c.index, false, &c.outcome).err();
                }
            })?;
            budget.give(bytes);
            if let Some(e) = failed.or_else(|| out.flush().err()) {
                return Err(ServeError::Output(e));
            }
            if let Some(e) = node.take_snapshot_failure() {
                let _ = writeln!(
                    messages,
                    "spectree serve: warning: {e}; the events are logged, and recovery replays them from an older snapshot"
                );
            }
        }
    }
    node.close()?;
    match stopped {
        Some(m) => Err(ServeError::Input(m)),
        None => Ok(()),
    }
}

/// Follow the writer of `log`: apply every event it appends (polling the
/// stream), and answer queries from stdin on `out` from the latest state:
/// `peek AXIS` (the subtree at AXIS, or `peek AXIS error ...`) and `mug`,
/// each answered as `N peek AXIS NOUN` / `N mug 0xMUG`, `N` the events
/// applied. Ends when stdin ends. Never writes to the log.
///
/// # Errors
/// [`NodeError::OtherKernel`] if the stream was written by another
/// kernel; the log's and processor's failures, or an output failure.
pub fn follow(
    log: &dyn spectree_log::LogBackend,
    kernel: Noun,
    regions: spectree::stm::RegionMap,
    config: spectree_log::NodeConfig,
    out: &mut dyn Write,
) -> Result<(), ServeError> {
    use spectree::Event;
    let identity = spectree_log::kernel_identity(&kernel);
    if log.identity() != identity {
        return Err(NodeError::OtherKernel {
            path: log.path().to_path_buf(),
            log: log.identity().to_string(),
            kernel: identity,
        }
        .into());
    }
    let processor = spectree::Processor::<NounState>::builder(regions)
        .config(config.processor.clone())
        .kernel(kernel)
        .build()?;
    let decode = |n: &Noun| Ok::<_, std::convert::Infallible>(Event::nock(n.clone()));
    let mut follower = spectree_log::Follower::start(&processor, log, decode)?;
    let _ = writeln!(
        std::io::stderr(),
        "spectree serve: following {}; applied {} events",
        log.path().display(),
        follower.applied()
    );
    // Queries are short: a line past QUERY_BYTES is answered as unknown.
    let (tx, queries) = sync_channel::<String>(QUEUE);
    std::thread::Builder::new()
        .name("spectree-follow-queries".into())
        .spawn(move || {
            let mut input = std::io::stdin().lock();
            let mut line = Vec::new();
            loop {
                let query = match next_line(&mut input, QUERY_BYTES, &mut line) {
                    Ok(Line::Read) => String::from_utf8_lossy(&line).into_owned(),
                    Ok(Line::TooLong) => "(a query too long)".to_string(),
                    Ok(Line::End) | Err(_) => return,
                };
                if tx.send(query).is_err() {
                    return;
                }
            }
        })
        .map_err(ServeError::Thread)?;
    // A read that fails while the stream is between leaders (a server
    // died) is retried for up to 30 s before the follower gives up.
    let mut failing_since: Option<std::time::Instant> = None;
    loop {
        match follower.catch_up(&processor, log, decode) {
            Ok(_) => failing_since = None,
            Err(spectree_log::LoggedError::Log(e @ spectree_log::LogError::Remote { .. })) => {
                let since = *failing_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() > std::time::Duration::from_secs(30) {
                    return Err(spectree_log::LoggedError::Log(e).into());
                }
                let _ = writeln!(std::io::stderr(), "spectree serve: retrying: {e}");
                std::thread::sleep(std::time::Duration::from_millis(250));
                continue;
            }
            Err(e) => return Err(e.into()),
        }
        let query = match queries.recv_timeout(std::time::Duration::from_millis(50)) {
            Ok(q) => q,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        // Answer from what the loop caught up with, at most 50 ms ago.
        let n = follower.applied();
        let state = &follower.state().0;
        let words: Vec<&str> = query.split_whitespace().collect();
        let written = match words.as_slice() {
            [] => continue,
            ["mug"] => writeln!(out, "{n} mug {:#x}", state.mug()),
            ["peek", axis] => {
                let answer = axis
                    .parse::<u64>()
                    .ok()
                    .and_then(spectree::noun::Axis::new)
                    .ok_or_else(|| format!("{axis:?} is not an axis (1, 2, 3, ...)"))
                    .and_then(|a| {
                        spectree::noun::slot(&a, state)
                            .map_err(|e| e.to_string())
                            .and_then(|noun| {
                                to_text_within(noun, MAX_OUTPUT_TEXT)
                                    .ok_or_else(|| "too large as text".to_string())
                            })
                    });
                match answer {
                    Ok(text) => writeln!(out, "{n} peek {axis} {text}"),
                    Err(e) => writeln!(out, "{n} peek {axis} error {e}"),
                }
            }
            _ => writeln!(out, "{n} error unknown query {query:?} (peek AXIS, mug)"),
        };
        written
            .and_then(|()| out.flush())
            .map_err(ServeError::Output)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_past_the_bound_are_skipped_whole() {
        let long = "x".repeat(100);
        let text = format!("ab\n{long}\ncd");
        let mut input = std::io::BufReader::new(text.as_bytes());
        let mut line = Vec::new();
        assert_eq!(next_line(&mut input, 10, &mut line).unwrap(), Line::Read);
        assert_eq!(line, b"ab\n");
        assert_eq!(next_line(&mut input, 10, &mut line).unwrap(), Line::TooLong);
        assert!(line.is_empty(), "nothing of the long line is kept");
        assert_eq!(next_line(&mut input, 10, &mut line).unwrap(), Line::Read);
        assert_eq!(line, b"cd");
        assert_eq!(next_line(&mut input, 10, &mut line).unwrap(), Line::End);
    }

    #[test]
    fn the_byte_budget_holds_the_reader_until_bytes_are_given_back() {
        let budget = Arc::new(Budget::new(100));
        budget.take(60);
        let (tx, rx) = std::sync::mpsc::channel();
        let waiting = {
            let budget = budget.clone();
            std::thread::spawn(move || {
                budget.take(60);
                tx.send(()).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err(),
            "60 + 60 bytes passed a budget of 100"
        );
        budget.give(60);
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("freed bytes let it through");
        waiting.join().unwrap();
        // One event larger than the whole budget passes when nothing waits.
        let alone = Budget::new(100);
        alone.take(1000);
        assert_eq!(*alone.lock(), 1000);
    }
}
