//! The durable log under crashes and damage: killing a writer at random
//! moments never loses an acknowledged event, and replay equals serial
//! execution; truncated, bit-flipped and garbage files give clear errors,
//! never a panic or silently wrong events.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use spectree::noun::Noun;
use spectree::NounState;
use spectree_log::{replay, EventLog};
use spectree_workloads::{AnyWorkload, Params, Rng, Workload};

fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("spectree-durable-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn tiny(events: u64) -> Workload<NounState> {
    let params = Params {
        events,
        work_us: Some(0.5),
        ..Params::default()
    };
    match AnyWorkload::build("tiny", params).unwrap() {
        AnyWorkload::Noun(w) => w,
        AnyWorkload::Map(_) => unreachable!(),
    }
}

/// Replay `dir` and check it against serial execution of as many events.
fn replay_equals_serial(dir: &Path, w: &Workload<NounState>) -> u64 {
    let log = EventLog::open_read_only(dir).unwrap();
    let p = w.builder().threads(2).build().unwrap();
    let r = replay(&p, &log, |n| w.decode(n)).unwrap();
    let expected = p
        .serial()
        .run(w.state.clone(), w.events().take(r.events as usize));
    assert_eq!(
        r.state, expected.state,
        "replay of {} events differs from serial",
        r.events
    );
    r.events
}

#[test]
fn killing_the_writer_never_loses_an_acknowledged_event() {
    let events = 2_000_000;
    let w = tiny(events);
    let mut mid_run = 0;
    for round in 0..8u64 {
        let dir = scratch(&format!("kill{round}"));
        let wait = 150 + Rng::at(77, round).below(900);
        let acked = run_and_kill(&dir, events, wait);
        let logged = replay_equals_serial(&dir, &w);
        assert!(
            logged >= acked,
            "round {round}: {acked} acknowledged, {logged} in the log"
        );
        mid_run += usize::from(acked > 0 && logged < events);
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(
        mid_run >= 4,
        "only {mid_run} of 8 kills landed while events were flowing"
    );
}

/// Start a logged `tiny` run of `events` in `dir` (resuming what is there),
/// and kill it `wait` ms after its first acknowledgement (so that it has
/// started logging however slow the machine); returns the highest
/// acknowledged count.
fn run_and_kill(dir: &Path, events: u64, wait: u64) -> u64 {
    let mut child = Command::new(env!("CARGO_BIN_EXE_spectree"))
        .args(["run", "--workload", "tiny", "--events", &events.to_string()])
        .args(["--work", "0.5", "--threads", "2", "--no-compare"])
        .args(["--no-analysis", "--group", "64", "--snapshot-every", "3000"])
        .args(["--ack-every", "50", "--log"])
        .arg(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("ack ").and_then(|n| n.parse::<u64>().ok()))
            .inspect(|&n| {
                let _ = tx.send(n);
            })
            .max()
            .unwrap_or(0)
    });
    let _ = rx.recv_timeout(Duration::from_secs(60));
    std::thread::sleep(Duration::from_millis(wait));
    child.kill().unwrap();
    child.wait().unwrap();
    reader.join().unwrap()
}

#[test]
fn a_log_continued_by_three_killed_processes_replays_as_serial() {
    let events = 2_000_000;
    let w = tiny(events);
    let mut continued = 0;
    for round in 0..8u64 {
        let dir = scratch(&format!("resume{round}"));
        let mut acked = 0;
        let mut lengths = Vec::new();
        for process in 0..3u64 {
            let wait = 200 + Rng::at(91, round * 3 + process).below(500);
            acked = acked.max(run_and_kill(&dir, events, wait));
            lengths.push(EventLog::open_read_only(&dir).map_or(0, |l| l.len()));
        }
        let logged = replay_equals_serial(&dir, &w);
        assert!(
            logged >= acked,
            "round {round}: {acked} acknowledged, {logged} in the log"
        );
        assert!(
            lengths.windows(2).all(|p| p[0] <= p[1]),
            "round {round}: the log shrank: {lengths:?}"
        );
        continued += usize::from(lengths[0] > 0 && lengths[2] > lengths[0]);
        std::fs::remove_dir_all(&dir).ok();
    }
    assert!(
        continued >= 4,
        "only {continued} of 8 rounds continued a log mid-run"
    );
}

/// Write a small log and return its directory and events.
fn small_log(name: &str) -> (PathBuf, Vec<Noun>) {
    let dir = scratch(name);
    let log = EventLog::create(&dir, "test", &Noun::ZERO).unwrap();
    let events: Vec<Noun> = (0..300u64)
        .map(|i| Noun::cell(Noun::atom(i), Noun::atom(i * i)))
        .collect();
    for chunk in events.chunks(50) {
        log.append(chunk).unwrap();
    }
    drop(log);
    (dir, events)
}

/// Opening and reading a damaged log: an error that names the log, or the
/// original events; never a panic and never different events.
fn damaged_is_an_error_or_intact(dir: &Path, events: &[Noun]) -> bool {
    let log = match EventLog::open_read_only(dir) {
        Err(e) => {
            assert!(e.to_string().contains("events.redb"), "{e}");
            return false;
        }
        Ok(log) => log,
    };
    match log.read(0, log.len()) {
        Err(e) => {
            assert!(e.to_string().contains("events.redb"), "{e}");
            false
        }
        Ok(read) => {
            assert!(read.len() <= events.len());
            assert_eq!(
                read,
                events[..read.len()],
                "a damaged log returned different events"
            );
            true
        }
    }
}

#[test]
fn truncated_and_bit_flipped_logs_are_errors_or_intact() {
    let (dir, events) = small_log("damage");
    let file = dir.join("events.redb");
    let original = std::fs::read(&file).unwrap();
    let mut errors = 0;
    for cut in [original.len() / 2, original.len() / 3, 4096, 100, 0] {
        std::fs::write(&file, &original[..cut]).unwrap();
        errors += usize::from(!damaged_is_an_error_or_intact(&dir, &events));
    }
    for i in 0..40u64 {
        let mut bytes = original.clone();
        let at = Rng::at(9, i).below(bytes.len() as u64) as usize;
        bytes[at] ^= 1 << (i % 8);
        std::fs::write(&file, &bytes).unwrap();
        errors += usize::from(!damaged_is_an_error_or_intact(&dir, &events));
    }
    std::fs::remove_dir_all(&dir).ok();
    assert!(errors > 0, "no damage was ever detected");
}

#[test]
fn flipping_a_bit_inside_a_record_is_named() {
    let (dir, events) = small_log("record");
    let file = dir.join("events.redb");
    let mut bytes = std::fs::read(&file).unwrap();
    // Find event 123's payload (the store is copy-on-write, so stale copies
    // may exist too) and flip a bit in every copy.
    let needle = spectree::noun::jam_bytes(&events[123]);
    let places: Vec<usize> = bytes
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle.as_slice())
        .map(|(i, _)| i)
        .collect();
    assert!(!places.is_empty(), "the record is in the file");
    for at in places {
        bytes[at + needle.len() - 1] ^= 0x10;
    }
    std::fs::write(&file, &bytes).unwrap();
    let log = EventLog::open_read_only(&dir).unwrap();
    let err = log.read(0, 300).unwrap_err().to_string();
    assert!(
        err.contains("record 123") && err.contains("corrupt"),
        "{err}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn garbage_and_missing_logs_are_clear_errors() {
    let dir = scratch("garbage");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("events.redb"), b"not a database at all").unwrap();
    assert!(EventLog::open(&dir).is_err());
    let o = Command::new(env!("CARGO_BIN_EXE_spectree"))
        .args(["replay", dir.join("nothing-here").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("holds no event log"));
    std::fs::remove_dir_all(&dir).ok();
}
