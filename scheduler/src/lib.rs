//! The speculative parallel event processor.
//!
//! - [`Processor`]: runs an ordered log of events on a rayon pool against
//!   persistent snapshots, committing strictly in log order; the result is
//!   always exactly the [`SerialProcessor`]'s
//!   ([`processor`](mod@processor)).
//! - [`SerialProcessor`]: the oracle and the baseline ([`serial`](mod@serial)).
//! - [`Event`], [`Machine`] and [`Backend`]: what is executed and how
//!   ([`event`](mod@event)).
//! - [`workload`]: deterministic built-in workloads shared by the CLI,
//!   benches and fuzz targets.
//! - [`cli`]: the `spectree` command-line tool.

#![warn(missing_docs)]

pub mod cli;
pub mod compare;
pub mod config;
pub mod durable;
pub mod event;
pub mod fuzzing;
pub mod logged;
pub mod metrics;
pub mod offpath;
pub mod processor;
pub mod report;
pub mod run;
pub mod serial;
pub mod workload;

pub use config::{Config, ConfigError};
pub use event::{Backend, Committed, Event, Machine, Outcome};
pub use metrics::{ChainMeter, Metrics};
pub use processor::{Processor, Run};
pub use serial::SerialProcessor;
