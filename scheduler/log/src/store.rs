//! The durable event log: events (jammed), numbered in log order, and
//! snapshots of the state, in a redb database (`DIR/events.redb`).
//!
//! Invariants:
//! - **Nothing acknowledged is lost.** [`EventLog::append`] returns only
//!   after its one write transaction is durable (redb commits with an
//!   fsync); callers release outcomes only for appended events. A batch is
//!   one transaction, so a crash keeps all of it or none of it (group
//!   commit: one sync per batch).
//! - **A log is whole from its first instant.** [`EventLog::create`] builds
//!   the file under a temporary name (its header and its initial snapshot,
//!   synced) and links it into place (a link never replaces an existing
//!   file): a crash leaves either no log or a valid empty one.
//! - **Nothing is written before every refusal.** Creating refuses an
//!   existing log, and opening checks the format, the header's digest and
//!   the numbering, before anything is written; a reader
//!   ([`EventLog::open_read_only`]) never writes the file at all: redb's
//!   own bookkeeping goes to memory.
//! - **Nothing is silently skipped or misread.** The header records the
//!   format version and the writer's identity (the workload or kernel),
//!   sealed by a digest; every record carries a checksum of that digest,
//!   its number and its bytes. A damaged record, a gap in the numbering,
//!   a record that does not decode, or a header that does not match the
//!   records is an error naming the file, the table and the record. A
//!   damaged snapshot is reported and the next older one used (the log
//!   still holds every event after it).
//! - **One writer.** Writers hold an exclusive lock on `DIR/LOCK`, readers
//!   a shared one (made if missing, where the directory allows); a second
//!   writer, or a reader beside a writer, is refused. Appends within one
//!   process are serialised.
//! - **The store's panics are errors.** redb asserts on some damaged files;
//!   every store call (and dropping the store) is contained, silently, and
//!   reported as [`LogError::Damaged`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableTable, TableDefinition};
use spectree::noun::{cue_bytes, jam_bytes, CueError, Noun};
use spectree::stm::contain::contain;
use thiserror::Error;

use crate::overlay::ReadOnlyFile;

/// The on-disk format this version writes and reads.
///
/// - 1: no version, no identity or digest (written before the format was
///   versioned); refused with [`LogError::OlderFormat`].
/// - 2: a header (format, identity, digest) and records sealed with it,
///   one store record per event; refused with [`LogError::OlderFormat`].
/// - 3: as 2, but each append is one store record (a *batch*: its events'
///   sealed records, framed), keyed by the number of its first event.
pub const FORMAT: u64 = 3;

/// The file inside a log's directory.
pub const FILE: &str = "events.redb";
const LOCK: &str = "LOCK";
const CREATING: &str = "events.redb.creating";

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");
/// A node's kernel (key 0), sealed like a record.
const KERNEL: TableDefinition<u64, &[u8]> = TableDefinition::new("kernel");

/// The identity of a log written by a node running `kernel`: names the
/// kernel's mug, so a log is never continued by another kernel.
pub fn kernel_identity(kernel: &Noun) -> String {
    format!("kernel {:#010x}", kernel.mug())
}

/// What is wrong with one record.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum Corruption {
    /// The record's checksum does not match its bytes, its number or the
    /// log's header.
    #[error("checksum mismatch (damaged, or not written under this log's header)")]
    Checksum,
    /// Shorter than its checksum.
    #[error("{len} bytes, shorter than its checksum")]
    Short {
        /// Its length.
        len: usize,
    },
    /// The bytes are not a jammed noun.
    #[error("does not decode: {0}")]
    Undecodable(CueError),
    /// No record where one must be.
    #[error("missing")]
    Missing,
    /// The numbering has a gap: a batch starts elsewhere than where the
    /// one before it ends.
    #[error("a batch starts at event {found}, where event {expected} was due")]
    Gap {
        /// The number the batch should start at.
        expected: u64,
        /// The number it starts at.
        found: u64,
    },
    /// A batch's framing (its count or a record's length) is damaged.
    #[error("the batch's framing is damaged")]
    Framing,
    /// A snapshot record is not `[mug state]`.
    #[error("not a [mug state] cell")]
    NotASnapshot,
    /// A snapshot's mug does not match its state.
    #[error("its mug does not match its state")]
    MugMismatch,
    /// The header lacks an entry.
    #[error("the header has no {0:?} entry")]
    NoEntry(&'static str),
    /// The header's digest does not cover its entries.
    #[error("the header's digest does not match its entries")]
    Digest,
    /// The header's format entry is not a number.
    #[error("the format entry {0:?} is not a number")]
    Format(String),
}

/// Why the log cannot be used.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LogError {
    /// A file operation failed.
    #[error("event log {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system reported.
        #[source]
        source: std::io::Error,
    },
    /// The store failed (or the file is not a redb database).
    #[error("event log {path}: the store failed: {source}")]
    Store {
        /// The log's file.
        path: PathBuf,
        /// What the store reported.
        #[source]
        source: Box<redb::Error>,
    },
    /// The store failed on a damaged file (it panicked; contained).
    #[error("event log {path}: the file is damaged (the store failed: {message})")]
    Damaged {
        /// The log's file.
        path: PathBuf,
        /// The store's message.
        message: String,
    },
    /// No log there.
    #[error("{path} holds no event log")]
    Missing {
        /// The directory.
        path: PathBuf,
    },
    /// A log is there already.
    #[error("{path} already holds an event log; replay it, or choose another directory")]
    Exists {
        /// The directory.
        path: PathBuf,
    },
    /// Another process has the log open for writing (or, for a writer,
    /// open at all).
    #[error("event log {path} is in use by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// The log was written by an older format.
    #[error("event log {path} was written by an older format ({found}); this version reads format {FORMAT}")]
    OlderFormat {
        /// The log's file.
        path: PathBuf,
        /// Its format.
        found: u64,
    },
    /// The log was written by a newer format.
    #[error("event log {path} was written by a newer format ({found}); this version reads format {FORMAT}")]
    NewerFormat {
        /// The log's file.
        path: PathBuf,
        /// Its format.
        found: u64,
    },
    /// An event too large for the log's framing (4 GiB jammed, or 2^32
    /// events in one append).
    #[error("event log {path}: event {index} is too large to log ({bytes} bytes jammed)")]
    TooLarge {
        /// The log's file.
        path: PathBuf,
        /// The event's number.
        index: u64,
        /// Its jammed size.
        bytes: usize,
    },
    /// No server of a remote log answers.
    #[error("event log {path}: no server answers: {message}")]
    Unreachable {
        /// The servers and stream.
        path: PathBuf,
        /// What the client reported.
        message: String,
    },
    /// A remote log's server failed or refused a request.
    #[error("event log {path}: {message}")]
    Remote {
        /// The servers and stream.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The remote log's stream does not exist.
    #[error("event log {path}: the stream does not exist")]
    StreamMissing {
        /// The servers and stream.
        path: PathBuf,
    },
    /// Another writer appended to the log since this one last did (or
    /// since it opened it): this writer is deposed.
    #[error("event log {path}: another writer has appended since this writer's last message (sequence {expected}); this writer is deposed")]
    Conflict {
        /// The servers and stream.
        path: PathBuf,
        /// The stream sequence this writer expected to be last.
        expected: u64,
    },
    /// An earlier append failed, perhaps part-way: appends and snapshots
    /// are refused until the log is refreshed (and whoever keeps a state
    /// recovers it from the log).
    #[error("event log {path}: an earlier append failed ({message}); refresh the log and recover the state before appending again")]
    Poisoned {
        /// The log.
        path: PathBuf,
        /// The failure.
        message: String,
    },
    /// The log was written by another writer identity.
    #[error("event log {path} was written by {found:?}, not {wanted:?}")]
    OtherWriter {
        /// The log.
        path: PathBuf,
        /// Its identity.
        found: String,
        /// The identity asked for.
        wanted: String,
    },
    /// A record (or the header) is damaged.
    #[error("event log {path}: {table} record {index} is corrupt: {why}")]
    Corrupt {
        /// The log's file.
        path: PathBuf,
        /// `events`, `snapshots` or `meta`.
        table: &'static str,
        /// The event number (for snapshots: the events it includes; 0 for
        /// the header).
        index: u64,
        /// What is wrong.
        why: Corruption,
    },
}

/// FNV-1a, 64 bits, over a record's log key, number and bytes: detects
/// flipped bits, truncation, a record found under the wrong number, and a
/// record that was not written under this log's header.
pub(crate) fn checksum(key: u64, index: u64, bytes: &[u8]) -> u64 {
    key.to_le_bytes()
        .iter()
        .chain(&index.to_le_bytes())
        .chain(bytes)
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

/// The key of a log: a digest of its header entries.
pub(crate) fn log_key(format: u64, identity: &str) -> u64 {
    checksum(0x5eed, format, identity.as_bytes())
}

pub(crate) fn seal(key: u64, index: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&checksum(key, index, payload).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

/// A batch as stored: its record count, then each record's length and
/// bytes (lengths and count as little-endian `u32`).
pub(crate) fn frame(records: impl ExactSizeIterator<Item = Vec<u8>>) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(records.len() as u32).to_le_bytes());
    for r in records {
        out.extend_from_slice(&(r.len() as u32).to_le_bytes());
        out.extend_from_slice(&r);
    }
    out
}

/// The records of a stored batch, or [`Corruption::Framing`] if its count
/// and lengths do not exactly cover its bytes.
pub(crate) fn unframe(bytes: &[u8]) -> Result<Vec<&[u8]>, Corruption> {
    fn word(bytes: &[u8]) -> Option<(usize, &[u8])> {
        let (w, rest) = bytes.split_first_chunk::<4>()?;
        Some((u32::from_le_bytes(*w) as usize, rest))
    }
    let (count, mut rest) = word(bytes).ok_or(Corruption::Framing)?;
    // Each record takes at least its length word: a damaged count cannot
    // make this allocate more than the batch's size.
    if count > rest.len() / 4 || count == 0 {
        return Err(Corruption::Framing);
    }
    let mut records = Vec::with_capacity(count);
    for _ in 0..count {
        let (len, after) = word(rest).ok_or(Corruption::Framing)?;
        if len > after.len() {
            return Err(Corruption::Framing);
        }
        let (record, after) = after.split_at(len);
        records.push(record);
        rest = after;
    }
    if !rest.is_empty() {
        return Err(Corruption::Framing);
    }
    Ok(records)
}

pub(crate) fn unseal(key: u64, index: u64, record: &[u8]) -> Result<&[u8], Corruption> {
    if record.len() < 8 {
        return Err(Corruption::Short { len: record.len() });
    }
    let (sum, payload) = record.split_at(8);
    let want = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
    if checksum(key, index, payload) != want {
        return Err(Corruption::Checksum);
    }
    Ok(payload)
}

/// The newest intact snapshot (events included, state), if any, and the
/// damaged ones skipped on the way, newest first.
pub type SnapshotFound = (Option<(u64, Noun)>, Vec<LogError>);

/// The store, dropped inside [`contain`]: redb can panic while closing a
/// damaged file.
struct Store(Option<Database>);

impl Drop for Store {
    fn drop(&mut self) {
        if let Some(db) = self.0.take() {
            let _ = contain(move || drop(db));
        }
    }
}

/// [`LogError::Missing`] unless `dir` holds a log file.
fn require_log(dir: &Path) -> Result<(), LogError> {
    if dir.join(FILE).exists() {
        Ok(())
    } else {
        Err(LogError::Missing {
            path: dir.to_path_buf(),
        })
    }
}

/// A lock on `DIR/LOCK`, held as long as the log is open.
#[derive(Debug)]
struct DirLock(#[allow(dead_code)] Option<File>);

fn lock_dir(dir: &Path, exclusive: bool) -> Result<DirLock, LogError> {
    let path = dir.join(LOCK);
    let file = if exclusive {
        File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
    } else {
        // Readers lock too, creating the lock file if they may; only where
        // they cannot (a read-only directory) do they go without.
        match File::open(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                match File::options()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                {
                    Ok(f) => Ok(f),
                    Err(_) => return Ok(DirLock(None)),
                }
            }
            other => other,
        }
    };
    let file = file.map_err(|source| LogError::Io {
        path: path.clone(),
        source,
    })?;
    let locked = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match locked {
        Ok(()) => Ok(DirLock(Some(file))),
        Err(std::fs::TryLockError::WouldBlock) => Err(LogError::Locked { path }),
        Err(std::fs::TryLockError::Error(source)) => Err(LogError::Io { path, source }),
    }
}

/// A durable, numbered log of events with snapshots. Shareable between
/// threads: appends and snapshot writes are serialised by the store.
pub struct EventLog {
    db: Store,
    /// Held while appending, so that numbering and inserting are one step.
    appending: std::sync::Mutex<()>,
    path: PathBuf,
    key: u64,
    identity: String,
    len: AtomicU64,
    recovered: bool,
    read_only: bool,
    _lock: DirLock,
}

impl std::fmt::Debug for EventLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .field("len", &self.len())
            .field("read_only", &self.read_only)
            .finish()
    }
}

/// Run `f`, turning a panic inside the store into [`LogError::Damaged`].
fn contained<T>(path: &Path, f: impl FnOnce() -> Result<T, LogError>) -> Result<T, LogError> {
    contain(f).unwrap_or_else(|message| {
        Err(LogError::Damaged {
            path: path.to_path_buf(),
            message,
        })
    })
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn store_error(path: &Path) -> impl Fn(redb::Error) -> LogError + '_ {
    move |e| LogError::Store {
        path: path.to_path_buf(),
        source: Box::new(e),
    }
}

impl EventLog {
    /// Create a log in `dir` (made if missing) for the writer `identity`
    /// (the workload or kernel; checked by whoever opens it), whose state
    /// starts as `initial`. Atomic: a crash leaves no log or this one.
    ///
    /// # Errors
    /// [`LogError::Exists`] if `dir` holds a log (nothing is written);
    /// [`LogError::Locked`] if another process holds it; I/O and store
    /// errors otherwise.
    pub fn create(dir: &Path, identity: &str, initial: &Noun) -> Result<EventLog, LogError> {
        Self::create_with(dir, identity, initial, None)
    }

    /// [`create`](Self::create) a log for a node running `kernel`: its
    /// identity is [`kernel_identity`], and the kernel itself is kept in
    /// the log (see [`kernel`](Self::kernel)), so that the log can be
    /// replayed from itself alone.
    ///
    /// # Errors
    /// As [`create`](Self::create).
    pub fn create_for_kernel(
        dir: &Path,
        kernel: &Noun,
        initial: &Noun,
    ) -> Result<EventLog, LogError> {
        Self::create_with(dir, &kernel_identity(kernel), initial, Some(kernel))
    }

    fn create_with(
        dir: &Path,
        identity: &str,
        initial: &Noun,
        kernel: Option<&Noun>,
    ) -> Result<EventLog, LogError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock = lock_dir(dir, true)?;
        let file = dir.join(FILE);
        if file.exists() {
            return Err(LogError::Exists {
                path: dir.to_path_buf(),
            });
        }
        let tmp = dir.join(CREATING);
        match std::fs::remove_file(&tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(io(&tmp)(e)),
            _ => {}
        }
        let key = log_key(FORMAT, identity);
        let snapshot = seal(key, 0, &jam_bytes(&snapshot_record(initial)));
        contained(&tmp, || {
            let err = store_error(&tmp);
            let db = Store(Some(
                Database::builder()
                    .create(&tmp)
                    .map_err(|e| err(e.into()))?,
            ));
            let txn = db.get().begin_write().map_err(|e| err(e.into()))?;
            {
                let mut meta = txn.open_table(META).map_err(|e| err(e.into()))?;
                let format = FORMAT.to_string();
                let digest = format!("{key:016x}");
                for (k, v) in [
                    ("format", format.as_str()),
                    ("identity", identity),
                    ("digest", digest.as_str()),
                ] {
                    meta.insert(k, v).map_err(|e| err(e.into()))?;
                }
                txn.open_table(EVENTS).map_err(|e| err(e.into()))?;
                let mut snaps = txn.open_table(SNAPSHOTS).map_err(|e| err(e.into()))?;
                snaps
                    .insert(0, snapshot.as_slice())
                    .map_err(|e| err(e.into()))?;
                if let Some(kernel) = kernel {
                    let sealed = seal(key, 0, &jam_bytes(kernel));
                    txn.open_table(KERNEL)
                        .map_err(|e| err(e.into()))?
                        .insert(0, sealed.as_slice())
                        .map_err(|e| err(e.into()))?;
                }
            }
            txn.commit().map_err(|e| err(e.into()))?;
            Ok(())
        })?;
        File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        // A link, not a rename: it never replaces a log that appeared in
        // the meantime (made by a process that ignores the lock).
        match std::fs::hard_link(&tmp, &file) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let _ = std::fs::remove_file(&tmp);
                return Err(LogError::Exists {
                    path: dir.to_path_buf(),
                });
            }
            other => other.map_err(io(&file))?,
        }
        std::fs::remove_file(&tmp).map_err(io(&tmp))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Self::open_locked(dir, lock, false)
    }

    /// Open the log in `dir` for appending. Every check (format, header,
    /// numbering) is made through a read-only view first, so a log that is
    /// refused is not written (redb writes even to open a file writable).
    ///
    /// # Errors
    /// [`LogError::Missing`] if there is none; [`LogError::Locked`] if
    /// another process has it open; [`LogError::OlderFormat`] or
    /// [`LogError::NewerFormat`]; [`LogError::Corrupt`] if the header or
    /// the numbering is damaged; store errors otherwise.
    pub fn open(dir: &Path) -> Result<EventLog, LogError> {
        require_log(dir)?;
        let lock = lock_dir(dir, true)?;
        drop(Self::open_locked(dir, DirLock(None), true)?);
        Self::open_locked(dir, lock, false)
    }

    /// Open the log in `dir` for reading only: nothing is written to the
    /// file (redb's bookkeeping, and the repair of an unclean shutdown,
    /// happen in memory). Appends and snapshot writes are refused.
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_read_only(dir: &Path) -> Result<EventLog, LogError> {
        require_log(dir)?;
        let lock = lock_dir(dir, false)?;
        Self::open_locked(dir, lock, true)
    }

    fn open_locked(dir: &Path, lock: DirLock, read_only: bool) -> Result<EventLog, LogError> {
        let path = dir.join(FILE);
        let (db, recovered) = contained(&path, || {
            let err = store_error(&path);
            let repaired = Arc::new(AtomicBool::new(false));
            let flag = repaired.clone();
            let mut builder = Database::builder();
            builder.set_repair_callback(move |_| flag.store(true, Ordering::Relaxed));
            let db = if read_only {
                let backend = ReadOnlyFile::open(&path).map_err(io(&path))?;
                builder.create_with_backend(backend)
            } else {
                builder.open(&path)
            }
            .map_err(|e| err(e.into()))?;
            Ok((Store(Some(db)), repaired.load(Ordering::Relaxed)))
        })?;
        let mut log = EventLog {
            db,
            appending: std::sync::Mutex::new(()),
            path,
            key: 0,
            identity: String::new(),
            len: AtomicU64::new(0),
            recovered,
            read_only,
            _lock: lock,
        };
        let path = log.path.clone();
        contained(&path, || log.check())?;
        Ok(log)
    }

    /// Check the header and the numbering, and that the first event (if
    /// any) belongs under this header.
    fn check(&mut self) -> Result<(), LogError> {
        let txn = self.db.get().begin_read().map_err(|e| self.store(e))?;
        let meta = match txn.open_table(META) {
            Ok(t) => t,
            Err(redb::TableError::TableDoesNotExist(_)) => {
                return Err(self.corrupt("meta", 0, Corruption::NoEntry("format")))
            }
            Err(e) => return Err(self.store(e)),
        };
        let entry = |k: &str| -> Result<Option<String>, LogError> {
            Ok(meta
                .get(k)
                .map_err(|e| self.store(e))?
                .map(|v| v.value().to_string()))
        };
        let Some(format) = entry("format")? else {
            // Format 1 logs named their workload and had no version.
            if entry("workload")?.is_some() {
                return Err(LogError::OlderFormat {
                    path: self.path.clone(),
                    found: 1,
                });
            }
            return Err(self.corrupt("meta", 0, Corruption::NoEntry("format")));
        };
        let format: u64 = format
            .parse()
            .map_err(|_| self.corrupt("meta", 0, Corruption::Format(format.clone())))?;
        match format.cmp(&FORMAT) {
            std::cmp::Ordering::Less => {
                return Err(LogError::OlderFormat {
                    path: self.path.clone(),
                    found: format,
                })
            }
            std::cmp::Ordering::Greater => {
                return Err(LogError::NewerFormat {
                    path: self.path.clone(),
                    found: format,
                })
            }
            std::cmp::Ordering::Equal => {}
        }
        let identity = entry("identity")?
            .ok_or_else(|| self.corrupt("meta", 0, Corruption::NoEntry("identity")))?;
        let digest = entry("digest")?
            .ok_or_else(|| self.corrupt("meta", 0, Corruption::NoEntry("digest")))?;
        let key = log_key(format, &identity);
        if digest != format!("{key:016x}") {
            return Err(self.corrupt("meta", 0, Corruption::Digest));
        }
        self.key = key;
        self.identity = identity;
        let events = txn.open_table(EVENTS).map_err(|e| self.store(e))?;
        let first = events.first().map_err(|e| self.store(e))?;
        let len = match first {
            None => 0,
            Some((k, v)) => {
                let start = k.value();
                if start != 0 {
                    return Err(self.corrupt(
                        "events",
                        0,
                        Corruption::Gap {
                            expected: 0,
                            found: start,
                        },
                    ));
                }
                // The first event must belong under this header.
                let records = unframe(v.value()).map_err(|why| self.corrupt("events", 0, why))?;
                let record = records
                    .first()
                    .ok_or_else(|| self.corrupt("events", 0, Corruption::Framing))?;
                unseal(key, 0, record).map_err(|why| self.corrupt("events", 0, why))?;
                let (k, v) = events
                    .last()
                    .map_err(|e| self.store(e))?
                    .ok_or_else(|| self.corrupt("events", 0, Corruption::Missing))?;
                let start = k.value();
                let count = unframe(v.value())
                    .map_err(|why| self.corrupt("events", start, why))?
                    .len() as u64;
                start
                    .checked_add(count)
                    .ok_or_else(|| self.corrupt("events", start, Corruption::Framing))?
            }
        };
        self.len.store(len, Ordering::Release);
        Ok(())
    }

    fn store(&self, e: impl Into<redb::Error>) -> LogError {
        store_error(&self.path)(e.into())
    }

    fn corrupt(&self, table: &'static str, index: u64, why: Corruption) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            table,
            index,
            why,
        }
    }

    fn writable(&self) -> Result<(), LogError> {
        if self.read_only {
            return Err(LogError::Io {
                path: self.path.clone(),
                source: std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the log was opened read-only",
                ),
            });
        }
        Ok(())
    }

    /// The log's file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Who wrote the log (as given to [`create`](Self::create)).
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// Whether opening had to repair an unclean shutdown (the writer
    /// stopped without closing; anything it had not acknowledged is not in
    /// the log).
    pub fn recovered(&self) -> bool {
        self.recovered
    }

    /// Number of events in the log.
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::Acquire)
    }

    /// Whether the log has no events.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `events` in one durable transaction; returns the number of
    /// the first. Appends from several threads are serialised.
    ///
    /// # Errors
    /// [`LogError::Store`] if the write or its sync fails (nothing of the
    /// batch is then in the log).
    pub fn append(&self, events: &[Noun]) -> Result<u64, LogError> {
        let jammed: Vec<Vec<u8>> = events.iter().map(jam_bytes).collect();
        self.append_jammed(&jammed)
    }

    /// [`append`](Self::append) of events already jammed.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn append_jammed(&self, events: &[Vec<u8>]) -> Result<u64, LogError> {
        self.writable()?;
        let _appending = spectree::stm::contain::lock(&self.appending);
        contained(&self.path, || {
            let first = self.len();
            if events.is_empty() {
                return Ok(first);
            }
            // Refused before anything is written.
            let limit = u32::MAX as usize - 8;
            if let Some(i) = events.iter().position(|e| e.len() > limit) {
                return Err(LogError::TooLarge {
                    path: self.path.clone(),
                    index: first + i as u64,
                    bytes: events[i].len(),
                });
            }
            if events.len() > u32::MAX as usize {
                return Err(LogError::TooLarge {
                    path: self.path.clone(),
                    index: first + u64::from(u32::MAX),
                    bytes: 0,
                });
            }
            let batch = frame(
                events
                    .iter()
                    .enumerate()
                    .map(|(i, e)| seal(self.key, first + i as u64, e)),
            );
            let txn = self.db.get().begin_write().map_err(|e| self.store(e))?;
            {
                let mut table = txn.open_table(EVENTS).map_err(|e| self.store(e))?;
                table
                    .insert(first, batch.as_slice())
                    .map_err(|e| self.store(e))?;
            }
            txn.commit().map_err(|e| self.store(e))?;
            self.len
                .store(first + events.len() as u64, Ordering::Release);
            Ok(first)
        })
    }

    /// Events `from..to` (clamped to the log), checked and decoded.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] naming the first damaged or missing event.
    pub fn read(&self, from: u64, to: u64) -> Result<Vec<Noun>, LogError> {
        contained(&self.path, || {
            let to = to.min(self.len());
            let txn = self.db.get().begin_read().map_err(|e| self.store(e))?;
            let table = txn.open_table(EVENTS).map_err(|e| self.store(e))?;
            let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
            if from >= to {
                return Ok(out);
            }
            // The batch holding `from`, then the ones after it, each
            // starting where the one before it ends.
            let start = table
                .range(..=from)
                .map_err(|e| self.store(e))?
                .next_back()
                .transpose()
                .map_err(|e| self.store(e))?
                .map(|(k, _)| k.value())
                .ok_or_else(|| self.corrupt("events", from, Corruption::Missing))?;
            let mut expected = start;
            for entry in table.range(start..to).map_err(|e| self.store(e))? {
                let (k, v) = entry.map_err(|e| self.store(e))?;
                let found = k.value();
                if found != expected {
                    return Err(self.corrupt(
                        "events",
                        expected,
                        Corruption::Gap { expected, found },
                    ));
                }
                let records =
                    unframe(v.value()).map_err(|why| self.corrupt("events", found, why))?;
                expected = found + records.len() as u64;
                for (j, record) in records.into_iter().enumerate() {
                    let i = found + j as u64;
                    if i < from || i >= to {
                        continue;
                    }
                    let payload = unseal(self.key, i, record)
                        .map_err(|why| self.corrupt("events", i, why))?;
                    let noun = cue_bytes(payload)
                        .map_err(|e| self.corrupt("events", i, Corruption::Undecodable(e)))?;
                    out.push(noun);
                }
            }
            if (out.len() as u64) < to - from {
                return Err(self.corrupt("events", from + out.len() as u64, Corruption::Missing));
            }
            Ok(out)
        })
    }

    /// Record `state` as the state after the first `events` events.
    ///
    /// # Errors
    /// [`LogError::Store`] if the write fails.
    pub fn write_snapshot(&self, events: u64, state: &Noun) -> Result<(), LogError> {
        self.writable()?;
        let sealed = seal(self.key, events, &jam_bytes(&snapshot_record(state)));
        contained(&self.path, || {
            let txn = self.db.get().begin_write().map_err(|e| self.store(e))?;
            {
                let mut table = txn.open_table(SNAPSHOTS).map_err(|e| self.store(e))?;
                table
                    .insert(events, sealed.as_slice())
                    .map_err(|e| self.store(e))?;
            }
            txn.commit().map_err(|e| self.store(e))
        })
    }

    /// The kernel kept in a node's log (see
    /// [`create_for_kernel`](Self::create_for_kernel)); `None` for a log
    /// made by [`create`](Self::create).
    ///
    /// # Errors
    /// [`LogError::Corrupt`] if the kernel record is damaged or is not
    /// the kernel the log's identity names.
    pub fn kernel(&self) -> Result<Option<Noun>, LogError> {
        contained(&self.path, || {
            let txn = self.db.get().begin_read().map_err(|e| self.store(e))?;
            let table = match txn.open_table(KERNEL) {
                Ok(t) => t,
                Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
                Err(e) => return Err(self.store(e)),
            };
            let Some(record) = table.get(0).map_err(|e| self.store(e))? else {
                return Ok(None);
            };
            let payload = unseal(self.key, 0, record.value())
                .map_err(|why| self.corrupt("kernel", 0, why))?;
            let kernel = cue_bytes(payload)
                .map_err(|e| self.corrupt("kernel", 0, Corruption::Undecodable(e)))?;
            if kernel_identity(&kernel) != self.identity {
                return Err(self.corrupt("kernel", 0, Corruption::MugMismatch));
            }
            Ok(Some(kernel))
        })
    }

    /// The newest snapshot that is intact and covers no more events than
    /// the log holds, as (events included, state); damaged ones are skipped
    /// and listed, newest first, for the caller to report.
    ///
    /// # Errors
    /// [`LogError::Store`] if the store cannot be read.
    pub fn latest_snapshot(&self) -> Result<SnapshotFound, LogError> {
        self.snapshot_at_most(self.len())
    }

    /// [`latest_snapshot`](Self::latest_snapshot) among the snapshots
    /// covering at most `events` events.
    ///
    /// # Errors
    /// As [`latest_snapshot`](Self::latest_snapshot).
    pub fn snapshot_at_most(&self, events: u64) -> Result<SnapshotFound, LogError> {
        let limit = events.min(self.len());
        contained(&self.path, || {
            let txn = self.db.get().begin_read().map_err(|e| self.store(e))?;
            let table = txn.open_table(SNAPSHOTS).map_err(|e| self.store(e))?;
            let mut damaged = Vec::new();
            for entry in table.iter().map_err(|e| self.store(e))?.rev() {
                let (k, v) = entry.map_err(|e| self.store(e))?;
                let events = k.value();
                if events > limit {
                    continue;
                }
                match unseal_snapshot(self.key, events, v.value()) {
                    Ok(state) => return Ok((Some((events, state)), damaged)),
                    Err(why) => damaged.push(self.corrupt("snapshots", events, why)),
                }
            }
            Ok((None, damaged))
        })
    }
}

impl Store {
    fn get(&self) -> &Database {
        self.0.as_ref().expect("open until dropped")
    }
}

/// The state in a sealed snapshot record, checked: its seal (the log's
/// key and the events it includes), its `[mug state]` shape and its mug.
pub(crate) fn unseal_snapshot(key: u64, events: u64, record: &[u8]) -> Result<Noun, Corruption> {
    let payload = unseal(key, events, record)?;
    let Noun::Cell(c) = cue_bytes(payload).map_err(Corruption::Undecodable)? else {
        return Err(Corruption::NotASnapshot);
    };
    let mug = c.head().as_atom().and_then(|a| a.as_u64());
    if mug != Some(u64::from(c.tail().mug())) {
        return Err(Corruption::MugMismatch);
    }
    Ok(c.tail().clone())
}

/// A snapshot as stored: `[mug state]`.
pub(crate) fn snapshot_record(state: &Noun) -> Noun {
    Noun::cell(Noun::atom(u64::from(state.mug())), state.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("spectree-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn bytes_of(d: &Path) -> Vec<u8> {
        std::fs::read(d.join(FILE)).unwrap()
    }

    #[test]
    fn appends_read_back_in_order_after_reopening() {
        let d = dir("order");
        {
            let log = EventLog::create(&d, "test", &"[0 0]".parse().unwrap()).unwrap();
            assert_eq!(
                log.append(&[Noun::atom(1), "[2 3]".parse().unwrap()])
                    .unwrap(),
                0
            );
            assert_eq!(log.append(&[Noun::atom(4)]).unwrap(), 2);
            log.write_snapshot(2, &"[9 9]".parse().unwrap()).unwrap();
        }
        let log = EventLog::open(&d).unwrap();
        assert!(!log.recovered());
        assert_eq!(log.len(), 3);
        assert_eq!(log.identity(), "test");
        let all = log.read(0, 10).unwrap();
        assert_eq!(
            all.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["1", "[2 3]", "4"]
        );
        let (snap, damaged) = log.latest_snapshot().unwrap();
        assert!(damaged.is_empty());
        assert_eq!(snap.unwrap().0, 2);
        drop(log);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn creating_refuses_an_existing_log_without_writing() {
        let d = dir("exists");
        drop(EventLog::create(&d, "kv", &Noun::ZERO).unwrap());
        let before = bytes_of(&d);
        let err = EventLog::create(&d, "tiny", &Noun::ZERO).unwrap_err();
        assert!(matches!(err, LogError::Exists { .. }), "{err}");
        assert_eq!(bytes_of(&d), before, "a refused create wrote to the log");
        assert_eq!(EventLog::open(&d).unwrap().identity(), "kv");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn one_writer_at_a_time() {
        let d = dir("lock");
        let writer = EventLog::create(&d, "x", &Noun::ZERO).unwrap();
        assert!(matches!(EventLog::open(&d), Err(LogError::Locked { .. })));
        assert!(matches!(
            EventLog::open_read_only(&d),
            Err(LogError::Locked { .. })
        ));
        drop(writer);
        let r1 = EventLog::open_read_only(&d).unwrap();
        let _r2 = EventLog::open_read_only(&d).unwrap();
        assert!(matches!(EventLog::open(&d), Err(LogError::Locked { .. })));
        assert!(r1.append(&[Noun::ZERO]).is_err(), "read-only");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn reading_changes_nothing_even_after_an_unclean_shutdown() {
        let d = dir("readonly");
        let log = EventLog::create(&d, "x", &Noun::ZERO).unwrap();
        log.append(&[Noun::atom(5)]).unwrap();
        // Simulate a crash: copy the file while the writer has it open.
        let crashed = dir("readonly-crashed");
        std::fs::create_dir_all(&crashed).unwrap();
        std::fs::copy(d.join(FILE), crashed.join(FILE)).unwrap();
        drop(log);
        for d in [&d, &crashed] {
            let before = bytes_of(d);
            for _ in 0..2 {
                let r = EventLog::open_read_only(d).unwrap();
                assert_eq!(r.read(0, 1).unwrap(), vec![Noun::atom(5)]);
                assert_eq!(r.recovered(), d == &crashed);
            }
            assert_eq!(bytes_of(d), before, "reading wrote to {}", d.display());
        }
        std::fs::remove_dir_all(&d).ok();
        std::fs::remove_dir_all(&crashed).ok();
    }

    #[test]
    fn a_garbage_or_empty_file_is_a_clear_error() {
        for (name, bytes) in [
            ("garbage", vec![0x5a; 10_000]),
            ("zeros", vec![0; 8192]),
            ("empty", vec![]),
        ] {
            let d = dir(name);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join(FILE), &bytes).unwrap();
            for err in [
                EventLog::open(&d).expect_err("refused"),
                EventLog::open_read_only(&d).expect_err("refused"),
            ] {
                assert!(err.to_string().contains("events.redb"), "{name}: {err}");
            }
            std::fs::remove_dir_all(&d).ok();
        }
    }

    #[test]
    fn a_header_that_does_not_match_the_records_is_refused() {
        let d = dir("header");
        {
            let log = EventLog::create(&d, "workload kv", &Noun::ZERO).unwrap();
            log.append(&[Noun::atom(1)]).unwrap();
        }
        // Rewrite the identity and its digest consistently: the records
        // were sealed under the old header.
        {
            let db = Database::open(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            {
                let mut meta = txn.open_table(META).unwrap();
                let key = log_key(FORMAT, "workload tiny");
                meta.insert("identity", "workload tiny").unwrap();
                meta.insert("digest", format!("{key:016x}").as_str())
                    .unwrap();
            }
            txn.commit().unwrap();
        }
        let err = EventLog::open_read_only(&d).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Corrupt {
                    table: "events",
                    index: 0,
                    why: Corruption::Checksum,
                    ..
                }
            ),
            "{err}"
        );
        // Changing the identity alone breaks the digest.
        {
            let db = Database::open(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("identity", "workload arvo")
                .unwrap();
            txn.commit().unwrap();
        }
        let err = EventLog::open_read_only(&d).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Corrupt {
                    why: Corruption::Digest,
                    ..
                }
            ),
            "{err}"
        );
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn older_and_newer_formats_are_named() {
        let d = dir("formats");
        std::fs::create_dir_all(&d).unwrap();
        {
            // A format-1 log: no version, the workload named in the meta.
            let db = Database::create(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("workload", "kv")
                .unwrap();
            txn.commit().unwrap();
        }
        let err = EventLog::open_read_only(&d).unwrap_err();
        assert!(
            matches!(err, LogError::OlderFormat { found: 1, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("older format"), "{err}");
        {
            let db = Database::open(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META).unwrap().insert("format", "4").unwrap();
            txn.commit().unwrap();
        }
        let err = EventLog::open(&d).unwrap_err();
        assert!(
            matches!(err, LogError::NewerFormat { found: 4, .. }),
            "{err}"
        );
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_refused_writable_open_writes_nothing_even_to_a_crashed_file() {
        let d = dir("refused-open");
        std::fs::create_dir_all(&d).unwrap();
        let crashed = {
            // A format-1 log, copied while its writer had it open.
            let db = Database::create(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            txn.open_table(META)
                .unwrap()
                .insert("workload", "kv")
                .unwrap();
            txn.commit().unwrap();
            let bytes = std::fs::read(d.join(FILE)).unwrap();
            drop(db);
            bytes
        };
        std::fs::write(d.join(FILE), &crashed).unwrap();
        let err = EventLog::open(&d).unwrap_err();
        assert!(matches!(err, LogError::OlderFormat { .. }), "{err}");
        assert_eq!(std::fs::read(d.join(FILE)).unwrap(), crashed);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn batch_frames_are_checked_exactly() {
        let batch = frame([b"ab".to_vec(), Vec::new(), b"c".to_vec()].into_iter());
        assert_eq!(unframe(&batch).unwrap(), vec![&b"ab"[..], b"", b"c"]);
        assert_eq!(unframe(&[]), Err(Corruption::Framing));
        assert_eq!(unframe(&0u32.to_le_bytes()), Err(Corruption::Framing));
        // Every truncation, a count that claims too much, trailing bytes.
        for cut in 0..batch.len() {
            assert_eq!(unframe(&batch[..cut]), Err(Corruption::Framing), "{cut}");
        }
        let mut huge = batch.clone();
        huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(unframe(&huge), Err(Corruption::Framing));
        let mut longer = batch.clone();
        longer.push(0);
        assert_eq!(unframe(&longer), Err(Corruption::Framing));
    }

    #[test]
    fn a_batch_after_a_gap_is_named() {
        let d = dir("gap");
        let log = EventLog::create(&d, "test", &Noun::ZERO).unwrap();
        log.append(&[Noun::atom(1), Noun::atom(2), Noun::atom(3)])
            .unwrap();
        let key = log.key;
        drop(log);
        {
            // Events 5 and 6, sealed properly, but 3 and 4 missing.
            let db = Database::open(d.join(FILE)).unwrap();
            let txn = db.begin_write().unwrap();
            let records = (5..7u64).map(|i| seal(key, i, &jam_bytes(&Noun::atom(i))));
            let batch = frame(records.collect::<Vec<_>>().into_iter());
            txn.open_table(EVENTS)
                .unwrap()
                .insert(5, batch.as_slice())
                .unwrap();
            txn.commit().unwrap();
        }
        let log = EventLog::open_read_only(&d).unwrap();
        assert_eq!(log.read(0, 3).unwrap().len(), 3);
        let err = log.read(0, 7).unwrap_err();
        assert!(
            matches!(
                err,
                LogError::Corrupt {
                    why: Corruption::Gap {
                        expected: 3,
                        found: 5
                    },
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("where event 3 was due"), "{err}");
        drop(log);
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn damaged_records_are_named() {
        assert!(unseal(7, 3, &seal(7, 3, b"abc")).is_ok());
        assert_eq!(
            unseal(7, 4, &seal(7, 3, b"abc")),
            Err(Corruption::Checksum),
            "a record under the wrong number"
        );
        assert_eq!(
            unseal(8, 3, &seal(7, 3, b"abc")),
            Err(Corruption::Checksum),
            "a record under another header"
        );
        let mut r = seal(0, 0, b"abcdef");
        r[10] ^= 4;
        assert_eq!(unseal(0, 0, &r), Err(Corruption::Checksum));
        assert_eq!(unseal(0, 0, &r[..5]), Err(Corruption::Short { len: 5 }));
    }
}
