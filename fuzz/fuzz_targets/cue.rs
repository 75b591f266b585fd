//! The `cue` property: see `spectree_scheduler::fuzzing::cue`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spectree_scheduler::fuzzing::cue(data));
