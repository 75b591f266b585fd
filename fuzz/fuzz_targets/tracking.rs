//! The `tracking` property: see `spectree_scheduler::fuzzing::tracking`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spectree_scheduler::fuzzing::contain_fuzzed_panics();
    spectree_scheduler::fuzzing::tracking(data)
});
