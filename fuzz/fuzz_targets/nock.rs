//! Arbitrary subject and formula (as jammed bytes, or raw bytes read as a
//! noun) with a small fuel budget never panic, overflow the stack or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spectree_noun::nock::{nock, Limits};
use spectree_noun::{cue_bytes, Noun};

fuzz_target!(|data: &[u8]| {
    // The first byte says where the subject's bytes end and the formula's begin.
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let (a, b) = rest.split_at(usize::from(first).min(rest.len()));
    let subject = cue_bytes(a).unwrap_or(Noun::ZERO);
    let Ok(formula) = cue_bytes(b) else {
        return;
    };
    let _ = nock(subject, &formula, &Limits::fuel(10_000));
});
