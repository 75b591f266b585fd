//! Helpers shared by this crate's unit tests.

use spectree_noun::{Axis, Noun};

/// Parse noun syntax (test input is always valid).
pub(crate) fn n(s: &str) -> Noun {
    s.parse().expect("test nouns parse")
}

/// The axis `v` (test axes are never 0).
pub(crate) fn ax(v: u64) -> Axis {
    Axis::new(v).expect("test axes are nonzero")
}
