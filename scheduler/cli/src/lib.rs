//! The `spectree` command-line tool, as a library so its reports can be
//! read by tests and other tools.
//!
//! | item | module | what it is |
//! |---|---|---|
//! | [`main_with`](cli::main_with) | `cli` | every command, each failure mapped to one [`Exit`](exit::Exit) status |
//! | [`Cli`](args::Cli), [`Inputs`](args::Inputs) | `args` | the command line; noun arguments from text, `-` or `@FILE` |
//! | [`Exit`](exit::Exit) | `exit` | the exit statuses |
//! | [`RunReport`](run::RunReport), [`run`](run::run) | `run` | `spectree run`: a workload serially and speculatively, compared (`--json`) |
//! | [`BenchReport`](bench::BenchReport), [`bench`](bench::bench) | `bench` | `spectree bench`: the workload matrix as a JSON report |
//! | [`compare`](compare::compare), [`plot`](compare::plot) | `compare` | `spectree compare`: two bench reports side by side |
//! | [`serve`](serve::serve) | `serve` | `spectree serve`: a node on stdin and stdout |

#![warn(missing_docs)]
#![deny(missing_debug_implementations)]

pub mod args;
pub mod bench;
pub mod cli;
pub mod compare;
pub mod exit;
pub mod run;
pub mod serve;
