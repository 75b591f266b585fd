//! The durable event log: events (jammed), numbered in log order, and
//! snapshots of the state, in a redb database.
//!
//! Invariants:
//! - **Nothing acknowledged is lost.** [`EventLog::append`] returns only
//!   after its one write transaction is durable (redb commits with an
//!   fsync); callers release outcomes only for appended events. A batch is
//!   one transaction, so a crash keeps all of it or none of it (group
//!   commit: one sync per batch).
//! - **Nothing is silently skipped.** Every record carries a 64-bit
//!   checksum of its bytes; a mismatch, a gap in the numbering or a record
//!   that does not decode is [`LogError::Corrupt`] naming the table and
//!   the event number. A damaged snapshot is reported and the next older
//!   one used (the log still holds every event after it).
//! - An unclean shutdown is repaired by redb on open (an interrupted
//!   transaction is discarded); [`EventLog::recovered`] says so, so the
//!   caller can warn.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use redb::{Database, ReadableTable, ReadableTableMetadata, TableDefinition};
use spectree_noun::{cue_bytes, jam_bytes, Noun};
use thiserror::Error;

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
const SNAPSHOTS: TableDefinition<u64, &[u8]> = TableDefinition::new("snapshots");
const META: TableDefinition<&str, &str> = TableDefinition::new("meta");

/// Why the log cannot be used.
#[derive(Debug, Error)]
pub enum LogError {
    /// The store failed (I/O, or not a spectree log at all).
    #[error("event log {path}: {why}")]
    Store {
        /// The log's file.
        path: String,
        /// What the store reported.
        why: String,
    },
    /// A record is damaged.
    #[error("event log {path}: {table} record {index} is corrupt: {why}")]
    Corrupt {
        /// The log's file.
        path: String,
        /// "events" or "snapshots".
        table: &'static str,
        /// The event number (for snapshots: the events it includes).
        index: u64,
        /// What is wrong.
        why: String,
    },
}

/// FNV-1a, 64 bits, over a record's key and bytes: detects flipped bits,
/// truncation, and a record found under the wrong key.
fn checksum(key: u64, bytes: &[u8]) -> u64 {
    key.to_le_bytes()
        .iter()
        .chain(bytes)
        .fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        })
}

fn seal(key: u64, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(payload.len() + 8);
    v.extend_from_slice(&checksum(key, payload).to_le_bytes());
    v.extend_from_slice(payload);
    v
}

fn unseal(key: u64, record: &[u8]) -> Result<&[u8], String> {
    if record.len() < 8 {
        return Err(format!("{} bytes, shorter than its checksum", record.len()));
    }
    let (sum, payload) = record.split_at(8);
    let want = u64::from_le_bytes(sum.try_into().expect("8 bytes"));
    if checksum(key, payload) != want {
        return Err("checksum mismatch".into());
    }
    Ok(payload)
}

/// The newest intact snapshot (events included, state), if any, and the
/// damaged ones skipped on the way, newest first.
pub type SnapshotFound = (Option<(u64, Noun)>, Vec<LogError>);

/// Run `f`, turning a panic inside the store (it asserts on some damaged
/// files) into [`LogError::Store`].
fn contained<T>(path: &str, f: impl FnOnce() -> Result<T, LogError>) -> Result<T, LogError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".into());
        Err(LogError::Store {
            path: path.to_string(),
            why: format!("the file is damaged (the store failed: {why})"),
        })
    })
}

/// A durable, numbered log of events with snapshots. Shareable between
/// threads: appends and snapshot writes are serialised by the store.
pub struct EventLog {
    db: Database,
    path: String,
    len: AtomicU64,
    recovered: bool,
}

impl EventLog {
    /// Open the log in directory `dir`, creating both if missing, and check
    /// that its events are numbered without gaps.
    ///
    /// # Errors
    /// [`LogError::Store`] if the file cannot be opened or is not a redb
    /// database; [`LogError::Corrupt`] if the numbering has a gap.
    pub fn open(dir: &Path) -> Result<EventLog, LogError> {
        // The store asserts on some damaged files instead of returning an
        // error; a damaged file is bad input, so that is an error too.
        let shown = dir.join("events.redb").display().to_string();
        contained(&shown, || Self::open_inner(dir))
    }

    fn open_inner(dir: &Path) -> Result<EventLog, LogError> {
        let path = dir.join("events.redb");
        let shown = path.display().to_string();
        let store = |why: String| LogError::Store {
            path: shown.clone(),
            why,
        };
        std::fs::create_dir_all(dir).map_err(|e| store(e.to_string()))?;
        let repaired = Arc::new(AtomicBool::new(false));
        let flag = repaired.clone();
        let db = Database::builder()
            .set_repair_callback(move |_| flag.store(true, Ordering::Relaxed))
            .create(&path)
            .map_err(|e| store(e.to_string()))?;
        let txn = db.begin_write().map_err(|e| store(e.to_string()))?;
        let len = {
            let events = txn.open_table(EVENTS).map_err(|e| store(e.to_string()))?;
            txn.open_table(SNAPSHOTS)
                .map_err(|e| store(e.to_string()))?;
            txn.open_table(META).map_err(|e| store(e.to_string()))?;
            let count = events.len().map_err(|e| store(e.to_string()))?;
            let last = events
                .last()
                .map_err(|e| store(e.to_string()))?
                .map(|(k, _)| k.value());
            match last {
                None => 0,
                Some(l) if l.checked_add(1) == Some(count) => count,
                Some(l) => {
                    return Err(LogError::Corrupt {
                        path: shown,
                        table: "events",
                        index: l,
                        why: format!("{count} events but the last is numbered {l}"),
                    })
                }
            }
        };
        txn.commit().map_err(|e| store(e.to_string()))?;
        Ok(EventLog {
            db,
            path: shown,
            len: AtomicU64::new(len),
            recovered: repaired.load(Ordering::Relaxed),
        })
    }

    fn store(&self, e: impl std::fmt::Display) -> LogError {
        LogError::Store {
            path: self.path.clone(),
            why: e.to_string(),
        }
    }

    fn corrupt(&self, table: &'static str, index: u64, why: String) -> LogError {
        LogError::Corrupt {
            path: self.path.clone(),
            table,
            index,
            why,
        }
    }

    /// Whether opening had to repair an unclean shutdown (an interrupted,
    /// never acknowledged append was discarded).
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
    /// the first. Only one thread may append at a time.
    ///
    /// # Errors
    /// [`LogError::Store`] if the write or its sync fails (nothing of the
    /// batch is then in the log).
    pub fn append(&self, events: &[Noun]) -> Result<u64, LogError> {
        contained(&self.path, || self.append_inner(events))
    }

    fn append_inner(&self, events: &[Noun]) -> Result<u64, LogError> {
        let first = self.len();
        let txn = self.db.begin_write().map_err(|e| self.store(e))?;
        {
            let mut table = txn.open_table(EVENTS).map_err(|e| self.store(e))?;
            for (i, e) in events.iter().enumerate() {
                table
                    .insert(
                        first + i as u64,
                        seal(first + i as u64, &jam_bytes(e)).as_slice(),
                    )
                    .map_err(|e| self.store(e))?;
            }
        }
        txn.commit().map_err(|e| self.store(e))?;
        self.len
            .store(first + events.len() as u64, Ordering::Release);
        Ok(first)
    }

    /// Events `from..to` (clamped to the log), checked and decoded.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] naming the first damaged or missing event.
    pub fn read(&self, from: u64, to: u64) -> Result<Vec<Noun>, LogError> {
        contained(&self.path, || self.read_inner(from, to))
    }

    fn read_inner(&self, from: u64, to: u64) -> Result<Vec<Noun>, LogError> {
        let to = to.min(self.len());
        let txn = self.db.begin_read().map_err(|e| self.store(e))?;
        let table = txn.open_table(EVENTS).map_err(|e| self.store(e))?;
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        for i in from..to {
            let record = table
                .get(i)
                .map_err(|e| self.store(e))?
                .ok_or_else(|| self.corrupt("events", i, "missing".into()))?;
            let payload =
                unseal(i, record.value()).map_err(|why| self.corrupt("events", i, why))?;
            let noun = cue_bytes(payload)
                .map_err(|e| self.corrupt("events", i, format!("does not decode: {e}")))?;
            out.push(noun);
        }
        Ok(out)
    }

    /// Record `state` as the state after the first `events` events.
    ///
    /// # Errors
    /// [`LogError::Store`] if the write fails.
    pub fn write_snapshot(&self, events: u64, state: &Noun) -> Result<(), LogError> {
        contained(&self.path, || self.write_snapshot_inner(events, state))
    }

    fn write_snapshot_inner(&self, events: u64, state: &Noun) -> Result<(), LogError> {
        let record = Noun::cell(Noun::atom(u64::from(state.mug())), state.clone());
        let sealed = seal(events, &jam_bytes(&record));
        let txn = self.db.begin_write().map_err(|e| self.store(e))?;
        {
            let mut table = txn.open_table(SNAPSHOTS).map_err(|e| self.store(e))?;
            table
                .insert(events, sealed.as_slice())
                .map_err(|e| self.store(e))?;
        }
        txn.commit().map_err(|e| self.store(e))
    }

    /// The newest snapshot that is intact and covers no more events than
    /// the log holds, as (events included, state); damaged ones are skipped
    /// and listed, newest first, for the caller to report.
    ///
    /// # Errors
    /// [`LogError::Store`] if the store cannot be read.
    pub fn latest_snapshot(&self) -> Result<SnapshotFound, LogError> {
        contained(&self.path, || self.latest_snapshot_inner())
    }

    fn latest_snapshot_inner(&self) -> Result<SnapshotFound, LogError> {
        let txn = self.db.begin_read().map_err(|e| self.store(e))?;
        let table = txn.open_table(SNAPSHOTS).map_err(|e| self.store(e))?;
        let mut damaged = Vec::new();
        for entry in table.iter().map_err(|e| self.store(e))?.rev() {
            let (k, v) = entry.map_err(|e| self.store(e))?;
            let events = k.value();
            if events > self.len() {
                continue;
            }
            let decoded = unseal(events, v.value()).and_then(|p| {
                let noun = cue_bytes(p).map_err(|e| format!("does not decode: {e}"))?;
                let Noun::Cell(c) = noun else {
                    return Err("not a [mug state] cell".into());
                };
                let mug = c.head().as_atom().and_then(|a| a.as_u64());
                if mug != Some(u64::from(c.tail().mug())) {
                    return Err("its mug does not match its state".into());
                }
                Ok(c.tail().clone())
            });
            match decoded {
                Ok(state) => return Ok((Some((events, state)), damaged)),
                Err(why) => damaged.push(self.corrupt("snapshots", events, why)),
            }
        }
        Ok((None, damaged))
    }

    /// Set a metadata entry (the workload that wrote the log, say).
    ///
    /// # Errors
    /// [`LogError::Store`] if the write fails.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), LogError> {
        contained(&self.path, || self.set_meta_inner(key, value))
    }

    fn set_meta_inner(&self, key: &str, value: &str) -> Result<(), LogError> {
        let txn = self.db.begin_write().map_err(|e| self.store(e))?;
        {
            let mut table = txn.open_table(META).map_err(|e| self.store(e))?;
            table.insert(key, value).map_err(|e| self.store(e))?;
        }
        txn.commit().map_err(|e| self.store(e))
    }

    /// A metadata entry.
    ///
    /// # Errors
    /// [`LogError::Store`] if the store cannot be read.
    pub fn meta(&self, key: &str) -> Result<Option<String>, LogError> {
        contained(&self.path, || self.meta_inner(key))
    }

    fn meta_inner(&self, key: &str) -> Result<Option<String>, LogError> {
        let txn = self.db.begin_read().map_err(|e| self.store(e))?;
        let table = txn.open_table(META).map_err(|e| self.store(e))?;
        let value = table.get(key).map_err(|e| self.store(e))?;
        Ok(value.map(|v| v.value().to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!("spectree-log-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn appends_read_back_in_order_after_reopening() {
        let d = dir("order");
        {
            let log = EventLog::open(&d).unwrap();
            assert_eq!(
                log.append(&[Noun::atom(1), "[2 3]".parse().unwrap()])
                    .unwrap(),
                0
            );
            assert_eq!(log.append(&[Noun::atom(4)]).unwrap(), 2);
            log.write_snapshot(2, &"[9 9]".parse().unwrap()).unwrap();
            log.set_meta("workload", "tiny").unwrap();
        }
        let log = EventLog::open(&d).unwrap();
        assert!(!log.recovered());
        assert_eq!(log.len(), 3);
        let all = log.read(0, 10).unwrap();
        assert_eq!(
            all.iter().map(|n| n.to_string()).collect::<Vec<_>>(),
            ["1", "[2 3]", "4"]
        );
        let (snap, damaged) = log.latest_snapshot().unwrap();
        assert!(damaged.is_empty());
        assert_eq!(snap.unwrap().0, 2);
        assert_eq!(log.meta("workload").unwrap().as_deref(), Some("tiny"));
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn a_garbage_file_is_a_clear_error() {
        let d = dir("garbage");
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("events.redb"), vec![0x5a; 10_000]).unwrap();
        let err = EventLog::open(&d).err().expect("garbage is refused");
        assert!(err.to_string().contains("events.redb"), "{err}");
        std::fs::remove_dir_all(&d).ok();
    }

    #[test]
    fn damaged_records_are_named() {
        assert!(unseal(3, &seal(3, b"abc")).is_ok());
        assert!(
            unseal(4, &seal(3, b"abc")).is_err(),
            "a record under the wrong key"
        );
        let mut r = seal(0, b"abcdef");
        r[10] ^= 4;
        assert_eq!(unseal(0, &r), Err("checksum mismatch".into()));
        assert!(unseal(0, &r[..5]).is_err());
    }
}
