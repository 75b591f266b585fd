//! The serial oracle: one event at a time, in log order, untracked.
//!
//! Invariant: this is the definition of the right answer. The
//! [`Processor`](crate::Processor) must produce exactly its outcomes and
//! states, for every input.

use std::time::Instant;

use spectree_stm::Regions;

use crate::event::{Backend, Committed, Event, Executor, States};
use crate::metrics::{ChainMeter, Metrics};
use crate::processor::Run;

/// Runs events one at a time against the committed state. Made by
/// [`ProcessorBuilder::build_serial`](crate::ProcessorBuilder::build_serial)
/// or [`Processor::serial`](crate::Processor::serial), so it runs events
/// exactly as the processor does.
///
/// ```
/// use spectree::{Event, NounState, Processor};
/// use spectree::noun::Noun;
/// use spectree::stm::RegionMap;
///
/// // Kernel: effects are the event; the state becomes the event.
/// let serial = Processor::builder(RegionMap::depth(1)?)
///     .kernel("[[0 2] 0 2]".parse()?)
///     .build_serial();
/// let run = serial.run(NounState(Noun::ZERO), (1..=3).map(|n| Event::nock(Noun::atom(n))));
/// assert_eq!(run.state.0, Noun::atom(3));
/// assert_eq!(run.outcomes.len(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SerialProcessor<S: Backend> {
    executor: Executor<S>,
}

impl<S: Backend> std::fmt::Debug for SerialProcessor<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialProcessor")
            .field("fuel", &self.executor.fuel)
            .field("memory", &self.executor.memory)
            .finish_non_exhaustive()
    }
}

impl<S: Backend> SerialProcessor<S> {
    pub(crate) fn from_executor(executor: Executor<S>) -> Self {
        SerialProcessor { executor }
    }

    /// Run every event, collecting outcomes.
    pub fn run(&self, state: S, events: impl IntoIterator<Item = Event<S>>) -> Run<S> {
        let start = Instant::now();
        let mut outcomes = Vec::new();
        let state = self.stream(state, events, |c| outcomes.push(c.outcome));
        let n = outcomes.len() as u64;
        let metrics = Metrics {
            events: n,
            executions: n,
            direct: n,
            elapsed: start.elapsed(),
            ..Metrics::default()
        };
        Run {
            metrics,
            state,
            outcomes,
        }
    }

    /// Run every event, handing each output to `sink` in log order; returns
    /// the final state.
    pub fn stream(
        &self,
        state: S,
        events: impl IntoIterator<Item = Event<S>>,
        sink: impl FnMut(Committed<S>),
    ) -> S {
        self.stream_with_states(state, events, self.executor.states, sink)
    }

    /// [`stream`](Self::stream), delivering the committed states `states`
    /// asks for instead of the configured ones.
    pub fn stream_with_states(
        &self,
        mut state: S,
        events: impl IntoIterator<Item = Event<S>>,
        states: States,
        mut sink: impl FnMut(Committed<S>),
    ) -> S {
        for (index, event) in events.into_iter().enumerate() {
            let (outcome, next) = self.executor.direct(&event, state);
            state = next;
            let index = index as u64;
            sink(Committed::new(
                index,
                outcome,
                states.wants(index).then(|| state.clone()),
            ));
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
        let mut meter = ChainMeter::new(self.executor.regions.count());
        let states = self.executor.states;
        for (index, event) in events.into_iter().enumerate() {
            let t = Instant::now();
            let run = self.executor.tracked(&event, &state, None, None, true);
            meter.add(t.elapsed().as_secs_f64(), &run.access);
            state = run.state.expect("a run with its end state");
            let index = index as u64;
            sink(Committed::new(
                index,
                run.outcome,
                states.wants(index).then(|| state.clone()),
            ));
        }
        (state, meter)
    }
}
