//! Embedding the processor with Rust events: a bank of accounts in a map
//! state, transfers as events, run in parallel with results identical to
//! serial execution.
//!
//! `cargo run --release -p spectree-scheduler --example embed_rust`

use std::sync::Arc;

use spectree_noun::Noun;
use spectree_scheduler::{Config, Event, Processor, SerialProcessor};
use spectree_stm::{EventError, HashRegions, MapKey, MapState, RustEvent, State, Tx};

/// Move `amount` from one account to another; fails (changing nothing)
/// when the balance is short.
struct Transfer {
    from: u64,
    to: u64,
    amount: u64,
}

fn balance(tx: &mut Tx<'_, MapState>, account: u64) -> Result<u64, EventError> {
    let value = tx.get(&MapKey(Noun::atom(account)))?;
    Ok(match value {
        Some(Noun::Atom(a)) => a.as_u64().unwrap_or(0),
        _ => 0,
    })
}

impl RustEvent<MapState> for Transfer {
    fn apply(&self, tx: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
        let (from, to) = (balance(tx, self.from)?, balance(tx, self.to)?);
        if from < self.amount {
            return Err(EventError::Failed(format!(
                "account {} is short",
                self.from
            )));
        }
        tx.put(
            &MapKey(Noun::atom(self.from)),
            Noun::atom(from - self.amount),
        )?;
        tx.put(&MapKey(Noun::atom(self.to)), Noun::atom(to + self.amount))?;
        Ok(Noun::atom(self.amount)) // the effect: how much moved
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut state = MapState::default();
    for account in 0..1000 {
        state = state.put(&MapKey(Noun::atom(account)), Noun::atom(100))?;
    }
    let events = || {
        (0..20_000u64).map(|i| {
            let t = Transfer {
                from: i * 7919 % 1000,
                to: i * 104_729 % 1000,
                amount: i % 150,
            };
            Event::Rust(Arc::new(t) as Arc<dyn RustEvent<MapState>>)
        })
    };
    let regions = Arc::new(HashRegions(4096));
    let processor = Processor::new(regions.clone(), None, Config::default())?;
    let run = processor.run(state.clone(), events());
    let serial = SerialProcessor::new(regions, None, 0).run(state, events());
    assert_eq!(run.outcomes, serial.outcomes);
    assert_eq!(run.state, serial.state);
    let failed = run.outcomes.iter().filter(|o| o.is_err()).count();
    println!(
        "{} transfers, {failed} refused; {} re-executions; identical to serial",
        run.outcomes.len(),
        run.metrics.reexecutions
    );
    Ok(())
}
