//! Regressions from hostile testing of the `spectree` tool: every one of
//! these was a silent wrong answer, a panic, a hang or unbounded memory.
//! Each runs the real binary, bounded in time (and, where the defect was
//! about memory, under an address-space limit).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spectree-hostile-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn spectree() -> Command {
    Command::new(env!("CARGO_BIN_EXE_spectree"))
}

/// Run `cmd`, killing it after `limit`; `None` if it had to be killed.
fn bounded(mut cmd: Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        if start.elapsed() > limit {
            child.kill().unwrap();
            child.wait().unwrap();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// `spectree ARGS` under an address-space limit of `kib` KiB (via the
/// shell's `ulimit -v`), bounded in time.
fn limited(kib: u64, args: &[&str], limit: Duration) -> Option<Output> {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_spectree"))
        .args(args);
    bounded(cmd, limit)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one-line, panic-free error (or success) every failure must be.
fn clear(o: &Output) {
    let err = text(&o.stderr);
    assert!(
        !err.contains("panicked") && !err.contains("backtrace") && !err.contains("RUST_BACKTRACE"),
        "a panic leaked to the user: {err}"
    );
    assert!(
        err.lines().count() <= 1,
        "more than one line of error: {err}"
    );
    assert_ne!(o.status.code(), Some(101), "exit 101 is a panic");
    assert!(
        o.status.code().is_some(),
        "killed by a signal: {:?}",
        o.status
    );
}

/// The error names `what`.
fn mentions(o: &Output, what: &str) {
    let err = text(&o.stderr);
    assert!(err.contains(what), "expected {what:?} in: {err}");
}

fn final_mug(o: &Output) -> String {
    text(&o.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("final mug ").map(str::to_string))
        .unwrap_or_else(|| panic!("no final mug in {}", text(&o.stdout)))
}

fn replay(dir: &Path) -> Output {
    let mut cmd = spectree();
    cmd.arg("replay").arg(dir).args(["--threads", "2"]);
    bounded(cmd, Duration::from_secs(120)).expect("replay ends")
}

fn write_log(dir: &Path, args: &[&str]) -> Output {
    let mut cmd = spectree();
    cmd.args(["run", "--threads", "2", "--no-analysis"])
        .args(args)
        .arg("--log")
        .arg(dir);
    bounded(cmd, Duration::from_secs(120)).expect("run ends")
}

#[test]
fn a_refused_run_on_an_existing_log_changes_nothing() {
    let dir = scratch("refused");
    let o = write_log(&dir, &["--workload", "kv", "--events", "3000"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let mug = final_mug(&replay(&dir));
    let before = std::fs::read(dir.join("events.redb")).unwrap();
    for args in [
        &["--workload", "tiny", "--events", "100"][..],
        &["--workload", "kv", "--hot", "1", "--events", "10"][..],
    ] {
        let o = write_log(&dir, args);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        clear(&o);
        assert!(
            text(&o.stderr).contains("not by this run"),
            "{}",
            text(&o.stderr)
        );
        assert_eq!(std::fs::read(dir.join("events.redb")).unwrap(), before);
    }
    let again = replay(&dir);
    assert!(again.status.success());
    assert_eq!(
        final_mug(&again),
        mug,
        "the replay changed after a refused run"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn damaged_logs_give_one_clear_error_or_the_right_answer() {
    let dir = scratch("pages");
    let o = write_log(
        &dir,
        &[
            "--workload",
            "kv",
            "--events",
            "20000",
            "--snapshot-every",
            "0",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let file = dir.join("events.redb");
    let original = std::fs::read(&file).unwrap();
    let mug = final_mug(&replay(&dir));
    let pages = original.len() / 4096;
    let (mut right, mut refused) = (0, 0);
    // Zero single 4 KiB pages across the file (page 129 was the reported
    // one), then truncate at several points.
    let mut damaged: Vec<Vec<u8>> = (0..pages)
        .step_by((pages / 25).max(1))
        .chain([129.min(pages - 1)])
        .map(|p| {
            let mut b = original.clone();
            b[p * 4096..(p + 1) * 4096].fill(0);
            b
        })
        .collect();
    for cut in [
        original.len() - 1,
        original.len() * 2 / 3,
        original.len() / 2,
        4096,
        10,
    ] {
        damaged.push(original[..cut].to_vec());
    }
    for bytes in damaged {
        std::fs::write(&file, &bytes).unwrap();
        let o = replay(&dir);
        clear(&o);
        match o.status.code() {
            Some(0) => {
                assert_eq!(
                    final_mug(&o),
                    mug,
                    "a damaged log replayed to another state"
                );
                right += 1;
            }
            Some(1) => {
                mentions(&o, "events.redb");
                refused += 1;
            }
            other => panic!("replay exited {other:?}: {}", text(&o.stderr)),
        }
        // Reading changed nothing.
        assert_eq!(std::fs::read(&file).unwrap(), bytes);
    }
    assert!(
        refused > 0 && right + refused > 25,
        "{right} right, {refused} refused"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_kill_while_creating_a_log_leaves_none_or_a_valid_one() {
    for round in 0..10u64 {
        let dir = scratch(&format!("create{round}"));
        let mut child = spectree()
            .args([
                "run",
                "--workload",
                "tiny",
                "--events",
                "1000000",
                "--threads",
                "2",
            ])
            .args(["--skip-serial", "--no-analysis", "--log"])
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2 + round * 4));
        child.kill().unwrap();
        child.wait().unwrap();
        let o = replay(&dir);
        clear(&o);
        match o.status.code() {
            Some(0) => {}
            Some(2) => assert!(text(&o.stderr).contains("holds no event log")),
            other => panic!(
                "round {round}: replay exited {other:?}: {}",
                text(&o.stderr)
            ),
        }
        std::fs::remove_dir_all(&dir).ok();
    }
}

#[test]
fn a_killed_replay_changes_nothing() {
    let dir = scratch("killed-replay");
    let o = write_log(
        &dir,
        &[
            "--workload",
            "tiny",
            "--events",
            "150000",
            "--snapshot-every",
            "0",
        ],
    );
    assert!(o.status.success(), "{}", text(&o.stderr));
    let before = std::fs::read(dir.join("events.redb")).unwrap();
    for wait in [20, 50, 100] {
        let mut child = spectree()
            .arg("replay")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(std::fs::read(dir.join("events.redb")).unwrap(), before);
    }
    let o = replay(&dir);
    assert!(o.status.success());
    assert!(
        !text(&o.stdout).contains("warning"),
        "a killed replay left the log looking unclean: {}",
        text(&o.stdout)
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_hot_key_with_several_keys_per_event_ends() {
    let mut cmd = spectree();
    cmd.args(["run", "--workload", "kv", "--hot", "1", "--events", "2000"])
        .args(["--threads", "2", "--no-analysis", "--work", "0"]);
    let o = bounded(cmd, Duration::from_secs(60)).expect("kv --hot 1 ends");
    assert!(o.status.success(), "{}", text(&o.stderr));
}

#[test]
fn arguments_are_checked_before_any_work() {
    for args in [
        &["run", "--threads", "1025"][..],
        &["run", "--threads", "3000"][..],
        &["run", "--threads", "0"][..],
        &["run", "--workload", "kv", "--keys", "10000000"][..],
        &[
            "run",
            "--workload",
            "kv",
            "--per-event",
            "5000",
            "--keys",
            "100000",
        ][..],
        &["run", "--json", "/nonexistent-dir/report.json"][..],
        &["bench", "--quick", "--out", "/nonexistent-dir/bench.json"][..],
        &["replay", "/nonexistent-dir", "--threads", "5000"][..],
    ] {
        let mut cmd = spectree();
        cmd.args(args);
        let start = Instant::now();
        let o = bounded(cmd, Duration::from_secs(30)).expect("refused at once");
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{args:?} took {:?}",
            start.elapsed()
        );
        assert!(o.stdout.is_empty(), "{args:?} printed {}", text(&o.stdout));
        clear(&o);
    }
    // Many threads under a memory limit: a clear error before any thread
    // starts, never a panic or an abort.
    for _ in 0..3 {
        let o = limited(
            600_000,
            &["run", "--threads", "1024", "--events", "100"],
            Duration::from_secs(60),
        )
        .expect("ends");
        clear(&o);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
        mentions(&o, "address space");
    }
}

#[test]
fn usage_errors_are_plain_text() {
    let o = spectree().args(["run", "--bogus"]).output().unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(
        !o.stderr.contains(&0x1b),
        "ANSI codes in {}",
        text(&o.stderr)
    );
}

#[test]
fn snapshots_behind_the_writer_are_coalesced_in_bounded_memory() {
    let dir = scratch("snapshots");
    // Before: every snapshot waited in an unbounded queue behind a writer
    // that syncs each one, and this run aborted under the limit.
    let o = limited(
        250_000,
        &[
            "run",
            "--workload",
            "tiny",
            "--events",
            "300000",
            "--threads",
            "2",
            "--skip-serial",
            "--no-analysis",
            "--snapshot-every",
            "1",
            "--log",
            dir.to_str().unwrap(),
        ],
        Duration::from_secs(240),
    )
    .expect("ends");
    clear(&o);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let r = replay(&dir);
    assert!(r.status.success(), "{}", text(&r.stderr));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_stack_eating_formula_is_out_of_memory_not_an_abort() {
    let f = "[4 2 [0 1] 0 1]";
    let o = limited(2_000_000, &["nock", f, f], Duration::from_secs(120)).expect("ends");
    clear(&o);
    assert_eq!(o.status.code(), Some(3), "{}", text(&o.stderr));
    mentions(&o, "out of memory");
}

#[test]
fn acknowledged_lines_come_only_from_a_live_log() {
    // The kill test's protocol still holds: `ack N` lines on stdout.
    let dir = scratch("acks");
    let mut child = spectree()
        .args([
            "run",
            "--workload",
            "tiny",
            "--events",
            "5000",
            "--threads",
            "2",
        ])
        .args([
            "--skip-serial",
            "--no-analysis",
            "--ack-every",
            "1000",
            "--log",
        ])
        .arg(&dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let acks: Vec<String> = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .filter(|l| l.starts_with("ack "))
        .collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(acks.len(), 5);
    std::fs::remove_dir_all(&dir).ok();
}
