//! The `nock` property: see `spectree_noun::fuzzing::nock_run`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| spectree_noun::fuzzing::nock_run(data));
