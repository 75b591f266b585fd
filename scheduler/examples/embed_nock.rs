//! Embedding the processor with Nock events: a kernel formula applies each
//! event to a noun state; the processor streams outputs in log order.
//!
//! `cargo run --release -p spectree --example embed_nock`

use spectree::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // State: [counter-a counter-b]. An event is a formula run by the kernel
    // `[2 [0 1] 0 2]` on the subject [event state]; these increment one
    // counter and emit its old value.
    let bump_a: Noun = "[[0 6] 10 [2 4 0 6] 0 3]".parse()?;
    let bump_b: Noun = "[[0 7] 10 [3 4 0 7] 0 3]".parse()?;
    let processor = Processor::builder(RegionMap::depth(1)?) // one region per counter
        .kernel("[2 [0 1] 0 2]".parse()?)
        .threads(2)
        .build()?;
    let events = (0..1000).map(|i| Event::nock(if i % 3 == 0 { &bump_a } else { &bump_b }.clone()));
    let mut last = None;
    let (state, metrics) = processor.stream(NounState("[0 0]".parse()?), events, |c| {
        // Outputs arrive in log order, each with the state after it.
        last = Some((c.index, c.outcome));
    });
    println!(
        "final state {} after {} events in {:?}; last output {last:?}",
        state.0, metrics.events, metrics.elapsed
    );
    assert_eq!(state.0.to_string(), "[334 666]");
    Ok(())
}
