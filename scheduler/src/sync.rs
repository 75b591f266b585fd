//! The synchronisation primitives of the processor's core: the standard
//! library's, or loom's when built with `--cfg loom`, so that the loom
//! model (`processor/model.rs`) checks the real `core.rs`, not a copy of
//! its protocol (as crossbeam-epoch's `primitive` module does).

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicBool, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

/// Lock, ignoring poison: a panic elsewhere is reported separately, and
/// every critical section leaves its data consistent.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
