//! Containing panics: running code whose panic is an outcome (a Rust
//! event's, or a store's on a damaged file), not a crash of the process;
//! and locking through the poison such panics leave.
//!
//! Invariant: a panic inside [`contain`] reaches the caller as a value and
//! prints nothing; every other panic is reported as before. The first call
//! installs a panic hook that stays silent while the panicking thread is
//! inside `contain` and hands every other panic to the hook that was in
//! place (so a program's own hook keeps working, if it was set first).
//!
//! What it does not cover: a hook set after the first `contain` replaces
//! this one (contained panics then print); a panic on another thread that
//! the contained code waits for (rayon `join`) prints there before it is
//! resumed here and contained; and a panic while unwinding a contained one
//! aborts the process, as any double panic does.

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// How many `contain` calls this thread is inside.
    static QUIET: Cell<u32> = const { Cell::new(0) };
}

fn install_quiet_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if QUIET.with(Cell::get) == 0 {
                previous(info);
            }
        }));
    });
}

/// Run `f`; a panic inside it is returned as its message, silently.
///
/// ```
/// use spectree_stm::contain::contain;
/// assert_eq!(contain(|| 1 + 1), Ok(2));
/// assert_eq!(contain(|| -> u8 { panic!("boom") }), Err("boom".to_string()));
/// ```
///
/// # Errors
/// The panic's message when `f` panics.
pub fn contain<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    install_quiet_hook();
    QUIET.with(|q| q.set(q.get() + 1));
    let result = catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(q.get() - 1));
    result.map_err(|payload| message(&*payload))
}

/// Lock `m`, ignoring poison: with panics contained as outcomes, a panic
/// while the lock was held is reported where it happened, and every
/// critical section of ours leaves its data consistent.
pub fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The message of a panic payload (`&str` or `String`; anything else is
/// described as such).
pub fn message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_and_repeated_containment() {
        let r = contain(|| contain(|| -> () { panic!("inner") }));
        assert_eq!(r, Ok(Err("inner".into())));
        for i in 0..3 {
            assert_eq!(contain(|| -> () { panic!("{}", i) }), Err(i.to_string()));
        }
        assert_eq!(QUIET.with(Cell::get), 0);
    }
}
