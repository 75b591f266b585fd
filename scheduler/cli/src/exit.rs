//! The `spectree` tool's exit statuses: one enum, one meaning each.

/// How the `spectree` tool ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Exit {
    /// Success.
    Ok = 0,
    /// A Nock crash, or a failure of the log, a file or the system.
    Failed = 1,
    /// Unusable input: a parse error (naming the position) or bad
    /// arguments; nothing was done.
    Usage = 2,
    /// A computation ran out of fuel or of its memory budget.
    Budget = 3,
    /// Speculative results differ from serial ones (`run`, `bench`).
    Different = 4,
    /// A regression beyond the threshold (`compare --fail-above`).
    Regressed = 5,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> i32 {
        self as i32
    }
}

/// The exit statuses as `--help` lists them.
pub const HELP: &str = "\
Exit status:
  0  success
  1  a Nock crash, or a failure of the log, a file or the system
  2  unusable input (a parse error naming the position, or bad arguments); nothing was done
  3  a computation ran out of fuel or of its memory budget
  4  speculative results differ from serial ones (run, bench)
  5  a regression beyond the threshold (compare --fail-above)

Noun arguments are noun text, `-` for standard input, or `@FILE` for a file's text.";
