//! The `tracking` property: see `spectree_workloads::fuzzing::tracking`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spectree_workloads::fuzzing::contain_fuzzed_panics();
    spectree_workloads::fuzzing::tracking(data)
});
