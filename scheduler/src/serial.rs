//! The serial oracle: one event at a time, in log order, untracked.
//!
//! Invariant: this is the definition of the right answer. The
//! [`Processor`](crate::Processor) must produce exactly its outcomes and
//! states, for every input.

use std::sync::Arc;
use std::time::Instant;

use spectree_noun::Noun;
use spectree_stm::Regions;

use crate::event::{Backend, Committed, Event, Machine};
use crate::metrics::{ChainMeter, Metrics};
use crate::processor::Run;

/// Runs events one at a time against the committed state.
///
/// ```
/// use std::sync::Arc;
/// use spectree_noun::Noun;
/// use spectree_scheduler::{Event, SerialProcessor};
/// use spectree_stm::{NounState, RegionMap};
///
/// // Kernel: effects are the event; the state becomes the event.
/// let kernel: Noun = "[[0 2] 0 2]".parse()?;
/// let serial = SerialProcessor::new(Arc::new(RegionMap::depth(1)?), Some(kernel), 1000);
/// let run = serial.run(NounState(Noun::ZERO), (1..=3).map(|n| Event::Nock(Noun::atom(n))));
/// assert_eq!(run.state.0, Noun::atom(3));
/// assert_eq!(run.outcomes.len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SerialProcessor<S: Backend> {
    machine: Machine<S>,
}

impl<S: Backend> SerialProcessor<S> {
    /// A serial processor over `regions` (used only by
    /// [`analyze`](Self::analyze)), with a kernel for Nock events and the
    /// fuel each Nock event gets.
    pub fn new(regions: Arc<dyn Regions<S::Key>>, kernel: Option<Noun>, fuel: u64) -> Self {
        SerialProcessor {
            machine: Machine {
                regions,
                kernel,
                fuel,
                memory: spectree_noun::nock::DEFAULT_MEMORY,
            },
        }
    }

    /// Run every event, collecting outcomes.
    pub fn run(&self, state: S, events: impl IntoIterator<Item = Event<S>>) -> Run<S> {
        let mut outcomes = Vec::new();
        let state = self.stream(state, events, |c| outcomes.push(c.outcome));
        Run {
            metrics: Metrics {
                events: outcomes.len() as u64,
                executions: outcomes.len() as u64,
                direct: outcomes.len() as u64,
                ..Metrics::default()
            },
            state,
            outcomes,
        }
    }

    /// Run every event, handing each output to `sink` in log order; returns
    /// the final state.
    pub fn stream(
        &self,
        mut state: S,
        events: impl IntoIterator<Item = Event<S>>,
        mut sink: impl FnMut(Committed<S>),
    ) -> S {
        for (index, event) in events.into_iter().enumerate() {
            let (outcome, next) = self.machine.direct(&event, &state);
            state = next;
            sink(Committed {
                index: index as u64,
                outcome,
                state: state.clone(),
            });
        }
        state
    }

    /// Run every event with tracking, timing each, and measure the log's
    /// available parallelism (see [`ChainMeter`]). Outputs go to `sink` and
    /// equal [`stream`](Self::stream)'s.
    pub fn analyze(
        &self,
        mut state: S,
        events: impl IntoIterator<Item = Event<S>>,
        mut sink: impl FnMut(Committed<S>),
    ) -> (S, ChainMeter) {
        let mut meter = ChainMeter::new(self.machine.regions.count());
        for (index, event) in events.into_iter().enumerate() {
            let t = Instant::now();
            let run = self.machine.tracked(&event, &state, None, None, true);
            meter.add(t.elapsed().as_secs_f64(), &run.access);
            state = run.state;
            sink(Committed {
                index: index as u64,
                outcome: run.outcome,
                state: state.clone(),
            });
        }
        (state, meter)
    }
}
