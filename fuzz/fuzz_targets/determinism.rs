//! The `determinism` property: see `spectree_scheduler::fuzzing::determinism`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spectree_scheduler::fuzzing::contain_fuzzed_panics();
    spectree_scheduler::fuzzing::determinism(data)
});
