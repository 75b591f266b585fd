//! The `determinism` property: see `spectree_workloads::fuzzing::determinism`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    spectree_workloads::fuzzing::contain_fuzzed_panics();
    spectree_workloads::fuzzing::determinism(data)
});
