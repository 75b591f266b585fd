//! A thread-safe reference-counted pointer whose count can be made
//! *immortal*, for the cells of nouns.
//!
//! It is `Arc` without weak references, plus one thing `Arc` cannot do:
//! a value that will live as long as the process anyway (a kernel formula,
//! a formula constant) can be made immortal, after which cloning and
//! dropping it only *read* its count. Threads that evaluate the same shared
//! formula in parallel otherwise contend on its cells' counts: each clone and
//! drop is an atomic read-modify-write on a cache line the other core just
//! wrote, and a measured decrement loop on a shared formula ran at half
//! speed on two threads (`docs/benchmarks.md`, "Shared formulas"). Reads
//! leave the line shared in both caches, so immortal values cost nothing.
//!
//! Invariants:
//! - a count below [`IMMORTAL`] is the number of live pointers; the value is
//!   freed exactly once, when the last of them is dropped. A pointer that
//!   reads a count of 1 (acquire) is the only one, and no other can appear
//!   (cloning needs a pointer), so it frees without a read-modify-write:
//!   cheaper than `Arc` for the temporary cells an evaluation drops;
//! - a count at or above [`IMMORTAL`] never goes below it again and the value
//!   is never freed (immortality is permanent: a leak by design, bounded by
//!   what callers make immortal). A count that passes half of
//!   [`IMMORTAL`] by increments (2^61 pointers: never, in practice) is made
//!   immortal by the clone that sees it, through the same compare-and-swap,
//!   so overflow leaks instead of freeing early or aborting;
//! - the count goes mortal → immortal by one compare-and-swap that adds
//!   [`IMMORTAL`], so it cannot overflow whatever other threads do meanwhile.
//!   A pointer cloned before that (and counted) and dropped after it only
//!   leaks its count; a pointer cloned after it is not counted, and every
//!   drop of it reads a count at or above [`IMMORTAL`] (read-read coherence:
//!   the clone's read of the count happens before the drop's), so it never
//!   decrements.

use std::marker::PhantomData;
use std::ops::Deref;
use std::ptr::NonNull;
use std::sync::atomic::{fence, AtomicUsize, Ordering};

/// Counts at or above this are immortal.
pub(crate) const IMMORTAL: usize = 1 << (usize::BITS - 2);

struct Inner<T> {
    count: AtomicUsize,
    value: T,
}

/// A shared pointer to a `T` (see the module documentation).
pub(crate) struct Counted<T> {
    ptr: NonNull<Inner<T>>,
    _owns: PhantomData<Inner<T>>,
}

// SAFETY: like `Arc<T>`: the value is shared between threads (so `T: Sync`)
// and may be dropped or taken by whichever thread holds the last pointer
// (so `T: Send`); the count is atomic.
unsafe impl<T: Send + Sync> Send for Counted<T> {}
// SAFETY: as above; `&Counted<T>` only gives out `&T` and clones.
unsafe impl<T: Send + Sync> Sync for Counted<T> {}

impl<T> Counted<T> {
    /// A new pointer, the only one to `value`.
    #[inline]
    pub fn new(value: T) -> Self {
        let inner = Box::new(Inner {
            count: AtomicUsize::new(1),
            value,
        });
        Counted {
            ptr: NonNull::from(Box::leak(inner)),
            _owns: PhantomData,
        }
    }

    #[inline]
    fn inner(&self) -> &Inner<T> {
        // SAFETY: the allocation lives while any pointer to it does (it is
        // freed only by the last pointer, when it is dropped or taken
        // apart), and `self` is one.
        unsafe { self.ptr.as_ref() }
    }

    /// Whether both point to the same allocation.
    #[inline]
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        a.ptr == b.ptr
    }

    /// The allocation's address.
    #[inline]
    pub fn as_ptr(this: &Self) -> *const T {
        // SAFETY: `ptr` is valid (see `inner`); taking a field's address
        // creates no reference.
        unsafe { &raw const (*this.ptr.as_ptr()).value }
    }

    /// Whether this value is immortal.
    #[inline]
    pub fn is_immortal(this: &Self) -> bool {
        this.inner().count.load(Ordering::Relaxed) >= IMMORTAL
    }

    /// Make the value immortal (see the module documentation). Returns
    /// whether this call did it (false if it already was).
    pub fn immortalize(this: &Self) -> bool {
        let count = &this.inner().count;
        let mut c = count.load(Ordering::Relaxed);
        while c < IMMORTAL {
            match count.compare_exchange_weak(c, c + IMMORTAL, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => c = now,
            }
        }
        false
    }

    /// Mutable access if this is the only pointer to the value.
    #[inline]
    pub fn get_mut(this: &mut Self) -> Option<&mut T> {
        // Acquire: pairs with the release decrement of a pointer dropped on
        // another thread, so its uses of the value happen before ours.
        if this.inner().count.load(Ordering::Acquire) == 1 {
            // SAFETY: the count is 1 and we hold that pointer through
            // `&mut`, so no other pointer exists (none can be made without
            // one) and no other reference to the value is live.
            Some(unsafe { &mut (*this.ptr.as_ptr()).value })
        } else {
            None
        }
    }

    /// The value, if this is the only pointer to it; otherwise the pointer
    /// back.
    pub fn try_unwrap(this: Self) -> Result<T, Self> {
        if this
            .inner()
            .count
            .compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            return Err(this);
        }
        // SAFETY: the count went 1 → 0, so this was the only pointer; we
        // take the allocation back and must not run our own `Drop`.
        let inner = unsafe { Box::from_raw(this.ptr.as_ptr()) };
        std::mem::forget(this);
        Ok(inner.value)
    }

    /// Drop this pointer, returning the value if it was the last one (as
    /// `Arc::into_inner`: exactly one of any number of racing callers gets
    /// it).
    pub fn into_inner(this: Self) -> Option<T> {
        let this = std::mem::ManuallyDrop::new(this);
        let count = &this.inner().count;
        match count.load(Ordering::Acquire) {
            // The only pointer: no other can appear (see `Drop`).
            1 => {}
            c if c >= IMMORTAL => return None,
            _ => {
                if count.fetch_sub(1, Ordering::Release) != 1 {
                    return None;
                }
                fence(Ordering::Acquire);
            }
        }
        // SAFETY: this was the last pointer (the count read 1, or went
        // 1 → 0 here), and the acquire load or fence orders every other
        // pointer's uses before this; `this` is never dropped.
        let inner = unsafe { Box::from_raw(this.ptr.as_ptr()) };
        Some(inner.value)
    }
}

impl<T> Clone for Counted<T> {
    #[inline]
    fn clone(&self) -> Self {
        let count = &self.inner().count;
        // A read only, for immortal values: the point of them.
        if count.load(Ordering::Relaxed) < IMMORTAL {
            // Relaxed, as `Arc`: a new pointer is made from an existing one,
            // which keeps the value alive meanwhile.
            if count.fetch_add(1, Ordering::Relaxed) >= IMMORTAL / 2 {
                self.saturate();
            }
        }
        Counted {
            ptr: self.ptr,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for Counted<T> {
    #[inline]
    fn drop(&mut self) {
        let count = &self.inner().count;
        // Acquire, for the unique case: it pairs with the release
        // decrements of pointers dropped on other threads.
        match count.load(Ordering::Acquire) {
            // The only pointer (nobody can clone it meanwhile: that needs a
            // pointer): free without a read-modify-write, as most of an
            // evaluation's temporary cells are.
            1 => self.free(),
            c if c >= IMMORTAL => {}
            _ => {
                if count.fetch_sub(1, Ordering::Release) == 1 {
                    fence(Ordering::Acquire);
                    self.free();
                }
            }
        }
    }
}

impl<T> Counted<T> {
    /// Absurdly many pointers: become immortal by the compare-and-swap,
    /// long before increments alone could reach [`IMMORTAL`] (where a
    /// racing decrement could take the count back below it while an
    /// uncounted pointer exists).
    #[cold]
    #[inline(never)]
    fn saturate(&self) {
        Self::immortalize(self);
    }

    /// Free the value: out of line, so that every drop site stays small
    /// (as `Arc`'s). The caller holds the last pointer, and every other
    /// pointer's uses happen before this (an acquire load or fence after
    /// their release decrements).
    #[inline(never)]
    fn free(&mut self) {
        // SAFETY: as above: this is the last pointer, dropped now, and no
        // use of the value by another pointer can follow.
        drop(unsafe { Box::from_raw(self.ptr.as_ptr()) });
    }
}

impl<T> Deref for Counted<T> {
    type Target = T;

    #[inline]
    fn deref(&self) -> &T {
        &self.inner().value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Counts its drops.
    #[derive(Debug)]
    struct Probe(Arc<AtomicUsize>);

    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn probe() -> (Counted<Probe>, Arc<AtomicUsize>) {
        let drops = Arc::new(AtomicUsize::new(0));
        (Counted::new(Probe(drops.clone())), drops)
    }

    #[test]
    fn the_last_pointer_frees_once() {
        let (a, drops) = probe();
        let b = a.clone();
        let c = b.clone();
        drop(a);
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(c);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn unique_access_only_when_unique() {
        let mut a = Counted::new(5u32);
        *Counted::get_mut(&mut a).unwrap() += 1;
        let b = a.clone();
        assert!(Counted::get_mut(&mut a).is_none());
        let a = Counted::try_unwrap(a).unwrap_err();
        drop(b);
        assert_eq!(Counted::try_unwrap(a).ok(), Some(6));
    }

    #[test]
    fn into_inner_gives_the_value_to_the_last_only() {
        let (a, drops) = probe();
        let b = a.clone();
        assert!(Counted::into_inner(a).is_none());
        let value = Counted::into_inner(b).expect("the last pointer");
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        drop(value);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn immortal_values_are_never_freed_and_never_unique() {
        let (mut a, drops) = probe();
        assert!(Counted::immortalize(&a));
        assert!(!Counted::immortalize(&a), "once");
        assert!(Counted::is_immortal(&a));
        assert!(Counted::get_mut(&mut a).is_none());
        let b = a.clone();
        let a = Counted::try_unwrap(a).unwrap_err();
        assert!(Counted::into_inner(a).is_none());
        drop(b);
        assert_eq!(drops.load(Ordering::SeqCst), 0, "leaked by design");
    }

    /// A count pushed past half of [`IMMORTAL`] (as 2^61 leaked clones
    /// would) makes the value immortal at the next clone.
    #[test]
    fn absurd_counts_become_immortal() {
        let (a, drops) = probe();
        a.inner().count.store(IMMORTAL / 2, Ordering::Relaxed);
        assert!(!Counted::is_immortal(&a));
        let b = a.clone();
        assert!(Counted::is_immortal(&a));
        drop(b);
        drop(a);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
    }

    /// Clones and drops racing with immortalization never free the value;
    /// without it, racing clones and drops free it exactly once.
    #[test]
    fn racing_threads_agree() {
        for immortal in [false, true] {
            let (a, drops) = probe();
            std::thread::scope(|s| {
                for t in 0..4 {
                    let a = a.clone();
                    s.spawn(move || {
                        for i in 0..10_000 {
                            let b = a.clone();
                            if immortal && t == 0 && i == 5_000 {
                                Counted::immortalize(&b);
                            }
                            drop(b);
                        }
                    });
                }
            });
            drop(a);
            let expected = usize::from(!immortal);
            assert_eq!(
                drops.load(Ordering::SeqCst),
                expected,
                "immortal {immortal}"
            );
        }
    }
}
