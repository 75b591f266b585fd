//! The event log on NATS JetStream: a replicated stream per node, and
//! snapshots in a JetStream object store.
//!
//! Layout, for node `NAME`:
//! - stream `SPECTREE_NAME`, subject `spectree.NAME.log`, `R` replicas;
//!   message 1 is the header (`Spectree-Format`, `Spectree-Identity`
//!   headers); every later message is a batch of events in the embedded
//!   log's format 3 framing (count, then each event's length and sealed
//!   record), with a `Spectree-First` header giving its first event's
//!   number. Batches follow each other without gaps: a batch starts where
//!   the one before ends, and each record's seal covers the log's digest
//!   and its number, so damage, gaps and foreign records are named.
//! - object store `SPECTREE_NAME_SNAPSHOTS`: object `snapshot-KEY-N` holds
//!   the sealed `[mug state]` after the first `N` events (`KEY` the log's
//!   digest; `snapshot-KEY-0` the initial state). It is made, with
//!   snapshot 0, before the header: the header is creation's commit point.
//! - a message with a `Spectree-Fence` header and no payload holds no
//!   events: a new writer's claim ([`JetStreamLog::fence`]).
//!
//! Invariants:
//! - **One writer.** Every append is published with
//!   `Nats-Expected-Last-Sequence` set to the last message this writer
//!   knows; if anyone else appended since, the server refuses it and the
//!   writer gets [`LogError::Conflict`]: a deposed writer learns it at its
//!   next append, and never interleaves with the new one.
//! - **Acknowledged means replicated.** An append returns only after the
//!   server acknowledged every message of it (a stream with `R` replicas
//!   acknowledges once a quorum stored it). An append that fails may have
//!   left a prefix of its messages in the stream (or stored one whose
//!   acknowledgement timed out): the log then refuses appends and
//!   snapshots ([`LogError::Poisoned`]) until [`LogBackend::refresh`]
//!   reads the stream's true end, so no state is ever sealed against a log
//!   it does not match.
//! - **Nothing silent.** An unreachable server, a missing stream, a
//!   conflict, a gap, a damaged record and a snapshot whose mug does not
//!   match are each a [`LogError`] naming the server and stream.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use async_nats::jetstream::{self, object_store, stream, Context};
use futures_util::StreamExt;
use spectree::noun::{cue_bytes, jam_bytes, Noun};
use tokio::io::AsyncReadExt;

use crate::backend::LogBackend;
use crate::store::{
    frame, log_key, seal, snapshot_record, unframe, unseal, unseal_snapshot, Corruption, LogError,
    SnapshotFound, FORMAT,
};

/// Largest payload of one batch message (the server's default limit is
/// 1 MiB): larger appends are split into several messages.
const MESSAGE_BYTES: usize = 768 << 10;

const FIRST: &str = "Spectree-First";
const FORMAT_HEADER: &str = "Spectree-Format";
const IDENTITY: &str = "Spectree-Identity";
/// Marks a message that holds no events: a new writer's claim on the
/// stream (see [`JetStreamLog::fence`]).
const FENCE: &str = "Spectree-Fence";

/// Batch boundaries remembered at most (a cache of where reads start:
/// older ones are forgotten and found again by binary search).
const INDEX_ENTRIES: usize = 4096;

/// Remember that the batch starting at event `first` is message `seq`,
/// forgetting the lowest boundary past [`INDEX_ENTRIES`].
fn remember(index: &Mutex<BTreeMap<u64, u64>>, first: u64, seq: u64) {
    let mut index = index.lock().unwrap_or_else(|e| e.into_inner());
    index.insert(first, seq);
    while index.len() > INDEX_ENTRIES {
        index.pop_first();
    }
}

/// Where the log ends: its length and the stream sequence of its last
/// message.
#[derive(Debug, Clone, Copy)]
struct Tail {
    len: u64,
    last: u64,
}

/// An event log on a NATS JetStream stream (see the module docs).
pub struct JetStreamLog {
    runtime: tokio::runtime::Runtime,
    js: Context,
    stream: String,
    subject: String,
    snapshots: object_store::ObjectStore,
    path: PathBuf,
    identity: String,
    key: u64,
    tail: Mutex<Tail>,
    timeout: Duration,
    /// This writer's part of every message id (see [`publish`]).
    nonce: String,
    /// Why appends are refused until the next refresh: an append failed,
    /// perhaps part-way (an append of several messages), so this writer's
    /// idea of the log may be wrong.
    poisoned: Mutex<Option<String>>,
    /// Batch boundaries found so far: first event -> stream sequence.
    index: Mutex<BTreeMap<u64, u64>>,
}

impl std::fmt::Debug for JetStreamLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JetStreamLog")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .field("len", &self.len())
            .finish_non_exhaustive()
    }
}

/// How to reach a node's stream.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct JetStreamConfig {
    /// Server URL(s), comma-separated (`nats://127.0.0.1:4222`).
    pub url: String,
    /// The node's name: letters, digits, `-` and `_`.
    pub node: String,
    /// Replicas of the stream and the snapshot store when creating them.
    pub replicas: usize,
    /// How long a server may take to answer.
    pub timeout: Duration,
}

impl JetStreamConfig {
    /// The node `node` on the servers at `url`, three replicas.
    pub fn new(url: &str, node: &str) -> Self {
        JetStreamConfig {
            url: url.to_string(),
            node: node.to_string(),
            replicas: 3,
            timeout: Duration::from_secs(10),
        }
    }
}

fn remote(path: &Path) -> impl Fn(String) -> LogError + '_ {
    move |message| LogError::Remote {
        path: path.to_path_buf(),
        message,
    }
}

impl JetStreamLog {
    /// Open the node's stream, creating it (and its snapshot store, with
    /// `initial` as snapshot 0) for `identity` if there is none.
    ///
    /// # Errors
    /// [`LogError::Unreachable`] if no server answers;
    /// [`LogError::OtherWriter`] if the stream was made by another
    /// identity; [`LogError::NewerFormat`] / [`LogError::OlderFormat`];
    /// [`LogError::Remote`] for other server failures.
    pub fn create_or_open(
        config: &JetStreamConfig,
        identity: &str,
        initial: &Noun,
    ) -> Result<JetStreamLog, LogError> {
        Self::connect(config, Some((identity, initial)))
    }

    /// Open the node's existing stream (a follower, or a writer taking
    /// over).
    ///
    /// # Errors
    /// [`LogError::StreamMissing`] if there is none; otherwise as
    /// [`create_or_open`](Self::create_or_open).
    pub fn open(config: &JetStreamConfig) -> Result<JetStreamLog, LogError> {
        Self::connect(config, None)
    }

    fn connect(
        config: &JetStreamConfig,
        create: Option<(&str, &Noun)>,
    ) -> Result<JetStreamLog, LogError> {
        let node = &config.node;
        let path = PathBuf::from(format!("{}/{node}", config.url));
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(LogError::Remote {
                path,
                message: format!("node name {node:?} must be letters, digits, '-' and '_'"),
            });
        }
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("spectree-nats")
            .enable_all()
            .build()
            .map_err(|source| LogError::Io {
                path: path.clone(),
                source,
            })?;
        let stream = format!("SPECTREE_{node}");
        let subject = format!("spectree.{node}.log");
        let bucket = format!("SPECTREE_{node}_SNAPSHOTS");
        let at = path.clone();
        let err = remote(&at);
        let (js, snapshots, identity) = runtime.block_on(async {
            let servers = config
                .url
                .split(',')
                .map(|u| u.trim().parse::<async_nats::ServerAddr>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| LogError::Unreachable {
                    path: path.clone(),
                    message: format!("bad server address in {:?}: {e}", config.url),
                })?;
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(config.timeout)
                .request_timeout(Some(config.timeout))
                .connect(servers)
                .await
                .map_err(|e| LogError::Unreachable {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            let mut js = jetstream::new(client);
            js.set_timeout(config.timeout);
            // Reads are retried while the stream is between leaders (a
            // server was just lost): they fail with timeouts meanwhile.
            let until = tokio::time::Instant::now() + config.timeout.saturating_mul(3);
            let existing = loop {
                match js.get_stream(&stream).await {
                    Ok(s) => break Some(s),
                    Err(e) => match e.kind() {
                        jetstream::context::GetStreamErrorKind::JetStream(j)
                            if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                        {
                            break None
                        }
                        _ if pause_before_retry(until).await => {}
                        _ => return Err(err(format!("cannot read stream {stream}: {e}"))),
                    },
                }
            };
            let mut s = match (existing, create) {
                (Some(s), _) => s,
                (None, None) => return Err(LogError::StreamMissing { path: path.clone() }),
                (None, Some(_)) => js
                    .get_or_create_stream(stream::Config {
                        name: stream.clone(),
                        subjects: vec![subject.clone()],
                        num_replicas: config.replicas,
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| err(format!("cannot create stream {stream}: {e}")))?,
            };
            let empty = loop {
                match s.info().await {
                    Ok(info) => break info.state.last_sequence == 0,
                    Err(_) if pause_before_retry(until).await => {}
                    Err(e) => return Err(err(format!("cannot read stream {stream}: {e}"))),
                }
            };
            // The header is the commit point of creation: the snapshot
            // store and snapshot 0 are made first, so a creator that dies
            // half-way leaves a stream without a header, which the next
            // creator completes (and a reader calls missing).
            let identity = match (empty, create) {
                (false, _) => loop {
                    match header(&s, &path).await {
                        Err(LogError::Remote { .. }) if pause_before_retry(until).await => {}
                        other => break other?,
                    }
                },
                (true, None) => return Err(LogError::StreamMissing { path: path.clone() }),
                (true, Some((identity, initial))) => {
                    let store = match js.get_object_store(&bucket).await {
                        Ok(store) => store,
                        Err(_) => js
                            .create_object_store(object_store::Config {
                                bucket: bucket.clone(),
                                num_replicas: config.replicas,
                                ..Default::default()
                            })
                            .await
                            .map_err(|e| err(format!("cannot create {bucket}: {e}")))?,
                    };
                    let key = log_key(FORMAT, identity);
                    put_snapshot(&store, key, 0, initial, &path, config.timeout).await?;
                    let published = js
                        .send_publish(
                            subject.clone(),
                            jetstream::message::PublishMessage::build()
                                .header(FORMAT_HEADER, FORMAT.to_string().as_str())
                                .header(IDENTITY, identity)
                                .expected_last_sequence(0),
                        )
                        .await;
                    let acked = match published {
                        Ok(ack) => ack.await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    match acked {
                        Ok(()) => identity.to_string(),
                        // Someone else made it first: use theirs.
                        Err(e)
                            if e.kind()
                                == jetstream::context::PublishErrorKind::WrongLastSequence =>
                        {
                            header(&s, &path).await?
                        }
                        Err(e) => return Err(err(format!("cannot write the header: {e}"))),
                    }
                }
            };
            let snapshots = js
                .get_object_store(&bucket)
                .await
                .map_err(|e| err(format!("cannot open {bucket}: {e}")))?;
            Ok::<_, LogError>((js, snapshots, identity))
        })?;
        if let Some((wanted, _)) = create {
            if wanted != identity {
                return Err(LogError::OtherWriter {
                    path,
                    found: identity,
                    wanted: wanted.to_string(),
                });
            }
        }
        let log = JetStreamLog {
            runtime,
            js,
            stream,
            subject,
            snapshots,
            key: log_key(FORMAT, &identity),
            identity,
            path,
            tail: Mutex::new(Tail { len: 0, last: 1 }),
            timeout: config.timeout,
            nonce: writer_nonce(),
            poisoned: Mutex::new(None),
            index: Mutex::new(BTreeMap::new()),
        };
        log.catch_up()?;
        Ok(log)
    }

    fn poisoned(&self) -> Option<LogError> {
        self.poisoned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .map(|message| LogError::Poisoned {
                path: self.path.clone(),
                message,
            })
    }

    fn poison(&self, e: &LogError) {
        *self.poisoned.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
    }

    /// Claim the stream for this writer now: append a message holding no
    /// events, expecting the stream's end as last read. Any other writer's
    /// next append is then refused ([`LogError::Conflict`]); so a writer
    /// that takes over fences the one it replaces before it has anything
    /// to append.
    ///
    /// # Errors
    /// [`LogError::Conflict`] if another writer appended since this one
    /// read the stream's end; [`LogError::Remote`] if the server fails.
    pub fn fence(&self) -> Result<(), LogError> {
        if let Some(e) = self.poisoned() {
            return Err(e);
        }
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let id = format!("{}-fence-{}", self.nonce, tail.last);
        let message = || {
            jetstream::message::PublishMessage::build()
                .header(FIRST, tail.len.to_string().as_str())
                .header(FENCE, "1")
                .message_id(id.as_str())
                .expected_last_sequence(tail.last)
        };
        let sent = self.runtime.block_on(publish(
            &self.js,
            &self.subject,
            message,
            self.timeout.saturating_mul(3),
        ));
        match sent {
            Ok(ack) => {
                tail.last = ack.sequence;
                Ok(())
            }
            Err(e) => {
                let e = if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence {
                    LogError::Conflict {
                        path: self.path.clone(),
                        expected: tail.last,
                    }
                } else {
                    self.err()(format!("cannot fence the stream: {e}"))
                };
                self.poison(&e);
                Err(e)
            }
        }
    }

    fn err(&self) -> impl Fn(String) -> LogError + '_ {
        remote(&self.path)
    }

    /// The numbers of this log's snapshots at or below `limit`, ascending.
    async fn snapshot_numbers(&self, limit: u64) -> Result<Vec<u64>, LogError> {
        let mut list = self
            .snapshots
            .list()
            .await
            .map_err(|e| self.err()(format!("cannot list snapshots: {e}")))?;
        let prefix = format!("snapshot-{:016x}-", self.key);
        let mut found = Vec::new();
        while let Some(info) = list.next().await {
            let info = info.map_err(|e| self.err()(format!("cannot list snapshots: {e}")))?;
            if info.deleted {
                continue;
            }
            if let Some(n) = info
                .name
                .strip_prefix(prefix.as_str())
                .and_then(|n| n.parse::<u64>().ok())
            {
                if n <= limit {
                    found.push(n);
                }
            }
        }
        found.sort_unstable();
        Ok(found)
    }

    fn tail(&self) -> Tail {
        *self.tail.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The stream's end, read from the server (see
    /// [`LogBackend::refresh`]). A writer that refreshes takes over: its
    /// next append expects the stream's current end.
    fn catch_up(&self) -> Result<u64, LogError> {
        let tail = self.runtime.block_on(async {
            let mut s = self
                .js
                .get_stream(&self.stream)
                .await
                .map_err(|e| self.err()(format!("cannot read stream {}: {e}", self.stream)))?;
            let last = s
                .info()
                .await
                .map_err(|e| self.err()(format!("cannot read stream {}: {e}", self.stream)))?
                .state
                .last_sequence;
            if last <= 1 {
                return Ok(Tail { len: 0, last: 1 });
            }
            let known = self.tail();
            if known.last == last {
                return Ok(known);
            }
            let (first, records) = self.batch(&s, last).await?;
            Ok::<_, LogError>(Tail {
                len: first + records.len() as u64,
                last,
            })
        })?;
        *self.tail.lock().unwrap_or_else(|e| e.into_inner()) = tail;
        *self.poisoned.lock().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(tail.len)
    }

    /// The batch at stream sequence `seq`: its first event and records.
    async fn batch(
        &self,
        s: &jetstream::stream::Stream,
        seq: u64,
    ) -> Result<(u64, Vec<Vec<u8>>), LogError> {
        let m = s
            .get_raw_message(seq)
            .await
            .map_err(|e| self.err()(format!("cannot read message {seq}: {e}")))?;
        let corrupt = |why| LogError::Corrupt {
            path: self.path.clone(),
            table: "stream",
            index: seq,
            why,
        };
        let first = m
            .headers
            .get(FIRST)
            .and_then(|v| v.as_str().parse::<u64>().ok())
            .ok_or_else(|| corrupt(Corruption::Framing))?;
        if m.headers.get(FENCE).is_some() {
            if !m.payload.is_empty() {
                return Err(corrupt(Corruption::Framing));
            }
            return Ok((first, Vec::new()));
        }
        let records = unframe(&m.payload)
            .map_err(corrupt)?
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        remember(&self.index, first, seq);
        Ok((first, records))
    }

    /// The stream sequence of the batch holding event `event` (< len).
    async fn find(&self, s: &jetstream::stream::Stream, event: u64) -> Result<u64, LogError> {
        let known = self
            .index
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&event)
            .copied();
        if let Some(seq) = known {
            return Ok(seq);
        }
        // Binary search over the batches (sequence 2 holds event 0).
        let (mut lo, mut hi) = (2, self.tail().last);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            let (first, _) = self.batch(s, mid).await?;
            if first <= event {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        Ok(lo)
    }
}

/// Publish `message` (built afresh for each try) with retries while the
/// stream is between leaders or a server is unreachable (no responders,
/// timeouts), until `patience` has passed. Each message carries a
/// per-writer message id, so a try whose predecessor was stored but not
/// acknowledged is answered with the stored message's acknowledgement
/// (the server's duplicate window), never stored twice; another writer
/// never shares the id.
async fn publish(
    js: &Context,
    subject: &str,
    message: impl Fn() -> jetstream::message::PublishMessage,
    patience: Duration,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    use jetstream::context::PublishErrorKind as Kind;
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let sent = match js.send_publish(subject.to_string(), message()).await {
            Ok(ack) => ack.await,
            Err(e) => Err(e),
        };
        match sent {
            Err(e)
                if matches!(
                    e.kind(),
                    Kind::StreamNotFound | Kind::TimedOut | Kind::BrokenPipe | Kind::MaxAckPending
                ) && pause_before_retry(deadline).await => {}
            other => return other,
        }
    }
}

/// A message id unique to this writer (process, time, a counter).
fn writer_nonce() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{:x}-{now:x}-{:x}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The identity in a stream's header message.
async fn header(s: &jetstream::stream::Stream, path: &Path) -> Result<String, LogError> {
    let m = s.get_raw_message(1).await.map_err(|e| LogError::Remote {
        path: path.to_path_buf(),
        message: format!("cannot read the header: {e}"),
    })?;
    let corrupt = |why| LogError::Corrupt {
        path: path.to_path_buf(),
        table: "stream",
        index: 1,
        why,
    };
    let format = m
        .headers
        .get(FORMAT_HEADER)
        .ok_or_else(|| corrupt(Corruption::NoEntry("format")))?
        .as_str()
        .to_string();
    let format: u64 = format
        .parse()
        .map_err(|_| corrupt(Corruption::Format(format.clone())))?;
    match format.cmp(&FORMAT) {
        std::cmp::Ordering::Less => {
            return Err(LogError::OlderFormat {
                path: path.to_path_buf(),
                found: format,
            })
        }
        std::cmp::Ordering::Greater => {
            return Err(LogError::NewerFormat {
                path: path.to_path_buf(),
                found: format,
            })
        }
        std::cmp::Ordering::Equal => {}
    }
    Ok(m.headers
        .get(IDENTITY)
        .ok_or_else(|| corrupt(Corruption::NoEntry("identity")))?
        .as_str()
        .to_string())
}

/// A snapshot's object name: the log's key (so that a creator under
/// another identity that lost the race to create the stream never
/// replaces this log's snapshots) and the events it includes.
fn snapshot_name(key: u64, events: u64) -> String {
    format!("snapshot-{key:016x}-{events}")
}

async fn put_snapshot(
    store: &object_store::ObjectStore,
    key: u64,
    events: u64,
    state: &Noun,
    path: &Path,
    timeout: Duration,
) -> Result<(), LogError> {
    let sealed = seal(key, events, &jam_bytes(&snapshot_record(state)));
    let failed = |message: String| LogError::Remote {
        path: path.to_path_buf(),
        message: format!("cannot write the snapshot after {events} events: {message}"),
    };
    let name = snapshot_name(key, events);
    // Retried (a put of the same object is idempotent) while the store's
    // stream is between leaders, until three timeouts have passed.
    let deadline = tokio::time::Instant::now() + timeout.saturating_mul(3);
    loop {
        let mut data = sealed.as_slice();
        let put = tokio::time::timeout(timeout, store.put(name.as_str(), &mut data));
        let message = match put.await {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        if !pause_before_retry(deadline).await {
            return Err(failed(message));
        }
    }
}

/// Pause between two tries of a request that failed while a stream was
/// between leaders: true after [`RETRY_PAUSE`], or false at once if
/// `deadline` has passed (give up).
async fn pause_before_retry(deadline: tokio::time::Instant) -> bool {
    if tokio::time::Instant::now() >= deadline {
        return false;
    }
    tokio::time::sleep(RETRY_PAUSE).await;
    true
}

/// How long a retried request waits before its next try.
const RETRY_PAUSE: Duration = Duration::from_millis(250);

impl LogBackend for JetStreamLog {
    fn path(&self) -> &Path {
        &self.path
    }

    fn identity(&self) -> &str {
        &self.identity
    }

    fn len(&self) -> u64 {
        self.tail().len
    }

    fn refresh(&self) -> Result<u64, LogError> {
        self.catch_up()
    }

    fn append_jammed(&self, events: &[Vec<u8>]) -> Result<u64, LogError> {
        if let Some(e) = self.poisoned() {
            return Err(e);
        }
        let mut tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        let start = tail.len;
        if events.is_empty() {
            return Ok(start);
        }
        if let Some(i) = events.iter().position(|e| e.len() + 16 > MESSAGE_BYTES) {
            return Err(LogError::TooLarge {
                path: self.path.clone(),
                index: start + i as u64,
                bytes: events[i].len(),
            });
        }
        // Split into messages under the size limit.
        let mut messages: Vec<(u64, Vec<Vec<u8>>)> = Vec::new();
        let mut bytes = 0;
        for (i, e) in events.iter().enumerate() {
            let n = start + i as u64;
            let sealed = seal(self.key, n, e);
            match messages.last_mut() {
                Some((_, m)) if bytes + sealed.len() + 4 <= MESSAGE_BYTES => {
                    bytes += sealed.len() + 4;
                    m.push(sealed);
                }
                _ => {
                    bytes = 4 + sealed.len() + 4;
                    messages.push((n, vec![sealed]));
                }
            }
        }
        let path = self.path.clone();
        let appended = self.runtime.block_on(async {
            for (first, records) in messages {
                let count = records.len() as u64;
                let payload = frame(records.into_iter());
                let payload: bytes::Bytes = payload.into();
                let id = format!("{}-{first}", self.nonce);
                let message = || {
                    jetstream::message::PublishMessage::build()
                        .payload(payload.clone())
                        .header(FIRST, first.to_string().as_str())
                        .message_id(id.as_str())
                        .expected_last_sequence(tail.last)
                };
                let sent = publish(
                    &self.js,
                    &self.subject,
                    message,
                    self.timeout.saturating_mul(3),
                )
                .await;
                match sent {
                    Ok(ack) => {
                        remember(&self.index, first, ack.sequence);
                        tail.last = ack.sequence;
                        tail.len = first + count;
                    }
                    Err(e)
                        if e.kind() == jetstream::context::PublishErrorKind::WrongLastSequence =>
                    {
                        return Err(LogError::Conflict {
                            path: path.clone(),
                            expected: tail.last,
                        })
                    }
                    Err(e) => {
                        return Err(LogError::Remote {
                            path: path.clone(),
                            message: format!("cannot append events from {first}: {e}"),
                        })
                    }
                }
            }
            Ok(start)
        });
        if let Err(e) = &appended {
            // Part of the append may be in the stream (several messages),
            // or stored unacknowledged (a timeout): refuse further appends
            // until a refresh reads the stream's true end.
            self.poison(e);
        }
        appended
    }

    fn read(&self, from: u64, to: u64) -> Result<Vec<Noun>, LogError> {
        let to = to.min(self.len());
        let mut out = Vec::new();
        if from >= to {
            return Ok(out);
        }
        self.runtime.block_on(async {
            let s = self
                .js
                .get_stream(&self.stream)
                .await
                .map_err(|e| self.err()(format!("cannot read stream {}: {e}", self.stream)))?;
            let mut seq = self.find(&s, from).await?;
            let mut expected = None;
            while (from + out.len() as u64) < to {
                let (first, records) = self.batch(&s, seq).await?;
                // The first batch must hold `from`; each later one start
                // where the one before ends.
                let gap = match expected {
                    None => first > from,
                    Some(e) => first != e,
                };
                if gap {
                    return Err(LogError::Corrupt {
                        path: self.path.clone(),
                        table: "stream",
                        index: seq,
                        why: Corruption::Gap {
                            expected: expected.unwrap_or(from),
                            found: first,
                        },
                    });
                }
                expected = Some(first + records.len() as u64);
                for (j, r) in records.iter().enumerate() {
                    let i = first + j as u64;
                    if i < from || i >= to {
                        continue;
                    }
                    let corrupt = |why| LogError::Corrupt {
                        path: self.path.clone(),
                        table: "events",
                        index: i,
                        why,
                    };
                    let payload = unseal(self.key, i, r).map_err(corrupt)?;
                    out.push(cue_bytes(payload).map_err(|e| corrupt(Corruption::Undecodable(e)))?);
                }
                seq += 1;
            }
            Ok(out)
        })
    }

    fn write_snapshot(&self, events: u64, state: &Noun) -> Result<(), LogError> {
        if let Some(e) = self.poisoned() {
            return Err(e);
        }
        self.runtime.block_on(put_snapshot(
            &self.snapshots,
            self.key,
            events,
            state,
            &self.path,
            self.timeout,
        ))
    }

    fn snapshot_at_most(&self, events: u64) -> Result<SnapshotFound, LogError> {
        let limit = events.min(self.len());
        let wait = self.timeout.saturating_mul(6);
        let found = self.runtime.block_on(async {
            tokio::time::timeout(wait, async {
                // Retried while the store is between leaders (a server was
                // just lost): listing fails with timeouts meanwhile.
                let until = tokio::time::Instant::now() + self.timeout.saturating_mul(3);
                let found = loop {
                    match self.snapshot_numbers(limit).await {
                        Ok(found) => break found,
                        Err(_) if pause_before_retry(until).await => {}
                        Err(e) => return Err(e),
                    }
                };
                let mut damaged = Vec::new();
                for n in found.into_iter().rev() {
                    let corrupt = |why| LogError::Corrupt {
                        path: self.path.clone(),
                        table: "snapshots",
                        index: n,
                        why,
                    };
                    let mut bytes = Vec::new();
                    let mut object = loop {
                        match self.snapshots.get(snapshot_name(self.key, n)).await {
                            Ok(object) => break object,
                            Err(_) if pause_before_retry(until).await => {}
                            Err(e) => {
                                return Err(self.err()(format!("cannot read snapshot {n}: {e}")))
                            }
                        }
                    };
                    if let Err(e) = object.read_to_end(&mut bytes).await {
                        damaged.push(self.err()(format!("cannot read snapshot {n}: {e}")));
                        continue;
                    }
                    match unseal_snapshot(self.key, n, &bytes) {
                        Ok(state) => return Ok((Some((n, state)), damaged)),
                        Err(why) => damaged.push(corrupt(why)),
                    }
                }
                Ok((None, damaged))
            })
            .await
        });
        found.unwrap_or_else(|_| Err(self.err()("timed out reading snapshots".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_batch_index_keeps_its_newest_entries_within_its_bound() {
        let index = Mutex::new(BTreeMap::new());
        for i in 0..(INDEX_ENTRIES as u64 + 100) {
            remember(&index, i * 10, i + 2);
        }
        let index = index.into_inner().unwrap();
        assert_eq!(index.len(), INDEX_ENTRIES);
        assert_eq!(index.first_key_value(), Some((&1000, &102)));
        assert_eq!(
            index.get(&((INDEX_ENTRIES as u64 + 99) * 10)),
            Some(&(INDEX_ENTRIES as u64 + 101))
        );
    }
}
