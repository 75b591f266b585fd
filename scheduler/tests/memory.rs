//! Memory per run does not grow with slots x regions (issue 12: a
//! 65,537-region map at window 16,384 took 1.1 GB and 7 s for 10 events).
//! Alone in its test binary, so that the process's peak resident size is
//! this run's.

use spectree::prelude::*;
use spectree::stm::{EventError, HashRegions, MapKey, MapState, RustEvent, Tx};

struct Bump(u64);

impl RustEvent<MapState> for Bump {
    fn apply(&self, tx: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
        let key = MapKey(Noun::atom(self.0));
        let v = tx.get(&key)?.unwrap_or(Noun::ZERO);
        let n = v.as_atom().and_then(|a| a.as_u64()).unwrap_or(0);
        tx.put(&key, Noun::atom(n + 1))?;
        Ok(Noun::ZERO)
    }
}

/// Peak resident set size of this process, in KiB (Linux only).
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn a_wide_window_over_many_regions_stays_small() {
    let before = peak_kib();
    let processor = Processor::builder(HashRegions(65_537))
        .threads(2)
        .window(16_384)
        .adaptive(false)
        .build()
        .expect("a valid configuration");
    let events = (0..10u64).map(|i| Event::rust(Bump(i % 3)));
    let run = processor.run(MapState::new(), events);
    assert_eq!(run.outcomes.len(), 10);
    assert_eq!(
        run.state.get(&MapKey(Noun::atom(0))).unwrap(),
        Some(Noun::atom(4))
    );
    if let (Some(before), Some(after)) = (before, peak_kib()) {
        let grown_mib = (after.saturating_sub(before)) / 1024;
        // Slots cost well under a kilobyte each (65,536 of them here) and
        // per-region tables 16 bytes per region: about 50 MiB in all.
        assert!(grown_mib < 200, "peak grew by {grown_mib} MiB");
    }
}
