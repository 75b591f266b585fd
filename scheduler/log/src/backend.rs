//! What every event log offers, whatever keeps it: numbered events
//! appended in durable groups, read back checked, and snapshots.
//!
//! Invariants every implementation keeps (the processor's logged runs,
//! replay and the node rely on them):
//! - [`append_jammed`](LogBackend::append_jammed) returns only once the
//!   events are durable (synced to disk, or acknowledged by the replicas),
//!   and numbers them on from [`len`](LogBackend::len), without gaps;
//! - a log has at most one writer: a second is refused when it opens, or
//!   at its next append, never allowed to interleave;
//! - [`read`](LogBackend::read) returns exactly the events appended, or an
//!   error naming the damaged or missing one;
//! - a snapshot is returned only if it is intact (its mug matches) and
//!   covers no more events than the log holds.

use std::path::Path;

use spectree::noun::{jam_bytes, Noun};

use crate::store::{EventLog, LogError, SnapshotFound};

/// An event log: the embedded [`EventLog`] (redb, the default) or, with
/// the `jetstream` feature, [`JetStreamLog`](crate::JetStreamLog).
pub trait LogBackend: Send + Sync + std::fmt::Debug {
    /// Where the log is, for messages: its file, or its server and stream.
    fn path(&self) -> &Path;

    /// Who wrote the log (a workload, or a kernel's mug).
    fn identity(&self) -> &str;

    /// Number of events in the log.
    fn len(&self) -> u64;

    /// Whether the log has no events.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Append `events`, already jammed, durably; returns the number of the
    /// first.
    ///
    /// # Errors
    /// The log's failure. Nothing of the batch is then acknowledged; a log
    /// that cannot append atomically (a remote log splitting a large batch
    /// into messages) may hold a prefix of it, and refuses further appends
    /// ([`LogError::Poisoned`]) until refreshed.
    fn append_jammed(&self, events: &[Vec<u8>]) -> Result<u64, LogError>;

    /// [`append_jammed`](Self::append_jammed) of nouns.
    ///
    /// # Errors
    /// As [`append_jammed`](Self::append_jammed).
    fn append(&self, events: &[Noun]) -> Result<u64, LogError> {
        let jammed: Vec<Vec<u8>> = events.iter().map(jam_bytes).collect();
        self.append_jammed(&jammed)
    }

    /// Catch up with what other processes appended (a follower of a
    /// replicated log); returns the events the log now holds. A log with
    /// one process (the embedded one: its writer holds a lock) has nothing
    /// to catch up with.
    ///
    /// # Errors
    /// The log's failure.
    fn refresh(&self) -> Result<u64, LogError> {
        Ok(self.len())
    }

    /// Events `from..to` (clamped to the log), checked and decoded.
    ///
    /// # Errors
    /// [`LogError::Corrupt`] naming the first damaged or missing event, or
    /// the log's failure.
    fn read(&self, from: u64, to: u64) -> Result<Vec<Noun>, LogError>;

    /// Record `state` as the state after the first `events` events.
    ///
    /// # Errors
    /// The log's failure.
    fn write_snapshot(&self, events: u64, state: &Noun) -> Result<(), LogError>;

    /// The newest intact snapshot covering at most `events` events (and no
    /// more than the log holds), and the damaged ones skipped.
    ///
    /// # Errors
    /// The log's failure.
    fn snapshot_at_most(&self, events: u64) -> Result<SnapshotFound, LogError>;

    /// The newest intact snapshot.
    ///
    /// # Errors
    /// As [`snapshot_at_most`](Self::snapshot_at_most).
    fn latest_snapshot(&self) -> Result<SnapshotFound, LogError> {
        self.snapshot_at_most(self.len())
    }
}

impl LogBackend for EventLog {
    fn path(&self) -> &Path {
        EventLog::path(self)
    }

    fn identity(&self) -> &str {
        EventLog::identity(self)
    }

    fn len(&self) -> u64 {
        EventLog::len(self)
    }

    fn append_jammed(&self, events: &[Vec<u8>]) -> Result<u64, LogError> {
        EventLog::append_jammed(self, events)
    }

    fn read(&self, from: u64, to: u64) -> Result<Vec<Noun>, LogError> {
        EventLog::read(self, from, to)
    }

    fn write_snapshot(&self, events: u64, state: &Noun) -> Result<(), LogError> {
        EventLog::write_snapshot(self, events, state)
    }

    fn snapshot_at_most(&self, events: u64) -> Result<SnapshotFound, LogError> {
        EventLog::snapshot_at_most(self, events)
    }
}
