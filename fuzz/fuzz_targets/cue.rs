//! Arbitrary bytes never make `cue` panic; whatever decodes re-encodes to
//! something that decodes to the same noun.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spectree_noun::{cue_bytes, jam_bytes};

fuzz_target!(|data: &[u8]| {
    if let Ok(noun) = cue_bytes(data) {
        let again = cue_bytes(&jam_bytes(&noun)).expect("jam output always decodes");
        assert_eq!(again, noun);
    }
});
