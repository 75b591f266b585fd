//! Benchmarks for spectree.
//!
//! The criterion benches live in `benches/benches/`; this library holds the
//! inputs they share, so that the same nouns and formulas are measured by
//! criterion, by callgrind and by later report tooling.

#![warn(missing_docs)]

use spectree_noun::Noun;

pub use spectree_noun::nock::DECREMENT;

/// The decrement formula as a noun.
pub fn decrement_formula() -> Noun {
    spectree_noun::nock::decrement()
}

/// A balanced tree of `leaves` distinct atom leaves (`2 * leaves - 1` nodes),
/// built without recursion.
pub fn balanced_tree(leaves: u64) -> Noun {
    let mut level: Vec<Noun> = (0..leaves).map(|i| Noun::atom(i * 7 + 3)).collect();
    while level.len() > 1 {
        let mut next = Vec::with_capacity(level.len().div_ceil(2));
        let mut it = level.into_iter();
        while let Some(a) = it.next() {
            match it.next() {
                Some(b) => next.push(Noun::cell(a, b)),
                None => next.push(a),
            }
        }
        level = next;
    }
    level.pop().unwrap_or(Noun::ZERO)
}
