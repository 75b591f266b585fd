//! Pipelined group commit: a logger thread jams and appends each group of
//! events while the processor already runs them.
//!
//! Invariants:
//! - groups are appended in the order they were handed over, each in one
//!   durable transaction, so the durable count only grows, by whole groups,
//!   and covers a prefix of the events handed over;
//! - at most [`QUEUED`] groups wait for the logger: handing over another
//!   blocks the caller (the coordinator, never a pool worker), so memory is
//!   bounded however slow the disk;
//! - after the first failed append nothing more is appended, the durable
//!   count stops, and every waiter learns of the failure instead of
//!   waiting forever.
//!
//! Running an event before it is durable is safe because nothing of it
//! leaves the process until it is: its output (and any snapshot or
//! computation it leads to) is held until the durable count passes it.

use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Condvar, Mutex};
use std::thread::{Scope, ScopedJoinHandle};

use spectree::noun::{jam_bytes, Noun};

use crate::backend::LogBackend;
use crate::run::LoggedError;
use crate::store::LogError;

/// Groups that may wait for the logger while it appends another.
pub(crate) const QUEUED: usize = 2;

/// How far the log is durable, or why it stopped.
pub(crate) struct Durable {
    /// (durable count, the failure, whether the logger has stopped)
    state: Mutex<(u64, Option<LogError>, bool)>,
    changed: Condvar,
}

impl Durable {
    /// Durable up to `count` events so far.
    pub fn new(count: u64) -> Self {
        Durable {
            state: Mutex::new((count, None, false)),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (u64, Option<LogError>, bool)> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Events durable now.
    pub fn count(&self) -> u64 {
        self.lock().0
    }

    /// The failure that stopped the logger, taken (reported once).
    pub fn failure(&self) -> Option<LoggedError> {
        self.lock().1.take().map(LoggedError::from)
    }

    /// Wait until `count` events are durable.
    ///
    /// # Errors
    /// The logger's failure, if it stopped first.
    pub fn wait_for(&self, count: u64) -> Result<(), LoggedError> {
        let mut state = self.lock();
        loop {
            if state.0 >= count {
                return Ok(());
            }
            if let Some(e) = state.1.take() {
                return Err(e.into());
            }
            // Stopped short without a failure: it panicked (a bug).
            if state.2 {
                return Err(LoggedError::LoggerStopped);
            }
            state = self
                .changed
                .wait_timeout(state, std::time::Duration::from_millis(50))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn advance(&self, count: u64) {
        self.lock().0 = count;
        self.changed.notify_all();
    }

    fn stopped(&self) {
        self.lock().2 = true;
        self.changed.notify_all();
    }

    fn fail(&self, e: LogError) {
        self.lock().1 = Some(e);
        self.changed.notify_all();
    }
}

/// Start the logger for `log`: groups sent on the returned sender are
/// appended in order; dropping the sender ends it once they are.
pub(crate) fn spawn_logger<'scope, 'env>(
    scope: &'scope Scope<'scope, 'env>,
    log: &'env dyn LogBackend,
    durable: &'env Durable,
) -> std::io::Result<(SyncSender<Vec<Noun>>, ScopedJoinHandle<'scope, ()>)> {
    let (tx, rx) = sync_channel::<Vec<Noun>>(QUEUED);
    let handle = std::thread::Builder::new()
        .name("spectree-logger".into())
        .spawn_scoped(scope, move || {
            // However the logger ends (a panic included), waiters learn it.
            struct Stopped<'d>(&'d Durable);
            impl Drop for Stopped<'_> {
                fn drop(&mut self) {
                    self.0.stopped();
                }
            }
            let _stopped = Stopped(durable);
            for group in rx {
                let jammed: Vec<Vec<u8>> = group.iter().map(jam_bytes).collect();
                drop(group);
                match log.append_jammed(&jammed) {
                    Ok(first) => durable.advance(first + jammed.len() as u64),
                    Err(e) => {
                        // Stop: the receiver drops, so senders learn it.
                        durable.fail(e);
                        return;
                    }
                }
            }
        })?;
    Ok((tx, handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SnapshotFound;
    use std::path::Path;
    use std::sync::mpsc::TrySendError;

    /// A log whose appends wait until the test lets them through.
    #[derive(Debug)]
    struct Gate {
        open: Mutex<bool>,
        opened: Condvar,
        len: Mutex<u64>,
    }

    impl LogBackend for Gate {
        fn path(&self) -> &Path {
            Path::new("gate")
        }
        fn identity(&self) -> &str {
            "gate"
        }
        fn len(&self) -> u64 {
            *self.len.lock().unwrap()
        }
        fn append_jammed(&self, events: &[Vec<u8>]) -> Result<u64, LogError> {
            let mut open = self.open.lock().unwrap();
            while !*open {
                open = self.opened.wait(open).unwrap();
            }
            let mut len = self.len.lock().unwrap();
            let first = *len;
            *len += events.len() as u64;
            Ok(first)
        }
        fn read(&self, _: u64, _: u64) -> Result<Vec<Noun>, LogError> {
            Ok(Vec::new())
        }
        fn write_snapshot(&self, _: u64, _: &Noun) -> Result<(), LogError> {
            Ok(())
        }
        fn snapshot_at_most(&self, _: u64) -> Result<SnapshotFound, LogError> {
            Ok((None, Vec::new()))
        }
    }

    #[test]
    fn at_most_queued_groups_wait_behind_a_slow_append() {
        let gate = Gate {
            open: Mutex::new(false),
            opened: Condvar::new(),
            len: Mutex::new(0),
        };
        let durable = Durable::new(0);
        std::thread::scope(|scope| {
            let (groups, logger) = spawn_logger(scope, &gate, &durable).unwrap();
            let group = || vec![Noun::ZERO; 3];
            groups.send(group()).unwrap();
            // The logger takes the first group and waits in its append;
            // then QUEUED more fit, and the next is refused.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            let mut queued = 0;
            while queued < QUEUED {
                match groups.try_send(group()) {
                    Ok(()) => queued += 1,
                    Err(TrySendError::Full(_)) => {
                        assert!(
                            std::time::Instant::now() < deadline,
                            "the logger never took a group"
                        );
                        std::thread::yield_now();
                    }
                    Err(e) => panic!("{e}"),
                }
            }
            assert!(matches!(
                groups.try_send(group()),
                Err(TrySendError::Full(_))
            ));
            assert_eq!(durable.count(), 0, "nothing is durable before its append");
            *gate.open.lock().unwrap() = true;
            gate.opened.notify_all();
            drop(groups);
            logger.join().unwrap();
        });
        assert_eq!(durable.count(), 3 * (1 + QUEUED as u64));
        durable.wait_for(9).unwrap();
    }
}
