//! The speculative parallel event processor.
//!
//! This crate will hold the `Processor` (speculative execution on a rayon
//! pool, commits strictly in log order, re-execution on conflict), its serial
//! oracle, the built-in workloads, and the `spectree` command-line tool. For
//! now it holds the command-line tool's noun and Nock commands.

#![warn(missing_docs)]

pub mod cli;
