//! Embedding the processor with Rust events: a bank of accounts in a map
//! state, transfers as events, run in parallel with results identical to
//! serial execution.
//!
//! `cargo run --release -p spectree --example embed_rust`

use spectree::prelude::*;

/// Refused: the balance is short.
const SHORT: u64 = 1;

/// Move `amount` from one account to another; fails (changing nothing)
/// when the balance is short.
struct Transfer {
    from: u64,
    to: u64,
    amount: u64,
}

fn balance(tx: &mut Tx<'_, MapState>, account: u64) -> Result<u64, EventError> {
    let value = tx.get(&MapKey(Noun::atom(account)))?;
    Ok(value.and_then(|n| n.as_u64()).unwrap_or(0))
}

impl RustEvent<MapState> for Transfer {
    fn apply(&self, tx: &mut Tx<'_, MapState>) -> Result<Noun, EventError> {
        let (from, to) = (balance(tx, self.from)?, balance(tx, self.to)?);
        if from < self.amount {
            return Err(EventError::failed(SHORT));
        }
        tx.put(
            &MapKey(Noun::atom(self.from)),
            Noun::atom(from - self.amount),
        )?;
        tx.put(&MapKey(Noun::atom(self.to)), Noun::atom(to + self.amount))?;
        // The effect, a receipt: [from to amount].
        Ok(Noun::from((self.from, self.to, self.amount)))
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // 1,000 accounts of 100 each, built in one pass.
    let accounts: MapState = (0..1000u64)
        .map(|a| (MapKey(Noun::atom(a)), Noun::atom(100)))
        .collect();
    let events = || {
        (0..20_000u64).map(|i| {
            Event::rust(Transfer {
                from: i * 7919 % 1000,
                to: i * 104_729 % 1000,
                amount: i % 150,
            })
        })
    };
    // Keys spread over 4,096 regions by hash: conflicts are detected per
    // key; regions only filter.
    let processor = Processor::builder(HashRegions(4096)).build()?;
    let run = processor.run(accounts.clone(), events());
    let serial = processor.serial().run(accounts, events());
    assert_eq!(run.outcomes, serial.outcomes);
    assert_eq!(run.state, serial.state);
    let short = run
        .outcomes
        .iter()
        .filter(|o| matches!(o, Err(e) if e.code() == Some(SHORT)))
        .count();
    println!(
        "{} transfers, {short} refused as short; {} re-executions; {:?}; identical to serial",
        run.outcomes.len(),
        run.metrics.reexecutions,
        run.metrics.elapsed,
    );
    Ok(())
}
